package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/stacktest"
)

// The defaults of BenchmarkDrain's knobs (stacktest.KnobsFromEnv; the
// Makefile's N, LATENCY, INSTANCES, CONCURRENCY, BATCH and CASE).
var drainDefaults = stacktest.Knobs{
	N:           10000,
	Latencies:   []time.Duration{0, 50 * time.Millisecond}, // the local inbox, then a remote relay or email API
	Instances:   4,
	Concurrency: 16,
	Batch:       100,
	Rounds:      1,
}

// naiveSequentialSample is how many executions the sequential naive
// dispatcher works through at most when each message costs a provider
// latency (all 10,000 at 50 ms would take over eight minutes); its rate is
// measured on this sample.
const naiveSequentialSample = 1000

// BenchmarkDrain drains N (10,000) due invoice reminders through the whole
// local stack (process_pending_automations -> pg_net stand-in -> gateway ->
// invoice-reminder under the RIE -> PostgREST stand-in RPCs + SMTP), then
// the same work through a naive dispatcher like the replaced system (one
// HTTP call, one SELECT, one email and one UPDATE per execution), once per
// provider latency (the local inbox, then 50 ms per message). It reports
// executions/s, due-to-sent p50/p95, CPU time per execution and each
// process's peak RSS. Knobs (environment): BENCH_N, BENCH_LATENCY,
// BENCH_INSTANCES, BENCH_CONCURRENCY, BENCH_BATCH, BENCH_CASE
// (pipeline|naive), documented at the Makefile's bench-stack.
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./e2e/
func BenchmarkDrain(b *testing.B) {
	k, err := stacktest.KnobsFromEnv(drainDefaults, "pipeline", "naive")
	require.NoError(b, err)
	s := startStack(b, stackOptions{
		env:       []string{"SMS_PROVIDER=none", fmt.Sprintf("DUEFLOW_CONCURRENCY=%d", k.Concurrency), "LOG_LEVEL=warn"},
		instances: k.Instances,
		netConc:   max(16, k.Instances),
	})
	stacktest.SeedDue(b, s, k.N, k.Batch)
	logf := func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }

	type round struct {
		latency                   time.Duration
		pipeline, seq, concurrent *stacktest.Result
	}
	var rounds []round
	for i := 0; i < b.N; i++ {
		rounds = rounds[:0]
		for _, lat := range k.Latencies {
			s.SMTPCapture().SetDelay(lat)
			r := round{latency: lat}
			if k.Runs("pipeline") {
				fmt.Printf("pipeline, provider latency %s:\n", lat)
				res := stacktest.DrainPipeline(b, s, k.N, logf)
				fmt.Print(res.Profile)
				r.pipeline = &res
			}
			if k.Runs("naive") {
				seqN := k.N
				if lat > 0 {
					seqN = min(k.N, naiveSequentialSample)
				}
				seq := drainNaive(b, s, 1, seqN, lat)
				conc := drainNaive(b, s, k.Concurrency, k.N, lat)
				r.seq, r.concurrent = &seq, &conc
			}
			rounds = append(rounds, r)
		}
		s.SMTPCapture().SetDelay(0)
	}
	for i, r := range rounds {
		suffix := ""
		if i > 0 {
			suffix = fmt.Sprintf("@%dms", r.latency.Milliseconds())
		}
		if r.pipeline != nil {
			b.ReportMetric(r.pipeline.PerSecond, "exec/s"+suffix)
			if i == 0 {
				b.ReportMetric(r.pipeline.P50.Seconds()*1000, "p50-ms")
				b.ReportMetric(r.pipeline.P95.Seconds()*1000, "p95-ms")
			}
			if r.seq != nil {
				b.ReportMetric(r.pipeline.PerSecond/r.seq.PerSecond, "x-naive"+suffix)
			}
		}
	}

	var report strings.Builder
	fmt.Fprintf(&report, "\n%s\n%s\n", k, stacktest.Header)
	for _, r := range rounds {
		if r.latency == 0 {
			fmt.Fprintln(&report, "-- local inbox (no provider latency):")
		} else {
			fmt.Fprintf(&report, "-- provider latency %s per message:\n", r.latency)
		}
		for _, res := range []*stacktest.Result{r.pipeline, r.seq, r.concurrent} {
			if res != nil {
				fmt.Fprintln(&report, res)
			}
		}
	}
	for _, r := range rounds {
		if r.pipeline == nil || r.seq == nil {
			continue
		}
		where := "local inbox"
		if r.latency > 0 {
			where = r.latency.String() + " provider latency"
		}
		fmt.Fprintf(&report, "dueflow vs naive, %s: %.1fx sequential, %.1fx %d concurrent; CPU per execution %.1fx less than sequential\n",
			where, r.pipeline.PerSecond/r.seq.PerSecond, r.pipeline.PerSecond/r.concurrent.PerSecond, k.Concurrency,
			float64(r.seq.CPU/time.Duration(r.seq.N))/float64(r.pipeline.CPU/time.Duration(r.pipeline.N)))
	}
	fmt.Fprintf(&report, "\npeak RSS (VmHWM) per process:\n")
	for _, l := range memoryReport(b, s) {
		fmt.Fprintln(&report, l)
	}
	fmt.Print(report.String()) // b.Log output of benchmarks is cut to a few lines
}

// drainNaive does the same work the way the replaced system did: a loop over
// the pending rows makes one HTTP call per execution to an endpoint that
// runs one SELECT, sends the email (one SMTP session) and one UPDATE.
func drainNaive(b *testing.B, s *devstack.Stack, concurrency, n int, latency time.Duration) stacktest.Result {
	ctx := context.Background()
	db := s.Pool()
	stacktest.ResetDue(b, s, n)
	pool, err := pgxpool.New(ctx, s.DSN())
	require.NoError(b, err)
	defer pool.Close()
	smtpAddr := s.SMTPCapture().Addr()

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID uuid.UUID `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var email, first, number, balance, from string
		err := pool.QueryRow(r.Context(), `select c.email, c.first_name, i.number, i.balance::text, o.sender_email
			from automation_execution_logs e join clients c on c.id::text = e.client_id join invoices i on i.id::text = e.subject_id
			join organizations o on o.id = e.organization_id where e.id = $1 and e.status = 'pending'`, req.ID).
			Scan(&email, &first, &number, &balance, &from)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		msg := "From: " + from + "\r\nTo: " + email + "\r\nSubject: Invoice " + number + " is overdue\r\n" +
			"Content-Type: text/plain; charset=UTF-8\r\n\r\nHi " + first + ", $" + balance + " is due.\r\n"
		if err := smtp.SendMail(smtpAddr, nil, from, []string{email}, []byte(msg)); err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		if _, err := pool.Exec(r.Context(), `update automation_execution_logs set status = 'completed', attempt = attempt + 1,
			started_at = now(), completed_at = now() where id = $1`, req.ID); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/send"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}

	cpu0 := stacktest.CPUNow(s)
	start := time.Now()
	rows, err := db.Query(ctx, `select id from automation_execution_logs where status = 'pending' and next_attempt_at <= now() order by next_attempt_at`)
	require.NoError(b, err)
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		require.NoError(b, rows.Scan(&id))
		ids = append(ids, id)
	}
	rows.Close()
	work := make(chan uuid.UUID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures int
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				body, _ := json.Marshal(map[string]uuid.UUID{"id": id})
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusNoContent {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := stacktest.CPUSince(s, cpu0)
	pgCPU := stacktest.CPUByRole(s, cpu0)["postgres"]
	require.Zero(b, failures)
	require.Equal(b, n, s.SMTPCapture().Count())
	p50, p95 := stacktest.Percentiles(b, db, "e.completed_at")
	name := "naive, sequential"
	if concurrency > 1 {
		name = fmt.Sprintf("naive, %d concurrent", concurrency)
	}
	b.Logf("%s (provider latency %s): %d in %s", name, latency, n, elapsed.Round(time.Millisecond))
	return stacktest.Result{Name: name, N: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(), P50: p50, P95: p95, CPU: cpu, PostgresCPU: pgCPU}
}

// memoryReport lists the peak RSS of the stack's processes and of this test
// process.
func memoryReport(b *testing.B, s *devstack.Stack) []string {
	var lines []string
	procs := s.Processes()
	roles := make([]string, 0, len(procs))
	for r := range procs {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, role := range roles {
		var total, peak int64
		var n int
		byName := map[string][]int64{}
		for _, pid := range procs[role] {
			m, err := devstack.ReadProcMem(pid)
			if err != nil {
				continue
			}
			n++
			total += m.HWMKiB
			peak = max(peak, m.HWMKiB)
			byName[m.Name] = append(byName[m.Name], m.HWMKiB)
		}
		var parts []string
		for name, v := range byName {
			sort.Slice(v, func(i, j int) bool { return v[i] > v[j] })
			var mx int64
			if len(v) > 0 {
				mx = v[0]
			}
			parts = append(parts, fmt.Sprintf("%s x%d max %.1f MiB", name, len(v), float64(mx)/1024))
		}
		sort.Strings(parts)
		lines = append(lines, fmt.Sprintf("  %-22s %3d procs, largest %7.1f MiB, sum %7.1f MiB (%s)", role, n, float64(peak)/1024, float64(total)/1024, strings.Join(parts, "; ")))
	}
	if m, err := devstack.ReadProcMem(os.Getpid()); err == nil {
		lines = append(lines, fmt.Sprintf("  %-22s %3d procs, largest %7.1f MiB (test process: gateway, pg_net worker, PostgREST stand-in, SMTP capture, naive dispatcher)", "go test", 1, float64(m.HWMKiB)/1024))
	}
	return lines
}
