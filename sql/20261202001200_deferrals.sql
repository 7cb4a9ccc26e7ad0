-- Deferrals (issue 10, item 2): trouble of the infrastructure, not of the
-- message, no longer spends the message's attempts.
--
-- The function marks such a retry outcome "deferred": true (a deadline cut,
-- a database or ledger failure, a provider outage, a rate limit, a network
-- failure or timeout, refused provider credentials). automation_report then
--   * gives the attempt taken at claim back (attempt - 1) and counts a
--     deferral (automation_execution_logs.deferrals + 1);
--   * makes it due again: after retry_after_seconds when given (a provider's
--     Retry-After, capped at 6 h by the function), at once for error_code
--     'deadline' (the next dispatcher tick rings it), else after
--     automation_deferral_backoff (30 s * 2^(n-1), capped at 15 min, +-20 %);
--   * bounds it: failed 'expired' when that passes deadline_at (as any
--     retry), failed 'max_deferrals' when the execution was already deferred
--     automation_settings.max_deferrals times (default 200).
-- A retry without "deferred" (a failure of the message itself, an
-- unclassified provider failure, or a function from before this file) spends
-- its attempt as before (max_attempts). An expired lease (a function that
-- died without reporting) also spends it, unchanged: the database cannot
-- tell a crash caused by the message from one of the infrastructure, and
-- max_attempts bounds a crash loop.
--
-- Redefined here: automation_report and automation_retry_execution (resets
-- deferrals; also reopens a completed execution settled_not_sent) from 20261202001000_inplace_upgrade.sql; automation_queue_health
-- (moved from 20261202000200_check_isolation.sql; column deferred).
-- Idempotent.

alter table public.automation_execution_logs
  add column if not exists deferrals integer not null default 0 check (deferrals >= 0);
comment on column public.automation_execution_logs.deferrals is
  'How often a function deferred this execution for infrastructure trouble (deadline cut, database, provider outage, rate limit): such a retry gives its attempt back; failed max_deferrals past automation_settings.max_deferrals.';

alter table public.automation_settings
  add column if not exists max_deferrals integer not null default 200 check (max_deferrals >= 0);
comment on column public.automation_settings.max_deferrals is
  'How often one execution may be deferred for infrastructure trouble before it fails with max_deferrals (default 200; the execution''s deadline_at bounds it too).';

create or replace function public.automation_max_deferrals() returns integer
language sql stable set search_path = public, pg_temp as $$
  select coalesce((select s.max_deferrals from public.automation_settings s where s.id), 200)
$$;
comment on function public.automation_max_deferrals() is
  'automation_settings.max_deferrals: deferrals an execution may have before the next one fails it (max_deferrals); 200 when unset.';

create or replace function public.automation_deferral_backoff(p_deferral integer) returns interval
language sql volatile set search_path = public, pg_temp as $$
  -- base 30 s, factor 2, cap 15 min, +-20 % jitter
  select make_interval(secs => least(30 * power(2, least(greatest(p_deferral, 1) - 1, 30)), 900) * (0.8 + random() * 0.4))
$$;
comment on function public.automation_deferral_backoff(integer) is
  'Delay after the p_deferral-th deferral (infrastructure trouble without Retry-After): 30 s * 2^(n-1), capped at 15 min, with +-20 % jitter.';

-- The report: a retry marked deferred gives its attempt back and counts a
-- deferral instead (capped by automation_settings.max_deferrals and by the
-- deadline); a plain retry spends the attempt as before (old binaries).
-- Retries and snoozes are snapped into the organisation's send window (an
-- unusable zone falls back to UTC instead of failing the whole batch).
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
           -- only a retry can be deferred; absent (old binaries) = a plain retry
           coalesce(t.o ->> 'status' = 'retry' and t.o -> 'deferred' = 'true'::jsonb, false) as deferred,
           coalesce((t.o ->> 'actions_executed')::int, 0) as actions_executed,
           case when jsonb_typeof(t.o -> 'deliveries') = 'array' then t.o -> 'deliveries' else '[]'::jsonb end as deliveries
    from jsonb_array_elements(p_outcomes) with ordinality as t(o, ord)
  ), cur as (
    select e.id, e.status, e.lease_token, e.attempt, e.max_attempts, e.deferrals, e.deadline_at, e.organization_id
    from public.automation_execution_logs e
    where e.id = any (array(select execution_id from inp where execution_id is not null))
    order by e.id
    for update
  ), judged as (
    select inp.*, cur.status as cur_status, cur.attempt, cur.max_attempts, cur.deferrals, cur.deadline_at, cur.organization_id,
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
    select j.*, cfg.max_deferrals, case
        when j.status = 'retry' then
          public.automation_next_attempt(now() + case
              when j.retry_after is not null then make_interval(secs => j.retry_after)
              -- cut by the function's deadline: due again at once (the next tick rings it)
              when j.deferred and j.error_code = 'deadline' then interval '0'
              when j.deferred then public.automation_deferral_backoff(j.deferrals + 1)
              else public.automation_backoff(j.attempt)
            end, tz.zone, o.send_window_start, o.send_window_end, j.deadline_at)
        when j.status = 'snoozed' then
          public.automation_next_attempt(greatest(j.snooze_until, now()), tz.zone, o.send_window_start, o.send_window_end, j.deadline_at)
      end as at
    from judged j
    left join public.automation_src_organizations o on o.id = j.organization_id
    -- an unusable zone (NULL, not an IANA name) snaps in UTC rather than failing the batch
    cross join lateral (select coalesce(public.automation_effective_timezone(o.timezone), 'UTC') as zone) tz
    cross join (select public.automation_max_deferrals() as max_deferrals) cfg
    where j.reason is null
  ), nxt as (
    select ok.*,
      case
        when ok.status in ('completed', 'skipped', 'failed') then ok.status
        when ok.deferred and ok.deferrals >= ok.max_deferrals then 'failed'
        when ok.status = 'retry' and not ok.deferred and ok.attempt >= ok.max_attempts then 'failed'
        when ok.deadline_at is not null and ok.at > ok.deadline_at then 'failed'
        else 'pending'
      end as new_status,
      case
        when ok.status = 'failed' then coalesce(ok.error_code, 'internal_error')
        -- completed keeps the engine's code (delivery_unknown: sent status uncertain); a clean completion clears it
        when ok.status in ('completed', 'skipped') then ok.error_code
        when ok.deferred and ok.deferrals >= ok.max_deferrals then 'max_deferrals'
        when ok.status = 'retry' and not ok.deferred and ok.attempt >= ok.max_attempts then 'max_attempts'
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
                           when nxt.new_code = 'max_deferrals' then left(format('deferred %s times (automation_settings.max_deferrals); last: %s',
                             nxt.deferrals + 1, coalesce(nxt.error_code, '?') || coalesce(': ' || nxt.error_message, '')), 500)
                           else nxt.error_message end,
      actions_count = e.actions_count + greatest(nxt.actions_executed, 0),
      lease_token = null, lease_expires_at = null,
      completed_at = case when nxt.new_status in ('completed', 'skipped', 'failed') then now() end,
      next_attempt_at = case when nxt.new_status = 'pending' then nxt.at else e.next_attempt_at end,
      dispatched_at = case when nxt.new_status = 'pending' then null else e.dispatched_at end,
      step_index = case when nxt.status = 'snoozed' then greatest(nxt.step_index, 0) else e.step_index end,
      -- neither a delay nor a deferral consumes an attempt
      attempt = case when (nxt.status = 'snoozed' and nxt.new_status = 'pending') or nxt.deferred
                     then greatest(e.attempt - 1, 0) else e.attempt end,
      deferrals = e.deferrals + nxt.deferred::int
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
  'Applies outcomes (automation.Outcome[]) fenced by lease token: finishes listed deliveries, then moves each execution to completed/skipped/failed, or pending: a retry spends its attempt (backoff + jitter, or retry_after_seconds; failed max_attempts when none is left); a retry with deferred true (infrastructure trouble) gives the attempt back and counts a deferral (retry_after_seconds, at once for error_code deadline, else automation_deferral_backoff; failed max_deferrals past automation_settings.max_deferrals); a snooze gives the attempt back; all snapped into the send window of the organisation''s zone (UTC when that is unusable), failed expired when that passes the deadline. Counters and analytics follow once (trigger). Answers automation.Reported[] in input order; a stale token changes nothing (stale_lease).';



create or replace function public.automation_retry_execution(p_id uuid)
returns jsonb language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_old public.automation_execution_logs;
  -- completed settled_not_sent: the earliest step an operator settled not sent
  v_step integer;
begin
  select * into v_old from public.automation_execution_logs e where e.id = p_id for update;
  if not found then
    return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', '', 'reason', 'not_found');
  end if;
  if v_old.status = 'completed' and v_old.error_code = 'settled_not_sent' then
    -- (automation_settle_delivery sets this code only once no delivery is left unknown)
    select min(d.step_index) into v_step from public.automation_deliveries d
    where d.execution_id = p_id and d.status = 'failed' and d.error_code = 'settled_not_sent';
  end if;
  if v_old.status not in ('failed', 'cancelled', 'skipped') and v_step is null then
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
    status = 'pending', attempt = 0, deferrals = 0, next_attempt_at = now(), dispatched_at = null,
    error_code = null, error_message = null, completed_at = null,
    lease_token = null, lease_expires_at = null,
    -- completed: from the step settled not sent (later sent steps: the ledger answers sent)
    step_index = coalesce(v_step, e.step_index)
  where e.id = p_id;

  -- the outcome it had is taken back from the counters (the counter trigger
  -- adds the next one): one execution, counted once
  update public.automation_workflows w set
    execution_count = greatest(coalesce(w.execution_count, 0) - 1, 0),
    success_count = greatest(coalesce(w.success_count, 0) - (v_old.status = 'completed')::int, 0),
    failure_count = greatest(w.failure_count - (v_old.status = 'failed')::int, 0),
    skipped_count = greatest(w.skipped_count - (v_old.status = 'skipped')::int, 0)
  where w.id = v_old.workflow_id;
  update public.automation_analytics a set
    execution_count = greatest(coalesce(a.execution_count, 0) - 1, 0),
    success_count = greatest(coalesce(a.success_count, 0) - (v_old.status = 'completed')::int, 0),
    failure_count = greatest(coalesce(a.failure_count, 0) - (v_old.status = 'failed')::int, 0),
    skipped = greatest(coalesce(a.skipped, 0) - (v_old.status = 'skipped')::int, 0),
    success_rate = public.automation_success_rate(greatest(coalesce(a.success_count, 0) - (v_old.status = 'completed')::int, 0),
                                                  greatest(coalesce(a.execution_count, 0) - 1, 0)),
    updated_at = now()
  where a.organization_id = v_old.organization_id and a.workflow_id = v_old.workflow_id
    and a.date = (v_old.completed_at at time zone 'UTC')::date;

  -- permanently failed deliveries may be tried again (e.g. after the address
  -- was corrected); sent ones are never re-sent, unknown ones never re-sent.
  -- A completed one re-arms only what was settled not sent.
  update public.automation_deliveries d set retryable = true
  where d.execution_id = p_id and d.status = 'failed' and not d.retryable
    and (v_step is null or d.error_code = 'settled_not_sent');

  return jsonb_build_object('execution_id', p_id, 'applied', true, 'status', 'pending');
end
$$;
comment on function public.automation_retry_execution(uuid) is
  'Operator action: puts a failed, cancelled or skipped execution back to pending, due now, attempts and deferrals reset (refused past its deadline); likewise a completed one with error_code settled_not_sent (a delivery settled not sent by automation_settle_delivery), from the step of the earliest such delivery, re-arming only those. Its outcome is taken back from the workflow counters and analytics of its UTC day; its failed deliveries may be re-armed; deliveries recorded sent (or unknown) are never sent again (ledger). Refused for the replaced system''s rows (occurrence key legacy:..., reason legacy). Answers {execution_id, applied, status, reason: not_found|not_finished|legacy|past_deadline}.';


-- What operators read: the queue, the deferred part of it, and the number of
-- current check problems.
create or replace view public.automation_queue_health as
  select
    count(*) filter (where status = 'pending') as pending,
    count(*) filter (where status = 'pending' and next_attempt_at <= now()) as due_now,
    count(*) filter (where status = 'running') as running,
    count(*) filter (where status = 'running' and lease_expires_at < now()) as expired_leases,
    count(*) filter (where status = 'failed' and completed_at > now() - interval '1 hour') as failed_last_hour,
    coalesce(extract(epoch from now() - min(next_attempt_at) filter (where status = 'pending' and next_attempt_at <= now())), 0)::bigint
      as oldest_due_age_seconds,
    (select count(*) from public.automation_check_problems) as check_problems,
    count(*) filter (where status = 'pending' and deferrals > 0) as deferred
  from public.automation_execution_logs
  where status in ('pending', 'running') or (status = 'failed' and completed_at > now() - interval '1 hour');
comment on view public.automation_queue_health is
  'Queue health of automation_execution_logs: pending, due now, running, expired leases, failed in the last hour, age of the oldest due row (seconds), check_problems: the rows of automation_check_problems (workflows or organisations the checks skipped, defaulted zones, errors), and deferred: pending rows deferred at least once for infrastructure trouble (provider outage, rate limit, deadline cut; counted in pending too).';
revoke all on public.automation_queue_health from public, anon, authenticated;
grant select on public.automation_queue_health to service_role;

revoke all on function public.automation_max_deferrals(),
  public.automation_deferral_backoff(integer),
  public.automation_report(jsonb),
  public.automation_retry_execution(uuid)
  from public, anon, authenticated;
grant execute on function public.automation_max_deferrals(),
  public.automation_deferral_backoff(integer),
  public.automation_report(jsonb),
  public.automation_retry_execution(uuid)
  to service_role;
