// Package regression_test holds one regression test per bug class of the
// system dueflow replaces (DESIGN.md section 1) that no other package's
// tests already catch; docs/bug-classes.md maps every bug to its tests.
package regression_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// overdue creates an all-day org, a client, n invoices 3 days overdue and an
// invoice_overdue workflow, runs the check and returns the workflow and the executions.
func overdue(t testing.TB, db pgtest.DB, n int) (org, wf uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, org, "ada@client.test", "+15555550123")
	for i := 0; i < n; i++ {
		pgtest.CreateInvoice(t, db, org, cl, "sent", -3, "10")
	}
	wf = pgtest.CreateWorkflow(t, db, org, "invoice_overdue", `{"days_after_due":[1,7,14,30]}`, "")
	require.Equal(t, n, pgtest.Int(t, db, `select check_overdue_invoices()`))
	return org, wf, pgtest.ExecutionIDs(t, db, wf)
}

// queuedIDs returns the execution ids of every request in net.http_request_queue.
func queuedIDs(t testing.TB, db pgtest.DB) []uuid.UUID {
	t.Helper()
	return pgtest.JSON[[]uuid.UUID](t, db, `select coalesce(jsonb_agg(x order by x), '[]') from (
		select jsonb_array_elements_text(convert_from(body, 'UTF8')::jsonb -> 'execution_ids') x from net.http_request_queue) q`)
}
