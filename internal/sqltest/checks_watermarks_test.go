package sqltest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// The rows of these tests carry an updated_at an hour or more in the past,
// so that a run finds them only by the path under test (due moment passed,
// changed since the last run, full pass), not as rows just written.

// service inserts a completed job of the client, completed at done, last
// changed an hour before the test, and returns its id.
func service(t testing.TB, db pgtest.DB, org, client uuid.UUID, jobType string, done time.Time) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, job_type, status, completed_at, updated_at)
		values ($1, $2, $3, 'completed', $4, now() - interval '1 hour') returning id`, org, client, jobType, done).Scan(&id))
	return id
}

// checkedAt is the last run the checks count for the workflow (its own
// state row or its check type's mark, whichever is later).
func checkedAt(t testing.TB, db pgtest.DB, wf uuid.UUID) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, db.QueryRow(bg, `select automation_check_watermark($1)`, wf).Scan(&at))
	return at
}

// dailyPassOffset is the organisation's daily pass time after its local midnight.
func dailyPassOffset(t testing.TB, db pgtest.DB, org uuid.UUID) time.Duration {
	t.Helper()
	return time.Duration(pgtest.Int(t, db, `select extract(epoch from automation_daily_pass_offset($1))::int`, org)) * time.Second
}

// nextDailyPass is the moment of the workflow's next daily full pass: the
// first organisation-local midnight + automation_daily_pass_offset after its
// state row was last written.
func nextDailyPass(t testing.TB, db pgtest.DB, wf uuid.UUID) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, db.QueryRow(bg, `select (((s.checked_at - x.off) at time zone o.timezone)::date + 1)::timestamp at time zone o.timezone + x.off
		from automation_check_state s join organizations o on o.id = s.organization_id
		cross join lateral (select automation_daily_pass_offset(o.id) as off) x
		where s.workflow_id = $1`, wf).Scan(&at))
	return at
}

// A service becomes due by the passage of time alone: the run whose window
// (last run, now] holds its due moment (completed_at + months, in UTC)
// reminds it, once; also when the months end on a shorter month (Aug 31 +
// 6 months = Feb 28).
func TestMaintenanceDueMomentWindow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	a := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "a@client.test"})
	b := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "b@client.test"})
	monthEnd := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "m@client.test"})
	due := time.Date(2027, 2, 10, 12, 0, 0, 0, time.UTC)
	jobA := service(t, db, org, a, "service", due.AddDate(0, -6, 0))
	service(t, db, org, b, "service", due.AddDate(0, -6, 0).Add(time.Minute))
	service(t, db, org, monthEnd, "service", time.Date(2026, 8, 31, 12, 0, 0, 0, time.UTC))
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})

	run := func(at time.Time) int {
		return pgtest.Int(t, db, `select check_maintenance_reminders($1)`, at)
	}
	require.Zero(t, run(due.Add(-time.Hour)), "the first run (a full scan): nothing due yet")
	require.Zero(t, run(due.Add(-time.Second)))
	require.Equal(t, 1, run(due), "the due moment itself is in the window")
	assert.Equal(t, fmt.Sprintf("maintenance:%s:%s", a, jobA),
		pgtest.Text(t, db, `select occurrence_key from automation_execution_logs where workflow_id = $1`, wf))
	require.Zero(t, run(due), "the same moment again: nothing")
	require.Zero(t, run(due.Add(30*time.Second)))
	require.Equal(t, 1, run(due.Add(time.Minute)), "b, a minute later")
	assert.True(t, due.Add(time.Minute).Equal(checkedAt(t, db, wf)))

	feb28 := time.Date(2027, 2, 28, 12, 0, 0, 0, time.UTC)
	require.Zero(t, run(feb28.Add(-time.Hour)), "the first run of the day (a full scan): not yet")
	require.Zero(t, run(feb28.Add(-time.Second)))
	require.Equal(t, 1, run(feb28), "Aug 31 + 6 months = Feb 28, found by the window")
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, wf))
}

// Jobs changed since the last run: a service edited after completion, a job
// type corrected, a booking cancelled, a service completed late are seen by
// the next run, not the next day.
func TestMaintenanceSeesChangedJobs(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	edited := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "e@client.test"})
	retyped := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "r@client.test"})
	booked := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "b@client.test"})
	late := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "l@client.test"})
	now := time.Now()
	editedJob := service(t, db, org, edited, "hvac", now.AddDate(0, -2, 0))
	retypedJob := service(t, db, org, retyped, "plumbing", now.AddDate(0, -9, 0))
	service(t, db, org, booked, "hvac", now.AddDate(0, -9, 0))
	var visit uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, scheduled_start, updated_at)
		values ($1, $2, 'scheduled', now() + interval '3 days', now() - interval '1 hour') returning id`, org, booked).Scan(&visit))
	var lateJob uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, job_type, status, scheduled_start, updated_at)
		values ($1, $2, 'hvac', 'in_progress', now() - interval '8 months', now() - interval '1 hour') returning id`, org, late).Scan(&lateJob))
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6,"job_type":"hvac"}`})
	require.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`), "nothing due: recent, other type, booked, open")
	require.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`))

	// the office corrects the data (the jobs' updated_at moves on)
	pgtest.Exec(t, db, `update jobs set completed_at = now() - interval '7 months' where id = $1`, editedJob)
	pgtest.Exec(t, db, `update jobs set job_type = 'hvac' where id = $1`, retypedJob)
	pgtest.Exec(t, db, `update jobs set status = 'cancelled' where id = $1`, visit)
	pgtest.Exec(t, db, `update jobs set status = 'completed', completed_at = now() - interval '8 months' where id = $1`, lateJob)
	require.Equal(t, 4, pgtest.Int(t, db, `select check_maintenance_reminders()`))
	for _, c := range []uuid.UUID{edited, retyped, booked, late} {
		assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and client_id = $2`, wf, c.String()))
	}
	require.Zero(t, pgtest.Int(t, db, `select check_maintenance_reminders()`))
}

// A workflow created late, or whose configuration changes, reads all its
// clients once; so does the first run after the organisation's zone
// changed, and the first run of each organisation-local day: they find
// what left no trace in updated_at (a row written with an old updated_at,
// a deleted last service).
func TestMaintenanceFullPasses(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: "Asia/Tokyo", WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	old := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "o@client.test"})
	service(t, db, org, old, "service", time.Now().AddDate(0, -8, 0))
	// these runs stay inside one day of daily passes: 10 hours after the
	// organisation's pass time (Tokyo's midnight + its offset)
	day := time.Date(2027, 3, 9, 15, 0, 0, 0, time.UTC).Add(dailyPassOffset(t, db, org) + 10*time.Hour)
	run := func(at time.Time) int {
		return pgtest.Int(t, db, `select check_maintenance_reminders($1)`, at)
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":12}`})
	require.Zero(t, run(day))
	// the configuration changes: a full pass at once, on the same day
	pgtest.Exec(t, db, `update automation_workflows set trigger_config = '{"months_after_service":6}' where id = $1`, wf)
	require.Equal(t, 1, run(day.Add(time.Minute)), "a changed configuration reads every client")

	// a service written with an old updated_at (an import) and a deleted
	// last service: not seen in steady state ...
	imported := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "i@client.test"})
	deleted := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "d@client.test"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at, updated_at)
		values ($1, $2, 'completed', $3, $3)`, org, imported, day.AddDate(0, -7, 0))
	service(t, db, org, deleted, "service", day.AddDate(0, -9, 0))
	last := service(t, db, org, deleted, "service", day.AddDate(0, -1, 0))
	require.Zero(t, run(day.Add(2*time.Minute)))
	pgtest.Exec(t, db, `delete from jobs where id = $1`, last)
	require.Zero(t, run(day.Add(3*time.Minute)), "steady state: neither is seen")
	// ... a zone change reads every client once
	pgtest.Exec(t, db, `update organizations set timezone = 'Asia/Seoul' where id = $1`, org)
	require.Equal(t, 2, run(day.Add(4*time.Minute)), "the zone changed: a full pass")
	require.Zero(t, run(day.Add(5*time.Minute)))

	// and so does the first run of the next local day (Seoul: 15:00 UTC)
	other := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "x@client.test"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, completed_at, updated_at)
		values ($1, $2, 'completed', $3, $3)`, org, other, day.AddDate(0, -7, 0))
	// (at the organisation's time of the local day: Seoul's midnight + its offset)
	pass := nextDailyPass(t, db, wf)
	require.Zero(t, run(pass.Add(-time.Second)), "a second before the daily pass: the same day")
	require.Equal(t, 1, run(pass), "the daily pass")
}

// Stale jobs: the run whose window holds a job's last activity +
// days_inactive reminds it, once; the jobs of pending reminders are read
// again each run; a job moved into the workflow's statuses with an old
// updated_at is found by the next day's pass.
func TestStaleJobDueMomentWindow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	// (12 hours away from the organisation's daily pass: only the paths under test find a job)
	due := time.Date(2027, 2, 10, 0, 0, 0, 0, time.UTC).Add(dailyPassOffset(t, db, org) + 12*time.Hour)
	var job, held uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, updated_at)
		values ($1, $2, 'in_progress', $3) returning id`, org, cl, due.AddDate(0, 0, -7)).Scan(&job))
	require.NoError(t, db.QueryRow(bg, `insert into jobs (organization_id, client_id, status, updated_at)
		values ($1, $2, 'completed', $3) returning id`, org, cl, due.AddDate(0, 0, -30)).Scan(&held))
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job", Config: `{"days_inactive":7}`})
	run := func(at time.Time) int {
		return pgtest.Int(t, db, `select check_automation_triggers($1)`, at)
	}
	require.Zero(t, run(due.Add(-time.Hour)), "the first run (a full scan): not stale yet")
	require.Zero(t, run(due.Add(-time.Second)))
	require.Equal(t, 1, run(due), "last activity + 7 days = now")
	require.Zero(t, run(due))
	require.Zero(t, run(due.Add(time.Minute)))
	assert.True(t, due.Add(time.Minute).Equal(checkedAt(t, db, wf)))

	// activity recorded with another, older time while the reminder is
	// pending (outside every window): the job of a pending reminder is read
	// again, a new occurrence at once
	pgtest.Exec(t, db, `update jobs set updated_at = $2 where id = $1`, job, due.AddDate(0, 0, -7).Add(-30*time.Minute))
	require.Equal(t, 1, run(due.Add(2*time.Minute)))
	assert.Equal(t, "skipped superseded, pending -", pgtest.Text(t, db, `select string_agg(status || ' ' || coalesce(error_code, '-'), ', ' order by created_at)
		from automation_execution_logs where workflow_id = $1 and subject_id = $2`, wf, job.String()))

	// reopened with an old updated_at (no reminder pending): the next local day
	pgtest.Exec(t, db, `update jobs set status = 'scheduled', updated_at = $2 where id = $1`, held, due.AddDate(0, 0, -30).Add(time.Second))
	require.Zero(t, run(due.Add(3*time.Minute)))
	require.Zero(t, run(nextDailyPass(t, db, wf).Add(-time.Second)), "not before the daily pass")
	require.Equal(t, 1, run(nextDailyPass(t, db, wf)), "the daily pass")
}

// A run that fails (here: an organisation's rows break the source view)
// leaves that organisation's watermark where it was; once repaired, the
// next run reminds what fell due meanwhile. The other organisation's
// watermark moves on.
func TestFailedCheckKeepsWatermark(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	good := pgtest.AllDayOrg(t, db)
	faulty := pgtest.AllDayOrg(t, db)
	due := time.Date(2027, 2, 10, 12, 0, 0, 0, time.UTC)
	wf := map[uuid.UUID]uuid.UUID{}
	for _, org := range []uuid.UUID{good, faulty} {
		cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
		service(t, db, org, cl, "service", due.AddDate(0, -6, 0))
		wf[org] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})
	}
	run := func(at time.Time) int {
		return pgtest.Int(t, db, `select check_maintenance_reminders($1)`, at)
	}
	t0 := due.Add(-time.Hour)
	require.Zero(t, run(t0))

	view := `create or replace view automation_src_jobs with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, title, job_type, status, scheduled_start,
		       %s as completed_at, address, updated_at
		from jobs`
	pgtest.Exec(t, db, fmt.Sprintf(view, fmt.Sprintf(`(case when organization_id = '%s' then 'not a time' else completed_at::text end)::timestamptz`, faulty)))
	require.Equal(t, 1, run(due.Add(time.Minute)), "the healthy organisation's reminder")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_check_problems where code = 'check_error' and organization_id = $1`, faulty))
	assert.True(t, t0.Equal(checkedAt(t, db, wf[faulty])), "the failed organisation's watermark did not move")
	assert.True(t, due.Add(time.Minute).Equal(checkedAt(t, db, wf[good])))

	pgtest.Exec(t, db, fmt.Sprintf(view, "completed_at"))
	require.Equal(t, 1, run(due.Add(2*time.Minute)), "repaired: what fell due meanwhile")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, wf[faulty]))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_check_problems`))
}
