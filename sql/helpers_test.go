package migrations_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

var bg = context.Background()

func ids(us ...uuid.UUID) []string {
	if us == nil {
		return nil
	}
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

func claim(t testing.TB, db pgtest.DB, action string, only []uuid.UUID, limit, lease int) []automation.Claimed {
	t.Helper()
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select coalesce(jsonb_agg(c), '[]') from automation_claim($1, $2::uuid[], $3, $4) c`,
		action, ids(only...), limit, lease).Scan(&raw))
	var out []automation.Claimed
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return out
}

func report(t testing.TB, db pgtest.DB, outcomes ...automation.Outcome) []automation.Reported {
	t.Helper()
	in, err := json.Marshal(outcomes)
	require.NoError(t, err)
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select automation_report($1::jsonb)`, string(in)).Scan(&raw))
	var out []automation.Reported
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	require.Len(t, out, len(outcomes))
	return out
}

func begin(t testing.TB, db pgtest.DB, intents ...automation.DeliveryIntent) []automation.DeliveryBegun {
	t.Helper()
	in, err := json.Marshal(intents)
	require.NoError(t, err)
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select automation_begin_deliveries($1::jsonb)`, string(in)).Scan(&raw))
	var out []automation.DeliveryBegun
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	require.Len(t, out, len(intents))
	return out
}

func count(t testing.TB, db pgtest.DB, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(bg, q, args...).Scan(&n))
	return n
}

func callInt(t testing.TB, db pgtest.DB, q string, args ...any) int {
	return count(t, db, q, args...)
}

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

// makeDue moves every pending execution's next attempt to now.
func makeDue(t testing.TB, db pgtest.DB) {
	t.Helper()
	_, err := db.Exec(bg, `update automation_execution_logs set next_attempt_at = now() - interval '1 second' where status = 'pending'`)
	require.NoError(t, err)
}

// overdueSetup creates an all-day-window org, a client, an invoice due
// daysOverdue days ago, an invoice_overdue workflow, runs the check and
// returns the workflow id and the execution ids.
func overdueSetup(t testing.TB, db pgtest.DB, daysOverdue int, amount string) (org, wf, inv uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = pgtest.CreateOrg(t, db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	client := pgtest.CreateClient(t, db, org, "ada@client.test", "+15555550123")
	inv = pgtest.CreateInvoice(t, db, org, client, "sent", -daysOverdue, amount)
	wf = pgtest.CreateWorkflow(t, db, org, "invoice_overdue", `{"days_after_due":[1,7,14,30]}`,
		`[{"type":"send_email","subject":"Invoice {{invoice.number}}"}]`)
	require.Positive(t, callInt(t, db, `select check_overdue_invoices()`))
	return org, wf, inv, execIDs(t, db, wf)
}

func execIDs(t testing.TB, db pgtest.DB, wf uuid.UUID) []uuid.UUID {
	t.Helper()
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select coalesce(jsonb_agg(id order by created_at, id), '[]') from automation_execution_logs where workflow_id = $1`, wf).Scan(&raw))
	var out []uuid.UUID
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func deliveryFor(exec, lease uuid.UUID) automation.DeliveryIntent {
	return automation.DeliveryIntent{ExecutionID: exec, LeaseToken: lease, Channel: "email", Recipient: "x@x.test", Provider: "smtp",
		IdempotencyKey: automation.IdempotencyKey(exec, 0, "email")}
}

// wfBytes renders a uuid the way pgx.RowToMap returns uuid columns.
func wfBytes(id uuid.UUID) [16]byte { return id }
