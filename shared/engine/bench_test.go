package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
)

// BenchmarkPipeline measures executions per second through the whole
// function path: claim (PostgREST stand-in + real SQL), render, begin
// deliveries, send (real smtpmail sender to an in-process SMTP server) and
// report, in batches of 100 as the dispatcher sends them.
//
//	go test -run '^$' -bench Pipeline -benchtime 3000x ./shared/engine
func BenchmarkPipeline(b *testing.B) {
	const batch = 100
	s := newStack(b)
	org := pgtest.CreateOrg(b, s.db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	wf := pgtest.CreateWorkflow(b, s.db, org, "invoice_overdue", `{"days_after_due":[1]}`, `[]`)
	for i := range batch {
		client := pgtest.CreateClient(b, s.db, org, fmt.Sprintf("client%d@bench.test", i), "")
		pgtest.CreateInvoice(b, s.db, org, client, "overdue", -10, "99.95")
	}
	ts := &timedStore{Store: s.store}
	eng := s.engine(b, automation.ActionInvoiceReminder, ts)

	var elapsed time.Duration
	done := 0
	for n := 0; done < b.N; n++ {
		size := min(batch, b.N-done)
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

		start := time.Now()
		sum, err := eng.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
		elapsed += time.Since(start)
		require.NoError(b, err)
		require.Equal(b, len(ids), sum.Completed, "%+v", sum)
		done += len(ids)
	}
	b.StopTimer()
	require.Equal(b, b.N, s.smtp.Count())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exec/s")
	b.ReportMetric(0, "ns/op")
	batches := float64((b.N + batch - 1) / batch)
	b.ReportMetric(float64(ts.claim.Milliseconds())/batches, "claim-ms/batch")
	b.ReportMetric(float64(ts.begin.Milliseconds())/batches, "begin-ms/batch")
	b.ReportMetric(float64(ts.report.Milliseconds())/batches, "report-ms/batch")
}

// timedStore adds up the time spent in each RPC.
type timedStore struct {
	engine.Store
	claim, begin, report time.Duration
}

func (t *timedStore) Claim(ctx context.Context, r automation.ClaimRequest) ([]automation.Claimed, error) {
	defer func(s time.Time) { t.claim += time.Since(s) }(time.Now())
	return t.Store.Claim(ctx, r)
}

func (t *timedStore) BeginDeliveries(ctx context.Context, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	defer func(s time.Time) { t.begin += time.Since(s) }(time.Now())
	return t.Store.BeginDeliveries(ctx, ds)
}

func (t *timedStore) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	defer func(s time.Time) { t.report += time.Since(s) }(time.Now())
	return t.Store.Report(ctx, os)
}
