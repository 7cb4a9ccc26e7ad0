-- Optional adapter (issue 9): dueflow's source views over the app tables of
-- the system dueflow replaces (../shared/REPLACED_SYSTEM.md: profiles,
-- clients 'C-2000', jobs 'J-1000', uuid invoices owned by users), and the
-- two hooks over its profiles. Apply it after dueflow's core (sql/), on an
-- install of that system only; never part of sql/, so upgrades of dueflow
-- never overwrite it. README.md beside this file explains every rule below.
--
-- It never alters the app's tables: it reads them, and creates indexes on
-- them where a lookup of the claim, the dispatcher or the checks needs one
-- (listed at the end). The settings dueflow needs and the app has no column
-- for (send window, country, currency, sender, opt-outs) live in two small
-- dueflow-owned tables (RLS, service_role only).
--
-- Works with and without clients.organization_id (older installs): the view
-- text follows the columns present. Idempotent; one transaction (psql
-- --single-transaction, or migrations' ApplySQL); a failure leaves the
-- database unchanged.

-- Settings dueflow needs that the app has no column for ------------------------

create table if not exists public.automation_replaced_org_settings (
  organization_id uuid primary key,
  -- IANA name; NULL: the zone of the organisation's profiles
  timezone text check (timezone ~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$'),
  -- default region of phone numbers; NULL: US
  country_code text check (country_code ~ '^[A-Z]{2}$'),
  -- local send window; NULL (both): 09:00 to 17:00
  send_window_start time,
  send_window_end time,
  -- the From address; NULL: the profiles' company_email
  sender_email text check (sender_email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  -- invoice currency; NULL: USD
  currency text check (currency ~ '^[A-Z]{3}$'),
  updated_at timestamptz not null default now(),
  constraint automation_replaced_org_settings_window_check check (
    (send_window_start is null and send_window_end is null)
    or (send_window_start is not null and send_window_end is not null and send_window_start <> send_window_end))
);
comment on table public.automation_replaced_org_settings is
  'dueflow (replaced-system adapter): per organisation (profiles.organization_id), what the app has no column for: timezone (overrides the profiles''), country_code (default US), send window (default 09:00-17:00), sender_email (default the profiles'' company_email), currency (default USD). NULL = the default. Read by automation_src_organizations and automation_src_invoices.';
alter table public.automation_replaced_org_settings enable row level security;
revoke all on public.automation_replaced_org_settings from public, anon, authenticated;
grant all on public.automation_replaced_org_settings to service_role;

create table if not exists public.automation_replaced_client_opt_outs (
  client_id text primary key,
  email_opt_out boolean not null default false,
  sms_opt_out boolean not null default false,
  updated_at timestamptz not null default now()
);
comment on table public.automation_replaced_client_opt_outs is
  'dueflow (replaced-system adapter): clients (clients.id) who opted out of reminder emails or SMS; the app has no opt-out columns. A client without a row is opted in. Read by automation_src_clients.';
alter table public.automation_replaced_client_opt_outs enable row level security;
revoke all on public.automation_replaced_client_opt_outs from public, anon, authenticated;
grant all on public.automation_replaced_client_opt_outs to service_role;

-- Status vocabularies ------------------------------------------------------------
-- Used by the views and by the partial indexes below (inlined in both, so the
-- planner matches them). Pure: executable by everyone, since the app's own
-- inserts evaluate the index predicates. Changing a body means rebuilding the
-- indexes that use it (reindex), so a new vocabulary gets new function names.

create or replace function public.automation_replaced_job_status(p_status text) returns text
language sql immutable parallel safe as $$
  select case lower(btrim(p_status))
    when 'in-progress' then 'in_progress'
    when 'in progress' then 'in_progress'
    when 'canceled' then 'cancelled'
    else lower(btrim(p_status)) end
$$;
comment on function public.automation_replaced_job_status(text) is
  'dueflow (replaced-system adapter): a job status of the app in dueflow''s words: lower-cased and trimmed, in-progress -> in_progress, canceled -> cancelled; anything else as is (on-hold stays on-hold: not open for dueflow''s default stale statuses).';

create or replace function public.automation_replaced_invoice_status(p_status text, p_payment_status text) returns text
language sql immutable parallel safe as $$
  select case
    when lower(btrim(p_status)) = 'paid' or lower(btrim(p_payment_status)) = 'paid' then 'paid'
    when lower(btrim(p_status)) in ('cancelled', 'canceled') then 'cancelled'
    when lower(btrim(p_status)) in ('sent', 'unpaid', 'viewed', 'partial') then 'sent'
    else coalesce(lower(btrim(p_status)), 'draft') end
$$;
comment on function public.automation_replaced_invoice_status(text, text) is
  'dueflow (replaced-system adapter): an invoice''s status and payment_status in dueflow''s words: paid (either says paid), cancelled, sent (sent, unpaid, viewed, partial: open), overdue (open), draft; anything else lower-cased as is (not open).';

grant execute on function public.automation_replaced_job_status(text),
  public.automation_replaced_invoice_status(text, text) to public;

-- The source views ---------------------------------------------------------------

do $migration$
declare
  v_missing text;
  v_client_org text;
  v record;
begin
  -- the columns the views read (REPLACED_SYSTEM.md); a clear message rather
  -- than a parse error when an install differs
  select string_agg(t.tbl || '.' || r.col, ', ' order by t.tbl, r.col) into v_missing
  from (values
    ('profiles', '{id,organization_id,role,timezone,company_name,company_email,company_phone,company_website,created_at}'::text[]),
    ('clients', '{id,user_id,name,first_name,last_name,email,phone}'),
    ('jobs', '{id,user_id,client_id,title,service,job_type,status,schedule_start,schedule_end,date,address,updated_at,deleted_at}'),
    ('invoices', '{id,user_id,client_id,job_id,invoice_number,status,payment_status,total,amount_paid,balance_due,balance,due_date,payment_link,updated_at}')
  ) t(tbl, cols)
  cross join lateral unnest(t.cols) as r(col)
  where not exists (select 1 from pg_attribute a
                    where a.attrelid = to_regclass('public.' || t.tbl) and a.attname = r.col
                      and a.attnum > 0 and not a.attisdropped);
  if v_missing is not null then
    raise exception 'dueflow replaced-system views: the app tables lack %', v_missing
      using hint = 'This adapter is for the replaced system''s database (REPLACED_SYSTEM.md); define the automation_src_* views for your own tables instead (README, Adopting an existing schema).';
  end if;

  -- a client's organisation: its own column where the install has it and the
  -- row has it set, else its creating user's profile
  if exists (select 1 from pg_attribute a
             where a.attrelid = 'public.clients'::regclass and a.attname = 'organization_id'
               and a.attnum > 0 and not a.attisdropped) then
    v_client_org := 'coalesce(c.organization_id, p.organization_id)';
  else
    v_client_org := 'p.organization_id';
  end if;

  for v in
    select * from (values
      -- one row per organisation (profiles.organization_id), keyed on its
      -- lowest profile id; each value from the organisation's profiles in the
      -- order owner, admin, others, then oldest first: the first non-blank one
      ('automation_src_organizations', $q$
  select p.organization_id as id,
         coalesce(a.name, '') as name,
         coalesce(s.timezone, a.timezone) as timezone,
         coalesce(s.country_code, 'US') as country_code,
         coalesce(s.send_window_start, time '09:00') as send_window_start,
         coalesce(s.send_window_end, time '17:00') as send_window_end,
         coalesce(a.name, '') as sender_name,
         coalesce(s.sender_email, a.email, '') as sender_email,
         coalesce(a.email, '') as reply_to_email,
         coalesce(a.phone, '') as phone,
         coalesce(a.website, '') as portal_url
  from public.profiles p
  cross join lateral (
    select (array_agg(m.name order by m.rank, m.created_at, m.id) filter (where m.name <> ''))[1] as name,
           (array_agg(m.timezone order by m.rank, m.created_at, m.id) filter (where m.timezone <> ''))[1] as timezone,
           (array_agg(m.email order by m.rank, m.created_at, m.id) filter (where m.email <> ''))[1] as email,
           (array_agg(m.phone order by m.rank, m.created_at, m.id) filter (where m.phone <> ''))[1] as phone,
           (array_agg(m.website order by m.rank, m.created_at, m.id) filter (where m.website <> ''))[1] as website
    from (select x.id, x.created_at,
                 case lower(btrim(x.role)) when 'owner' then 0 when 'admin' then 1 else 2 end as rank,
                 btrim(x.company_name) as name, btrim(x.timezone) as timezone, btrim(x.company_email) as email,
                 btrim(x.company_phone) as phone, btrim(x.company_website) as website
          from public.profiles x
          where x.organization_id = p.organization_id) m
  ) a
  left join public.automation_replaced_org_settings s on s.organization_id = p.organization_id
  where p.organization_id is not null
    -- the organisation's row: its profile with the lowest id
    and not exists (select 1 from public.profiles x where x.organization_id = p.organization_id and x.id < p.id)$q$),
      ('automation_src_clients', format($q$
  select c.id::text as id,
         %1$s as organization_id,
         case when coalesce(btrim(c.first_name), '') = '' and coalesce(btrim(c.last_name), '') = ''
              then coalesce(c.name, '') else coalesce(c.first_name, '') end as first_name,
         case when coalesce(btrim(c.first_name), '') = '' and coalesce(btrim(c.last_name), '') = ''
              then '' else coalesce(c.last_name, '') end as last_name,
         c.email, c.phone,
         coalesce(o.email_opt_out, false) as email_opt_out,
         coalesce(o.sms_opt_out, false) as sms_opt_out
  from public.clients c
  left join public.profiles p on p.id = c.user_id
  left join public.automation_replaced_client_opt_outs o on o.client_id = c.id::text
  where %1$s is not null$q$, v_client_org)),
      ('automation_src_jobs', $q$
  select j.id::text as id,
         p.organization_id,
         j.client_id::text as client_id,
         coalesce(nullif(btrim(j.title), ''), j.service, '') as title,
         j.job_type,
         public.automation_replaced_job_status(j.status) as status,
         j.schedule_start::timestamptz as scheduled_start,
         -- there is no completed_at: the end of the visit, else its date, else the last change
         case when public.automation_replaced_job_status(j.status) = 'completed'
              then coalesce(j.schedule_end::timestamptz, j.date::timestamptz, j.updated_at::timestamptz) end as completed_at,
         j.address,
         j.updated_at::timestamptz as updated_at
  from public.jobs j
  join public.profiles p on p.id = j.user_id
  where j.deleted_at is null and p.organization_id is not null$q$),
      ('automation_src_invoices', $q$
  select i.id::text as id,
         p.organization_id,
         i.client_id::text as client_id,
         i.job_id::text as job_id,
         i.invoice_number as number,
         public.automation_replaced_invoice_status(i.status, i.payment_status) as status,
         i.due_date::date as due_date,
         i.total::numeric(12,2) as total,
         coalesce(i.balance_due, i.balance, i.total - coalesce(i.amount_paid, 0))::numeric(12,2) as balance,
         coalesce(s.currency, 'USD') as currency,
         i.payment_link as portal_url,
         i.updated_at::timestamptz as updated_at
  from public.invoices i
  join public.profiles p on p.id = i.user_id
  left join public.automation_replaced_org_settings s on s.organization_id = p.organization_id
  where p.organization_id is not null$q$)
    ) as t(name, body)
  loop
    begin
      execute format('create or replace view public.%I with (security_invoker = true) as %s', v.name, v.body);
    exception when invalid_table_definition then
      -- an earlier definition with other column types (uuid ids, fake
      -- uuids): a view column's type cannot change in place. Dropping fails
      -- (and rolls the whole file back) if another object depends on it.
      raise notice 'dueflow: % had other columns; dropped and created again', v.name;
      execute format('drop view public.%I', v.name);
      execute format('create view public.%I with (security_invoker = true) as %s', v.name, v.body);
    end;
    -- dueflow (the checks, the claim) reads them; the app's users do not
    execute format('revoke all on public.%I from public, anon, authenticated', v.name);
    execute format('grant select on public.%I to service_role', v.name);
  end loop;
end
$migration$;

comment on view public.automation_src_organizations is
  'dueflow source view (replaced-system adapter): one row per profiles.organization_id; name, sender and phone from the first non-blank company_name/company_email/company_phone/company_website of its profiles (owner, admin, others; oldest first), zone likewise from profiles.timezone (NULL when none: dueflow runs it in UTC), overridden or completed by automation_replaced_org_settings.';
comment on view public.automation_src_clients is
  'dueflow source view (replaced-system adapter): clients with text ids; organisation from clients.organization_id when present and set, else the creating user''s profile; first/last name, else the whole name as first name; opt-outs from automation_replaced_client_opt_outs.';
comment on view public.automation_src_jobs is
  'dueflow source view (replaced-system adapter): jobs not deleted, with text ids; organisation of the creating user''s profile; status in dueflow''s words (automation_replaced_job_status); completed_at of a completed job = coalesce(schedule_end, date, updated_at).';
comment on view public.automation_src_invoices is
  'dueflow source view (replaced-system adapter): invoices with their uuid id as text; organisation of the owning user''s profile; status in dueflow''s words (automation_replaced_invoice_status); balance = coalesce(balance_due, balance, total - amount_paid); currency from automation_replaced_org_settings (default USD); portal_url = payment_link.';

-- The hooks ----------------------------------------------------------------------

-- RLS on dueflow's tables: a signed-in user sees their profile's organisation.
create or replace function public.automation_current_org_ids() returns setof uuid
language sql stable security definer set search_path = public, pg_temp as $$
  select p.organization_id from public.profiles p where p.id = auth.uid() and p.organization_id is not null
$$;
comment on function public.automation_current_org_ids() is
  'Organisations the calling user (auth.uid()) belongs to: their profiles.organization_id (replaced-system adapter); the basis of every RLS policy on the automation tables.';
revoke all on function public.automation_current_org_ids() from public, anon;
grant execute on function public.automation_current_org_ids() to authenticated, service_role;

-- Marking overdue, as the replaced system's check-overdue-invoices job did
-- (dueflow replaces that job under its name, and the app shows the status):
-- open invoices (sent, unpaid, viewed, partial; not paid) past due become
-- 'overdue'; the due date is compared with the organisation-local date.
-- (Runs after dueflow's core: automation_effective_timezone is the core's.)
create or replace function public.automation_mark_invoices_overdue(p_now timestamptz default now())
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_count integer;
begin
  update public.invoices i set status = 'overdue'
  from (
    select p.id as user_id, (p_now at time zone z.tz)::date as today
    from public.automation_src_organizations o
    cross join lateral (select public.automation_effective_timezone(o.timezone) as tz) z
    join public.profiles p on p.organization_id = o.id
    where z.tz is not null
  ) u
  where i.user_id = u.user_id
    and public.automation_replaced_invoice_status(i.status, i.payment_status) = 'sent'
    -- partial and viewed say more than overdue would: the app's, kept (they
    -- are reminded all the same: the view reads them as open)
    and i.status in ('sent', 'unpaid')
    and i.due_date < u.today;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.automation_mark_invoices_overdue(timestamptz) is
  'Hook called by check_overdue_invoices() (replaced-system adapter): marks open invoices of status sent or unpaid (viewed and partial are kept; not paid) past due in the organisation''s local date as overdue, as the replaced system''s check-overdue-invoices job did; an organisation whose zone is unusable is left out, a NULL zone is UTC. Returns the number marked.';
revoke all on function public.automation_mark_invoices_overdue(timestamptz) from public, anon, authenticated;
grant execute on function public.automation_mark_invoices_overdue(timestamptz) to service_role;

-- Indexes on the app's tables ----------------------------------------------------
-- (On a large live table create them beforehand with CREATE INDEX
-- CONCURRENTLY under the same names; these statements then skip them.)

-- the claim and the dispatcher find an invoice by its id as text
create index if not exists automation_src_invoices_id_idx on public.invoices ((id::text));
-- the invoice check: an organisation's (its users') open invoices by due
-- date, and the overdue marking
create index if not exists automation_src_invoices_open_due_idx on public.invoices (user_id, due_date)
  where public.automation_replaced_invoice_status(status, payment_status) in ('sent', 'overdue');
-- the steady-state invoice check: open invoices changed since the last run
create index if not exists automation_src_invoices_open_updated_idx on public.invoices (updated_at)
  where public.automation_replaced_invoice_status(status, payment_status) in ('sent', 'overdue');
-- the appointment check: an organisation's (its users') upcoming scheduled jobs
create index if not exists automation_src_jobs_upcoming_idx on public.jobs (user_id, schedule_start)
  where public.automation_replaced_job_status(status) = 'scheduled' and deleted_at is null;
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

-- Lookups the app usually has an index for already (the install's
-- idx_profiles_organization_id, idx_jobs_client_id): created only when no
-- index leads with the column. An organisation's profiles (every view row's
-- organisation), a client's jobs (the maintenance check, the dispatcher).
do $migration$
declare
  v record;
begin
  for v in
    select * from (values
      ('profiles', 'organization_id', 'automation_src_profiles_org_idx'),
      ('jobs', 'client_id', 'automation_src_jobs_client_idx')
    ) as t(tbl, col, idx)
  loop
    if not exists (
      select 1 from pg_index x
      join pg_attribute a on a.attrelid = x.indrelid and a.attnum = x.indkey[0]
      where x.indrelid = to_regclass('public.' || v.tbl) and a.attname = v.col
        and x.indpred is null and x.indisvalid
    ) then
      execute format('create index if not exists %I on public.%I (%I)', v.idx, v.tbl, v.col);
    end if;
  end loop;
end
$migration$;
