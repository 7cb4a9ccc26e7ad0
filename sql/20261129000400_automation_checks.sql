-- dueflow trigger checks: their state and helpers (the checks themselves,
-- check_overdue_invoices, check_maintenance_reminders and
-- check_automation_triggers: 20261202000200_check_isolation.sql). Each is tenant-scoped (every join carries
-- organization_id), reads app data only through the automation_src_* views,
-- and inserts executions ON CONFLICT (workflow_id, occurrence_key) DO NOTHING,
-- so overlapping runs, re-runs and catch-up runs never duplicate a reminder.
-- Each takes p_now (default now()) so tests and back-fills can evaluate "now"
-- explicitly, and returns the number of executions it created.

create or replace function public.automation_days_config(p_config jsonb, p_key text, p_default int[])
returns int[] language sql immutable as $$
  select coalesce(
    (select array_agg(distinct d::int order by d::int)
       from jsonb_array_elements_text(case when jsonb_typeof(p_config -> p_key) = 'array' then p_config -> p_key end) d
      where d ~ '^[0-9]{1,4}$'),
    p_default)
$$;
comment on function public.automation_days_config(jsonb, text, int[]) is
  'Sorted distinct non-negative integers of the array p_config->p_key, or p_default when absent or empty.';

-- Per-workflow watermark of the invoice check, so that a steady-state run
-- reads only invoices that crossed a reminder day or changed since the last
-- run (index range scans), not every open invoice. A workflow without state,
-- or whose configuration or organisation time zone changed, is scanned in full
-- once; every workflow is also scanned in full on its first run of each
-- organisation-local day (invoices written with an old updated_at).
create table if not exists public.automation_check_state (
  workflow_id uuid primary key references public.automation_workflows (id) on delete cascade,
  organization_id uuid not null,
  checked_at timestamptz not null,
  trigger_config jsonb,
  timezone text,
  updated_at timestamptz not null default now()
);
alter table public.automation_check_state enable row level security;
revoke all on public.automation_check_state from public, anon, authenticated;
grant all on public.automation_check_state to service_role;

-- Every check records when each workflow last created executions.
create or replace function public.automation_touch_workflows(p_workflows uuid[], p_at timestamptz)
returns void language sql as $$
  update public.automation_workflows w set last_triggered_at = p_at
  where w.id in (select w2.id from public.automation_workflows w2
                 where w2.id = any (p_workflows) order by w2.id for no key update)
$$;
comment on function public.automation_touch_workflows(uuid[], timestamptz) is
  'Sets last_triggered_at = p_at on the given workflows (the ones a check just created executions for), locking them in id order so that concurrent checks cannot deadlock. NULL or empty: nothing.';

revoke all on function public.automation_days_config(jsonb, text, int[]),
  public.automation_touch_workflows(uuid[], timestamptz)
  from public, anon, authenticated;
