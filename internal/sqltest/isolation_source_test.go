package sqltest_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// breakInvoiceTotals redefines automation_src_invoices, as an adopter's view
// can be, so that reading the total of org's invoices raises (a cast that
// fails on its rows only).
func breakInvoiceTotals(t testing.TB, db pgtest.DB, org uuid.UUID) {
	t.Helper()
	pgtest.Exec(t, db, fmt.Sprintf(`create or replace view automation_src_invoices with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date,
		       (case when organization_id = '%s' then 'ada@client.test owes' else total::text end)::numeric(12,2) as total,
		       (case when organization_id = '%s' then 'ada@client.test owes' else balance::text end)::numeric(12,2) as balance,
		       currency, portal_url, updated_at
		from invoices`, org, org))
}

// Issue 8: the claim document is built from the source views; one
// execution whose view row cannot be read used to abort the claim of the
// whole batch (every tenant's executions in it, at every ring). Now only
// that execution fails (source_error, message without the value); the
// other tenants' executions in the same batch are claimed.
func TestClaimIsolatesAnUnreadableSourceRow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, good := pgtest.OverdueInvoices(t, db, 2)
	faultyOrg, _, faulty := pgtest.OverdueInvoices(t, db, 1)
	_, _, other := pgtest.OverdueInvoices(t, db, 2)
	breakInvoiceTotals(t, db, faultyOrg)
	pgtest.MakeDue(t, db)

	ids := append(append(append([]uuid.UUID{}, good...), faulty...), other...)
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, ids, 10, 60)
	claimed := map[uuid.UUID]bool{}
	for _, c := range got {
		claimed[c.Execution.ID] = true
		require.NotNil(t, c.Invoice)
	}
	assert.Len(t, claimed, 4, "the other tenants' executions are claimed")
	assert.False(t, claimed[faulty[0]])

	var status, code, msg string
	require.NoError(t, db.QueryRow(bg, `select status, error_code, error_message from automation_execution_logs where id = $1`,
		faulty[0]).Scan(&status, &code, &msg))
	assert.Equal(t, [2]string{"failed", "source_error"}, [2]string{status, code})
	assert.Contains(t, msg, "invalid input syntax for type numeric")
	assert.NotContains(t, msg, "ada@client.test", "no value of the row in the error column")

	// the view mended, an operator retries it: it is claimed
	pgtest.Exec(t, db, `create or replace view automation_src_invoices with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date, total, balance, currency, portal_url, updated_at
		from invoices`)
	require.True(t, pgtest.JSON[automation.Reported](t, db, `select automation_retry_execution($1)`, faulty[0]).Applied)
	assert.Len(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, faulty, 10, 60), 1)
}

// Issue 8: the dispatcher's premise skips read the source views too; a view
// that fails on one tenant's row must not stop the dispatch of every
// tenant. The failed skip is recorded (dispatch_error, masked), the due
// executions are still rung, and the record goes once the view is mended.
func TestDispatchGoesOnWhenAPremiseSkipFails(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, good := pgtest.OverdueInvoices(t, db, 2)
	faultyOrg, _, faulty := pgtest.OverdueInvoices(t, db, 1)
	breakInvoiceTotals(t, db, faultyOrg)
	pgtest.MakeDue(t, db)
	dispatchTo(t, db, automation.ActionInvoiceReminder)

	assert.Equal(t, 3, pgtest.Int(t, db, `select process_pending_automations()`), "every due execution is rung")
	assert.ElementsMatch(t, append(append([]uuid.UUID{}, good...), faulty...), queuedIDs(t, db))
	probs := checkProblems(t, db)
	require.Len(t, probs, 1, "%+v", probs)
	assert.Equal(t, "process_pending_automations", probs[0].Check)
	assert.Equal(t, "invoice_settled", probs[0].Type)
	assert.Equal(t, "dispatch_error", probs[0].Code)
	assert.NotContains(t, probs[0].Message, "ada@client.test")

	pgtest.Exec(t, db, `create or replace view automation_src_invoices with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date, total, balance, currency, portal_url, updated_at
		from invoices`)
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Empty(t, checkProblems(t, db), "cleared once the skip succeeds again")
}
