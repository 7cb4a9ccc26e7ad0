package sqltest_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// Bug 3: a rescheduled appointment is reminded once, not once per start time.
// The check that creates the occurrence for the new start skips the older
// still-pending one (superseded) in the same statement.
func TestRescheduledAppointmentRemindedOnce(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	var job string
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start)
		values ($1, $2, 'scheduled', now() + interval '20 hours') returning id::text`, org, cl).Scan(&job))
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "appointment", Config: `{"hours_before":24}`})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	old := pgtest.Text(t, db, `select id::text from automation_execution_logs where workflow_id = $1`, wf)
	// the office moves the visit earlier before the reminder went out
	pgtest.Exec(t, db, `update jobs set scheduled_start = now() + interval '10 hours' where id = $1::uuid`, job)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	assert.Equal(t, "skipped superseded", pgtest.Text(t, db,
		`select status || ' ' || error_code from automation_execution_logs where id = $1::uuid`, old))
	assert.Equal(t, 1, pgtest.Int(t, db, `select skipped_count from automation_workflows where id = $1`, wf), "counted once as skipped")
	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionSendReminder, nil, 10, 60)
	require.Len(t, got, 1, "one appointment, one reminder")
	assert.Contains(t, string(got[0].Execution.TriggerData), "scheduled_start")
	require.NotNil(t, got[0].Job.ScheduledStart)
	// re-running changes nothing
	assert.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and status <> 'skipped'`, wf))
}

// An appointment moved out of the reminder horizon (no new occurrence yet),
// or no longer scheduled, is skipped at dispatch time, before any function runs.
func TestMovedOrCancelledAppointmentSkippedAtDispatch(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	var moved, cancelled, kept string
	for _, p := range []*string{&moved, &cancelled, &kept} {
		require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start)
			values ($1, $2, 'scheduled', now() + interval '20 hours') returning id::text`, org, cl).Scan(p))
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "appointment", Config: `{"hours_before":24}`})
	require.Equal(t, 3, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	pgtest.Exec(t, db, `update jobs set scheduled_start = now() + interval '5 days' where id = $1::uuid`, moved)
	pgtest.Exec(t, db, `update jobs set status = 'cancelled' where id = $1::uuid`, cancelled)
	pgtest.MakeDue(t, db)
	pgtest.Int(t, db, `select process_pending_automations()`)
	byJob := func(job string) string {
		return pgtest.Text(t, db, `select status || ' ' || coalesce(error_code, '-') from automation_execution_logs
			where workflow_id = $1 and subject_id = $2::text`, wf, job)
	}
	assert.Equal(t, "skipped superseded", byJob(moved))
	assert.Equal(t, "skipped subject_gone", byJob(cancelled))
	assert.Equal(t, "pending -", byJob(kept))
}

// A stale-job reminder is not sent after the job had activity (a newer
// occurrence supersedes it; without one, dispatch skips it), nor once the
// job left the workflow's stale statuses.
func TestStaleJobReminderSupersededByActivity(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	jobs := make([]string, 3)
	for i := range jobs {
		require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, updated_at)
			values ($1, $2, 'in_progress', now() - interval '30 days') returning id::text`, org, cl).Scan(&jobs[i]))
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job", Config: `{"days_inactive":7,"statuses":["in_progress"]}`})
	require.Equal(t, 3, pgtest.Int(t, db, `select check_automation_triggers()`))
	// job 0: activity, and stale again since (a new occurrence); job 1: activity
	// only; job 2: moved to a status the workflow does not remind about
	pgtest.Exec(t, db, `update jobs set updated_at = now() - interval '10 days' where id = $1::uuid`, jobs[0])
	pgtest.Exec(t, db, `update jobs set updated_at = now() where id = $1::uuid`, jobs[1])
	pgtest.Exec(t, db, `update jobs set status = 'scheduled', updated_at = now() - interval '30 days' where id = $1::uuid`, jobs[2])
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	states := func(job string) string {
		return pgtest.Text(t, db, `select string_agg(status || ' ' || coalesce(error_code, '-'), ', ' order by created_at)
			from automation_execution_logs where workflow_id = $1 and subject_id = $2::text`, wf, job)
	}
	assert.Equal(t, "skipped superseded, pending -", states(jobs[0]))
	pgtest.MakeDue(t, db)
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Equal(t, "skipped superseded, pending -", states(jobs[0]))
	assert.Equal(t, "skipped superseded", states(jobs[1]))
	assert.Equal(t, "skipped superseded", states(jobs[2]))
}

// A maintenance reminder is not sent once the client booked a visit or had
// a newer service; a newer last service supersedes the older reminder.
func TestMaintenanceReminderSupersededByNewerService(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	booked := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "b@client.test"})
	serviced := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "s@client.test"})
	idle := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "i@client.test"})
	for _, c := range []uuid.UUID{booked, serviced, idle} {
		pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at)
			values ($1, $2, 'completed', now() - interval '8 months')`, org, c)
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})
	require.Equal(t, 3, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, scheduled_start) values ($1, $2, 'scheduled', now() + interval '3 days')`, org, booked)
	// a newer service, itself already 7 months old (entered late): a new occurrence
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at) values ($1, $2, 'completed', now() - interval '7 months')`, org, serviced)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	states := func(c uuid.UUID) string {
		return pgtest.Text(t, db, `select string_agg(status || ' ' || coalesce(error_code, '-'), ', ' order by created_at)
			from automation_execution_logs where workflow_id = $1 and client_id = $2`, wf, c)
	}
	assert.Equal(t, "skipped superseded, pending -", states(serviced))
	pgtest.MakeDue(t, db)
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Equal(t, "skipped superseded", states(booked))
	assert.Equal(t, "skipped superseded, pending -", states(serviced))
	assert.Equal(t, "pending -", states(idle))

	// a workflow for one job type: a newer service of another type supersedes nothing
	hvac := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6,"job_type":"hvac"}`})
	other := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "o@client.test"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, job_type, status, completed_at)
		values ($1, $2, 'hvac', 'completed', now() - interval '8 months')`, org, other)
	require.Equal(t, 2, pgtest.Int(t, db, `select check_maintenance_reminders()`), "one per workflow")
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, job_type, status, completed_at)
		values ($1, $2, 'plumbing', 'completed', now() - interval '1 month')`, org, other)
	pgtest.MakeDue(t, db)
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where workflow_id = $1`, hvac))
	assert.Equal(t, "skipped superseded", states(other), "the any-type workflow sees the newer service")
}

// Issue 8: reminders of one invoice pile up while none goes out (an outage,
// no endpoint registered yet): the newest reminder day supersedes the older
// still-pending ones of the same workflow and invoice, so one message goes
// out, not two on the same day. Another workflow's reminder of the invoice,
// and another invoice's, are untouched.
func TestPiledUpInvoiceRemindersSendOnce(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	inv := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -6})
	otherInv := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -2})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14]}`})
	second := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,14]}`})
	now := time.Now()
	require.Equal(t, 4, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))
	// a day later invoice inv reaches day 7; its day-1 reminder never went out
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(24*time.Hour)))
	states := func(w, i uuid.UUID) string {
		return pgtest.Text(t, db, `select string_agg(split_part(occurrence_key, ':', 4) || ' ' || status || ' ' || coalesce(error_code, '-'), ', ' order by created_at)
			from automation_execution_logs where workflow_id = $1 and subject_id = $2`, w, i)
	}
	assert.Equal(t, "d1 skipped superseded, d7 pending -", states(wf, inv))
	assert.Equal(t, "d1 pending -", states(wf, otherInv))
	assert.Equal(t, "d1 pending -", states(second, inv))
	assert.Equal(t, 1, pgtest.Int(t, db, `select skipped_count from automation_workflows where id = $1`, wf), "counted once as skipped")

	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 60)
	perInvoice := map[string]int{}
	for _, c := range got {
		if c.Execution.WorkflowID == wf {
			perInvoice[c.Execution.SubjectID]++
		}
	}
	assert.Equal(t, map[string]int{inv.String(): 1, otherInv.String(): 1}, perInvoice, "one reminder per invoice and workflow")
}
