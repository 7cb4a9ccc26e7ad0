-- Replaced-system adapter, issue 12 items 4 and 5: each organisation's locale
-- and postal address in its source view (each invoice's own pay link,
-- payment_link, is already its portal_url).
--   * automation_replaced_org_settings.locale: BCP 47 (en-US, en-GB, en-AU,
--     fr-CA); NULL = the default of the organisation's country_code. The app
--     has no such column. dueflow's engine validates it: a malformed or
--     unknown one falls back to the country's default (logged), never fails.
--   * automation_src_organizations gains locale and address (the first
--     non-blank profiles.company_address, owner, admin, others; oldest
--     first). The columns are appended, so the view is replaced in place
--     (its earlier columns unchanged).
-- Apply after 20261202000900. Idempotent; one transaction.

alter table public.automation_replaced_org_settings add column if not exists locale text;
do $migration$
begin
  if not exists (select 1 from pg_constraint
                 where conrelid = 'public.automation_replaced_org_settings'::regclass
                   and conname = 'automation_replaced_org_settings_locale_check') then
    alter table public.automation_replaced_org_settings add constraint automation_replaced_org_settings_locale_check
      check (locale ~ '^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$');
  end if;
end
$migration$;
comment on column public.automation_replaced_org_settings.locale is
  'dueflow: BCP 47 locale of the organisation''s messages (en-US, en-GB, en-AU, fr-CA); NULL: the default of its country_code.';

create or replace view public.automation_src_organizations with (security_invoker = true) as
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
         coalesce(a.website, '') as portal_url,
         s.locale as locale,
         a.address as address
  from public.profiles p
  cross join lateral (
    select (array_agg(m.name order by m.rank, m.created_at, m.id) filter (where m.name <> ''))[1] as name,
           (array_agg(m.timezone order by m.rank, m.created_at, m.id) filter (where m.timezone <> ''))[1] as timezone,
           (array_agg(m.email order by m.rank, m.created_at, m.id) filter (where m.email <> ''))[1] as email,
           (array_agg(m.phone order by m.rank, m.created_at, m.id) filter (where m.phone <> ''))[1] as phone,
           (array_agg(m.website order by m.rank, m.created_at, m.id) filter (where m.website <> ''))[1] as website,
           (array_agg(m.address order by m.rank, m.created_at, m.id) filter (where m.address <> ''))[1] as address
    from (select x.id, x.created_at,
                 case lower(btrim(x.role)) when 'owner' then 0 when 'admin' then 1 else 2 end as rank,
                 btrim(x.company_name) as name, btrim(x.timezone) as timezone, btrim(x.company_email) as email,
                 btrim(x.company_phone) as phone, btrim(x.company_website) as website,
                 btrim(x.company_address) as address
          from public.profiles x
          where x.organization_id = p.organization_id) m
  ) a
  left join public.automation_replaced_org_settings s on s.organization_id = p.organization_id
  where p.organization_id is not null
    -- the organisation's row: its profile with the lowest id
    and not exists (select 1 from public.profiles x where x.organization_id = p.organization_id and x.id < p.id);
revoke all on public.automation_src_organizations from public, anon, authenticated;
grant select on public.automation_src_organizations to service_role;

comment on view public.automation_src_organizations is
  'dueflow source view (replaced-system adapter): one row per profiles.organization_id; name, sender, phone and postal address from the first non-blank company_name/company_email/company_phone/company_website/company_address of its profiles (owner, admin, others; oldest first), zone likewise from profiles.timezone (NULL when none: dueflow runs it in UTC), overridden or completed by automation_replaced_org_settings (locale from there; NULL: the country''s default).';
