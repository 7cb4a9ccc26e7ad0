package sqlfiles_test

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
