-- dueflow automation tables: workflows, executions, deliveries ledger,
-- endpoints, schedules, analytics. RLS on every table. Idempotent.
-- organization_id is the tenant id of the automation_src_* views; the
-- automation tables keep tenant consistency among themselves by composite
-- foreign keys (an execution's workflow belongs to the same organisation).

create table if not exists public.automation_workflows (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null,
  name text not null,
  description text not null default '',
  trigger_type text not null
    check (trigger_type in ('scheduled', 'invoice_overdue', 'maintenance_due', 'stale_job', 'appointment')),
  trigger_config jsonb not null default '{}' check (jsonb_typeof(trigger_config) = 'object'),
  steps jsonb not null default '[]' check (jsonb_typeof(steps) = 'array'),
  is_active boolean not null default true,
  max_attempts integer not null default 5 check (max_attempts between 1 and 20),
  execution_count integer not null default 0,
  success_count integer not null default 0,
  failure_count integer not null default 0,
  skipped_count integer not null default 0,
  last_triggered_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint automation_workflows_org_id_key unique (organization_id, id)
);
create index if not exists automation_workflows_active_idx
  on public.automation_workflows (trigger_type, organization_id) where is_active;

create table if not exists public.automation_execution_logs (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid not null,
  organization_id uuid not null,
  action text not null check (action in ('send-reminder', 'invoice-reminder', 'run-workflow')),
  trigger_type text not null,
  occurrence_key text not null,
  subject_type text not null check (subject_type in ('invoice', 'job', 'client', 'organization')),
  -- ids of any type, as text (installs from before: 20261202000600_text_ids.sql)
  subject_id text,
  client_id text,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
  attempt integer not null default 0 check (attempt >= 0),
  max_attempts integer not null default 5 check (max_attempts >= 1),
  next_attempt_at timestamptz not null default now(),
  deadline_at timestamptz,
  dispatched_at timestamptz,
  dispatch_count integer not null default 0,
  lease_token uuid,
  lease_expires_at timestamptz,
  step_index integer not null default 0 check (step_index >= 0),
  error_code text,
  error_message text,
  actions_executed integer not null default 0,
  trigger_data jsonb not null default '{}',
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint automation_execution_logs_occurrence_key unique (workflow_id, occurrence_key),
  constraint automation_execution_logs_workflow_fkey foreign key (organization_id, workflow_id)
    references public.automation_workflows (organization_id, id) on delete cascade,
  constraint automation_execution_logs_lease_check
    check ((status = 'running') = (lease_token is not null and lease_expires_at is not null))
);
-- dispatch and claim: due pending rows per action
create index if not exists automation_execution_logs_due_idx
  on public.automation_execution_logs (action, next_attempt_at) where status = 'pending';
-- lease expiry
create index if not exists automation_execution_logs_lease_idx
  on public.automation_execution_logs (lease_expires_at) where status = 'running';
-- tenant listings and monitoring
create index if not exists automation_execution_logs_org_created_idx
  on public.automation_execution_logs (organization_id, created_at desc);
-- analytics and cleanup of finished rows
create index if not exists automation_execution_logs_completed_idx
  on public.automation_execution_logs (completed_at) where completed_at is not null;
-- superseding: a new occurrence closes the older pending ones of the same
-- workflow and subject (partial: claims and reports, which move rows out of
-- pending, add no entry)
create index if not exists automation_execution_logs_pending_subject_idx
  on public.automation_execution_logs (workflow_id, subject_id) where status = 'pending';
-- (workflow lookups use the occurrence key's unique index; every extra index
-- costs each claim and report, whose updates cannot be HOT)
drop index if exists public.automation_execution_logs_workflow_idx;
drop index if exists public.automation_execution_logs_subject_idx;

create table if not exists public.automation_deliveries (
  id uuid primary key default gen_random_uuid(),
  execution_id uuid not null references public.automation_execution_logs (id) on delete cascade,
  organization_id uuid not null,
  step_index integer not null default 0,
  channel text not null check (channel in ('email', 'sms')),
  recipient text not null,
  provider text not null default '',
  idempotency_key text not null unique,
  status text not null default 'sending' check (status in ('sending', 'sent', 'failed', 'unknown')),
  provider_message_id text,
  error_code text,
  error_message text,
  retryable boolean not null default false,
  attempts integer not null default 1,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  updated_at timestamptz not null default now()
);
create index if not exists automation_deliveries_execution_idx on public.automation_deliveries (execution_id);
create index if not exists automation_deliveries_org_idx on public.automation_deliveries (organization_id, created_at desc);
create index if not exists automation_deliveries_sent_idx on public.automation_deliveries (sent_at) where status = 'sent';

create table if not exists public.automation_endpoints (
  action text primary key check (action in ('send-reminder', 'invoice-reminder', 'run-workflow')),
  url text not null check (url ~ '^https?://'),
  enabled boolean not null default true,
  batch_size integer not null default 100 check (batch_size between 1 and 1000),
  timeout_ms integer not null default 60000 check (timeout_ms between 1000 and 900000),
  secret_name text not null default 'dueflow_webhook_secret',
  updated_at timestamptz not null default now()
);

create table if not exists public.automation_schedules (
  workflow_id uuid primary key references public.automation_workflows (id) on delete cascade,
  organization_id uuid not null,
  next_run_at timestamptz not null,
  last_run_at timestamptz,
  updated_at timestamptz not null default now()
);
-- the configuration the next run was computed from (a change recomputes it)
alter table public.automation_schedules add column if not exists trigger_config jsonb;
alter table public.automation_schedules add column if not exists timezone text;
create index if not exists automation_schedules_due_idx on public.automation_schedules (next_run_at);

create table if not exists public.automation_analytics (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null,
  workflow_id uuid not null references public.automation_workflows (id) on delete cascade,
  date date not null,
  executions integer not null default 0,
  completed integer not null default 0,
  failed integer not null default 0,
  skipped integer not null default 0,
  emails_sent integer not null default 0,
  sms_sent integer not null default 0,
  updated_at timestamptz not null default now(),
  constraint automation_analytics_key unique (organization_id, workflow_id, date)
);
create index if not exists automation_analytics_date_idx on public.automation_analytics (date);

drop trigger if exists automation_workflows_touch on public.automation_workflows;
create trigger automation_workflows_touch before update on public.automation_workflows
  for each row execute function public.automation_touch_updated_at();
-- automation_execution_logs has no touch trigger: every function that
-- updates it sets updated_at itself (claims and reports are the hot path)
drop trigger if exists automation_execution_logs_touch on public.automation_execution_logs;
drop trigger if exists automation_deliveries_touch on public.automation_deliveries;
create trigger automation_deliveries_touch before update on public.automation_deliveries
  for each row execute function public.automation_touch_updated_at();

-- RLS: members read their organisations' rows; writes go through the
-- service-role RPCs only. automation_endpoints has no member policy.
alter table public.automation_workflows enable row level security;
alter table public.automation_execution_logs enable row level security;
alter table public.automation_deliveries enable row level security;
alter table public.automation_endpoints enable row level security;
alter table public.automation_schedules enable row level security;
alter table public.automation_analytics enable row level security;

select public.automation_member_read_policy(t)
from unnest('{public.automation_workflows,public.automation_execution_logs,public.automation_deliveries,
  public.automation_schedules,public.automation_analytics}'::regclass[]) t;

revoke all on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries,
  public.automation_endpoints, public.automation_schedules, public.automation_analytics
  from public, anon, authenticated;
grant select on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries,
  public.automation_schedules, public.automation_analytics to authenticated;
grant all on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries,
  public.automation_endpoints, public.automation_schedules, public.automation_analytics to service_role;
