package sqltest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/stacktest"
)

// The executions table at volume: BENCH_EXEC_ROWS finished executions
// (default 1,000,000), each with one sent delivery, created evenly over the
// last 91 days by 100 organisations (one invoice workflow each), four
// reminders per invoice; generated once into a template database (not
// timed). BenchmarkCleanup reports the table's and its indexes' bytes per
// execution and times the daily automation_cleanup(), which deletes the day
// that passed the 90-day retention (about 1/91 of the rows, with their
// deliveries): the figures docs/capacity.md's model scales to hundreds of
// millions of rows. Run with:
//
//	BENCH_EXEC_ROWS=1000000 go test ./internal/sqltest/ -run '^$' -bench Cleanup -benchtime 1x -timeout 60m
var (
	cleanupOnce  sync.Once
	cleanupReady bool
	cleanupRows  int
)

const cleanupTemplateDB = "dueflow_cleanup_template"

func generateCleanupData(ctx context.Context, pool *pgxpool.Pool, rows int) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("cleanup data: %w", err)
	}
	defer conn.Release()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`set session_replication_role = replica`, nil},
		{`insert into organizations (name, timezone) select 'Org ' || g, 'UTC' from generate_series(1, 100) g`, nil},
		{`insert into automation_workflows (organization_id, name, trigger_type, trigger_config)
		  select id, 'Overdue', 'invoice_overdue', '{"days_after_due":[1,7,14,30]}' from organizations`, nil},
		// row g: invoice g / 4 (four reminders each) of organisation (g / 4) % 100, created g/rows of 91 days ago
		{`insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
		    subject_type, subject_id, client_id, status, attempt, next_attempt_at, deadline_at, actions_count,
		    trigger_data, created_at, started_at, completed_at, updated_at)
		  select w.id, w.organization_id, 'invoice-reminder', 'invoice_overdue', format('invoice:%s:d%s', g / 4, g % 4),
		         'invoice', (g / 4)::text, (g / 40)::text, 'completed', 1, x.t, x.t + interval '7 days', 1,
		         jsonb_build_object('invoice_number', 'INV-' || g / 4, 'reminder_day', g % 4),
		         x.t, x.t, x.t + interval '2 seconds', x.t + interval '2 seconds'
		  from generate_series(0, $1::int - 1) g
		  cross join lateral (select now() - interval '91 days' * (1 - g::float8 / $1) as t) x
		  join (select w.id, w.organization_id, row_number() over (order by w.id) - 1 as n from automation_workflows w) w
		    on w.n = (g / 4) % 100`, []any{rows}},
		{`insert into automation_deliveries (execution_id, organization_id, channel, recipient, provider, idempotency_key,
		    status, provider_message_id, created_at, sent_at, updated_at)
		  select e.id, e.organization_id, 'email', 'c@example.test', 'smtp', e.id::text || ':0:email', 'sent',
		         '<' || e.id || '@mail.test>', e.started_at, e.completed_at, e.completed_at
		  from automation_execution_logs e`, nil},
		{`set session_replication_role = origin`, nil},
		{`vacuum (freeze, analyze)`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("cleanup data: %w", err)
		}
	}
	return nil
}

// BenchmarkCleanup: bytes per execution (table, its indexes, deliveries)
// and one daily automation_cleanup() at 90 days' retention.
func BenchmarkCleanup(b *testing.B) {
	cleanupOnce.Do(func() {
		cleanupRows = 1_000_000
		if err := stacktest.EnvInt("BENCH_EXEC_ROWS", &cleanupRows, 1000, 1_000_000_000); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		pgtest.NewTemplate(b, cleanupTemplateDB, func(ctx context.Context, pool *pgxpool.Pool) error {
			return generateCleanupData(ctx, pool, cleanupRows)
		})
		b.Logf("generated %d executions and deliveries in %s (not timed)", cleanupRows, time.Since(start).Round(time.Second))
		cleanupReady = true
	})
	if !cleanupReady {
		b.Fatal("cleanup data unavailable")
	}
	var deleted int
	var took time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool, _ := pgtest.NewDBFrom(b, cleanupTemplateDB)
		if i == 0 {
			var heap, idx, dheap, didx int64
			require.NoError(b, pool.QueryRow(bg, `select pg_relation_size('automation_execution_logs'), pg_indexes_size('automation_execution_logs'),
				pg_relation_size('automation_deliveries'), pg_indexes_size('automation_deliveries')`).Scan(&heap, &idx, &dheap, &didx))
			n := float64(cleanupRows)
			b.ReportMetric(float64(heap)/n, "exec-heap-B/row")
			b.ReportMetric(float64(idx)/n, "exec-index-B/row")
			b.ReportMetric(float64(dheap+didx)/n, "delivery-B/row")
		}
		b.StartTimer()
		t0 := time.Now()
		require.NoError(b, pool.QueryRow(bg, `select automation_cleanup()`).Scan(&deleted))
		took += time.Since(t0)
		b.StopTimer()
		pool.Close()
	}
	b.ReportMetric(float64(deleted), "deleted")
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "cleanup-ms")
	if deleted > 0 {
		b.ReportMetric(float64(took.Microseconds())/float64(b.N)/float64(deleted), "us/deleted")
	}
}
