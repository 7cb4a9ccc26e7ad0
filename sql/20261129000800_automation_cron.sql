-- dueflow cron jobs and the automation_cron_status view.
--
-- pg_cron lives in one database per cluster (cron.database_name). In that
-- database this migration schedules the jobs (cron.schedule with a job name
-- upserts: re-running never duplicates) and defines automation_cron_status
-- over cron.job and cron.job_run_details. In any other database (pg_cron not
-- installed) it skips the jobs with a NOTICE and defines the view with the
-- same columns, reporting queue health only. Enable pg_cron first (Supabase:
-- Database > Extensions), then (re-)run this migration.

-- automation_queue_health is created here only when absent (automation_cron_status
-- reads it); its current definition, with the columns added since, is in
-- 20261202000200_check_isolation.sql, so re-running this file never reverts it.
do $migration$
begin
  if to_regclass('public.automation_queue_health') is null then
    execute $view$
      create view public.automation_queue_health as
      select
        count(*) filter (where status = 'pending') as pending,
        count(*) filter (where status = 'pending' and next_attempt_at <= now()) as due_now,
        count(*) filter (where status = 'running') as running,
        count(*) filter (where status = 'running' and lease_expires_at < now()) as expired_leases,
        count(*) filter (where status = 'failed' and completed_at > now() - interval '1 hour') as failed_last_hour,
        coalesce(extract(epoch from now() - min(next_attempt_at) filter (where status = 'pending' and next_attempt_at <= now())), 0)::bigint
          as oldest_due_age_seconds
      from public.automation_execution_logs
      where status in ('pending', 'running') or (status = 'failed' and completed_at > now() - interval '1 hour')
    $view$;
  end if;
end
$migration$;

do $migration$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('check-automation-triggers', '* * * * *', 'select public.check_automation_triggers()');
    perform cron.schedule('check-overdue-invoices', '* * * * *', 'select public.check_overdue_invoices()');
    perform cron.schedule('check-maintenance-reminders', '* * * * *', 'select public.check_maintenance_reminders()');
    perform cron.schedule('process-automations', '* * * * *', 'select public.process_pending_automations()');
    perform cron.schedule('update-automation-analytics', '7 * * * *', 'select public.update_automation_analytics()');
    perform cron.schedule('cleanup-automation-history', '17 3 * * *', 'select public.automation_cleanup()');

    execute $view$
      create or replace view public.automation_cron_status as
      select j.jobname::text as job_name, j.schedule::text as schedule, j.active,
             r.last_run_started_at, r.last_run_finished_at, r.last_run_status,
             coalesce(r.runs, 0) as runs, coalesce(r.successes, 0) as successes,
             coalesce(r.failures, 0) as failures,
             case when coalesce(r.runs, 0) > 0 then round(100.0 * r.successes / r.runs, 1) end as success_rate,
             q.pending, q.due_now, q.running, q.expired_leases, q.failed_last_hour, q.oldest_due_age_seconds
      from cron.job j
      left join lateral (
        select max(d.start_time) as last_run_started_at, max(d.end_time) as last_run_finished_at,
               (array_agg(d.status order by d.start_time desc))[1] as last_run_status,
               count(*) as runs,
               count(*) filter (where d.status = 'succeeded') as successes,
               count(*) filter (where d.status = 'failed') as failures
        from cron.job_run_details d where d.jobid = j.jobid
      ) r on true
      cross join public.automation_queue_health q
      where j.jobname in ('check-automation-triggers', 'check-overdue-invoices', 'check-maintenance-reminders',
                          'process-automations', 'update-automation-analytics', 'cleanup-automation-history')
    $view$;
  else
    raise notice 'dueflow: pg_cron is not installed in database %; cron jobs not scheduled (automation_cron_status shows queue health only)', current_database();
    execute $view$
      create or replace view public.automation_cron_status as
      select '(pg_cron not installed in this database)'::text as job_name, null::text as schedule, false as active,
             null::timestamptz as last_run_started_at, null::timestamptz as last_run_finished_at, null::text as last_run_status,
             0::bigint as runs, 0::bigint as successes, 0::bigint as failures, null::numeric as success_rate,
             q.pending, q.due_now, q.running, q.expired_leases, q.failed_last_hour, q.oldest_due_age_seconds
      from public.automation_queue_health q
    $view$;
  end if;
end
$migration$;
comment on view public.automation_cron_status is
  'dueflow cron jobs (name, schedule, active, last run start/end/status, runs, successes, failures, success rate %) with queue health (pending, due now, running, expired leases, failed in the last hour, oldest due age in seconds). service_role only.';

revoke all on public.automation_queue_health, public.automation_cron_status from public, anon, authenticated;
grant select on public.automation_queue_health, public.automation_cron_status to service_role;
