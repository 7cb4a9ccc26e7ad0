-- dueflow RPCs for the functions (PostgREST: POST /rest/v1/rpc/<name>):
-- automation_claim and the operator action automation_cancel_execution
-- (automation_report: 20261202000200_check_isolation.sql;
-- automation_begin_deliveries and automation_retry_execution:
-- 20261202000300_delivery_deadlines.sql).
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

revoke all on function public.automation_claim(text, uuid[], integer, integer)
  from public, anon, authenticated;
grant execute on function public.automation_claim(text, uuid[], integer, integer)
  to service_role;
