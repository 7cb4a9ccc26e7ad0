-- The replaced system's pg_cron jobs (REPLACED_SYSTEM.md: names and
-- schedules; check-appointment-reminders, seasonal-maintenance-reminders and
-- process-automation-queue are on some installs only, their schedules are
-- plausible ones). Run only in the database where pg_cron is installed (the
-- one of cron.database_name; on Supabase: postgres), after the other files.
-- cron.schedule with a job name updates an existing job of that name:
-- re-running changes nothing.
--
-- The jobs are active, as an install has them; with the session setting
-- replaced.cron_paused = 'on' they are inactive (for tests that must not have
-- them fire).

do $fixture$
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    raise exception 'replaced fixture: pg_cron is not installed in database % (cron.sql runs in the pg_cron database only)',
      current_database();
  end if;
end
$fixture$;

select cron.schedule('check-automation-triggers', '* * * * *', 'SELECT check_automation_triggers();');
select cron.schedule('process-automations', '* * * * *', 'SELECT process_pending_automations();');
select cron.schedule('check-overdue-invoices', '0 9 * * *', 'SELECT check_overdue_invoices();');
select cron.schedule('check-maintenance-reminders', '0 8 * * *', 'SELECT check_maintenance_reminders();');
select cron.schedule('update-automation-analytics', '0 * * * *', 'SELECT update_automation_analytics();');
select cron.schedule('cleanup-automation-logs', '0 2 * * 0', 'SELECT cleanup_automation_logs();');
select cron.schedule('check-appointment-reminders', '0 * * * *', 'SELECT check_appointment_reminders();');
select cron.schedule('seasonal-maintenance-reminders', '0 9 1 3,6,9,12 *', 'SELECT seasonal_maintenance_reminders();');
-- posts to the executor Edge Function; URL and service-role key from
-- app.settings.* (docs/bug-classes.md, class 7: the key lives in database settings)
select cron.schedule('process-automation-queue', '*/5 * * * *', $cmd$
  SELECT net.http_post(
    url := current_setting('app.settings.supabase_url', true) || '/functions/v1/automation-executor',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || current_setting('app.settings.service_role_key', true)
    ),
    body := jsonb_build_object('source', 'cron', 'time', now())
  );
$cmd$);

-- active, or paused for tests (cron.schedule keeps an existing job's active flag)
select cron.alter_job(jobid, active := coalesce(current_setting('replaced.cron_paused', true), '') <> 'on')
from cron.job
where jobname in ('check-automation-triggers', 'process-automations', 'check-overdue-invoices',
                  'check-maintenance-reminders', 'update-automation-analytics', 'cleanup-automation-logs',
                  'check-appointment-reminders', 'seasonal-maintenance-reminders', 'process-automation-queue');
