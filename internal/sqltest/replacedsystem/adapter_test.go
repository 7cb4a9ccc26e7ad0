package replacedsystem_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

var views = []string{"automation_src_organizations", "automation_src_clients", "automation_src_jobs", "automation_src_invoices"}

// adapted is the replaced system's database (internal/replaced, without
// dueflow's core) with the adapter applied.
func adapted(t *testing.T, o replaced.Options) *pgxpool.Pool {
	t.Helper()
	db, _ := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, o))
	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.ReplacedSystemFS()))
	return db
}

// rows runs q, whose one column is text, and returns its rows.
func rows(t *testing.T, db pgtest.DB, q string, args ...any) []string {
	t.Helper()
	return pgtest.JSON[[]string](t, db, `select coalesce(json_agg(x.r), '[]') from (`+q+`) x(r)`, args...)
}

const orgRow = `select concat_ws('|', id, name, coalesce(timezone, '<null>'), country_code, send_window_start, send_window_end,
	sender_name, sender_email, reply_to_email, phone, portal_url) from automation_src_organizations order by id`

// One row per organisation of the profiles, its identity from the owner's
// or admin's profile, its zone from the owner's or admin's profile, else any
// member's, else NULL; defaults for what the app has no column for.
func TestOrganizations(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	assert.Equal(t, []string{
		replaced.OrgA + "|Brightside Plumbing|America/New_York|US|09:00:00|17:00:00|Brightside Plumbing|office@brightside.example.test|office@brightside.example.test|(555) 010-0100|https://brightside.example.test",
		replaced.OrgB + "|Thames Heating|Europe/London|US|09:00:00|17:00:00|Thames Heating|hello@thames.example.test|hello@thames.example.test|020 7946 0000|",
		replaced.OrgC + "|Harbour Electrical|Australia/Sydney|US|09:00:00|17:00:00|Harbour Electrical|jobs@harbour.example.test|jobs@harbour.example.test|02 9999 0000|https://harbour.example.test",
	}, rows(t, db, orgRow), "the user without organisation makes none")

	zone := func() string {
		return pgtest.Text(t, db, `select coalesce(timezone, '<null>') from automation_src_organizations where id = $1`, replaced.OrgA)
	}
	// the admin has no zone: a member's (a2 has none either: the dispatcher's)
	pgtest.Exec(t, db, `update profiles set timezone = null where id = $1`, replaced.UserA1)
	assert.Equal(t, "America/Chicago", zone())
	// an owner comes first, whoever is older
	pgtest.Exec(t, db, `update profiles set timezone = 'America/Denver', role = 'owner' where id = $1`, replaced.UserA2)
	assert.Equal(t, "America/Denver", zone())
	// no member has a zone: NULL (dueflow then runs the organisation in UTC)
	pgtest.Exec(t, db, `update profiles set timezone = case when id = $1 then '  ' end where organization_id = $2`, replaced.UserA3, replaced.OrgA)
	assert.Equal(t, "<null>", zone())
	// the identity follows the same order, value by value
	pgtest.Exec(t, db, `update profiles set company_name = 'Brightside & Sons', company_email = null where id = $1`, replaced.UserA2)
	assert.Equal(t, "Brightside & Sons|office@brightside.example.test", pgtest.Text(t, db,
		`select name || '|' || sender_email from automation_src_organizations where id = $1`, replaced.OrgA))
}

// The settings table completes and overrides what the profiles give; its
// rules refuse what dueflow could not use.
func TestOrganizationSettings(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	pgtest.Exec(t, db, `update profiles set timezone = null where organization_id = $1`, replaced.OrgA)
	pgtest.Exec(t, db, `insert into automation_replaced_org_settings (organization_id, timezone, country_code, send_window_start,
		send_window_end, sender_email, currency) values ($1, 'Europe/London', 'GB', '08:00', '20:00', 'reminders@thames.example.test', 'GBP'),
		($2, 'America/Phoenix', null, null, null, null, null)`, replaced.OrgB, replaced.OrgA)
	got := rows(t, db, orgRow)
	require.Len(t, got, 3)
	assert.Equal(t, replaced.OrgA+"|Brightside Plumbing|America/Phoenix|US|09:00:00|17:00:00|Brightside Plumbing|office@brightside.example.test|office@brightside.example.test|(555) 010-0100|https://brightside.example.test", got[0])
	assert.Equal(t, replaced.OrgB+"|Thames Heating|Europe/London|GB|08:00:00|20:00:00|Thames Heating|reminders@thames.example.test|hello@thames.example.test|020 7946 0000|", got[1])
	assert.Equal(t, []string{"INV-2001 GBP", "INV-2002 GBP"}, rows(t, db,
		`select number || ' ' || currency from automation_src_invoices where organization_id = $1 order by number`, replaced.OrgB))
	assert.Equal(t, "USD", pgtest.Text(t, db, `select distinct currency from automation_src_invoices where organization_id = $1`, replaced.OrgC))

	for _, bad := range []string{
		`(organization_id, send_window_start, send_window_end) values ($1, '09:00', '09:00')`,
		`(organization_id, send_window_start) values ($1, '09:00')`,
		`(organization_id, country_code) values ($1, 'au')`,
		`(organization_id, currency) values ($1, 'A$')`,
		`(organization_id, timezone) values ($1, 'Australia/New South Wales')`,
		`(organization_id, sender_email) values ($1, 'not an address')`,
	} {
		_, err := db.Exec(bg, `insert into automation_replaced_org_settings `+bad, replaced.OrgC)
		assert.ErrorContains(t, err, "violates check constraint", bad)
	}
}

// Clients with their text ids; the organisation from the column when the
// install has it and the row has it set, else the creating user's profile;
// a company client's name as its first name; opt-outs from dueflow's table.
func TestClients(t *testing.T) {
	t.Parallel()
	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("older=%v", older), func(t *testing.T) {
			t.Parallel()
			db := adapted(t, replaced.Options{OlderInstall: older})
			q := `select concat_ws('|', id, organization_id, first_name, last_name, coalesce(email, '-'), coalesce(phone, '-'),
				email_opt_out::text, sms_opt_out::text) from automation_src_clients order by id`
			want := []string{
				"C-2000|" + replaced.OrgA + "|Maria|Lopez|maria@example.test|(555) 010-2000|false|false",
				"C-2001|" + replaced.OrgA + "|Ben|Carter|ben@example.test|-|false|false",
				"C-2002|" + replaced.OrgA + "|Harbor Cafe||-|+15550102002|false|false",
				"C-2003|" + replaced.OrgB + "|Oliver|Smith|oliver@example.test|07700 900123|false|false",
				"C-2004|" + replaced.OrgB + "|Grace|Hall|-|-|false|false",
				"C-2005|" + replaced.OrgC + "|Jack|Wilson|jack@example.test|0412 345 678|false|false",
				"C-2006|" + replaced.OrgA + "|Priya|Patel|priya@example.test|555-010-2006|false|false",
				"C-2007|" + replaced.OrgA + "|Tom|Reed|tom@example.test|-|false|false",
			}
			assert.Equal(t, want, rows(t, db, q))

			pgtest.Exec(t, db, `insert into automation_replaced_client_opt_outs (client_id, email_opt_out, sms_opt_out)
				values ('C-2000', true, false), ('C-2003', false, true), ('C-9999', true, true)`)
			assert.Equal(t, []string{"C-2000 true false", "C-2003 false true"}, rows(t, db,
				`select id || ' ' || email_opt_out::text || ' ' || sms_opt_out::text from automation_src_clients
				 where email_opt_out or sms_opt_out order by id`))

			// a client whose user has no organisation and no column value is left out
			pgtest.Exec(t, db, `insert into clients (id, user_id, name) values ('C-3000', $1, 'Nobody''s')`, replaced.UserNoOrgF)
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_src_clients where id = 'C-3000'`))
			if !older {
				// the column, where set, wins over the user's profile
				pgtest.Exec(t, db, `update clients set organization_id = $1 where id = 'C-3000'`, replaced.OrgC)
				pgtest.Exec(t, db, `update clients set organization_id = $1 where id = 'C-2001'`, replaced.OrgB)
				assert.Equal(t, []string{"C-2001 " + replaced.OrgB, "C-3000 " + replaced.OrgC}, rows(t, db,
					`select id || ' ' || organization_id from automation_src_clients where id in ('C-2001', 'C-3000') order by id`))
			}
		})
	}
}

// Jobs not deleted, with text ids, their user's organisation, statuses in
// dueflow's words and a completed job's completion time from its schedule.
func TestJobs(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	pgtest.Exec(t, db, `insert into jobs (id, user_id, client_id, title, service, job_type, status, schedule_start, schedule_end, date, updated_at) values
		('J-2000', $1, 'C-2003', null, 'Heating', 'maintenance', 'Completed', null, null, '2026-01-05 10:00Z', '2026-02-01Z'),
		('J-2001', $1, 'C-2003', '', null, 'maintenance', 'completed', null, null, null, '2026-03-01Z'),
		('J-2002', $1, 'C-2004', 'Flue check', null, null, 'canceled', '2026-05-01Z', null, null, '2026-03-01Z'),
		('J-2003', $2, 'C-2004', 'No organisation', null, null, 'scheduled', null, null, null, now())`,
		replaced.UserB1, replaced.UserNoOrgF)
	// the app's updated_at trigger stamps inserts' updated_at only on update
	got := rows(t, db, `select concat_ws('|', v.id, v.organization_id, v.client_id, v.title, coalesce(v.job_type, '-'), v.status,
			case when v.completed_at is null then '-'
			     when v.completed_at = j.schedule_end then 'schedule_end'
			     when v.completed_at = j.date then 'date'
			     when v.completed_at = j.updated_at then 'updated_at' end,
			(v.scheduled_start is not distinct from j.schedule_start)::text)
		from automation_src_jobs v join jobs j on j.id = v.id order by v.id`)
	assert.Equal(t, []string{
		"J-1000|" + replaced.OrgA + "|C-2000|Annual boiler service|maintenance|completed|schedule_end|true",
		"J-1001|" + replaced.OrgA + "|C-2001|Leak repair|repair|in_progress|-|true",
		"J-1002|" + replaced.OrgA + "|C-2002|Water heater install|installation|completed|schedule_end|true",
		"J-1003|" + replaced.OrgA + "|C-2006|Drain cleaning|repair|completed|schedule_end|true",
		"J-1004|" + replaced.OrgB + "|C-2003|Radiator bleed|maintenance|scheduled|-|true",
		"J-1005|" + replaced.OrgB + "|C-2004|Boiler check|inspection|on-hold|-|true",
		"J-1006|" + replaced.OrgC + "|C-2005|Switchboard upgrade|installation|in_progress|-|true",
		"J-1007|" + replaced.OrgC + "|C-2005|Lighting fault|repair|cancelled|-|true",
		// J-1008 is deleted
		"J-1009|" + replaced.OrgA + "|C-2007|Gutter check|inspection|scheduled|-|true",
		"J-1010|" + replaced.OrgC + "|C-2005|Safety inspection|inspection|scheduled|-|true",
		"J-2000|" + replaced.OrgB + "|C-2003|Heating|maintenance|completed|date|true",
		"J-2001|" + replaced.OrgB + "|C-2003||maintenance|completed|updated_at|true",
		"J-2002|" + replaced.OrgB + "|C-2004|Flue check|-|cancelled|-|true",
		// J-2003's user has no organisation
	}, got)
}

// Invoices with their uuid ids as text, the owner's organisation, statuses
// in dueflow's words (open ones sent or overdue) and the balance from
// whichever column the row fills.
func TestInvoices(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	// INV-1005: balance only; INV-3001: neither balance column, 250 paid;
	// INV-2002: paid according to payment_status
	pgtest.Exec(t, db, `update invoices set balance_due = null where invoice_number = 'INV-1005'`)
	pgtest.Exec(t, db, `update invoices set balance_due = null, balance = null, amount_paid = 250 where invoice_number = 'INV-3001'`)
	pgtest.Exec(t, db, `update invoices set payment_status = 'paid' where invoice_number = 'INV-2002'`)
	got := rows(t, db, `select concat_ws('|', v.id, v.organization_id, v.client_id, coalesce(v.job_id, '-'), v.number, v.status,
			coalesce(v.due_date::text, '-'), v.total, v.balance, v.currency, coalesce(v.portal_url, '-'),
			(v.due_date is not distinct from i.due_date and v.updated_at = i.updated_at)::text)
		from automation_src_invoices v join invoices i on i.id::text = v.id order by v.number`)
	inv := func(s string) string { return "30000000-0000-4000-8000-0000000000" + s }
	assert.Equal(t, []string{
		inv("a1") + "|" + replaced.OrgA + "|C-2000|J-1000|INV-1001|sent|" + date(t, db, -5) + "|450.00|450.00|USD|https://pay.example.test/inv/1001|true",
		inv("a2") + "|" + replaced.OrgA + "|C-2001|J-1001|INV-1002|overdue|" + date(t, db, -40) + "|120.00|120.00|USD|-|true",
		inv("a3") + "|" + replaced.OrgA + "|C-2002|J-1002|INV-1003|paid|" + date(t, db, -60) + "|2300.00|0.00|USD|-|true",
		inv("a4") + "|" + replaced.OrgA + "|C-2006|-|INV-1004|draft|-|90.00|90.00|USD|-|true",
		inv("a5") + "|" + replaced.OrgA + "|C-2000|-|INV-1005|sent|" + date(t, db, -2) + "|800.00|500.00|USD|https://pay.example.test/inv/1005|true",
		inv("b1") + "|" + replaced.OrgB + "|C-2003|J-1005|INV-2001|sent|" + date(t, db, -10) + "|95.50|95.50|USD|-|true",
		inv("b2") + "|" + replaced.OrgB + "|C-2004|-|INV-2002|paid|" + date(t, db, 7) + "|60.00|60.00|USD|-|true",
		inv("c1") + "|" + replaced.OrgC + "|C-2005|J-1006|INV-3001|sent|" + date(t, db, -1) + "|1500.00|1250.00|USD|https://pay.example.test/inv/3001|true",
		inv("c2") + "|" + replaced.OrgC + "|C-2005|J-1007|INV-3002|cancelled|" + date(t, db, -20) + "|200.00|200.00|USD|-|true",
	}, got)
}

// date is the fixture's current_date + days.
func date(t *testing.T, db pgtest.DB, days int) string {
	return pgtest.Text(t, db, `select (current_date + $1::int)::text`, days)
}

// The views have the view contract's column names and types: those of
// dueflow's reference views.
func TestViewContract(t *testing.T) {
	t.Parallel()
	ref, _ := pgtest.NewDB(t)
	for _, older := range []bool{false, true} {
		db := adapted(t, replaced.Options{OlderInstall: older})
		for _, v := range views {
			want := pgtest.Columns(t, ref, v)
			require.NotEmpty(t, want, v)
			assert.Equal(t, want, pgtest.Columns(t, db, v), "%s (older install: %v)", v, older)
		}
	}
}

// catalog is a digest of the database's schema objects in public and auth
// (tables with their columns, constraints, triggers, policies, RLS and
// grants; indexes; views; functions; comments) and of the app tables' rows,
// one entry per object.
func catalog(t *testing.T, db pgtest.DB) map[string]string {
	t.Helper()
	out := pgtest.JSON[map[string]string](t, db, `
	select jsonb_object_agg(k, v) from (
	  select 'table ' || c.oid::regclass::text as k, concat_ws(E'\n',
	    c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text, c.reloptions::text, obj_description(c.oid, 'pg_class'),
	    (select string_agg(concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
	        pg_get_expr(d.adbin, d.adrelid), a.attacl::text, col_description(c.oid, a.attnum)), ', ' order by a.attnum)
	     from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
	     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
	    (select string_agg(n.conname || ' ' || pg_get_constraintdef(n.oid), ', ' order by n.conname)
	     from pg_constraint n where n.conrelid = c.oid),
	    (select string_agg(pg_get_triggerdef(g.oid) || ' ' || g.tgenabled::text, ', ' order by g.tgname)
	     from pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal),
	    (select string_agg(concat_ws(' ', p.polname, p.polcmd, p.polroles::text, pg_get_expr(p.polqual, p.polrelid),
	        pg_get_expr(p.polwithcheck, p.polrelid)), ', ' order by p.polname)
	     from pg_policy p where p.polrelid = c.oid)) as v
	  from pg_class c where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace) and c.relkind in ('r', 'p')
	  union all
	  select 'index ' || c.oid::regclass::text, pg_get_indexdef(c.oid)
	  from pg_class c where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace) and c.relkind = 'i'
	  union all
	  select 'view ' || c.oid::regclass::text, concat_ws(E'\n', pg_get_viewdef(c.oid), c.reloptions::text, c.relacl::text,
	    obj_description(c.oid, 'pg_class'))
	  from pg_class c where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace) and c.relkind in ('v', 'm')
	  union all
	  select 'function ' || p.oid::regprocedure::text, concat_ws(E'\n', md5(pg_get_functiondef(p.oid)), p.proacl::text,
	    obj_description(p.oid, 'pg_proc'))
	  from pg_proc p where p.pronamespace in ('public'::regnamespace, 'auth'::regnamespace)
	) x`)
	for _, tb := range []string{"auth.users", "id_counters", "profiles", "clients", "jobs", "estimates", "invoices",
		"automation_workflows", "automation_execution_logs", "automation_schedules", "automation_analytics"} {
		out["rows "+tb] = pgtest.Text(t, db, fmt.Sprintf(`select count(*) || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), ''))
			from %s x`, tb))
	}
	return out
}

// changed lists the keys whose entries differ between a and b.
func changed(a, b map[string]string) []string {
	var out []string
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Applying the adapter leaves the app's tables as they were (columns,
// constraints, triggers, policies, grants, rows), adding only the indexes
// listed; applying it again changes nothing.
func TestAppTablesUntouchedAndIdempotent(t *testing.T) {
	t.Parallel()
	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("older=%v", older), func(t *testing.T) {
			t.Parallel()
			db, _ := pgtest.NewEmptyDB(t)
			require.NoError(t, replaced.Apply(bg, db, replaced.Options{OlderInstall: older}))
			before := catalog(t, db)
			require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.ReplacedSystemFS()))
			first := catalog(t, db)
			assert.Equal(t, []string{
				"function automation_current_org_ids()",
				"function automation_mark_invoices_overdue(timestamp with time zone)",
				"function automation_replaced_invoice_status(text,text)",
				"function automation_replaced_job_status(text)",
				"index automation_replaced_client_opt_outs_pkey",
				"index automation_replaced_org_settings_pkey",
				"index automation_src_invoices_id_idx",
				"index automation_src_invoices_open_due_at_idx",
				"index automation_src_invoices_open_due_idx",
				"index automation_src_invoices_open_updated_idx",
				"index automation_src_jobs_completed_at_idx",
				"index automation_src_jobs_completed_idx",
				"index automation_src_jobs_upcoming_at_idx",
				"index automation_src_jobs_upcoming_idx",
				"index automation_src_jobs_updated_at_idx",
				"index automation_src_jobs_updated_idx",
				"table automation_replaced_client_opt_outs",
				"table automation_replaced_org_settings",
				"view automation_src_clients",
				"view automation_src_invoices",
				"view automation_src_jobs",
				"view automation_src_organizations",
			}, changed(before, first), "only the adapter's objects are new; nothing of the app changed")

			require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.ReplacedSystemFS()))
			assert.Empty(t, changed(first, catalog(t, db)), "a second run changes nothing")
		})
	}
}

// The lookups an install usually has an index for get one when it has not.
func TestMissingAppIndexesCreated(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	pgtest.Exec(t, db, `drop index idx_profiles_organization_id; drop index idx_jobs_client_id`)
	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.ReplacedSystemFS()))
	assert.Equal(t, []string{
		"CREATE INDEX automation_src_jobs_client_idx ON public.jobs USING btree (client_id)",
		"CREATE INDEX automation_src_profiles_org_idx ON public.profiles USING btree (organization_id)",
	}, rows(t, db, `select pg_get_indexdef(indexrelid) from pg_index
		where indexrelid::regclass::text in ('automation_src_jobs_client_idx', 'automation_src_profiles_org_idx') order by 1`))
}

// An install whose tables lack a column the views read gets a message
// naming it, and nothing of the adapter.
func TestMissingColumnRefused(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	pgtest.Exec(t, db, `alter table jobs drop column deleted_at; alter table invoices drop column balance_due`)
	before := catalog(t, db)
	err := pgcluster.ApplyFS(bg, db, sqlfiles.ReplacedSystemFS())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the app tables lack invoices.balance_due, jobs.deleted_at")
	assert.Empty(t, changed(before, catalog(t, db)), "the whole file rolled back")
}

// The app keeps writing its tables as its signed-in users (the adapter's
// index predicates run in their inserts and updates), and its users cannot
// read dueflow's views or settings, nor run the marking hook.
func TestAppKeepsWriting(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	var client, job, invoice string
	pgtest.AsUser(t, db, replaced.UserA2, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(bg, `insert into clients (user_id, organization_id, name, first_name, email)
			values ($1, $2, 'New Client', 'New', 'new.client@example.test') returning id`, replaced.UserA2, replaced.OrgA).Scan(&client))
		require.NoError(t, tx.QueryRow(bg, `insert into jobs (user_id, client_id, title, status, schedule_start)
			values ($1, $2, 'Tap repair', 'scheduled', now() + interval '2 days') returning id`, replaced.UserA2, client).Scan(&job))
		require.NoError(t, tx.QueryRow(bg, `insert into invoices (user_id, job_id, client_id, invoice_number, status, total, balance_due, due_date)
			values ($1, $2, $3, 'INV-1006', 'sent', 75, 75, current_date + 14) returning id::text`, replaced.UserA2, job, client).Scan(&invoice))
		_, err := tx.Exec(bg, `update jobs set status = 'in-progress' where id = $1`, job)
		require.NoError(t, err)
		_, err = tx.Exec(bg, `update invoices set status = 'partial', balance_due = 25 where id = $1::uuid`, invoice)
		require.NoError(t, err)
	})
	assert.Equal(t, client+" "+replaced.OrgA+" New", pgtest.Text(t, db,
		`select id || ' ' || organization_id || ' ' || first_name from automation_src_clients where id = $1`, client))
	assert.Equal(t, "in_progress", pgtest.Text(t, db, `select status from automation_src_jobs where id = $1`, job))
	assert.Equal(t, "sent 25.00", pgtest.Text(t, db, `select status || ' ' || balance from automation_src_invoices where id = $1`, invoice))

	for _, q := range []string{
		`select count(*) from automation_src_organizations`, `select count(*) from automation_src_clients`,
		`select count(*) from automation_src_jobs`, `select count(*) from automation_src_invoices`,
		`select count(*) from automation_replaced_org_settings`, `select count(*) from automation_replaced_client_opt_outs`,
		`select automation_mark_invoices_overdue()`,
	} {
		tx, err := db.Begin(bg)
		require.NoError(t, err)
		_, err = tx.Exec(bg, `set local role authenticated`)
		require.NoError(t, err)
		_, err = tx.Exec(bg, q)
		assert.ErrorContains(t, err, "permission denied", q)
		require.NoError(t, tx.Rollback(bg))
	}
}

// automation_current_org_ids is the signed-in user's profile organisation.
func TestCurrentOrgIDs(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	for user, want := range map[string][]string{
		replaced.UserA2: {replaced.OrgA}, replaced.UserB1: {replaced.OrgB}, replaced.UserNoOrgF: {},
	} {
		pgtest.AsUser(t, db, user, func(tx pgx.Tx) {
			assert.Equal(t, want, rows(t, tx, `select id::text from automation_current_org_ids() id`), user)
		})
	}
}

// automation_mark_invoices_overdue marks open invoices past due (local
// date) overdue, as the replaced system's job did; an organisation with an
// unusable zone is left out.
func TestMarkInvoicesOverdue(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	// the core's automation_effective_timezone (sql/20261202000200), which
	// the hook calls; dueflow's core is not applied to this database
	pgtest.Exec(t, db, `create function public.automation_effective_timezone(p_tz text) returns text language sql stable as $$
		select case when p_tz is null then 'UTC' when exists (select 1 from pg_timezone_names where name = p_tz) then p_tz end $$`)
	statuses := func() []string {
		return rows(t, db, `select invoice_number || ' ' || status from invoices order by invoice_number`)
	}
	before := statuses()
	pgtest.Exec(t, db, `insert into automation_replaced_org_settings (organization_id, timezone) values ($1, 'Mars/Olympus_Mons')`, replaced.OrgC)
	assert.Equal(t, 2, pgtest.Int(t, db, `select automation_mark_invoices_overdue()`))
	assert.Equal(t, []string{
		"INV-1001 overdue", // sent, 5 days past due
		"INV-1002 overdue",
		"INV-1003 paid",
		"INV-1004 draft",   // no due date
		"INV-1005 partial", // 2 days past due: partial says more than overdue, kept
		"INV-2001 overdue", // unpaid, 10 days past due
		"INV-2002 viewed",  // due in 7 days
		"INV-3001 sent",    // organisation C's zone is unusable
		"INV-3002 cancelled",
	}, statuses())
	assert.NotEqual(t, before, statuses())
	pgtest.Exec(t, db, `delete from automation_replaced_org_settings`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_mark_invoices_overdue()`))
	assert.Equal(t, "overdue", pgtest.Text(t, db, `select status from invoices where invoice_number = 'INV-3001'`))
	assert.Zero(t, pgtest.Int(t, db, `select automation_mark_invoices_overdue()`))
}

// explain returns the plan (costs off) of q.
func explain(t *testing.T, db *pgxpool.Pool, q string, args ...any) string {
	t.Helper()
	rs, err := db.Query(bg, "explain (costs off) "+q, args...)
	require.NoError(t, err, q)
	lines, err := pgx.CollectRows(rs, pgx.RowTo[string])
	require.NoError(t, err, q)
	return strings.Join(lines, "\n")
}

// On an install of some size, the claim's and the dispatcher's lookups by id
// and the checks' per-organisation ranges are index scans: the primary keys
// of clients and jobs, the adapter's indexes on invoices and jobs, the app's
// index on profiles.organization_id; no table is scanned in full.
func TestLookupsUseIndexes(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	// 1,000 organisations of 5 users, 4,000 clients, jobs and invoices (the
	// app's row triggers are not what is measured here)
	pgtest.Exec(t, db, `
		begin;
		set local session_replication_role = replica;
		insert into auth.users (id) select ('20000000-0000-4000-9000-' || lpad(g::text, 12, '0'))::uuid from generate_series(1, 5000) g;
		insert into profiles (id, organization_id, role, timezone, company_name)
		select ('20000000-0000-4000-9000-' || lpad(g::text, 12, '0'))::uuid,
		       ('10000000-0000-4000-9000-' || lpad((g % 1000)::text, 12, '0'))::uuid,
		       case when g <= 1000 then 'admin' else 'technician' end, 'Europe/Paris', 'Company ' || (g % 1000)
		from generate_series(1, 5000) g;
		insert into clients (id, user_id, name, first_name, email)
		select 'C-' || (10000 + g), ('20000000-0000-4000-9000-' || lpad((g % 5000 + 1)::text, 12, '0'))::uuid, 'Client ' || g, 'Client', 'c' || g || '@example.test'
		from generate_series(1, 4000) g;
		insert into jobs (id, user_id, client_id, title, status, schedule_start, schedule_end, updated_at)
		select 'J-' || (10000 + g), ('20000000-0000-4000-9000-' || lpad((g % 5000 + 1)::text, 12, '0'))::uuid, 'C-' || (10000 + g), 'Job',
		       case when g % 50 = 0 then 'scheduled' else 'completed' end, now() + (g - 3000) * interval '1 hour', null, now() - interval '30 days'
		from generate_series(1, 4000) g;
		insert into invoices (user_id, client_id, invoice_number, status, total, balance_due, due_date)
		select ('20000000-0000-4000-9000-' || lpad((g % 5000 + 1)::text, 12, '0'))::uuid, 'C-' || (10000 + g), 'N-' || g,
		       case when g % 20 = 0 then 'sent' else 'paid' end, 100, case when g % 20 = 0 then 100 else 0 end, current_date - g % 400
		from generate_series(1, 4000) g;
		commit;
		analyze`)
	// seqScans lists the plan's full scans of the app's tables (the
	// checks read every organisation, so a scan of profiles is theirs to
	// choose; pass it in only for lookups by id)
	seqScans := func(plan string, tables ...string) []string {
		var out []string
		for _, l := range strings.Split(plan, "\n") {
			for _, tb := range tables {
				if strings.Contains(l, "Seq Scan on "+tb+" ") {
					out = append(out, strings.TrimSpace(l))
				}
			}
		}
		return out
	}
	data := []string{"clients", "jobs", "invoices"}
	someInvoice := pgtest.Text(t, db, `select id::text from invoices where invoice_number = 'N-100'`)

	// the claim's joins (automation_claim_rows), for a batch of executions
	claim := explain(t, db, `
		select o.name, cl.email, i.number, j.title
		from (values ('10000000-0000-4000-9000-000000000001'::uuid, 'C-10041', $1::text, 'invoice'),
		             ('10000000-0000-4000-9000-000000000002'::uuid, 'C-10042', 'J-10042', 'job')) c(organization_id, client_id, subject_id, subject_type)
		left join automation_src_organizations o on o.id = c.organization_id
		left join automation_src_clients cl on cl.id::text = c.client_id and cl.organization_id = c.organization_id
		left join automation_src_invoices i on c.subject_type = 'invoice' and i.id::text = c.subject_id and i.organization_id = c.organization_id
		left join automation_src_jobs j on c.subject_type = 'job' and j.id::text = c.subject_id and j.organization_id = c.organization_id`,
		someInvoice)
	t.Logf("claim lookups:\n%s", claim)
	assert.Empty(t, seqScans(claim, append(data, "profiles")...), claim)
	for _, idx := range []string{"automation_src_invoices_id_idx", "clients_pkey", "jobs_pkey", "idx_profiles_organization_id"} {
		assert.Contains(t, claim, idx)
	}

	// the invoice check: reminder days reached since the last run, per organisation
	invoices := explain(t, db, `
		select wf.id, i.id from (select id from automation_src_organizations) wf
		cross join lateral (
		  select i.id from automation_src_invoices i
		  where i.organization_id = wf.id and i.status in ('sent', 'overdue') and i.balance > 0
		    and i.due_date > current_date - 8 and i.due_date <= current_date - 7
		  offset 0) i`)
	t.Logf("invoice check:\n%s", invoices)
	assert.Empty(t, seqScans(invoices, data...), invoices)
	// (the per-organisation index, or the one over every organisation: either is a range scan)
	assert.True(t, strings.Contains(invoices, "automation_src_invoices_open_due_idx") || strings.Contains(invoices, "automation_src_invoices_open_due_at_idx"), invoices)
	changed := explain(t, db, `select id from automation_src_invoices i
		where i.status in ('sent', 'overdue') and i.balance > 0 and i.updated_at > now() - interval '10 minutes'`)
	assert.Empty(t, seqScans(changed, data...), changed)
	assert.Contains(t, changed, "automation_src_invoices_open_updated_idx")

	// the appointment check: upcoming scheduled jobs per organisation
	appointments := explain(t, db, `
		select j.id from automation_src_organizations o
		join automation_src_jobs j on j.organization_id = o.id and j.status = 'scheduled'
		  and j.scheduled_start > now() and j.scheduled_start <= now() + interval '24 hours'`)
	t.Logf("appointment check:\n%s", appointments)
	assert.Empty(t, seqScans(appointments, data...), appointments)
	// (the per-organisation index, or the one over every organisation: either is a range scan)
	assert.True(t, strings.Contains(appointments, "automation_src_jobs_upcoming_idx") || strings.Contains(appointments, "automation_src_jobs_upcoming_at_idx"), appointments)

	// the maintenance check: services whose due moment passed since the last
	// run, and jobs changed since (also the stale-job check's range), per organisation
	maintenance := explain(t, db, `
		select j.id from automation_src_organizations o
		cross join lateral (
		  select j.id from automation_src_jobs j
		  where j.organization_id = o.id and j.status = 'completed'
		    and j.completed_at > now() - interval '6 months 1 minute' and j.completed_at <= now() - interval '6 months'
		  offset 0) j`)
	t.Logf("maintenance check:\n%s", maintenance)
	assert.Empty(t, seqScans(maintenance, data...), maintenance)
	// (the per-organisation index, or the one over every organisation: either is a range scan)
	assert.True(t, strings.Contains(maintenance, "automation_src_jobs_completed_idx") || strings.Contains(maintenance, "automation_src_jobs_completed_at_idx"), maintenance)
	activity := explain(t, db, `
		select j.id from automation_src_organizations o
		cross join lateral (
		  select j.id from automation_src_jobs j
		  where j.organization_id = o.id
		    and j.updated_at > now() - interval '7 days 1 minute' and j.updated_at <= now() - interval '7 days'
		  offset 0) j`)
	// (with about one job per user here, automation_src_jobs_updated_idx and
	// idx_jobs_user_id cost the same: either is a per-organisation lookup)
	assert.Empty(t, seqScans(activity, data...), activity)

	// each minute's run (20261202001500): one range scan over every organisation
	for _, c := range []struct{ query, index string }{
		{`select i.id from automation_src_invoices i where i.status in ('sent', 'overdue') and i.balance > 0
		    and i.due_date > current_date - 8 and i.due_date <= current_date - 7`, "automation_src_invoices_open_due_at_idx"},
		{`select j.id from automation_src_jobs j where j.status = 'completed'
		    and j.completed_at > now() - interval '6 months 1 minute' and j.completed_at <= now() - interval '6 months'`, "automation_src_jobs_completed_at_idx"},
		{`select j.id from automation_src_jobs j where j.status = 'scheduled'
		    and j.scheduled_start > now() and j.scheduled_start <= now() + interval '24 hours'`, "automation_src_jobs_upcoming_at_idx"},
		{`select j.id from automation_src_jobs j where j.updated_at > now() - interval '10 minutes'`, "automation_src_jobs_updated_at_idx"},
	} {
		plan := explain(t, db, c.query)
		assert.Empty(t, seqScans(plan, data...), plan)
		assert.Contains(t, plan, c.index)
	}

	// the dispatcher's premise (a client's other jobs) and the maintenance check's booked visit
	premise := explain(t, db, `select 1 from automation_src_jobs u
		where u.organization_id = '10000000-0000-4000-9000-000000000001' and u.client_id::text = 'C-10041'
		  and u.status in ('scheduled', 'in_progress')`)
	assert.Empty(t, seqScans(premise, data...), premise)
	assert.Contains(t, premise, "idx_jobs_client_id")
}

// Views an install defined before (the fake uuids the issue reports:
// md5('C-2001')::uuid) are replaced by the text-id ones, with a NOTICE.
func TestEarlierViewsReplaced(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, replaced.Options{}))
	pgtest.Exec(t, db, `create view automation_src_clients as
		select md5(c.id)::uuid as id, c.organization_id, c.first_name, c.last_name, c.email, c.phone,
		       false as email_opt_out, false as sms_opt_out
		from clients c`)
	conn, notices := pgtest.NoticeConn(t, dsn)
	require.NoError(t, pgcluster.ApplyFS(bg, conn, sqlfiles.ReplacedSystemFS()))
	assert.Contains(t, notices(), "dueflow: automation_src_clients had other columns; dropped and created again")
	assert.Equal(t, "id text", pgtest.Columns(t, db, "automation_src_clients")[0])
	assert.Equal(t, 8, pgtest.Int(t, db, `select count(*) from automation_src_clients where id like 'C-%'`))
}

// Issue 12: the organisation's locale (dueflow's settings table; NULL = the
// country's default) and postal address (profiles.company_address, same
// order as the identity).
func TestLocaleAndAddress(t *testing.T) {
	t.Parallel()
	db := adapted(t, replaced.Options{})
	pgtest.Exec(t, db, `insert into automation_replaced_org_settings (organization_id, country_code, locale) values ($1, 'GB', 'en-GB')`, replaced.OrgB)
	assert.Equal(t, []string{
		replaced.OrgA + "|<null>|1 Main St, Springfield",
		replaced.OrgB + "|en-GB|2 River Rd, London",
	}, rows(t, db, `select concat_ws('|', id, coalesce(locale, '<null>'), coalesce(address, '<null>'))
		from automation_src_organizations where id in ($1, $2) order by id`, replaced.OrgA, replaced.OrgB))
	_, err := db.Exec(bg, `update automation_replaced_org_settings set locale = 'en GB; drop' where organization_id = $1`, replaced.OrgB)
	assert.ErrorContains(t, err, "violates check constraint")
}
