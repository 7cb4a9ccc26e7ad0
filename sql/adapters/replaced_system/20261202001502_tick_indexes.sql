-- dueflow adapter for the replaced system: the indexes the checks of core
-- 20261202001500_tick_scale.sql need on the app's tables (each steady branch
-- is one range scan over every organisation, by the view's column). In a
-- file of its own because the earlier adapter files were already released.
-- (On a large live table create them beforehand with CREATE INDEX
-- CONCURRENTLY under the same names; these statements then skip them.)
-- Idempotent.

-- maintenance: services whose due moment passed (the view's completed_at expression)
create index if not exists automation_src_jobs_completed_at_idx on public.jobs (
  (case when public.automation_replaced_job_status(status) = 'completed'
        then coalesce(schedule_end, date, updated_at) end))
  where public.automation_replaced_job_status(status) = 'completed' and deleted_at is null;
-- maintenance (jobs changed since the last run), stale jobs (last activity passed)
create index if not exists automation_src_jobs_updated_at_idx on public.jobs (updated_at)
  where deleted_at is null;
-- appointments: the look-ahead window
create index if not exists automation_src_jobs_upcoming_at_idx on public.jobs (schedule_start)
  where public.automation_replaced_job_status(status) = 'scheduled' and deleted_at is null;
-- invoices: reminder days reached
create index if not exists automation_src_invoices_open_due_at_idx on public.invoices (due_date)
  where public.automation_replaced_invoice_status(status, payment_status) in ('sent', 'overdue');
