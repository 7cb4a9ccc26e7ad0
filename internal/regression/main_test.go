// Package regression_test holds one regression test per bug class of the
// system dueflow replaces (docs/bug-classes.md, which maps every bug to its
// tests) that no other package's tests already catch.
package regression_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// queuedIDs returns the execution ids of every request in net.http_request_queue.
func queuedIDs(t testing.TB, db pgtest.DB) []uuid.UUID {
	t.Helper()
	return pgtest.JSON[[]uuid.UUID](t, db, `select coalesce(jsonb_agg(x order by x), '[]') from (
		select jsonb_array_elements_text(convert_from(body, 'UTF8')::jsonb -> 'execution_ids') x from net.http_request_queue) q`)
}

// dispatchTo makes the database ready to ring action's function: the
// signing secret and an endpoint (nothing listens on port 9) taking batches
// of 100.
func dispatchTo(t testing.TB, db pgtest.DB, action string) {
	t.Helper()
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	pgtest.SetEndpoint(t, db, action, "http://127.0.0.1:9/"+action, 100)
}

// staleBacklog creates a stale_job workflow in an all-day organisation with
// n pending executions due now (one statement) and returns their ids.
func staleBacklog(t testing.TB, db pgtest.DB, n int) (org, wf uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = pgtest.AllDayOrg(t, db)
	wf = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job"})
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, next_attempt_at)
		select $1, $2, 'send-reminder', 'stale_job', 'k' || g, 'organization', now() - interval '1 minute' from generate_series(1, $3::int) g`, wf, org, n)
	return org, wf, pgtest.ExecutionIDs(t, db, wf)
}

// dispatchedOverdue is pgtest.OverdueInvoices with the n executions due and
// dispatched once (their request queued in net.http_request_queue).
func dispatchedOverdue(t testing.TB, db pgtest.DB, n int) (org, wf uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org, wf, execs = pgtest.OverdueInvoices(t, db, n)
	pgtest.MakeDue(t, db)
	dispatchTo(t, db, automation.ActionInvoiceReminder)
	if got := pgtest.Int(t, db, `select process_pending_automations()`); got != n {
		t.Fatalf("dispatched %d executions, want %d", got, n)
	}
	return org, wf, execs
}
