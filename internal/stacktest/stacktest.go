// Package stacktest is the harness the whole-stack tests and benchmarks
// share: a private local stack (internal/devstack) started for one test, N
// due invoice reminders seeded into it, one timed drain of them through
// dueflow, the CPU the stack's processes used, and the benchmarks' knobs
// read from the environment. Used by e2e/ and by the side-by-side against
// River in bench/river (a separate module); tests and benchmarks only.
package stacktest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/lambdafns"
	"github.com/dueflow/dueflow/internal/pgtest"
)

// Start starts a private local stack with cfg (StateDir and Logger are set
// here: a fresh temp directory, JSON logs into its devstack.log) and stops
// it at the end of the test; the state directory is kept when the test
// failed.
func Start(tb testing.TB, cfg devstack.Config) *devstack.Stack {
	tb.Helper()
	state, err := devstack.TempStateDir("dueflow-e2e-")
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	logFile, err := os.Create(filepath.Join(state, "devstack.log"))
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	cfg.StateDir = state
	cfg.Logger = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := devstack.Start(context.Background(), cfg)
	if err != nil {
		logFile.Close()
		tb.Fatalf("stacktest: %v", err)
	}
	tb.Logf("stack logs in %s", s.LogDir())
	tb.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			tb.Errorf("close stack: %v", err)
		}
		logFile.Close()
		if !tb.Failed() {
			_ = os.RemoveAll(state)
		}
	})
	return s
}

// SeedOrg is the organisation SeedOverdue creates.
const SeedOrg = "a0000000-0000-4000-8000-00000000000a"

// ReminderSubject and ReminderBody are the email step of the workflow
// SeedOverdue creates: what every drain sends, per invoice.
const (
	ReminderSubject = "Invoice {{invoice.number}} is overdue"
	ReminderBody    = "Hi {{client.first_name}}, {{invoice.balance}} is due."
)

// SeedOverdue creates one organisation (SeedOrg, send window all day) with
// n clients, each with one invoice overdue by one day, and an
// invoice_overdue workflow sending one email per invoice.
func SeedOverdue(tb testing.TB, db *pgxpool.Pool, n int) {
	tb.Helper()
	pgtest.Exec(tb, db, `insert into organizations (id, name, timezone, send_window_start, send_window_end, sender_name, sender_email)
		values ($1, 'Acme Plumbing', 'America/Chicago', '00:00', '23:59:59.999999', 'Acme Plumbing', 'billing@acme.test')`, SeedOrg)
	pgtest.Exec(tb, db, `insert into clients (id, organization_id, first_name, email)
		select ('c1000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, $1, 'Client ' || g, 'client' || g || '@example.com'
		from generate_series(1, $2) g`, SeedOrg, n)
	pgtest.Exec(tb, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance)
		select $1, ('c1000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'INV-' || g, 'sent',
		       (now() at time zone 'America/Chicago')::date - 1, 100, 100
		from generate_series(1, $2) g`, SeedOrg, n)
	pgtest.Exec(tb, db, `insert into automation_workflows (organization_id, name, trigger_type, trigger_config, steps)
		values ($1, 'Overdue invoices', 'invoice_overdue', '{"days_after_due":[1]}',
		 jsonb_build_array(jsonb_build_object('type', 'send_email', 'subject', $2::text, 'body', $3::text)))`,
		SeedOrg, ReminderSubject, ReminderBody)
}

// SeedDue seeds n overdue invoices (SeedOverdue), creates their executions
// (check_overdue_invoices) and the bench_due table ResetDue fills; with
// batch > 0 the invoice-reminder endpoint takes batches of that size.
func SeedDue(tb testing.TB, s *devstack.Stack, n, batch int) {
	tb.Helper()
	db := s.Pool()
	SeedOverdue(tb, db, n)
	pgtest.Exec(tb, db, `select check_overdue_invoices()`)
	if got := pgtest.Int(tb, db, `select count(*) from automation_execution_logs`); got != n {
		tb.Fatalf("stacktest: %d executions created for %d overdue invoices", got, n)
	}
	pgtest.Exec(tb, db, `create table if not exists bench_due (id uuid primary key, due_at timestamptz not null)`)
	if batch > 0 {
		pgtest.Exec(tb, db, `update automation_endpoints set batch_size = $1 where action = 'invoice-reminder'`, batch)
	}
}

// ResetDue puts the first n executions (by id) back to a fresh pending
// state, due now, cancels the rest, records the n in bench_due (their due
// time) and empties the ledger and the inbox.
func ResetDue(tb testing.TB, s *devstack.Stack, n int) {
	tb.Helper()
	db := s.Pool()
	pgtest.Exec(tb, db, `truncate automation_deliveries, bench_due`)
	pgtest.Exec(tb, db, `update automation_execution_logs set status = 'cancelled', completed_at = now(), lease_token = null, lease_expires_at = null`)
	pgtest.Exec(tb, db, `update automation_execution_logs set status = 'pending', attempt = 0, lease_token = null, lease_expires_at = null,
		dispatched_at = null, dispatch_count = 0, started_at = null, completed_at = null, error_code = null, error_message = null,
		actions_count = 0, step_index = 0, next_attempt_at = now()
		where id in (select id from automation_execution_logs order by id limit $1)`, n)
	pgtest.Exec(tb, db, `insert into bench_due select id, next_attempt_at from automation_execution_logs where status = 'pending'`)
	pgtest.Exec(tb, db, `vacuum analyze automation_execution_logs`)
	s.SMTPCapture().Reset()
}

// Result is one timed drain.
type Result struct {
	Name      string
	N         int
	Elapsed   time.Duration
	PerSecond float64
	P50, P95  time.Duration // due -> sent (or completed)
	CPU       time.Duration // CPU time of every process involved (Postgres, RIE, bootstraps, this process)
	// PostgresCPU is the part of CPU the Postgres cluster's processes used.
	PostgresCPU time.Duration
	// Profile is the database profile of the drain (BENCH_PROFILE; empty
	// when off): per statement calls, time, rows and buffers, and the
	// backends' CPU per execution by application.
	Profile string
}

// DrainPipeline makes the first n executions due (ResetDue), then times
// dueflow draining them: cycles (devstack.Stack.Tick: the checks, then
// process_pending_automations -> pg_net stand-in -> gateway -> function
// under the RIE -> PostgREST stand-in RPCs + SMTP) until none is open (one
// cycle dispatches at most 100 batches per action). It fails the test
// unless every execution completed with exactly one email sent.
func DrainPipeline(tb testing.TB, s *devstack.Stack, n int, logf func(format string, args ...any)) Result {
	tb.Helper()
	ctx := context.Background()
	db := s.Pool()
	ResetDue(tb, s, n)
	mode, err := ProfileMode()
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	prof := startProfile(tb, s, mode)
	cpu0 := CPUNow(s)
	start := time.Now()
	cycles := 0
	deadline := start.Add(5*time.Minute + time.Duration(n)*10*time.Millisecond)
	for {
		res, err := s.Tick(ctx)
		if err != nil {
			tb.Fatalf("stacktest: %v", err)
		}
		cycles++
		if logf != nil {
			logf("cycle %d: %s", cycles, res)
		}
		if WaitNoneOpen(tb, db, 2*time.Second) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stacktest: executions still open after %d cycles", cycles)
		}
	}
	elapsed := time.Since(start)
	cpu := CPUSince(s, cpu0)
	byRole := CPUByRole(s, cpu0)
	if logf != nil {
		logf("CPU by process group: %v", byRole)
	}
	var profText string
	if prof != nil {
		profText = prof.report(tb, n, cpu0)
	}
	completed := pgtest.Int(tb, db, `select count(*) from automation_execution_logs where status = 'completed'`)
	sent := pgtest.Int(tb, db, `select count(*) from automation_deliveries where status = 'sent'`)
	if completed != n || sent != n || s.SMTPCapture().Count() != n {
		tb.Fatalf("stacktest: %d executions: %d completed, %d deliveries sent, %d emails received", n, completed, sent, s.SMTPCapture().Count())
	}
	p50, p95 := Percentiles(tb, db, "d.sent_at")
	return Result{Name: "dueflow (pg_net -> functions, RPC)", N: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(),
		P50: p50, P95: p95, CPU: cpu, PostgresCPU: byRole["postgres"], Profile: profText}
}

// WaitNoneOpen waits up to timeout until no execution is pending or
// running; it reports whether that happened.
func WaitNoneOpen(tb testing.TB, db *pgxpool.Pool, timeout time.Duration) bool {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if pgtest.Int(tb, db, `select count(*) from automation_execution_logs where status in ('pending', 'running')`) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Percentiles are p50 and p95 of due (bench_due) -> doneCol over the drained
// executions: "d.sent_at" (deliveries sent) or "e.completed_at" (executions
// completed).
func Percentiles(tb testing.TB, db *pgxpool.Pool, doneCol string) (p50, p95 time.Duration) {
	tb.Helper()
	from, ok := map[string]string{
		"d.sent_at":      `from automation_deliveries d join bench_due d0 on d0.id = d.execution_id where d.status = 'sent'`,
		"e.completed_at": `from automation_execution_logs e join bench_due d0 on d0.id = e.id where e.status = 'completed'`,
	}[doneCol]
	if !ok {
		tb.Fatalf("stacktest: percentiles of unknown column %q", doneCol)
	}
	var a, c float64
	q := `select percentile_cont(0.5) within group (order by x), percentile_cont(0.95) within group (order by x)
		from (select extract(epoch from ` + doneCol + ` - d0.due_at) as x ` + from + `) t`
	if err := db.QueryRow(context.Background(), q).Scan(&a, &c); err != nil {
		tb.Fatalf("stacktest: percentiles: %v", err)
	}
	return time.Duration(a * float64(time.Second)), time.Duration(c * float64(time.Second))
}

// CPUNow is the CPU time used so far by each of the stack's processes and
// this one, by pid.
func CPUNow(s *devstack.Stack) map[int]time.Duration {
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

// CPUSince is the CPU used since before (processes that exited meanwhile
// are not counted: the stack's connections are long-lived).
func CPUSince(s *devstack.Stack, before map[int]time.Duration) time.Duration {
	var total time.Duration
	for pid, d := range CPUNow(s) {
		total += d - before[pid]
	}
	return total
}

// CPUByRole is the CPU used since before, per role of the stack
// ("postgres", "rie:<fn>", "go test").
func CPUByRole(s *devstack.Stack, before map[int]time.Duration) map[string]time.Duration {
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

// String is one line of a results table.
func (r Result) String() string {
	return fmt.Sprintf("%-40s %8d %7.0f %9s %9s %9s %11s %11s", r.Name, r.N, r.PerSecond, r.P50.Round(time.Millisecond),
		r.P95.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), (r.CPU / time.Duration(max(r.N, 1))).Round(time.Microsecond),
		(r.PostgresCPU / time.Duration(max(r.N, 1))).Round(time.Microsecond))
}

// Header is the header line of a results table (Result.String).
var Header = fmt.Sprintf("%-40s %8s %7s %9s %9s %9s %11s %11s", "dispatcher", "execs", "exec/s", "p50", "p95", "elapsed", "CPU/exec", "pg CPU/exec")

// BuildAll builds every function of the repository at root
// (lambdafns.Names) once, into a new temporary directory, for a test
// binary's TestMain: devstack.Config.BuiltFunctions. cleanup removes the
// directory.
func BuildAll(root, prefix string) (built map[string]string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("build functions: %w", err)
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	names, err := lambdafns.Names(root)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("build functions: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if built, err = devstack.BuildNamed(ctx, root, dir, names...); err != nil {
		cleanup()
		return nil, nil, err
	}
	return built, cleanup, nil
}
