-- dueflow adapter for the replaced system: the indexes the watermarked job
-- checks (core 20261202001300_check_watermarks.sql) need on the app's jobs.
-- In a file of its own because 20261202000900 was already released: an
-- install that applied it gets these here. Idempotent.

-- the maintenance check: an organisation's (its users') services whose due
-- moment passed since the last run (the view's completed_at expression)
create index if not exists automation_src_jobs_completed_idx on public.jobs (user_id,
  (case when public.automation_replaced_job_status(status) = 'completed'
        then coalesce(schedule_end, date, updated_at) end))
  where public.automation_replaced_job_status(status) = 'completed' and deleted_at is null;
-- the maintenance check (jobs changed since the last run) and the stale-job
-- check (last activity + days_inactive passed since the last run)
create index if not exists automation_src_jobs_updated_idx on public.jobs (user_id, updated_at)
  where deleted_at is null;
