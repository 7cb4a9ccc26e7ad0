-- The cron jobs and the monitoring views under the names and columns of the
-- system dueflow replaces (issue 9), so that an install of that system is
-- upgraded in place and its operators keep their queries. The jobs and
-- automation_cron_status moved here from 20261129000800_automation_cron.sql.
-- Re-running this file changes nothing.
--
-- 1. The replaced system's zero-argument functions named like dueflow's
--    checks (check_overdue_invoices(), ...) are dropped: beside dueflow's
--    versions (every argument defaulted) each call without arguments, the
--    cron commands included, is ambiguous (42725).
-- 2. automation_cron_status has the production columns (job_name, schedule,
--    is_active, last_run, last_run_ended, total_runs, successful_runs,
--    failed_runs, success_rate), then last_run_status. A view of that name
--    with other columns (dueflow's earlier one) is dropped and recreated,
--    unless something depends on it: then this migration stops, naming it.
-- 3. automation_system_health: the replaced system's health view (same
--    columns) over dueflow's tables.
-- 4. The pg_cron jobs where pg_cron is installed (elsewhere a NOTICE): the
--    stable names, the replaced system's name of the cleanup job, and its
--    jobs without a dueflow counterpart unscheduled. A job an operator paused
--    stays paused.

-- 1. The replaced system's zero-argument overloads ---------------------------

do $migration$
declare
  v_name text;
begin
  foreach v_name in array array['check_automation_triggers', 'check_overdue_invoices', 'check_maintenance_reminders',
                                'process_pending_automations', 'update_automation_analytics'] loop
    if to_regprocedure(format('public.%I()', v_name)) is not null then
      execute format('drop function public.%I()', v_name);
      raise notice 'dueflow: dropped the replaced system''s function %() (a call without arguments now runs dueflow''s %)',
        v_name, v_name;
    end if;
  end loop;
end
$migration$;

-- Replacing a view whose columns changed ---------------------------------------

create or replace function public.automation_replace_view(p_schema text, p_name text, p_query text)
returns text language plpgsql as $$
declare
  v_stmt text := format('create or replace view %I.%I as %s', p_schema, p_name, p_query);
  v_oid oid := to_regclass(format('%I.%I', p_schema, p_name));
  v_dependents text;
begin
  if v_oid is null then
    execute v_stmt;
    return 'created';
  end if;
  begin
    execute v_stmt;
    return 'replaced';
  exception when invalid_table_definition then
    -- a column renamed, retyped or dropped: create or replace cannot
    null;
  end;
  -- what depends on the view (or its row type), other than its own rule
  select string_agg(distinct pg_describe_object(d.classid, d.objid, d.objsubid), ', ')
  into v_dependents
  from pg_depend d
  where d.deptype = 'n'
    and ((d.refclassid = 'pg_class'::regclass and d.refobjid = v_oid)
         or (d.refclassid = 'pg_type'::regclass
             and d.refobjid in (select t.oid from pg_type t where t.typrelid = v_oid
                                union all
                                select a.oid from pg_type a join pg_type t on t.oid = a.typelem where t.typrelid = v_oid)))
    and not (d.classid = 'pg_rewrite'::regclass
             and d.objid in (select r.oid from pg_rewrite r where r.ev_class = v_oid));
  if v_dependents is not null then
    raise exception 'dueflow: view %.% has to be recreated with other columns, but other objects depend on it: %',
      p_schema, p_name, v_dependents
      using errcode = '2BP01',
            hint = 'Drop the dependent objects (and recreate them afterwards), then apply this migration again.';
  end if;
  execute format('drop view %I.%I', p_schema, p_name);
  execute v_stmt;
  raise notice 'dueflow: view %.% recreated (its columns differed)', p_schema, p_name;
  return 'recreated';
end
$$;
comment on function public.automation_replace_view(text, text, text) is
  'Migration helper: create or replace view p_schema.p_name as p_query. When the existing view''s columns cannot be kept (renamed, retyped, dropped), drops and recreates it, unless other objects depend on it (then raises 2BP01 naming them). Returns created, replaced or recreated; after a recreate the caller sets grants and comment again.';
revoke all on function public.automation_replace_view(text, text, text) from public, anon, authenticated, service_role;

-- 2. automation_cron_status ------------------------------------------------------

create or replace function public.automation_cron_jobs()
returns table (job_name text, schedule text, command text) language sql immutable as $$
  values ('check-automation-triggers', '* * * * *', 'select public.check_automation_triggers()'),
         ('check-overdue-invoices', '* * * * *', 'select public.check_overdue_invoices()'),
         ('check-maintenance-reminders', '* * * * *', 'select public.check_maintenance_reminders()'),
         ('process-automations', '* * * * *', 'select public.process_pending_automations()'),
         ('update-automation-analytics', '7 * * * *', 'select public.update_automation_analytics()'),
         ('cleanup-automation-logs', '17 3 * * *', 'select public.automation_cleanup()')
$$;
comment on function public.automation_cron_jobs() is
  'dueflow''s pg_cron jobs (name, schedule, command) as the cron migration schedules them; the names are the replaced system''s.';
revoke all on function public.automation_cron_jobs() from public, anon, authenticated;
grant execute on function public.automation_cron_jobs() to service_role;

do $migration$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform public.automation_replace_view('public', 'automation_cron_status', $view$
      select j.jobname as job_name, j.schedule, j.active as is_active,
             max(d.start_time) as last_run, max(d.end_time) as last_run_ended,
             count(d.runid) as total_runs,
             count(d.runid) filter (where d.status = 'succeeded') as successful_runs,
             count(d.runid) filter (where d.status = 'failed') as failed_runs,
             round(100.0 * count(d.runid) filter (where d.status = 'succeeded') / nullif(count(d.runid), 0), 2) as success_rate,
             (array_agg(d.status order by d.start_time desc) filter (where d.runid is not null))[1] as last_run_status
      from cron.job j
      left join cron.job_run_details d on d.jobid = j.jobid
      where j.jobname in (select c.job_name from public.automation_cron_jobs() c)
      group by j.jobid, j.jobname, j.schedule, j.active
    $view$);
  else
    perform public.automation_replace_view('public', 'automation_cron_status', $view$
      select '(pg_cron not installed in this database)'::name as job_name, null::text as schedule, false as is_active,
             null::timestamptz as last_run, null::timestamptz as last_run_ended,
             0::bigint as total_runs, 0::bigint as successful_runs, 0::bigint as failed_runs,
             null::numeric as success_rate, null::text as last_run_status
    $view$);
  end if;
end
$migration$;
comment on view public.automation_cron_status is
  'dueflow''s pg_cron jobs with the replaced system''s columns: job_name, schedule, is_active (false: paused; re-running the migrations keeps a pause), last_run (start), last_run_ended, total_runs, successful_runs, failed_runs, success_rate (%) over the run details pg_cron keeps (automation_cleanup: 7 days); then last_run_status. Without pg_cron in this database: one row saying so. service_role only.';
revoke all on public.automation_cron_status from public, anon, authenticated;
grant select on public.automation_cron_status to service_role;

-- 3. automation_system_health ----------------------------------------------------

-- one scalar subquery per column, each of which can use an index of the logs
-- (due_idx and lease_idx are partial on pending and running, completed_idx is on completed_at)
do $migration$
begin
  perform public.automation_replace_view('public', 'automation_system_health', $view$
    select
      (select count(*) from public.automation_execution_logs where status = 'pending') as pending_count,
      (select count(*) from public.automation_execution_logs where status = 'running') as running_count,
      (select count(*) from public.automation_execution_logs
        where status = 'completed' and completed_at > now() - interval '1 hour') as completed_last_hour,
      (select count(*) from public.automation_execution_logs
        where status = 'failed' and completed_at > now() - interval '1 hour') as failed_last_hour,
      (select max(completed_at) from public.automation_execution_logs where status = 'completed') as last_success,
      (select max(completed_at) from public.automation_execution_logs where status = 'failed') as last_failure,
      (select count(*) from public.automation_workflows where is_active) as active_workflows
  $view$);
end
$migration$;
-- The replaced system's app reads it as its signed-in users: security_invoker,
-- so their counts are over the rows RLS lets them read (their organisation's);
-- service_role (which bypasses RLS) sees every organisation's.
alter view public.automation_system_health set (security_invoker = true);
comment on view public.automation_system_health is
  'The replaced system''s health view over dueflow''s tables: pending and running executions, completed and failed in the last hour, last success and last failure (completed_at), active workflows (is_active). security_invoker: a signed-in member counts their organisations'' rows only; service_role counts all.';
revoke all on public.automation_system_health from public, anon, authenticated;
grant select on public.automation_system_health to authenticated, service_role;

-- 4. The pg_cron jobs --------------------------------------------------------------

do $migration$
declare
  j record;
  v_paused boolean;
  v_old_schedule text;
  v_old_command text;
  v_cleanup_paused boolean;
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    raise notice 'dueflow: pg_cron is not installed in database %; cron jobs not scheduled (automation_cron_status says so)',
      current_database();
    return;
  end if;

  -- an operator's pause of dueflow's earlier cleanup job carries over to its new name
  select bool_or(not active) into v_cleanup_paused from cron.job where jobname = 'cleanup-automation-history';

  -- the replaced system's jobs without a dueflow counterpart, and dueflow's
  -- earlier name of the cleanup job
  for j in
    select c.jobid, c.jobname,
           case c.jobname
             when 'cleanup-automation-history' then 'dueflow''s earlier name of cleanup-automation-logs'
             when 'check-appointment-reminders' then 'appointment reminders run in check-maintenance-reminders'
             when 'seasonal-maintenance-reminders' then 'no dueflow counterpart; maintenance reminders run in check-maintenance-reminders'
             else 'it posted to the replaced system''s Edge Function, which would send a second time'
           end as reason
    from cron.job c
    where c.jobname in ('cleanup-automation-history', 'check-appointment-reminders', 'seasonal-maintenance-reminders',
                        'process-automation-queue')
    order by c.jobname, c.jobid
  loop
    perform cron.unschedule(j.jobid);
    raise notice 'dueflow: unscheduled pg_cron job % (%)', j.jobname, j.reason;
  end loop;

  for j in select c.job_name, c.schedule, c.command from public.automation_cron_jobs() c loop
    select bool_or(not c.active), min(c.schedule), min(c.command) into v_paused, v_old_schedule, v_old_command
    from cron.job c where c.jobname = j.job_name;
    if v_paused is null and j.job_name = 'cleanup-automation-logs' then
      v_paused := v_cleanup_paused;
    end if;
    -- pg_cron keeps a name unique per user: the same name owned by another
    -- role would run beside dueflow's job
    perform cron.unschedule(c.jobid) from cron.job c where c.jobname = j.job_name and c.username <> current_user;
    perform cron.schedule(j.job_name, j.schedule, j.command);
    if v_old_schedule <> j.schedule or v_old_command <> j.command then
      -- the old command is not shown: it may hold a key
      raise notice 'dueflow: pg_cron job % replaced: now % at ''%'' (was % at ''%'')',
        j.job_name, j.command, j.schedule,
        case when v_old_command = j.command then 'the same command' else 'another command' end, v_old_schedule;
    end if;
    if v_paused then
      -- pg_cron 1.4 keeps active when a job is scheduled again; explicit for other versions
      perform cron.alter_job(c.jobid, active := false) from cron.job c where c.jobname = j.job_name and c.active;
      raise notice 'dueflow: pg_cron job % stays paused, as an operator left it; resume: select cron.alter_job(jobid, active := true) from cron.job where jobname = ''%''',
        j.job_name, j.job_name;
    end if;
  end loop;
end
$migration$;
