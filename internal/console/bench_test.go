package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/pgtest"
)

// benchRows is the size of the benchmark's executions table: 1,000,000,
// or BENCH_EXECUTIONS (a smaller table to try the benchmark out; the
// figures to compare are the million's).
func benchRows(b *testing.B) int {
	v := os.Getenv("BENCH_EXECUTIONS")
	if v == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("BENCH_EXECUTIONS=%q: a number of executions, at least 1000", v)
	}
	return n
}

var benchTemplate sync.Once

// millionTemplate makes, once per test binary, a database holding rows
// executions of 3 organisations and 12 workflows spread over 90 days (82%
// completed, 6% skipped, 5% failed, 2% cancelled, 5% pending; 1% of them,
// completed ones, run-workflow executions of the scheduled trigger, the
// rest invoice-reminder ones of invoice_overdue), 3 deliveries on one of
// them, analysed.
func millionTemplate(b *testing.B, rows int) string {
	name := fmt.Sprintf("console_bench_%d", rows)
	benchTemplate.Do(func() {
		pgtest.NewTemplate(b, name, func(ctx context.Context, pool *pgxpool.Pool) error {
			var wfs []uuid.UUID
			for o := 0; o < 3; o++ {
				org := pgtest.AllDayOrg(b, pool)
				for w := 0; w < 4; w++ {
					wfs = append(wfs, pgtest.CreateWorkflow(b, pool, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7]}`}))
				}
			}
			_, err := pool.Exec(ctx, `
insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
  subject_id, status, attempt, created_at, updated_at, next_attempt_at, completed_at, error_code, error_message)
select w.id, w.organization_id, case when g % 100 = 50 then 'run-workflow' else 'invoice-reminder' end,
       case when g % 100 = 50 then 'scheduled' else 'invoice_overdue' end, 'bench:' || g, 'invoice', 'inv-' || g, s.status,
       case when s.status = 'pending' then 0 else 1 end, s.at, s.at, s.at,
       case when s.status <> 'pending' then s.at + interval '5 seconds' end,
       case s.status when 'failed' then 'provider_rejected' when 'cancelled' then 'cancelled' end,
       case s.status when 'failed' then 'bench: rejected' when 'cancelled' then 'bench' end
  from generate_series(1, $2::int) g
  cross join lateral (select ($1::uuid[])[1 + g % array_length($1::uuid[], 1)] as wid) p
  join automation_workflows w on w.id = p.wid
  cross join lateral (select case when g % 100 < 82 then 'completed' when g % 100 < 88 then 'skipped'
                                  when g % 100 < 93 then 'failed' when g % 100 < 95 then 'cancelled' else 'pending' end as status,
                             now() - (90 * 86400 * (g::float8 / $2)) * interval '1 second' as at) s`, wfs, rows)
			if err != nil {
				return fmt.Errorf("insert executions: %w", err)
			}
			_, err = pool.Exec(ctx, `
insert into automation_deliveries (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key,
  status, provider_message_id, sent_at)
select e.id, e.organization_id, s, 'email', 'client@bench.test', 'smtp', e.id || ':' || s || ':email', 'sent', 'm' || s || '@bench.test', now()
  from (select * from automation_execution_logs where occurrence_key = 'bench:' || $1::int / 2) e, generate_series(0, 2) s`, rows)
			if err != nil {
				return fmt.Errorf("insert deliveries: %w", err)
			}
			_, err = pool.Exec(ctx, `vacuum analyze`)
			return err
		})
	})
	return name
}

// The executions list (filtered by each filter), one execution's page and
// the workflows page, served by the console over a table of benchRows
// executions (target: under 100 ms each). Run:
//
//	go test -run '^$' -bench Pages -benchtime 20x ./internal/console/
//
// and to try it out on a small table:
//
//	BENCH_EXECUTIONS=20000 go test -run '^$' -bench Pages -benchtime 1x ./internal/console/
func BenchmarkPages(b *testing.B) {
	rows := benchRows(b)
	db, _ := pgtest.NewDBFrom(b, millionTemplate(b, rows))
	ctx := context.Background()
	var n int
	if err := db.QueryRow(ctx, `select count(*) from automation_execution_logs`).Scan(&n); err != nil || n != rows {
		b.Fatalf("executions: %d, %v", n, err)
	}
	var exec, wf, org string
	if err := db.QueryRow(ctx, `select id::text, workflow_id::text, organization_id::text from automation_execution_logs
		where occurrence_key = 'bench:' || $1::int / 2`, rows).Scan(&exec, &wf, &org); err != nil {
		b.Fatal(err)
	}
	srv, err := console.New(console.Config{DB: db, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []struct{ name, path string }{
		{"executions", "/executions"},
		{"executions-failed", "/executions?state=failed"},
		{"executions-workflow", "/executions?workflow=" + wf},
		{"executions-errorcode", "/executions?error=provider_rejected"},
		{"executions-org", "/executions?org=" + org}, // a third of the rows
		{"executions-action-1pct", "/executions?action=run-workflow"},
		{"executions-action-none", "/executions?action=send-reminder"}, // no row has it
		{"executions-trigger-1pct", "/executions?trigger=scheduled"},
		{"executions-trigger-none", "/executions?trigger=appointment"},
		{"executions-since-7d", "/executions?since=" + now.AddDate(0, 0, -7).Format("2006-01-02T15:04")},
		// half way down, as a page cursor there reads
		{"executions-45d-deep", "/executions?until=" + now.AddDate(0, 0, -45).Format("2006-01-02T15:04")},
		{"execution", "/executions/" + exec},
		{"workflows", "/workflows"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, c.path, nil)
				req.Host = "127.0.0.1"
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", c.path, rec.Code, rec.Body.String())
				}
			}
		})
	}
}
