package sqltest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

var jobNames = []string{"check-automation-triggers", "check-overdue-invoices", "check-maintenance-reminders",
	"process-automations", "update-automation-analytics", "cleanup-automation-logs"}

// rows runs a query and returns its rows as maps (for the verbatim monitoring queries).
func rows(t testing.TB, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, q string) []map[string]any {
	t.Helper()
	r, err := db.Query(bg, q)
	require.NoError(t, err, q)
	out, err := pgx.CollectRows(r, pgx.RowToMap)
	require.NoError(t, err, q)
	return out
}

// A pg_cron job really fires and dispatches through the pg_net SQL API; the
// original system's monitoring queries run verbatim and return meaningful rows.
// Waits for pg_cron's next minute boundary (up to about 90 s).
func TestCronFiresAndMonitoring(t *testing.T) {
	t.Parallel()
	cronDB, _ := pgtest.CronDB(t)

	// jobs scheduled once, even when the migrations run again
	require.NoError(t, pgtest.Migrate(bg, cronDB))
	for _, name := range jobNames {
		assert.Equal(t, 1, pgtest.Int(t, cronDB, `select count(*) from cron.job where jobname = $1`, name), name)
	}
	assert.Equal(t, "* * * * *", pgtest.Text(t, cronDB, `select schedule from cron.job where jobname = 'process-automations'`))
	assert.Equal(t, "7 * * * *", pgtest.Text(t, cronDB, `select schedule from cron.job where jobname = 'update-automation-analytics'`))

	// some work in the cron database, for the monitoring queries
	_, wf, _, execs := overdueSetup(t, cronDB, 5, "42")
	require.Len(t, execs, 1)
	got := pgtest.ClaimDue(t, cronDB, automation.ActionInvoiceReminder, execs, 60)
	pgtest.Report(t, cronDB, automation.Outcome{ExecutionID: execs[0], LeaseToken: got[0].Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1})

	// an isolated database with a due execution; pg_cron (living in the cron
	// database) runs process_pending_automations() in it
	db, _ := pgtest.NewDB(t)
	_, _, _, due := overdueSetup(t, db, 2, "10")
	pgtest.MakeDue(t, db)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:54321/functions/v1/invoice-reminder", 100)
	dbname := pgtest.Text(t, db, `select current_database()`)
	job := "dueflow-test-" + dbname
	pgtest.Exec(t, cronDB, `select cron.schedule_in_database($1, '* * * * *', 'select public.process_pending_automations()', $2)`, job, dbname)
	t.Cleanup(func() { _, _ = cronDB.Exec(context.Background(), `select cron.unschedule($1)`, job) })

	deadline := time.Now().Add(100 * time.Second)
	for pgtest.Int(t, db, `select count(*) from net.http_request_queue`) == 0 {
		if time.Now().After(deadline) {
			var details []map[string]any = rows(t, cronDB, `select * from cron.job_run_details order by start_time desc limit 5`)
			t.Fatalf("pg_cron did not dispatch within 100 s; recent runs: %v", details)
		}
		time.Sleep(time.Second)
	}
	req := queuedRequests(t, db)[0]
	assert.Contains(t, string(req.Body), due[0].String())
	assert.NotEmpty(t, req.Headers["webhook-signature"])
	assert.Equal(t, 1, pgtest.Int(t, db, `select dispatch_count from automation_execution_logs where id = $1`, due[0]))

	// wait until the cron database's own every-minute jobs have finished a run
	for pgtest.Int(t, cronDB, `select count(*) from cron.job_run_details d join cron.job j using (jobid)
		where j.jobname = 'process-automations' and d.end_time is not null`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("process-automations never finished: %v", rows(t, cronDB, `select * from cron.job_run_details order by start_time desc limit 10`))
		}
		time.Sleep(time.Second)
	}
	assert.Equal(t, "succeeded", pgtest.Text(t, cronDB, `select d.status from cron.job_run_details d join cron.job j using (jobid)
		where j.jobname = $1 order by d.start_time desc limit 1`, job))

	// the monitoring queries, verbatim
	status := rows(t, cronDB, `SELECT * FROM automation_cron_status;`)
	require.Len(t, status, len(jobNames))
	byName := map[string]map[string]any{}
	for _, r := range status {
		byName[r["job_name"].(string)] = r
		assert.Len(t, r, len(cronStatusColumns))
		for _, col := range cronStatusColumns {
			assert.Contains(t, r, col)
		}
	}
	p := byName["process-automations"]
	require.NotNil(t, p)
	assert.Equal(t, true, p["is_active"])
	assert.GreaterOrEqual(t, p["total_runs"], int64(1))
	assert.GreaterOrEqual(t, p["successful_runs"], int64(1))
	assert.NotNil(t, p["last_run"])
	assert.NotNil(t, p["last_run_ended"])
	assert.NotNil(t, p["success_rate"])
	assert.NotNil(t, p["last_run_status"])

	logs := rows(t, cronDB, `SELECT * FROM automation_execution_logs ORDER BY created_at DESC LIMIT 20;`)
	require.NotEmpty(t, logs)
	details := rows(t, cronDB, `SELECT * FROM cron.job_run_details ORDER BY start_time DESC LIMIT 10;`)
	require.NotEmpty(t, details)
	analytics := rows(t, cronDB, `SELECT * FROM automation_analytics WHERE date = CURRENT_DATE;`)
	found := false
	for _, a := range analytics {
		if fmt.Sprint(a["workflow_id"]) == fmt.Sprint(wfBytes(wf)) && a["success_count"] == int32(1) {
			found = true
		}
	}
	assert.True(t, found, "today's analytics has the completed execution: %v", analytics)
	active := rows(t, cronDB, `SELECT * FROM cron.job WHERE active = true;`)
	var names []string
	for _, j := range active {
		names = append(names, j["jobname"].(string))
	}
	for _, n := range jobNames {
		assert.Contains(t, names, n)
	}
	t.Logf("automation_cron_status: %s", strings.ReplaceAll(fmt.Sprint(p), "\n", " "))
}

// In a database without pg_cron the migrations apply and the status view
// has its columns and one row saying pg_cron is not there.
func TestCronStatusWithoutPgCron(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from pg_extension where extname = 'pg_cron'`))
	assert.Equal(t, cronStatusTypes, pgtest.Columns(t, db, "automation_cron_status"))
	st := rows(t, db, `SELECT * FROM automation_cron_status;`)
	require.Len(t, st, 1)
	assert.Equal(t, "(pg_cron not installed in this database)", st[0]["job_name"])
	assert.Equal(t, false, st[0]["is_active"])
	assert.Equal(t, int64(0), st[0]["total_runs"])
}

// Issue 8: under pg_cron, the checks meet a workflow they cannot evaluate (a
// trigger_config written before validation) and an organisation whose zone
// is not a zone name, yet the job succeeds: the healthy organisation's
// schedule is created in the same run and the skips are recorded.
// Waits for pg_cron's next minute boundary (up to about 90 s).
func TestCronChecksSucceedWithBadRows(t *testing.T) {
	t.Parallel()
	cronDB, _ := pgtest.CronDB(t)
	db, _ := pgtest.NewDB(t)
	good := pgtest.AllDayOrg(t, db)
	goodWf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: good, Trigger: "scheduled", Config: `{"frequency":"every_minute"}`})
	bad := pgtest.AllDayOrg(t, db)
	badWf := pgtest.CreateUnvalidatedWorkflow(t, db, pgtest.Workflow{Org: bad, Trigger: "scheduled", Config: `{"frequency":"daily","hour":"nine"}`})
	pgtest.CreateUnvalidatedWorkflow(t, db, pgtest.Workflow{Org: bad, Trigger: "stale_job", Config: `{"days_inactive":"a week"}`})
	pgtest.CreateUnvalidatedWorkflow(t, db, pgtest.Workflow{Org: bad, Trigger: "maintenance_due", Config: `{"months_after_service":1e300}`})
	mars := pgtest.AllDayOrg(t, db)
	marsWf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: mars, Trigger: "scheduled", Config: `{"frequency":"every_minute"}`})
	pgtest.Exec(t, db, `alter table organizations drop constraint organizations_timezone_check`)
	pgtest.Exec(t, db, `update organizations set timezone = 'Mars/Phobos' where id = $1`, mars)

	dbname := pgtest.Text(t, db, `select current_database()`)
	job := "dueflow-checks-" + dbname
	pgtest.Exec(t, cronDB, `select cron.schedule_in_database($1, '* * * * *',
		'select public.check_automation_triggers(), public.check_maintenance_reminders(), public.check_overdue_invoices()', $2)`, job, dbname)
	t.Cleanup(func() { _, _ = cronDB.Exec(context.Background(), `select cron.unschedule($1)`, job) })

	deadline := time.Now().Add(100 * time.Second)
	q := `select count(*) from cron.job_run_details d join cron.job j using (jobid) where j.jobname = $1 and d.end_time is not null`
	for pgtest.Int(t, cronDB, q, job) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pg_cron did not run the checks within 100 s: %v", rows(t, cronDB, `select * from cron.job_run_details order by start_time desc limit 5`))
		}
		time.Sleep(time.Second)
	}
	assert.Equal(t, "succeeded", pgtest.Text(t, cronDB, `select d.status from cron.job_run_details d join cron.job j using (jobid)
		where j.jobname = $1 order by d.start_time limit 1`, job))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_schedule_state where workflow_id = $1`, goodWf))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_schedule_state where workflow_id in ($1, $2)`, badWf, marsWf))
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_check_problems where organization_id = $1 and code = 'invalid_config'`, bad))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_check_problems where organization_id = $1 and code = 'invalid_timezone'`, mars))
	assert.Equal(t, 4, pgtest.Int(t, db, `select check_problems from automation_queue_health`))
}
