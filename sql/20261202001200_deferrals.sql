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
-- Redefined here: automation_retry_execution (resets
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

-- The report that applies these rules (a retry marked deferred gives its
-- attempt back and counts a deferral) is defined once, in
-- 20261202001400_rpc_speed.sql.



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
  public.automation_retry_execution(uuid)
  from public, anon, authenticated;
grant execute on function public.automation_max_deferrals(),
  public.automation_deferral_backoff(integer),
  public.automation_retry_execution(uuid)
  to service_role;
