-- The reference domain's locale, postal address and pay link (issue 12,
-- items 4 and 5): organizations.locale (BCP 47, e.g. en-GB; NULL = the
-- country's default) and organizations.address (the footer's postal
-- address), invoices.pay_url (the invoice's own payment link), and the
-- reference views automation_src_organizations and automation_src_invoices
-- with these columns (the claim reads them when a view has them:
-- 20261202001810). A view is redefined only while it is dueflow's (absent,
-- the core's default or the reference definition of 20261202000601, or this
-- one): an adopter's own view is kept. Columns are only added at the end, so
-- the views are replaced in place. Needs the core up to 20261202000500
-- (automation_replace_view). Idempotent.

alter table public.organizations add column if not exists locale text;
alter table public.organizations add column if not exists address text;
alter table public.invoices add column if not exists pay_url text;

comment on column public.organizations.locale is
  'BCP 47 locale of the organisation''s messages (en-US, en-GB, en-AU, fr-CA); NULL: the default of country_code. Anything dueflow cannot use falls back to that default (logged), it never fails a reminder.';
comment on column public.organizations.address is
  'Postal address shown in the footer of the default emails (NULL: none shown).';
comment on column public.invoices.pay_url is
  'The invoice''s own payment link; NULL: portal_url, then the organisation''s portal.';

do $migration$
declare
  v record;
begin
  for v in
    select * from (values
      ('automation_src_organizations',
       $q$select id, name, timezone, country_code, send_window_start, send_window_end,
                 sender_name, sender_email, reply_to_email, phone, portal_url
          from public.organizations$q$,
       $q$select id, name, timezone, country_code, send_window_start, send_window_end,
                 sender_name, sender_email, reply_to_email, phone, portal_url, locale, address
          from public.organizations$q$),
      ('automation_src_invoices',
       $q$select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number,
                 status, due_date, total, balance, currency, portal_url, updated_at
          from public.invoices$q$,
       $q$select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number,
                 status, due_date, total, balance, currency, portal_url, updated_at, pay_url
          from public.invoices$q$)
    ) as t(name, previous_sql, current_sql)
  loop
    if to_regclass('public.' || v.name) is null
       or public.automation_view_is('public.' || v.name, public.automation_core_default(v.name))
       or public.automation_view_is('public.' || v.name, v.previous_sql) then
      perform public.automation_replace_view('public', v.name, v.current_sql);
      execute format('alter view public.%I set (security_invoker = true)', v.name);
      execute format('revoke all on public.%I from anon', v.name);
    end if;
  end loop;
end
$migration$;
