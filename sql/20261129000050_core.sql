-- dueflow core: the helpers every migration uses, and safe defaults for what
-- the app provides (the four automation_src_* source views and the two
-- hooks), so that the core applies and runs on any database before the app
-- defines its own. The core (sql/*.sql) never creates, alters or depends on
-- the app's tables; dueflow's optional reference domain (organisations,
-- clients, jobs, invoices: sql/reference/) and an adopter's own migration
-- define the views and hooks over real tables.
--
-- The defaults are created only while absent: re-running this file, or any
-- later version of it, never replaces an adopter's (or the reference
-- domain's) views and hooks. Idempotent.

create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;

create or replace function public.automation_is_valid_timezone(p_tz text) returns boolean
language plpgsql stable set search_path = public, pg_temp as $$
begin
  if p_tz is null or p_tz !~ '^(UTC|[A-Za-z][A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$' then
    return false;
  end if;
  perform now() at time zone p_tz;
  return true;
exception when others then
  return false;
end
$$;
comment on function public.automation_is_valid_timezone(text) is
  'True when p_tz is an IANA time zone name (Area/Location, or UTC) known to the server.';

create or replace function public.automation_touch_updated_at() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  -- an explicit new value wins (imports, tests); otherwise stamp now(),
  -- except for automation bookkeeping (dueflow.keep_updated_at = on)
  if new.updated_at is not distinct from old.updated_at
     and coalesce(current_setting('dueflow.keep_updated_at', true), '') <> 'on' then
    new.updated_at := now();
  end if;
  return new;
end
$$;
comment on function public.automation_touch_updated_at() is
  'Trigger: sets updated_at to now() on update unless the statement set it explicitly or dueflow.keep_updated_at is on (automation bookkeeping).';

-- Migration helper: whether view p_view is defined as p_select, compared by
-- the server's own rendering of both (pg_get_viewdef), so formatting and
-- version differences of the text do not matter.
create or replace function public.automation_view_is(p_view text, p_select text) returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  v_same boolean;
begin
  if to_regclass(p_view) is null then
    return false;
  end if;
  execute 'create temp view dueflow_view_probe as ' || p_select;
  v_same := pg_get_viewdef(to_regclass(p_view)) = pg_get_viewdef('pg_temp.dueflow_view_probe'::regclass);
  drop view pg_temp.dueflow_view_probe;
  return v_same;
exception when others then
  -- the reference tables are not there, or not with these columns
  return false;
end
$$;
comment on function public.automation_view_is(text, text) is
  'Migration helper: true when the view p_view exists and is defined as the query p_select (compared by pg_get_viewdef of both); false otherwise, never raises.';
revoke all on function public.automation_view_is(text, text) from public, anon, authenticated, service_role;

-- The defaults: each source view's query (typed and empty, following the view
-- contract: client, job and invoice ids text, organisation ids uuid) and each
-- hook's body. The core creates them while absent; the reference domain
-- recognises them (and only them, or its own) as replaceable.
create or replace function public.automation_core_default(p_name text) returns text
language sql immutable as $fn$
  select case p_name
    when 'automation_src_organizations' then
      $q$select null::uuid as id, null::text as name, null::text as timezone, null::text as country_code,
                null::time as send_window_start, null::time as send_window_end, null::text as sender_name,
                null::text as sender_email, null::text as reply_to_email, null::text as phone, null::text as portal_url
         where false$q$
    when 'automation_src_clients' then
      $q$select null::text as id, null::uuid as organization_id, null::text as first_name, null::text as last_name,
                null::text as email, null::text as phone, null::boolean as email_opt_out, null::boolean as sms_opt_out
         where false$q$
    when 'automation_src_jobs' then
      $q$select null::text as id, null::uuid as organization_id, null::text as client_id, null::text as title,
                null::text as job_type, null::text as status, null::timestamptz as scheduled_start,
                null::timestamptz as completed_at, null::text as address, null::timestamptz as updated_at
         where false$q$
    when 'automation_src_invoices' then
      $q$select null::text as id, null::uuid as organization_id, null::text as client_id, null::text as job_id,
                null::text as number, null::text as status, null::date as due_date, null::numeric(12,2) as total,
                null::numeric(12,2) as balance, null::text as currency, null::text as portal_url,
                null::timestamptz as updated_at
         where false$q$
    when 'automation_current_org_ids' then
      $q$
  -- dueflow's default until the app defines this hook: the user is a member of no organisation
  select null::uuid where false
$q$
    when 'automation_mark_invoices_overdue' then
      $q$
  -- dueflow's default until the app defines this hook: nothing to mark
  select 0
$q$
  end
$fn$;
comment on function public.automation_core_default(text) is
  'Migration helper: the core''s default for an app-provided object while the app has none: the query of a source view (automation_src_organizations, _clients, _jobs, _invoices: typed, empty) or the body of a hook (automation_current_org_ids, automation_mark_invoices_overdue); NULL for any other name.';
revoke all on function public.automation_core_default(text) from public, anon, authenticated, service_role;

-- The hooks, while absent.
do $migration$
begin
  if to_regprocedure('public.automation_current_org_ids()') is null then
    execute format($f$create function public.automation_current_org_ids() returns setof uuid
      language sql stable security definer set search_path = public, pg_temp as %L$f$,
      public.automation_core_default('automation_current_org_ids'));
    comment on function public.automation_current_org_ids() is
      'Hook: the organisations the calling user (auth.uid()) may see, the basis of every RLS policy on the automation tables. dueflow''s default returns none; the app (or the reference domain) defines its own.';
    revoke all on function public.automation_current_org_ids() from public, anon;
    grant execute on function public.automation_current_org_ids() to authenticated, service_role;
  end if;
  if to_regprocedure('public.automation_mark_invoices_overdue(timestamptz)') is null then
    execute format($f$create function public.automation_mark_invoices_overdue(p_now timestamptz default now())
      returns integer language sql stable set search_path = public, pg_temp as %L$f$,
      public.automation_core_default('automation_mark_invoices_overdue'));
    comment on function public.automation_mark_invoices_overdue(timestamptz) is
      'Hook called by check_overdue_invoices() before each invoice check: marks the app''s sent invoices past due as overdue and returns how many. dueflow''s default marks nothing (returns 0); the app (or the reference domain) defines its own, or keeps this one when its view derives the status.';
    revoke all on function public.automation_mark_invoices_overdue(timestamptz) from public, anon, authenticated;
    grant execute on function public.automation_mark_invoices_overdue(timestamptz) to service_role;
  end if;
end
$migration$;

-- The source views, while absent: typed and empty, so the checks run and
-- create nothing until the app defines its own (create or replace view with
-- the same column names and types; README, Adopting an existing schema).
do $migration$
declare
  v_name text;
begin
  foreach v_name in array array['automation_src_organizations', 'automation_src_clients',
                                'automation_src_jobs', 'automation_src_invoices'] loop
    if to_regclass('public.' || v_name) is null then
      execute format('create view public.%I with (security_invoker = true) as %s',
        v_name, public.automation_core_default(v_name));
      execute format('revoke all on public.%I from anon', v_name);
    end if;
  end loop;
end
$migration$;

-- The member-read policy of an organisation-scoped table (one with an
-- organization_id column), the same on every such table; (re)created by name.
create or replace function public.automation_member_read_policy(p_table regclass) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_policy text := (select relname || '_member_read' from pg_class where oid = p_table);
begin
  execute format('drop policy if exists %I on %s', v_policy, p_table);
  execute format('create policy %I on %s for select to authenticated
    using (organization_id in (select public.automation_current_org_ids()))', v_policy, p_table);
end
$$;
comment on function public.automation_member_read_policy(regclass) is
  'Migration helper: (re)creates the policy <table>_member_read letting authenticated members SELECT the rows of their organisations (organization_id in automation_current_org_ids()).';
revoke all on function public.automation_member_read_policy(regclass) from public, anon, authenticated, service_role;

-- Migration helper (also used by later migrations): adds a constraint when the
-- table has none of that name. A NOT VALID one (p_not_valid) binds every new
-- row at once and is then validated where the existing rows comply (a NOTICE
-- says when they do not: the constraint stays NOT VALID, the rows are kept).
create or replace function public.automation_ensure_constraint(
  p_table regclass, p_name text, p_definition text, p_not_valid boolean default false)
returns void language plpgsql set search_path = public, pg_temp as $$
declare
  v_valid boolean;
begin
  select c.convalidated into v_valid from pg_constraint c where c.conrelid = p_table and c.conname = p_name;
  if v_valid is null then
    execute format('alter table %s add constraint %I %s%s', p_table, p_name, p_definition,
                   case when p_not_valid then ' not valid' else '' end);
    v_valid := not p_not_valid;
  end if;
  if not v_valid then
    begin
      execute format('alter table %s validate constraint %I', p_table, p_name);
    exception when check_violation or foreign_key_violation then
      raise notice 'dueflow: constraint % on % stays NOT VALID: rows written before dueflow do not satisfy it (kept as they are; new rows must)',
        p_name, p_table;
    end;
  end if;
end
$$;
comment on function public.automation_ensure_constraint(regclass, text, text, boolean) is
  'Migration helper: adds constraint p_name (p_definition) to p_table unless one of that name exists; with p_not_valid it is added NOT VALID and then validated when the existing rows comply (otherwise it stays NOT VALID, with a NOTICE).';
revoke all on function public.automation_ensure_constraint(regclass, text, text, boolean)
  from public, anon, authenticated, service_role;

-- Migration helper: renames p_table's column p_old to p_new while the table
-- has p_old and not p_new (an install of dueflow from before the rename).
create or replace function public.automation_rename_column(p_table regclass, p_old text, p_new text)
returns void language plpgsql set search_path = public, pg_temp as $$
begin
  if exists (select 1 from pg_attribute a where a.attrelid = p_table and a.attname = p_old and not a.attisdropped)
     and not exists (select 1 from pg_attribute a where a.attrelid = p_table and a.attname = p_new and not a.attisdropped) then
    execute format('alter table %s rename column %I to %I', p_table, p_old, p_new);
  end if;
end
$$;
comment on function public.automation_rename_column(regclass, text, text) is
  'Migration helper: renames column p_old of p_table to p_new while p_table has p_old and not p_new.';
revoke all on function public.automation_rename_column(regclass, text, text)
  from public, anon, authenticated, service_role;
