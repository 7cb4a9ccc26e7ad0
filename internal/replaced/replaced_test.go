package replaced_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	"github.com/dueflow/dueflow/internal/supacompat"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

// fixtureDB is a database with the Supabase stand-ins, nothing of dueflow
// (pgtest.NewDB clones a template that has dueflow's migrations) and the
// fixture applied.
func fixtureDB(t *testing.T, o replaced.Options) *pgxpool.Pool {
	t.Helper()
	db, _ := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, o))
	return db
}

func columns(t *testing.T, db pgtest.DB, table string) []string {
	t.Helper()
	return pgtest.JSON[[]string](t, db, `select coalesce(json_agg(column_name::text order by ordinal_position), '[]')
		from information_schema.columns where table_schema = 'public' and table_name = $1`, table)
}

// resultColumns runs q and returns the names of its result columns.
func resultColumns(t *testing.T, db *pgxpool.Pool, q string) []string {
	t.Helper()
	rows, err := db.Query(bg, q)
	require.NoError(t, err, q)
	defer rows.Close()
	var out []string
	for _, f := range rows.FieldDescriptions() {
		out = append(out, f.Name)
	}
	for rows.Next() {
	}
	require.NoError(t, rows.Err(), q)
	return out
}

var fixtureTables = []string{"id_counters", "profiles", "clients", "jobs", "estimates", "invoices",
	"automation_workflows", "automation_execution_logs", "automation_schedules", "automation_analytics"}

// snapshot is a digest of every fixture table's rows.
func snapshot(t *testing.T, db pgtest.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range append([]string{"auth.users"}, fixtureTables...) {
		out[tb] = pgtest.Text(t, db, fmt.Sprintf(`select count(*) || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), ''))
			from %s x`, tb))
	}
	return out
}

// The automation tables have every column REPLACED_SYSTEM.md lists, the app
// tables their id types and ownership columns.
func TestShapes(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})

	assert.Equal(t, []string{"id", "user_id", "organization_id", "name", "description", "status", "is_active", "enabled",
		"trigger_type", "trigger_config", "trigger_conditions", "triggers", "steps", "template_config", "workflow_config",
		"visual_config", "nodes", "edges", "settings", "action_type", "action_config", "delivery_window",
		"multi_channel_config", "performance_metrics", "category", "template_id", "workflow_type", "execution_count",
		"success_count", "last_triggered_at", "last_executed_at", "created_at", "updated_at", "created_by"},
		columns(t, db, "automation_workflows"))
	assert.Equal(t, []string{"id", "workflow_id", "automation_id", "organization_id", "trigger_type", "trigger_data",
		"status", "actions_executed", "error_message", "details", "started_at", "completed_at", "created_at", "paused_at",
		"resume_at", "execution_time_ms", "weather_conditions", "location_used", "trigger_matched_conditions"},
		columns(t, db, "automation_execution_logs"))
	assert.Equal(t, []string{"id", "workflow_id", "cron_expression", "cron_job_name", "is_active", "last_run", "next_run",
		"metadata", "created_at", "updated_at"}, columns(t, db, "automation_schedules"))
	assert.Equal(t, []string{"id", "workflow_id", "date", "execution_count", "success_count", "failure_count",
		"success_rate", "avg_execution_time", "total_execution_time", "revenue_impact", "created_at", "updated_at"},
		columns(t, db, "automation_analytics"))

	typ := func(table, col string) string {
		return pgtest.Text(t, db, `select coalesce((select data_type || ':' || is_nullable from information_schema.columns
			where table_schema = 'public' and table_name = $1 and column_name = $2), 'missing')`, table, col)
	}
	for _, c := range []struct{ table, col, want string }{
		{"clients", "id", "text:NO"}, {"jobs", "id", "text:NO"}, {"invoices", "id", "uuid:NO"},
		{"invoices", "job_id", "text:YES"}, {"invoices", "client_id", "text:YES"}, {"invoices", "user_id", "uuid:YES"},
		{"invoices", "due_date", "date:YES"}, {"invoices", "payment_status", "text:YES"},
		{"invoices", "organization_id", "missing"}, {"jobs", "completed_at", "missing"},
		{"clients", "name", "text:NO"}, {"clients", "organization_id", "uuid:YES"},
		{"profiles", "timezone", "text:YES"}, {"profiles", "organization_id", "uuid:YES"},
		{"automation_workflows", "user_id", "uuid:NO"}, {"automation_workflows", "organization_id", "uuid:NO"},
		{"automation_execution_logs", "trigger_type", "text:NO"}, {"automation_execution_logs", "status", "text:NO"},
		{"automation_execution_logs", "actions_executed", "jsonb:YES"},
		{"automation_analytics", "success_rate", "numeric:YES"},
	} {
		assert.Equal(t, c.want, typ(c.table, c.col), "%s.%s", c.table, c.col)
	}

	// the logs' policy, verbatim
	assert.Equal(t, "ALL:true", pgtest.Text(t, db, `select cmd || ':' || qual from pg_policies
		where tablename = 'automation_execution_logs'`))
	// row triggers on the four tables, one function
	assert.Equal(t, "clients,estimates,invoices,jobs", pgtest.Text(t, db, `select string_agg(c.relname::text, ',' order by c.relname)
		from pg_trigger g join pg_class c on c.oid = g.tgrelid
		where g.tgfoid = 'public.handle_universal_automation_triggers'::regproc`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from pg_tables where schemaname = 'public' and not rowsecurity`))
}

// The rows an upgrade has to carry: a NULL zone, every status, months-old
// pending rows in both trigger_data shapes, the builder's shapes and older ones.
func TestRows(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})

	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from profiles where timezone is null and organization_id is not null`))
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(distinct organization_id) from profiles`))
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(distinct coalesce(timezone, '')) from profiles where organization_id = $1`, replaced.OrgA),
		"one organisation, users in several zones")
	assert.Equal(t, "C-2000,C-2001,C-2002,C-2003,C-2004,C-2005,C-2006,C-2007",
		pgtest.Text(t, db, `select string_agg(id, ',' order by id) from clients`))
	assert.Equal(t, "J-1010", pgtest.Text(t, db, `select max(id) from jobs`))
	assert.Equal(t, "cancelled,completed,in-progress,in_progress,on-hold,scheduled",
		pgtest.Text(t, db, `select string_agg(distinct status, ',' order by status) from jobs`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from invoices where due_date is null`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from clients where organization_id is null`), "a client from before the column")

	assert.Equal(t, "completed,delayed,failed,pending,processing,running",
		pgtest.Text(t, db, `select string_agg(distinct status, ',' order by status) from automation_execution_logs`))
	old := `select count(*) from automation_execution_logs where status = 'pending' and created_at < now() - interval '90 days' and `
	assert.Equal(t, 1, pgtest.Int(t, db, old+`trigger_data ? 'invoice_id' and trigger_data ? 'days_overdue'`))
	assert.Equal(t, 1, pgtest.Int(t, db, old+`trigger_data ? 'table_name' and trigger_data ? 'record_id' and trigger_data ? 'new_record'`))
	assert.Equal(t, 1, pgtest.Int(t, db, old+`organization_id is null`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id is null and automation_id is not null`))
	// the seeded job completion went through the row trigger
	assert.Equal(t, "pending", pgtest.Text(t, db, `select string_agg(status, ',') from automation_execution_logs
		where workflow_id = $1 and trigger_data ->> 'record_id' = 'J-1003'`, replaced.WorkflowJobCompleted))

	assert.Equal(t, "invoice_overdue,job_completed,job_scheduled,job_status_changed,maintenance_due,schedule_time,scheduled",
		pgtest.Text(t, db, `select string_agg(distinct trigger_type, ',' order by trigger_type) from automation_workflows`))
	has := func(cond string, args ...any) int {
		return pgtest.Int(t, db, `select count(*) from automation_workflows where `+cond, args...)
	}
	assert.Positive(t, has(`steps @> '[{"type":"action","config":{"actionType":"email"}}]'`))
	assert.Positive(t, has(`steps @> '[{"type":"action","config":{"actionType":"sms"}}]'`))
	assert.Positive(t, has(`steps @> '[{"config":{"actionType":"ai_generate_message"}}]'`))
	assert.Positive(t, has(`steps @> '[{"step_type":"send_email"},{"step_type":"delay","config":{"duration":"3 days"}}]'`))
	assert.Positive(t, has(`template_config -> 'steps' @> '[{"type":"delay","config":{"delayType":"hours","delayValue":24}}]'`))
	assert.Positive(t, has(`steps::text like '%{{client.firstName}}%'`))
	assert.Positive(t, has(`steps::text like '%{{client_name}}%'`))
	for _, key := range []string{"daysOverdue", "days_overdue", "frequency", "conditions"} {
		assert.Positive(t, has(`trigger_config ? $1`, key), key)
	}
	assert.Positive(t, has(`trigger_conditions ? 'months_after_last_service'`))
	assert.Positive(t, has(`steps is null and trigger_type is null`), "a draft")
	assert.Positive(t, has(`status <> 'active' and is_active`), "flags that disagree")
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_schedules`))
	assert.Positive(t, pgtest.Int(t, db, `select count(*) from automation_analytics`))
}

// The monitoring views return their production columns.
func TestViews(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})
	assert.Equal(t, []string{"pending_count", "running_count", "completed_last_hour", "failed_last_hour", "last_success",
		"last_failure", "active_workflows"}, resultColumns(t, db, `select * from automation_system_health`))
	assert.Equal(t, cronStatusColumns, resultColumns(t, db, `select * from automation_cron_status`))
	assert.Equal(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'pending'`),
		pgtest.Int(t, db, `select pending_count from automation_system_health`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select failed_last_hour from automation_system_health`))
	assert.Equal(t, 12, pgtest.Int(t, db, `select active_workflows from automation_system_health`))
}

var cronStatusColumns = []string{"job_name", "schedule", "is_active", "last_run", "last_run_ended", "total_runs",
	"successful_runs", "failed_runs", "success_rate"}

// Applying the fixture again changes no row.
func TestApplyTwice(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})
	before := snapshot(t, db)
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	assert.Equal(t, before, snapshot(t, db))
}

// The app, signed in, writes its rows its way; the row triggers log pending
// rows for the matching workflows of the writer's organisation.
func TestAppWrites(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})
	var client, job, invoice, workflow string
	pgtest.AsUser(t, db, replaced.UserA2, func(tx pgx.Tx) { // the user without a zone
		require.NoError(t, tx.QueryRow(bg, `insert into clients (user_id, organization_id, name, first_name, email)
			values ($1, $2, 'New Client', 'New', 'new.client@example.test') returning id`, replaced.UserA2, replaced.OrgA).Scan(&client))
		require.NoError(t, tx.QueryRow(bg, `insert into jobs (user_id, client_id, title, status, schedule_start)
			values ($1, $2, 'Tap repair', 'scheduled', now() + interval '2 days') returning id`, replaced.UserA2, client).Scan(&job))
		require.NoError(t, tx.QueryRow(bg, `insert into invoices (user_id, job_id, client_id, invoice_number, status, total, balance_due, due_date)
			values ($1, $2, $3, 'INV-1006', 'sent', 75, 75, current_date + 14) returning id::text`, replaced.UserA2, job, client).Scan(&invoice))
		require.NoError(t, tx.QueryRow(bg, `insert into automation_workflows (user_id, organization_id, name, status, is_active, enabled,
				trigger_type, trigger_config, steps, created_by)
			values ($1, $2, 'Completed survey', 'active', true, true, 'job_completed', '{"triggerType":"job_completed","conditions":[]}',
				'[{"id":"step-1","type":"action","name":"Send Message","config":{"actionType":"email","subject":"How was {{job.title}}?","message":"Hi {{client.firstName}}"}}]',
				$1) returning id::text`, replaced.UserA2, replaced.OrgA).Scan(&workflow))
	})
	assert.Equal(t, "C-2008", client)
	assert.Equal(t, "J-1011", job)

	logs := func(record string) string {
		return pgtest.Text(t, db, `select coalesce(string_agg(w.name || ':' || l.status || ':' || l.organization_id, ',' order by w.name), '')
			from automation_execution_logs l join automation_workflows w on w.id = l.workflow_id
			where l.trigger_data ->> 'record_id' = $1`, record)
	}
	assert.Empty(t, logs(job), "no workflow of organisation A runs on job_created or job_scheduled")

	pgtest.AsUser(t, db, replaced.UserA2, func(tx pgx.Tx) {
		_, err := tx.Exec(bg, `update jobs set status = 'completed' where id = $1`, job)
		require.NoError(t, err)
	})
	assert.Equal(t, "Completed survey:pending:"+replaced.OrgA+",Job completed thank-you:pending:"+replaced.OrgA, logs(job))
	pgtest.AsUser(t, db, replaced.UserA2, func(tx pgx.Tx) {
		_, err := tx.Exec(bg, `update jobs set status = 'on-hold' where id = $1`, job)
		require.NoError(t, err)
	})
	assert.Contains(t, logs(job), "On-hold notice:pending", "the builder's condition status = on-hold")

	// an update of an unpaid invoice past due logs invoice_overdue (old row-trigger path)
	pgtest.Exec(t, db, `update invoices set due_date = current_date - 4 where id = $1`, invoice)
	assert.Equal(t, "Overdue invoice reminder:pending:"+replaced.OrgA, logs(invoice))
	assert.Equal(t, "invoice_overdue", pgtest.Text(t, db, `select trigger_data ->> 'trigger_type' from automation_execution_logs
		where trigger_data ->> 'record_id' = $1`, invoice))

	// RLS: another organisation's user sees none of it
	pgtest.AsUser(t, db, replaced.UserB1, func(tx pgx.Tx) {
		assert.Zero(t, pgtest.Int(t, tx, `select count(*) from clients where id = $1`, client))
		assert.Zero(t, pgtest.Int(t, tx, `select count(*) from automation_workflows where id = $1`, workflow))
		assert.Equal(t, 2, pgtest.Int(t, tx, `select count(*) from clients`))
	})
}

// An older install has no clients.organization_id; the trigger finds the
// organisation through the owner's profile.
func TestOlderInstall(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{OlderInstall: true})
	assert.NotContains(t, columns(t, db, "clients"), "organization_id")
	pgtest.Exec(t, db, `insert into automation_workflows (user_id, organization_id, name, status, is_active, trigger_type, steps)
		values ($1, $2, 'Welcome', 'active', true, 'client_created', '[{"type":"action","config":{"actionType":"email"}}]')`,
		replaced.UserB1, replaced.OrgB)
	var client string
	pgtest.AsUser(t, db, replaced.UserB1, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(bg, `insert into clients (user_id, name) values ($1, 'Walk-in') returning id`, replaced.UserB1).Scan(&client))
	})
	assert.Equal(t, replaced.OrgB, pgtest.Text(t, db, `select organization_id::text from automation_execution_logs
		where trigger_type = 'client_created' and trigger_data ->> 'record_id' = $1`, client))
	before := snapshot(t, db)
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{OlderInstall: true}))
	assert.Equal(t, before, snapshot(t, db))
}

// The functions the old cron jobs call run on the fixture and behave as the
// replaced system did.
func TestOldFunctions(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})

	// check-overdue-invoices: invoice-shape rows for (workflow, invoice) not
	// logged in the last 24 hours, at least days_overdue / daysOverdue late;
	// not for the workflow whose status is inactive
	pgtest.Exec(t, db, `select check_overdue_invoices()`)
	invoiceRows := `select coalesce(string_agg(workflow_id || '/' || (trigger_data ->> 'invoice_id'), ',' order by workflow_id, trigger_data ->> 'invoice_id'), '')
		from automation_execution_logs where trigger_data ? 'invoice_id' and created_at > now() - interval '1 hour'`
	assert.Equal(t, replaced.WorkflowInvoiceBuilder+"/30000000-0000-4000-8000-0000000000a2,"+
		replaced.WorkflowInvoiceLegacy+"/30000000-0000-4000-8000-0000000000b1", pgtest.Text(t, db, invoiceRows))
	assert.Equal(t, "overdue", pgtest.Text(t, db, `select status from invoices where id = '30000000-0000-4000-8000-0000000000a1'`))
	// ... and marking them overdue went through the row trigger as well (the old duplicate)
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_execution_logs
		where trigger_type = 'invoice_overdue' and trigger_data ->> 'table_name' = 'invoices'`))
	pgtest.Exec(t, db, `select check_overdue_invoices()`)
	assert.Equal(t, 2, len(strings.Split(pgtest.Text(t, db, invoiceRows), ",")), "24-hour dedupe")

	pgtest.Exec(t, db, `select check_appointment_reminders()`)
	assert.Equal(t, "J-1010", pgtest.Text(t, db, `select string_agg(trigger_data ->> 'job_id', ',') from automation_execution_logs
		where workflow_id = $1 and status = 'pending'`, replaced.WorkflowAppointment))
	pgtest.Exec(t, db, `select seasonal_maintenance_reminders()`)
	assert.Equal(t, "C-2005", pgtest.Text(t, db, `select string_agg(trigger_data ->> 'client_id', ',') from automation_execution_logs
		where workflow_id = $1`, replaced.WorkflowSeasonal))
	pgtest.Exec(t, db, `select check_maintenance_reminders()`)
	pgtest.Exec(t, db, `select check_automation_triggers()`)

	// process-automations: the last day's pending rows "completed", older ones left pending
	assert.Positive(t, pgtest.Int(t, db, `select process_pending_automations()`))
	status := func(id string) string {
		return pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, id)
	}
	assert.Equal(t, "completed", status(replaced.LogPendingInvoice2h))
	assert.Equal(t, "process_pending_automations", pgtest.Text(t, db, `select details ->> 'processed_by' from automation_execution_logs where id = $1`,
		replaced.LogPendingInvoice2h))
	for _, id := range []string{replaced.LogPendingInvoice120d, replaced.LogPendingJob95d, replaced.LogPendingNoOrg200d,
		replaced.LogPendingNoWorkflow60d, replaced.LogPendingCancelled45d} {
		assert.Equal(t, "pending", status(id), id)
	}

	// update-automation-analytics re-adds the last hour on every run
	pgtest.Exec(t, db, `select update_automation_analytics()`)
	first := pgtest.Int(t, db, `select coalesce(sum(execution_count), 0) from automation_analytics where date = current_date`)
	assert.Positive(t, first)
	pgtest.Exec(t, db, `select update_automation_analytics()`)
	assert.Equal(t, 2*first, pgtest.Int(t, db, `select sum(execution_count) from automation_analytics where date = current_date`))

	assert.Zero(t, pgtest.Int(t, db, `select cleanup_automation_logs()`), "no completed row is older than 90 days")
}

// ApplyCron needs pg_cron in the database.
func TestApplyCronWithoutPgCron(t *testing.T) {
	t.Parallel()
	db := fixtureDB(t, replaced.Options{})
	err := replaced.ApplyCron(bg, db, replaced.CronOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pg_cron is not installed")
}

// In the pg_cron database the jobs exist under their names and schedules,
// automation_cron_status lists them with its production columns, and each
// job's command runs.
func TestCronJobs(t *testing.T) {
	c := pgtest.Cluster(t)
	db, err := pgxpool.New(bg, c.DSN(c.CronDatabase()))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	require.NoError(t, supacompat.Apply(bg, db))
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))

	require.NoError(t, replaced.ApplyCron(bg, db, replaced.CronOptions{Paused: true}))
	require.NoError(t, replaced.ApplyCron(bg, db, replaced.CronOptions{Paused: true}))
	assert.Equal(t, len(replaced.Jobs), pgtest.Int(t, db, `select count(*) from cron.job`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_cron_status where is_active`))

	require.NoError(t, replaced.ApplyCron(bg, db, replaced.CronOptions{}))
	dbname := c.CronDatabase()
	for _, j := range replaced.Jobs {
		assert.Equal(t, j.Schedule+":true:"+dbname, pgtest.Text(t, db, `select schedule || ':' || active || ':' || database
			from cron.job where jobname = $1`, j.Name), j.Name)
	}
	assert.Equal(t, len(replaced.Jobs), pgtest.Int(t, db, `select count(*) from cron.job`))
	assert.Equal(t, cronStatusColumns, resultColumns(t, db, `select * from automation_cron_status`))
	assert.Equal(t, len(replaced.Jobs), pgtest.Int(t, db, `select count(*) from automation_cron_status where is_active`))

	queue := pgtest.Text(t, db, `select command from cron.job where jobname = 'process-automation-queue'`)
	assert.Contains(t, queue, "net.http_post(")
	assert.Contains(t, queue, "current_setting('app.settings.service_role_key', true)")

	// every command runs (in a transaction rolled back)
	for _, j := range replaced.Jobs {
		tx, err := db.Begin(bg)
		require.NoError(t, err)
		_, err = tx.Exec(bg, `select set_config('app.settings.supabase_url', 'https://project.example.test', true),
			set_config('app.settings.service_role_key', 'test-key', true)`)
		require.NoError(t, err)
		cmd := pgtest.Text(t, tx, `select command from cron.job where jobname = $1`, j.Name)
		_, err = tx.Exec(bg, cmd)
		assert.NoError(t, err, j.Name)
		require.NoError(t, tx.Rollback(bg))
	}
}
