-- The in-place upgrade of the replaced system's database (issue 9,
-- ../shared/REPLACED_SYSTEM.md), second part: the tables got dueflow's
-- columns, their rows dueflow's values and the old row trigger was emptied in
-- 20261129000200_automation_tables.sql; this file
--   * moves here the functions whose body changed with those tables:
--     the counter triggers and update_automation_analytics (the analytics
--     columns take the replaced system's names execution_count, success_count,
--     failure_count and keep success_rate up to date), automation_report (its
--     count of actions is actions_count: the replaced system's actions_executed
--     is a jsonb history), automation_retry_execution (refuses the replaced
--     system's rows), automation_check_scheduled_run (schedule state in
--     automation_schedule_state; automation_schedules is the app's);
--   * closes the replaced system's remaining entry points: the functions its
--     retired cron jobs called are dropped when no pg_cron job calls them any
--     more, otherwise revoked from anon and authenticated.
-- Idempotent; on a database without the replaced system only the functions
-- change.


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
    -- (the replaced system's app may have left its counters NULL)
    update public.automation_workflows w set
      execution_count = coalesce(w.execution_count, 0) + p.executions,
      success_count = coalesce(w.success_count, 0) + p.completed,
      failure_count = coalesce(w.failure_count, 0) + p.failed,
      skipped_count = coalesce(w.skipped_count, 0) + p.skipped
    from per_wf p where w.id = p.workflow_id
    returning w.id
  )
  insert into public.automation_analytics as a
    (organization_id, workflow_id, date, execution_count, success_count, failure_count, skipped, success_rate)
  select organization_id, workflow_id, (now() at time zone 'UTC')::date, executions, completed, failed, skipped,
         public.automation_success_rate(completed::int, executions::int)
  from per_wf
  order by organization_id, workflow_id
  on conflict (organization_id, workflow_id, date) do update set
    -- (the replaced system's app may have left its counts NULL)
    execution_count = coalesce(a.execution_count, 0) + excluded.execution_count,
    success_count = coalesce(a.success_count, 0) + excluded.success_count,
    failure_count = coalesce(a.failure_count, 0) + excluded.failure_count,
    skipped = coalesce(a.skipped, 0) + excluded.skipped,
    success_rate = public.automation_success_rate(coalesce(a.success_count, 0) + excluded.success_count,
                                                  coalesce(a.execution_count, 0) + excluded.execution_count),
    updated_at = now();
  return null;
end
$$;
comment on function public.automation_count_outcomes() is
  'Trigger: adds each execution that reached a final status to its workflow counters and to automation_analytics (today, UTC: execution_count, success_count, failure_count, skipped, success_rate), once.';

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

create or replace function public.update_automation_analytics(p_days integer default 2)
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_count integer;
begin
  -- Recompute the last p_days days (UTC) from the executions and the
  -- deliveries ledger and overwrite: running it any number of times gives
  -- the same figures (never re-added).
  with days as (
    select ((now() at time zone 'UTC')::date - g)::date as d from generate_series(0, greatest(p_days, 1) - 1) g
  ), ex as (
    select e.organization_id, e.workflow_id, (e.completed_at at time zone 'UTC')::date as d,
           count(*) as executions,
           count(*) filter (where e.status = 'completed') as completed,
           count(*) filter (where e.status = 'failed') as failed,
           count(*) filter (where e.status = 'skipped') as skipped
    from public.automation_execution_logs e
    where e.completed_at >= (select min(d) from days)::timestamp at time zone 'UTC'
      and e.status in ('completed', 'failed', 'skipped', 'cancelled')
      -- rows the upgrade closed unsent were never executions (20261129000200)
      and e.error_code is distinct from 'legacy_not_sent'
    group by 1, 2, 3
  ), dl as (
    select e.organization_id, e.workflow_id, (d.sent_at at time zone 'UTC')::date as d,
           count(*) filter (where d.channel = 'email') as emails_sent,
           count(*) filter (where d.channel = 'sms') as sms_sent
    from public.automation_deliveries d
    join public.automation_execution_logs e on e.id = d.execution_id
    where d.status = 'sent' and d.sent_at >= (select min(d) from days)::timestamp at time zone 'UTC'
    group by 1, 2, 3
  ), agg as (
    select coalesce(ex.organization_id, dl.organization_id) as organization_id,
           coalesce(ex.workflow_id, dl.workflow_id) as workflow_id,
           coalesce(ex.d, dl.d) as d,
           coalesce(ex.executions, 0) as executions, coalesce(ex.completed, 0) as completed,
           coalesce(ex.failed, 0) as failed, coalesce(ex.skipped, 0) as skipped,
           coalesce(dl.emails_sent, 0) as emails_sent, coalesce(dl.sms_sent, 0) as sms_sent
    from ex full join dl on dl.organization_id = ex.organization_id and dl.workflow_id = ex.workflow_id and dl.d = ex.d
  ), up as (
    insert into public.automation_analytics as a
      (organization_id, workflow_id, date, execution_count, success_count, failure_count, skipped,
       emails_sent, sms_sent, success_rate)
    select organization_id, workflow_id, d, executions, completed, failed, skipped, emails_sent, sms_sent,
           public.automation_success_rate(completed::int, executions::int)
    from agg
    where exists (select 1 from public.automation_workflows w where w.id = agg.workflow_id)
    order by organization_id, workflow_id, d
    on conflict (organization_id, workflow_id, date) do update set
      execution_count = excluded.execution_count, success_count = excluded.success_count,
      failure_count = excluded.failure_count, skipped = excluded.skipped, emails_sent = excluded.emails_sent,
      sms_sent = excluded.sms_sent, success_rate = excluded.success_rate, updated_at = now()
    where (a.execution_count, a.success_count, a.failure_count, a.skipped, a.emails_sent, a.sms_sent, a.success_rate)
      is distinct from (excluded.execution_count, excluded.success_count, excluded.failure_count, excluded.skipped,
                        excluded.emails_sent, excluded.sms_sent, excluded.success_rate)
    returning 1
  )
  select count(*) into v_count from up;
  return v_count;
end
$$;
comment on function public.update_automation_analytics(integer) is
  'Reconciles automation_analytics for the last p_days days (UTC) with the executions and deliveries (overwrites execution_count, success_count, failure_count, skipped, emails_sent, sms_sent and success_rate; idempotent; rows closed unsent by the upgrade, legacy_not_sent, are not executions). Returns the number of rows corrected.';

create or replace function public.automation_retry_execution(p_id uuid)
returns jsonb language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_old public.automation_execution_logs;
begin
  select * into v_old from public.automation_execution_logs e where e.id = p_id for update;
  if not found then
    return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', '', 'reason', 'not_found');
  end if;
  if v_old.status not in ('failed', 'cancelled', 'skipped') then
    return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', v_old.status, 'reason', 'not_finished');
  end if;
  if v_old.occurrence_key like 'legacy:%' then
    -- the replaced system's row (history, or closed unsent by the upgrade):
    -- dueflow's checks create what is still due
    return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', v_old.status, 'reason', 'legacy');
  end if;
  if v_old.deadline_at is not null and v_old.deadline_at <= now() then
    -- it would only expire again (never send an appointment reminder after the appointment)
    return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', v_old.status, 'reason', 'past_deadline');
  end if;

  update public.automation_execution_logs e set updated_at = now(),
    status = 'pending', attempt = 0, next_attempt_at = now(), dispatched_at = null,
    error_code = null, error_message = null, completed_at = null,
    lease_token = null, lease_expires_at = null
  where e.id = p_id;

  -- the outcome it had is taken back from the counters (the counter trigger
  -- adds the next one): one execution, counted once
  update public.automation_workflows w set
    execution_count = greatest(coalesce(w.execution_count, 0) - 1, 0),
    failure_count = greatest(w.failure_count - (v_old.status = 'failed')::int, 0),
    skipped_count = greatest(w.skipped_count - (v_old.status = 'skipped')::int, 0)
  where w.id = v_old.workflow_id;
  update public.automation_analytics a set
    execution_count = greatest(coalesce(a.execution_count, 0) - 1, 0),
    failure_count = greatest(coalesce(a.failure_count, 0) - (v_old.status = 'failed')::int, 0),
    skipped = greatest(coalesce(a.skipped, 0) - (v_old.status = 'skipped')::int, 0),
    success_rate = public.automation_success_rate(coalesce(a.success_count, 0), greatest(coalesce(a.execution_count, 0) - 1, 0)),
    updated_at = now()
  where a.organization_id = v_old.organization_id and a.workflow_id = v_old.workflow_id
    and a.date = (v_old.completed_at at time zone 'UTC')::date;

  -- permanently failed deliveries may be tried again (e.g. after the address
  -- was corrected); sent ones are never re-sent, unknown ones never re-sent
  update public.automation_deliveries d set retryable = true
  where d.execution_id = p_id and d.status = 'failed' and not d.retryable;

  return jsonb_build_object('execution_id', p_id, 'applied', true, 'status', 'pending');
end
$$;
comment on function public.automation_retry_execution(uuid) is
  'Operator action: puts a failed, cancelled or skipped execution back to pending, due now, attempts reset (refused past its deadline). Its outcome is taken back from the workflow counters and analytics; its failed deliveries may be re-armed; deliveries recorded sent (or unknown) are never sent again (ledger). Refused for the replaced system''s rows (occurrence key legacy:..., reason legacy). Answers {execution_id, applied, status, reason: not_found|not_finished|legacy|past_deadline}.';

-- The report (its count of actions is actions_count) snaps retries and snoozes into the organisation's send window:
-- an unusable zone falls back to UTC there instead of failing the whole batch.
create or replace function public.automation_report(p_outcomes jsonb)
returns jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_out jsonb;
begin
  if p_outcomes is null or jsonb_typeof(p_outcomes) <> 'array' then
    raise exception 'automation_report: p_outcomes must be a JSON array' using errcode = '22023';
  end if;

  -- one statement: lock, judge against the lease, finish deliveries, move executions
  with inp as (
    select t.ord as n, (t.o ->> 'execution_id')::uuid as execution_id, (t.o ->> 'lease_token')::uuid as lease_token,
           t.o ->> 'status' as status, nullif(t.o ->> 'error_code', '') as error_code,
           nullif(t.o ->> 'error_message', '') as error_message,
           coalesce((t.o ->> 'step_index')::int, 0) as step_index, (t.o ->> 'snooze_until')::timestamptz as snooze_until,
           nullif((t.o ->> 'retry_after_seconds')::int, 0) as retry_after,
           coalesce((t.o ->> 'actions_executed')::int, 0) as actions_executed,
           case when jsonb_typeof(t.o -> 'deliveries') = 'array' then t.o -> 'deliveries' else '[]'::jsonb end as deliveries
    from jsonb_array_elements(p_outcomes) with ordinality as t(o, ord)
  ), cur as (
    select e.id, e.status, e.lease_token, e.attempt, e.max_attempts, e.deadline_at, e.organization_id
    from public.automation_execution_logs e
    where e.id = any (array(select execution_id from inp where execution_id is not null))
    order by e.id
    for update
  ), judged as (
    select inp.*, cur.status as cur_status, cur.attempt, cur.max_attempts, cur.deadline_at, cur.organization_id,
      case
        when cur.id is null then 'not_found'
        when cur.status <> 'running' or cur.lease_token is distinct from inp.lease_token then 'stale_lease'
        when inp.status is null or inp.status not in ('completed', 'skipped', 'failed', 'retry', 'snoozed')
          or (inp.status = 'snoozed' and inp.snooze_until is null) then 'invalid'
        -- the same execution twice in one report: only the first counts
        when row_number() over (partition by inp.execution_id order by inp.n) > 1 then 'invalid'
      end as reason
    from inp left join cur on cur.id = inp.execution_id
  ), ok as (
    select j.*, case
        when j.status = 'retry' then
          public.automation_next_attempt(now() + coalesce(make_interval(secs => j.retry_after), public.automation_backoff(j.attempt)),
                                         tz.zone, o.send_window_start, o.send_window_end, j.deadline_at)
        when j.status = 'snoozed' then
          public.automation_next_attempt(greatest(j.snooze_until, now()), tz.zone, o.send_window_start, o.send_window_end, j.deadline_at)
      end as at
    from judged j
    left join public.automation_src_organizations o on o.id = j.organization_id
    -- an unusable zone (NULL, not an IANA name) snaps in UTC rather than failing the batch
    cross join lateral (select coalesce(public.automation_effective_timezone(o.timezone), 'UTC') as zone) tz
    where j.reason is null
  ), nxt as (
    select ok.*,
      case
        when ok.status in ('completed', 'skipped', 'failed') then ok.status
        when ok.status = 'retry' and ok.attempt >= ok.max_attempts then 'failed'
        when ok.deadline_at is not null and ok.at > ok.deadline_at then 'failed'
        else 'pending'
      end as new_status,
      case
        when ok.status = 'failed' then coalesce(ok.error_code, 'internal_error')
        -- completed keeps the engine's code (delivery_unknown: sent status uncertain); a clean completion clears it
        when ok.status in ('completed', 'skipped') then ok.error_code
        when ok.status = 'retry' and ok.attempt >= ok.max_attempts then 'max_attempts'
        when ok.status in ('retry', 'snoozed') and ok.deadline_at is not null and ok.at > ok.deadline_at then 'expired'
        when ok.status = 'retry' then coalesce(ok.error_code, 'provider_unavailable')
      end as new_code
    from ok
  ), dl as (
    -- finish the deliveries listed (a sent delivery is never downgraded)
    update public.automation_deliveries d set
      status = x.status,
      sent_at = case when x.status = 'sent' then coalesce(d.sent_at, now()) else d.sent_at end,
      provider = coalesce(nullif(x.provider, ''), d.provider),
      provider_message_id = coalesce(nullif(x.provider_message_id, ''), d.provider_message_id),
      error_code = nullif(x.error_code, ''), error_message = nullif(x.error_message, ''),
      retryable = coalesce(x.retryable, false)
    from (
      select distinct on (dd ->> 'idempotency_key') ok.execution_id, dd ->> 'idempotency_key' as ikey,
             dd ->> 'status' as status, dd ->> 'provider' as provider,
             dd ->> 'provider_message_id' as provider_message_id, dd ->> 'error_code' as error_code,
             dd ->> 'error_message' as error_message, (dd ->> 'retryable')::boolean as retryable
      from ok cross join lateral jsonb_array_elements(ok.deliveries) dd
      order by dd ->> 'idempotency_key'
    ) x
    where d.idempotency_key = x.ikey and d.execution_id = x.execution_id
      and x.status in ('sent', 'failed', 'unknown') and d.status <> 'sent'
    returning 1
  ), upd as (
    update public.automation_execution_logs e set updated_at = now(),
      status = nxt.new_status,
      error_code = nxt.new_code,
      error_message = case when nxt.new_code is null then null
                           when nxt.new_code = 'expired' and nxt.error_message is null then 'the next attempt would pass the deadline'
                           else nxt.error_message end,
      actions_count = e.actions_count + greatest(nxt.actions_executed, 0),
      lease_token = null, lease_expires_at = null,
      completed_at = case when nxt.new_status in ('completed', 'skipped', 'failed') then now() end,
      next_attempt_at = case when nxt.new_status = 'pending' then nxt.at else e.next_attempt_at end,
      dispatched_at = case when nxt.new_status = 'pending' then null else e.dispatched_at end,
      step_index = case when nxt.status = 'snoozed' then greatest(nxt.step_index, 0) else e.step_index end,
      -- a delay does not consume an attempt
      attempt = case when nxt.status = 'snoozed' and nxt.new_status = 'pending' then greatest(e.attempt - 1, 0) else e.attempt end
    from nxt
    where e.id = nxt.execution_id and e.status = 'running' and e.lease_token = nxt.lease_token
    returning nxt.n, e.status
  )
  select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
      'execution_id', j.execution_id,
      'applied', upd.n is not null,
      'status', coalesce(upd.status, j.cur_status, ''),
      'reason', case when upd.n is null then coalesce(j.reason, 'stale_lease') end))
    order by j.n), '[]'::jsonb)
  into v_out
  from judged j
  left join upd on upd.n = j.n
  where (select count(*) from dl) >= 0;
  return v_out;
end
$$;
comment on function public.automation_report(jsonb) is
  'Applies outcomes (automation.Outcome[]) fenced by lease token: finishes listed deliveries, then moves each execution to completed/skipped/failed, or pending (retry with backoff + jitter, snooze without consuming an attempt, both snapped into the send window of the organisation''s zone, UTC when that is unusable), or failed with max_attempts/expired. Counters and analytics follow once (trigger). Answers automation.Reported[] in input order; a stale token changes nothing (stale_lease).';

-- scheduled: organisation-local frequency; a missed run fires once.
create or replace function public.automation_check_scheduled_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  -- a schedule per valid active scheduled workflow; recomputed when its
  -- configuration or the organisation's time zone changed
  insert into public.automation_schedule_state as s
    (workflow_id, organization_id, next_run_at, trigger_config, timezone)
  select w.id, w.organization_id, public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now),
         w.trigger_config, o.timezone
  from public.automation_runnable_workflows('scheduled') w
  join public.automation_check_organizations() o on o.id = w.organization_id
  left join public.automation_schedule_state cur on cur.workflow_id = w.id
  where o.timezone is not null
    and (p_only is null or w.organization_id = p_only)
    and not (w.organization_id = any (p_except))
    and (cur.workflow_id is null
         or cur.trigger_config is distinct from w.trigger_config
         or cur.timezone is distinct from o.timezone)
    and public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now) is not null
  on conflict (workflow_id) do update set
    next_run_at = excluded.next_run_at, trigger_config = excluded.trigger_config,
    timezone = excluded.timezone, updated_at = now();

  with due as (
    select s.workflow_id, s.next_run_at as run_at, w.organization_id, w.max_attempts,
           coalesce(w.trigger_config ->> 'audience', 'organization') as audience,
           public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now) as next_run
    from public.automation_schedule_state s
    join public.automation_runnable_workflows('scheduled') w
      on w.id = s.workflow_id and w.organization_id = s.organization_id
    join public.automation_check_organizations() o on o.id = w.organization_id
    where s.next_run_at <= p_now
      and o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
    for update of s skip locked
  ), targets as (
    select d.*, 'organization'::text as subject_type, d.organization_id::text as subject_id, null::text as client_id,
           format('scheduled:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) as okey
    from due d where d.audience <> 'clients'
    union all
    select d.*, 'client', c.id::text, c.id::text,
           format('scheduled:%s:client:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), c.id::text)
    from due d join public.automation_src_clients c on c.organization_id = d.organization_id
    -- a client without an id is left out
    where d.audience = 'clients' and coalesce(c.id::text, '') <> ''
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select t.workflow_id, t.organization_id, 'run-workflow', 'scheduled', t.okey, t.subject_type,
           t.subject_id, t.client_id, t.max_attempts, p_now,
           greatest(t.next_run, p_now + interval '1 hour'),
           jsonb_build_object('run_at', t.run_at)
    from targets t
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id
  ), advanced as (
    update public.automation_schedule_state s set next_run_at = d.next_run, last_run_at = p_now, updated_at = now()
    from due d where s.workflow_id = d.workflow_id and d.next_run is not null
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_scheduled_run(timestamptz, uuid, uuid[]) is
  'Body of the scheduled part of check_automation_triggers for organisation p_only (NULL: all) except p_except: per valid active workflow (next run in automation_schedule_state), in the organisation''s time zone; a missed run fires once, then the schedule moves past p_now. Returns the number created.';

-- The replaced system's remaining entry points ----------------------------------
-- Its cron jobs without a dueflow counterpart are unscheduled by
-- 20261202000500_replaced_jobs_and_views.sql; the security-definer functions
-- they called (executable by anon and authenticated, so through PostgREST by
-- anyone) would still insert pending rows dueflow does not want or delete
-- history dueflow keeps as occurrence keys (cleanup_automation_logs): dropped
-- when no pg_cron job calls them, otherwise revoked.
do $migration$
declare
  v_name text;
  v_called boolean;
begin
  foreach v_name in array array['check_appointment_reminders', 'seasonal_maintenance_reminders', 'cleanup_automation_logs'] loop
    continue when to_regprocedure(format('public.%I()', v_name)) is null;
    v_called := false;
    if to_regclass('cron.job') is not null then
      execute 'select exists (select 1 from cron.job where command ~* $1)' into v_called using '\m' || v_name || '\s*\(';
    end if;
    if v_called then
      execute format('revoke all on function public.%I() from public, anon, authenticated', v_name);
      raise notice 'dueflow: %() of the replaced system revoked from anon and authenticated (a pg_cron job still calls it)', v_name;
    else
      execute format('drop function public.%I()', v_name);
      raise notice 'dueflow: dropped the replaced system''s function %() (no pg_cron job calls it any more; dueflow''s checks and cleanup do its work)', v_name;
    end if;
  end loop;
end
$migration$;

revoke all on function public.automation_success_rate(integer, integer),
  public.automation_count_outcomes(),
  public.automation_count_deliveries(),
  public.update_automation_analytics(integer),
  public.automation_retry_execution(uuid),
  public.automation_report(jsonb),
  public.automation_check_scheduled_run(timestamptz, uuid, uuid[])
  from public, anon, authenticated;
grant execute on function public.automation_success_rate(integer, integer),
  public.update_automation_analytics(integer),
  public.automation_retry_execution(uuid),
  public.automation_report(jsonb)
  to service_role;
