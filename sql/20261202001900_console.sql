-- issue 13, the operator console (`dueflow console`) and the CLI's
-- executions, execution, retry and cancel: the indexes its executions list
-- pages on (keyset, newest first), the record of operator actions with who
-- did them, and automation_operator_act, the one entry point that applies an
-- action through the existing operator functions and records it.

-- Keyset paging, newest first: (created_at, id) below the last row shown,
-- unfiltered, per state (the counts per state read it too), per workflow
-- (per organisation: automation_execution_logs_org_created_idx) and per
-- error code (partial: only rows with a code). Three more entries per claim
-- and report (their updates are not HOT anyway: status and lease columns
-- are indexed).
create index if not exists automation_execution_logs_created_idx
  on public.automation_execution_logs (created_at desc, id desc);
create index if not exists automation_execution_logs_status_created_idx
  on public.automation_execution_logs (status, created_at desc, id desc);
create index if not exists automation_execution_logs_workflow_created_idx
  on public.automation_execution_logs (workflow_id, created_at desc, id desc);
create index if not exists automation_execution_logs_error_created_idx
  on public.automation_execution_logs (error_code, created_at desc, id desc) where error_code is not null;

-- Who did what, from the console or the CLI. Ids and the answer only: no
-- recipient, no message.
create table if not exists public.automation_operator_actions (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null check (btrim(actor) <> '' and length(actor) <= 200),
  action text not null check (action in ('retry', 'cancel', 'settle_sent', 'settle_not_sent', 'pause', 'resume')),
  execution_id uuid,
  delivery_id uuid,
  workflow_id uuid,
  applied boolean not null,
  answer jsonb not null default '{}'
);
create index if not exists automation_operator_actions_execution_idx
  on public.automation_operator_actions (execution_id, at) where execution_id is not null;
create index if not exists automation_operator_actions_workflow_idx
  on public.automation_operator_actions (workflow_id, at) where workflow_id is not null;
alter table public.automation_operator_actions enable row level security;
revoke all on public.automation_operator_actions from public, anon, authenticated;
grant select, insert on public.automation_operator_actions to service_role;
comment on table public.automation_operator_actions is
  'Operator actions (retry, cancel, settle, pause, resume) taken from the console or the CLI: when, who (actor), on what (ids) and the operator function''s answer. Written by automation_operator_act. service_role only.';

create or replace function public.automation_operator_act(p_action text, p_id uuid, p_by text, p_reason text default null)
returns jsonb language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_by text := left(btrim(coalesce(p_by, '')), 200);
  v_answer jsonb;
  v_workflow uuid;
  v_found boolean;
begin
  if v_by = '' then
    return jsonb_build_object('applied', false, 'reason', 'missing_by');
  end if;
  case p_action
    when 'retry' then
      v_answer := public.automation_retry_execution(p_id);
    when 'cancel' then
      v_answer := public.automation_cancel_execution(p_id, p_reason);
    when 'settle_sent', 'settle_not_sent' then
      v_answer := public.automation_settle_delivery(p_id, p_action = 'settle_sent', v_by);
    when 'pause', 'resume' then
      update public.automation_workflows w set is_active = (p_action = 'resume')
      where w.id = p_id and w.is_active is distinct from (p_action = 'resume')
      returning w.id into v_workflow;
      v_found := found or exists (select 1 from public.automation_workflows w where w.id = p_id);
      v_answer := jsonb_build_object('workflow_id', p_id, 'applied', v_workflow is not null,
        'status', case when not v_found then '' when p_action = 'resume' then 'active' else 'paused' end);
      if v_workflow is null then
        v_answer := v_answer || jsonb_build_object('reason', case when v_found then 'unchanged' else 'not_found' end);
      end if;
    else
      return jsonb_build_object('applied', false, 'reason', 'unknown_action');
  end case;
  insert into public.automation_operator_actions (actor, action, execution_id, delivery_id, workflow_id, applied, answer)
  values (v_by, p_action,
          case when p_action in ('retry', 'cancel') then p_id else nullif(v_answer ->> 'execution_id', '')::uuid end,
          case when p_action like 'settle%' then p_id end,
          case when p_action in ('pause', 'resume') then p_id end,
          coalesce((v_answer ->> 'applied')::boolean, false), v_answer);
  return v_answer;
end
$$;
comment on function public.automation_operator_act(text, uuid, text, text) is
  'Operator action with its record: p_action retry (automation_retry_execution), cancel (automation_cancel_execution, p_reason), settle_sent / settle_not_sent (automation_settle_delivery, p_id a delivery), pause / resume (automation_workflows.is_active, p_id a workflow); p_by (who) is required. Records the action, applied or refused, in automation_operator_actions and answers what the operator function answered ({applied, status, reason, ...}; reason missing_by or unknown_action before anything is done).';
revoke all on function public.automation_operator_act(text, uuid, text, text) from public, anon, authenticated;
grant execute on function public.automation_operator_act(text, uuid, text, text) to service_role;
