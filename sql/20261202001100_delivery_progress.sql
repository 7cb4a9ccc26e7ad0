-- Delivery progress (issue 10, item 3): a delivery's provider answer is
-- recorded as soon as it is known, not only by the end-of-batch report.
--   * automation_record_deliveries(p_finished, p_begin): one ledger call that
--     finishes the deliveries of the chunk just sent (automation_finish_deliveries,
--     defined in 20261202001400_rpc_speed.sql; fenced by the lease like
--     automation_report) and begins the next chunk
--     (automation_begin_deliveries, unchanged). A crash or a failed report
--     leaves at most the chunk in flight "sending". A new name, not an
--     overload: PostgREST resolves an RPC by its argument names, and the
--     function binaries of before keep calling automation_begin_deliveries
--     during a deploy.
--   * Operators settle what stays unknown: automation_unknown_deliveries (the
--     list, recipient masked by automation_mask_recipient) and
--     automation_settle_delivery (sent or not sent, who and when:
--     automation_deliveries.settled_by / settled_at).
-- Idempotent.

alter table public.automation_deliveries add column if not exists settled_by text;
alter table public.automation_deliveries add column if not exists settled_at timestamptz;
comment on column public.automation_deliveries.settled_by is
  'Who settled an unknown delivery (automation_settle_delivery); NULL: never settled.';
comment on column public.automation_deliveries.settled_at is
  'When an unknown delivery was settled (automation_settle_delivery).';
-- the few deliveries still open (the list below); a row leaves it when finished
create index if not exists automation_deliveries_open_idx on public.automation_deliveries (created_at)
  where status in ('sending', 'unknown');


create or replace function public.automation_record_deliveries(p_finished jsonb default '[]', p_begin jsonb default '[]')
returns jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
begin
  if p_finished is not null and jsonb_typeof(p_finished) <> 'array' then
    raise exception 'automation_record_deliveries: p_finished must be a JSON array' using errcode = '22023';
  end if;
  if p_begin is not null and jsonb_typeof(p_begin) <> 'array' then
    raise exception 'automation_record_deliveries: p_begin must be a JSON array' using errcode = '22023';
  end if;
  -- finished first: a key in both (never sent by the engine) is begun on its finished state
  perform public.automation_finish_deliveries(coalesce(p_finished, '[]'));
  return public.automation_begin_deliveries(coalesce(p_begin, '[]'));
end
$$;
comment on function public.automation_record_deliveries(jsonb, jsonb) is
  'One ledger call per chunk: finishes the deliveries whose provider answer is known (p_finished: automation.DeliveryFinished[], as automation_finish_deliveries, fenced by the lease) and begins the next ones (p_begin: automation.DeliveryIntent[], as automation_begin_deliveries), in one transaction. Answers automation.DeliveryBegun[] for p_begin, in input order. NULL = empty; a value that is not an array raises 22023.';

create or replace function public.automation_mask_recipient(p_recipient text) returns text
language sql immutable set search_path = public, pg_temp as $$
  -- an e-mail address keeps its first letter, the first letter of its
  -- domain and the domain's last label (a…@e….org); a phone number its last
  -- two digits (…23): enough to tell deliveries apart, never the address
  select case
    when coalesce(p_recipient, '') = '' then ''
    when position('@' in p_recipient) > 0 then
      left(p_recipient, 1) || '…@' || left(split_part(p_recipient, '@', 2), 1) || '…'
      || coalesce('.' || nullif(substring(split_part(p_recipient, '@', 2) from '\.([^.@]+)$'), ''), '')
    else '…' || right(regexp_replace(p_recipient, '[^0-9]', '', 'g'), 2)
  end
$$;
comment on function public.automation_mask_recipient(text) is
  'A recipient safe to show: an e-mail address as a…@e….org, a phone number as …23 (its last two digits).';

-- The deliveries whose fate nobody knows: unknown, or still sending although
-- their execution no longer runs (its function died and it was never claimed
-- again: cancelled, out of attempts).
create or replace view public.automation_unknown_deliveries with (security_invoker = true) as
  select d.id, d.execution_id, d.organization_id, e.workflow_id, d.step_index, d.channel, d.provider,
         public.automation_mask_recipient(d.recipient) as recipient, d.status,
         e.status as execution_status, d.idempotency_key, d.created_at, now() - d.created_at as age
  from public.automation_deliveries d
  join public.automation_execution_logs e on e.id = d.execution_id
  where d.status in ('sending', 'unknown')
    and (d.status = 'unknown' or e.status <> 'running');
comment on view public.automation_unknown_deliveries is
  'Deliveries whose fate is unknown (status unknown, or sending while their execution is not running), recipient masked; settle them with automation_settle_delivery. service_role only.';

create or replace function public.automation_settle_delivery(p_delivery_id uuid, p_sent boolean, p_by text)
returns jsonb language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_d public.automation_deliveries;
  v_exec_status text;
  v_by text := left(btrim(coalesce(p_by, '')), 200);
  v_status text;
begin
  if p_sent is null or v_by = '' then
    return jsonb_build_object('delivery_id', p_delivery_id, 'applied', false, 'status', '',
      'reason', case when p_sent is null then 'missing_decision' else 'missing_by' end);
  end if;
  select * into v_d from public.automation_deliveries d where d.id = p_delivery_id;
  if not found then
    return jsonb_build_object('delivery_id', p_delivery_id, 'applied', false, 'status', '', 'reason', 'not_found');
  end if;
  -- execution first, then the delivery: the order automation_report locks in
  select e.status into v_exec_status from public.automation_execution_logs e where e.id = v_d.execution_id for update;
  select * into v_d from public.automation_deliveries d where d.id = p_delivery_id for update;
  if v_d.status not in ('sending', 'unknown') then
    return jsonb_build_object('delivery_id', p_delivery_id, 'execution_id', v_d.execution_id, 'applied', false,
      'status', v_d.status, 'reason', case when v_d.settled_at is not null then 'already_settled' else 'not_unknown' end);
  end if;
  if v_exec_status = 'running' then
    -- its function may still finish it: settle once the execution has ended
    return jsonb_build_object('delivery_id', p_delivery_id, 'execution_id', v_d.execution_id, 'applied', false,
      'status', v_d.status, 'reason', 'execution_running');
  end if;

  -- sent: counted once by automation_count_deliveries (today, UTC). Not
  -- sent: failed; an execution still pending sends it on its next attempt,
  -- a finished one only after automation_retry_execution.
  update public.automation_deliveries d set
    status = case when p_sent then 'sent' else 'failed' end,
    sent_at = case when p_sent then coalesce(d.sent_at, now()) else d.sent_at end,
    error_code = case when p_sent then null else 'settled_not_sent' end,
    error_message = case when p_sent then null else 'settled not sent by an operator' end,
    retryable = not p_sent and v_exec_status = 'pending',
    settled_by = v_by, settled_at = now()
  where d.id = p_delivery_id
  returning d.status into v_status;

  -- a completed execution flagged only for its unknown deliveries: once none
  -- is left, its code says what the operator found
  update public.automation_execution_logs e set updated_at = now(),
    error_code = case when s.not_sent then 'settled_not_sent' end,
    error_message = case when s.not_sent then 'a message was settled not sent by an operator' end
  from (select exists (select 1 from public.automation_deliveries d
                       where d.execution_id = v_d.execution_id and d.error_code = 'settled_not_sent') as not_sent) s
  where e.id = v_d.execution_id and e.status = 'completed' and e.error_code = 'delivery_unknown'
    and not exists (select 1 from public.automation_deliveries d
                    where d.execution_id = v_d.execution_id and d.status in ('sending', 'unknown'));

  return jsonb_build_object('delivery_id', p_delivery_id, 'execution_id', v_d.execution_id, 'applied', true,
    'status', v_status);
end
$$;
comment on function public.automation_settle_delivery(uuid, boolean, text) is
  'Operator action: settles an unknown delivery (or one left sending by an execution no longer running) as sent (counted once in analytics) or not sent (failed, settled_not_sent; re-armed for an execution still pending), recording settled_by = p_by and settled_at. A completed execution whose only problem was unknown deliveries loses delivery_unknown once none is left (settled_not_sent when one was not sent). Answers {delivery_id, execution_id, applied, status, reason: missing_decision|missing_by|not_found|not_unknown|already_settled|execution_running}.';

revoke all on public.automation_unknown_deliveries from public, anon, authenticated;
grant select on public.automation_unknown_deliveries to service_role;
revoke all on function public.automation_record_deliveries(jsonb, jsonb),
  public.automation_mask_recipient(text),
  public.automation_settle_delivery(uuid, boolean, text)
  from public, anon, authenticated;
grant execute on function public.automation_record_deliveries(jsonb, jsonb),
  public.automation_mask_recipient(text),
  public.automation_settle_delivery(uuid, boolean, text)
  to service_role;
