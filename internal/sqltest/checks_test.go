package sqltest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// Bug 2: a workflow only ever triggers on its own organisation's rows.
func TestChecksAreTenantScoped(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	a := pgtest.CreateOrg(t, db, pgtest.Org{})
	b := pgtest.CreateOrg(t, db, pgtest.Org{})
	ca := pgtest.CreateClient(t, db, pgtest.Client{Org: a, Email: "a@a.test"})
	cb := pgtest.CreateClient(t, db, pgtest.Client{Org: b, Email: "b@b.test"})
	for i := 0; i < 3; i++ {
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: a, Client: ca, DueInDays: -8})
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: b, Client: cb, DueInDays: -8})
	}
	// jobs for maintenance, stale and appointment in both orgs
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at, updated_at)
		values ($1, $2, 'completed', now() - interval '8 months', now() - interval '8 months'),
		       ($3, $4, 'completed', now() - interval '8 months', now() - interval '8 months')`, a, ca, b, cb)
	wfA := map[string]uuid.UUID{}
	for _, tr := range []string{"invoice_overdue", "maintenance_due", "scheduled"} {
		cfg := ""
		if tr == "scheduled" {
			cfg = `{"frequency":"every_minute","audience":"clients"}`
		}
		wfA[tr] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: a, Trigger: tr, Config: cfg})
	}
	require.Equal(t, 3, pgtest.Int(t, db, `select check_overdue_invoices()`))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	pgtest.Int(t, db, `select check_automation_triggers(now())`) // creates the schedule
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers(now() + interval '2 minutes')`))

	// every execution is org A's, and so is everything it points to
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where organization_id <> $1`, a))
	assert.Zero(t, pgtest.Int(t, db, `
		select count(*) from automation_execution_logs e
		left join invoices i on e.subject_type = 'invoice' and i.id::text = e.subject_id
		left join jobs j on e.subject_type = 'job' and j.id::text = e.subject_id
		left join clients c on c.id::text = e.client_id
		where coalesce(i.organization_id, j.organization_id, e.organization_id) <> e.organization_id
		   or (e.client_id is not null and c.organization_id is distinct from e.organization_id)`))
	// the database refuses an execution whose workflow belongs to another org
	_, err := db.Exec(bg, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type)
		values ($1, $2, 'invoice-reminder', 'invoice_overdue', 'x', 'invoice')`, wfA["invoice_overdue"], b)
	require.Error(t, err)
	// and a job cannot point at another org's client
	_, err = db.Exec(bg, `insert into jobs (organization_id, client_id) values ($1, $2)`, a, cb)
	require.Error(t, err)
}

// Bug 3: two check runs at once on two connections create each reminder once.
func TestConcurrentChecksNoDuplicates(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	pgtest.Exec(t, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance)
		select $1, $2, 'N' || g, 'sent', current_date - (g % 40), 100, 100 from generate_series(1, 2000) g`, org, cl)
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	want := pgtest.Int(t, db, `select count(*) from invoices where due_date <= current_date - 1`)

	var wg sync.WaitGroup
	made := make([]int, 4)
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(bg, dsn)
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close(bg)
			assert.NoError(t, conn.QueryRow(bg, `select check_overdue_invoices()`).Scan(&made[i]))
		}()
	}
	wg.Wait()
	assert.Equal(t, want, made[0]+made[1]+made[2]+made[3], "created exactly once in total: %v", made)
	assert.Equal(t, want, pgtest.Int(t, db, `select count(*) from automation_execution_logs`))
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices()`), "a re-run creates nothing")
}

// The reminder sequence: one execution for the latest day reached, then the next ones.
func TestInvoiceReminderSequence(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	inv := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -20})
	notYet := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[30,1,14,7]}`})
	now := time.Now()
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))
	assert.Equal(t, "overdue", pgtest.Text(t, db, `select status from invoices where id = $1`, inv))
	assert.Equal(t, "sent", pgtest.Text(t, db, `select status from invoices where id = $1`, notYet))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and occurrence_key like '%:d14'`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now), "same day again: nothing")
	// 5 days later: day 25 of the first (no new step), day 5 of the second (its day-1 reminder)
	assert.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(5*24*time.Hour)))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1 and occurrence_key like '%:d1'`, notYet))
	// 10 days later: day 30 of the first, day 10 of the second (day 7)
	assert.Equal(t, 2, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(10*24*time.Hour)))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and occurrence_key like '%:d30'`, wf))
	assert.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1`, notYet))
}

// An invoice paid (or cancelled, or without balance) before its reminder runs is not reminded.
func TestInvoicePaidBeforeReminder(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, inv, execs := overdueSetup(t, db, 3, "10")
	require.Len(t, execs, 1)
	pgtest.Exec(t, db, `update invoices set status = 'paid', balance = 0 where id = $1`, inv)
	pgtest.MakeDue(t, db)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
	pgtest.SetEndpoint(t, db, "invoice-reminder", "http://127.0.0.1:9/x", 100)
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), "nothing dispatched")
	row := execution(t, db, execs[0])
	assert.Equal(t, "skipped", row.Status)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, "invoice_settled", *row.ErrorCode)
	assert.Equal(t, 1, pgtest.Int(t, db, `select skipped_count from automation_workflows where id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from net.http_request_queue`))

	// stop conditions: no new reminder for paid, cancelled, void, zero balance
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	for _, st := range []string{"paid", "cancelled", "void", "draft"} {
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, Status: st, DueInDays: -8})
	}
	zero := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, Status: "overdue", DueInDays: -8})
	pgtest.Exec(t, db, `update invoices set balance = 0 where id = $1`, zero)
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue"})
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices()`))
}

// Bug 5: each organisation gets its reminder at its own local send time.
func TestLocalSendWindow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	ny := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: "America/New_York"})
	syd := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: "Australia/Sydney"})
	for _, org := range []uuid.UUID{ny, syd} {
		cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -10})
		pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue"})
		pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"daily","hour":9,"minute":30}`})
	}
	// 03:00 UTC: 22:00 (or 23:00) the day before in New York, 14:00 in Sydney
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	pgtest.Exec(t, db, `update invoices set due_date = $1::date - 10`, now.Format("2006-01-02"))
	require.Equal(t, 2, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))

	local := func(org uuid.UUID, q string) time.Time {
		var at time.Time
		require.NoError(t, db.QueryRow(bg, q, org).Scan(&at))
		return at
	}
	nyLoc, _ := time.LoadLocation("America/New_York")
	sydLoc, _ := time.LoadLocation("Australia/Sydney")
	nyAt := local(ny, `select next_attempt_at from automation_execution_logs where organization_id = $1 and trigger_type = 'invoice_overdue'`).In(nyLoc)
	sydAt := local(syd, `select next_attempt_at from automation_execution_logs where organization_id = $1 and trigger_type = 'invoice_overdue'`).In(sydLoc)
	assert.Equal(t, time.Date(2026, 12, 1, 9, 0, 0, 0, nyLoc), nyAt, "NY: snapped to 09:00 local next morning")
	assert.True(t, sydAt.Equal(now), "Sydney: 14:00 local is inside the window, sent now (%s)", sydAt)

	// scheduled daily 09:30 local
	pgtest.Int(t, db, `select check_automation_triggers($1)`, now)
	nyRun := local(ny, `select next_run_at from automation_schedule_state where organization_id = $1`).In(nyLoc)
	sydRun := local(syd, `select next_run_at from automation_schedule_state where organization_id = $1`).In(sydLoc)
	assert.Equal(t, time.Date(2026, 12, 1, 9, 30, 0, 0, nyLoc), nyRun)
	assert.Equal(t, time.Date(2026, 12, 2, 9, 30, 0, 0, sydLoc), sydRun)
	// each run fires at its own instant
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers($1)`, nyRun))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where organization_id = $1 and trigger_type = 'scheduled'`, ny))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers($1)`, sydRun))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where organization_id = $1 and trigger_type = 'scheduled'`, syd))

	// a window crossing midnight (22:00-06:00)
	var snapped time.Time
	require.NoError(t, db.QueryRow(bg, `select automation_snap_to_window('2026-12-01 12:00Z', 'UTC', '22:00', '06:00')`).Scan(&snapped))
	assert.Equal(t, time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), snapped.UTC())
	require.NoError(t, db.QueryRow(bg, `select automation_snap_to_window('2026-12-01 02:00Z', 'UTC', '22:00', '06:00')`).Scan(&snapped))
	assert.Equal(t, time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), snapped.UTC())
}

// A missed scheduled run fires once, not once per missed occurrence.
func TestScheduledMissedRunFiresOnce(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: "Europe/Berlin"})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"hourly","minute":15}`})
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	require.Zero(t, pgtest.Int(t, db, `select check_automation_triggers($1)`, t0))
	// cron was down for 5 hours
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers($1)`, t0.Add(5*time.Hour)))
	require.Zero(t, pgtest.Int(t, db, `select check_automation_triggers($1)`, t0.Add(5*time.Hour+time.Minute)))
	var next time.Time
	require.NoError(t, db.QueryRow(bg, `select next_run_at from automation_schedule_state where workflow_id = $1`, wf).Scan(&next))
	assert.Equal(t, t0.Add(5*time.Hour+15*time.Minute), next.UTC())
	assert.Equal(t, "run-workflow", pgtest.Text(t, db, `select action from automation_execution_logs where workflow_id = $1`, wf))
	assert.Equal(t, "organization", pgtest.Text(t, db, `select subject_type from automation_execution_logs where workflow_id = $1`, wf))
	// weekly/monthly arithmetic
	var at time.Time
	require.NoError(t, db.QueryRow(bg, `select automation_next_scheduled_run('{"frequency":"weekly","day_of_week":1,"hour":8}', 'UTC', '2026-12-01 10:00Z')`).Scan(&at))
	assert.Equal(t, time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), at.UTC()) // next Monday
	require.NoError(t, db.QueryRow(bg, `select automation_next_scheduled_run('{"frequency":"monthly","day_of_month":31,"hour":8}', 'UTC', '2027-02-01 10:00Z')`).Scan(&at))
	assert.Equal(t, time.Date(2027, 2, 28, 8, 0, 0, 0, time.UTC), at.UTC()) // clamped to the month's last day
}

// Appointment reminders: N hours before, deadline = start, never after it.
func TestAppointmentReminder(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: "UTC", WindowStart: "09:00", WindowEnd: "17:00"})
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC) // after the window
	var soon, later, past uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start) values ($1, $2, 'scheduled', $3) returning id`, org, cl, now.Add(10*time.Hour)).Scan(&soon))
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start) values ($1, $2, 'scheduled', $3) returning id`, org, cl, now.Add(20*time.Hour)).Scan(&later))
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start) values ($1, $2, 'scheduled', $3) returning id`, org, cl, now.Add(-time.Hour)).Scan(&past))
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "appointment", Config: `{"hours_before":24}`})
	require.Equal(t, 2, pgtest.Int(t, db, `select check_maintenance_reminders($1)`, now))
	var next, deadline time.Time
	// 06:00 start: snapping to 09:00 would pass it, so the raw time is kept
	require.NoError(t, db.QueryRow(bg, `select next_attempt_at, deadline_at from automation_execution_logs where subject_id = $1`, soon).Scan(&next, &deadline))
	assert.Equal(t, now, next.UTC())
	assert.Equal(t, now.Add(10*time.Hour), deadline.UTC())
	// 16:00 start: snapped to 09:00 next morning, before the start
	require.NoError(t, db.QueryRow(bg, `select next_attempt_at, deadline_at from automation_execution_logs where subject_id = $1`, later).Scan(&next, &deadline))
	assert.Equal(t, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), next.UTC())
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1`, past))
	assert.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders($1)`, now))
}

// Maintenance (months since the last completed service) and stale jobs.
func TestMaintenanceAndStaleJobs(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	due := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "due@c.test"})
	recent := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "recent@c.test"})
	booked := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "booked@c.test"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, job_type, status, completed_at) values
		($1, $2, 'hvac', 'completed', now() - interval '14 months'),
		($1, $2, 'hvac', 'completed', now() - interval '7 months'),
		($1, $3, 'hvac', 'completed', now() - interval '2 months'),
		($1, $4, 'hvac', 'completed', now() - interval '9 months')`, org, due, recent, booked)
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, scheduled_start, updated_at) values
		($1, $2, 'scheduled', now() + interval '3 days', now() - interval '10 days')`, org, booked)
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6,"job_type":"hvac"}`})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	assert.Equal(t, due.String(), pgtest.Text(t, db, `select client_id::text from automation_execution_logs where workflow_id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`))

	stale := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job", Config: `{"days_inactive":7}`})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and subject_type = 'job'`, stale))
	assert.Zero(t, pgtest.Int(t, db, `select check_automation_triggers()`))
	// activity on the job, then inactivity again: a new occurrence
	pgtest.Exec(t, db, `update jobs set updated_at = now() - interval '8 days' where status = 'scheduled'`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
}

func strField(t testing.TB, db pgtest.DB, q string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, db.QueryRow(bg, q, args...).Scan(&s))
	return s
}

// The steady-state invoice check (watermark per workflow) still sees invoices
// that reach a reminder day, new or reopened invoices, and configuration changes.
func TestInvoiceCheckWatermark(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	now := time.Now()
	require.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))

	// created already overdue after the last run: picked up (changed path)
	inv10 := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -10})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1 and occurrence_key like '%:d7'`, inv10))

	// reopened: a paid invoice becomes overdue again
	paid := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, Status: "paid", DueInDays: -20})
	require.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))
	pgtest.Exec(t, db, `update invoices set status = 'overdue' where id = $1`, paid)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))

	// untouched for a month, crosses day 7 tomorrow (threshold path)
	var quiet uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance, updated_at)
		values ($1, $2, 'Q-1', 'overdue', current_date - 6, 10, 10, now() - interval '30 days') returning id`, org, cl).Scan(&quiet))
	require.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(24*time.Hour)))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1 and occurrence_key like '%:d7'`, quiet))

	// a new configuration scans once in full
	pgtest.Exec(t, db, `update automation_workflows set trigger_config = '{"days_after_due":[1,10]}' where id = $1`, wf)
	// (occurrence keys carry the reminder day: each open invoice gets the latest day of the new sequence once)
	assert.Equal(t, 3, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(24*time.Hour)))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where subject_id = $1 and occurrence_key like '%:d10'`, inv10))
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(24*time.Hour)))
	// marking overdue is not app activity: updated_at kept
	sent := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -3})
	pgtest.Exec(t, db, `update invoices set updated_at = now() - interval '2 days' where id = $1`, sent)
	pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(24*time.Hour))
	assert.Equal(t, "overdue", pgtest.Text(t, db, `select status from invoices where id = $1`, sent))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from invoices where id = $1 and updated_at < now() - interval '1 day'`, sent))
}

// Every check sets last_triggered_at (to its p_now) on the workflows it
// created executions for, and only on those.
func TestChecksRecordLastTriggered(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	serviced := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "s@client.test"})
	booked := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "b@client.test"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: serviced, DueInDays: -3})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at, updated_at)
		values ($1, $2, 'completed', now() - interval '8 months', now() - interval '8 months')`, org, serviced)
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, scheduled_start, updated_at)
		values ($1, $2, 'scheduled', now() + interval '20 hours', now() - interval '8 days')`, org, booked)
	wf := map[string]uuid.UUID{}
	for _, tr := range []string{"invoice_overdue", "maintenance_due", "appointment", "stale_job", "scheduled"} {
		cfg := ""
		if tr == "scheduled" {
			cfg = `{"frequency":"every_minute"}`
		}
		wf[tr] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: tr, Config: cfg})
	}
	idle := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: pgtest.AllDayOrg(t, db), Trigger: "invoice_overdue"})

	at := time.Now().Truncate(time.Second)
	later := at.Add(2 * time.Minute)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, at))
	require.Equal(t, 2, pgtest.Int(t, db, `select check_maintenance_reminders($1)`, at))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers($1)`, at))    // stale job; creates the schedule
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers($1)`, later)) // the scheduled run; the stale job exists already

	lastTriggered := func(id uuid.UUID) *time.Time {
		var ts *time.Time
		require.NoError(t, db.QueryRow(bg, `select last_triggered_at from automation_workflows where id = $1`, id).Scan(&ts))
		return ts
	}
	for tr, id := range wf {
		want := at
		if tr == "scheduled" {
			want = later
		}
		if assert.NotNil(t, lastTriggered(id), tr) {
			assert.True(t, want.Equal(*lastTriggered(id)), "%s: %v, want %v", tr, *lastTriggered(id), want)
		}
	}
	assert.Nil(t, lastTriggered(idle), "a workflow with nothing to do is not touched")
}
