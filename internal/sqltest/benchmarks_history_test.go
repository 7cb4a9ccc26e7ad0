package sqltest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// BenchmarkHistoryLargeStatements: the execution history's statement
// trigger on updates of 10,000 rows at once, as the dispatcher's (no status
// moves: no event) and a cancellation (every row an event). Its old and new
// transition tables must be joined in one pass; a nested loop over them was
// quadratic (26 s for a dispatch of 10,000 in the whole-stack benchmark).
//
//	go test ./internal/sqltest/ -run '^$' -bench HistoryLargeStatements -benchtime 3x
func BenchmarkHistoryLargeStatements(b *testing.B) {
	db, _ := pgtest.NewDB(b)
	_, wf, _ := pgtest.OverdueInvoices(b, db, 1)
	var dispatch, cancel time.Duration
	for i := 0; i < b.N; i++ {
		pgtest.Exec(b, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
			  subject_type, subject_id, next_attempt_at)
			select w.id, w.organization_id, 'invoice-reminder', 'invoice_overdue', 'bench:' || $2::int || ':' || g, 'invoice', g::text, now()
			from automation_workflows w, generate_series(1, 10000) g where w.id = $1`, wf, i)
		t0 := time.Now()
		pgtest.Exec(b, db, `update automation_execution_logs set dispatched_at = now(), dispatch_count = dispatch_count + 1
			where workflow_id = $1 and status = 'pending'`, wf)
		dispatch += time.Since(t0)
		t1 := time.Now()
		pgtest.Exec(b, db, `update automation_execution_logs set status = 'cancelled', completed_at = now(), error_code = 'cancelled'
			where workflow_id = $1 and status = 'pending'`, wf)
		cancel += time.Since(t1)
	}
	require.Equal(b, 10000*b.N, pgtest.Int(b, db, `select count(*)::int from automation_execution_events v
		join automation_execution_logs e on e.id = v.execution_id where v.kind = 'status' and e.occurrence_key like 'bench:%'`),
		"one event per cancelled row, none per dispatched one")
	b.ReportMetric(float64(dispatch.Milliseconds())/float64(b.N), "dispatch-ms/10k")
	b.ReportMetric(float64(cancel.Milliseconds())/float64(b.N), "cancel-ms/10k")
	b.ReportMetric(0, "ns/op")
}
