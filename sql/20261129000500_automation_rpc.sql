-- dueflow RPCs for the functions (PostgREST: POST /rest/v1/rpc/<name>):
-- automation_claim, automation_report, and the operator action
-- automation_cancel_execution (automation_begin_deliveries and
-- automation_retry_execution: 20261202000300_delivery_deadlines.sql).
-- service_role only; every write after the claim is fenced by the lease token.

drop function if exists public.automation_claim_document(public.automation_execution_logs);

create or replace function public.automation_claim(
  p_action text, p_ids uuid[] default null, p_limit integer default 100, p_lease_seconds integer default 300)
returns setof jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_limit integer := least(greatest(coalesce(p_limit, 100), 0), 1000);
  v_lease interval := make_interval(secs => least(greatest(coalesce(p_lease_seconds, 300), 10), 3600));
begin
  return query
  with cand as (
    select e.id, e.deadline_at
    from public.automation_execution_logs e
    where e.action = p_action
      and e.status = 'pending'
      and e.next_attempt_at <= now()
      and (p_ids is null or e.id = any (p_ids))
    order by e.next_attempt_at
    limit v_limit
    for update skip locked
  ), expired as (
    update public.automation_execution_logs e set updated_at = now(),
      status = 'failed', error_code = 'expired',
      error_message = 'deadline passed before the execution could run', completed_at = now()
    from cand where e.id = cand.id and cand.deadline_at <= now()
    returning e.id
  ), claimed as (
    update public.automation_execution_logs e set updated_at = now(),
      status = 'running', attempt = e.attempt + 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() + v_lease, started_at = now()
    from cand where e.id = cand.id and (cand.deadline_at is null or cand.deadline_at > now())
    returning e.*
  )
  -- one set-based query builds every automation.Claimed document
  select jsonb_build_object(
    'execution', jsonb_build_object(
      'id', c.id, 'workflow_id', c.workflow_id, 'organization_id', c.organization_id,
      'action', c.action, 'trigger_type', c.trigger_type, 'occurrence_key', c.occurrence_key,
      'subject_type', c.subject_type, 'subject_id', c.subject_id, 'client_id', c.client_id,
      'attempt', c.attempt, 'max_attempts', c.max_attempts, 'step_index', c.step_index,
      'deadline_at', c.deadline_at, 'lease_token', c.lease_token,
      'lease_expires_at', c.lease_expires_at, 'trigger_data', c.trigger_data),
    'workflow', jsonb_build_object('id', w.id, 'name', w.name, 'trigger_type', w.trigger_type,
      'trigger_config', w.trigger_config, 'is_active', w.is_active, 'steps', w.steps),
    'organization', case when o.id is not null then jsonb_build_object('id', o.id, 'name', o.name, 'timezone', o.timezone,
      'country_code', coalesce(o.country_code, ''), 'sender_name', coalesce(o.sender_name, ''),
      'sender_email', coalesce(o.sender_email, ''), 'reply_to_email', coalesce(o.reply_to_email, ''),
      'phone', coalesce(o.phone, ''), 'portal_url', coalesce(o.portal_url, ''),
      'send_window_start', o.send_window_start::text, 'send_window_end', o.send_window_end::text) end,
    'client', case when cl.id is not null then jsonb_build_object('id', cl.id, 'first_name', coalesce(cl.first_name, ''),
      'last_name', coalesce(cl.last_name, ''), 'email', coalesce(cl.email, ''),
      'phone', coalesce(cl.phone, ''), 'email_opt_out', coalesce(cl.email_opt_out, false),
      'sms_opt_out', coalesce(cl.sms_opt_out, false)) end,
    'invoice', case when i.id is not null then jsonb_build_object('id', i.id, 'number', i.number, 'status', i.status,
      'due_date', to_char(i.due_date, 'YYYY-MM-DD'), 'total', i.total::numeric(14,2)::text,
      'balance', i.balance::numeric(14,2)::text, 'currency', coalesce(i.currency, 'USD'),
      'portal_url', coalesce(i.portal_url, '')) end,
    'job', case when j.id is not null then jsonb_build_object('id', j.id, 'title', coalesce(j.title, ''),
      'job_type', coalesce(j.job_type, ''), 'status', j.status, 'scheduled_start', j.scheduled_start,
      'completed_at', j.completed_at, 'address', coalesce(j.address, '')) end,
    'deliveries', coalesce(dl.deliveries, '[]'::jsonb))
  from claimed c
  join public.automation_workflows w on w.id = c.workflow_id and w.organization_id = c.organization_id
  left join public.automation_src_organizations o on o.id = c.organization_id
  left join public.automation_src_clients cl on cl.id = c.client_id and cl.organization_id = c.organization_id
  left join public.automation_src_invoices i
    on c.subject_type = 'invoice' and i.id = c.subject_id and i.organization_id = c.organization_id
  left join public.automation_src_jobs j
    on c.subject_type = 'job' and j.id = c.subject_id and j.organization_id = c.organization_id
  left join lateral (
    select jsonb_agg(jsonb_build_object('step_index', d.step_index, 'channel', d.channel,
      'recipient', d.recipient, 'provider', d.provider, 'idempotency_key', d.idempotency_key,
      'status', d.status, 'provider_message_id', coalesce(d.provider_message_id, ''))
      order by d.step_index, d.channel) as deliveries
    from public.automation_deliveries d where d.execution_id = c.id
  ) dl on true
  order by c.next_attempt_at, c.id;
end
$$;
comment on function public.automation_claim(text, uuid[], integer, integer) is
  'Claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds. Due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution.';

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
                                         o.timezone, o.send_window_start, o.send_window_end, j.deadline_at)
        when j.status = 'snoozed' then
          public.automation_next_attempt(greatest(j.snooze_until, now()), o.timezone, o.send_window_start, o.send_window_end, j.deadline_at)
      end as at
    from judged j
    left join public.automation_src_organizations o on o.id = j.organization_id
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
      actions_executed = e.actions_executed + greatest(nxt.actions_executed, 0),
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
  'Applies outcomes (automation.Outcome[]) fenced by lease token: finishes listed deliveries, then moves each execution to completed/skipped/failed, or pending (retry with backoff + jitter, snooze without consuming an attempt, both snapped into the send window), or failed with max_attempts/expired. Counters and analytics follow once (trigger). Answers automation.Reported[] in input order; a stale token changes nothing (stale_lease).';

-- Operator action (troubleshooting): cancel an open execution. Answers like
-- automation.Reported.

create or replace function public.automation_cancel_execution(p_id uuid, p_reason text default null)
returns jsonb language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_status text;
begin
  update public.automation_execution_logs e set updated_at = now(),
    status = 'cancelled', error_code = 'cancelled',
    error_message = coalesce(nullif(btrim(p_reason), ''), 'cancelled by an operator'),
    completed_at = now(),
    -- a running function's token no longer matches: its deliveries are
    -- refused (stale) and its late report changes nothing
    lease_token = null, lease_expires_at = null
  where e.id = p_id and e.status in ('pending', 'running')
  returning e.status into v_status;
  if found then
    return jsonb_build_object('execution_id', p_id, 'applied', true, 'status', v_status);
  end if;
  select e.status into v_status from public.automation_execution_logs e where e.id = p_id;
  return jsonb_build_object('execution_id', p_id, 'applied', false, 'status', coalesce(v_status, ''),
    'reason', case when v_status is null then 'not_found' else 'not_open' end);
end
$$;
comment on function public.automation_cancel_execution(uuid, text) is
  'Operator action: cancels a pending or running execution (status cancelled, error_code cancelled, error_message p_reason). A running one loses its lease token, so the function''s further deliveries are refused and its late report is stale. Counted once as a finished execution. Answers {execution_id, applied, status, reason: not_found|not_open}.';

revoke all on function public.automation_cancel_execution(uuid, text)
  from public, anon, authenticated;
grant execute on function public.automation_cancel_execution(uuid, text)
  to service_role;

revoke all on function public.automation_claim(text, uuid[], integer, integer),
  public.automation_report(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_claim(text, uuid[], integer, integer),
  public.automation_report(jsonb)
  to service_role;
