package sqltest_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

var bg = context.Background()

type execRow struct {
	Status        string
	Attempt       int
	ErrorCode     *string
	NextAttemptAt time.Time
	DeadlineAt    *time.Time
	StepIndex     int
	DispatchCount int
}

func execution(t testing.TB, db pgtest.DB, id uuid.UUID) execRow {
	t.Helper()
	var r execRow
	require.NoError(t, db.QueryRow(bg, `select status, attempt, error_code, next_attempt_at, deadline_at, step_index, dispatch_count
		from automation_execution_logs where id = $1`, id).Scan(&r.Status, &r.Attempt, &r.ErrorCode, &r.NextAttemptAt, &r.DeadlineAt, &r.StepIndex, &r.DispatchCount))
	return r
}

// overdueSetup creates an all-day-window org, a client, an invoice due
// daysOverdue days ago, an invoice_overdue workflow, runs the check and
// returns the workflow id and the execution ids.
func overdueSetup(t testing.TB, db pgtest.DB, daysOverdue int, amount string) (org, wf, inv uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@client.test", Phone: "+15555550123"})
	inv = pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -daysOverdue, Amount: amount})
	wf = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`,
		Steps: `[{"type":"send_email","subject":"Invoice {{invoice.number}}"}]`})
	require.Positive(t, pgtest.Int(t, db, `select check_overdue_invoices()`))
	return org, wf, inv, pgtest.ExecutionIDs(t, db, wf)
}

func deliveryFor(exec, lease uuid.UUID) automation.DeliveryIntent {
	return automation.DeliveryIntent{ExecutionID: exec, LeaseToken: lease, Channel: "email", Recipient: "x@x.test", Provider: "smtp",
		IdempotencyKey: automation.IdempotencyKey(exec, 0, "email")}
}

// wfBytes renders a uuid the way pgx.RowToMap returns uuid columns.
func wfBytes(id uuid.UUID) [16]byte { return id }

// testSecret is the webhook signing secret the tests store in Vault.
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
