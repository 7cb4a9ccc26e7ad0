-- Messages people accept (issue 12), the rest of the wiring (the rules'
-- message_class and {{unsubscribe_url}} are in 20261202001820, the one
-- definition of this week's rules):
--   * automation_begin_deliveries: an intent's sender (the number or address
--     the message goes from: an SMS STOP finds the organisations that texted
--     the number from it) and opt_out_notice (the SMS carries "Reply STOP to
--     opt out"; recorded as told when it becomes sent) are kept in the ledger.
-- Redefined from 20261202001400, with the primary-key lookup of the held
-- lease from the RPC profile (20261202001600 describes it); the one
-- definition of this week's changes. Idempotent.

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
           coalesce(t.d ->> 'provider', '') as provider, t.d ->> 'idempotency_key' as ikey,
           left(nullif(btrim(coalesce(t.d ->> 'sender', '')), ''), 320) as sender,
           coalesce(jsonb_typeof(t.d -> 'opt_out_notice') = 'boolean' and (t.d -> 'opt_out_notice')::boolean, false) as notice
    from jsonb_array_elements(p_deliveries) with ordinality as t(d, ord)
  ), held as (
    -- one primary-key lookup per intent: the subquery (offset 0) has only the
    -- id, the lease is checked on the row it found. With the lease's
    -- conditions inside, the planner walked the index of running executions
    -- (lease_expires_at > now()) whenever the statistics said few run: every
    -- running row per intent (10,000 buffers for 16 intents).
    select inp.*, e.organization_id, (e.deadline_at is not null and e.deadline_at <= now()) as past_deadline
    from inp cross join lateral (
      select e.organization_id, e.deadline_at, e.status, e.lease_token, e.lease_expires_at
      from public.automation_execution_logs e
      where e.id = inp.execution_id
      offset 0) e
    where e.status = 'running' and e.lease_token = inp.lease_token and e.lease_expires_at > now()
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
      (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status,
       sender, opt_out_notice)
    select h.execution_id, h.organization_id, h.step_index, h.channel, h.recipient, h.provider, h.ikey, 'sending',
           h.sender, h.notice
    from valid h where not exists (select 1 from prev p where p.idempotency_key = h.ikey)
    on conflict (idempotency_key) do nothing
    returning idempotency_key
  ), amb as (
    update public.automation_deliveries d set status = 'unknown'
    -- only rows prev found (and locked): nothing to look at on a first attempt
    from valid h join prev p on p.idempotency_key = h.ikey and p.status in ('sending', 'unknown')
    where d.idempotency_key = p.idempotency_key and d.execution_id = h.execution_id and d.status in ('sending', 'unknown')
    returning d.idempotency_key
  ), rearm as (
    update public.automation_deliveries d set
      status = 'sending', attempts = d.attempts + 1, error_code = null, error_message = null,
      retryable = false, recipient = h.recipient, provider = h.provider,
      sender = coalesce(h.sender, d.sender), opt_out_notice = h.notice
    from valid h join prev p on p.idempotency_key = h.ikey and p.status = 'failed' and p.retryable
    where d.idempotency_key = p.idempotency_key and d.execution_id = h.execution_id and d.status = 'failed' and d.retryable
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
  'Records delivery intents (automation.DeliveryIntent[]) in the ledger before a provider call, fenced by a held lease. Answers per intent (automation.DeliveryBegun[], input order): new, sent, ambiguous (began before, never finished: now unknown), failed, invalid (no idempotency key, unknown channel, empty recipient, or a key repeated within the call: nothing recorded, never send), expired (the execution''s deadline has passed: nothing recorded, never send), or stale (lease not held). An intent may name its sender (recorded in automation_deliveries.sender) and opt_out_notice (the SMS carries the opt-out instruction: automation_sms_notices records the number when it becomes sent).';
revoke all on function public.automation_begin_deliveries(jsonb) from public, anon, authenticated;
grant execute on function public.automation_begin_deliveries(jsonb) to service_role;
