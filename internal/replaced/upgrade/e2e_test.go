package upgrade_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/internal/replaced"
	"github.com/dueflow/dueflow/internal/supacompat"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/supabase"
)

const jwtSecret = "upgrade-e2e-jwt-secret-with-32-chars-or-more"

// delivery is what the providers received: an email (recipient, subject,
// text) or an SMS (number, text).
type delivery struct{ To, Subject, Text string }

// senders are the real SMTP sender against an in-process SMTP server and
// the real Telnyx sender against the Telnyx stand-in, with the engine of an
// action over the PostgREST stand-in.
type senders struct {
	store *supabase.Client
	smtp  *devstack.SMTPCapture
	sms   *devstack.TelnyxSink
	email *smtpmail.Sender
	tel   *telnyx.Sender
}

func newSenders(t *testing.T, db *pgxpool.Pool) *senders {
	t.Helper()
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rest := httptest.NewServer(postgrest.New(db, jwtSecret, quiet))
	t.Cleanup(rest.Close)
	key, err := postgrest.SignJWT(jwtSecret, "service_role", time.Hour)
	require.NoError(t, err)
	store, err := supabase.New(supabase.Config{URL: rest.URL, Key: key, Timeout: 10 * time.Second})
	require.NoError(t, err)
	capture, err := devstack.StartSMTPCapture(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = capture.Close(bg) })
	email, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: capture.Port(), TLS: smtpmail.TLSNone,
		From: "noreply@dueflow.test", Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = email.Close() })
	sink := devstack.NewTelnyxSink("telnyx-test-key")
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)
	tel, err := telnyx.New(telnyx.Config{APIKey: "telnyx-test-key", From: "+15550001111", APIBase: sinkSrv.URL,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	require.NoError(t, err)
	return &senders{store: store, smtp: capture, sms: sink, email: email, tel: tel}
}

// process runs the action's function engine on the executions given.
func (s *senders) process(t *testing.T, action string, ids []uuid.UUID) automation.Summary {
	t.Helper()
	e, err := engine.New(engine.Options{Action: action, Store: s.store, Email: s.email, SMS: s.tel, Concurrency: 4,
		NormalizePhone: phone.ParseE164, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	sum, err := e.Process(bg, automation.Request{Action: action, ExecutionIDs: ids})
	require.NoError(t, err)
	return sum
}

// sent lists what the providers received, sorted.
func (s *senders) sent() []delivery {
	var out []delivery
	for _, m := range s.smtp.Messages() {
		out = append(out, delivery{To: strings.Join(m.EnvelopeTo, ","), Subject: m.Subject, Text: strings.TrimSpace(m.Text)})
	}
	for _, m := range s.sms.Messages() {
		out = append(out, delivery{To: m.To, Text: m.Text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].To+out[i].Subject < out[j].To+out[j].Subject })
	return out
}

// Must show (issue 9): the replaced system's database, its pg_cron jobs
// included, upgraded in place by the core migrations and the adapter set,
// file by file: its old jobs are replaced under their names, the monitoring
// views return their production columns, the fixture's workflows as the
// app's builder wrote them get their reminders for every trigger type dueflow
// runs (invoice_overdue, maintenance_due, appointment from job_scheduled,
// scheduled and schedule_time, and a stale_job workflow the app adds), with
// the app's text ids, claimed through PostgREST and sent by the engine to a
// real SMTP server and the SMS stand-in; a workflow the app writes afterwards
// runs too; a second check cycle creates nothing; applying everything again
// changes nothing.
func TestUpgradeEndToEnd(t *testing.T) {
	c := pgtest.Cluster(t)
	dsn := c.DSN(c.CronDatabase())
	db, err := pgxpool.New(bg, dsn)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	require.NoError(t, supacompat.Apply(bg, db))
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	require.NoError(t, replaced.ApplyCron(bg, db, replaced.CronOptions{Paused: true}))
	cronTypes := pgtest.Columns(t, db, "automation_cron_status")
	healthTypes := pgtest.Columns(t, db, "automation_system_health")
	jobIDs := pgtest.JSON[map[string]int](t, db, `select json_object_agg(jobname, jobid) from cron.job`)
	// a job of C's untouched for three days (the app's trigger stamps updated_at on every update)
	pgtest.Exec(t, db, `alter table jobs disable trigger update_jobs_updated_at;
		update jobs set updated_at = now() - interval '3 days' where id = 'J-1006';
		alter table jobs enable trigger update_jobs_updated_at`)

	notices := upgrade(t, dsn)

	// the old jobs, replaced under their names; the ones without a counterpart gone
	got := pgtest.JSON[map[string]int](t, db, `select json_object_agg(jobname, jobid) from cron.job`)
	for _, name := range []string{"check-automation-triggers", "process-automations", "check-overdue-invoices",
		"check-maintenance-reminders", "update-automation-analytics", "cleanup-automation-logs"} {
		assert.Equal(t, jobIDs[name], got[name], "%s replaced under its name", name)
		assert.Contains(t, pgtest.Text(t, db, `select command from cron.job where jobname = $1`, name), "select public.", name)
	}
	assert.Len(t, got, 6)
	assert.True(t, containsNotice(notices, "unscheduled pg_cron job process-automation-queue"))
	assert.Equal(t, append(cronTypes, "last_run_status text"), pgtest.Columns(t, db, "automation_cron_status"))
	assert.Equal(t, healthTypes, pgtest.Columns(t, db, "automation_system_health"))
	assert.Equal(t, 6, pgtest.Int(t, db, `select count(*) from automation_cron_status where not is_active`), "paused as they were")
	assert.Zero(t, pgtest.Int(t, db, `select pending_count from automation_system_health`))

	// what the app has no column for, per organisation (adapter settings):
	// phone regions, and send windows of the whole day so that the test does
	// not depend on the hour
	pgtest.Exec(t, db, `insert into automation_replaced_org_settings (organization_id, country_code, send_window_start, send_window_end)
		values ($1, 'US', '00:00', '23:59:59.999999'), ($2, 'GB', '00:00', '23:59:59.999999'), ($3, 'AU', '00:00', '23:59:59.999999')`,
		replaced.OrgA, replaced.OrgB, replaced.OrgC)
	// the app adds a stale-job workflow (in dueflow's shape) as its user
	var stale string
	pgtest.AsUser(t, db, replaced.UserC1, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(bg, `insert into automation_workflows (user_id, organization_id, name, status, is_active, enabled,
				trigger_type, trigger_config, steps)
			values ($1, $2, 'Stalled jobs', 'active', true, true, 'stale_job', '{"days_inactive":2,"statuses":["in_progress"]}',
				'[{"type":"send_email","subject":"{{job.title}} is waiting","body":"Hi {{client.first_name}}, we will be in touch."}]')
			returning id::text`, replaced.UserC1, replaced.OrgC).Scan(&stale))
	})

	checks := `select check_overdue_invoices() + check_maintenance_reminders() + check_automation_triggers()`
	require.Equal(t, 6, pgtest.Int(t, db, checks))
	// the scheduled workflows' next runs, made due
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = date_trunc('second', now()) - interval '1 minute'`)
	require.Equal(t, 2, pgtest.Int(t, db, `select check_automation_triggers()`))
	created := pgtest.JSON[[]string](t, db, `select json_agg(concat_ws(' ', w.name, e.action, e.trigger_type, e.subject_type,
			case when e.subject_type = 'organization' then 'org' else e.subject_id end, e.client_id) order by w.name, e.subject_id)
		from automation_execution_logs e join automation_workflows w on w.id = e.workflow_id
		where e.occurrence_key not like 'legacy:%'`)
	assert.Equal(t, []string{
		"Appointment reminder send-reminder appointment job J-1010 C-2005",
		"Maintenance reminder send-reminder maintenance_due job J-1000 C-2000",
		"Morning digest run-workflow scheduled organization org",
		"Overdue invoice (legacy) invoice-reminder invoice_overdue invoice 30000000-0000-4000-8000-0000000000b1 C-2003",
		"Overdue invoice reminder invoice-reminder invoice_overdue invoice 30000000-0000-4000-8000-0000000000a1 C-2000",
		"Overdue invoice reminder invoice-reminder invoice_overdue invoice 30000000-0000-4000-8000-0000000000a2 C-2001",
		"Stalled jobs send-reminder stale_job job J-1006 C-2005",
		"Weekly check-in run-workflow scheduled organization org",
	}, created, "every trigger type dueflow runs, with the app's text ids")

	s := newSenders(t, db)
	run := func() map[string]automation.Summary {
		pgtest.MakeDue(t, db)
		out := map[string]automation.Summary{}
		for _, action := range []string{automation.ActionInvoiceReminder, automation.ActionSendReminder, automation.ActionRunWorkflow} {
			ids := pgtest.JSON[[]uuid.UUID](t, db, `select coalesce(json_agg(id), '[]') from automation_execution_logs
				where action = $1 and status = 'pending'`, action)
			out[action] = s.process(t, action, ids)
		}
		return out
	}
	sums := run()
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 3, Claimed: 3, Completed: 2, Snoozed: 1},
		sums[automation.ActionInvoiceReminder], "the legacy workflow waits 3 days before its SMS")
	assert.Equal(t, automation.Summary{Action: automation.ActionSendReminder, Requested: 3, Claimed: 3, Completed: 2, Snoozed: 1},
		sums[automation.ActionSendReminder], "the maintenance reminder waits 24 hours before its SMS")
	assert.Equal(t, automation.Summary{Action: automation.ActionRunWorkflow, Requested: 2, Claimed: 2, Completed: 2},
		sums[automation.ActionRunWorkflow])
	// the history on the replaced system's table: one row per attempt
	// run (2 snoozed, 6 completed)
	assert.Equal(t, "reported 6,snoozed 2", pgtest.Text(t, db, `select string_agg(kind || ' ' || n, ',' order by kind)
		from (select kind, count(*) as n from automation_execution_events group by kind) k`))

	assert.Equal(t, []delivery{
		{To: "+61412345678", Text: "Reminder: Safety inspection tomorrow. Harbour Electrical"},
		{To: "ben@example.test", Subject: "Invoice INV-1002 is overdue", Text: "Dear Ben, invoice INV-1002 for $120.00 is overdue. Brightside Plumbing"},
		{To: "hello@thames.example.test", Subject: "Your week with Thames Heating", Text: "Hello"},
		{To: "jack@example.test", Subject: "Switchboard upgrade is waiting", Text: "Hi Jack, we will be in touch."},
		{To: "jobs@harbour.example.test", Subject: "Today at Harbour Electrical", Text: "Good morning"},
		{To: "maria@example.test", Subject: "Invoice INV-1001 is overdue", Text: "Dear Maria, invoice INV-1001 for $450.00 is overdue. Brightside Plumbing"},
		{To: "maria@example.test", Subject: "Time for your service, Maria", Text: "Hi Maria Lopez, it has been a while since your last service with Brightside Plumbing."},
		{To: "oliver@example.test", Subject: "Invoice INV-2001 overdue", Text: "Dear Oliver Smith, please pay invoice INV-2001."},
	}, s.sent())

	// counted once, beside the app's own figures
	assert.Equal(t, "16 14", pgtest.Text(t, db, `select execution_count || ' ' || success_count from automation_workflows where id = $1`,
		replaced.WorkflowInvoiceBuilder), "the app's 14 and 12, plus two completed")
	utcToday := `(now() at time zone 'UTC')::date`
	assert.Equal(t, "2 2 0 100.00 2", pgtest.Text(t, db, `select concat_ws(' ', execution_count, success_count, failure_count, success_rate, emails_sent)
		from automation_analytics where workflow_id = $1 and date = `+utcToday, replaced.WorkflowInvoiceBuilder))

	// the app's workflow written after the upgrade runs, for its new invoice
	var wf string
	pgtest.AsUser(t, db, replaced.UserA1, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(bg, `insert into automation_workflows (user_id, organization_id, name, status, is_active, enabled,
				trigger_type, trigger_config, steps)
			values ($1, $2, 'Final notice', 'active', true, true, 'invoice_overdue', '{"triggerType":"invoice_overdue","days_overdue":30,"conditions":[]}',
				'[{"id":"step-9","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Final notice: {{invoice_number}}","message":"{{client.name}}, {{invoice.balanceDue}} is still open."}}]')
			returning id::text`, replaced.UserA1, replaced.OrgA).Scan(&wf))
	})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`), "INV-1002 is 40 days overdue")
	run()
	last := s.sent()
	assert.Contains(t, last, delivery{To: "ben@example.test", Subject: "Final notice: INV-1002", Text: "Ben Carter, $120.00 is still open."})
	assert.Len(t, last, 9)

	// a second cycle creates nothing; everything applied again changes nothing
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = now() + interval '1 hour'`)
	assert.Zero(t, pgtest.Int(t, db, checks))
	catalog, rows, jobs := pgtest.Catalog(t, db), pgtest.Digest(t, db), pgtest.CronJobs(t, db)
	upgrade(t, dsn)
	assert.Equal(t, catalog, pgtest.Catalog(t, db))
	assert.Equal(t, rows, pgtest.Digest(t, db))
	assert.Equal(t, jobs, pgtest.CronJobs(t, db))
}
