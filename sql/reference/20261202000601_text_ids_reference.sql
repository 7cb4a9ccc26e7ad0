-- The reference source views over dueflow's reference domain
-- (20261129000100_domain.sql, optional set sql/reference/), with ids as text,
-- the expression indexes that keep the claim's, the dispatcher's and the
-- checks' lookups index scans, and the reference overdue-marking hook. The
-- reference tables keep their uuid ids; the views expose id::text.
--
-- A view is (re)defined here only while it is dueflow's: absent, the core's
-- empty default (20261129000050_core.sql), the previous reference definition
-- (uuid ids: dropped and created again, as a view column's type cannot change
-- in place) or the current one. An adopter's own view is never replaced; one
-- still delivering non-text ids keeps working (the functions read every id as
-- text) and gets a NOTICE. The indexes are created only where the reference
-- view reads the reference table. The hook likewise. Needs the core up to
-- 20261202000500 (automation_replace_view). Idempotent.

-- Each view: its current reference query, the previous one (uuid ids) and the
-- indexes on the reference table that its lookups use (the claim: client,
-- invoice, job by id; the dispatcher's premise skips: invoice, job by id, a
-- client's other jobs; the maintenance check: a client's last completed
-- service and booked visits).
do $migration$
declare
  v record;
  v_types text;
  v_index text;
begin
  for v in
    select * from (values
      ('automation_src_organizations',
       $q$select id, name, timezone, country_code, send_window_start, send_window_end,
                 sender_name, sender_email, reply_to_email, phone, portal_url
          from public.organizations$q$,
       null::text,
       '{}'::text[],
       '{}'::text[]),
      ('automation_src_clients',
       $q$select id::text as id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out
          from public.clients$q$,
       $q$select id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out
          from public.clients$q$,
       '{id}'::text[],
       array['create index if not exists clients_id_text_idx on public.clients ((id::text))']),
      ('automation_src_jobs',
       $q$select id::text as id, organization_id, client_id::text as client_id, title, job_type, status,
                 scheduled_start, completed_at, address, updated_at
          from public.jobs$q$,
       $q$select id, organization_id, client_id, title, job_type, status, scheduled_start,
                 completed_at, address, updated_at
          from public.jobs$q$,
       '{id,client_id}'::text[],
       array['create index if not exists jobs_id_text_idx on public.jobs ((id::text))',
             'create index if not exists jobs_client_text_idx on public.jobs (organization_id, (client_id::text))',
             $i$create index if not exists jobs_completed_text_idx on public.jobs (organization_id, (client_id::text), completed_at desc)
                where status = 'completed'$i$,
             -- its uuid-keyed predecessor serves no lookup any more
             'drop index if exists public.jobs_completed_idx']),
      ('automation_src_invoices',
       $q$select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number,
                 status, due_date, total, balance, currency, portal_url, updated_at
          from public.invoices$q$,
       $q$select id, organization_id, client_id, job_id, number, status, due_date, total,
                 balance, currency, portal_url, updated_at
          from public.invoices$q$,
       '{id,client_id,job_id}'::text[],
       array['create index if not exists invoices_id_text_idx on public.invoices ((id::text))'])
    ) as t(name, current_sql, previous_sql, id_columns, indexes)
  loop
    if to_regclass('public.' || v.name) is null
       or public.automation_view_is('public.' || v.name, public.automation_core_default(v.name)) then
      begin
        perform public.automation_replace_view('public', v.name, v.current_sql);
      exception when undefined_table or undefined_column or datatype_mismatch then
        -- the app's own tables under the reference names: the adopter defines the view
        raise notice 'dueflow: % not defined: the tables it reads are not dueflow''s reference tables (%); define it over your tables (README, Adopting an existing schema)',
          v.name, sqlerrm;
        continue;
      end;
    elsif public.automation_view_is('public.' || v.name, v.current_sql) then
      null;
    elsif v.previous_sql is not null and public.automation_view_is('public.' || v.name, v.previous_sql) then
      -- its id columns change type: dropped and created again (refused, naming
      -- them, when other objects depend on it)
      perform public.automation_replace_view('public', v.name, v.current_sql);
    else
      -- the adopter's own view: kept as it is
      select string_agg(format('%s is %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
        into v_types
      from pg_attribute a
      where a.attrelid = to_regclass('public.' || v.name) and a.attnum > 0 and not a.attisdropped
        and a.attname = any (v.id_columns) and a.atttypid <> 'text'::regtype;
      if v_types is not null then
        raise notice 'dueflow: %: % (kept: your own view). Ids are compared as text: define these columns as text (e.g. id::text) and index that expression (README, Adopting an existing schema)',
          v.name, v_types;
      end if;
      continue;
    end if;
    -- security_invoker: a user querying the view stays subject to the tables' RLS
    execute format('alter view public.%I set (security_invoker = true)', v.name);
    execute format('revoke all on public.%I from anon', v.name);
    -- the view reads the reference table: its lookups' indexes
    foreach v_index in array v.indexes loop
      execute v_index;
    end loop;
  end loop;
end
$migration$;

-- The reference overdue-marking hook, zone-safe: an organisation whose zone
-- is unusable is left out (NULL: UTC). Replaced only while it is dueflow's
-- (absent, the core's default, the previous reference body, or this one):
-- an adopter's own hook, defined by a later migration, is kept. (Moved here
-- from 20261202000200_check_isolation.sql, body unchanged.)
do $migration$
declare
  v_body constant text := $body$
declare
  v_count integer;
  v_keep text := coalesce(current_setting('dueflow.keep_updated_at', true), '');
begin
  -- marking is not app activity: keep updated_at (see automation_touch_updated_at)
  perform set_config('dueflow.keep_updated_at', 'on', true);
  update public.invoices i set status = 'overdue'
  where i.id in (
    select x.id
    from (select o.id, coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o
    cross join lateral (
      select i2.id from public.invoices i2
      where i2.organization_id = o.id and i2.status = 'sent'
        and i2.due_date < (p_now at time zone o.timezone)::date
      offset 0 -- a per-organisation index range scan
    ) x
    where o.timezone is not null);
  get diagnostics v_count = row_count;
  perform set_config('dueflow.keep_updated_at', v_keep, true);
  return v_count;
end
$body$;
  v_src text;
begin
  select p.prosrc into v_src from pg_proc p
  where p.oid = to_regprocedure('public.automation_mark_invoices_overdue(timestamptz)');
  if v_src is null or v_src = v_body or md5(v_src) = '184e2b661177f436f4b917056b348185'
     or v_src = public.automation_core_default('automation_mark_invoices_overdue') then
    execute format($f$create or replace function public.automation_mark_invoices_overdue(p_now timestamptz default now())
      returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as %L$f$, v_body);
    comment on function public.automation_mark_invoices_overdue(timestamptz) is
      'Hook called by check_overdue_invoices(): marks sent invoices past due (organisation-local date; an organisation whose zone is unusable is left out, a NULL zone is UTC) as overdue. Redefine when adopting dueflow on other tables.';
    revoke all on function public.automation_mark_invoices_overdue(timestamptz) from public, anon, authenticated;
    grant execute on function public.automation_mark_invoices_overdue(timestamptz) to service_role;
  else
    raise notice 'dueflow: automation_mark_invoices_overdue is the adopter''s own; kept as is';
  end if;
end
$migration$;
