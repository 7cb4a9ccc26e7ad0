package e2e

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/locale"
)

const (
	orgA = "a0000000-0000-4000-8000-00000000000a" // Acme Plumbing, New York
	orgB = "b0000000-0000-4000-8000-00000000000b" // Brixton Heating, London
)

func mustExec(t testing.TB, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := db.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// textIDSchema is an adopted app schema whose clients, jobs and invoices
// have text ids ('C-2001', 'J-1001', 'I-3001'), on the core migrations
// alone: its tables, and the source views and hook that replace the core's
// defaults.
const textIDSchema = `
	create table app_organizations (id uuid primary key, name text not null, timezone text, country_code text not null,
	  send_window_start time not null, send_window_end time not null, sender_name text not null, sender_email text not null,
	  reply_to_email text not null, phone text not null, portal_url text not null);
	create sequence app_jobs_seq start 1001;
	create sequence app_invoices_seq start 3001;
	create table app_clients (id text primary key, organization_id uuid not null, first_name text, last_name text,
	  email text, phone text, email_opt_out boolean not null default false, sms_opt_out boolean not null default false);
	create table app_jobs (id text primary key default 'J-' || nextval('app_jobs_seq'), organization_id uuid not null,
	  client_id text references app_clients (id), title text, job_type text, status text not null, scheduled_start timestamptz,
	  completed_at timestamptz, address text, updated_at timestamptz not null default now());
	create table app_invoices (id text primary key default 'I-' || nextval('app_invoices_seq'), organization_id uuid not null,
	  client_id text not null references app_clients (id), job_id text references app_jobs (id), number text not null,
	  status text not null, due_date date not null, total numeric(12,2) not null, balance numeric(12,2) not null,
	  currency text not null, portal_url text not null default '', updated_at timestamptz not null default now());
	create or replace view automation_src_organizations with (security_invoker = true) as
	  select id, name, timezone, country_code, send_window_start, send_window_end, sender_name, sender_email,
	         reply_to_email, phone, portal_url from app_organizations;
	create or replace view automation_src_clients with (security_invoker = true) as
	  select id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out from app_clients;
	create or replace view automation_src_jobs with (security_invoker = true) as
	  select id, organization_id, client_id, title, job_type, status, scheduled_start, completed_at, address, updated_at
	  from app_jobs;
	create or replace view automation_src_invoices with (security_invoker = true) as
	  select id, organization_id, client_id, job_id, number, status, due_date, total, balance, currency, portal_url, updated_at
	  from app_invoices;
	create or replace function automation_mark_invoices_overdue(p_now timestamptz default now())
	returns integer language sql set search_path = public, pg_temp as $$ select 0 $$`

// seedScenario creates two organisations in different time zones whose send
// window covers the whole day (the test does not depend on the time of day),
// their clients, invoices, jobs and workflows: in the reference tables
// (uuid ids), or with textIDs in textIDSchema's tables ('C-2001', ...). It
// returns the appointment's start and the last service time (both truncated
// to the second).
func seedScenario(t *testing.T, db *pgxpool.Pool, textIDs bool) (apptStart, lastService time.Time) {
	// the app's ids and tables: the reference schema's, or the text-id schema's
	ids := strings.NewReplacer()
	tables := strings.NewReplacer()
	if textIDs {
		mustExec(t, db, textIDSchema)
		ids = strings.NewReplacer("'c0000000-0000-4000-8000-0000000000a1'", "'C-2001'", "'c0000000-0000-4000-8000-0000000000a2'", "'C-2002'",
			"'c0000000-0000-4000-8000-0000000000a3'", "'C-2003'", "'c0000000-0000-4000-8000-0000000000b1'", "'C-2101'",
			"'c0000000-0000-4000-8000-0000000000b2'", "'C-2102'")
		tables = strings.NewReplacer("insert into organizations ", "insert into app_organizations ",
			"insert into clients ", "insert into app_clients ", "insert into invoices ", "insert into app_invoices ",
			"insert into jobs ", "insert into app_jobs ")
	}
	app := func(sql string) string { return ids.Replace(tables.Replace(sql)) }
	mustExec(t, db, app(`insert into organizations (id, name, timezone, country_code, send_window_start, send_window_end,
		sender_name, sender_email, reply_to_email, phone, portal_url) values
		($1, 'Acme Plumbing', 'America/New_York', 'US', '00:00', '23:59:59.999999', 'Acme Plumbing', 'billing@acme.test', 'office@acme.test', '+12125550100', 'https://pay.acme.test'),
		($2, 'Brixton Heating', 'Europe/London', 'GB', '00:00', '23:59:59.999999', 'Brixton Heating', 'hello@brixton.test', '', '+442071234567', 'https://brixton.test')`), orgA, orgB)
	mustExec(t, db, app(`insert into clients (id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out) values
		('c0000000-0000-4000-8000-0000000000a1', $1, 'Alice', 'Anders', 'alice@example.com', '+12125550101', false, false),
		('c0000000-0000-4000-8000-0000000000a2', $1, 'Bob', 'Brown', 'bob@example.com', '+12125550102', true, true),
		('c0000000-0000-4000-8000-0000000000a3', $1, 'Carol', 'Chen', null, '(212) 555-0103', false, false),
		('c0000000-0000-4000-8000-0000000000b1', $2, 'Dan', 'Davies', 'dan@example.co.uk', '07400 123456', false, false),
		('c0000000-0000-4000-8000-0000000000b2', $2, 'Erin', 'Evans', 'erin@example.co.uk', null, false, false)`), orgA, orgB)
	// due dates relative to each organisation's local today
	mustExec(t, db, app(`insert into invoices (organization_id, client_id, number, status, due_date, total, balance, currency) values
		($1, 'c0000000-0000-4000-8000-0000000000a1', 'INV-1001', 'sent',    (now() at time zone 'America/New_York')::date - 8, 250.00, 120.50, 'USD'),
		($1, 'c0000000-0000-4000-8000-0000000000a2', 'INV-1002', 'sent',    (now() at time zone 'America/New_York')::date - 3, 80.00, 80.00, 'USD'),
		($1, 'c0000000-0000-4000-8000-0000000000a3', 'INV-1003', 'overdue', (now() at time zone 'America/New_York')::date - 2, 45.00, 45.00, 'USD'),
		($1, 'c0000000-0000-4000-8000-0000000000a1', 'INV-1004', 'paid',    (now() at time zone 'America/New_York')::date - 10, 99.00, 0, 'USD'),
		($2, 'c0000000-0000-4000-8000-0000000000b2', 'INV-2001', 'paid',    (now() at time zone 'Europe/London')::date - 5, 60.00, 0, 'GBP')`), orgA, orgB)
	err := db.QueryRow(context.Background(), app(`insert into jobs (organization_id, client_id, title, job_type, status, scheduled_start, address) values
		($1, 'c0000000-0000-4000-8000-0000000000b1', 'Boiler service', 'boiler', 'scheduled', date_trunc('second', now() + interval '3 hours'), '12 Acre & Lane')
		returning scheduled_start`), orgB).Scan(&apptStart)
	require.NoError(t, err)
	err = db.QueryRow(context.Background(), app(`insert into jobs (organization_id, client_id, title, job_type, status, completed_at, updated_at) values
		($1, 'c0000000-0000-4000-8000-0000000000b2', 'Annual service', 'boiler', 'completed', date_trunc('second', now() - interval '7 months'), now() - interval '7 months')
		returning completed_at`), orgB).Scan(&lastService)
	require.NoError(t, err)

	mustExec(t, db, `insert into automation_workflows (id, organization_id, name, trigger_type, trigger_config, steps) values
		('f0000000-0000-4000-8000-0000000000a1', $1, 'Overdue invoices', 'invoice_overdue', '{"days_after_due":[1,7]}',
		 '[{"type":"send_email","subject":"Invoice {{invoice.number}}: {{invoice.balance}} is {{invoice.days_overdue}} days overdue","body":"Hi {{client.first_name}}, please pay {{invoice.balance}} at {{invoice.portal_url}}."},
		   {"type":"send_sms","body":"{{organization.name}}: invoice {{invoice.number}}, {{invoice.balance}} due."}]'),
		('f0000000-0000-4000-8000-0000000000b1', $2, 'Overdue invoices', 'invoice_overdue', '{"days_after_due":[1]}', '[]'),
		('f0000000-0000-4000-8000-0000000000b2', $2, 'Appointment reminder', 'appointment', '{"hours_before":24}',
		 '[{"type":"send_email","subject":"Reminder: {{job.title}} {{job.scheduled_start}}","body":"Hi {{client.first_name}}, see you at {{job.address}}.","html":"<p>Hi {{client.first_name}}, see you at {{job.address}}.</p>"},
		   {"type":"send_sms","body":"{{organization.name}}: {{job.title}} {{job.scheduled_start}}"}]'),
		('f0000000-0000-4000-8000-0000000000b3', $2, 'Maintenance', 'maintenance_due', '{"months_after_service":6}',
		 '[{"type":"send_email","subject":"Time for your {{job.type}} check, {{client.first_name}}","body":"Last visit: {{job.completed_at}}"}]'),
		('f0000000-0000-4000-8000-0000000000b4', $2, 'Daily summary', 'scheduled', '{"frequency":"daily","hour":8,"minute":0,"audience":"organization"}',
		 '[{"type":"send_email","subject":"Daily summary for {{organization.name}}","body":"Good morning."}]')`, orgA, orgB)
	// the scheduled workflow's run is due (as if 08:00 London just passed)
	mustExec(t, db, `insert into automation_schedule_state (workflow_id, organization_id, next_run_at, trigger_config, timezone)
		select id, organization_id, date_trunc('minute', now()) - interval '1 minute', trigger_config, 'Europe/London'
		from automation_workflows where id = 'f0000000-0000-4000-8000-0000000000b4'`)
	return apptStart, lastService
}

// TestEndToEndScenario runs the scenario on the reference schema (uuid ids)
// and on an adopted schema with text ids over the core migrations alone: the
// same executions, messages and ledger. The first run's functions call the
// RPCs with a legacy service_role JWT, the second's with a secret key
// (sb_secret_).
func TestEndToEndScenario(t *testing.T) {
	t.Run("reference", func(t *testing.T) { endToEndScenario(t, false) })
	t.Run("text ids", func(t *testing.T) { endToEndScenario(t, true) })
}

func endToEndScenario(t *testing.T, textIDs bool) {
	ctx := context.Background()
	// the adopted schema has the core migrations only, as an adopter applies them
	s := startStack(t, stackOptions{coreOnly: textIDs, secretKey: textIDs})
	db := s.Pool()
	apptStart, lastService := seedScenario(t, db, textIDs)

	// Unsigned calls are refused before any database work.
	resp, err := http.Post(s.GatewayURL()+"/functions/v1/invoice-reminder", "application/json",
		strings.NewReader(`{"action":"invoice-reminder","execution_ids":["c0000000-0000-4000-8000-0000000000a1"]}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("first cycle: %s", res)
	for _, r := range res.Responses {
		assert.Equal(t, 200, r.StatusCode, "%s: %s %s", r.URL, r.ErrorMsg, r.Content)
	}
	assert.Equal(t, 3, res.Requests, "one request per action with due work")

	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	// Brixton Heating is in GB without a locale: en-GB, its country's
	// default (dates "3 Dec 2026", 24-hour times).
	gb := locale.ForCountry("GB")
	apptText := gb.DateTime(apptStart.In(london))

	// Executions: exactly these, in exactly these final states.
	rows, err := db.Query(ctx, `
		select coalesce(i.number, e.trigger_type), e.status, coalesce(e.error_code, ''), e.attempt
		from automation_execution_logs e
		left join automation_src_invoices i on e.subject_type = 'invoice' and i.id = e.subject_id
		order by 1`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var subj, status, code string
		var attempt int
		require.NoError(t, rows.Scan(&subj, &status, &code, &attempt))
		got = append(got, subj+" "+status+" "+code)
		assert.Equal(t, 1, attempt, subj)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	assert.Equal(t, []string{
		"INV-1001 completed ",
		"INV-1002 skipped opted_out",
		"INV-1003 completed ",
		"appointment completed ",
		"maintenance_due completed ",
		"scheduled completed ",
	}, got, "no execution for the paid invoice, none for organisation B's invoice workflow")
	if textIDs {
		var reference int
		require.NoError(t, db.QueryRow(ctx, `select count(*) from pg_class where relnamespace = 'public'::regnamespace
			and relname in ('organizations', 'organization_members', 'clients', 'jobs', 'invoices')`).Scan(&reference))
		assert.Zero(t, reference, "no reference table on the adopted schema")
		var subjects []string
		require.NoError(t, db.QueryRow(ctx, `select array_agg(concat_ws(' ', trigger_type, subject_id, client_id) order by trigger_type, subject_id)
			from automation_execution_logs where subject_type <> 'organization'`).Scan(&subjects))
		assert.Equal(t, []string{"appointment J-1001 C-2101", "invoice_overdue I-3001 C-2001", "invoice_overdue I-3002 C-2002",
			"invoice_overdue I-3003 C-2003", "maintenance_due J-1002 C-2102"}, subjects, "the app's own ids")
	}

	// Emails: exactly these recipients, with the rendered values.
	emails, err := s.Emails(ctx)
	require.NoError(t, err)
	sort.Slice(emails, func(i, j int) bool { return emails[i].EnvelopeTo[0] < emails[j].EnvelopeTo[0] })
	var rcpts []string
	for _, e := range emails {
		rcpts = append(rcpts, strings.Join(e.EnvelopeTo, ","))
	}
	require.Equal(t, []string{"alice@example.com", "dan@example.co.uk", "erin@example.co.uk", "hello@brixton.test"}, rcpts)

	alice := emails[0]
	assert.Equal(t, "Invoice INV-1001: $120.50 is 8 days overdue", alice.Subject)
	assert.Contains(t, alice.Text, "Hi Alice, please pay $120.50 at https://pay.acme.test.")
	assert.Equal(t, "billing@acme.test", alice.From)
	assert.Equal(t, "Acme Plumbing", alice.FromName)
	assert.Equal(t, "office@acme.test", alice.ReplyTo)

	dan := emails[1]
	assert.Equal(t, "Reminder: Boiler service "+apptText, dan.Subject)
	assert.NotRegexp(t, ` [AP]M | [ap]m `, dan.Subject, "a 24-hour clock in en-GB")
	assert.Contains(t, dan.Text, "Hi Dan, see you at 12 Acre & Lane.")
	assert.Contains(t, dan.HTML, "see you at 12 Acre &amp; Lane.", "values are HTML-escaped in the HTML part")
	assert.Equal(t, "hello@brixton.test", dan.From)

	erin := emails[2]
	assert.Equal(t, "Time for your boiler check, Erin", erin.Subject)
	assert.Contains(t, erin.Text, "Last visit: "+gb.Date(lastService.In(london)))
	assert.Regexp(t, `Last visit: \d{1,2} [A-Z][a-z]{2} \d{4}`, erin.Text, "day before month in en-GB")

	digest := emails[3]
	assert.Equal(t, "Daily summary for Brixton Heating", digest.Subject)
	assert.Contains(t, digest.Text, "Good morning.")

	// SMS: exactly these numbers (normalised to E.164 in each organisation's country).
	sms := s.SMS()
	sort.Slice(sms, func(i, j int) bool { return sms[i].To < sms[j].To })
	var smsTo []string
	for _, m := range sms {
		smsTo = append(smsTo, m.To+" "+m.Text)
	}
	assert.Equal(t, []string{
		"+12125550101 Acme Plumbing: invoice INV-1001, $120.50 due.",
		"+12125550103 Acme Plumbing: invoice INV-1003, $45.00 due.",
		"+447400123456 Brixton Heating: Boiler service " + apptText,
	}, smsTo)

	// The ledger agrees: 7 deliveries, all sent.
	var sent, other int
	require.NoError(t, db.QueryRow(ctx, `select count(*) filter (where status = 'sent'), count(*) filter (where status <> 'sent') from automation_deliveries`).Scan(&sent, &other))
	assert.Equal(t, 7, sent)
	assert.Zero(t, other)

	// A second cycle sends nothing new and creates nothing new.
	res2, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("second cycle: %s", res2)
	assert.Zero(t, res2.Requests)
	for _, st := range res2.Steps {
		assert.Equal(t, "0", st.Result, st.SQL)
	}
	emails2, err := s.Emails(ctx)
	require.NoError(t, err)
	assert.Len(t, emails2, 4)
	assert.Len(t, s.SMS(), 3)
	var n int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from automation_execution_logs`).Scan(&n))
	assert.Equal(t, 6, n)

	// Workflow counters were added once.
	var execCount, success, skipped int
	require.NoError(t, db.QueryRow(ctx, `select execution_count, success_count, skipped_count from automation_workflows where id = 'f0000000-0000-4000-8000-0000000000a1'`).Scan(&execCount, &success, &skipped))
	assert.Equal(t, []int{3, 2, 1}, []int{execCount, success, skipped})

	checkInvariants(t, s, invariantOpts{})
}
