-- dueflow helpers: action mapping, send-window snapping, backoff (the
-- counters/analytics triggers: 20261202001000_inplace_upgrade.sql). Schedule arithmetic
-- (automation_next_scheduled_run): 20261202000200_check_isolation.sql.

create or replace function public.automation_action_for(p_trigger_type text) returns text
language sql immutable as $$
  select case p_trigger_type
    when 'invoice_overdue' then 'invoice-reminder'
    when 'maintenance_due' then 'send-reminder'
    when 'appointment' then 'send-reminder'
    when 'stale_job' then 'send-reminder'
    when 'scheduled' then 'run-workflow'
  end
$$;
comment on function public.automation_action_for(text) is
  'The action (function) that executes a workflow of the given trigger type.';

create or replace function public.automation_snap_to_window(
  p_at timestamptz, p_tz text, p_start time, p_end time)
returns timestamptz language sql stable as $$
  -- plain SQL without SET clauses, so that the planner inlines it
  select case
    when p_start is null or p_end is null or p_start = p_end then p_at
    when p_start < p_end then case
      when (p_at at time zone p_tz)::time >= p_start and (p_at at time zone p_tz)::time < p_end then p_at
      when (p_at at time zone p_tz)::time < p_start then ((p_at at time zone p_tz)::date + p_start) at time zone p_tz
      else ((p_at at time zone p_tz)::date + 1 + p_start) at time zone p_tz
    end
    -- the window crosses midnight (e.g. 22:00-06:00)
    when (p_at at time zone p_tz)::time >= p_start or (p_at at time zone p_tz)::time < p_end then p_at
    else ((p_at at time zone p_tz)::date + p_start) at time zone p_tz
  end
$$;
comment on function public.automation_snap_to_window(timestamptz, text, time, time) is
  'The earliest instant >= p_at inside the local send window [p_start, p_end) of time zone p_tz (windows may cross midnight).';

create or replace function public.automation_next_attempt(
  p_at timestamptz, p_tz text, p_start time, p_end time, p_deadline timestamptz)
returns timestamptz language sql stable as $$
  -- snapped into the send window, unless that would pass the deadline
  -- (an appointment reminder goes out late at night rather than after the appointment)
  select case
    when p_deadline is not null and public.automation_snap_to_window(p_at, p_tz, p_start, p_end) > p_deadline then p_at
    else public.automation_snap_to_window(p_at, p_tz, p_start, p_end)
  end
$$;
comment on function public.automation_next_attempt(timestamptz, text, time, time, timestamptz) is
  'p_at snapped into the send window; the raw p_at when the snapped time would pass p_deadline.';

create or replace function public.automation_backoff(p_attempt integer) returns interval
language sql volatile as $$
  -- base 60 s, factor 4, cap 6 h, +-20 % jitter
  select make_interval(secs => least(60 * power(4, greatest(p_attempt, 1) - 1), 21600) * (0.8 + random() * 0.4))
$$;
comment on function public.automation_backoff(integer) is
  'Retry delay after attempt p_attempt: 60 s * 4^(attempt-1), capped at 6 h, with +-20 % jitter.';

-- The counters and analytics triggers (automation_count_outcomes,
-- automation_count_deliveries): moved to 20261202001000_inplace_upgrade.sql
-- when the analytics columns took the replaced system's names.

revoke all on function public.automation_action_for(text),
  public.automation_snap_to_window(timestamptz, text, time, time),
  public.automation_next_attempt(timestamptz, text, time, time, timestamptz),
  public.automation_backoff(integer)
  from public, anon, authenticated;
grant execute on function public.automation_action_for(text),
  public.automation_snap_to_window(timestamptz, text, time, time),
  public.automation_next_attempt(timestamptz, text, time, time, timestamptz),
  public.automation_backoff(integer)
  to service_role;
