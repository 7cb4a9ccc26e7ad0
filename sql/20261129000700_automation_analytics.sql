-- dueflow analytics and housekeeping.

create or replace function public.update_automation_analytics(p_days integer default 2)
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_count integer;
begin
  -- Recompute the last p_days days (UTC) from the executions and the
  -- deliveries ledger and overwrite: running it any number of times gives
  -- the same figures (never re-added).
  with days as (
    select ((now() at time zone 'UTC')::date - g)::date as d from generate_series(0, greatest(p_days, 1) - 1) g
  ), ex as (
    select e.organization_id, e.workflow_id, (e.completed_at at time zone 'UTC')::date as d,
           count(*) as executions,
           count(*) filter (where e.status = 'completed') as completed,
           count(*) filter (where e.status = 'failed') as failed,
           count(*) filter (where e.status = 'skipped') as skipped
    from public.automation_execution_logs e
    where e.completed_at >= (select min(d) from days)::timestamp at time zone 'UTC'
      and e.status in ('completed', 'failed', 'skipped', 'cancelled')
    group by 1, 2, 3
  ), dl as (
    select e.organization_id, e.workflow_id, (d.sent_at at time zone 'UTC')::date as d,
           count(*) filter (where d.channel = 'email') as emails_sent,
           count(*) filter (where d.channel = 'sms') as sms_sent
    from public.automation_deliveries d
    join public.automation_execution_logs e on e.id = d.execution_id
    where d.status = 'sent' and d.sent_at >= (select min(d) from days)::timestamp at time zone 'UTC'
    group by 1, 2, 3
  ), agg as (
    select coalesce(ex.organization_id, dl.organization_id) as organization_id,
           coalesce(ex.workflow_id, dl.workflow_id) as workflow_id,
           coalesce(ex.d, dl.d) as d,
           coalesce(ex.executions, 0) as executions, coalesce(ex.completed, 0) as completed,
           coalesce(ex.failed, 0) as failed, coalesce(ex.skipped, 0) as skipped,
           coalesce(dl.emails_sent, 0) as emails_sent, coalesce(dl.sms_sent, 0) as sms_sent
    from ex full join dl on dl.organization_id = ex.organization_id and dl.workflow_id = ex.workflow_id and dl.d = ex.d
  ), up as (
    insert into public.automation_analytics as a
      (organization_id, workflow_id, date, executions, completed, failed, skipped, emails_sent, sms_sent)
    select organization_id, workflow_id, d, executions, completed, failed, skipped, emails_sent, sms_sent
    from agg
    where exists (select 1 from public.automation_workflows w where w.id = agg.workflow_id)
    order by organization_id, workflow_id, d
    on conflict (organization_id, workflow_id, date) do update set
      executions = excluded.executions, completed = excluded.completed, failed = excluded.failed,
      skipped = excluded.skipped, emails_sent = excluded.emails_sent, sms_sent = excluded.sms_sent,
      updated_at = now()
    where (a.executions, a.completed, a.failed, a.skipped, a.emails_sent, a.sms_sent)
      is distinct from (excluded.executions, excluded.completed, excluded.failed, excluded.skipped,
                        excluded.emails_sent, excluded.sms_sent)
    returning 1
  )
  select count(*) into v_count from up;
  return v_count;
end
$$;
comment on function public.update_automation_analytics(integer) is
  'Reconciles automation_analytics for the last p_days days (UTC) with the executions and deliveries (overwrites, idempotent). Returns the number of rows corrected.';

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

revoke all on function public.update_automation_analytics(integer), public.automation_cleanup(interval, interval)
  from public, anon, authenticated;
grant execute on function public.update_automation_analytics(integer), public.automation_cleanup(interval, interval)
  to service_role;
