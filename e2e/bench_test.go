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
)

// benchExecutions is the number of due executions one drain works through.
const benchExecutions = 10000

// providerLatency is the time a provider takes to accept one message in the
// second round of the benchmark (a remote SMTP relay or email API answers in
// tens to hundreds of milliseconds; the local inbox in microseconds).
const providerLatency = 50 * time.Millisecond

// naiveSequentialSample is how many executions the sequential naive
// dispatcher works through when each message costs providerLatency (all
// 10,000 would take over eight minutes); its rate is measured on this sample.
const naiveSequentialSample = 1000

// BenchmarkDrain drains 10,000 due invoice reminders through the whole local
// stack (process_pending_automations -> pg_net stand-in -> gateway ->
// invoice-reminder under the RIE -> PostgREST stand-in RPCs + SMTP), then
// the same work through a naive dispatcher like the replaced system (one
// HTTP call, one SELECT, one email and one UPDATE per execution), first with
// the local inbox (CPU-bound) and then with providerLatency per message. It
// reports executions/s, due-to-sent p50/p95, CPU time per execution and each
// process's peak RSS.
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./e2e/
func BenchmarkDrain(b *testing.B) {
	s := startStack(b, stackOptions{
		env:       []string{"SMS_PROVIDER=none", "DUEFLOW_CONCURRENCY=16", "LOG_LEVEL=warn"},
		instances: 4,
		netConc:   16,
	})
	db := s.Pool()
	seedOverdue(b, db, benchExecutions)
	mustExec(b, db, `select check_overdue_invoices()`) // the executions, due now
	mustExec(b, db, `create table bench_due (id uuid primary key, due_at timestamptz not null)`)

	var results []drainResult
	for i := 0; i < b.N; i++ {
		results = results[:0]
		for _, lat := range []time.Duration{0, providerLatency} {
			s.SMTPCapture().SetDelay(lat)
			seqN := benchExecutions
			if lat > 0 {
				seqN = naiveSequentialSample
			}
			results = append(results,
				drainPipeline(b, s, lat),
				drainNaive(b, s, 1, seqN, lat),
				drainNaive(b, s, 16, benchExecutions, lat))
		}
		s.SMTPCapture().SetDelay(0)
	}
	local, remote := results[0], results[3]
	b.ReportMetric(local.perSecond, "exec/s")
	b.ReportMetric(local.p50.Seconds()*1000, "p50-ms")
	b.ReportMetric(local.p95.Seconds()*1000, "p95-ms")
	b.ReportMetric(local.perSecond/results[1].perSecond, "x-naive")
	b.ReportMetric(remote.perSecond, "exec/s@50ms")
	b.ReportMetric(remote.perSecond/results[4].perSecond, "x-naive@50ms")

	var report strings.Builder
	fmt.Fprintf(&report, "\n%-40s %8s %7s %9s %9s %9s %11s\n", "dispatcher", "execs", "exec/s", "p50", "p95", "elapsed", "CPU/exec")
	for i, r := range results {
		if i == 0 {
			fmt.Fprintln(&report, "-- local inbox (no provider latency):")
		}
		if i == 3 {
			fmt.Fprintf(&report, "-- provider latency %s per message:\n", providerLatency)
		}
		fmt.Fprintf(&report, "%-40s %8d %7.0f %9s %9s %9s %11s\n", r.name, r.n, r.perSecond, r.p50.Round(time.Millisecond),
			r.p95.Round(time.Millisecond), r.elapsed.Round(time.Millisecond), (r.cpu / time.Duration(r.n)).Round(time.Microsecond))
	}
	fmt.Fprintf(&report, "dueflow vs naive, local inbox: %.1fx sequential, %.1fx 16 concurrent; CPU per execution %.1fx less than sequential\n",
		results[0].perSecond/results[1].perSecond, results[0].perSecond/results[2].perSecond,
		float64(results[1].cpu/time.Duration(results[1].n))/float64(results[0].cpu/time.Duration(results[0].n)))
	fmt.Fprintf(&report, "dueflow vs naive, %s provider latency: %.1fx sequential, %.1fx 16 concurrent\n", providerLatency,
		results[3].perSecond/results[4].perSecond, results[3].perSecond/results[5].perSecond)
	fmt.Fprintf(&report, "\npeak RSS (VmHWM) per process:\n")
	for _, l := range memoryReport(b, s) {
		fmt.Fprintln(&report, l)
	}
	fmt.Print(report.String()) // b.Log output of benchmarks is cut to a few lines
}

type drainResult struct {
	name      string
	n         int
	elapsed   time.Duration
	perSecond float64
	p50, p95  time.Duration
	cpu       time.Duration // CPU time of every process involved (Postgres, RIE, bootstraps, this test process)
}

// cpuByRole is the CPU used since before, per role of the stack ("postgres",
// "rie:<fn>", "go test").
func cpuByRole(s *devstack.Stack, before map[int]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	add := func(role string, pid int) {
		if d, err := devstack.ReadProcCPU(pid); err == nil {
			out[role] += d - before[pid]
		}
	}
	add("go test", os.Getpid())
	for role, pids := range s.Processes() {
		for _, pid := range pids {
			add(role, pid)
		}
	}
	return out
}

// cpuNow sums the CPU time used so far by the stack's processes and this one.
func cpuNow(s *devstack.Stack) map[int]time.Duration {
	out := map[int]time.Duration{}
	pids := []int{os.Getpid()}
	for _, p := range s.Processes() {
		pids = append(pids, p...)
	}
	for _, pid := range pids {
		if d, err := devstack.ReadProcCPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// cpuSince is the CPU used since before (processes that exited meanwhile are
// not counted: the stack's connections are long-lived).
func cpuSince(s *devstack.Stack, before map[int]time.Duration) time.Duration {
	var total time.Duration
	for pid, d := range cpuNow(s) {
		total += d - before[pid]
	}
	return total
}

// resetDue puts every execution back to a fresh pending state, due now, and
// empties the inbox and the ledger.
func resetDue(b *testing.B, s *devstack.Stack, n int) {
	db := s.Pool()
	mustExec(b, db, `truncate automation_deliveries, bench_due`)
	// n executions due now, the rest out of the way (cancelled)
	mustExec(b, db, `update automation_execution_logs set status = 'cancelled', completed_at = now(), lease_token = null, lease_expires_at = null`)
	mustExec(b, db, `update automation_execution_logs set status = 'pending', attempt = 0, lease_token = null, lease_expires_at = null,
		dispatched_at = null, dispatch_count = 0, started_at = null, completed_at = null, error_code = null, error_message = null,
		actions_executed = 0, step_index = 0, next_attempt_at = now()
		where id in (select id from automation_execution_logs order by id limit $1)`, n)
	mustExec(b, db, `insert into bench_due select id, next_attempt_at from automation_execution_logs where status = 'pending'`)
	mustExec(b, db, `vacuum analyze automation_execution_logs`)
	s.SMTPCapture().Reset()
}

func waitAllFinal(b *testing.B, db *pgxpool.Pool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var open int
		require.NoError(b, db.QueryRow(context.Background(), `select count(*) from automation_execution_logs where status in ('pending', 'running')`).Scan(&open))
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d executions still open after %s", open, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func percentiles(b *testing.B, db *pgxpool.Pool, doneCol string) (p50, p95 time.Duration) {
	var a, c float64
	q := `select percentile_cont(0.5) within group (order by x), percentile_cont(0.95) within group (order by x)
		from (select extract(epoch from ` + doneCol + ` - d0.due_at) as x ` + map[string]string{
		"d.sent_at":      `from automation_deliveries d join bench_due d0 on d0.id = d.execution_id where d.status = 'sent'`,
		"e.completed_at": `from automation_execution_logs e join bench_due d0 on d0.id = e.id where e.status = 'completed'`,
	}[doneCol] + `) t`
	require.NoError(b, db.QueryRow(context.Background(), q).Scan(&a, &c))
	return time.Duration(a * float64(time.Second)), time.Duration(c * float64(time.Second))
}

func drainPipeline(b *testing.B, s *devstack.Stack, latency time.Duration) drainResult {
	ctx := context.Background()
	db := s.Pool()
	resetDue(b, s, benchExecutions)
	cpu0 := cpuNow(s)
	start := time.Now()
	res, err := s.Tick(ctx)
	require.NoError(b, err)
	waitAllFinal(b, db, 5*time.Minute)
	elapsed := time.Since(start)
	cpu := cpuSince(s, cpu0)
	fmt.Printf("pipeline cycle (provider latency %s): %s\n  CPU by process group: %v\n", latency, res, cpuByRole(s, cpu0))
	var completed, sent int
	require.NoError(b, db.QueryRow(ctx, `select count(*) from automation_execution_logs where status = 'completed'`).Scan(&completed))
	require.NoError(b, db.QueryRow(ctx, `select count(*) from automation_deliveries where status = 'sent'`).Scan(&sent))
	require.Equal(b, benchExecutions, completed)
	require.Equal(b, benchExecutions, sent)
	require.Equal(b, benchExecutions, s.SMTPCapture().Count())
	p50, p95 := percentiles(b, db, "d.sent_at")
	return drainResult{name: "dueflow (pg_net -> functions, RPC)", n: benchExecutions, elapsed: elapsed, perSecond: float64(benchExecutions) / elapsed.Seconds(), p50: p50, p95: p95, cpu: cpu}
}

// drainNaive does the same work the way the replaced system did: a loop over
// the pending rows makes one HTTP call per execution to an endpoint that
// runs one SELECT, sends the email (one SMTP session) and one UPDATE.
func drainNaive(b *testing.B, s *devstack.Stack, concurrency, n int, latency time.Duration) drainResult {
	ctx := context.Background()
	db := s.Pool()
	resetDue(b, s, n)
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

	cpu0 := cpuNow(s)
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
	cpu := cpuSince(s, cpu0)
	require.Zero(b, failures)
	require.Equal(b, n, s.SMTPCapture().Count())
	p50, p95 := percentiles(b, db, "e.completed_at")
	name := "naive, sequential"
	if concurrency > 1 {
		name = fmt.Sprintf("naive, %d concurrent", concurrency)
	}
	b.Logf("%s (provider latency %s): %d in %s", name, latency, n, elapsed.Round(time.Millisecond))
	return drainResult{name: name, n: n, elapsed: elapsed, perSecond: float64(n) / elapsed.Seconds(), p50: p50, p95: p95, cpu: cpu}
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
