// Package regression_test holds one regression test per bug class of the
// system dueflow replaces (DESIGN.md section 1) that no other package's
// tests already catch; docs/bug-classes.md maps every bug to its tests.
package regression_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func idStrings(us []uuid.UUID) []string {
	if us == nil {
		return nil
	}
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

// claim calls automation_claim and decodes the documents.
func claim(t testing.TB, db pgtest.DB, action string, only []uuid.UUID, limit, lease int) []automation.Claimed {
	t.Helper()
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select coalesce(jsonb_agg(c), '[]') from automation_claim($1, $2::uuid[], $3, $4) c`,
		action, idStrings(only), limit, lease).Scan(&raw))
	var out []automation.Claimed
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return out
}

// report calls automation_report.
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

// begin calls automation_begin_deliveries.
func begin(t testing.TB, db pgtest.DB, intents ...automation.DeliveryIntent) []automation.DeliveryBegun {
	t.Helper()
	in, err := json.Marshal(intents)
	require.NoError(t, err)
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select automation_begin_deliveries($1::jsonb)`, string(in)).Scan(&raw))
	var out []automation.DeliveryBegun
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return out
}

// num runs a query returning one integer.
func num(t testing.TB, db pgtest.DB, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(bg, q, args...).Scan(&n), q)
	return n
}

// str runs a query returning one text.
func str(t testing.TB, db pgtest.DB, q string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, db.QueryRow(bg, q, args...).Scan(&s), q)
	return s
}

func exec(t testing.TB, db pgtest.DB, q string, args ...any) {
	t.Helper()
	_, err := db.Exec(bg, q, args...)
	require.NoError(t, err, q)
}

// makeDue moves every pending execution's next attempt into the past.
func makeDue(t testing.TB, db pgtest.DB) {
	t.Helper()
	exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '1 second' where status = 'pending'`)
}

// allDayOrg is an organisation whose send window covers the whole day.
func allDayOrg(t testing.TB, db pgtest.DB) uuid.UUID {
	return pgtest.CreateOrg(t, db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
}

// overdue creates an all-day org, a client, n invoices 3 days overdue and an
// invoice_overdue workflow, runs the check and returns the workflow and the executions.
func overdue(t testing.TB, db pgtest.DB, n int) (org, wf uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = allDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, org, "ada@client.test", "+15555550123")
	for i := 0; i < n; i++ {
		pgtest.CreateInvoice(t, db, org, cl, "sent", -3, "10")
	}
	wf = pgtest.CreateWorkflow(t, db, org, "invoice_overdue", `{"days_after_due":[1,7,14,30]}`, "")
	require.Equal(t, n, num(t, db, `select check_overdue_invoices()`))
	return org, wf, execIDs(t, db, wf)
}

func execIDs(t testing.TB, db pgtest.DB, wf uuid.UUID) []uuid.UUID {
	t.Helper()
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select coalesce(jsonb_agg(id order by id), '[]') from automation_execution_logs where workflow_id = $1`, wf).Scan(&raw))
	var out []uuid.UUID
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

// queuedIDs returns the execution ids of every request in net.http_request_queue.
func queuedIDs(t testing.TB, db pgtest.DB) []uuid.UUID {
	t.Helper()
	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select coalesce(jsonb_agg(x order by x), '[]') from (
		select jsonb_array_elements_text(convert_from(body, 'UTF8')::jsonb -> 'execution_ids') x from net.http_request_queue) q`).Scan(&raw))
	var out []uuid.UUID
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}
