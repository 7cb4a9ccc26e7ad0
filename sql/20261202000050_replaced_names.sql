-- dueflow's names beside the replaced system's: its schedule state, its count
-- of actions and its analytics columns. A later file than
-- 20261129000200_automation_tables.sql (which an install may have applied
-- before these changes), so that every install gets them: an install of
-- dueflow from before renames automation_schedules to
-- automation_schedule_state (automation_schedules is the replaced system's own
-- table of cron expressions), its integer actions_executed to actions_count
-- (the replaced system's actions_executed is a jsonb history its app reads),
-- and its analytics columns executions, completed, failed to the replaced
-- system's execution_count, success_count, failure_count (+ success_rate).
-- On the replaced system's database its tables keep their rows and columns
-- and get dueflow's. Idempotent.

-- dueflow's count of actions was actions_executed (integer) before the
-- replaced system's jsonb history of that name had to fit beside it
do $migration$
begin
  if exists (select 1 from pg_attribute a where a.attrelid = 'public.automation_execution_logs'::regclass
             and a.attname = 'actions_executed' and a.atttypid = 'integer'::regtype and not a.attisdropped) then
    perform public.automation_rename_column('public.automation_execution_logs', 'actions_executed', 'actions_count');
  end if;
end
$migration$;
-- the replaced system's table: dueflow's count beside its jsonb history
alter table public.automation_execution_logs add column if not exists actions_count integer not null default 0;

-- Schedule state ------------------------------------------------------------------
-- The next run of each scheduled workflow. It was automation_schedules, the
-- name of the replaced system's own table (cron expressions): an install of
-- dueflow from before renames it here; on the replaced system's database that
-- table stays the app's.

do $migration$
begin
  if to_regclass('public.automation_schedule_state') is null
     and exists (select 1 from pg_attribute a where a.attrelid = to_regclass('public.automation_schedules')
                 and a.attname = 'next_run_at' and not a.attisdropped)
     and not exists (select 1 from pg_attribute a where a.attrelid = to_regclass('public.automation_schedules')
                     and a.attname = 'cron_expression' and not a.attisdropped) then
    alter table public.automation_schedules rename to automation_schedule_state;
    alter table public.automation_schedule_state rename constraint automation_schedules_pkey to automation_schedule_state_pkey;
    alter table public.automation_schedule_state
      rename constraint automation_schedules_workflow_id_fkey to automation_schedule_state_workflow_id_fkey;
    alter index if exists public.automation_schedules_due_idx rename to automation_schedule_state_due_idx;
    drop policy if exists automation_schedules_member_read on public.automation_schedule_state;
    raise notice 'dueflow: automation_schedules renamed automation_schedule_state (dueflow''s schedule state; the name is the replaced system''s)';
  end if;
end
$migration$;

create table if not exists public.automation_schedule_state (
  workflow_id uuid primary key references public.automation_workflows (id) on delete cascade,
  organization_id uuid not null,
  next_run_at timestamptz not null,
  last_run_at timestamptz,
  -- the configuration and zone the next run was computed from (a change recomputes it)
  trigger_config jsonb,
  timezone text,
  updated_at timestamptz not null default now()
);
alter table public.automation_schedule_state add column if not exists trigger_config jsonb;
alter table public.automation_schedule_state add column if not exists timezone text;
create index if not exists automation_schedule_state_due_idx on public.automation_schedule_state (next_run_at);

-- Analytics -----------------------------------------------------------------------

-- success_count of execution_count in % (numeric(5,2), the replaced system's
-- automation_analytics.success_rate); NULL without executions
create or replace function public.automation_success_rate(p_success integer, p_executions integer)
returns numeric language sql immutable as $$
  select round(100.0 * least(greatest(p_success, 0), p_executions) / nullif(p_executions, 0), 2)
$$;
comment on function public.automation_success_rate(integer, integer) is
  'success_rate of automation_analytics: p_success of p_executions in % (two decimals, at most 100); NULL when p_executions is 0 or NULL.';


create table if not exists public.automation_analytics (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null,
  workflow_id uuid not null references public.automation_workflows (id) on delete cascade,
  date date not null,
  execution_count integer not null default 0,
  success_count integer not null default 0,
  failure_count integer not null default 0,
  skipped integer not null default 0,
  emails_sent integer not null default 0,
  sms_sent integer not null default 0,
  -- success_count / execution_count, in %
  success_rate numeric(5,2),
  updated_at timestamptz not null default now(),
  constraint automation_analytics_key unique (organization_id, workflow_id, date)
);
-- an install of dueflow from before: the replaced system's names
select public.automation_rename_column('public.automation_analytics', 'executions', 'execution_count');
select public.automation_rename_column('public.automation_analytics', 'completed', 'success_count');
select public.automation_rename_column('public.automation_analytics', 'failed', 'failure_count');
-- the replaced system's table: dueflow's columns (its own stay as they are)
alter table public.automation_analytics
  add column if not exists organization_id uuid,
  add column if not exists execution_count integer not null default 0,
  add column if not exists success_count integer not null default 0,
  add column if not exists failure_count integer not null default 0,
  add column if not exists skipped integer not null default 0,
  add column if not exists emails_sent integer not null default 0,
  add column if not exists sms_sent integer not null default 0,
  add column if not exists success_rate numeric(5,2),
  add column if not exists updated_at timestamptz not null default now();
-- the app's rows: their workflow's organisation; a success rate where missing
update public.automation_analytics a set organization_id = w.organization_id
from public.automation_workflows w
where w.id = a.workflow_id and a.organization_id is null;
update public.automation_analytics a
set success_rate = public.automation_success_rate(a.success_count, a.execution_count)
where a.success_rate is null and a.execution_count > 0 and a.success_count between 0 and a.execution_count;
select public.automation_ensure_constraint('public.automation_analytics', 'automation_analytics_key',
  'unique (organization_id, workflow_id, date)');
create index if not exists automation_analytics_date_idx on public.automation_analytics (date);

-- RLS: members read their organisations' rows; writes go through the
-- service-role functions only.
alter table public.automation_schedule_state enable row level security;
alter table public.automation_analytics enable row level security;
select public.automation_member_read_policy(t)
from unnest('{public.automation_schedule_state,public.automation_analytics}'::regclass[]) t;
-- A policy letting anyone do anything on an automation table (the replaced
-- system's logs had `for all using (true)`): dropped; dueflow's member-read
-- policies stay.
do $migration$
declare
  p record;
begin
  for p in
    select pol.policyname, pol.tablename from pg_policies pol
    where pol.schemaname = 'public'
      and pol.tablename in ('automation_workflows', 'automation_execution_logs', 'automation_deliveries',
                            'automation_endpoints', 'automation_schedule_state', 'automation_analytics')
      and (pol.qual = 'true' or pol.with_check = 'true')
    order by pol.tablename, pol.policyname
  loop
    execute format('drop policy %I on public.%I', p.policyname, p.tablename);
    raise notice 'dueflow: dropped policy "%" on % (it let anyone read and write every row; members read their organisations'' rows through %_member_read)',
      p.policyname, p.tablename, p.tablename;
  end loop;
end
$migration$;
revoke all on public.automation_schedule_state, public.automation_analytics from public, anon, authenticated;
grant select on public.automation_schedule_state, public.automation_analytics to authenticated;
grant all on public.automation_schedule_state, public.automation_analytics to service_role;
