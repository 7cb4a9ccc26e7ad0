-- Indexes the steady-state checks need on the reference jobs table
-- (20261202001300_check_watermarks.sql; the invoice check's are in
-- 20261129000100_domain.sql). Each serves a per-organisation range scan
-- through automation_src_jobs, whose organization_id, status, completed_at
-- and updated_at are the table's columns. Idempotent.

-- maintenance: services whose due moment (completed_at + months) fell since
-- the last run
create index if not exists jobs_completed_at_idx on public.jobs (organization_id, completed_at)
  where status = 'completed';
-- maintenance: an organisation's jobs changed since the last run (any
-- status); stale jobs: jobs whose last activity + days_inactive passed since
-- the last run, whatever statuses the workflow names
create index if not exists jobs_org_updated_idx on public.jobs (organization_id, updated_at);
