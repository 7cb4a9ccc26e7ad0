-- The reference source views over dueflow's reference domain
-- (20261129000100_domain.sql), with ids as text, and the expression indexes
-- that keep the claim's, the dispatcher's and the checks' lookups index scans
-- (moved here from 20261129000100_domain.sql when their id columns became
-- text). The reference tables keep their uuid ids; the views expose id::text.
--
-- A view is (re)defined here only while it is dueflow's: absent, the previous
-- reference definition (uuid ids: dropped and created again, as a view
-- column's type cannot change in place) or the current one. An adopter's own
-- view is never replaced; one still delivering non-text ids keeps working
-- (the functions read every id as text) and gets a NOTICE. The indexes are
-- created only where the reference view reads the reference table.
-- Idempotent.

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
    if to_regclass('public.' || v.name) is null then
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
