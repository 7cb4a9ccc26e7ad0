-- Delivery and retry fences, moved here from 20261129000500 when they changed
-- (an install that applied the earlier files gets them by this migration):
-- automation_begin_deliveries begins nothing once the execution's deadline has
-- passed (answer 'expired'); automation_retry_execution takes the outcome back
-- from the analytics of its UTC day (the day the counter trigger used),
-- whatever the session's TimeZone. Idempotent.

create or replace function public.automation_begin_deliveries(p_deliveries jsonb)
returns jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_out jsonb;
begin
  if p_deliveries is null or jsonb_typeof(p_deliveries) <> 'array' then
    raise exception 'automation_begin_deliveries: p_deliveries must be a JSON array' using errcode = '22023';
  end if;
  with inp as (
    select t.ord as n, (t.d ->> 'execution_id')::uuid as execution_id,
           (t.d ->> 'lease_token')::uuid as lease_token,
           coalesce((t.d ->> 'step_index')::int, 0) as step_index,
           t.d ->> 'channel' as channel, t.d ->> 'recipient' as recipient,
           coalesce(t.d ->> 'provider', '') as provider, t.d ->> 'idempotency_key' as ikey
    from jsonb_array_elements(p_deliveries) with ordinality as t(d, ord)
  ), held as (
    select inp.*, e.organization_id, (e.deadline_at is not null and e.deadline_at <= now()) as past_deadline
    from inp join public.automation_execution_logs e
      on e.id = inp.execution_id and e.status = 'running'
     and e.lease_token = inp.lease_token and e.lease_expires_at > now()
  ), valid as (
    -- an intent the ledger cannot record (no key, unknown channel, no recipient) is invalid, not stale;
    -- so is a repeat of a key earlier in the same call (only the first may be new: sent once).
    -- Past the execution's deadline nothing begins (an appointment reminder
    -- late in a batch must not go out after the appointment started).
    select h.* from held h
    where coalesce(h.ikey, '') <> '' and h.channel in ('email', 'sms') and coalesce(h.recipient, '') <> ''
      and not h.past_deadline
      and not exists (select 1 from held h2 where h2.ikey = h.ikey and h2.n < h.n)
  ), prev as (
    select d.idempotency_key, d.execution_id, d.status, d.retryable, d.provider_message_id
    from public.automation_deliveries d
    where d.idempotency_key in (select ikey from valid)
    for update
  ), ins as (
    insert into public.automation_deliveries
      (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status)
    select h.execution_id, h.organization_id, h.step_index, h.channel, h.recipient, h.provider, h.ikey, 'sending'
    from valid h where not exists (select 1 from prev p where p.idempotency_key = h.ikey)
    on conflict (idempotency_key) do nothing
    returning idempotency_key
  ), amb as (
    update public.automation_deliveries d set status = 'unknown'
    from valid h
    where d.idempotency_key = h.ikey and d.execution_id = h.execution_id and d.status in ('sending', 'unknown')
    returning d.idempotency_key
  ), rearm as (
    update public.automation_deliveries d set
      status = 'sending', attempts = d.attempts + 1, error_code = null, error_message = null,
      retryable = false, recipient = h.recipient, provider = h.provider
    from valid h
    where d.idempotency_key = h.ikey and d.execution_id = h.execution_id and d.status = 'failed' and d.retryable
    returning d.idempotency_key
  )
  select coalesce(jsonb_agg(
    jsonb_strip_nulls(jsonb_build_object(
      'idempotency_key', coalesce(inp.ikey, ''),
      'state', case
        when h.n is null then 'stale'
        when h.past_deadline then 'expired'
        when v.n is null then 'invalid'
        when p.idempotency_key is null then case when exists (select 1 from ins where ins.idempotency_key = inp.ikey) then 'new' else 'ambiguous' end
        when p.execution_id <> h.execution_id then 'failed'
        when p.status = 'sent' then 'sent'
        when p.status in ('sending', 'unknown') then 'ambiguous'
        when p.status = 'failed' and p.retryable then 'new'
        else 'failed' end,
      'provider_message_id', case when p.status = 'sent' then nullif(p.provider_message_id, '') end))
    order by inp.n), '[]'::jsonb)
  into v_out
  from inp
  left join held h on h.n = inp.n
  left join valid v on v.n = inp.n
  left join prev p on p.idempotency_key = inp.ikey and v.n is not null;
  return v_out;
end
$$;
comment on function public.automation_begin_deliveries(jsonb) is
  'Records delivery intents (automation.DeliveryIntent[]) in the ledger before a provider call, fenced by a held lease. Answers per intent (automation.DeliveryBegun[], input order): new, sent, ambiguous (began before, never finished: now unknown), failed, invalid (no idempotency key, unknown channel, empty recipient, or a key repeated within the call: nothing recorded, never send), expired (the execution''s deadline has passed: nothing recorded, never send), or stale (lease not held).';

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
    execution_count = greatest(w.execution_count - 1, 0),
    failure_count = greatest(w.failure_count - (v_old.status = 'failed')::int, 0),
    skipped_count = greatest(w.skipped_count - (v_old.status = 'skipped')::int, 0)
  where w.id = v_old.workflow_id;
  update public.automation_analytics a set
    executions = greatest(a.executions - 1, 0),
    failed = greatest(a.failed - (v_old.status = 'failed')::int, 0),
    skipped = greatest(a.skipped - (v_old.status = 'skipped')::int, 0),
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
  'Operator action: puts a failed, cancelled or skipped execution back to pending, due now, attempts reset (refused past its deadline). Its outcome is taken back from the workflow counters and analytics; its failed deliveries may be re-armed; deliveries recorded sent (or unknown) are never sent again (ledger). Answers {execution_id, applied, status, reason: not_found|not_finished|past_deadline}.';

revoke all on function public.automation_begin_deliveries(jsonb),
  public.automation_retry_execution(uuid)
  from public, anon, authenticated;
grant execute on function public.automation_begin_deliveries(jsonb),
  public.automation_retry_execution(uuid)
  to service_role;
