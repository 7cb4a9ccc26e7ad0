// Package cronupgrade_test applies dueflow's cron and monitoring migration
// (sql/20261202000500_replaced_jobs_and_views.sql) to the replaced system's
// database (internal/replaced) in the pg_cron database, as an in-place
// upgrade does (issue 9). A package of its own: its test binary has its own
// cluster, so the pg_cron database holds nothing but the fixture.
package cronupgrade_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	"github.com/dueflow/dueflow/internal/supacompat"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

const migration = "20261202000500_replaced_jobs_and_views.sql"

// dueflow's versions of the checks beside the replaced system's (their
// signatures; the bodies do not matter here): what the earlier migrations
// leave on such a database.
const dueflowVersions = `
create function public.check_automation_triggers(p_now timestamptz default now()) returns integer language sql as 'select 0';
create function public.check_overdue_invoices(p_now timestamptz default now()) returns integer language sql as 'select 0';
create function public.check_maintenance_reminders(p_now timestamptz default now()) returns integer language sql as 'select 0';
create function public.process_pending_automations(p_redispatch_after interval default interval '2 minutes',
  p_max_batches integer default 100) returns integer language sql as 'select 0';
create function public.update_automation_analytics(p_days integer default 2) returns integer language sql as 'select 0';
create function public.automation_cleanup(p_keep_cron_runs interval default interval '7 days',
  p_keep_executions interval default interval '90 days') returns integer language sql as 'select 0';`

// the replaced system's functions named like dueflow's checks
var checks = []string{"check_automation_triggers", "check_overdue_invoices", "check_maintenance_reminders",
	"process_pending_automations", "update_automation_analytics"}

// dueflow's jobs: name -> schedule|command
var dueflowJobs = map[string]string{
	"check-automation-triggers":   "* * * * *|select public.check_automation_triggers()",
	"check-overdue-invoices":      "* * * * *|select public.check_overdue_invoices()",
	"check-maintenance-reminders": "* * * * *|select public.check_maintenance_reminders()",
	"process-automations":         "* * * * *|select public.process_pending_automations()",
	"update-automation-analytics": "7 * * * *|select public.update_automation_analytics()",
	"cleanup-automation-logs":     "17 3 * * *|select public.automation_cleanup()",
}

func contains(notices []string, s string) bool {
	for _, n := range notices {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// On the replaced system's database (jobs paused but cleanup-automation-logs,
// which an operator runs): the zero-argument functions go, every call and
// job command resolves to dueflow's; the old jobs are replaced under their
// names with dueflow's commands, the three without a counterpart are
// unscheduled with a NOTICE naming each, pauses are kept; the monitoring
// views keep the fixture's columns and types and are service_role only; a
// second run changes nothing.
func TestUpgradeJobsAndViews(t *testing.T) {
	c := pgtest.Cluster(t)
	dsn := c.DSN(c.CronDatabase())
	db, err := pgxpool.New(bg, dsn)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	require.NoError(t, supacompat.Apply(bg, db))
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	require.NoError(t, replaced.ApplyCron(bg, db, replaced.CronOptions{Paused: true}))
	pgtest.Exec(t, db, `select cron.alter_job(jobid, active := true) from cron.job where jobname = 'cleanup-automation-logs'`)
	pgtest.Exec(t, db, dueflowVersions)

	for _, f := range checks {
		_, err := db.Exec(bg, fmt.Sprintf(`select %s()`, f))
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, f)
		require.Equal(t, "42725", pgErr.Code, "%s beside dueflow's version: %s", f, pgErr.Message)
	}
	cronTypes := pgtest.Columns(t, db, "automation_cron_status")
	healthTypes := pgtest.Columns(t, db, "automation_system_health")
	require.Len(t, cronTypes, 9)
	require.Len(t, healthTypes, 7)
	jobID := func(name string) int {
		return pgtest.Int(t, db, `select coalesce(max(jobid), 0) from cron.job where jobname = $1`, name)
	}
	ids := map[string]int{}
	for n := range dueflowJobs {
		ids[n] = jobID(n)
		require.NotZero(t, ids[n], n)
	}

	conn, notices := pgtest.NoticeConn(t, dsn)
	require.NoError(t, pgtest.ApplyMigration(bg, conn, migration))

	for _, f := range checks {
		assert.Zero(t, pgtest.Int(t, db, fmt.Sprintf(`select %s()`, f)), f)
		assert.True(t, contains(notices(), "dropped the replaced system's function "+f+"()"), f)
	}
	for _, n := range []string{"check-appointment-reminders", "seasonal-maintenance-reminders", "process-automation-queue"} {
		assert.Zero(t, jobID(n), n)
		assert.True(t, contains(notices(), "unscheduled pg_cron job "+n+" ("), "a NOTICE names %s", n)
	}
	assert.True(t, contains(notices(), "pg_cron job check-overdue-invoices replaced: now select public.check_overdue_invoices() at '* * * * *' (was another command at '0 9 * * *')"))
	assert.True(t, contains(notices(), "pg_cron job process-automations replaced: now select public.process_pending_automations() at '* * * * *' (was another command at '* * * * *')"))
	got := pgtest.JSON[map[string]string](t, db, `select json_object_agg(jobname, schedule || '|' || command) from cron.job`)
	assert.Equal(t, dueflowJobs, got, "exactly dueflow's jobs")
	for n, id := range ids {
		assert.Equal(t, id, jobID(n), "%s replaced under its name", n)
	}
	assert.Equal(t, "check-automation-triggers=false check-maintenance-reminders=false check-overdue-invoices=false "+
		"cleanup-automation-logs=true process-automations=false update-automation-analytics=false",
		pgtest.Text(t, db, `select string_agg(job_name || '=' || is_active, ' ' order by job_name) from automation_cron_status`),
		"pauses kept")
	// every job's command runs (rolled back)
	for n, sc := range dueflowJobs {
		tx, err := db.Begin(bg)
		require.NoError(t, err)
		_, err = tx.Exec(bg, strings.SplitN(sc, "|", 2)[1])
		assert.NoError(t, err, n)
		require.NoError(t, tx.Rollback(bg))
	}

	assert.Equal(t, append(cronTypes, "last_run_status text"), pgtest.Columns(t, db, "automation_cron_status"),
		"the production columns and types, then dueflow's")
	assert.Equal(t, healthTypes, pgtest.Columns(t, db, "automation_system_health"))
	assert.Equal(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'pending'`),
		pgtest.Int(t, db, `select pending_count from automation_system_health`))
	assert.Equal(t, 12, pgtest.Int(t, db, `select active_workflows from automation_system_health`))
	assert.Equal(t, "authenticated:automation_system_health,service_role:automation_cron_status,service_role:automation_system_health", pgtest.Text(t, db,
		`select string_agg(distinct grantee || ':' || table_name, ',' order by grantee || ':' || table_name)
		from information_schema.role_table_grants
		where table_name in ('automation_cron_status', 'automation_system_health') and grantee <> current_user`))

	jobs := pgtest.CronJobs(t, db)
	defs := pgtest.Text(t, db, `select pg_get_viewdef('automation_cron_status'::regclass) || pg_get_viewdef('automation_system_health'::regclass)`)
	funcs := pgtest.Text(t, db, `select string_agg(oid::regprocedure::text, ',' order by oid::regprocedure::text) from pg_proc
		where pronamespace = 'public'::regnamespace`)
	conn2, notices2 := pgtest.NoticeConn(t, dsn)
	require.NoError(t, pgtest.ApplyMigration(bg, conn2, migration))
	assert.Equal(t, jobs, pgtest.CronJobs(t, db), "a second run changes no job")
	assert.Equal(t, defs, pgtest.Text(t, db, `select pg_get_viewdef('automation_cron_status'::regclass) || pg_get_viewdef('automation_system_health'::regclass)`))
	assert.Equal(t, funcs, pgtest.Text(t, db, `select string_agg(oid::regprocedure::text, ',' order by oid::regprocedure::text) from pg_proc
		where pronamespace = 'public'::regnamespace`))
	assert.False(t, contains(notices2(), "unscheduled"))
	assert.False(t, contains(notices2(), "dropped"))
}
