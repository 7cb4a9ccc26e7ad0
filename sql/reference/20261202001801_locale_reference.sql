-- The reference domain's locale and postal address (issue 12, items 4 and
-- 5): organizations.locale (BCP 47, e.g. en-GB; NULL = the country's
-- default) and organizations.address (the footer's postal address), and the
-- reference view automation_src_organizations with them (the claim reads
-- them when a view has them: 20261202001810). The reference invoices keep
-- their view: their portal_url is already the invoice's own link (the claim
-- also reads an optional pay_url, which adopters' views may have). The view
-- is redefined only while it is dueflow's (absent, the core's default, the
-- reference definition of 20261202000601 or this one): an adopter's own view
-- is kept. The columns are appended, so it is replaced in place. Needs the core up to 20261202000500
-- (automation_replace_view). Idempotent.

alter table public.organizations add column if not exists locale text;
alter table public.organizations add column if not exists address text;

comment on column public.organizations.locale is
  'BCP 47 locale of the organisation''s messages (en-US, en-GB, en-AU, fr-CA); NULL: the default of country_code. Anything dueflow cannot use falls back to that default (logged), it never fails a reminder.';
comment on column public.organizations.address is
  'Postal address shown in the footer of the default emails (NULL: none shown).';

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
          from public.organizations$q$)
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
