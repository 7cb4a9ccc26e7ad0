-- dueflow workflow rules: what a valid workflow is, defined once. The rules
-- document (automation_workflow_rules(), the same JSON as the Go package
-- shared/workflow embeds from rules.json; a Go test keeps them equal) is
-- interpreted by automation_workflow_problems(), which lists every problem of
-- a workflow and never raises. The BEFORE INSERT/UPDATE trigger
-- automation_workflows_validate (20261202000800_workflow_spec_wiring.sql)
-- stores the problems in automation_workflows.problems and refuses a workflow
-- dueflow cannot run (errcode 23514) unless the install is in mark mode. Idempotent.

create or replace function public.automation_workflow_rules() returns jsonb
language sql immutable parallel safe as $fn$
  select $rules$
{
  "version": 1,
  "trigger_types": [
    {
      "name": "scheduled",
      "config": [
        {"key": "frequency", "type": "enum", "values": ["every_minute", "hourly", "daily", "weekly", "monthly"]},
        {"key": "hour", "type": "integer", "min": 0, "max": 23},
        {"key": "minute", "type": "integer", "min": 0, "max": 59},
        {"key": "day_of_week", "type": "integer", "min": 0, "max": 6},
        {"key": "day_of_month", "type": "integer", "min": 1, "max": 31},
        {"key": "audience", "type": "enum", "values": ["organization", "clients"]}
      ]
    },
    {
      "name": "invoice_overdue",
      "config": [
        {"key": "days_after_due", "type": "integer_list", "max_items": 20, "min": 0, "max": 365}
      ]
    },
    {
      "name": "maintenance_due",
      "config": [
        {"key": "months_after_service", "type": "integer", "min": 1, "max": 120},
        {"key": "job_type", "type": "string", "max_chars": 100}
      ]
    },
    {
      "name": "stale_job",
      "config": [
        {"key": "days_inactive", "type": "integer", "min": 1, "max": 365},
        {"key": "statuses", "type": "string_list", "max_items": 20, "max_chars": 50}
      ]
    },
    {
      "name": "appointment",
      "config": [
        {"key": "hours_before", "type": "integer", "min": 1, "max": 720}
      ]
    }
  ],
  "steps": {
    "max_steps": 20,
    "types": [
      {
        "name": "send_email",
        "fields": [
          {"key": "subject", "type": "string", "max_chars": 500, "template": true},
          {"key": "body", "type": "string", "max_bytes": 65536, "template": true},
          {"key": "html", "type": "string", "max_bytes": 65536, "template": true}
        ]
      },
      {
        "name": "send_sms",
        "fields": [
          {"key": "body", "type": "string", "max_chars": 1600, "template": true}
        ]
      },
      {
        "name": "delay",
        "fields": [
          {"key": "minutes", "type": "integer", "min": 0, "max": 525600, "unit_minutes": 1},
          {"key": "hours", "type": "integer", "min": 0, "max": 8760, "unit_minutes": 60},
          {"key": "days", "type": "integer", "min": 0, "max": 365, "unit_minutes": 1440}
        ],
        "total_minutes": {"min": 1, "max": 525600, "message": "a delay must be from 1 minute to 365 days"}
      }
    ]
  },
  "variables": [
    "client.first_name", "client.last_name", "client.full_name", "client.email", "client.phone",
    "organization.name", "organization.phone", "organization.email", "organization.portal_url",
    "invoice.number", "invoice.total", "invoice.balance", "invoice.due_date", "invoice.days_overdue", "invoice.portal_url",
    "job.title", "job.type", "job.scheduled_start", "job.scheduled_date", "job.address", "job.completed_at"
  ]
}
$rules$::jsonb
$fn$;
comment on function public.automation_workflow_rules() is
  'The workflow rules document (trigger types and their trigger_config keys, step types and their fields, bounds, template variables), equal to shared/workflow/rules.json. automation_workflow_problems() interprets it.';

-- A user-written name (an unknown key, an unknown template variable) as it
-- appears in a problem message: at most 64 characters.
create or replace function public.automation_workflow_display(p_name text) returns text
language sql immutable parallel safe as $$
  select case when length(p_name) > 64 then left(p_name, 64) || '...' else p_name end
$$;
comment on function public.automation_workflow_display(text) is
  'A user-written name as a workflow problem shows it: cut to 64 characters (followed by ...) when longer.';

create or replace function public.automation_workflow_is_int(p_value jsonb, p_min bigint, p_max bigint) returns boolean
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_text text;
begin
  if p_value is null or jsonb_typeof(p_value) is distinct from 'number' then
    return false;
  end if;
  -- jsonb prints a number the way numeric does: digits only exactly when it
  -- has no fractional digits (1e2 is 100, 9.0 stays 9.0)
  v_text := p_value #>> '{}';
  if v_text !~ '^-?[0-9]{1,18}$' then
    return false;
  end if;
  return v_text::bigint between p_min and p_max;
end
$$;
comment on function public.automation_workflow_is_int(jsonb, bigint, bigint) is
  'True when p_value is a JSON number without fractional digits (as jsonb prints it: 9 or 1e1, not 9.0 or 9.5) between p_min and p_max. Never raises.';

create or replace function public.automation_workflow_template_problems(p_path text, p_text text, p_variables jsonb)
returns text[] language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  -- what Go's strings.TrimSpace trims (Unicode White_Space)
  c_space constant text := chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(32) || chr(133) || chr(160)
    || chr(5760) || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197) || chr(8198)
    || chr(8199) || chr(8200) || chr(8201) || chr(8202) || chr(8232) || chr(8233) || chr(8239) || chr(8287)
    || chr(12288);
  v_out text[];
  v_unclosed boolean;
begin
  if p_text is null or strpos(p_text, '{{') = 0 then
    return '{}';
  end if;
  -- every "{{" opens a placeholder that ends at the first "}}" before the next "{{"
  with piece as (
    select u.n, u.piece, strpos(u.piece, '}}') as close_at
    from unnest(string_to_array(p_text, '{{')) with ordinality u(piece, n)
    where u.n > 1
  ), named as (
    select p.n, btrim(left(p.piece, p.close_at - 1), c_space) as name
    from piece p where p.close_at > 0
  ), unknown as (
    select public.automation_workflow_display(nm.name) as shown, min(nm.n) as first_n
    from named nm
    where not (p_variables ? nm.name)
    group by 1
  )
  select coalesce((select array_agg(format('%s: unknown variable {{%s}}', p_path, u.shown) order by u.first_n) from unknown u), '{}'),
         exists (select 1 from piece p where p.close_at = 0)
  into v_out, v_unclosed;
  if v_unclosed then
    v_out := v_out || (p_path || ': unclosed {{');
  end if;
  return v_out;
end
$$;
comment on function public.automation_workflow_template_problems(text, text, jsonb) is
  'Problems of one message template: each distinct {{name}} not among p_variables (in order of first appearance), then an unclosed {{ (a {{ without its }} before the next {{). Never raises.';

create or replace function public.automation_workflow_field_problems(p_path text, p_rule jsonb, p_value jsonb)
returns text[] language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_type text := p_rule ->> 'type';
  v_kind text := jsonb_typeof(p_value);
  v_min bigint := (p_rule ->> 'min')::bigint;
  v_max bigint := (p_rule ->> 'max')::bigint;
  v_text text;
  v_ok boolean := false;
begin
  case v_type
  when 'integer' then
    if not public.automation_workflow_is_int(p_value, v_min, v_max) then
      return array[format('%s: must be a whole number from %s to %s', p_path, v_min, v_max)];
    end if;
  when 'enum' then
    if v_kind is distinct from 'string' or not ((p_rule -> 'values') ? (p_value #>> '{}')) then
      return array[format('%s: must be one of %s', p_path,
        (select string_agg(v, ', ' order by n) from jsonb_array_elements_text(p_rule -> 'values') with ordinality x(v, n)))];
    end if;
  when 'string' then
    if v_kind is distinct from 'string' then
      v_ok := false;
    else
      v_text := p_value #>> '{}';
      v_ok := (not p_rule ? 'max_chars' or length(v_text) <= (p_rule ->> 'max_chars')::bigint)
          and (not p_rule ? 'max_bytes' or octet_length(v_text) <= (p_rule ->> 'max_bytes')::bigint);
    end if;
    if not v_ok then
      if p_rule ? 'max_bytes' then
        return array[format('%s: must be text of at most %s bytes', p_path, p_rule ->> 'max_bytes')];
      end if;
      return array[format('%s: must be text of at most %s characters', p_path, p_rule ->> 'max_chars')];
    end if;
    if (p_rule ->> 'template')::boolean then
      return public.automation_workflow_template_problems(p_path, v_text, public.automation_workflow_rules() -> 'variables');
    end if;
  when 'integer_list' then
    if v_kind = 'array' then
      if jsonb_array_length(p_value) between 1 and (p_rule ->> 'max_items')::bigint then
        v_ok := not exists (select 1 from jsonb_array_elements(p_value) e
                            where not public.automation_workflow_is_int(e, v_min, v_max));
      end if;
    end if;
    if not v_ok then
      return array[format('%s: must be a list of 1 to %s whole numbers from %s to %s', p_path,
        p_rule ->> 'max_items', v_min, v_max)];
    end if;
  when 'string_list' then
    if v_kind = 'array' then
      if jsonb_array_length(p_value) between 1 and (p_rule ->> 'max_items')::bigint then
        v_ok := not exists (select 1 from jsonb_array_elements(p_value) e
                            where jsonb_typeof(e) <> 'string'
                               or length(e #>> '{}') > (p_rule ->> 'max_chars')::bigint);
      end if;
    end if;
    if not v_ok then
      return array[format('%s: must be a list of 1 to %s texts of at most %s characters', p_path,
        p_rule ->> 'max_items', p_rule ->> 'max_chars')];
    end if;
  else
    return array[format('%s: has no rule', p_path)];
  end case;
  return '{}';
end
$$;
comment on function public.automation_workflow_field_problems(text, jsonb, jsonb) is
  'Problems of one value against its rule (integer, enum, string, integer_list, string_list; templates also checked for unknown variables). Never raises.';

create or replace function public.automation_workflow_object_problems(
  p_path text, p_fields jsonb, p_object jsonb, p_extra_keys text[])
returns text[] language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_out text[];
begin
  if p_object is null or jsonb_typeof(p_object) is distinct from 'object' then
    return '{}';
  end if;
  select coalesce(array_agg(x.msg order by x.g, x.n, x.m), '{}') into v_out
  from (
    -- the known keys present, in rule order
    select 1 as g, f.n, p.m, p.msg
    from jsonb_array_elements(p_fields) with ordinality f(rule, n)
    cross join lateral unnest(public.automation_workflow_field_problems(
      p_path || '.' || (f.rule ->> 'key'), f.rule, p_object -> (f.rule ->> 'key'))) with ordinality p(msg, m)
    where p_object ? (f.rule ->> 'key')
    union all
    -- then every unknown key, in byte order
    select 2, row_number() over (order by k collate "C"), 0,
           p_path || '.' || public.automation_workflow_display(k) || ': unknown key'
    from jsonb_object_keys(p_object) k
    where k <> all (coalesce(p_extra_keys, '{}'))
      and not exists (select 1 from jsonb_array_elements(p_fields) f where f ->> 'key' = k)
  ) x;
  return v_out;
end
$$;
comment on function public.automation_workflow_object_problems(text, jsonb, jsonb, text[]) is
  'Problems of a JSON object against a list of field rules: the known keys present in rule order, then each unknown key (besides p_extra_keys) in byte order. Never raises.';

create or replace function public.automation_workflow_step_problems(p_index integer, p_step jsonb, p_rules jsonb)
returns text[] language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_path text := format('steps[%s]', p_index);
  v_type jsonb;
  v_total bigint;
  v_out text[];
begin
  if p_step is null or jsonb_typeof(p_step) is distinct from 'object' then
    return array[v_path || ': must be an object'];
  end if;
  if jsonb_typeof(p_step -> 'type') = 'string' then
    select t into v_type from jsonb_array_elements(p_rules #> '{steps,types}') t where t ->> 'name' = p_step ->> 'type';
  end if;
  if v_type is null then
    return array[v_path || '.type: must be one of '
      || (select string_agg(t ->> 'name', ', ' order by n) from jsonb_array_elements(p_rules #> '{steps,types}') with ordinality x(t, n))];
  end if;
  v_out := public.automation_workflow_object_problems(v_path, v_type -> 'fields', p_step, '{type}');
  if v_type ? 'total_minutes' and cardinality(v_out) = 0 then
    -- every unit field present is a whole number in its range here
    select coalesce(sum((p_step ->> (f ->> 'key'))::bigint * (f ->> 'unit_minutes')::bigint), 0) into v_total
    from jsonb_array_elements(v_type -> 'fields') f
    where f ? 'unit_minutes' and p_step ? (f ->> 'key');
    if v_total not between (v_type #>> '{total_minutes,min}')::bigint and (v_type #>> '{total_minutes,max}')::bigint then
      v_out := v_out || (v_path || ': ' || (v_type #>> '{total_minutes,message}'));
    end if;
  end if;
  return v_out;
end
$$;
comment on function public.automation_workflow_step_problems(integer, jsonb, jsonb) is
  'Problems of step p_index of a workflow: not an object, unknown type, its fields (rule order, then unknown keys), a delay outside its total bounds. Never raises.';

create or replace function public.automation_workflow_problems(
  p_trigger_type text, p_trigger_config jsonb, p_steps jsonb)
returns text[] language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_rules jsonb := public.automation_workflow_rules();
  v_trigger jsonb;
  v_out text[] := '{}';
begin
  select t into v_trigger from jsonb_array_elements(v_rules -> 'trigger_types') t where t ->> 'name' = p_trigger_type;
  if v_trigger is null then
    v_out := v_out || ('trigger_type: must be one of '
      || (select string_agg(t ->> 'name', ', ' order by n) from jsonb_array_elements(v_rules -> 'trigger_types') with ordinality x(t, n)));
  end if;

  if p_trigger_config is null or jsonb_typeof(p_trigger_config) is distinct from 'object' then
    v_out := v_out || 'trigger_config: must be an object'::text;
  elsif v_trigger is not null then
    v_out := v_out || public.automation_workflow_object_problems('trigger_config', v_trigger -> 'config', p_trigger_config, '{}');
  end if;

  if p_steps is null or jsonb_typeof(p_steps) is distinct from 'array' then
    return v_out || 'steps: must be a list'::text;
  end if;
  if jsonb_array_length(p_steps) > (v_rules #>> '{steps,max_steps}')::integer then
    v_out := v_out || format('steps: at most %s steps', v_rules #>> '{steps,max_steps}');
  end if;
  return v_out || coalesce((
    select array_agg(p.msg order by s.n, p.m)
    from jsonb_array_elements(p_steps) with ordinality s(step, n)
    cross join lateral unnest(public.automation_workflow_step_problems((s.n - 1)::integer, s.step, v_rules))
      with ordinality p(msg, m)), '{}');
end
$$;
comment on function public.automation_workflow_problems(text, jsonb, jsonb) is
  'The problems of a workflow against automation_workflow_rules(), in rule order: trigger_type, trigger_config (known keys in rule order, then unknown keys), steps (count, then each step). ''{}'' when valid. Never raises, whatever the input (NULLs, wrong JSON types, huge numbers). shared/workflow.Validate gives the same list.';

-- problems: NULL = never validated (rows written with the trigger disabled);
-- '{}' = valid. The checks skip workflows whose problems are not empty.
alter table public.automation_workflows add column if not exists problems text[];
comment on column public.automation_workflows.problems is
  'The workflow''s problems against automation_workflow_rules() when it was last written: ''{}'' = valid, NULL = never validated (written before validation or with automation_workflows_validate disabled).';

-- The validation trigger automation_workflows_validate (the stored spec and
-- problems, refuse or mark mode) and the back-fill of existing rows: moved to
-- 20261202000800_workflow_spec_wiring.sql.

revoke all on function public.automation_workflow_rules(),
  public.automation_workflow_display(text),
  public.automation_workflow_is_int(jsonb, bigint, bigint),
  public.automation_workflow_template_problems(text, text, jsonb),
  public.automation_workflow_field_problems(text, jsonb, jsonb),
  public.automation_workflow_object_problems(text, jsonb, jsonb, text[]),
  public.automation_workflow_step_problems(integer, jsonb, jsonb),
  public.automation_workflow_problems(text, jsonb, jsonb)
  from public, anon, authenticated;
-- service_role calls automation_workflow_problems (security invoker), which
-- calls the helpers
grant execute on function public.automation_workflow_rules(),
  public.automation_workflow_display(text),
  public.automation_workflow_is_int(jsonb, bigint, bigint),
  public.automation_workflow_template_problems(text, text, jsonb),
  public.automation_workflow_field_problems(text, jsonb, jsonb),
  public.automation_workflow_object_problems(text, jsonb, jsonb, text[]),
  public.automation_workflow_step_problems(integer, jsonb, jsonb),
  public.automation_workflow_problems(text, jsonb, jsonb)
  to service_role;
