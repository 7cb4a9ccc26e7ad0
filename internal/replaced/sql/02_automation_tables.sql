-- The replaced system's automation tables with all their columns
-- (REPLACED_SYSTEM.md, "The replaced automation tables"). Idempotent.
-- Only the not-nulls, uniques and foreign keys REPLACED_SYSTEM.md states are
-- constraints here; no check constraints (the app wrote whatever its builder
-- produced). Indexes are the plausible ones of such an install.

-- written by the app's workflow builder
create table if not exists public.automation_workflows (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  organization_id uuid not null,
  name text,
  description text,
  status text default 'draft',             -- active, inactive, draft, paused
  is_active boolean default false,
  enabled boolean default true,
  trigger_type text,
  trigger_config jsonb default '{}',
  trigger_conditions jsonb default '{}',
  triggers jsonb default '[]',
  steps jsonb default '[]',
  template_config jsonb default '{}',
  workflow_config jsonb default '{}',
  visual_config jsonb default '{}',
  nodes jsonb default '[]',
  edges jsonb default '[]',
  settings jsonb default '{}',
  action_type text,
  action_config jsonb default '{}',
  delivery_window jsonb default '{}',
  multi_channel_config jsonb default '{}',
  performance_metrics jsonb default '{}',
  category text,
  template_id uuid,
  workflow_type text default 'visual',
  execution_count integer default 0,
  success_count integer default 0,
  last_triggered_at timestamptz,
  last_executed_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  created_by uuid
);
create index if not exists idx_automation_workflows_organization_id on public.automation_workflows (organization_id);
create index if not exists idx_automation_workflows_active
  on public.automation_workflows (organization_id, trigger_type) where is_active = true and status = 'active';

-- status: pending, running, completed, failed, also processing, delayed; no
-- updated_at; automation_id is the older duplicate of workflow_id
create table if not exists public.automation_execution_logs (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid references public.automation_workflows (id) on delete cascade,
  automation_id uuid,
  organization_id uuid,
  trigger_type text not null,
  trigger_data jsonb,
  status text not null default 'pending',
  actions_executed jsonb,
  error_message text,
  details jsonb,
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz default now(),
  paused_at timestamptz,
  resume_at timestamptz,
  execution_time_ms integer,
  weather_conditions jsonb,
  location_used text,
  trigger_matched_conditions jsonb
);
create index if not exists idx_automation_execution_logs_workflow_id on public.automation_execution_logs (workflow_id);
create index if not exists idx_automation_execution_logs_status on public.automation_execution_logs (status);
create index if not exists idx_automation_execution_logs_created_at on public.automation_execution_logs (created_at desc);

create table if not exists public.automation_schedules (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid references public.automation_workflows (id) on delete cascade,
  cron_expression text not null,
  cron_job_name text unique,
  is_active boolean default true,
  last_run timestamptz,
  next_run timestamptz,
  metadata jsonb default '{}',
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists public.automation_analytics (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid references public.automation_workflows (id) on delete cascade,
  date date,
  execution_count integer default 0,
  success_count integer default 0,
  failure_count integer default 0,
  success_rate numeric(5,2),
  avg_execution_time numeric(10,2),
  total_execution_time numeric(10,2),
  revenue_impact numeric(10,2),
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  unique (workflow_id, date)
);

drop trigger if exists update_automation_workflows_updated_at on public.automation_workflows;
create trigger update_automation_workflows_updated_at before update on public.automation_workflows
  for each row execute function public.update_updated_at_column();
drop trigger if exists update_automation_schedules_updated_at on public.automation_schedules;
create trigger update_automation_schedules_updated_at before update on public.automation_schedules
  for each row execute function public.update_updated_at_column();

-- RLS: the app's members manage their organisation's workflows; the logs'
-- policy was `for all using (true)` (docs/bug-classes.md, class 7), kept verbatim.
alter table public.automation_workflows enable row level security;
alter table public.automation_execution_logs enable row level security;
alter table public.automation_schedules enable row level security;
alter table public.automation_analytics enable row level security;

drop policy if exists "Users manage their organization's workflows" on public.automation_workflows;
create policy "Users manage their organization's workflows" on public.automation_workflows for all to authenticated
  using (organization_id = public.get_user_organization_id())
  with check (organization_id = public.get_user_organization_id());

drop policy if exists "Allow all operations on automation_execution_logs" on public.automation_execution_logs;
create policy "Allow all operations on automation_execution_logs" on public.automation_execution_logs
  for all using (true);

drop policy if exists "Users see their workflows' schedules" on public.automation_schedules;
create policy "Users see their workflows' schedules" on public.automation_schedules for all to authenticated
  using (workflow_id in (select id from public.automation_workflows where organization_id = public.get_user_organization_id()));

drop policy if exists "Users see their workflows' analytics" on public.automation_analytics;
create policy "Users see their workflows' analytics" on public.automation_analytics for select to authenticated
  using (workflow_id in (select id from public.automation_workflows where organization_id = public.get_user_organization_id()));
