package sqltest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

const replacedJobsFile = "20261202000500_replaced_jobs_and_views.sql"

// The replaced system's production columns of its monitoring views (issue 9),
// with their types; automation_cron_status adds last_run_status after them.
var (
	cronStatusColumns = []string{"job_name", "schedule", "is_active", "last_run", "last_run_ended", "total_runs",
		"successful_runs", "failed_runs", "success_rate", "last_run_status"}
	cronStatusTypes = []string{"job_name name", "schedule text", "is_active boolean", "last_run timestamp with time zone",
		"last_run_ended timestamp with time zone", "total_runs bigint", "successful_runs bigint", "failed_runs bigint",
		"success_rate numeric", "last_run_status text"}
	systemHealthTypes = []string{"pending_count bigint", "running_count bigint", "completed_last_hour bigint",
		"failed_last_hour bigint", "last_success timestamp with time zone", "last_failure timestamp with time zone",
		"active_workflows bigint"}
)

// The replaced system's jobs that dueflow has no counterpart for, and
// dueflow's earlier name of the cleanup job: unscheduled by the migration.
var retiredJobs = []string{"check-appointment-reminders", "cleanup-automation-history", "process-automation-queue",
	"seasonal-maintenance-reminders"}

// hasNotice reports whether one of the notices contains s.
func hasNotice(notices []string, s string) bool {
	for _, n := range notices {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// dueflowNotices are the notices dueflow's migrations raise (for failure messages).
func dueflowNotices(notices []string) []string {
	var out []string
	for _, n := range notices {
		if strings.HasPrefix(n, "dueflow: ") {
			out = append(out, n)
		}
	}
	return out
}

// Issue 9: an install of dueflow from before (cleanup job under its earlier
// name, status view with the earlier columns) that also carries the replaced
// system's jobs without a counterpart. Applying the migrations replaces the
// jobs under their names (same job ids), carries the operator's pauses over,
// unschedules the retired jobs with a NOTICE naming each, recreates the view
// with the production columns, and a second run changes nothing.
//
// Not parallel: it pauses jobs of the shared pg_cron database (the parallel
// tests find them active again: cleanup).
func TestCronJobsUnderStableNames(t *testing.T) {
	cronDB, dsn := pgtest.CronDB(t)
	t.Cleanup(func() {
		_, _ = cronDB.Exec(bg, `select cron.alter_job(jobid, active := true) from cron.job where jobname = any($1)`, jobNames)
		_, _ = cronDB.Exec(bg, `select cron.unschedule(jobid) from cron.job where jobname = any($1)`, retiredJobs)
	})
	before := map[string]int{}
	for _, n := range jobNames {
		if n != "cleanup-automation-logs" {
			before[n] = pgtest.Int(t, cronDB, `select jobid from cron.job where jobname = $1`, n)
		}
	}

	tx, err := cronDB.Begin(bg)
	require.NoError(t, err)
	for _, q := range []string{
		`select cron.unschedule('cleanup-automation-logs')`,
		`select cron.schedule('cleanup-automation-history', '17 3 * * *', 'select public.automation_cleanup()')`,
		`select cron.schedule('check-appointment-reminders', '0 * * * *', 'select 1')`,
		`select cron.schedule('seasonal-maintenance-reminders', '0 9 1 3,6,9,12 *', 'select 1')`,
		`select cron.schedule('process-automation-queue', '*/5 * * * *', 'select 1')`,
		// paused by an operator (and the retired ones, so that they never fire here)
		`select cron.alter_job(jobid, active := false) from cron.job where jobname in ('update-automation-analytics',
			'cleanup-automation-history', 'check-appointment-reminders', 'seasonal-maintenance-reminders', 'process-automation-queue')`,
		`drop view automation_cron_status`,
		`create view automation_cron_status as select j.jobname::text as job_name, j.schedule, j.active from cron.job j`,
	} {
		_, err := tx.Exec(bg, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, tx.Commit(bg))

	conn, notices := pgtest.NoticeConn(t, dsn)
	require.NoError(t, pgtest.Migrate(bg, conn))

	for _, n := range retiredJobs {
		assert.Zero(t, pgtest.Int(t, cronDB, `select count(*) from cron.job where jobname = $1`, n), n)
		assert.True(t, hasNotice(notices(), "unscheduled pg_cron job "+n+" ("), "a NOTICE names %s: %q", n, dueflowNotices(notices()))
	}
	want := pgtest.JSON[map[string]string](t, cronDB, `select json_object_agg(job_name, schedule || '|' || command) from automation_cron_jobs()`)
	assert.Len(t, want, len(jobNames))
	for _, n := range jobNames {
		assert.Equal(t, want[n], pgtest.Text(t, cronDB, `select string_agg(schedule || '|' || command, ',') from cron.job where jobname = $1`, n), n)
		if id, ok := before[n]; ok {
			assert.Equal(t, id, pgtest.Int(t, cronDB, `select jobid from cron.job where jobname = $1`, n), "%s replaced under its name", n)
		}
	}
	active := func() string {
		return pgtest.Text(t, cronDB, `select string_agg(job_name || '=' || is_active, ' ' order by job_name) from automation_cron_status`)
	}
	assert.Equal(t, "check-automation-triggers=true check-maintenance-reminders=true check-overdue-invoices=true "+
		"cleanup-automation-logs=false process-automations=true update-automation-analytics=false", active(),
		"the operator's pauses are kept (the cleanup job's under its new name)")
	assert.True(t, hasNotice(notices(), "pg_cron job update-automation-analytics stays paused"), "%q", dueflowNotices(notices()))
	assert.True(t, hasNotice(notices(), "view public.automation_cron_status recreated"), "%q", dueflowNotices(notices()))
	assert.Equal(t, cronStatusTypes, pgtest.Columns(t, cronDB, "automation_cron_status"))

	jobs := pgtest.CronJobs(t, cronDB)
	view := pgtest.Text(t, cronDB, `select pg_get_viewdef('automation_cron_status'::regclass)`)
	conn2, notices2 := pgtest.NoticeConn(t, dsn)
	require.NoError(t, pgtest.Migrate(bg, conn2))
	assert.Equal(t, jobs, pgtest.CronJobs(t, cronDB), "a second run changes no job")
	assert.Equal(t, view, pgtest.Text(t, cronDB, `select pg_get_viewdef('automation_cron_status'::regclass)`))
	assert.False(t, hasNotice(notices2(), "unscheduled"), "%q", dueflowNotices(notices2()))
	assert.False(t, hasNotice(notices2(), "recreated"), "%q", dueflowNotices(notices2()))
	assert.Equal(t, "check-automation-triggers=true check-maintenance-reminders=true check-overdue-invoices=true "+
		"cleanup-automation-logs=false process-automations=true update-automation-analytics=false", active())
}

// Issue 9: the replaced system has zero-argument functions with the names of
// dueflow's checks. Every migration applies beside them, and afterwards a
// call without arguments (every cron command) is no longer ambiguous.
func TestReplacedZeroArgumentFunctionsDropped(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	names := []string{"check_automation_triggers", "check_overdue_invoices", "check_maintenance_reminders",
		"process_pending_automations", "update_automation_analytics"}
	for _, n := range names {
		pgtest.Exec(t, db, fmt.Sprintf(`create function public.%s() returns void language sql as 'select 1'`, n))
		_, err := db.Exec(bg, fmt.Sprintf(`select %s()`, n))
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, n)
		require.Equal(t, "42725", pgErr.Code, "%s: %s", n, pgErr.Message)
	}
	require.NoError(t, pgtest.Migrate(bg, db), "every migration applies beside the zero-argument functions")
	for _, n := range names {
		assert.Zero(t, pgtest.Int(t, db, `select count(*) from pg_proc where proname = $1 and pronargs = 0`, n), n)
	}
	cmds := pgtest.JSON[[]string](t, db, `select json_agg(command order by job_name) from automation_cron_jobs()`)
	require.Len(t, cmds, len(jobNames))
	for _, c := range cmds {
		_, err := db.Exec(bg, c)
		assert.NoError(t, err, c)
	}
}

// A status view with other columns is recreated, but never dropped from
// under an object that depends on it: the migration stops, naming it, and
// changes nothing.
func TestCronStatusRecreateRefusedWithDependents(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	pgtest.Exec(t, db, `drop view automation_cron_status;
		create view automation_cron_status as select 'x'::text as job_name, true as active;
		create view my_cron_report as select job_name from automation_cron_status`)
	err := pgtest.ApplyMigration(bg, db, replacedJobsFile)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "2BP01", pgErr.Code)
	assert.Contains(t, pgErr.Message, "view public.automation_cron_status has to be recreated")
	assert.Contains(t, pgErr.Message, "my_cron_report")
	assert.Equal(t, []string{"job_name text", "active boolean"}, pgtest.Columns(t, db, "automation_cron_status"))

	pgtest.Exec(t, db, `drop view my_cron_report`)
	require.NoError(t, pgtest.ApplyMigration(bg, db, replacedJobsFile))
	assert.Equal(t, cronStatusTypes, pgtest.Columns(t, db, "automation_cron_status"))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from information_schema.role_table_grants
		where table_name = 'automation_cron_status' and grantee in ('anon', 'authenticated', 'PUBLIC')`), "grants set again")
}

// automation_system_health: the replaced system's columns over dueflow's tables.
func TestSystemHealth(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	assert.Equal(t, systemHealthTypes, pgtest.Columns(t, db, "automation_system_health"))
	_, wf, execs := pgtest.OverdueInvoices(t, db, 5)
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: pgtest.AllDayOrg(t, db), Trigger: "scheduled", Config: `{"frequency":"daily","hour":9}`})
	pgtest.Exec(t, db, `update automation_workflows set is_active = false where id = $1`, wf)
	var done time.Time
	require.NoError(t, db.QueryRow(bg, `update automation_execution_logs set status = 'completed', completed_at = now() - interval '10 minutes'
		where id = $1 returning completed_at`, execs[0]).Scan(&done))
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'completed', completed_at = now() - interval '2 hours' where id = $1`, execs[1])
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'failed', completed_at = now() - interval '3 hours' where id = $1`, execs[2])
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'running', lease_token = gen_random_uuid(),
		lease_expires_at = now() + interval '5 minutes' where id = $1`, execs[3])

	var pending, running, completed, failed, active int
	var lastSuccess, lastFailure time.Time
	require.NoError(t, db.QueryRow(bg, `select pending_count, running_count, completed_last_hour, failed_last_hour,
			last_success, last_failure, active_workflows from automation_system_health`).
		Scan(&pending, &running, &completed, &failed, &lastSuccess, &lastFailure, &active))
	assert.Equal(t, []int{1, 1, 1, 0, 1}, []int{pending, running, completed, failed, active})
	assert.True(t, lastSuccess.Equal(done), "last success %s, want %s", lastSuccess, done)
	assert.True(t, lastFailure.Before(done.Add(-2*time.Hour)), "last failure %s", lastFailure)

	// the replaced system's app reads it as a signed-in member: its own
	// organisation's rows only (RLS), never another tenant's
	org, _, _ := pgtest.OverdueInvoices(t, db, 2)
	member := uuid.New()
	pgtest.Exec(t, db, `insert into organization_members (organization_id, user_id) values ($1, $2)`, org, member)
	pgtest.AsUser(t, db, member.String(), func(tx pgx.Tx) {
		var p, a int
		require.NoError(t, tx.QueryRow(bg, `select pending_count, active_workflows from automation_system_health`).Scan(&p, &a))
		assert.Equal(t, []int{2, 1}, []int{p, a}, "the member's organisation only")
	})
}
