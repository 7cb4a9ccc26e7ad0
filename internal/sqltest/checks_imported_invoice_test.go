package sqltest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// A lost reminder: invoices written after the first scan with an old
// updated_at (an import, an adopting app's view) are neither on a reminder
// day reached since the last run nor changed since it. The first run of each
// organisation-local day scans the workflow's open overdue invoices in full,
// so they get their latest reminder by the next local day at the latest.
func TestImportedInvoiceAfterFirstScanIsReminded(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	now := time.Now()
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now)) // first (full) scan: nothing yet
	// invoices imported afterwards with their original timestamps
	for _, age := range []int{20, 45} {
		pgtest.Exec(t, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance, updated_at)
			values ($1, $2, 'IMP-' || $3::int, 'sent', current_date - $3::int, 10, 10, now() - make_interval(days => $3::int))`, org, cl, age)
	}
	// a control invoice inserted normally (updated_at = now())
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -20})
	created := 0
	for h := 1; h <= 48; h++ {
		created += pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(time.Duration(h)*time.Hour))
	}
	assert.Equal(t, 3, created, "each open overdue invoice gets its latest reminder (as a first full scan would give)")
	assert.Equal(t, "d14,d14,d30", pgtest.Text(t, db, `select string_agg(split_part(occurrence_key, ':', 4), ',' order by occurrence_key like '%:d30')
		from automation_execution_logs where workflow_id = $1`, wf))
	// a forced full scan (as after a configuration change) finds nothing missing
	pgtest.Exec(t, db, `delete from automation_check_state`)
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(49*time.Hour)))
}
