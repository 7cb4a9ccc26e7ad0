package sqltest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/stacktest"
	"github.com/dueflow/dueflow/shared/automation"
)

// Benchmarks on generated data: BENCH_ORGS organisations (default 1,000;
// five time zones, 09-17 windows), 10 clients each, BENCH_INVOICES invoices
// (default 1,000,000, spread evenly over the clients) of which about 5 % are
// sent and past due, one invoice_overdue workflow per organisation. The data
// is generated once per test binary into a template database, outside any
// benchmark's timing; each benchmark works on its own clone of it, made
// before its timer starts. Not part of `make test`; run with:
//
//	go test -run '^$' -bench . -timeout 60m ./internal/sqltest/
//	make bench-sql ORGS=100 INVOICES=100000
var (
	benchOnce  sync.Once
	benchReady bool
	benchCur   struct {
		name string
		pool *pgxpool.Pool
		tb   *heldTB
	}
)

// benchTemplateDB is the template database holding the generated data.
const benchTemplateDB = "dueflow_bench_template"

// benchDB returns the benchmark's own database, a clone of the generated
// data (generated on first use), and resets the benchmark's timer. Every
// run of one benchmark (b.N 1, then more) gets the same clone; the clone of
// the previous benchmark is dropped.
func benchDB(b *testing.B) *pgxpool.Pool {
	b.Helper()
	benchOnce.Do(func() {
		orgs, invoices := 1000, 1_000_000
		if err := stacktest.EnvInt("BENCH_ORGS", &orgs, 1, 1_000_000); err != nil {
			b.Fatal(err)
		}
		if err := stacktest.EnvInt("BENCH_INVOICES", &invoices, 1, 100_000_000); err != nil {
			b.Fatal(err)
		}
		pgtest.NewTemplate(b, benchTemplateDB, func(ctx context.Context, pool *pgxpool.Pool) error {
			return generateBenchData(ctx, b, pool, orgs, invoices)
		})
		benchReady = true
	})
	if !benchReady {
		b.Fatal("bench data unavailable")
	}
	if benchCur.name != b.Name() {
		if benchCur.tb != nil {
			benchCur.tb.release()
		}
		tb := &heldTB{B: b}
		pool, _ := pgtest.NewDBFrom(tb, benchTemplateDB)
		benchCur.name, benchCur.pool, benchCur.tb = b.Name(), pool, tb
	}
	b.ResetTimer()
	return benchCur.pool
}

// generateBenchData fills the template: orgs organisations, 10 clients
// each, about invoices invoices (a whole number per client), then freezes
// and analyses every table so that no clone pays for hint bits or
// statistics in its first run.
func generateBenchData(ctx context.Context, b *testing.B, pool *pgxpool.Pool, orgs, invoices int) error {
	start := time.Now()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("bench data: %w", err)
	}
	defer conn.Release()
	perClient := max(1, (invoices+orgs*10-1)/(orgs*10))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// bulk load: skip the per-row foreign key triggers (the generator keeps them true)
		{`set session_replication_role = replica`, nil},
		{`select setseed(0.42)`, nil},
		{`insert into organizations (name, timezone)
		  select 'Org ' || g, (array['America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'UTC', 'America/Los_Angeles'])[1 + g % 5]
		  from generate_series(1, $1::int) g`, []any{orgs}},
		{`insert into clients (organization_id, first_name, email)
		  select o.id, 'Client ' || g, 'client' || g || '@example.test' from organizations o cross join generate_series(1, 10) g`, nil},
		{`insert into invoices (organization_id, client_id, number, status, due_date, total, balance, created_at, updated_at)
		  select c.organization_id, c.id, 'INV-' || g, s.status,
		         case when s.status = 'paid' then current_date - (s.r * 365)::int
		              when s.r < 0.2 then current_date - 1 - (s.r * 5 * 59)::int
		              else current_date + 1 + (s.r * 30)::int end,
		         100, case when s.status = 'paid' then 0 else 100 end,
		         now() - interval '400 days', now() - interval '1 day' * (1 + (s.r * 300)::int)
		  from clients c cross join generate_series(1, $1::int) g
		  cross join lateral (select case when random() < 0.75 then 'paid' else 'sent' end as status, random() as r
		                      where g > 0 and c.id is not null) s`, []any{perClient}},
		{`insert into automation_workflows (organization_id, name, trigger_type, trigger_config)
		  select id, 'Overdue reminders', 'invoice_overdue', '{"days_after_due":[1,7,14,30]}' from organizations`, nil},
		{`set session_replication_role = origin`, nil},
		{`vacuum (freeze, analyze)`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("bench data: %w", err)
		}
	}
	var inv, overdue int
	if err := conn.QueryRow(ctx, `select count(*), count(*) filter (where status = 'sent' and due_date < current_date) from invoices`).Scan(&inv, &overdue); err != nil {
		return fmt.Errorf("bench data: %w", err)
	}
	b.Logf("generated %d organisations, %d invoices (%d sent and past due) in %s (not timed)", orgs, inv, overdue, time.Since(start).Round(time.Millisecond))
	return nil
}

// heldTB holds the cleanups of a benchmark database (pgtest drops it at
// cleanup) until release: the benchmark's own cleanup runs after each of
// its runs, and the clone is kept for all of them.
type heldTB struct {
	*testing.B
	cleanups []func()
}

func (h *heldTB) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }

func (h *heldTB) release() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

func resetExecutions(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	for _, q := range []string{
		`truncate automation_execution_logs cascade`,
		`truncate automation_analytics`,
		`truncate automation_check_state`,
		`update invoices set status = 'sent', updated_at = updated_at - interval '1 second' where status = 'overdue'`,
		`vacuum analyze invoices`,
		`vacuum analyze automation_execution_logs`,
	} {
		if _, err := pool.Exec(bg, q); err != nil {
			b.Fatalf("reset: %v", err)
		}
	}
}

// BenchmarkInvoiceCheckFirst: the first check over the data (marks ~50,000
// invoices overdue and creates their executions).
func BenchmarkInvoiceCheckFirst(b *testing.B) {
	pool := benchDB(b)
	var made int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		resetExecutions(b, pool)
		b.StartTimer()
		require.NoError(b, pool.QueryRow(bg, `select check_overdue_invoices()`).Scan(&made))
	}
	b.ReportMetric(float64(made), "executions")
}

// BenchmarkInvoiceCheckSteady: a check with nothing new (target < 250 ms).
func BenchmarkInvoiceCheckSteady(b *testing.B) {
	pool := benchDB(b)
	ensureFirstCheck(b, pool)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var made int
		require.NoError(b, pool.QueryRow(bg, `select check_overdue_invoices()`).Scan(&made))
		if made != 0 {
			b.Fatalf("steady state created %d executions", made)
		}
	}
}

// BenchmarkInvoiceCheckDayStart: the first check of an organisation-local
// day, which scans every workflow's open overdue invoices in full (here all
// 1,000 organisations at once; in production each time zone's share at its
// local midnight), with every reminder already created.
func BenchmarkInvoiceCheckDayStart(b *testing.B) {
	pool := benchDB(b)
	ensureFirstCheck(b, pool)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pgtest.Exec(b, pool, `update automation_check_state set checked_at = now() - interval '1 day'`)
		b.StartTimer()
		var made int
		require.NoError(b, pool.QueryRow(bg, `select check_overdue_invoices()`).Scan(&made))
		if made != 0 {
			b.Fatalf("day start created %d executions", made)
		}
	}
}

func ensureFirstCheck(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	var n int
	require.NoError(b, pool.QueryRow(bg, `select count(*) from automation_execution_logs`).Scan(&n))
	if n == 0 {
		require.NoError(b, pool.QueryRow(bg, `select check_overdue_invoices()`).Scan(&n))
	}
	pgtest.Exec(b, pool, `vacuum analyze automation_execution_logs`)
}

// resetBacklog makes every execution of the bench database pending and due
// again, as an unclaimed backlog.
func resetBacklog(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ensureFirstCheck(b, pool)
	pgtest.Exec(b, pool, `update automation_execution_logs set status = 'pending', attempt = 0, lease_token = null,
		lease_expires_at = null, completed_at = null, next_attempt_at = now() - interval '1 second'`)
	pgtest.Exec(b, pool, `vacuum analyze automation_execution_logs`)
}

// BenchmarkClaimReport: claim 100 + report 100 (completed), two workers per
// core; reports executions per second.
func BenchmarkClaimReport(b *testing.B) {
	pool := benchDB(b)
	resetBacklog(b, pool)
	var total int64
	var mu sync.Mutex
	b.SetParallelism(2) // 2 workers per core, as several function instances would
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var done int64
		for pb.Next() {
			var raw []byte
			if err := pool.QueryRow(bg, `select coalesce(jsonb_agg(c), '[]') from automation_claim('invoice-reminder', null, 100, 300) c`).Scan(&raw); err != nil {
				b.Error(err)
				return
			}
			var claimed []automation.Claimed
			if err := json.Unmarshal(raw, &claimed); err != nil {
				b.Error(err)
				return
			}
			if len(claimed) == 0 {
				b.Error("ran out of pending executions: lower -benchtime")
				return
			}
			outs := make([]automation.Outcome, len(claimed))
			for i, c := range claimed {
				outs[i] = automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken,
					Status: automation.OutcomeCompleted, ActionsExecuted: 1}
			}
			in, _ := json.Marshal(outs)
			if _, err := pool.Exec(bg, `select automation_report($1::jsonb)`, string(in)); err != nil {
				b.Error(err)
				return
			}
			done += int64(len(claimed))
		}
		mu.Lock()
		total += done
		mu.Unlock()
	})
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "executions/s")
}

// BenchmarkClaimReportSerial: one worker, claim 100 + report 100, with the
// time of each RPC reported separately.
func BenchmarkClaimReportSerial(b *testing.B) {
	pool := benchDB(b)
	resetBacklog(b, pool)
	var claimT, reportT time.Duration
	total := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		var raw []byte
		require.NoError(b, pool.QueryRow(bg, `select coalesce(jsonb_agg(c), '[]') from automation_claim('invoice-reminder', null, 100, 300) c`).Scan(&raw))
		var claimed []automation.Claimed
		require.NoError(b, json.Unmarshal(raw, &claimed))
		require.NotEmpty(b, claimed, "ran out of pending executions")
		t1 := time.Now()
		outs := make([]automation.Outcome, len(claimed))
		for i, c := range claimed {
			outs[i] = automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1}
		}
		in, _ := json.Marshal(outs)
		pgtest.Exec(b, pool, `select automation_report($1::jsonb)`, string(in))
		claimT += t1.Sub(t0)
		reportT += time.Since(t1)
		total += len(claimed)
	}
	b.ReportMetric(float64(claimT.Milliseconds())/float64(b.N), "claim-ms/batch")
	b.ReportMetric(float64(reportT.Milliseconds())/float64(b.N), "report-ms/batch")
	b.ReportMetric(float64(total)/(claimT+reportT).Seconds(), "executions/s")
}
