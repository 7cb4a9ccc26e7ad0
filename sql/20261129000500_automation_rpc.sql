-- dueflow RPCs for the functions (PostgREST: POST /rest/v1/rpc/<name>):
-- the operator action automation_cancel_execution (automation_claim:
-- 20261202000400_source_isolation.sql; automation_report and
-- automation_retry_execution: 20261202001000_inplace_upgrade.sql;
-- automation_begin_deliveries: 20261202000300_delivery_deadlines.sql).
-- service_role only; every write after the claim is fenced by the lease token.

drop function if exists public.automation_claim_document(public.automation_execution_logs);

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

