-- dueflow analytics and housekeeping.

-- update_automation_analytics: moved to 20261202001000_inplace_upgrade.sql
-- when the analytics columns took the replaced system's names.

create or replace function public.automation_cleanup(
  p_keep_cron_runs interval default interval '7 days',
  p_keep_executions interval default interval '90 days')
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_runs integer := 0;
  v_execs integer := 0;
begin
  if to_regclass('cron.job_run_details') is not null then
    execute 'delete from cron.job_run_details where coalesce(end_time, start_time) < now() - $1' using p_keep_cron_runs;
    get diagnostics v_runs = row_count;
  end if;
  -- a finished execution is also the occurrence key that stops the checks
  -- from creating its reminder again: delete it only when that occurrence
  -- cannot recur (a past scheduled run, an appointment whose start has
  -- passed, or a newer occurrence of the same workflow and subject exists,
  -- e.g. a later reminder day of the invoice, a later stale spell of the
  -- job). The newest invoice, maintenance and stale-job reminder per subject
  -- stays: deleting it would send that reminder again on the next check.
  -- (set-based: one pass for the newest occurrence per workflow and subject)
  with old as (
    select e.id, e.workflow_id, e.subject_id, e.created_at, e.trigger_type, e.deadline_at
    from public.automation_execution_logs e
    where e.status in ('completed', 'failed', 'skipped', 'cancelled')
      and e.completed_at < now() - p_keep_executions
  ), newest as (
    select n.workflow_id, n.subject_id, max(n.created_at) as created_at
    from public.automation_execution_logs n
    where (n.workflow_id, n.subject_id) in (select o.workflow_id, o.subject_id from old o)
    group by n.workflow_id, n.subject_id
  ), gone as (
    select o.id from old o
    left join newest m on m.workflow_id = o.workflow_id and m.subject_id = o.subject_id
    where o.trigger_type = 'scheduled'
       or (o.trigger_type = 'appointment' and o.deadline_at < now())
       or o.created_at < m.created_at
  )
  delete from public.automation_execution_logs e
  using gone where e.id = gone.id;
  get diagnostics v_execs = row_count;
  -- pg_net owns this table and expires it itself (pg_net.ttl); where this
  -- role may not delete from it, skip it rather than roll back the cleanup
  if to_regclass('net._http_response') is not null then
    begin
      execute 'delete from net._http_response where created < now() - $1' using p_keep_cron_runs;
    exception when insufficient_privilege then
      raise notice 'automation_cleanup: no privilege on net._http_response; left to pg_net.ttl';
    end;
  end if;
  return v_runs + v_execs;
end
$$;
comment on function public.automation_cleanup(interval, interval) is
  'Daily housekeeping: deletes cron.job_run_details older than p_keep_cron_runs (by end_time, or start_time for runs interrupted without one), finished executions (and their deliveries) older than p_keep_executions whose occurrence cannot recur (scheduled runs, past appointments, occurrences with a newer one of the same workflow and subject; the newest per subject stays as the key that prevents a duplicate reminder), and old pg_net responses. Returns rows deleted (runs + executions).';

revoke all on function public.automation_cleanup(interval, interval)
  from public, anon, authenticated;
grant execute on function public.automation_cleanup(interval, interval)
  to service_role;
