-- Indexes the checks of 20261202001500_tick_scale.sql need on the reference
-- tables: each steady branch is one range scan over every organisation, so
-- each needs an index that leads with the column it ranges over (the
-- per-organisation indexes of 20261202001301 serve the full passes and a
-- run of one organisation). Idempotent.

-- maintenance: services whose due moment (completed_at + months) passed
create index if not exists jobs_completed_at_all_idx on public.jobs (completed_at)
  where status = 'completed';
-- maintenance: jobs changed since the last run; stale jobs: last activity +
-- days_inactive passed
create index if not exists jobs_updated_at_all_idx on public.jobs (updated_at);
-- appointments: the look-ahead window
create index if not exists jobs_upcoming_all_idx on public.jobs (scheduled_start)
  where status = 'scheduled';
-- invoices: reminder days reached (the open invoices changed since the last
-- run: invoices_open_updated_idx)
create index if not exists invoices_open_due_all_idx on public.invoices (due_date)
  where status in ('sent', 'overdue') and balance > 0;
