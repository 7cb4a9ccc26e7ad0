-- What dueflow runs for a workflow row: automation_workflow_spec(row). On an
-- upgraded install the replaced system's app keeps writing
-- automation_workflows in its own shapes (REPLACED_SYSTEM.md, "JSON the
-- app's builder writes"); dueflow never refuses nor rewrites such a row, it
-- reads it through this function, which converts what it can into dueflow's
-- shape (trigger_type, trigger_config, steps as automation_workflow_rules()
-- defines them) and says why when it cannot. A row already in dueflow's shape
-- comes back unchanged. Pure: reads nothing but its argument and the rules,
-- never raises. Idempotent.

-- The template variables of the replaced system's builder (dotted camelCase)
-- and of its older rows (flat names), each with dueflow's variable
-- (shared/render) of the same value. A variable in neither this table nor
-- the rules' list makes a workflow not runnable (the rules name it).
create or replace function public.automation_workflow_variable_aliases() returns jsonb
language sql immutable parallel safe as $fn$
  select $aliases$
{
  "client.firstName": "client.first_name",
  "client.lastName": "client.last_name",
  "client.name": "client.full_name",
  "client.fullName": "client.full_name",
  "company.name": "organization.name",
  "company.phone": "organization.phone",
  "company.email": "organization.email",
  "invoice.amount": "invoice.total",
  "invoice.balanceDue": "invoice.balance",
  "invoice.dueDate": "invoice.due_date",
  "invoice.daysOverdue": "invoice.days_overdue",
  "invoice.paymentLink": "invoice.portal_url",
  "job.jobType": "job.type",
  "job.scheduledStart": "job.scheduled_start",
  "job.scheduledDate": "job.scheduled_date",
  "job.completedAt": "job.completed_at",

  "client_name": "client.full_name",
  "client_first_name": "client.first_name",
  "client_last_name": "client.last_name",
  "client_email": "client.email",
  "client_phone": "client.phone",
  "company_name": "organization.name",
  "company_phone": "organization.phone",
  "company_email": "organization.email",
  "invoice_number": "invoice.number",
  "invoice_total": "invoice.total",
  "invoice_amount": "invoice.total",
  "invoice_balance": "invoice.balance",
  "balance_due": "invoice.balance",
  "due_date": "invoice.due_date",
  "days_overdue": "invoice.days_overdue",
  "payment_link": "invoice.portal_url",
  "job_title": "job.title",
  "job_type": "job.type",
  "job_address": "job.address",
  "scheduled_date": "job.scheduled_date"
}
$aliases$::jsonb
$fn$;
comment on function public.automation_workflow_variable_aliases() is
  'The replaced system''s template variables (builder: {{client.firstName}}, {{company.name}}, ...; older rows: {{client_name}}, {{invoice_number}}, ...) mapped to dueflow''s (shared/render). automation_workflow_spec() renames them in subjects and bodies.';

create or replace function public.automation_workflow_spec_text(p_value jsonb) returns jsonb
language sql immutable parallel safe set search_path = public, pg_temp as $$
  -- placeholders are found the way automation_workflow_template_problems
  -- finds them (each {{ up to the first }} before the next {{); only a
  -- placeholder whose trimmed name is an alias is rewritten, every other
  -- byte is kept
  select case
    when jsonb_typeof(p_value) is distinct from 'string' or strpos(p_value #>> '{}', '{{') = 0 then p_value
    else to_jsonb((
      select string_agg(
               case
                 when u.n = 1 then u.piece
                 when a.name is not null then '{{' || a.name || '}}' || substr(u.piece, strpos(u.piece, '}}') + 2)
                 else '{{' || u.piece
               end, '' order by u.n)
      from unnest(string_to_array(p_value #>> '{}', '{{')) with ordinality u(piece, n)
      left join lateral (
        select public.automation_workflow_variable_aliases()
                 ->> btrim(left(u.piece, strpos(u.piece, '}}') - 1), E' \t\n\r\f\v') as name
        where u.n > 1 and strpos(u.piece, '}}') > 0
      ) a on true))
  end
$$;
comment on function public.automation_workflow_spec_text(jsonb) is
  'A message template (a JSON string) with every variable of automation_workflow_variable_aliases() renamed to dueflow''s ({{ client.firstName }} -> {{client.first_name}}); any other text and any non-string value unchanged. Never raises.';

create or replace function public.automation_workflow_spec_int(p_value jsonb) returns jsonb
language sql immutable parallel safe as $$
  select case when jsonb_typeof(p_value) = 'string' and (p_value #>> '{}') ~ '^[0-9]{1,9}$'
              then to_jsonb((p_value #>> '{}')::integer)
              else p_value end
$$;
comment on function public.automation_workflow_spec_int(jsonb) is
  'A JSON string of plain digits (at most 9: "9", "09") as the JSON number the replaced system''s app meant; any other value unchanged (the rules then refuse what is not a whole number). Never raises.';

create or replace function public.automation_workflow_spec_name(p_name text) returns text
language sql immutable parallel safe set search_path = public, pg_temp as $$
  -- a name (letters, digits, _ . -) is shown, cut like the rules' names;
  -- anything else may be a message or an address typed in the wrong field
  select case when p_name ~ '^[A-Za-z][A-Za-z0-9_.-]*$' then public.automation_workflow_display(p_name) end
$$;
comment on function public.automation_workflow_spec_name(text) is
  'A trigger, step or action type of the app''s row as a reason names it: itself (cut to 64 characters) when it is a name of letters, digits, _ . and -, NULL otherwise (free text is never repeated). Never raises.';

create or replace function public.automation_workflow_spec_step(p_path text, p_item jsonb) returns jsonb
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_config jsonb;
  v_raw text;
  v_kind text;
  v_step jsonb;
  v_key text;
  v_value jsonb;
  v_unit text;
  v_match text[];
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
    if nullif(v_config -> 'duration', 'null') is not null then
      v_match := regexp_match(v_config ->> 'duration', '^\s*([0-9]{1,9})\s*([a-z]+)\s*$', 'i');
      v_unit := lower(v_match[2]);
      v_value := to_jsonb(v_match[1]::integer);
    else
      v_unit := lower(v_config ->> 'delayType');
      v_value := public.automation_workflow_spec_int(nullif(v_config -> 'delayValue', 'null'));
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
    v_step := jsonb_build_object('type', 'delay', v_unit, v_value);
  end if;
  return jsonb_build_object('step', v_step, 'delay', v_kind = 'delay',
    'action', case when v_kind in ('email', 'sms') then v_kind end);
end
$$;
comment on function public.automation_workflow_spec_step(text, jsonb) is
  'One step of a workflow row in dueflow''s shape: {"step": the step, "delay": true for a delay, "action": "email"/"sms" for a message, "problem": why it cannot run (named by p_path), absent when it can}. Reads dueflow''s shape (kept, aliased variables renamed), the builder''s {type: action|delay, config: {actionType, subject, message, delayType, delayValue}} and older rows'' {step_type, config: {subject, body|message, duration}}. Never raises.';

create or replace function public.automation_workflow_spec_steps(p_row jsonb) returns jsonb
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_steps jsonb := p_row -> 'steps';
  v_from_action_type boolean := false;
  v_order jsonb := p_row #> '{template_config,steps}';
  v_items jsonb[];
  v_placed jsonb[];
  v_merged jsonb[] := '{}';
  v_actions integer;
  v_k integer := 0;
  v_problems text[] := '{}';
  i integer;
begin
  -- the oldest rows: steps [] (or NULL) and one action in action_type/action_config
  if (v_steps is null or v_steps in ('null'::jsonb, '[]'::jsonb))
     and jsonb_typeof(p_row -> 'action_type') = 'string' and btrim(p_row ->> 'action_type') <> '' then
    v_steps := jsonb_build_array(jsonb_build_object('step_type', p_row -> 'action_type', 'config', p_row -> 'action_config'));
    v_from_action_type := true;
  end if;
  if jsonb_typeof(v_steps) is distinct from 'array' then
    return jsonb_build_object('steps', v_steps, 'problems', '[]'::jsonb);   -- the rules: must be a list
  end if;

  select coalesce(array_agg(public.automation_workflow_spec_step(
           case when v_from_action_type then 'action_type' else format('steps[%s]', x.n - 1) end, x.e) order by x.n), '{}')
  into v_items
  from jsonb_array_elements(v_steps) with ordinality x(e, n);

  -- The builder keeps its delays only in template_config.steps, the full
  -- ordered list (actions there carry no text): its k-th action is the k-th
  -- item of steps. Used only when steps itself has no delay.
  if jsonb_typeof(v_order) = 'array' and jsonb_array_length(v_order) > 0
     and not exists (select 1 from unnest(v_items) c where (c ->> 'delay')::boolean) then
    select array_agg(public.automation_workflow_spec_step(format('template_config.steps[%s]', x.n - 1), x.e) order by x.n)
    into v_placed
    from jsonb_array_elements(v_order) with ordinality x(e, n);
    select count(*) into v_actions from unnest(v_placed) c where not (c ->> 'delay')::boolean;
    if v_actions <> cardinality(v_items) then
      v_problems := v_problems || format(
        'template_config.steps: %s actions where the workflow has %s, so dueflow cannot tell where its delays go',
        v_actions, cardinality(v_items));
    else
      for i in 1 .. cardinality(v_placed) loop
        if (v_placed[i] ->> 'delay')::boolean then
          v_merged := v_merged || v_placed[i];
        else
          v_k := v_k + 1;
          if v_placed[i] ->> 'action' <> v_items[v_k] ->> 'action' then
            v_problems := v_problems || format('template_config.steps[%s]: action %s where %s is %s', i - 1,
              v_placed[i] ->> 'action', case when v_from_action_type then 'action_type' else format('steps[%s]', v_k - 1) end,
              v_items[v_k] ->> 'action');
          end if;
          v_merged := v_merged || v_items[v_k];
        end if;
      end loop;
      v_items := v_merged;
    end if;
  end if;

  return jsonb_build_object(
    'steps', coalesce((select jsonb_agg(c -> 'step' order by n) from unnest(v_items) with ordinality u(c, n)), '[]'),
    'problems', to_jsonb(coalesce((select array_agg(c ->> 'problem' order by n) from unnest(v_items) with ordinality u(c, n)
                                   where c ->> 'problem' is not null), '{}') || v_problems));
end
$$;
comment on function public.automation_workflow_spec_steps(jsonb) is
  'The steps of a workflow row (to_jsonb of automation_workflows) in dueflow''s shape: {"steps": [...], "problems": [...]}. Items of steps one by one (automation_workflow_spec_step); steps [] or NULL with action_type/action_config: that one action; when template_config.steps is a non-empty list and steps has no delay, it gives the order: its delays in place, its k-th action filled by the k-th item of steps (counts and email/sms must agree). Never raises.';

create or replace function public.automation_workflow_spec_trigger(p_row jsonb) returns jsonb
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_name text := p_row ->> 'trigger_type';
  v_type text;
  v_config jsonb := nullif(p_row -> 'trigger_config', 'null');
  v_conditions jsonb := p_row -> 'trigger_conditions';
  v_rule jsonb;
  v_key text;
  v_value jsonb;
  v_out jsonb := '{}';
  v_problems text[] := '{}';
begin
  v_type := case v_name
    when 'scheduled' then 'scheduled' when 'schedule_time' then 'scheduled'
    when 'invoice_overdue' then 'invoice_overdue'
    when 'maintenance_due' then 'maintenance_due'
    when 'stale_job' then 'stale_job'
    when 'appointment' then 'appointment' when 'job_scheduled' then 'appointment' end;
  if v_type is null then
    return jsonb_build_object('trigger_type', v_name, 'trigger_config', v_config, 'problems', jsonb_build_array(
      case when v_name is null then 'trigger type is not set'
           when public.automation_workflow_spec_name(v_name) is null then 'trigger type is not one dueflow runs'
           else format('trigger type %s is an event trigger dueflow does not run', public.automation_workflow_spec_name(v_name)) end));
  end if;
  v_config := coalesce(v_config, '{}');
  if jsonb_typeof(v_config) <> 'object' then
    return jsonb_build_object('trigger_type', v_type, 'trigger_config', v_config, 'problems', '[]'::jsonb);  -- the rules: must be an object
  end if;
  if jsonb_typeof(v_conditions) is distinct from 'object' then
    v_conditions := '{}';
  end if;

  -- keys that would change whom the workflow reaches: refused, not dropped
  if v_config -> 'conditions' not in ('[]'::jsonb, '{}'::jsonb, 'null'::jsonb) then
    v_problems := v_problems || 'trigger_config.conditions: the builder''s conditions are not something dueflow runs'::text;
  end if;
  -- the replaced system kept a schedule's times in its automation_schedules
  -- (cron expressions), which dueflow does not read: without dueflow's own
  -- frequency a row of its app would silently run daily at 09:00
  if v_type = 'scheduled' and p_row ? 'user_id' and not v_config ? 'frequency' then
    v_problems := v_problems || 'trigger_config.frequency: not set (the app''s automation_schedules.cron_expression is not read by dueflow; set frequency, hour and minute)'::text;
  end if;
  if v_config ->> 'seasonal' = 'true' then
    v_problems := v_problems || 'trigger_config.seasonal: seasonal reminders are not something dueflow runs'::text;
  end if;

  -- the rules' keys of the type; the app's names for them where absent;
  -- every other key (triggerType, conditions, UI keys) dropped
  for v_rule in
    select r from jsonb_array_elements(public.automation_workflow_rules() -> 'trigger_types') t
    cross join lateral jsonb_array_elements(t -> 'config') r
    where t ->> 'name' = v_type
  loop
    v_key := v_rule ->> 'key';
    v_value := nullif(v_config -> v_key, 'null');
    if v_value is null then
      v_value := case v_type || '.' || v_key
        when 'invoice_overdue.days_after_due'
          then coalesce(nullif(v_config -> 'days_overdue', 'null'), nullif(v_config -> 'daysOverdue', 'null'))
        when 'maintenance_due.months_after_service'
          then coalesce(nullif(v_config -> 'months_after_last_service', 'null'),
                        nullif(v_conditions -> 'months_after_last_service', 'null')) end;
      if jsonb_typeof(v_value) in ('number', 'string') and v_rule ->> 'type' = 'integer_list' then
        v_value := jsonb_build_array(v_value);
      end if;
    end if;
    continue when v_value is null;
    if v_rule ->> 'type' = 'integer' then
      v_value := public.automation_workflow_spec_int(v_value);
    elsif v_rule ->> 'type' = 'integer_list' and jsonb_typeof(v_value) = 'array' then
      select coalesce(jsonb_agg(public.automation_workflow_spec_int(e) order by n), '[]') into v_value
      from jsonb_array_elements(v_value) with ordinality x(e, n);
    end if;
    v_out := v_out || jsonb_build_object(v_key, v_value);
  end loop;
  return jsonb_build_object('trigger_type', v_type, 'trigger_config', v_out, 'problems', to_jsonb(v_problems));
end
$$;
comment on function public.automation_workflow_spec_trigger(jsonb) is
  'The trigger of a workflow row (to_jsonb of automation_workflows) in dueflow''s shape: {"trigger_type", "trigger_config", "problems": [...]}. scheduled, schedule_time -> scheduled; job_scheduled -> appointment; invoice_overdue, maintenance_due, stale_job, appointment as they are; any other type (an event trigger) or none is a problem. trigger_config keeps the rules'' keys of the type ("9" -> 9), takes days_overdue/daysOverdue as days_after_due [n] and months_after_last_service (trigger_config or trigger_conditions) as months_after_service, drops every other key; non-empty builder conditions and seasonal: true are problems. Never raises.';

create or replace function public.automation_workflow_spec(p_workflow public.automation_workflows) returns jsonb
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  -- through to_jsonb, so a column this install does not have (status,
  -- enabled, template_config, action_type, ... exist only where the replaced
  -- system ran) is just absent. to_jsonb is stable only for the text of
  -- dates, which the spec never reads: the result depends on the row alone.
  v_row jsonb := coalesce(to_jsonb(p_workflow), '{}');
  v_trigger jsonb := public.automation_workflow_spec_trigger(v_row);
  v_steps jsonb := public.automation_workflow_spec_steps(v_row);
  v_problems text[];
  v_active boolean;
begin
  select coalesce(array_agg(p order by g, n), '{}') into v_problems
  from (select 1, p, n from jsonb_array_elements_text(v_trigger -> 'problems') with ordinality a(p, n)
        union all
        select 2, p, n from jsonb_array_elements_text(v_steps -> 'problems') with ordinality b(p, n)) x(g, p, n);
  if cardinality(v_problems) = 0 then
    v_problems := public.automation_workflow_problems(
      v_trigger ->> 'trigger_type', nullif(v_trigger -> 'trigger_config', 'null'), nullif(v_steps -> 'steps', 'null'));
  end if;
  -- the replaced system ran a workflow when is_active and status = 'active'
  -- (its checks and row trigger); its builder's enabled switch counts too:
  -- any flag the row has that says off keeps it off
  v_active := coalesce(v_row -> 'is_active' = 'true'::jsonb, false)
    and (not v_row ? 'status' or coalesce(v_row ->> 'status' = 'active', false))
    and (not v_row ? 'enabled' or v_row -> 'enabled' is distinct from 'false'::jsonb);
  return jsonb_build_object(
    'runnable', cardinality(v_problems) = 0,
    'reason', nullif(array_to_string(v_problems, '; '), ''),
    'trigger_type', v_trigger -> 'trigger_type',
    'trigger_config', v_trigger -> 'trigger_config',
    'steps', v_steps -> 'steps',
    'active', v_active);
end
$$;
comment on function public.automation_workflow_spec(public.automation_workflows) is
  'What dueflow runs for a workflow row, whatever shape the replaced system''s app wrote it in: {"runnable", "reason" (the problems joined by "; ", null when runnable), "trigger_type", "trigger_config", "steps" (dueflow''s shape; when not runnable, as far as converted), "active" (is_active, and status = ''active'' and enabled not false where the row has those columns)}. A row valid in dueflow''s shape comes back unchanged. Conversion problems (event trigger types, actions dueflow does not have, builder conditions, ...) come first; a converted workflow is then checked by automation_workflow_problems(). Reads the row through to_jsonb, so it works with and without the replaced system''s columns. Never raises.';

revoke all on function public.automation_workflow_variable_aliases(),
  public.automation_workflow_spec_text(jsonb),
  public.automation_workflow_spec_int(jsonb),
  public.automation_workflow_spec_name(text),
  public.automation_workflow_spec_step(text, jsonb),
  public.automation_workflow_spec_steps(jsonb),
  public.automation_workflow_spec_trigger(jsonb),
  public.automation_workflow_spec(public.automation_workflows)
  from public, anon, authenticated;
grant execute on function public.automation_workflow_variable_aliases(),
  public.automation_workflow_spec_text(jsonb),
  public.automation_workflow_spec_int(jsonb),
  public.automation_workflow_spec_name(text),
  public.automation_workflow_spec_step(text, jsonb),
  public.automation_workflow_spec_steps(jsonb),
  public.automation_workflow_spec_trigger(jsonb),
  public.automation_workflow_spec(public.automation_workflows)
  to service_role;
