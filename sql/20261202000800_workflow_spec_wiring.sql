-- dueflow runs what automation_workflow_spec(row) says (issue 9, item 3).
--
-- On an install upgraded from the replaced system its app keeps writing
-- automation_workflows in its own shapes (builder steps, {{client.firstName}},
-- {"daysOverdue": 3}, schedule_time, ...). dueflow never rewrites such a row:
--
-- * automation_workflows.spec stores what dueflow runs for the row
--   (automation_workflow_spec(row): trigger_type, trigger_config, steps in
--   dueflow's shape, active, runnable, reason), and problems '{}' when it is
--   runnable, else why not. Both are written by the validation trigger
--   automation_workflows_validate from the row itself (a value written into
--   them is recomputed), on every write of a column the spec reads; a change
--   of is_active (status, enabled) only refreshes spec.active and never
--   validates. spec or problems NULL = never computed (written before this
--   migration or with the trigger disabled): the checks and the claim
--   compute the spec on the fly, and the checks store it.
-- * automation_settings.workflow_validation: 'refuse' (the default of a
--   fresh install) refuses a row dueflow cannot run (23514 naming its
--   problems, as before); 'mark' (the default of an install upgraded from the
--   replaced system, whose app must keep working) stores it with its
--   problems, and the checks skip it visibly (automation_check_problems,
--   invalid_config). In both modes a row in the app's shape that converts to
--   a runnable spec is accepted and runs.
-- * The checks select workflows by the spec (its trigger type, active,
--   runnable; index automation_workflows_spec_run_idx) and read its
--   trigger_config; the claim document's workflow is the spec (the functions
--   only ever see dueflow's shape); the dispatcher reads the spec's
--   trigger_config and fails the due executions of a workflow that can no
--   longer run (invalid_workflow) instead of ringing for them.
--
-- Moved here when they changed: automation_workflows_validate and the
-- back-fill (from 20261202000100_workflow_rules.sql), automation_check_workflows
-- and automation_run_check (from 20261202000200_check_isolation.sql), the five
-- check bodies, automation_claim_rows and process_pending_automations (from
-- 20261202000600_text_ids.sql). Idempotent; re-running changes nothing.

-- The validation mode ---------------------------------------------------------

create table if not exists public.automation_settings (
  id boolean primary key default true check (id),
  workflow_validation text not null default 'refuse' check (workflow_validation in ('refuse', 'mark'))
);
comment on table public.automation_settings is
  'dueflow''s settings, one row. workflow_validation: refuse (a workflow dueflow cannot run is refused, 23514) or mark (it is stored with its problems and skipped by the checks; installs upgraded from the replaced system, whose app must never be refused). Operators change it with update automation_settings set workflow_validation = ...';
comment on column public.automation_settings.workflow_validation is
  'refuse: inserts and updates of a workflow dueflow cannot run are refused (23514, every problem named). mark: they are stored, problems recorded, and the checks skip the workflow (automation_check_problems, invalid_config).';
alter table public.automation_settings enable row level security;
revoke all on public.automation_settings from public, anon, authenticated;
grant all on public.automation_settings to service_role;

-- The first run decides: an install whose automation_workflows has the
-- replaced system's builder columns is upgraded in place (mark); any other
-- is refuse. An operator's later choice is kept by every re-run.
do $migration$
declare
  v_mode text;
begin
  if not exists (select 1 from public.automation_settings) then
    v_mode := case when exists (
      select 1 from pg_attribute a
      where a.attrelid = 'public.automation_workflows'::regclass and a.attnum > 0 and not a.attisdropped
        and a.attname in ('status', 'enabled', 'template_config', 'trigger_conditions', 'action_type'))
      then 'mark' else 'refuse' end;
    insert into public.automation_settings (workflow_validation) values (v_mode);
    raise notice 'dueflow: workflow validation mode is % (automation_settings.workflow_validation)', v_mode;
  end if;
end
$migration$;

create or replace function public.automation_workflow_validation() returns text
language sql stable as $$
  select coalesce((select s.workflow_validation from public.automation_settings s where s.id), 'refuse')
$$;
comment on function public.automation_workflow_validation() is
  'The workflow validation mode (automation_settings.workflow_validation): refuse or mark; refuse when unset.';

-- The stored spec -------------------------------------------------------------

alter table public.automation_workflows add column if not exists spec jsonb;
comment on column public.automation_workflows.spec is
  'What dueflow runs for the row: automation_workflow_spec(row) ({"runnable", "reason", "trigger_type", "trigger_config", "steps", "active"}), written with problems by the trigger automation_workflows_validate. NULL (or problems NULL) = never computed: the checks and the claim compute it on the fly.';
comment on column public.automation_workflows.problems is
  'Why dueflow cannot run the workflow: ''{}'' when its spec is runnable; else the rules'' problems (a row in dueflow''s shape, the same list as shared/workflow.Validate) or the spec''s reasons (a row in the app''s shape). NULL = never validated (written before validation or with automation_workflows_validate disabled).';
-- the trigger types dueflow does not run are stored (mark mode) and refused
-- by the validation trigger (refuse mode), not by a constraint
alter table public.automation_workflows drop constraint if exists automation_workflows_trigger_type_check;

-- the checks: active runnable workflows of one trigger type
-- (the checks select workflows by spec: the raw trigger_type index goes;
-- every index costs each counter update of a workflow)
drop index if exists public.automation_workflows_active_idx;
create index if not exists automation_workflows_spec_run_idx
  on public.automation_workflows ((spec ->> 'trigger_type'), organization_id)
  where spec @> '{"active": true, "runnable": true}';
-- the few rows judged on the fly or skipped: never validated, or not runnable
create index if not exists automation_workflows_spec_unready_idx
  on public.automation_workflows (organization_id)
  where spec is null or problems is null or not spec @> '{"runnable": true}';

create or replace function public.automation_workflow_judged(
  p_workflow public.automation_workflows, out spec jsonb, out problems text[])
language plpgsql immutable parallel safe set search_path = public, pg_temp as $$
declare
  v_rules text[];
begin
  spec := public.automation_workflow_spec(p_workflow);
  -- A row in dueflow's own shape (its trigger type and steps come through the
  -- conversion unchanged, its trigger_config is an object with none of the
  -- app's keys and nothing converted in it) is judged by the rules as
  -- written, as before the spec: there an unknown key is a typo (issue 8),
  -- not a builder UI key to drop, and the list is Go's workflow.Validate's.
  if (spec ->> 'trigger_type') is not distinct from p_workflow.trigger_type
     and nullif(spec -> 'steps', 'null') is not distinct from p_workflow.steps
     and jsonb_typeof(p_workflow.trigger_config) = 'object'
     and not p_workflow.trigger_config ?| array['triggerType', 'conditions', 'seasonal', 'days_overdue', 'daysOverdue',
                                                'months_after_last_service']
     and p_workflow.trigger_config @> coalesce(nullif(spec -> 'trigger_config', 'null'), '{}') then
    problems := public.automation_workflow_problems(p_workflow.trigger_type, p_workflow.trigger_config, p_workflow.steps);
    if cardinality(problems) > 0 then
      spec := spec || jsonb_build_object('runnable', false, 'reason', array_to_string(problems, '; '));
    end if;
    return;
  end if;
  if coalesce(spec -> 'runnable' = 'true'::jsonb, false) then
    problems := '{}';
    return;
  end if;
  -- the app's shape: the spec's reasons; the rules' list itself (no '; '
  -- split) when the reason is the converted workflow's rule problems
  v_rules := public.automation_workflow_problems(spec ->> 'trigger_type',
    nullif(spec -> 'trigger_config', 'null'), nullif(spec -> 'steps', 'null'));
  if cardinality(v_rules) > 0 and array_to_string(v_rules, '; ') = spec ->> 'reason' then
    problems := v_rules;
  else
    -- conversion reasons name paths and names only, never '; '
    problems := coalesce(string_to_array(spec ->> 'reason', '; '), array['the workflow cannot run']);
  end if;
end
$$;
comment on function public.automation_workflow_judged(public.automation_workflows) is
  'What dueflow stores for a workflow row: spec = automation_workflow_spec(row), except that a row in dueflow''s own shape (trigger type and steps unchanged by the conversion, a trigger_config object without the app''s keys and nothing converted) that breaks automation_workflow_rules() is not runnable, its reason the rules'' problems (an unknown key there is a typo, not a UI key); problems = ''{}'' when runnable, else the rules'' problems (dueflow''s shape: the same list as shared/workflow.Validate) or the spec''s reasons, one per element. Never raises.';

create or replace function public.automation_workflow_current_spec(p_workflow public.automation_workflows) returns jsonb
language sql immutable parallel safe as $$
  select case when p_workflow.spec is null or p_workflow.problems is null
              then (public.automation_workflow_judged(p_workflow)).spec else p_workflow.spec end
$$;
comment on function public.automation_workflow_current_spec(public.automation_workflows) is
  'The spec dueflow runs for a workflow row: the stored one, or automation_workflow_judged(row) computed now when the row was never validated (spec or problems NULL).';

-- Inlined into the checks (SQL, stable, no SET): the partial indexes serve it.
create or replace function public.automation_runnable_workflows(p_type text)
returns table (id uuid, organization_id uuid, max_attempts integer, trigger_config jsonb)
language sql stable as $$
  select w.id, w.organization_id, w.max_attempts, w.spec -> 'trigger_config'
  from public.automation_workflows w
  where w.spec @> '{"active": true, "runnable": true}' and w.spec ->> 'trigger_type' = p_type
    and w.problems is not null
  union all
  select w.id, w.organization_id, w.max_attempts, s.spec -> 'trigger_config'
  from public.automation_workflows w
  cross join lateral public.automation_workflow_judged(w) s
  where (w.spec is null or w.problems is null)
    and s.spec @> '{"active": true, "runnable": true}' and s.spec ->> 'trigger_type' = p_type
$$;
comment on function public.automation_runnable_workflows(text) is
  'The workflows the checks of trigger type p_type run: active and runnable by their spec (stored, index automation_workflows_spec_run_idx; or computed on the fly for rows never validated), with the spec''s trigger_config.';

create or replace function public.automation_workflows_unready()
returns table (id uuid, organization_id uuid, spec jsonb, problems text[], validated boolean)
language sql stable as $$
  select w.id, w.organization_id, w.spec, w.problems, true
  from public.automation_workflows w
  where w.spec is not null and w.problems is not null and not w.spec @> '{"runnable": true}'
  union all
  select w.id, w.organization_id, s.spec, s.problems, false
  from public.automation_workflows w
  cross join lateral public.automation_workflow_judged(w) s
  where w.spec is null or w.problems is null
$$;
comment on function public.automation_workflows_unready() is
  'Workflows never validated (spec or problems NULL: judged now) or whose stored spec is not runnable, with their spec, problems and whether they were stored (validated). Few rows (index automation_workflows_spec_unready_idx).';

create or replace function public.automation_check_covers(p_type text, p_spec_type text) returns boolean
language sql immutable parallel safe as $$
  -- the scheduled check (check_automation_triggers, every minute) also
  -- reports the workflows of trigger types no check runs (event triggers)
  select p_spec_type is not distinct from p_type
      or (p_type = 'scheduled' and not exists (
            select 1 from jsonb_array_elements(public.automation_workflow_rules() -> 'trigger_types') t
            where t ->> 'name' = p_spec_type))
$$;
comment on function public.automation_check_covers(text, text) is
  'True when the check of trigger type p_type reports a workflow whose spec has trigger type p_spec_type: its own type; the scheduled check also every type no check runs (event triggers, none).';

-- Validation ------------------------------------------------------------------

create or replace function public.automation_workflows_validate() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  select j.spec, j.problems into new.spec, new.problems from public.automation_workflow_judged(new) j;
  if cardinality(new.problems) > 0 and public.automation_workflow_validation() = 'refuse' then
    raise exception using
      errcode = 'check_violation',
      message = 'automation_workflows: invalid workflow: ' || array_to_string(new.problems, '; '),
      hint = 'select automation_workflow_rules() returns the rules a workflow must follow';
  end if;
  return new;
end
$$;
comment on function public.automation_workflows_validate() is
  'Trigger: stores spec and problems of the written row (automation_workflow_judged); in refuse mode (automation_settings) refuses a workflow dueflow cannot run (23514, every problem named); in mark mode stores it.';

create or replace function public.automation_workflows_spec_active() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  -- switching a workflow on or off is not an edit: never validated, never
  -- refused; only the stored spec's active flag follows
  if new.spec is not null then
    new.spec := jsonb_set(new.spec, '{active}', coalesce(public.automation_workflow_spec(new) -> 'active', 'false'));
  end if;
  return new;
end
$$;
comment on function public.automation_workflows_spec_active() is
  'Trigger on is_active (status, enabled): the stored spec''s active flag follows the row; nothing is validated or refused.';

-- Back-fill before the triggers exist: every row gets its spec and problems,
-- recorded, not refused (updated_at kept); a re-run changes nothing.
drop trigger if exists automation_workflows_validate on public.automation_workflows;
drop trigger if exists automation_workflows_spec_active on public.automation_workflows;
select set_config('dueflow.keep_updated_at', 'on', true);
update public.automation_workflows w set spec = x.spec, problems = x.problems
from (
  select w2.id, j.spec, j.problems
  from public.automation_workflows w2
  cross join lateral public.automation_workflow_judged(w2) j
) x
where w.id = x.id and (w.spec is distinct from x.spec or w.problems is distinct from x.problems);
select set_config('dueflow.keep_updated_at', '', true);

-- Fired by a write of any column the spec reads (those this install has:
-- the replaced system's trigger_conditions, template_config, action_type,
-- action_config, status and enabled exist only where it ran; re-run this
-- migration after adding one).
do $migration$
declare
  v_content text;
  v_flags text;
begin
  select string_agg(format('%I', a.attname), ', ' order by a.attnum) filter (where a.attname not in ('is_active', 'status', 'enabled')),
         string_agg(format('%I', a.attname), ', ' order by a.attnum) filter (where a.attname in ('is_active', 'status', 'enabled'))
    into v_content, v_flags
  from pg_attribute a
  where a.attrelid = 'public.automation_workflows'::regclass and a.attnum > 0 and not a.attisdropped
    and a.attname in ('trigger_type', 'trigger_config', 'trigger_conditions', 'steps', 'template_config',
                      'action_type', 'action_config', 'problems', 'spec', 'is_active', 'status', 'enabled');
  execute format('create trigger automation_workflows_validate before insert or update of %s on public.automation_workflows
    for each row execute function public.automation_workflows_validate()', v_content);
  execute format('create trigger automation_workflows_spec_active before update of %s on public.automation_workflows
    for each row execute function public.automation_workflows_spec_active()', v_flags);
end
$migration$;

-- The checks ------------------------------------------------------------------

-- Stores the spec of workflows never validated (written before the rules or
-- with the validation trigger disabled), then records the workflows and
-- organisations the check skips, and forgets those it no longer skips.
create or replace function public.automation_check_workflows(
  p_check text, p_type text, p_only uuid, p_except uuid[])
returns void language plpgsql set search_path = public, pg_temp as $$
declare
  v_keep text := coalesce(current_setting('dueflow.keep_updated_at', true), '');
  v_mark boolean := public.automation_workflow_validation() = 'mark';
begin
  -- runnable ones get their spec and problems stored (bookkeeping, not an
  -- edit: updated_at kept; the validation trigger writes the same values);
  -- in refuse mode one dueflow cannot run stays unstored, since the trigger
  -- refuses it, and is judged again by each run (few rows)
  perform set_config('dueflow.keep_updated_at', 'on', true);
  update public.automation_workflows w
  set spec = (public.automation_workflow_judged(w)).spec, problems = (public.automation_workflow_judged(w)).problems
  where w.id in (
    select w2.id from public.automation_workflows w2
    where w2.id in (select u.id from public.automation_workflows_unready() u
                    where not u.validated
                      and coalesce(u.spec -> 'active' = 'true'::jsonb, false)
                      and public.automation_check_covers(p_type, u.spec ->> 'trigger_type')
                      and (v_mark or coalesce(u.spec -> 'runnable' = 'true'::jsonb, false))
                      and (p_only is null or u.organization_id = p_only)
                      and not (u.organization_id = any (p_except)))
    order by w2.id for no key update);
  perform set_config('dueflow.keep_updated_at', v_keep, true);

  with skipped as (
    -- active workflows dueflow cannot run: of this type, and (scheduled
    -- check) of the types no check runs
    select u.id, u.organization_id, u.spec ->> 'trigger_type' as spec_type, u.problems
    from public.automation_workflows_unready() u
    where coalesce(u.spec -> 'active' = 'true'::jsonb, false)
      and not coalesce(u.spec -> 'runnable' = 'true'::jsonb, false)
      and public.automation_check_covers(p_type, u.spec ->> 'trigger_type')
      and (p_only is null or u.organization_id = p_only)
      and not (u.organization_id = any (p_except))
  ), orgs as (
    select r.organization_id from public.automation_runnable_workflows(p_type) r
    where (p_only is null or r.organization_id = p_only) and not (r.organization_id = any (p_except))
    union
    select s.organization_id from skipped s where s.spec_type is not distinct from p_type
  ), found as (
    select s.organization_id, s.id as workflow_id, 'invalid_config'::text as code,
           case when s.spec_type is not distinct from p_type then p_type
                else coalesce(public.automation_workflow_spec_name(s.spec_type), 'none') end as trigger_type,
           array_to_string(array(select public.automation_mask_problem(p) from unnest(s.problems) p), '; ') as message
    from skipped s
    union all
    select o.id, null::uuid,
           case when o.timezone is null then 'timezone_defaulted' else 'invalid_timezone' end,
           p_type,
           case when o.timezone is null then 'the organisation has no time zone: its local times are computed in UTC'
                else 'the organisation''s time zone is not a known IANA name: its workflows are skipped' end
    from public.automation_src_organizations o
    left join public.automation_timezones tz on tz.name = o.timezone
    where o.id in (select g.organization_id from orgs g)
      and tz.name is null
      and (o.timezone is null or public.automation_effective_timezone(o.timezone) is null)
  ), noted as (
    insert into public.automation_check_problems as p
      (check_name, trigger_type, organization_id, workflow_id, code, message)
    select p_check, f.trigger_type, f.organization_id, f.workflow_id, f.code, left(f.message, 500)
    from found f
    order by f.organization_id, f.workflow_id, f.code
    on conflict on constraint automation_check_problems_key do update set
      message = excluded.message, last_seen_at = now(), count = p.count + 1
    returning 1
  )
  delete from public.automation_check_problems p
  where p.check_name = p_check
    and (p.trigger_type = p_type
         or (p.code = 'invalid_config' and p_type = 'scheduled'
             and public.automation_check_covers(p_type, p.trigger_type) and p.trigger_type <> p_type))
    and p.code in ('invalid_config', 'invalid_timezone', 'timezone_defaulted')
    and (p_only is null or p.organization_id = p_only)
    and not (p.organization_id = any (p_except))
    and not exists (select 1 from found f
                    where f.organization_id is not distinct from p.organization_id
                      and f.workflow_id is not distinct from p.workflow_id and f.code = p.code
                      and f.trigger_type = p.trigger_type);
end
$$;
comment on function public.automation_check_workflows(text, text, uuid, uuid[]) is
  'Check bookkeeping for trigger type p_type (organisation p_only or all, except p_except): stores spec and problems of active workflows never validated (a runnable one; in mark mode any: refuse mode refuses storing one dueflow cannot run, which is judged again by each run), records in automation_check_problems the active workflows skipped because dueflow cannot run them (invalid_config, the masked problems; the scheduled check also those of trigger types no check runs, under their type) and the organisations whose zone is unusable (invalid_timezone) or NULL (timezone_defaulted), and deletes those records no longer true.';

-- The safety net: set-based for every organisation at once; when that raises,
-- per organisation, each in its own subtransaction.
create or replace function public.automation_run_check(p_check text, p_type text, p_now timestamptz)
returns integer language plpgsql set search_path = public, pg_temp as $$
declare
  v_count integer := 0;
  v_quarantined uuid[];
  v_orgs uuid[];
  v_org uuid;
  v_state text;
  v_msg text;
begin
  -- organisations that failed on their own before: run apart until they succeed
  select coalesce(array_agg(distinct p.organization_id), '{}') into v_quarantined
  from public.automation_check_problems p
  where p.check_name = p_check and p.trigger_type = p_type and p.code = 'check_error' and p.organization_id is not null;

  begin
    v_count := public.automation_run_check_body(p_check, p_type, p_now, null, v_quarantined);
    delete from public.automation_check_problems p
    where p.check_name = p_check and p.trigger_type = p_type and p.code = 'check_error' and p.organization_id is null;
    v_orgs := v_quarantined;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    v_msg := public.automation_mask_error(v_msg);
    raise warning 'dueflow: % (%) failed for all organisations at once (SQLSTATE %: %); running it per organisation',
      p_check, p_type, v_state, v_msg;
    perform public.automation_note_check_problem(p_check, p_type, null, null, 'check_error',
      format('the run for all organisations at once failed (SQLSTATE %s: %s); it ran per organisation', v_state, v_msg));
    select coalesce(array_agg(distinct x.organization_id order by x.organization_id), '{}') into v_orgs
    from (select r.organization_id from public.automation_runnable_workflows(p_type) r
          union
          select u.organization_id from public.automation_workflows_unready() u
          where coalesce(u.spec -> 'active' = 'true'::jsonb, false)
            and public.automation_check_covers(p_type, u.spec ->> 'trigger_type')) x;
    v_orgs := v_orgs || array(select q from unnest(v_quarantined) q where not (q = any (v_orgs)));
  end;

  foreach v_org in array v_orgs loop
    begin
      v_count := v_count + public.automation_run_check_body(p_check, p_type, p_now, v_org, '{}');
      delete from public.automation_check_problems p
      where p.check_name = p_check and p.trigger_type = p_type and p.code = 'check_error' and p.organization_id = v_org;
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
      v_msg := public.automation_mask_error(v_msg);
      raise warning 'dueflow: % (%) failed for organisation % (SQLSTATE %: %); it is skipped in this run',
        p_check, p_type, v_org, v_state, v_msg;
      perform public.automation_note_check_problem(p_check, p_type, v_org, null, 'check_error',
        format('SQLSTATE %s: %s', v_state, v_msg));
    end;
  end loop;
  return v_count;
end
$$;
comment on function public.automation_run_check(text, text, timestamptz) is
  'Runs the check of trigger type p_type (named p_check) at p_now for every organisation at once (set-based), leaving out those that failed alone before; when that raises, records check_error and re-runs it per organisation. Organisations left out, and all of them after a failure (every organisation with an active workflow the check covers, by its spec), run one at a time, each in its own subtransaction: one that fails is recorded (check_error, masked message) and skipped, the others get their executions. Never raises for a data error. Returns the number of executions created.';

-- The checks' bodies (run by automation_run_check_body,
-- 20261202000200_check_isolation.sql): the workflows are
-- automation_runnable_workflows(type), their trigger_config the spec's.

-- invoice_overdue: reminders on days N after the due date (organisation-local).
create or replace function public.automation_check_invoices_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  -- invoices changed up to this long before the last run are looked at again
  -- (a transaction that began before the last run and committed after it)
  c_slack constant interval := interval '10 minutes';
  v_count integer;
  v_touched uuid[];
begin
  with wf as (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config,
           public.automation_days_config(w.trigger_config, 'days_after_due', '{1,7,14,30}') as days,
           o.timezone, o.send_window_start, o.send_window_end,
           (p_now at time zone o.timezone)::date as today,
           st.checked_at,
           (st.checked_at at time zone o.timezone)::date as last_day,
           -- full scan: new workflow, changed configuration or time zone, and the
           -- first run of each organisation-local day (catches invoices that
           -- appeared with an old updated_at, e.g. imports, which neither the
           -- reminder-day nor the updated_at branch would see)
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone
            or (p_now at time zone o.timezone)::date > (st.checked_at at time zone o.timezone)::date) as full_scan
    from public.automation_runnable_workflows('invoice_overdue') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), cand_inv as (
    -- (the "offset 0" fences keep each branch a per-organisation index range scan)
    -- first run (or changed configuration): every open invoice past the first reminder day
    select wf.id as wf_id, i.id, i.client_id, i.number, i.due_date
    from wf
    cross join lateral (
      select i.id::text as id, i.client_id::text as client_id, i.number, i.due_date from public.automation_src_invoices i
      where i.organization_id = wf.organization_id
        and i.status in ('sent', 'overdue') and i.balance > 0
        and i.due_date <= wf.today - wf.days[1]
      offset 0
    ) i
    where wf.full_scan
    union
    -- reminder days reached since the last run
    select wf.id, i.id, i.client_id, i.number, i.due_date
    from wf
    cross join lateral unnest(wf.days) d
    cross join lateral (
      select i.id::text as id, i.client_id::text as client_id, i.number, i.due_date from public.automation_src_invoices i
      where i.organization_id = wf.organization_id
        and i.status in ('sent', 'overdue') and i.balance > 0
        and i.due_date > wf.last_day - d and i.due_date <= wf.today - d
      offset 0
    ) i
    where not wf.full_scan and wf.today > wf.last_day
    union
    -- invoices created or changed since the last run (reopened, due date moved, imported)
    select wf.id, i.id, i.client_id, i.number, i.due_date
    from (
      select i.id::text as id, i.organization_id, i.client_id::text as client_id, i.number, i.due_date, i.updated_at
      from public.automation_src_invoices i
      where i.status in ('sent', 'overdue') and i.balance > 0
        and i.updated_at > (select min(checked_at) from wf where not full_scan) - c_slack
        and (p_only is null or i.organization_id = p_only)
        and not (i.organization_id = any (p_except))
      offset 0
    ) i
    join wf on wf.organization_id = i.organization_id and not wf.full_scan
    where i.updated_at > wf.checked_at - c_slack
      and i.due_date <= wf.today - wf.days[1]
  ), cand as (
    select wf.*, ci.id as invoice_id, ci.client_id, ci.number, ci.due_date,
           wf.today - ci.due_date as days_overdue, r.reminder_day, r.next_day
    from cand_inv ci
    join wf on wf.id = ci.wf_id
    cross join lateral (
      select max(d) filter (where d <= wf.today - ci.due_date) as reminder_day,
             min(d) filter (where d > wf.today - ci.due_date) as next_day
      from unnest(wf.days) d
    ) r
    -- a view row without the values a reminder needs (an id, a client) is left out
    where coalesce(ci.id, '') <> '' and coalesce(ci.client_id, '') <> ''
  ), rows as (
    select c.*,
           format('invoice:%s:%s:d%s', c.invoice_id, c.due_date, c.reminder_day) as okey,
           -- superseded once the next reminder's day is over; the last one gets a week
           case when c.next_day is not null
                then ((c.due_date + c.next_day + 1)::timestamp at time zone c.timezone)
                else p_now + interval '7 days' end as deadline
    from cand c
    where c.reminder_day is not null
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select r.id, r.organization_id, 'invoice-reminder', 'invoice_overdue', r.okey, 'invoice',
           r.invoice_id, r.client_id, r.max_attempts,
           public.automation_next_attempt(p_now, r.timezone, r.send_window_start, r.send_window_end, r.deadline),
           r.deadline,
           jsonb_build_object('invoice_number', r.number, 'due_date', r.due_date,
                              'days_overdue', r.days_overdue, 'reminder_day', r.reminder_day)
    from rows r
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id, subject_id, occurrence_key
  ), superseded as (
    -- reminders of one invoice piled up (an outage, no endpoint yet): the
    -- newest replaces the older still-pending ones, so one message goes out
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'superseded',
      error_message = 'a newer reminder of this workflow for the same invoice replaced it', completed_at = now()
    from ins
    where e.workflow_id = ins.workflow_id and e.subject_id = ins.subject_id and e.status = 'pending'
      and e.trigger_type = 'invoice_overdue' and e.occurrence_key <> ins.occurrence_key
    returning 1
  ), state as (
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    on conflict (workflow_id) do update set
      checked_at = greatest(s.checked_at, excluded.checked_at),
      trigger_config = excluded.trigger_config, timezone = excluded.timezone, updated_at = now()
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_invoices_run(timestamptz, uuid, uuid[]) is
  'Body of check_overdue_invoices for organisation p_only (NULL: all) except p_except: one execution per (invoice, due date, latest reminder day reached) of valid active invoice_overdue workflows of organisations with a usable zone; a newer reminder skips the older pending ones of the same workflow and invoice (superseded). Steady state reads only invoices that reached a reminder day or changed since the last run (automation_check_state). Returns the number created.';

-- maintenance_due: months since the client's last completed service.
create or replace function public.automation_check_maintenance_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  with wf as (
    select w.id, w.organization_id, w.max_attempts,
           greatest(public.automation_config_int(w.trigger_config, 'months_after_service', 6), 1) as months,
           nullif(w.trigger_config ->> 'job_type', '') as job_type,
           o.timezone, o.send_window_start, o.send_window_end
    from public.automation_runnable_workflows('maintenance_due') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), last_service as (
    select wf.*, j.id as job_id, j.client_id, j.completed_at
    from wf
    cross join lateral (
      select distinct on (j.client_id::text) j.id::text as id, j.client_id::text as client_id, j.completed_at
      from public.automation_src_jobs j
      where j.organization_id = wf.organization_id
        and j.status = 'completed' and j.completed_at is not null
        -- a view row without an id or a client is left out
        and coalesce(j.client_id::text, '') <> '' and coalesce(j.id::text, '') <> ''
        and (wf.job_type is null or j.job_type = wf.job_type)
      order by j.client_id::text, j.completed_at desc
    ) j
    where j.completed_at + make_interval(months => wf.months) <= p_now
      -- nothing to remind when the next visit is already booked
      and not exists (select 1 from public.automation_src_jobs u
                      where u.organization_id = wf.organization_id and u.client_id::text = j.client_id
                        and u.status in ('scheduled', 'in_progress'))
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select s.id, s.organization_id, 'send-reminder', 'maintenance_due',
           format('maintenance:%s:%s', s.client_id, s.job_id), 'job', s.job_id, s.client_id, s.max_attempts,
           public.automation_next_attempt(p_now, s.timezone, s.send_window_start, s.send_window_end, p_now + interval '30 days'),
           p_now + interval '30 days',
           jsonb_build_object('last_service_at', s.completed_at, 'months_after_service', s.months)
    from last_service s
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id, client_id, occurrence_key
  ), superseded as (
    -- a newer last service for the client replaces the older still-open reminder
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'superseded',
      error_message = 'a newer occurrence of this workflow for the same client replaced it', completed_at = now()
    from ins
    where e.workflow_id = ins.workflow_id and e.client_id = ins.client_id and e.status = 'pending'
      and e.trigger_type = 'maintenance_due' and e.occurrence_key <> ins.occurrence_key
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_maintenance_run(timestamptz, uuid, uuid[]) is
  'Body of the maintenance_due part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per client and last completed service job once months_after_service have passed and no visit is booked; a new one skips the older pending ones of the same workflow and client (superseded). Returns the number created.';

-- appointment: N hours before a scheduled job, never after its start.
create or replace function public.automation_check_appointments_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  with wf as (
    select w.id, w.organization_id, w.max_attempts,
           greatest(public.automation_config_int(w.trigger_config, 'hours_before', 24), 0) as hours_before,
           o.timezone, o.send_window_start, o.send_window_end
    from public.automation_runnable_workflows('appointment') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select wf.id, wf.organization_id, 'send-reminder', 'appointment',
           format('appointment:%s:%s', j.id::text, extract(epoch from j.scheduled_start)::bigint), 'job', j.id::text,
           j.client_id::text, wf.max_attempts,
           public.automation_next_attempt(p_now, wf.timezone, wf.send_window_start, wf.send_window_end, j.scheduled_start),
           j.scheduled_start,
           jsonb_build_object('scheduled_start', j.scheduled_start, 'hours_before', wf.hours_before)
    from wf
    join public.automation_src_jobs j
      on j.organization_id = wf.organization_id
     and j.status = 'scheduled'
     and j.scheduled_start > p_now
     and j.scheduled_start <= p_now + make_interval(hours => wf.hours_before)
     -- a view row without the values a reminder needs (an id, a client) is left out
     and coalesce(j.id::text, '') <> '' and coalesce(j.client_id::text, '') <> ''
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id, subject_id, occurrence_key
  ), superseded as (
    -- a rescheduled job: its reminder for the old start must not go out too
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'superseded',
      error_message = 'the job was rescheduled; a newer occurrence replaced this reminder', completed_at = now()
    from ins
    where e.workflow_id = ins.workflow_id and e.subject_id = ins.subject_id and e.status = 'pending'
      and e.trigger_type = 'appointment' and e.occurrence_key <> ins.occurrence_key
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_appointments_run(timestamptz, uuid, uuid[]) is
  'Body of the appointment part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per job and scheduled start, hours_before ahead, deadline = the start; a new one skips the older pending ones of the same workflow and job (superseded). Returns the number created.';

-- scheduled: automation_check_scheduled_run moved to
-- 20261202001000_inplace_upgrade.sql when its schedule state became
-- automation_schedule_state.

-- stale_job: open jobs without activity for days_inactive days.
create or replace function public.automation_check_stale_jobs_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  with wf as (
    select w.id, w.organization_id, w.max_attempts,
           greatest(public.automation_config_int(w.trigger_config, 'days_inactive', 7), 0) as days_inactive,
           coalesce((select array_agg(x) from jsonb_array_elements_text(
                       case when jsonb_typeof(w.trigger_config -> 'statuses') = 'array' then w.trigger_config -> 'statuses' end) x),
                    '{scheduled,in_progress}') as statuses,
           o.timezone, o.send_window_start, o.send_window_end
    from public.automation_runnable_workflows('stale_job') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select wf.id, wf.organization_id, 'send-reminder', 'stale_job',
           format('stale:%s:%s', j.id::text, extract(epoch from j.updated_at)::bigint), 'job', j.id::text, j.client_id::text,
           wf.max_attempts,
           public.automation_next_attempt(p_now, wf.timezone, wf.send_window_start, wf.send_window_end, p_now + interval '7 days'),
           p_now + interval '7 days',
           jsonb_build_object('last_activity_at', j.updated_at, 'days_inactive', wf.days_inactive)
    from wf
    join public.automation_src_jobs j
      on j.organization_id = wf.organization_id
     and j.status = any (wf.statuses)
     and j.updated_at <= p_now - make_interval(days => wf.days_inactive)
     -- a view row without the values a reminder needs (an id, a client) is left out
     and coalesce(j.id::text, '') <> '' and coalesce(j.client_id::text, '') <> ''
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id, subject_id, occurrence_key
  ), superseded as (
    -- the job had activity since the older reminder was created
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'superseded',
      error_message = 'a newer occurrence of this workflow and job replaced it', completed_at = now()
    from ins
    where e.workflow_id = ins.workflow_id and e.subject_id = ins.subject_id and e.status = 'pending'
      and e.trigger_type = 'stale_job' and e.occurrence_key <> ins.occurrence_key
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]) is
  'Body of the stale_job part of check_automation_triggers for organisation p_only (NULL: all) except p_except: one execution per job and last activity once days_inactive days have passed; a new one skips the older pending ones of the same workflow and job (superseded). Returns the number created.';
-- The claim and the dispatcher -------------------------------------------------

create or replace function public.automation_claim_rows(
  p_action text, p_ids uuid[], p_limit integer, p_lease_seconds integer)
returns setof jsonb language plpgsql set search_path = public, pg_temp set jit = off as $$
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
    -- the workflow as dueflow runs it (its spec), whatever shape the app wrote;
    -- one the app changed since into a workflow dueflow cannot run (between
    -- the dispatcher's skip and this claim) is handed over inactive: skipped,
    -- never sent on a partly converted spec
    'workflow', jsonb_build_object('id', w.id, 'name', coalesce(w.name, ''), 'trigger_type', ws.spec -> 'trigger_type',
      'trigger_config', ws.spec -> 'trigger_config',
      'is_active', coalesce((ws.spec ->> 'active')::boolean and (ws.spec ->> 'runnable')::boolean, false),
      'steps', ws.spec -> 'steps'),
    'organization', case when o.id is not null then jsonb_build_object('id', o.id, 'name', o.name, 'timezone', o.timezone,
      'country_code', coalesce(o.country_code, ''), 'sender_name', coalesce(o.sender_name, ''),
      'sender_email', coalesce(o.sender_email, ''), 'reply_to_email', coalesce(o.reply_to_email, ''),
      'phone', coalesce(o.phone, ''), 'portal_url', coalesce(o.portal_url, ''),
      'send_window_start', o.send_window_start::text, 'send_window_end', o.send_window_end::text) end,
    'client', case when cl.id is not null then jsonb_build_object('id', cl.id::text, 'first_name', coalesce(cl.first_name, ''),
      'last_name', coalesce(cl.last_name, ''), 'email', coalesce(cl.email, ''),
      'phone', coalesce(cl.phone, ''), 'email_opt_out', coalesce(cl.email_opt_out, false),
      'sms_opt_out', coalesce(cl.sms_opt_out, false)) end,
    'invoice', case when i.id is not null then jsonb_build_object('id', i.id::text, 'number', i.number, 'status', i.status,
      'due_date', to_char(i.due_date, 'YYYY-MM-DD'), 'total', i.total::numeric(14,2)::text,
      'balance', i.balance::numeric(14,2)::text, 'currency', coalesce(i.currency, 'USD'),
      'portal_url', coalesce(i.portal_url, '')) end,
    'job', case when j.id is not null then jsonb_build_object('id', j.id::text, 'title', coalesce(j.title, ''),
      'job_type', coalesce(j.job_type, ''), 'status', j.status, 'scheduled_start', j.scheduled_start,
      'completed_at', j.completed_at, 'address', coalesce(j.address, '')) end,
    'deliveries', coalesce(dl.deliveries, '[]'::jsonb))
  from claimed c
  join public.automation_workflows w on w.id = c.workflow_id and w.organization_id = c.organization_id
  cross join lateral (select public.automation_workflow_current_spec(w) as spec offset 0) ws
  left join public.automation_src_organizations o on o.id = c.organization_id
  left join public.automation_src_clients cl on cl.id::text = c.client_id and cl.organization_id = c.organization_id
  left join public.automation_src_invoices i
    on c.subject_type = 'invoice' and i.id::text = c.subject_id and i.organization_id = c.organization_id
  left join public.automation_src_jobs j
    on c.subject_type = 'job' and j.id::text = c.subject_id and j.organization_id = c.organization_id
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
comment on function public.automation_claim_rows(text, uuid[], integer, integer) is
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution, its workflow as dueflow runs it (the spec: trigger_type, trigger_config, steps, is_active = the spec''s active), every subject, client, invoice and job id as a JSON string (ids read from the source views as text). Raises when a source view cannot deliver a row (automation_claim then claims one by one).';

create or replace function public.process_pending_automations(
  p_redispatch_after interval default interval '2 minutes', p_max_batches integer default 100)
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ok text[] := '{}';
  v_ep record;
  v_batches jsonb;
  v_batch jsonb;
  v_body jsonb;
  v_id text;
  v_ts bigint;
  v_count integer := 0;
  v_skip_ids uuid[];
  v_skip_codes text[];
  v_skip_msgs text[];
  v_state text;
  v_msg text;
begin
  -- 1. expired leases: back to pending (the attempt stays consumed), or
  --    failed when no attempt is left
  update public.automation_execution_logs e set updated_at = now(),
    status = case when e.attempt >= e.max_attempts then 'failed' else 'pending' end,
    error_code = case when e.attempt >= e.max_attempts then 'max_attempts' else 'lease_expired' end,
    error_message = 'lease expired without a report',
    completed_at = case when e.attempt >= e.max_attempts then now() end,
    lease_token = null, lease_expires_at = null, dispatched_at = null,
    next_attempt_at = greatest(e.next_attempt_at, now())
  where e.status = 'running' and e.lease_expires_at < now();

  -- 1b. due executions of a workflow dueflow can no longer run (the app
  --     changed it; its spec is not runnable): failed, never rung (the few
  --     such workflows first, then their pending rows by index)
  update public.automation_execution_logs e set updated_at = now(),
    status = 'failed', error_code = 'invalid_workflow', completed_at = now(),
    error_message = left('the workflow cannot run: '
      || array_to_string(array(select public.automation_mask_problem(p) from unnest(u.problems) p), '; '), 500)
  from public.automation_workflows_unready() u
  where not coalesce(u.spec -> 'runnable' = 'true'::jsonb, false)
    and e.workflow_id = u.id and e.status = 'pending' and e.next_attempt_at <= now();

  -- 2 and 2b read the adopter's source views. They are skips ahead of the
  -- function (which re-checks invoices, appointments and stale jobs at claim
  -- time), so a view that fails on some row must not stop the dispatch of
  -- every tenant: each runs in its own subtransaction; a failure is recorded
  -- (automation_check_problems, dispatch_error) and the dispatch goes on
  -- without that skip.
  begin
    -- 2. invoice reminders whose invoice was settled meanwhile: nothing to do
    --     (the function re-checks at claim time too)
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'invoice_settled',
      error_message = 'invoice paid, cancelled, void or without balance before the reminder ran', completed_at = now()
    from public.automation_src_invoices i
    where e.status = 'pending' and e.subject_type = 'invoice' and e.next_attempt_at <= now()
      and i.id::text = e.subject_id and i.organization_id = e.organization_id
      and (i.status in ('paid', 'cancelled', 'void') or i.balance <= 0);
    perform public.automation_dispatch_step_done('invoice_settled');
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    perform public.automation_dispatch_step_failed('invoice_settled', v_state, v_msg);
  end;

  -- 2b. job reminders whose premise no longer holds (the function re-checks
  --     appointments and stale jobs at claim time; only SQL can see a
  --     client's newer jobs): appointment moved or no longer scheduled;
  --     stale job with activity since or out of its stale statuses;
  --     maintenance after the client's next service was done or booked
  --     (collected first, then updated by primary key: joined directly, a
  --     planner on stale statistics nested-loops the due index per row)
  begin
    select coalesce(array_agg(x.id), '{}'), coalesce(array_agg(x.code), '{}'), coalesce(array_agg(x.msg), '{}')
      into v_skip_ids, v_skip_codes, v_skip_msgs
    from (
      select e2.id,
        case when j.id is null or j.status = 'cancelled' then 'subject_gone' else 'superseded' end as code,
        case
          when j.id is null then 'the job no longer exists'
          when j.status = 'cancelled' then 'the job was cancelled'
          when e2.trigger_type = 'appointment' and j.status <> 'scheduled' then 'the appointment is ' || j.status
          when e2.trigger_type = 'appointment' then 'the job was rescheduled'
          when e2.trigger_type = 'stale_job' then 'the job had activity or left its stale statuses'
          else 'the client had a newer service, or has one booked'
        end as msg
      from public.automation_execution_logs e2
      join public.automation_workflows w0 on w0.id = e2.workflow_id
      -- the trigger_config dueflow runs (the spec's)
      cross join lateral (select public.automation_workflow_current_spec(w0) -> 'trigger_config' as trigger_config offset 0) w
      left join public.automation_src_jobs j on j.id::text = e2.subject_id and j.organization_id = e2.organization_id
      where e2.status = 'pending' and e2.action = 'send-reminder' and e2.next_attempt_at <= now() and e2.subject_type = 'job'
        and e2.trigger_type in ('appointment', 'stale_job', 'maintenance_due')
        and (j.id is null or j.status = 'cancelled'
          or (e2.trigger_type = 'appointment'
              and (j.status <> 'scheduled'
                   or j.scheduled_start is distinct from (e2.trigger_data ->> 'scheduled_start')::timestamptz))
          or (e2.trigger_type = 'stale_job'
              and (j.status = 'completed'
                   or j.updated_at > (e2.trigger_data ->> 'last_activity_at')::timestamptz
                   or not (j.status = any (coalesce((select array_agg(x) from jsonb_array_elements_text(
                         case when jsonb_typeof(w.trigger_config -> 'statuses') = 'array' then w.trigger_config -> 'statuses' end) x),
                         '{scheduled,in_progress}')))))
          or (e2.trigger_type = 'maintenance_due'
              and exists (select 1 from public.automation_src_jobs u
                          where u.organization_id = e2.organization_id and u.client_id::text = e2.client_id and u.id <> j.id
                            and (u.status in ('scheduled', 'in_progress')
                                 or (u.status = 'completed' and u.completed_at > j.completed_at
                                     and (nullif(w.trigger_config ->> 'job_type', '') is null
                                          or u.job_type = w.trigger_config ->> 'job_type'))))))
    ) x;
    if cardinality(v_skip_ids) > 0 then
      update public.automation_execution_logs e set updated_at = now(),
        status = 'skipped', error_code = s.code, error_message = s.msg, completed_at = now()
      from unnest(v_skip_ids, v_skip_codes, v_skip_msgs) as s(id, code, msg)
      where e.id = s.id and e.status = 'pending';
    end if;
    perform public.automation_dispatch_step_done('job_premise');
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    perform public.automation_dispatch_step_failed('job_premise', v_state, v_msg);
  end;

  -- 2d. due rows past their deadline (after the skips above: a reminder of a
  --     paid invoice is skipped, not counted as a failure)
  update public.automation_execution_logs e set updated_at = now(),
    status = 'failed', error_code = 'expired',
    error_message = 'deadline passed before the execution could run', completed_at = now()
  where e.status = 'pending' and e.next_attempt_at <= now() and e.deadline_at <= now();

  -- 3. endpoints able to receive (enabled, with a usable secret)
  for v_ep in
    select ep.action, ep.secret_name, public.automation_webhook_key(ep.secret_name) as key
    from public.automation_endpoints ep
    where ep.enabled
  loop
    if v_ep.key is null then
      raise warning 'dueflow: Vault secret % for action % is missing or not whsec_<base64>; its executions stay pending',
        v_ep.secret_name, v_ep.action;
    else
      v_ok := v_ok || v_ep.action;
    end if;
  end loop;
  perform 1 from public.automation_execution_logs e
  where e.status = 'pending' and e.next_attempt_at <= now() and not (e.action = any (v_ok))
  limit 1;
  if found then
    raise warning 'dueflow: due executions without an enabled endpoint (actions without one: %); they stay pending',
      (select string_agg(a, ', ') from unnest(array['send-reminder', 'invoice-reminder', 'run-workflow']) a
        where not (a = any (v_ok)));
  end if;
  if cardinality(v_ok) = 0 then
    return 0;
  end if;

  -- 4. due rows, not rung within p_redispatch_after: mark and group into batches
  with due as (
    select e.id, e.action, ep.batch_size,
           row_number() over (partition by e.action order by e.next_attempt_at, e.id) as rn
    from public.automation_execution_logs e
    join public.automation_endpoints ep on ep.action = e.action
    where e.action = any (v_ok)
      and e.status = 'pending' and e.next_attempt_at <= now()
      and (e.dispatched_at is null or e.dispatched_at <= now() - p_redispatch_after)
  ), pick as (
    select d.id, d.action, (d.rn - 1) / d.batch_size as batch_no
    from due d
    where (d.rn - 1) / d.batch_size < p_max_batches
  ), locked as (
    select e.id from public.automation_execution_logs e
    where e.id in (select id from pick)
    for update skip locked
  ), marked as (
    update public.automation_execution_logs e set updated_at = now(),
      dispatched_at = now(), dispatch_count = e.dispatch_count + 1
    from locked where e.id = locked.id
    returning e.id
  )
  select coalesce(jsonb_agg(b), '[]'::jsonb) into v_batches
  from (
    select p.action, ep.url, ep.timeout_ms, ep.secret_name, jsonb_agg(p.id order by p.id) as ids
    from pick p
    join marked m on m.id = p.id
    join public.automation_endpoints ep on ep.action = p.action
    group by p.action, p.batch_no, ep.url, ep.timeout_ms, ep.secret_name
  ) b;

  -- 5. one signed POST per batch
  for v_batch in select * from jsonb_array_elements(v_batches) loop
    v_body := jsonb_build_object('action', v_batch ->> 'action', 'execution_ids', v_batch -> 'ids');
    v_id := gen_random_uuid()::text;
    v_ts := extract(epoch from now())::bigint;
    perform net.http_post(
      url := v_batch ->> 'url',
      body := v_body,
      params := '{}'::jsonb,
      headers := jsonb_build_object(
        'Content-Type', 'application/json',
        'webhook-id', v_id,
        'webhook-timestamp', v_ts::text,
        'webhook-signature', public.automation_sign_webhook(
          public.automation_webhook_key(v_batch ->> 'secret_name'), v_id, v_ts, v_body::text)),
      timeout_milliseconds := (v_batch ->> 'timeout_ms')::int);
    v_count := v_count + jsonb_array_length(v_batch -> 'ids');
  end loop;
  return v_count;
end
$$;
comment on function public.process_pending_automations(interval, integer) is
  'Returns expired leases to pending (or failed at max attempts), fails the due executions of workflows whose spec is not runnable (invalid_workflow, masked problems), skips due invoice reminders whose invoice is settled (invoice_settled) and due job reminders whose premise is gone (subject_gone: job deleted or cancelled; superseded: appointment moved or no longer scheduled, stale job with activity since or out of its statuses (the spec''s trigger_config), maintenance after a newer or booked service), fails the remaining due rows past their deadline (expired), (a skip step that fails on a source view row is recorded as dispatch_error and left out of that run,) then posts due pending executions, per action in batches of automation_endpoints.batch_size, to the endpoint through net.http_post, signed with Standard Webhooks (secret from Vault). Rows rung but not claimed are rung again after p_redispatch_after. Missing endpoint or secret: rows stay pending, WARNING. Returns the number of executions dispatched.';

revoke all on table public.automation_settings from public, anon, authenticated;
revoke all on function public.automation_workflow_validation(),
  public.automation_workflow_judged(public.automation_workflows),
  public.automation_workflow_current_spec(public.automation_workflows),
  public.automation_runnable_workflows(text),
  public.automation_workflows_unready(),
  public.automation_check_covers(text, text),
  public.automation_workflows_validate(),
  public.automation_workflows_spec_active(),
  public.automation_check_workflows(text, text, uuid, uuid[]),
  public.automation_run_check(text, text, timestamptz),
  public.automation_check_invoices_run(timestamptz, uuid, uuid[]),
  public.automation_check_maintenance_run(timestamptz, uuid, uuid[]),
  public.automation_check_appointments_run(timestamptz, uuid, uuid[]),
  public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]),
  public.automation_claim_rows(text, uuid[], integer, integer),
  public.process_pending_automations(interval, integer)
  from public, anon, authenticated;
grant execute on function public.automation_workflow_validation(),
  public.automation_workflow_judged(public.automation_workflows),
  public.automation_workflow_current_spec(public.automation_workflows),
  public.process_pending_automations(interval, integer)
  to service_role;
