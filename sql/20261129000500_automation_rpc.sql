-- dueflow RPCs for the functions (PostgREST: POST /rest/v1/rpc/<name>):
-- automation_claim, automation_begin_deliveries, and the operator actions
-- automation_cancel_execution, automation_retry_execution (automation_report:
-- 20261202000200_check_isolation.sql).
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
    select inp.*, e.organization_id
    from inp join public.automation_execution_logs e
      on e.id = inp.execution_id and e.status = 'running'
     and e.lease_token = inp.lease_token and e.lease_expires_at > now()
  ), valid as (
    -- an intent the ledger cannot record (no key, unknown channel, no recipient) is invalid, not stale;
    -- so is a repeat of a key earlier in the same call (only the first may be new: sent once)
    select h.* from held h
    where coalesce(h.ikey, '') <> '' and h.channel in ('email', 'sms') and coalesce(h.recipient, '') <> ''
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
  'Records delivery intents (automation.DeliveryIntent[]) in the ledger before a provider call, fenced by a held lease. Answers per intent (automation.DeliveryBegun[], input order): new, sent, ambiguous (began before, never finished: now unknown), failed, invalid (no idempotency key, unknown channel, empty recipient, or a key repeated within the call: nothing recorded, never send), or stale (lease not held).';

-- Operator actions (troubleshooting): cancel an open execution, or retry a
-- finished one. Both answer like automation.Reported.

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
    and a.date = v_old.completed_at::date;

  -- permanently failed deliveries may be tried again (e.g. after the address
  -- was corrected); sent ones are never re-sent, unknown ones never re-sent
  update public.automation_deliveries d set retryable = true
  where d.execution_id = p_id and d.status = 'failed' and not d.retryable;

  return jsonb_build_object('execution_id', p_id, 'applied', true, 'status', 'pending');
end
$$;
comment on function public.automation_retry_execution(uuid) is
  'Operator action: puts a failed, cancelled or skipped execution back to pending, due now, attempts reset (refused past its deadline). Its outcome is taken back from the workflow counters and analytics; its failed deliveries may be re-armed; deliveries recorded sent (or unknown) are never sent again (ledger). Answers {execution_id, applied, status, reason: not_found|not_finished|past_deadline}.';

revoke all on function public.automation_cancel_execution(uuid, text),
  public.automation_retry_execution(uuid)
  from public, anon, authenticated;
grant execute on function public.automation_cancel_execution(uuid, text),
  public.automation_retry_execution(uuid)
  to service_role;

revoke all on function public.automation_claim(text, uuid[], integer, integer),
  public.automation_begin_deliveries(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_claim(text, uuid[], integer, integer),
  public.automation_begin_deliveries(jsonb)
  to service_role;
