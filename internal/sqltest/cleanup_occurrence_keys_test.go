package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// automation_cleanup deletes old finished executions, but an execution whose
// occurrence key still dedupes a reminder (open invoice, client still due for
// maintenance, job still stale) must stay: deleting it would let the next
// check create and send the same reminder again.
func TestCleanupKeepsLiveOccurrenceKeys(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@client.test"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -120})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, job_type, status, completed_at) values
		($1, $2, 'hvac', 'completed', now() - interval '14 months')`, org, client)
	other := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "bob@client.test"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, scheduled_start, updated_at) values
		($1, $2, 'in_progress', now() - interval '200 days', now() - interval '200 days')`, org, other)
	inv := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	maint := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})
	stale := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job", Config: `{"days_inactive":7}`})
	sched := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"every_minute"}`})

	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`)) // stale job (schedule created)
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = now() - interval '1 minute' where workflow_id = $1`, sched)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`)) // scheduled run

	// every reminder went out 100 days ago
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'completed',
		completed_at = now() - interval '100 days', created_at = now() - interval '100 days'`)
	require.Equal(t, 1, pgtest.Int(t, db, `select automation_cleanup()`), "only the scheduled run is history")
	assert.Equal(t, 0, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, sched))

	// the next checks must not create the same reminders again
	pgtest.Exec(t, db, `delete from automation_check_state`) // next local day: full scan
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices()`), "invoice reminder re-created")
	assert.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`), "maintenance reminder re-created")
	assert.Zero(t, pgtest.Int(t, db, `select check_automation_triggers()`), "stale-job reminder re-created")
	for _, wf := range []any{inv, maint, stale} {
		assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, wf))
	}

	// a superseded occurrence (the invoice reached a later reminder day) is history
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type,
		occurrence_key, subject_type, subject_id, client_id, status, completed_at, created_at)
		select workflow_id, organization_id, action, trigger_type, occurrence_key || ':older', subject_type, subject_id,
		       client_id, 'completed', completed_at, created_at - interval '10 days'
		from automation_execution_logs where workflow_id = $1`, inv)
	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_cleanup()`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, inv))
}
