-- dueflow check isolation: one tenant's bad row never stops another
-- tenant's reminders.
--
-- The checks cross every tenant in one set-based statement per trigger type.
-- A workflow or an organisation they cannot evaluate is skipped and recorded
-- in automation_check_problems (read by operators: the check_problems column
-- of automation_queue_health and `dueflow status`):
--   invalid_config      a workflow breaks the rules (automation_workflows.problems)
--   invalid_timezone    the organisation's zone is not a known IANA name: skipped
--   timezone_defaulted  the organisation has no zone: UTC is used (documented default)
--   check_error         an unforeseen error; the organisation was run on its own
--   hook_error          automation_mark_invoices_overdue() failed; the check went on
-- Anything unforeseen (an adopter's view row that makes a cast fail, ...)
-- fails the set-based run in its own subtransaction, which then re-runs the
-- check per organisation, each in its own subtransaction: the faulty one
-- fails alone, the others get their reminders in the same run, and the
-- function (and its pg_cron job) returns normally. An organisation that
-- failed is run on its own ("quarantined") until it succeeds, so the others
-- keep the set-based fast path meanwhile.

-- Time zones ------------------------------------------------------------------

-- The IANA names the server knows: a cheap per-row lookup (pg_timezone_names
-- reads the zone files on every query). Refreshed by every run of this
-- migration; a name missing here is still tried by automation_is_valid_timezone.
create table if not exists public.automation_timezones (
  name text primary key
);
comment on table public.automation_timezones is
  'IANA time zone names known to the server (from pg_timezone_names, refreshed by the check-isolation migration): the cache behind automation_effective_timezone.';
alter table public.automation_timezones enable row level security;
revoke all on public.automation_timezones from public, anon, authenticated;
grant all on public.automation_timezones to service_role;

with known as (
  select z.name from pg_timezone_names z
  where z.name ~ '^(UTC|[A-Za-z][A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$'
), gone as (
  delete from public.automation_timezones t where not exists (select 1 from known k where k.name = t.name)
)
insert into public.automation_timezones (name)
select k.name from known k order by k.name
on conflict (name) do nothing;

create or replace function public.automation_effective_timezone(p_tz text) returns text
language sql stable as $$
  select case
    when p_tz is null then 'UTC'
    when exists (select 1 from public.automation_timezones z where z.name = p_tz) then p_tz
    when public.automation_is_valid_timezone(p_tz) then p_tz
  end
$$;
comment on function public.automation_effective_timezone(text) is
  'The zone dueflow computes an organisation''s local times in: p_tz when it is a known IANA name, ''UTC'' (the documented default) when NULL, NULL when unusable (the checks skip that organisation; existing executions fall back to UTC). Never raises.';

-- The organisations the checks compute local times for, each with the zone
-- they use (automation_effective_timezone; NULL: unusable, skipped). One
-- plain SQL select, so the planner inlines it into each check.
create or replace function public.automation_check_organizations()
returns table (id uuid, send_window_start time, send_window_end time, timezone text)
language sql stable as $$
  -- cast to the declared types: an adopter's view may deliver varchar or
  -- timetz where the contract says text or time
  select o.id::uuid, o.send_window_start::time, o.send_window_end::time,
         coalesce(tz.name, public.automation_effective_timezone(o.timezone::text))::text
  from public.automation_src_organizations o
  left join public.automation_timezones tz on tz.name = o.timezone::text
$$;
comment on function public.automation_check_organizations() is
  'Every organisation of automation_src_organizations with its send window and the zone the checks use: the name when known (automation_timezones), else automation_effective_timezone (UTC for NULL, NULL when unusable).';
revoke all on function public.automation_check_organizations() from public, anon, authenticated;

-- Problems the checks met -----------------------------------------------------

create table if not exists public.automation_check_problems (
  id uuid primary key default gen_random_uuid(),
  check_name text not null,
  trigger_type text not null,
  organization_id uuid,
  workflow_id uuid references public.automation_workflows (id) on delete cascade,
  code text not null
    check (code in ('invalid_config', 'invalid_timezone', 'timezone_defaulted', 'check_error', 'hook_error', 'dispatch_error')),
  message text not null default '',
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  count bigint not null default 1,
  constraint automation_check_problems_key
    unique nulls not distinct (check_name, trigger_type, organization_id, workflow_id, code)
);
comment on table public.automation_check_problems is
  'What the checks (and the dispatcher''s premise skips) could not evaluate, one row per (check, trigger type, organisation, workflow, code): invalid_config, invalid_timezone, timezone_defaulted, check_error, hook_error, dispatch_error. Upserted by every run that meets it (count, last_seen_at), deleted once a run no longer does. Messages carry no personal data.';
create index if not exists automation_check_problems_workflow_idx on public.automation_check_problems (workflow_id);
alter table public.automation_check_problems enable row level security;
revoke all on public.automation_check_problems from public, anon, authenticated;
grant all on public.automation_check_problems to service_role;

create or replace function public.automation_mask_error(p_message text) returns text
language sql immutable as $$
  -- identifiers a message names (column "x", relation "y", ...) are set
  -- aside (as chr(1) x chr(2)); what else is quoted (values from the data,
  -- up to the last quote: a value may hold quotes itself) becomes "…";
  -- e-mail-like words too; then the identifiers get their quotes back
  select left(translate(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(coalesce(p_message, ''),
      '(column|relation|constraint|table|function|type|index|schema|view|sequence|trigger) "([^"]*)"',
        '\1 ' || chr(1) || '\2' || chr(2), 'g'),
      '"[^' || chr(1) || chr(2) || ']*"', '"…"', 'g'),
      '''[^' || chr(1) || chr(2) || ']*''', '''…''', 'g'),
      '[^[:space:]"''@' || chr(1) || chr(2) || ']+@[^[:space:]"''@' || chr(1) || chr(2) || ']+', '…@…', 'g'),
    chr(1) || chr(2), '""'), 500)
$$;
comment on function public.automation_mask_error(text) is
  'An error message safe to record: quoted values and e-mail-like words masked (identifiers named as column/relation/constraint/... kept), at most 500 characters.';

create or replace function public.automation_note_check_problem(
  p_check text, p_type text, p_org uuid, p_workflow uuid, p_code text, p_message text)
returns void language sql as $$
  insert into public.automation_check_problems as p
    (check_name, trigger_type, organization_id, workflow_id, code, message)
  values (p_check, p_type, p_org, p_workflow, p_code, left(coalesce(p_message, ''), 500))
  on conflict on constraint automation_check_problems_key do update set
    message = excluded.message, last_seen_at = now(), count = p.count + 1
$$;
comment on function public.automation_note_check_problem(text, text, uuid, uuid, text, text) is
  'Records (upserts) one problem a check met: count + 1 and last_seen_at = now() when already recorded.';

create or replace function public.automation_mask_problem(p_problem text) returns text
language sql immutable as $$
  -- a problem names an unknown key or template variable by the tenant's own
  -- text: recorded without it (automation_workflows.problems has it in full)
  select regexp_replace(regexp_replace(coalesce(p_problem, ''),
    '^(trigger_config|steps\[[0-9]+\])\..*: unknown key$', '\1.…: unknown key'),
    ': unknown variable .*$', ': unknown variable')
$$;
comment on function public.automation_mask_problem(text) is
  'A workflow problem message (automation_workflow_problems) without the tenant''s own text: unknown keys and unknown template variables are not named.';

-- automation_queue_health (what operators read: the queue beside the number of
-- current problems): moved to 20261202001200_deferrals.sql (column deferred).

-- Reading trigger_config ------------------------------------------------------

create or replace function public.automation_config_int(p_config jsonb, p_key text, p_default integer)
returns integer language sql immutable as $$
  -- never raises: a key that is not a whole JSON number of at most 9 digits
  -- (a string, 9.5, 1e300, an array, ...) gives p_default (jsonb prints a
  -- number with digits only exactly when it has no fractional digits)
  select case when jsonb_typeof(p_config -> p_key) = 'number'
               and (p_config ->> p_key) ~ '^-?[0-9]{1,9}$'
              then (p_config ->> p_key)::integer
              else p_default end
$$;
comment on function public.automation_config_int(jsonb, text, integer) is
  'The whole number p_config->p_key, or p_default when absent or not a whole JSON number of at most 9 digits. Never raises.';

create or replace function public.automation_next_scheduled_run(
  p_config jsonb, p_tz text, p_after timestamptz)
returns timestamptz language plpgsql stable set search_path = public, pg_temp as $$
declare
  v_freq text := coalesce(p_config ->> 'frequency', 'daily');
  v_hour int := least(greatest(public.automation_config_int(p_config, 'hour', 9), 0), 23);
  v_minute int := least(greatest(public.automation_config_int(p_config, 'minute', 0), 0), 59);
  v_dow int := (public.automation_config_int(p_config, 'day_of_week', 1) % 7 + 7) % 7;
  v_dom int := least(greatest(public.automation_config_int(p_config, 'day_of_month', 1), 1), 31);
  v_local timestamp := p_after at time zone p_tz;
  v_cand timestamp;
  v_month date;
begin
  case v_freq
  when 'every_minute' then
    return date_trunc('minute', p_after) + interval '1 minute';
  when 'hourly' then
    v_cand := date_trunc('hour', v_local) + make_interval(mins => v_minute);
    if v_cand <= v_local then v_cand := v_cand + interval '1 hour'; end if;
  when 'daily' then
    v_cand := v_local::date + make_time(v_hour, v_minute, 0);
    if v_cand <= v_local then v_cand := v_cand + interval '1 day'; end if;
  when 'weekly' then
    v_cand := v_local::date + ((v_dow - extract(dow from v_local)::int + 7) % 7) + make_time(v_hour, v_minute, 0);
    if v_cand <= v_local then v_cand := v_cand + interval '7 days'; end if;
  when 'monthly' then
    v_month := date_trunc('month', v_local)::date;
    loop
      v_cand := least(v_month + (v_dom - 1), (v_month + interval '1 month - 1 day')::date) + make_time(v_hour, v_minute, 0);
      exit when v_cand > v_local;
      v_month := (v_month + interval '1 month')::date;
    end loop;
  else
    return null;
  end case;
  return v_cand at time zone p_tz;
end
$$;
comment on function public.automation_next_scheduled_run(jsonb, text, timestamptz) is
  'The first run of a scheduled workflow (trigger_config frequency/hour/minute/day_of_week/day_of_month, in time zone p_tz) strictly after p_after; null for an unknown frequency. Values that are not whole numbers read as their defaults (never raises on a bad configuration).';

-- The checks' bodies ----------------------------------------------------------
-- Each body evaluates the valid active workflows of one trigger type of the
-- organisation p_only (NULL: every organisation) except p_except, and returns
-- the number of executions it created. automation_run_check runs them.

-- automation_check_workflows (the check bookkeeping): moved to
-- 20261202000800_workflow_spec_wiring.sql (workflows judged by their spec).

-- The five check bodies (automation_check_invoices_run, ..._maintenance_run,
-- ..._appointments_run, ..._scheduled_run, ..._stale_jobs_run): moved to
-- 20261202000600_text_ids.sql (subject and client ids as text), then to
-- 20261202000800_workflow_spec_wiring.sql (workflows by their spec).

create or replace function public.automation_run_check_body(
  p_check text, p_type text, p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp as $$
begin
  perform public.automation_check_workflows(p_check, p_type, p_only, p_except);
  return case p_type
    when 'invoice_overdue' then public.automation_check_invoices_run(p_now, p_only, p_except)
    when 'maintenance_due' then public.automation_check_maintenance_run(p_now, p_only, p_except)
    when 'appointment' then public.automation_check_appointments_run(p_now, p_only, p_except)
    when 'scheduled' then public.automation_check_scheduled_run(p_now, p_only, p_except)
    when 'stale_job' then public.automation_check_stale_jobs_run(p_now, p_only, p_except)
  end;
end
$$;
comment on function public.automation_run_check_body(text, text, timestamptz, uuid, uuid[]) is
  'One check of trigger type p_type for organisation p_only (NULL: all) except p_except: its bookkeeping (automation_check_workflows), then its body. Returns the number of executions created.';

-- automation_run_check (the safety net: set-based for every organisation at
-- once; when that raises, per organisation): moved to
-- 20261202000800_workflow_spec_wiring.sql.

-- The public checks (pg_cron calls these: names and signatures are stable).

create or replace function public.check_overdue_invoices(p_now timestamptz default now())
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_state text;
  v_msg text;
begin
  -- the adopter's hook; a failure there does not stop the reminders (the
  -- check reads sent invoices past due as well)
  begin
    perform public.automation_mark_invoices_overdue(p_now);
    delete from public.automation_check_problems p
    where p.check_name = 'check_overdue_invoices' and p.code = 'hook_error';
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    v_msg := public.automation_mask_error(v_msg);
    raise warning 'dueflow: automation_mark_invoices_overdue failed (SQLSTATE %: %); invoices not marked overdue in this run', v_state, v_msg;
    perform public.automation_note_check_problem('check_overdue_invoices', 'invoice_overdue', null, null, 'hook_error',
      format('automation_mark_invoices_overdue failed (SQLSTATE %s: %s)', v_state, v_msg));
  end;
  return public.automation_run_check('check_overdue_invoices', 'invoice_overdue', p_now);
end
$$;
comment on function public.check_overdue_invoices(timestamptz) is
  'invoice_overdue check: marks sent invoices past due overdue (hook automation_mark_invoices_overdue; a failure there is recorded as hook_error), then creates one execution per (invoice, due date, latest reminder day reached) for open invoices with a balance; a late first sighting creates only the latest reminder, and a newer reminder skips the older pending ones of the same workflow and invoice (superseded). Steady state reads only invoices that reached a reminder day or changed since the last run (automation_check_state); the first run of each organisation-local day scans the workflow''s open overdue invoices in full. Workflows with problems and organisations with an unusable zone are skipped, and one organisation''s error fails it alone (automation_check_problems). Returns the number created.';

create or replace function public.check_maintenance_reminders(p_now timestamptz default now())
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
begin
  -- two independent checks: a bad maintenance workflow never blocks appointment reminders
  return public.automation_run_check('check_maintenance_reminders', 'maintenance_due', p_now)
       + public.automation_run_check('check_maintenance_reminders', 'appointment', p_now);
end
$$;
comment on function public.check_maintenance_reminders(timestamptz) is
  'maintenance_due check (one execution per client and last completed service job, once months_after_service have passed and no visit is booked) and appointment check (one per job and scheduled start, hours_before ahead, deadline = the start), each isolated from the other. A new occurrence skips (superseded) the older pending ones of the same workflow and client (maintenance) or job (appointment). Workflows with problems and organisations with an unusable zone are skipped, and one organisation''s error fails it alone (automation_check_problems). Returns the number created.';

create or replace function public.check_automation_triggers(p_now timestamptz default now())
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
begin
  -- two independent checks: a bad stale-job workflow never blocks scheduled runs
  return public.automation_run_check('check_automation_triggers', 'scheduled', p_now)
       + public.automation_run_check('check_automation_triggers', 'stale_job', p_now);
end
$$;
comment on function public.check_automation_triggers(timestamptz) is
  'scheduled check (per workflow, in the organisation''s time zone; a missed run fires once, then the schedule moves past p_now) and stale_job check (one execution per job and last activity; a new one skips the older pending ones of the same workflow and job as superseded), each isolated from the other. Workflows with problems and organisations with an unusable zone are skipped, and one organisation''s error fails it alone (automation_check_problems). Returns the number created.';

-- The reference overdue-marking hook (automation_mark_invoices_overdue over the
-- reference invoices) moved to reference/20261202000601_text_ids_reference.sql;
-- the core's default (marks nothing) is in 20261129000050_core.sql.

-- automation_report: moved to 20261202001000_inplace_upgrade.sql when its count
-- of actions became actions_count.

revoke all on function public.automation_effective_timezone(text),
  public.automation_mask_error(text),
  public.automation_mask_problem(text),
  public.automation_note_check_problem(text, text, uuid, uuid, text, text),
  public.automation_config_int(jsonb, text, integer),
  public.automation_next_scheduled_run(jsonb, text, timestamptz),
  public.automation_run_check_body(text, text, timestamptz, uuid, uuid[]),
  public.check_overdue_invoices(timestamptz),
  public.check_maintenance_reminders(timestamptz),
  public.check_automation_triggers(timestamptz)
  from public, anon, authenticated;
grant execute on function public.automation_effective_timezone(text),
  public.automation_config_int(jsonb, text, integer),
  public.automation_next_scheduled_run(jsonb, text, timestamptz),
  public.check_overdue_invoices(timestamptz),
  public.check_maintenance_reminders(timestamptz),
  public.check_automation_triggers(timestamptz)
  to service_role;
