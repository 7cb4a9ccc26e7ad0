-- dueflow automation tables: workflows, executions, deliveries ledger,
-- endpoints, schedule state, analytics. RLS on every table. Idempotent.
-- organization_id is the tenant id of the automation_src_* views; the
-- automation tables keep tenant consistency among themselves by composite
-- foreign keys (an execution's workflow belongs to the same organisation).
--
-- On the database of the system dueflow replaces (../shared/REPLACED_SYSTEM.md,
-- internal/replaced) automation_workflows, automation_execution_logs and
-- automation_analytics already exist with its columns and rows, and its app
-- keeps reading and writing them: `create table if not exists` skips them, so
-- every dueflow column is added below with `add column if not exists`
-- (nullable, or with a default, where the app's rows or writes could not
-- satisfy NOT NULL), before any index or constraint that needs it. There:
--   * automation_workflows keeps the app's nullable columns and gets none of
--     the CHECKs on trigger_type, trigger_config and steps: the app writes its
--     own shapes, which dueflow reads through automation_workflow_spec and
--     marks when it cannot run them (never refuses them).
--   * automation_execution_logs: the replaced system's rows (history) get
--     dueflow's columns and the occurrence key 'legacy:<id>'; the open ones
--     (pending, running, processing, delayed: never reliably processed, some
--     months old) are closed in the same transaction, never sent: status
--     cancelled, error_code legacy_not_sent, without being counted in the
--     workflow counters or analytics (dueflow's checks create what is still
--     due). Its workflow and organisation are taken from the workflow (the
--     older automation_id too). NOT NULL of workflow_id, organization_id,
--     action and subject_type is a CHECK added NOT VALID (rows the old system
--     wrote without them are kept; every new row must have them), validated
--     where every row complies; the composite foreign key likewise.
--   * dueflow's names beside the replaced system's (actions_count, the
--     analytics columns, automation_schedule_state) and the drop of `using
--     (true)` policies: 20261202000050_replaced_names.sql.
--   * the replaced system's row trigger function
--     handle_universal_automation_triggers() no longer creates work (dueflow's
--     checks create it); its triggers stay, so the app's writes succeed.
--   * the app keeps its own write path on automation_workflows (its policy
--     and grants).

-- Workflows ---------------------------------------------------------------------

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
-- on the app's table: the columns it lacks (its own stay as they are)
alter table public.automation_workflows
  add column if not exists organization_id uuid,
  add column if not exists name text,
  add column if not exists description text default '',
  add column if not exists trigger_type text,
  add column if not exists trigger_config jsonb default '{}',
  add column if not exists steps jsonb default '[]',
  add column if not exists is_active boolean default true,
  add column if not exists max_attempts integer not null default 5 check (max_attempts between 1 and 20),
  add column if not exists execution_count integer default 0,
  add column if not exists success_count integer default 0,
  add column if not exists failure_count integer not null default 0,
  add column if not exists skipped_count integer not null default 0,
  add column if not exists last_triggered_at timestamptz,
  add column if not exists created_at timestamptz default now(),
  add column if not exists updated_at timestamptz default now();
select public.automation_ensure_constraint('public.automation_workflows', 'automation_workflows_org_id_key',
  'unique (organization_id, id)');

-- Executions --------------------------------------------------------------------

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
  actions_count integer not null default 0,
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
-- on the replaced system's table: dueflow's columns (its own stay as they are)
alter table public.automation_execution_logs
  add column if not exists workflow_id uuid,
  add column if not exists organization_id uuid,
  add column if not exists action text check (action in ('send-reminder', 'invoice-reminder', 'run-workflow')),
  add column if not exists trigger_type text,
  add column if not exists occurrence_key text,
  add column if not exists subject_type text check (subject_type in ('invoice', 'job', 'client', 'organization')),
  add column if not exists subject_id text,
  add column if not exists client_id text,
  add column if not exists status text default 'pending',
  add column if not exists attempt integer not null default 0 check (attempt >= 0),
  add column if not exists max_attempts integer not null default 5 check (max_attempts >= 1),
  add column if not exists next_attempt_at timestamptz not null default now(),
  add column if not exists deadline_at timestamptz,
  add column if not exists dispatched_at timestamptz,
  add column if not exists dispatch_count integer not null default 0,
  add column if not exists lease_token uuid,
  add column if not exists lease_expires_at timestamptz,
  add column if not exists step_index integer not null default 0 check (step_index >= 0),
  add column if not exists error_code text,
  add column if not exists error_message text,
  add column if not exists trigger_data jsonb default '{}',
  add column if not exists created_at timestamptz default now(),
  add column if not exists started_at timestamptz,
  add column if not exists completed_at timestamptz,
  add column if not exists updated_at timestamptz not null default now();

-- The replaced system's row trigger (on jobs, clients, estimates, invoices)
-- inserted pending rows that dueflow's checks create themselves (and counted
-- them when triggered): from now on it does nothing. Its triggers stay, so
-- the app's writes to those tables succeed as before.
do $migration$
declare
  v_body constant text := $body$
begin
  -- dueflow: the replaced system's automations no longer start here; dueflow's
  -- pg_cron checks create the executions (20261129000200_automation_tables.sql)
  return coalesce(new, old);
end
$body$;
begin
  if exists (select 1 from pg_proc p where p.oid = to_regprocedure('public.handle_universal_automation_triggers()')
             and p.prosrc is distinct from v_body) then
    execute format($f$create or replace function public.handle_universal_automation_triggers() returns trigger
      language plpgsql security invoker set search_path = public, pg_temp as %L$f$, v_body);
    comment on function public.handle_universal_automation_triggers() is
      'Replaced system''s row trigger on jobs, clients, estimates and invoices, emptied by dueflow''s upgrade: returns the row and does nothing else (dueflow''s pg_cron checks create the executions). Kept so that its triggers, and the app''s writes, keep working.';
    raise notice 'dueflow: handle_universal_automation_triggers() no longer creates executions (its triggers stay; dueflow''s checks create the work)';
  end if;
end
$migration$;

-- The replaced system's rows (no occurrence key yet): dueflow's values, and
-- the open ones closed without sending. Counted nowhere: the counter trigger
-- (automation_execution_logs_count, 20261202001000_inplace_upgrade.sql) comes
-- later in the upgrade, and once dueflow's columns are there no row without an
-- occurrence key can exist, so this runs once, before that trigger does. (The
-- NOT VALID checks below then keep these rows from being updated at all, e.g.
-- reopened by the replaced system's executor, while they are kept.)
do $migration$
declare
  v_closed integer;
  v_rows integer;
begin
  if exists (select 1 from pg_trigger g where g.tgrelid = 'public.automation_execution_logs'::regclass
             and g.tgname = 'automation_execution_logs_count')
     and exists (select 1 from public.automation_execution_logs e where e.occurrence_key is null) then
    raise exception 'dueflow: automation_execution_logs has rows without an occurrence key and the counter trigger: closing them would count them'
      using hint = 'This file converts the replaced system''s rows before the counter trigger exists; apply the files in order.';
  end if;
  with legacy as (
    select e.id,
           e.status not in ('completed', 'failed', 'skipped', 'cancelled') as open,
           -- automation_id: the older duplicate of workflow_id (to_jsonb: the
           -- column exists only where the replaced system ran)
           coalesce(e.workflow_id, w2.id) as workflow_id,
           coalesce(e.organization_id, w1.organization_id, w2.organization_id) as organization_id
    from public.automation_execution_logs e
    left join public.automation_workflows w1 on w1.id = e.workflow_id
    left join public.automation_workflows w2
      on e.workflow_id is null and w2.id::text = to_jsonb(e) ->> 'automation_id'
    where e.occurrence_key is null
  ), upd as (
    update public.automation_execution_logs e set
      workflow_id = l.workflow_id,
      organization_id = l.organization_id,
      occurrence_key = 'legacy:' || e.id,
      trigger_data = coalesce(e.trigger_data, '{}'),
      -- never due: closed below, or finished long ago
      next_attempt_at = coalesce(e.created_at, now()),
      status = case when l.open then 'cancelled' else e.status end,
      error_code = case when l.open then 'legacy_not_sent' end,
      error_message = case when l.open then format(
          'not sent: left %s by the replaced system before the upgrade to dueflow; dueflow''s checks create the reminders still due',
          case when e.status ~ '^[a-z][a-z_-]{0,31}$' then e.status else 'open' end)
        else e.error_message end,
      completed_at = case when l.open then now() else e.completed_at end,
      updated_at = case when l.open then now() else coalesce(e.completed_at, e.started_at, e.created_at, now()) end
    from legacy l
    where e.id = l.id
    returning l.open
  )
  select count(*), count(*) filter (where open) into v_rows, v_closed from upd;
  if v_rows = 0 then
    return;
  end if;
  raise notice 'dueflow: % execution rows of the replaced system kept as history; % left open by it closed without sending (error_code legacy_not_sent)',
    v_rows, v_closed;
end
$migration$;

-- every row has these now
alter table public.automation_execution_logs
  alter column occurrence_key set not null,
  alter column trigger_data set not null;
-- NOT NULL where the replaced system's rows may lack a value: a CHECK, NOT VALID
-- until every row complies (on dueflow's own table the columns are NOT NULL)
do $migration$
declare
  v_col text;
begin
  foreach v_col in array array['workflow_id', 'organization_id', 'action', 'subject_type', 'trigger_type', 'status'] loop
    if exists (select 1 from pg_attribute a where a.attrelid = 'public.automation_execution_logs'::regclass
               and a.attname = v_col and not a.attnotnull and not a.attisdropped) then
      perform public.automation_ensure_constraint('public.automation_execution_logs',
        'automation_execution_logs_' || v_col || '_not_null', format('check (%I is not null)', v_col), true);
    end if;
  end loop;
end
$migration$;
select public.automation_ensure_constraint('public.automation_execution_logs', 'automation_execution_logs_status_check',
  $c$check (status in ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled'))$c$);
select public.automation_ensure_constraint('public.automation_execution_logs', 'automation_execution_logs_occurrence_key',
  'unique (workflow_id, occurrence_key)');
select public.automation_ensure_constraint('public.automation_execution_logs', 'automation_execution_logs_workflow_fkey',
  'foreign key (organization_id, workflow_id) references public.automation_workflows (organization_id, id) on delete cascade',
  true);
select public.automation_ensure_constraint('public.automation_execution_logs', 'automation_execution_logs_lease_check',
  'check ((status = ''running'') = (lease_token is not null and lease_expires_at is not null))');

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

-- Deliveries and endpoints -----------------------------------------------------------

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

-- Triggers, RLS, grants ---------------------------------------------------------------

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

select public.automation_member_read_policy(t)
from unnest('{public.automation_workflows,public.automation_execution_logs,public.automation_deliveries}'::regclass[]) t;


revoke all on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries,
  public.automation_endpoints
  from public, anon;
revoke all on public.automation_execution_logs, public.automation_deliveries, public.automation_endpoints
  from authenticated;
-- automation_workflows: the replaced system's app writes it as its signed-in
-- users through a policy of its own; where such a policy exists, that write
-- path is kept (RLS decides, as before). Elsewhere only service_role writes.
do $migration$
begin
  if not exists (select 1 from pg_policies pol
                 where pol.schemaname = 'public' and pol.tablename = 'automation_workflows'
                   and pol.cmd in ('ALL', 'INSERT', 'UPDATE', 'DELETE')
                   and pol.roles && array['authenticated', 'public']::name[]) then
    revoke all on public.automation_workflows from authenticated;
  end if;
end
$migration$;
grant select on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries
  to authenticated;
grant all on public.automation_workflows, public.automation_execution_logs, public.automation_deliveries,
  public.automation_endpoints to service_role;
