package migrations_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// Benchmarks on generated data: 1,000 organisations (five time zones, 09-17
// windows), 10,000 clients, 1,000,000 invoices of which about 5 % are sent
// and past due, one invoice_overdue workflow per organisation. Not part of
// `make test`; run with:
//
//	go test -run '^$' -bench . -timeout 30m ./sql/
var (
	benchOnce sync.Once
	benchPool *pgxpool.Pool
)

func benchDB(b *testing.B) *pgxpool.Pool {
	b.Helper()
	benchOnce.Do(func() {
		pool, _ := pgtest.NewDB(&onceTB{B: b})
		start := time.Now()
		conn, err := pool.Acquire(bg)
		if err != nil {
			b.Fatalf("bench data: %v", err)
		}
		defer conn.Release()
		for _, q := range []string{
			// bulk load: skip the per-row foreign key triggers (the generator keeps them true)
			`set session_replication_role = replica`,
			`select setseed(0.42)`,
			`insert into organizations (name, timezone)
			 select 'Org ' || g, (array['America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'UTC', 'America/Los_Angeles'])[1 + g % 5]
			 from generate_series(1, 1000) g`,
			`insert into clients (organization_id, first_name, email)
			 select o.id, 'Client ' || g, 'client' || g || '@example.test' from organizations o cross join generate_series(1, 10) g`,
			`insert into invoices (organization_id, client_id, number, status, due_date, total, balance, created_at, updated_at)
			 select c.organization_id, c.id, 'INV-' || g, s.status,
			        case when s.status = 'paid' then current_date - (s.r * 365)::int
			             when s.r < 0.2 then current_date - 1 - (s.r * 5 * 59)::int
			             else current_date + 1 + (s.r * 30)::int end,
			        100, case when s.status = 'paid' then 0 else 100 end,
			        now() - interval '400 days', now() - interval '1 day' * (1 + (s.r * 300)::int)
			 from clients c cross join generate_series(1, 100) g
			 cross join lateral (select case when random() < 0.75 then 'paid' else 'sent' end as status, random() as r
			                     where g > 0 and c.id is not null) s`,
			`insert into automation_workflows (organization_id, name, trigger_type, trigger_config)
			 select id, 'Overdue reminders', 'invoice_overdue', '{"days_after_due":[1,7,14,30]}' from organizations`,
			`set session_replication_role = origin`,
			`analyze`,
		} {
			if _, err := conn.Exec(bg, q); err != nil {
				b.Fatalf("bench data: %v", err)
			}
		}
		var inv, overdue int
		require.NoError(b, pool.QueryRow(bg, `select count(*), count(*) filter (where status = 'sent' and due_date < current_date) from invoices`).Scan(&inv, &overdue))
		b.Logf("generated %d invoices (%d sent and past due) in %s", inv, overdue, time.Since(start).Round(time.Millisecond))
		benchPool = pool
	})
	if benchPool == nil {
		b.Fatal("bench data unavailable")
	}
	return benchPool
}

// onceTB keeps the benchmark database alive for the whole binary (the pgtest
// cleanup of the first benchmark would otherwise drop it); pgtest.Main stops
// the cluster at the end.
type onceTB struct{ *testing.B }

func (o *onceTB) Cleanup(func()) {}

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
