package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// BenchmarkPipeline measures executions per second through the whole
// function path: claim (PostgREST stand-in + real SQL), render, begin
// deliveries, send (real smtpmail sender to an in-process go-smtp server) and
// report, in batches of 100 as the dispatcher sends them. "sequential" is
// one invocation after the other; "parallel-N" is N invocations at once
// (pg_net rings every batch of a tick concurrently; on Lambda each runs in
// its own environment, so each worker here has its own engine and SMTP
// session pool).
//
//	go test -run '^$' -bench Pipeline -benchtime 3000x ./shared/engine
func BenchmarkPipeline(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { benchPipeline(b, 1, true, 0) })
	b.Run("parallel-2", func(b *testing.B) { benchPipeline(b, 2, true, 0) })
	b.Run("parallel-4", func(b *testing.B) { benchPipeline(b, 4, true, 0) })
	// The same without SMTP (a sender that only counts): the cost of the
	// database path alone.
	b.Run("sequential-nosmtp", func(b *testing.B) { benchPipeline(b, 1, false, 0) })
	// One ledger call per wave (LedgerChunk = the batch): the crash bound
	// traded for round trips.
	b.Run("sequential-chunk100", func(b *testing.B) { benchPipeline(b, 1, true, 100) })
	// The history trigger (automation_execution_logs_events) on every other
	// batch and off on the rest, in the same run: its cost per execution.
	b.Run("sequential-history-ab", func(b *testing.B) { benchPipeline(b, 1, true, -1) })
}

// historyAB is benchPipeline's ledgerChunk that alternates the history
// trigger between batches (sequential only).
const historyAB = -1

// countingSender accepts every message without any I/O.
type countingSender struct{ n atomic.Int64 }

func (c *countingSender) Name() string { return "count" }

func (c *countingSender) Send(context.Context, notify.Message) (notify.Result, error) {
	return notify.Result{Provider: "count", MessageID: strconv.FormatInt(c.n.Add(1), 10)}, nil
}

func benchPipeline(b *testing.B, workers int, smtp bool, ledgerChunk int) {
	const batch = 100
	ab := ledgerChunk == historyAB
	if ab {
		require.Equal(b, 1, workers, "the history trigger alternates between sequential batches")
		ledgerChunk = 0
	}
	s := newStack(b)
	org := pgtest.CreateOrg(b, s.db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	wf := pgtest.CreateWorkflow(b, s.db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1]}`, Steps: `[]`})
	for i := range batch {
		client := pgtest.CreateClient(b, s.db, pgtest.Client{Org: org, Email: fmt.Sprintf("client%d@bench.test", i)})
		pgtest.CreateInvoice(b, s.db, pgtest.Invoice{Org: org, Client: client, Status: "overdue", DueInDays: -10, Amount: "99.95"})
	}
	ts := &timedStore{Store: s.store}
	counter := &countingSender{}
	var sink *discardSink
	if smtp {
		sink = startDiscardSink(b)
	}
	// One engine and sender per worker: concurrent invocations run in
	// separate Lambda environments, each with its own SMTP session pool.
	engines := make([]*engine.Engine, workers)
	for w := range engines {
		var sender notify.Sender = counter
		if smtp {
			ss, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: sink.port, TLS: smtpmail.TLSNone,
				From: "noreply@dueflow.test", Timeout: 10 * time.Second, MaxConnections: 8})
			require.NoError(b, err)
			b.Cleanup(func() { _ = ss.Close() })
			sender = ss
		}
		eng, err := engine.New(engine.Options{Action: automation.ActionInvoiceReminder, Store: ts, Email: sender,
			Concurrency: 8, LedgerChunk: ledgerChunk, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		require.NoError(b, err)
		engines[w] = eng
	}

	// Every batch's executions exist before the clock starts.
	var batches [][]uuid.UUID
	for n, left := 0, b.N; left > 0; n++ {
		size := min(batch, left)
		rows, err := s.db.Query(bg, `
			insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
			  subject_type, subject_id, client_id, next_attempt_at)
			select $1, $2, 'invoice-reminder', 'invoice_overdue', 'bench:' || $3::int || ':' || i.id, 'invoice', i.id, i.client_id,
			  now() - interval '1 second'
			from (select id, client_id from invoices where organization_id = $2 order by id limit $4) i
			returning id`, wf, org, n, size)
		require.NoError(b, err)
		var ids []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			require.NoError(b, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(b, rows.Err())
		batches = append(batches, ids)
		left -= size
	}
	_, err := s.db.Exec(bg, "analyze automation_execution_logs")
	require.NoError(b, err)

	work := make(chan []uuid.UUID, len(batches))
	for _, ids := range batches {
		work <- ids
	}
	close(work)
	if ab {
		benchHistoryAB(b, s, engines[0], batches)
		return
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	cpu0, pg0 := cpuTime(), pgCPU(b, s)
	b.ResetTimer()
	start := time.Now()
	for _, eng := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ids := range work {
				sum, err := eng.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
				if err == nil && sum.Completed != len(ids) {
					err = fmt.Errorf("summary %+v", sum)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	goCPU := cpuTime() - cpu0
	pgUsed := pgCPU(b, s) - pg0
	close(errs)
	require.NoError(b, <-errs)
	received := int(counter.n.Load())
	if sink != nil {
		received = int(sink.n.Load())
	}
	require.Equal(b, b.N, received)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exec/s")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(goCPU.Microseconds())/float64(b.N), "go-cpu-µs/exec")
	b.ReportMetric(float64(pgUsed.Microseconds())/float64(b.N), "pg-cpu-µs/exec")
	n := float64(len(batches))
	b.ReportMetric(float64(ts.claim.Load())/1e6/n, "claim-ms/batch")
	b.ReportMetric(float64(ts.begin.Load())/1e6/n, "begin-ms/batch")
	b.ReportMetric(float64(ts.begins.Load())/n, "begins/batch")
	b.ReportMetric(float64(ts.report.Load())/1e6/n, "report-ms/batch")
}

// benchHistoryAB runs the batches one after the other, the history trigger
// enabled for half of them and disabled for the other half (the ALTER
// outside the measured time), and reports exec/s and Postgres CPU per execution of
// each half and their ratio (batch 0, which warms the caches, is not
// counted).
func benchHistoryAB(b *testing.B, s *stack, eng *engine.Engine, batches [][]uuid.UUID) {
	var (
		elapsed [2]time.Duration
		pgUsed  [2]time.Duration
		execs   [2]int
	)
	b.Cleanup(func() {
		_, _ = s.db.Exec(bg, `alter table automation_execution_logs enable trigger automation_execution_logs_events`)
	})
	b.ResetTimer()
	warm := 0
	for i, ids := range batches {
		// batch 0 warms the caches (trigger on, not counted), then on, off,
		// off, on, on, off, ...: neither half always runs first
		on := (i / 2) % 2 // 0: trigger on, 1: off
		if i == 0 {
			b.StopTimer()
			sum, err := eng.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
			require.NoError(b, err)
			require.Equal(b, len(ids), sum.Completed, "summary %+v", sum)
			warm = len(ids)
			b.StartTimer()
			continue
		}
		b.StopTimer()
		_, err := s.db.Exec(bg, `alter table automation_execution_logs `+[]string{"enable", "disable"}[on]+` trigger automation_execution_logs_events`)
		require.NoError(b, err)
		pg0 := pgCPU(b, s)
		b.StartTimer()
		start := time.Now()
		sum, err := eng.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
		elapsed[on] += time.Since(start)
		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, len(ids), sum.Completed, "summary %+v", sum)
		pgUsed[on] += pgCPU(b, s) - pg0
		execs[on] += len(ids)
		b.StartTimer()
	}
	b.StopTimer()
	var events int
	require.NoError(b, s.db.QueryRow(bg, `select count(*) from automation_execution_events`).Scan(&events))
	require.Equal(b, execs[0]+warm, events, "one event (the report) per execution of the batches with the trigger")
	b.ReportMetric(0, "ns/op")
	perExec := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
	b.ReportMetric(float64(execs[0])/elapsed[0].Seconds(), "exec/s-on")
	b.ReportMetric(float64(execs[1])/elapsed[1].Seconds(), "exec/s-off")
	b.ReportMetric(perExec(pgUsed[0], execs[0]), "pg-cpu-µs/exec-on")
	b.ReportMetric(perExec(pgUsed[1], execs[1]), "pg-cpu-µs/exec-off")
	b.ReportMetric(perExec(pgUsed[0], execs[0])/perExec(pgUsed[1], execs[1]), "pg-cpu-on/off")
}

// discardSink is an in-process SMTP server (go-smtp) that accepts every
// message and only counts it: the benchmark measures the sending side, not
// MIME parsing in a test server.
type discardSink struct {
	port int
	n    atomic.Int64
}

func startDiscardSink(b *testing.B) *discardSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	d := &discardSink{port: ln.Addr().(*net.TCPAddr).Port}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &discardSession{d: d}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return d
}

type discardSession struct{ d *discardSink }

func (s *discardSession) Reset()                                 {}
func (s *discardSession) Logout() error                          { return nil }
func (s *discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	s.d.n.Add(1)
	return err
}

// cpuTime is the CPU time (user + system) of this process: the function,
// the PostgREST stand-in and the SMTP server, not Postgres.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgCPU is the CPU time used so far by the Postgres backends serving the
// benchmark's database (from /proc; clock ticks of 10 ms).
func pgCPU(b *testing.B, s *stack) time.Duration {
	rows, err := s.db.Query(bg, `select pid from pg_stat_activity where datname = current_database()`)
	require.NoError(b, err)
	var total time.Duration
	for rows.Next() {
		var pid int
		require.NoError(b, rows.Scan(&pid))
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the ")" of the command name: utime and stime are 14 and 15.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	require.NoError(b, rows.Err())
	return total
}

// timedStore adds up the time spent in each RPC (nanoseconds) and counts
// the ledger calls (automation_record_deliveries).
type timedStore struct {
	engine.Store
	claim, begin, report atomic.Int64
	begins               atomic.Int64
}

func (t *timedStore) Claim(ctx context.Context, r automation.ClaimRequest) ([]json.RawMessage, error) {
	defer func(s time.Time) { t.claim.Add(int64(time.Since(s))) }(time.Now())
	return t.Store.Claim(ctx, r)
}

func (t *timedStore) RecordDeliveries(ctx context.Context, f []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	t.begins.Add(1)
	defer func(s time.Time) { t.begin.Add(int64(time.Since(s))) }(time.Now())
	return t.Store.RecordDeliveries(ctx, f, ds)
}

func (t *timedStore) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	defer func(s time.Time) { t.report.Add(int64(time.Since(s))) }(time.Now())
	return t.Store.Report(ctx, os)
}
