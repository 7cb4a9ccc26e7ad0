-- dueflow reference domain (optional: sql/reference/, applied with the core
-- sql/*.sql): organisations, members, clients, jobs, invoices, their indexes,
-- RLS and triggers, and the hook automation_current_org_ids over
-- organization_members. The source views over these tables and the
-- overdue-marking hook are in 20261202000601_text_ids_reference.sql. It needs
-- only the core's 20261129000050_core.sql (helpers and defaults). An app that
-- adopts dueflow does not apply this set: it defines the automation_src_*
-- views and the hooks over its own tables. Idempotent.

create table if not exists public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  timezone text not null default 'UTC' check (public.automation_is_valid_timezone(timezone)),
  country_code text not null default 'US' check (country_code ~ '^[A-Z]{2}$'),
  send_window_start time not null default '09:00',
  send_window_end time not null default '17:00',
  sender_name text not null default '',
  sender_email text not null default '',
  reply_to_email text not null default '',
  phone text not null default '',
  portal_url text not null default '',
  created_at timestamptz not null default now(),
  constraint organizations_send_window_check check (send_window_start <> send_window_end)
);

create table if not exists public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null,
  role text not null default 'member',
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
create index if not exists organization_members_user_idx on public.organization_members (user_id);

create table if not exists public.clients (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  first_name text not null default '',
  last_name text not null default '',
  email text,
  phone text,
  email_opt_out boolean not null default false,
  sms_opt_out boolean not null default false,
  created_at timestamptz not null default now(),
  constraint clients_org_id_key unique (organization_id, id)
);

create table if not exists public.jobs (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  client_id uuid,
  title text not null default '',
  job_type text not null default 'service',
  status text not null default 'scheduled'
    check (status in ('scheduled', 'in_progress', 'completed', 'cancelled')),
  scheduled_start timestamptz,
  completed_at timestamptz,
  address text not null default '',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint jobs_org_id_key unique (organization_id, id),
  -- a job's client belongs to the job's organisation
  constraint jobs_client_fkey foreign key (organization_id, client_id)
    references public.clients (organization_id, id) on delete cascade
);

create table if not exists public.invoices (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  client_id uuid not null,
  job_id uuid,
  number text not null,
  status text not null default 'draft'
    check (status in ('draft', 'sent', 'overdue', 'paid', 'cancelled', 'void')),
  due_date date not null,
  total numeric(12,2) not null default 0,
  balance numeric(12,2) not null default 0,
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  portal_url text not null default '',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint invoices_client_fkey foreign key (organization_id, client_id)
    references public.clients (organization_id, id) on delete cascade,
  constraint invoices_job_fkey foreign key (organization_id, job_id)
    references public.jobs (organization_id, id) on delete set null (job_id)
);

create index if not exists clients_org_idx on public.clients (organization_id);
create index if not exists jobs_client_idx on public.jobs (organization_id, client_id);
-- maintenance: a client's last completed service (by the client id as text:
-- jobs_completed_text_idx, 20261202000601_text_ids_reference.sql)
-- appointment reminders: upcoming scheduled jobs
create index if not exists jobs_upcoming_idx on public.jobs (organization_id, scheduled_start)
  where status = 'scheduled';
-- stale jobs: open jobs by last activity
create index if not exists jobs_open_activity_idx on public.jobs (organization_id, updated_at)
  where status in ('scheduled', 'in_progress');
-- invoice checks: open invoices by due date (sent/overdue with a balance) ...
create index if not exists invoices_open_due_idx on public.invoices (organization_id, due_date)
  where status in ('sent', 'overdue') and balance > 0;
-- ... sent invoices to mark overdue ...
create index if not exists invoices_sent_due_idx on public.invoices (organization_id, due_date)
  where status = 'sent';
-- ... and open invoices changed recently (picked up by the steady-state check)
create index if not exists invoices_open_updated_idx on public.invoices (updated_at)
  where status in ('sent', 'overdue') and balance > 0;
create index if not exists invoices_client_idx on public.invoices (organization_id, client_id);

drop trigger if exists jobs_touch on public.jobs;
create trigger jobs_touch before update on public.jobs
  for each row execute function public.automation_touch_updated_at();
drop trigger if exists invoices_touch on public.invoices;
create trigger invoices_touch before update on public.invoices
  for each row execute function public.automation_touch_updated_at();

-- RLS: members read their organisations' rows; the service role bypasses RLS.
-- The membership hook replaces the core's default (or its own earlier
-- definition) only: an adopter's own hook is kept.
do $migration$
declare
  v_body constant text := $body$
  select organization_id from public.organization_members where user_id = auth.uid()
$body$;
  v_src text;
begin
  select p.prosrc into v_src from pg_proc p where p.oid = to_regprocedure('public.automation_current_org_ids()');
  if v_src is null or v_src = v_body or v_src = public.automation_core_default('automation_current_org_ids') then
    execute format($f$create or replace function public.automation_current_org_ids() returns setof uuid
      language sql stable security definer set search_path = public, pg_temp as %L$f$, v_body);
    comment on function public.automation_current_org_ids() is
      'Organisations the calling user (auth.uid()) is a member of; the basis of every RLS policy.';
    revoke all on function public.automation_current_org_ids() from public, anon;
    grant execute on function public.automation_current_org_ids() to authenticated, service_role;
  else
    raise notice 'dueflow: automation_current_org_ids is the adopter''s own; kept as is';
  end if;
end
$migration$;

alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
alter table public.clients enable row level security;
alter table public.jobs enable row level security;
alter table public.invoices enable row level security;

drop policy if exists organizations_member_read on public.organizations;
create policy organizations_member_read on public.organizations for select to authenticated
  using (id in (select public.automation_current_org_ids()));
drop policy if exists organization_members_self_read on public.organization_members;
create policy organization_members_self_read on public.organization_members for select to authenticated
  using (organization_id in (select public.automation_current_org_ids()));
select public.automation_member_read_policy(t)
from unnest('{public.clients,public.jobs,public.invoices}'::regclass[]) t;

revoke all on public.organizations, public.organization_members, public.clients, public.jobs, public.invoices from anon;

-- Source views (automation_src_organizations, _clients, _jobs, _invoices):
-- 20261202000601_text_ids_reference.sql defines the reference ones over these
-- tables (ids as text) and never replaces an adopter's own.
