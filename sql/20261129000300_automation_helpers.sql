-- dueflow helpers: action mapping, send-window snapping, backoff, and the
-- counters/analytics triggers (outcomes counted once). Schedule arithmetic
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

-- Counters and analytics follow status transitions, once: a statement-level
-- trigger sees each row's move from an open status (pending, running) to a
-- final one exactly once, whatever path made it (report, claim, dispatch).
create or replace function public.automation_count_outcomes() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  -- most updates (claims, dispatch) finish nothing: leave at once
  if not exists (select 1 from new_rows where status in ('completed', 'failed', 'skipped', 'cancelled')) then
    return null;
  end if;
  -- lock the workflows in id order first: concurrent reports never deadlock
  perform 1 from public.automation_workflows w
  where w.id in (select n.workflow_id from new_rows n join old_rows o on o.id = n.id
                 where o.status in ('pending', 'running')
                   and n.status in ('completed', 'failed', 'skipped', 'cancelled'))
  order by w.id
  for no key update;
  if not found then
    return null;
  end if;

  with moved as (
    select n.organization_id, n.workflow_id, n.status
    from new_rows n join old_rows o on o.id = n.id
    where o.status in ('pending', 'running')
      and n.status in ('completed', 'failed', 'skipped', 'cancelled')
  ), per_wf as (
    select organization_id, workflow_id,
           count(*) as executions,
           count(*) filter (where status = 'completed') as completed,
           count(*) filter (where status = 'failed') as failed,
           count(*) filter (where status = 'skipped') as skipped
    from moved group by organization_id, workflow_id
  ), wf as (
    update public.automation_workflows w set
      execution_count = w.execution_count + p.executions,
      success_count = w.success_count + p.completed,
      failure_count = w.failure_count + p.failed,
      skipped_count = w.skipped_count + p.skipped
    from per_wf p where w.id = p.workflow_id
    returning w.id
  )
  insert into public.automation_analytics as a
    (organization_id, workflow_id, date, executions, completed, failed, skipped)
  select organization_id, workflow_id, (now() at time zone 'UTC')::date, executions, completed, failed, skipped
  from per_wf
  order by organization_id, workflow_id
  on conflict (organization_id, workflow_id, date) do update set
    executions = a.executions + excluded.executions,
    completed = a.completed + excluded.completed,
    failed = a.failed + excluded.failed,
    skipped = a.skipped + excluded.skipped,
    updated_at = now();
  return null;
end
$$;
comment on function public.automation_count_outcomes() is
  'Trigger: adds each execution that reached a final status to its workflow counters and to automation_analytics (today, UTC), once.';

drop trigger if exists automation_execution_logs_count on public.automation_execution_logs;
create trigger automation_execution_logs_count after update on public.automation_execution_logs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.automation_count_outcomes();

create or replace function public.automation_count_deliveries() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  if not exists (select 1 from new_rows where status = 'sent') then
    return null;
  end if;
  insert into public.automation_analytics as a
    (organization_id, workflow_id, date, emails_sent, sms_sent)
  select e.organization_id, e.workflow_id, (now() at time zone 'UTC')::date,
         count(*) filter (where n.channel = 'email'), count(*) filter (where n.channel = 'sms')
  from new_rows n
  join old_rows o on o.id = n.id
  join public.automation_execution_logs e on e.id = n.execution_id
  where n.status = 'sent' and o.status <> 'sent'
  group by e.organization_id, e.workflow_id
  order by e.organization_id, e.workflow_id
  on conflict (organization_id, workflow_id, date) do update set
    emails_sent = a.emails_sent + excluded.emails_sent,
    sms_sent = a.sms_sent + excluded.sms_sent,
    updated_at = now();
  return null;
end
$$;
comment on function public.automation_count_deliveries() is
  'Trigger: adds deliveries that became sent to automation_analytics (today, UTC), once.';

drop trigger if exists automation_deliveries_count on public.automation_deliveries;
create trigger automation_deliveries_count after update on public.automation_deliveries
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.automation_count_deliveries();

revoke all on function public.automation_action_for(text),
  public.automation_snap_to_window(timestamptz, text, time, time),
  public.automation_next_attempt(timestamptz, text, time, time, timestamptz),
  public.automation_backoff(integer),
  public.automation_count_outcomes(),
  public.automation_count_deliveries()
  from public, anon, authenticated;
grant execute on function public.automation_action_for(text),
  public.automation_snap_to_window(timestamptz, text, time, time),
  public.automation_next_attempt(timestamptz, text, time, time, timestamptz),
  public.automation_backoff(integer)
  to service_role;
