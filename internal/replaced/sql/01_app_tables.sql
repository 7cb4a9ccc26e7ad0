-- The replaced system's app tables, as a user's install has them
-- (REPLACED_SYSTEM.md, "Ids and ownership"). A test fixture, not part of
-- dueflow: it needs the Supabase stand-ins (internal/supacompat) and none of
-- dueflow's migrations. Idempotent.
--
-- Facts reflected here: jobs.id and clients.id are text ('J-1000', 'C-2000')
-- from a counter function; invoices.id, profiles.id, user_id and
-- organization_id are uuid; invoices.job_id / client_id are text; rows are
-- owned by user_id; clients.organization_id only on newer installs (the
-- older-install variant drops it, older_install.sql); invoices have no
-- organization_id; profiles.timezone (nullable) is the only zone; jobs have
-- no completed_at. Columns not named in REPLACED_SYSTEM.md (notes, city, ...)
-- are the plausible rest of such an app.

-- The id counter behind 'C-2000' and 'J-1000' (one row per entity type).
create table if not exists public.id_counters (
  entity_type text primary key,
  prefix text not null,
  start_value integer not null,
  current_value integer not null
);
insert into public.id_counters (entity_type, prefix, start_value, current_value) values
  ('client', 'C', 2000, 1999),
  ('job', 'J', 1000, 999)
on conflict (entity_type) do nothing;

create or replace function public.generate_next_id(p_entity_type text) returns text
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_prefix text;
  v_next integer;
begin
  update public.id_counters set current_value = current_value + 1
  where entity_type = p_entity_type
  returning prefix, current_value into v_prefix, v_next;
  if v_next is null then
    raise exception 'unknown entity type %', p_entity_type;
  end if;
  return v_prefix || '-' || v_next;
end
$$;
comment on function public.generate_next_id(text) is
  'Replaced system: next text id of an entity type from id_counters (client -> C-2000, C-2001, ...; job -> J-1000, ...).';

-- updated_at stamping, as the app's tables had it
create or replace function public.update_updated_at_column() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function public.update_updated_at_column() is
  'Replaced system: trigger stamping updated_at = now() on every update.';

-- profiles: one per auth user; the organisation and the (nullable, per-user) zone
create table if not exists public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  organization_id uuid,
  name text,
  role text default 'technician',
  timezone text,
  company_name text,
  company_email text,
  company_phone text,
  company_address text,
  company_website text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists public.clients (
  id text primary key default public.generate_next_id('client'),
  user_id uuid references auth.users (id),
  organization_id uuid,
  name text not null,
  first_name text,
  last_name text,
  company text,
  email text,
  phone text,
  address text,
  city text,
  state text,
  zip text,
  type text default 'residential',
  status text default 'active',
  tags text[] default '{}',
  notes text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- status values vary per organisation: no check constraint
create table if not exists public.jobs (
  id text primary key default public.generate_next_id('job'),
  user_id uuid references auth.users (id),
  client_id text references public.clients (id) on delete set null,
  title text,
  description text,
  service text,
  job_type text,
  status text default 'scheduled',
  schedule_start timestamptz,
  schedule_end timestamptz,
  date timestamptz,
  revenue numeric(10,2) default 0,
  tags text[] default '{}',
  address text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  deleted_at timestamptz
);

create table if not exists public.estimates (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references auth.users (id),
  job_id text references public.jobs (id) on delete cascade,
  client_id text references public.clients (id) on delete set null,
  estimate_number text,
  status text default 'draft',
  total numeric(10,2) default 0,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- no organization_id: the organisation is the profile's of user_id
create table if not exists public.invoices (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references auth.users (id),
  job_id text references public.jobs (id) on delete set null,
  client_id text references public.clients (id) on delete set null,
  invoice_number text,
  status text default 'draft',
  payment_status text,
  total numeric(10,2) default 0,
  amount_paid numeric(10,2) default 0,
  balance_due numeric(10,2),
  balance numeric(10,2),
  issue_date date default current_date,
  due_date date,
  paid_at timestamptz,
  payment_link text,
  portal_access_token text,
  notes text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create index if not exists idx_clients_user_id on public.clients (user_id);
create index if not exists idx_jobs_user_id on public.jobs (user_id);
create index if not exists idx_jobs_client_id on public.jobs (client_id);
create index if not exists idx_invoices_user_id on public.invoices (user_id);
create index if not exists idx_invoices_client_id on public.invoices (client_id);
create index if not exists idx_profiles_organization_id on public.profiles (organization_id);

drop trigger if exists update_profiles_updated_at on public.profiles;
create trigger update_profiles_updated_at before update on public.profiles
  for each row execute function public.update_updated_at_column();
drop trigger if exists update_clients_updated_at on public.clients;
create trigger update_clients_updated_at before update on public.clients
  for each row execute function public.update_updated_at_column();
drop trigger if exists update_jobs_updated_at on public.jobs;
create trigger update_jobs_updated_at before update on public.jobs
  for each row execute function public.update_updated_at_column();
drop trigger if exists update_estimates_updated_at on public.estimates;
create trigger update_estimates_updated_at before update on public.estimates
  for each row execute function public.update_updated_at_column();
drop trigger if exists update_invoices_updated_at on public.invoices;
create trigger update_invoices_updated_at before update on public.invoices
  for each row execute function public.update_updated_at_column();

-- RLS as the app had it: users see their organisation's rows (through the
-- owners' profiles); grants are Supabase's defaults (anon, authenticated,
-- service_role), which the fixture leaves as the install has them.
create or replace function public.get_user_organization_id() returns uuid
language sql stable security definer set search_path = public, pg_temp as $$
  select organization_id from public.profiles where id = auth.uid()
$$;
comment on function public.get_user_organization_id() is
  'Replaced system: the organisation of the calling user (profiles.organization_id of auth.uid()), for RLS policies.';

alter table public.id_counters enable row level security;
alter table public.profiles enable row level security;
alter table public.clients enable row level security;
alter table public.jobs enable row level security;
alter table public.estimates enable row level security;
alter table public.invoices enable row level security;

drop policy if exists "Users see their organization's profiles" on public.profiles;
create policy "Users see their organization's profiles" on public.profiles for select to authenticated
  using (id = auth.uid() or organization_id = public.get_user_organization_id());
drop policy if exists "Users update their own profile" on public.profiles;
create policy "Users update their own profile" on public.profiles for update to authenticated
  using (id = auth.uid());

do $$
declare
  t text;
begin
  foreach t in array array['clients', 'jobs', 'estimates', 'invoices'] loop
    execute format('drop policy if exists "Organization members manage %1$s" on public.%1$I', t);
    execute format($p$create policy "Organization members manage %1$s" on public.%1$I for all to authenticated
      using (user_id = auth.uid() or user_id in (select id from public.profiles where organization_id = public.get_user_organization_id()))
      with check (user_id = auth.uid() or user_id in (select id from public.profiles where organization_id = public.get_user_organization_id()))$p$, t);
  end loop;
end
$$;
