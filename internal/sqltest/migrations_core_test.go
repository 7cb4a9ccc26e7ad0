package sqltest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// appTables are an app's own tables under the reference domain's names, with
// other columns (text and bigint ids, no organization_id), indexes, a
// trigger, RLS policies, grants and rows.
const appTables = `
create table public.organizations (id bigint generated always as identity primary key, title text not null);
create table public.organization_members (org bigint references public.organizations (id), login text not null);
create table public.clients (
  id text primary key,                          -- 'C-2001'
  org bigint references public.organizations (id),
  name text not null,
  email text,
  touched_at timestamptz not null default '2026-01-01 00:00Z'
);
create table public.jobs (
  id bigint generated always as identity primary key,
  client_id text references public.clients (id) on delete cascade,
  state text not null default 'open',
  visit_on date
);
create table public.invoices (
  ref text primary key,
  client_id text not null references public.clients (id),
  cents bigint not null check (cents >= 0),
  status text not null
);
create index clients_email_idx on public.clients (lower(email));
create index jobs_visit_idx on public.jobs (visit_on) where state = 'open';
create index invoices_status_idx on public.invoices (status, client_id);
create function public.app_touch() returns trigger language plpgsql as $$
begin new.touched_at := '2026-02-02 00:00Z'; return new; end $$;
create trigger clients_touch before update on public.clients for each row execute function public.app_touch();
alter table public.clients enable row level security;
alter table public.invoices enable row level security;
create policy clients_all on public.clients for select to authenticated using (email is not null);
create policy invoices_paid on public.invoices for select to authenticated using (status = 'paid');
revoke all on public.invoices from anon;
insert into public.organizations (title) values ('Acme'), ('Brixton');
insert into public.organization_members values (1, 'ada'), (2, 'bob');
insert into public.clients (id, org, name, email) values ('C-2001', 1, 'Ada', 'ada@example.com'), ('C-2002', 2, 'Bob', null);
insert into public.jobs (client_id, state, visit_on) values ('C-2001', 'open', '2026-12-01'), ('C-2002', 'done', null);
insert into public.invoices values ('INV-1', 'C-2001', 12000, 'sent'), ('INV-2', 'C-2002', 500, 'paid')`

// appRelations are the relations appTables creates (tables and indexes).
var appRelations = []string{"organizations", "organizations_pkey", "organizations_id_seq", "organization_members",
	"clients", "clients_pkey", "clients_email_idx", "jobs", "jobs_pkey", "jobs_id_seq", "jobs_visit_idx",
	"invoices", "invoices_pkey", "invoices_status_idx"}

// lineRelation is the relation a Catalog line is about ("-" for none): its
// second word, up to a dot.
func lineRelation(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	rel, _, _ := strings.Cut(f[1], ".")
	return rel
}

// appOnly keeps the Catalog lines about the app's relations, and the app's
// trigger function.
func appOnly(catalog []string) []string {
	var out []string
	for _, l := range catalog {
		if slices.Contains(appRelations, lineRelation(l)) || strings.HasPrefix(l, "function - app_touch()") {
			out = append(out, l)
		}
	}
	return out
}

// appData digests the app's tables' rows.
func appData(t *testing.T, db pgtest.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range pgtest.Digest(t, db) {
		if slices.Contains(appRelations, strings.TrimPrefix(k, "public.")) {
			out[k] = v
		}
	}
	return out
}

// The core applied to a database whose app has its own organizations,
// clients, jobs and invoices (other columns, text and bigint ids) leaves
// them, their rows, indexes, triggers, policies and grants untouched and
// puts nothing on them; the checks, the dispatcher, analytics and cleanup
// run and create nothing; applying it again changes nothing.
func TestCoreBesideAppTables(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewEmptyDB(t)
	pgtest.Exec(t, db, appTables)
	app := appOnly(pgtest.Catalog(t, db))
	for _, kind := range []string{"relation clients ", "column invoices.ref ", "index jobs ", "constraint invoices.",
		"trigger clients ", "policy invoices.", "dependent clients ", "function - app_touch()"} {
		require.True(t, slices.ContainsFunc(app, func(l string) bool { return strings.HasPrefix(l, kind) }),
			"the catalog sees %q of the app:\n%s", kind, strings.Join(app, "\n"))
	}
	rows := appData(t, db)
	require.Len(t, rows, 5)

	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.FS()))
	after := pgtest.Catalog(t, db)
	assert.Equal(t, app, appOnly(after), "the app's tables, indexes, triggers, policies and their dependents are untouched")
	assert.Equal(t, rows, appData(t, db), "the app's rows are untouched")
	for _, v := range []string{"automation_src_organizations", "automation_src_clients", "automation_src_jobs", "automation_src_invoices"} {
		assert.Zero(t, pgtest.Int(t, db, fmt.Sprintf(`select count(*) from %s`, v)), "%s: the core's default is empty", v)
	}

	// every trigger type, in an organisation the (default) views do not know
	org := uuid.MustParse("10000000-0000-4000-8000-0000000000aa")
	for tt, cfg := range map[string]string{"invoice_overdue": `{"days_after_due":[0,1]}`, "maintenance_due": `{}`,
		"appointment": `{}`, "stale_job": `{}`, "scheduled": `{"frequency":"every_minute"}`} {
		pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: tt, Config: cfg})
	}
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = now() - interval '1 minute'`)
	for _, q := range []string{`select check_overdue_invoices()`, `select check_maintenance_reminders()`,
		`select check_automation_triggers()`, `select process_pending_automations()`,
		`select update_automation_analytics()`, `select automation_cleanup()`} {
		pgtest.Exec(t, db, q)
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs`), "no execution created")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_check_problems`), "no problem met")
	assert.Equal(t, 0, pgtest.Int(t, db, `select automation_mark_invoices_overdue()`), "the default hook marks nothing")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_current_org_ids()`), "the default hook: no memberships")
	assert.Equal(t, app, appOnly(pgtest.Catalog(t, db)))
	assert.Equal(t, rows, appData(t, db))

	// a second run changes nothing at all
	all, data := pgtest.Catalog(t, db), pgtest.Digest(t, db)
	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.FS()))
	assert.Equal(t, all, pgtest.Catalog(t, db))
	assert.Equal(t, data, pgtest.Digest(t, db))
}

// The core's defaults follow the view contract (docs/contract.md: ids text,
// organisation ids uuid), so an adopter's `create or replace view` with the
// contract's columns replaces them; dueflow's migrations applied again keep
// the adopter's views and hooks, and so does the reference domain's.
func TestCoreDefaultsGiveWayToTheAdopters(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewCoreDB(t)
	for v, cols := range map[string][]string{
		"automation_src_organizations": {"id uuid", "name text", "timezone text", "country_code text",
			"send_window_start time without time zone", "send_window_end time without time zone", "sender_name text",
			"sender_email text", "reply_to_email text", "phone text", "portal_url text"},
		"automation_src_clients": {"id text", "organization_id uuid", "first_name text", "last_name text", "email text",
			"phone text", "email_opt_out boolean", "sms_opt_out boolean"},
		"automation_src_jobs": {"id text", "organization_id uuid", "client_id text", "title text", "job_type text",
			"status text", "scheduled_start timestamp with time zone", "completed_at timestamp with time zone",
			"address text", "updated_at timestamp with time zone"},
		"automation_src_invoices": {"id text", "organization_id uuid", "client_id text", "job_id text", "number text",
			"status text", "due_date date", "total numeric(12,2)", "balance numeric(12,2)", "currency text",
			"portal_url text", "updated_at timestamp with time zone"},
	} {
		assert.Equal(t, cols, pgtest.Columns(t, db, v), v)
		assert.Equal(t, "t f", pgtest.Text(t, db, `select concat_ws(' ', 'security_invoker=true' = any (c.reloptions),
			has_table_privilege('anon', c.oid, 'select')) from pg_class c where c.oid = $1::regclass`, v), "%s: security_invoker, not for anon", v)
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from pg_class where relname in
		('organizations', 'organization_members', 'clients', 'jobs', 'invoices')`), "no reference table")

	// the adopter's views (the same columns) and hooks
	pgtest.Exec(t, db, `create table app_customers (ref text primary key, owner uuid not null, name text, mail text);
		create or replace view automation_src_clients with (security_invoker = true) as
		  select ref as id, owner as organization_id, name as first_name, ''::text as last_name, mail as email,
		         null::text as phone, false as email_opt_out, true as sms_opt_out
		  from app_customers;
		create or replace function automation_current_org_ids() returns setof uuid
		  language sql stable security definer set search_path = public, pg_temp as $$ select auth.uid() $$;
		create or replace function automation_mark_invoices_overdue(p_now timestamptz default now())
		  returns integer language sql stable set search_path = public, pg_temp as $$ select 0 $$`)
	ownView := pgtest.Text(t, db, `select pg_get_viewdef('automation_src_clients'::regclass)`)
	hooks := func() string {
		return pgtest.Text(t, db, `select string_agg(prosrc, '|' order by proname) from pg_proc
			where proname in ('automation_current_org_ids', 'automation_mark_invoices_overdue')`)
	}
	require.Equal(t, " select auth.uid() | select 0 ", hooks())
	all := pgtest.Catalog(t, db)
	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.FS()))
	assert.Equal(t, all, pgtest.Catalog(t, db), "the core applied again replaces nothing of the adopter's")

	// the reference domain on top keeps them too (and replaces the defaults it finds)
	require.NoError(t, pgcluster.ApplyFS(bg, db, sqlfiles.ReferenceFS()))
	assert.Equal(t, ownView, pgtest.Text(t, db, `select pg_get_viewdef('automation_src_clients'::regclass)`))
	assert.Equal(t, " select auth.uid() | select 0 ", hooks())
	assert.Subset(t, pgtest.Columns(t, db, "automation_src_invoices"), []string{"id text", "total numeric(12,2)"})
	assert.Contains(t, pgtest.Text(t, db, `select pg_get_viewdef('automation_src_invoices'::regclass)`), "FROM invoices",
		"the core's empty default is replaced by the reference view")
}

// Every file of the core and of the reference domain runs in one
// transaction: when it fails at its end, the database is as it was before
// (no COMMIT, no CREATE INDEX CONCURRENTLY, nothing outside the
// transaction), in the order a Supabase CLI user applies both sets.
func TestEachFileOneTransaction(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewEmptyDB(t)
	for _, f := range allFiles(t) {
		catalog, data := pgtest.Catalog(t, db), pgtest.Digest(t, db)
		err := pgcluster.ApplySQL(bg, db, f.Name, f.SQL+"\n;select 1/0;")
		require.ErrorContains(t, err, "division by zero", f.Name)
		require.Equal(t, catalog, pgtest.Catalog(t, db), "%s left objects behind on failure", f.Name)
		require.Equal(t, data, pgtest.Digest(t, db), "%s left rows behind on failure", f.Name)
		require.NoError(t, pgcluster.ApplySQL(bg, db, f.Name, f.SQL))
	}
}

// allFiles is the core and the reference domain in one list by name, as a
// Supabase CLI user has them in supabase/migrations.
func allFiles(t *testing.T) []sqlfiles.File {
	t.Helper()
	core, err := sqlfiles.Files()
	require.NoError(t, err)
	ref, err := sqlfiles.FilesOf(sqlfiles.ReferenceFS())
	require.NoError(t, err)
	all := append(append([]sqlfiles.File(nil), core...), ref...)
	slices.SortFunc(all, func(a, b sqlfiles.File) int { return strings.Compare(a.Name, b.Name) })
	return all
}

// The reference domain only needs what the core creates before it, and the
// core never needs the reference domain: applied by name order (both sets
// in one folder), or the core first and the reference domain after it
// (pgcluster.ApplyFS of sqlfiles.FS() and sqlfiles.ReferenceFS()), the database is the same. No two
// files share a version.
func TestReferenceSetInEitherOrder(t *testing.T) {
	t.Parallel()
	all := allFiles(t)
	versions := map[string]string{}
	for _, f := range all {
		v, _, _ := strings.Cut(f.Name, "_")
		require.NotContains(t, versions, v, "%s and %s share a version", versions[v], f.Name)
		versions[v] = f.Name
	}
	ref, err := sqlfiles.FilesOf(sqlfiles.ReferenceFS())
	require.NoError(t, err)
	require.Equal(t, []string{"20261129000100_domain.sql", "20261202000601_text_ids_reference.sql"},
		[]string{ref[0].Name, ref[1].Name}, "the reference files keep the versions installs applied")

	byName, _ := pgtest.NewEmptyDB(t)
	for _, f := range all {
		require.NoError(t, pgcluster.ApplySQL(bg, byName, f.Name, f.SQL))
	}
	coreFirst, _ := pgtest.NewDB(t)
	assert.Equal(t, pgtest.Catalog(t, coreFirst), pgtest.Catalog(t, byName))
	assert.Equal(t, pgtest.Digest(t, coreFirst), pgtest.Digest(t, byName))
}
