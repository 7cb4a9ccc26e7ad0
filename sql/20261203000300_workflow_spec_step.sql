-- issue 14 (the house): automation_workflow_spec_step (from
-- 20261202000700_workflow_spec.sql) under 80 lines: its delay branch is
-- automation_workflow_spec_delay. Same answers.

create or replace function public.automation_workflow_spec_delay(p_path text, p_item jsonb, p_config jsonb)
returns jsonb language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_value jsonb;
  v_unit text;
  v_match text[];
begin
  -- older rows' config.duration ("3 days"), else the builder's delayType
  -- and delayValue; weeks become days
  if nullif(p_config -> 'duration', 'null') is not null then
    v_match := regexp_match(p_config ->> 'duration', '^\s*([0-9]{1,9})\s*([a-z]+)\s*$', 'i');
    v_unit := lower(v_match[2]);
    v_value := to_jsonb(v_match[1]::integer);
  else
    v_unit := lower(p_config ->> 'delayType');
    v_value := public.automation_workflow_spec_int(nullif(p_config -> 'delayValue', 'null'));
  end if;
  v_unit := case v_unit
    when 'minute' then 'minutes' when 'minutes' then 'minutes' when 'min' then 'minutes' when 'mins' then 'minutes'
    when 'hour' then 'hours' when 'hours' then 'hours' when 'hr' then 'hours' when 'hrs' then 'hours'
    when 'day' then 'days' when 'days' then 'days'
    when 'week' then 'weeks' when 'weeks' then 'weeks' end;
  if v_unit is null or v_value is null then
    return jsonb_build_object('step', p_item, 'delay', true, 'problem', p_path
      || ': a delay needs a duration such as 3 days, or a delayType (minutes, hours, days, weeks) and a delayValue');
  end if;
  if v_unit = 'weeks' then
    if not public.automation_workflow_is_int(v_value, 0, 52) then
      return jsonb_build_object('step', p_item, 'delay', true, 'problem', p_path
        || ': a delay in weeks must be a whole number from 0 to 52');
    end if;
    v_unit := 'days';
    v_value := to_jsonb((v_value #>> '{}')::integer * 7);
  end if;
  return jsonb_build_object('step', jsonb_build_object('type', 'delay', v_unit, v_value), 'delay', true, 'action', null);
end
$$;
comment on function public.automation_workflow_spec_delay(text, jsonb, jsonb) is
  'A delay step of a workflow row the replaced system''s app wrote (p_item, its config p_config) as automation_workflow_spec_step returns it: {"step": {"type": "delay", minutes|hours|days: n}, "delay": true, "action": null} from config.duration ("3 days") or delayType and delayValue (weeks as days), or {"step": p_item, "delay": true, "problem": why, named by p_path}. Never raises.';

create or replace function public.automation_workflow_spec_step(p_path text, p_item jsonb) returns jsonb
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_config jsonb;
  v_raw text;
  v_kind text;
  v_step jsonb;
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_item) is distinct from 'object' then
    return jsonb_build_object('step', p_item, 'delay', false);   -- the rules: must be an object
  end if;

  -- dueflow's own shape: kept as written, only aliased variables renamed
  if not (p_item ? 'step_type' or p_item ? 'config' or coalesce(p_item ->> 'type' = 'action', false)) then
    v_step := p_item;
    foreach v_key in array array['subject', 'body', 'html'] loop
      if jsonb_typeof(p_item -> v_key) = 'string' then
        v_step := v_step || jsonb_build_object(v_key, public.automation_workflow_spec_text(p_item -> v_key));
      end if;
    end loop;
    return jsonb_build_object('step', v_step, 'delay', coalesce(p_item ->> 'type' = 'delay', false),
      'action', case p_item ->> 'type' when 'send_email' then 'email' when 'send_sms' then 'sms' end);
  end if;

  -- the builder's {type: 'action', config: {actionType, subject, message}},
  -- its {type: 'delay', config: {delayType, delayValue}} and older rows'
  -- {step_type, config: {subject, body | message, duration}}
  v_config := case when jsonb_typeof(p_item -> 'config') = 'object' then p_item -> 'config' else '{}' end;
  v_raw := coalesce(p_item ->> 'step_type', p_item ->> 'type');
  if v_raw = 'action' then
    v_raw := v_config ->> 'actionType';
    if v_raw is null then
      return jsonb_build_object('step', p_item, 'delay', false, 'problem', p_path || ': an action without actionType');
    end if;
  end if;
  v_kind := case v_raw
    when 'email' then 'email' when 'send_email' then 'email'
    when 'sms' then 'sms' when 'send_sms' then 'sms'
    when 'delay' then 'delay' end;
  if v_kind is null then
    return jsonb_build_object('step', p_item, 'delay', false, 'problem',
      case when v_raw is null then p_path || ': a step without a type'
           when public.automation_workflow_spec_name(v_raw) is null
             then p_path || ': a step type dueflow does not have'
           when p_item ->> 'type' = 'action'
             then format('%s: action %s is not one dueflow has', p_path, public.automation_workflow_spec_name(v_raw))
           else format('%s: step type %s is not one dueflow has', p_path, public.automation_workflow_spec_name(v_raw)) end);
  end if;

  if v_kind = 'email' then
    v_step := jsonb_build_object('type', 'send_email');
    foreach v_key in array array['subject', 'body', 'html'] loop
      v_value := nullif(v_config -> v_key, 'null');
      if v_key = 'body' then
        v_value := coalesce(v_value, nullif(v_config -> 'message', 'null'));
      end if;
      if v_value is not null then
        v_step := v_step || jsonb_build_object(v_key, public.automation_workflow_spec_text(v_value));
      end if;
    end loop;
  elsif v_kind = 'sms' then
    v_step := jsonb_build_object('type', 'send_sms');
    v_value := coalesce(nullif(v_config -> 'body', 'null'), nullif(v_config -> 'message', 'null'));
    if v_value is not null then
      v_step := v_step || jsonb_build_object('body', public.automation_workflow_spec_text(v_value));
    end if;
  else
    return public.automation_workflow_spec_delay(p_path, p_item, v_config);
  end if;
  return jsonb_build_object('step', v_step, 'delay', v_kind = 'delay',
    'action', case when v_kind in ('email', 'sms') then v_kind end);
end
$$;
comment on function public.automation_workflow_spec_step(text, jsonb) is
  'One step of a workflow row in dueflow''s shape: {"step": the step, "delay": true for a delay, "action": "email"/"sms" for a message, "problem": why it cannot run (named by p_path), absent when it can}. Reads dueflow''s shape (kept, aliased variables renamed), the builder''s {type: action|delay, config: {actionType, subject, message, delayType, delayValue}} and older rows'' {step_type, config: {subject, body|message, duration}}. Never raises.';

revoke all on function public.automation_workflow_spec_delay(text, jsonb, jsonb),
  public.automation_workflow_spec_step(text, jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_workflow_spec_delay(text, jsonb, jsonb),
  public.automation_workflow_spec_step(text, jsonb)
  to service_role;
