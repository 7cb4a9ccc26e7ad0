-- Scale past one tick (issue 11, item 4): the per-minute checks cost what
-- is due or changed, plus a small per-workflow read, not a write and an
-- index probe per workflow.
--
-- * One watermark per check type (automation_check_marks): a set-based run
--   of the maintenance, stale-job or invoice check moves one row instead of
--   writing every workflow's automation_check_state row each minute. The
--   per-workflow row is written only when it moves for a reason of its own:
--   a full pass (new workflow, changed trigger_config or zone, the daily
--   pass) or a run of that organisation alone (automation_run_check's
--   per-organisation path). A workflow's last run is then
--   greatest(its row, the type's mark) in a set-based run and its own row
--   alone in a per-organisation run: an organisation left out of a
--   set-based run (quarantined) or failing alone keeps its own, older
--   watermark and covers its gap when it next succeeds; it leaves
--   quarantine only through a per-organisation success, which writes its
--   row. A workflow that stops being active and runnable loses its row
--   (trigger automation_workflows_forget_check_state), so turning it back
--   on reads it in full, as a new one.
-- * The steady branches are one index range scan each over every
--   organisation (due moments that passed, rows changed since the last
--   run), joined to the workflows by organisation, instead of a probe per
--   workflow; in a per-organisation run the same queries are planned for
--   that organisation (custom plans) and use the per-organisation indexes.
--   Each scan leaves out the organisations run apart (p_except), so a
--   quarantined organisation's rows are never read by the set-based run.
-- * The daily full pass runs at a per-organisation time of the local day
--   (automation_daily_pass_offset: 0-1439 minutes after local midnight, from
--   the organisation id), so the passes spread over the 1,440 ticks of a day
--   instead of every organisation of a zone reading every client at its
--   midnight.
-- * The appointment check reads the look-ahead window with one range scan
--   over every organisation.
--
-- Redefines automation_check_invoices_run (20261202000800),
-- automation_check_maintenance_run, automation_check_stale_jobs_run and
-- automation_check_appointments_run (20261202001300). Indexes on the app's
-- tables: reference/20261202001501_tick_indexes.sql, the replaced-system
-- adapter's 20261202001502_tick_indexes.sql, README "Adopting". Idempotent.

create table if not exists public.automation_check_marks (
  trigger_type text primary key,
  checked_at timestamptz not null,
  seen_at timestamptz not null default now()
);
comment on table public.automation_check_marks is
  'One watermark per check type (invoice_overdue, maintenance_due, stale_job): checked_at = the p_now of the last successful set-based run, seen_at = its server time. A workflow''s last run in a set-based run is greatest(automation_check_state.checked_at, this); a per-organisation run uses the workflow''s own row.';
alter table public.automation_check_marks enable row level security;
revoke all on public.automation_check_marks from public, anon, authenticated;
grant all on public.automation_check_marks to service_role;

comment on table public.automation_check_state is
  'Per-workflow state of the invoice, maintenance and stale-job checks: checked_at = the p_now of the last run that wrote it (a full pass, or a run of its organisation alone), updated_at = that run''s server time, trigger_config and timezone it ran with (a change, or no row, scans the workflow in full once; so does the first run after the daily pass time, automation_daily_pass_offset). Set-based runs move automation_check_marks instead. Written in the same statement as the executions: a failed run leaves it unmoved.';

create or replace function public.automation_daily_pass_offset(p_org uuid) returns interval
language sql immutable parallel safe as $$
  -- the first 28 bits of md5(id): stable across servers and versions
  select make_interval(mins => (('x' || left(md5(p_org::text), 7))::bit(28)::integer % 1440))
$$;
comment on function public.automation_daily_pass_offset(uuid) is
  'When an organisation''s daily full pass of the checks runs: this long after its local midnight (0 to 1,439 minutes, from the organisation id), so that the passes spread over the day.';

create or replace function public.automation_daily_pass_due(p_org uuid, p_tz text, p_last timestamptz, p_now timestamptz)
returns boolean language sql stable parallel safe as $$
  select ((p_now - public.automation_daily_pass_offset(p_org)) at time zone p_tz)::date
       > ((p_last - public.automation_daily_pass_offset(p_org)) at time zone p_tz)::date
$$;
comment on function public.automation_daily_pass_due(uuid, text, timestamptz, timestamptz) is
  'True when the organisation''s daily pass time (local midnight + automation_daily_pass_offset, in zone p_tz) lies in (p_last, p_now]: the check reads the workflow in full.';

create or replace function public.automation_check_watermark(p_workflow uuid) returns timestamptz
language sql stable set search_path = public, pg_temp as $$
  select greatest(s.checked_at, m.checked_at)
  from public.automation_check_state s
  join public.automation_workflows w on w.id = s.workflow_id
  left join public.automation_check_marks m on m.trigger_type = public.automation_workflow_current_spec(w) ->> 'trigger_type'
  where s.workflow_id = p_workflow
$$;
comment on function public.automation_check_watermark(uuid) is
  'The last run a set-based check counts for the workflow: greatest(its automation_check_state row, its type''s automation_check_marks row); NULL when it has no state (its next run reads it in full).';

-- A workflow that stops being active and runnable (switched off, made
-- unrunnable) forgets its state: the set-based runs it missed moved the
-- type's mark, so on its return it is read in full, as a new one.
create or replace function public.automation_workflows_forget_check_state() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  delete from public.automation_check_state s where s.workflow_id = new.id;
  return null;
end
$$;
comment on function public.automation_workflows_forget_check_state() is
  'Trigger: deletes the automation_check_state row of a workflow whose spec stopped or started being active and runnable (its next run reads it in full).';
drop trigger if exists automation_workflows_forget_check_state on public.automation_workflows;
-- (after update, not "of spec": the is_active trigger changes spec without naming it)
create trigger automation_workflows_forget_check_state after update on public.automation_workflows
  for each row
  when ((old.spec @> '{"active": true, "runnable": true}') is distinct from (new.spec @> '{"active": true, "runnable": true}'))
  execute function public.automation_workflows_forget_check_state();

-- The check bookkeeping (from 20261202000800): the organisations with an
-- unusable zone are found first (few), then whether they have a workflow of
-- the type, so a run no longer probes every organisation.
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
  ), bad_zones as materialized (
    -- the organisations whose zone is NULL or unknown (few): one pass over
    -- the organisations, then their workflows, instead of a probe per
    -- organisation with a workflow
    select o.id::uuid as id, o.timezone::text as timezone
    from public.automation_src_organizations o
    left join public.automation_timezones tz on tz.name = o.timezone::text
    where tz.name is null
      and (o.timezone is null or public.automation_effective_timezone(o.timezone::text) is null)
  ), orgs as (
    select r.organization_id from public.automation_runnable_workflows(p_type) r
    where (p_only is null or r.organization_id = p_only) and not (r.organization_id = any (p_except))
      and r.organization_id in (select b.id from bad_zones b)
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
    from bad_zones o
    where o.id in (select g.organization_id from orgs g)
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
  'Check bookkeeping for trigger type p_type (organisation p_only or all, except p_except): stores spec and problems of active workflows never validated (a runnable one; in mark mode any: refuse mode refuses storing one dueflow cannot run, which is judged again by each run), records in automation_check_problems the active workflows skipped because dueflow cannot run them (invalid_config, the masked problems; the scheduled check also those of trigger types no check runs, under their type) and the organisations whose zone is unusable (invalid_timezone) or NULL (timezone_defaulted), and deletes those records no longer true. Reads the organisations once (those with a NULL or unknown zone first), not per workflow.';

-- maintenance_due: months since the client's last completed service.
create or replace function public.automation_check_maintenance_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan set timezone = 'UTC' as $$
declare
  -- jobs changed up to this long before the last run are looked at again
  -- (a transaction that began before the last run and committed after it)
  c_slack constant interval := interval '10 minutes';
  v_count integer;
  v_touched uuid[];
begin
  with mark as (
    -- the type's watermark counts in a set-based run only
    select m.checked_at, m.seen_at from public.automation_check_marks m
    where m.trigger_type = 'maintenance_due' and p_only is null
  ), wf0 as materialized (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config, m.months,
           make_interval(months => m.months) as span,
           nullif(w.trigger_config ->> 'job_type', '') as job_type,
           o.timezone, o.send_window_start, o.send_window_end,
           greatest(st.checked_at, (select mk.checked_at from mark mk)) as checked_at,
           greatest(st.updated_at, (select mk.seen_at from mark mk)) as seen_at,
           st.checked_at as own_checked_at,
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone) as changed
    from public.automation_runnable_workflows('maintenance_due') w
    cross join lateral (select greatest(public.automation_config_int(w.trigger_config, 'months_after_service', 6), 1) as months) m
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), wf as materialized (
    -- (plain columns as arguments: the daily pass test is inlined)
    select wf0.*, (wf0.changed or public.automation_daily_pass_due(wf0.organization_id, wf0.timezone, wf0.own_checked_at, p_now)) as full_scan
    from wf0
  ), steady as materialized (
    select * from wf where not wf.full_scan
  ), cand_clients as (
    -- (the "offset 0" fences keep each branch the index range scan it is written as)
    -- full pass: every client with a completed service, per organisation
    select wf.id as wf_id, j.client_id
    from wf
    cross join lateral (
      select distinct j.client_id::text as client_id from public.automation_src_jobs j
      where j.organization_id = wf.organization_id and j.status = 'completed' and j.completed_at is not null
        and (wf.job_type is null or j.job_type = wf.job_type)
      offset 0
    ) j
    where wf.full_scan
    union
    -- a service whose due moment (completed_at + months, in UTC) fell in
    -- (last run, now]: per distinct span one range scan over every
    -- organisation, completed_at in (checked_at - months, p_now - months],
    -- up to 4 days more at a month's end (Jan 31 + 1 month = Feb 28)
    select s.id, j.client_id
    from (select st.span, min(st.checked_at) as lo from steady st group by st.span) b
    cross join lateral (
      select j.organization_id, j.client_id::text as client_id, j.completed_at, j.job_type from public.automation_src_jobs j
      where j.status = 'completed'
        and j.completed_at > b.lo - b.span
        and j.completed_at <= p_now - b.span
                              + case when extract(day from p_now) >= 28 then interval '4 days' else interval '0' end
        and (p_only is null or j.organization_id = p_only)
        and not (j.organization_id = any (p_except))
      offset 0
    ) j
    join steady s on s.organization_id = j.organization_id and s.span = b.span
    where j.completed_at + s.span > s.checked_at and j.completed_at + s.span <= p_now
      and (s.job_type is null or j.job_type = s.job_type)
    union
    -- jobs changed since the last run (any status: a service completed or
    -- edited, a visit booked or cancelled): their clients
    select s.id, j.client_id
    from (
      select j.organization_id, j.client_id::text as client_id, j.updated_at from public.automation_src_jobs j
      where j.updated_at > (select min(st.seen_at) from steady st) - c_slack
        and (p_only is null or j.organization_id = p_only)
        and not (j.organization_id = any (p_except))
      offset 0
    ) j
    join steady s on s.organization_id = j.organization_id
    where j.updated_at > s.seen_at - c_slack
    union
    -- the clients of the workflow's pending reminders (few: they wait for the
    -- send window at most): a newer service recorded with an older time
    -- replaces the reminder at once
    select s.id, e.client_id
    from (select e.workflow_id, e.client_id from public.automation_execution_logs e
          where e.status = 'pending' and e.action = 'send-reminder' and e.trigger_type = 'maintenance_due'
          offset 0) e
    join steady s on s.id = e.workflow_id
  ), last_service as (
    -- each candidate client's last completed service (the latest; ties: the
    -- highest id), due once months have passed and no visit is booked
    select wf.*, s.id as job_id, c.client_id, s.completed_at
    from cand_clients c
    join wf on wf.id = c.wf_id
    cross join lateral (
      select j.id::text as id, j.completed_at from public.automation_src_jobs j
      where j.organization_id = wf.organization_id and j.client_id::text = c.client_id
        and j.status = 'completed' and j.completed_at is not null
        -- a view row without an id is left out
        and coalesce(j.id::text, '') <> ''
        and (wf.job_type is null or j.job_type = wf.job_type)
      order by j.completed_at desc, j.id::text desc
      limit 1
    ) s
    where coalesce(c.client_id, '') <> ''
      and s.completed_at + wf.span <= p_now
      -- nothing to remind when the next visit is already booked
      and not exists (select 1 from public.automation_src_jobs u
                      where u.organization_id = wf.organization_id and u.client_id::text = c.client_id
                        and u.status in ('scheduled', 'in_progress'))
      -- reminded already (the daily pass re-reads every client): no work
      and not exists (select 1 from public.automation_execution_logs e
                      where e.workflow_id = wf.id
                        and e.occurrence_key = format('maintenance:%s:%s', c.client_id, s.id))
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
  ), state as (
    -- written when it moves for a reason of its own: a full pass, or a run
    -- of this organisation alone
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    where wf.full_scan or p_only is not null
    order by wf.id
    on conflict (workflow_id) do update set
      checked_at = greatest(s.checked_at, excluded.checked_at),
      trigger_config = excluded.trigger_config, timezone = excluded.timezone, updated_at = now()
    returning 1
  ), marked as (
    insert into public.automation_check_marks as m (trigger_type, checked_at, seen_at)
    select 'maintenance_due', p_now, now() where p_only is null
    on conflict (trigger_type) do update set
      checked_at = greatest(m.checked_at, excluded.checked_at), seen_at = excluded.seen_at
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_maintenance_run(timestamptz, uuid, uuid[]) is
  'Body of the maintenance_due part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per client and last completed service job (ties: the highest id) once months_after_service have passed (in UTC) and no visit is booked; a new one skips the older pending ones of the same workflow and client (superseded). Steady state reads, by one range scan over every organisation each, the services whose due moment fell in (last run, p_now] and the clients of jobs changed since the last run (automation_check_marks, automation_check_state), and the clients of its pending reminders; no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read every client of the workflow. Returns the number created.';

-- stale_job: open jobs without activity for days_inactive days.
create or replace function public.automation_check_stale_jobs_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan set timezone = 'UTC' as $$
declare
  -- activity up to this long before the last run's threshold is looked at
  -- again (a transaction that began before the last run and committed after it)
  c_slack constant interval := interval '10 minutes';
  v_count integer;
  v_touched uuid[];
begin
  with mark as (
    -- the type's watermark counts in a set-based run only
    select m.checked_at from public.automation_check_marks m
    where m.trigger_type = 'stale_job' and p_only is null
  ), wf0 as materialized (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config, d.days_inactive,
           make_interval(days => d.days_inactive) as span,
           coalesce((select array_agg(x) from jsonb_array_elements_text(
                       case when jsonb_typeof(w.trigger_config -> 'statuses') = 'array' then w.trigger_config -> 'statuses' end) x),
                    '{scheduled,in_progress}') as statuses,
           o.timezone, o.send_window_start, o.send_window_end,
           greatest(st.checked_at, (select mk.checked_at from mark mk)) as checked_at,
           st.checked_at as own_checked_at,
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone) as changed
    from public.automation_runnable_workflows('stale_job') w
    cross join lateral (select greatest(public.automation_config_int(w.trigger_config, 'days_inactive', 7), 0) as days_inactive) d
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), wf as materialized (
    -- (plain columns as arguments: the daily pass test is inlined)
    select wf0.*, (wf0.changed or public.automation_daily_pass_due(wf0.organization_id, wf0.timezone, wf0.own_checked_at, p_now)) as full_scan
    from wf0
  ), steady as materialized (
    select * from wf where not wf.full_scan
  ), cand as (
    -- (the "offset 0" fences keep each branch the index range scan it is written as)
    -- full pass: every job of the workflow's statuses without activity since
    -- days_inactive, per organisation
    select wf.id as wf_id, j.id, j.client_id, j.status, j.updated_at
    from wf
    cross join lateral (
      select j.id::text as id, j.client_id::text as client_id, j.status, j.updated_at from public.automation_src_jobs j
      where j.organization_id = wf.organization_id and j.status = any (wf.statuses)
        and j.updated_at <= p_now - wf.span
      offset 0
    ) j
    where wf.full_scan
    union
    -- jobs whose threshold (last activity + days_inactive) passed in (last
    -- run, now]: per distinct span one range scan over every organisation
    select s.id, j.id, j.client_id, j.status, j.updated_at
    from (select st.span, min(st.checked_at) as lo from steady st group by st.span) b
    cross join lateral (
      select j.organization_id, j.id::text as id, j.client_id::text as client_id, j.status, j.updated_at
      from public.automation_src_jobs j
      where j.updated_at > b.lo - b.span - c_slack and j.updated_at <= p_now - b.span
        and (p_only is null or j.organization_id = p_only)
        and not (j.organization_id = any (p_except))
      offset 0
    ) j
    join steady s on s.organization_id = j.organization_id and s.span = b.span
    where j.updated_at > s.checked_at - s.span - c_slack
    union
    -- the jobs of the workflow's pending reminders: activity recorded since
    -- (even with an older time) makes a new occurrence at once
    select s.id, j.id, j.client_id, j.status, j.updated_at
    from (select e.workflow_id, e.subject_id, e.trigger_data from public.automation_execution_logs e
          where e.status = 'pending' and e.action = 'send-reminder' and e.trigger_type = 'stale_job'
          offset 0) e
    join steady s on s.id = e.workflow_id
    join lateral (
      select j.id::text as id, j.client_id::text as client_id, j.status, j.updated_at from public.automation_src_jobs j
      where j.id::text = e.subject_id and j.organization_id = s.organization_id
      offset 0
    ) j on true
    where j.updated_at is distinct from (e.trigger_data ->> 'last_activity_at')::timestamptz
  ), due as (
    select wf.*, c.id as job_id, c.client_id, c.updated_at as last_activity_at,
           format('stale:%s:%s', c.id, extract(epoch from c.updated_at)::bigint) as okey
    from cand c
    join wf on wf.id = c.wf_id
    where c.status = any (wf.statuses) and c.updated_at <= p_now - wf.span
      -- a view row without the values a reminder needs (an id, a client) is left out
      and coalesce(c.id, '') <> '' and coalesce(c.client_id, '') <> ''
      -- reminded already (the daily pass re-reads every stale job): no work
      and not exists (select 1 from public.automation_execution_logs e
                      where e.workflow_id = wf.id
                        and e.occurrence_key = format('stale:%s:%s', c.id, extract(epoch from c.updated_at)::bigint))
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select d.id, d.organization_id, 'send-reminder', 'stale_job', d.okey, 'job', d.job_id, d.client_id,
           d.max_attempts,
           public.automation_next_attempt(p_now, d.timezone, d.send_window_start, d.send_window_end, p_now + interval '7 days'),
           p_now + interval '7 days',
           jsonb_build_object('last_activity_at', d.last_activity_at, 'days_inactive', d.days_inactive)
    from due d
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
  ), state as (
    -- written when it moves for a reason of its own: a full pass, or a run
    -- of this organisation alone
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    where wf.full_scan or p_only is not null
    order by wf.id
    on conflict (workflow_id) do update set
      checked_at = greatest(s.checked_at, excluded.checked_at),
      trigger_config = excluded.trigger_config, timezone = excluded.timezone, updated_at = now()
    returning 1
  ), marked as (
    insert into public.automation_check_marks as m (trigger_type, checked_at, seen_at)
    select 'stale_job', p_now, now() where p_only is null
    on conflict (trigger_type) do update set
      checked_at = greatest(m.checked_at, excluded.checked_at), seen_at = excluded.seen_at
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]) is
  'Body of the stale_job part of check_automation_triggers for organisation p_only (NULL: all) except p_except: one execution per job and last activity once days_inactive days (in UTC) have passed; a new one skips the older pending ones of the same workflow and job (superseded). Steady state reads, by one range scan over every organisation per distinct days_inactive, the jobs whose last activity + days_inactive fell in (last run, p_now] (automation_check_marks, automation_check_state), and the jobs of the workflow''s pending reminders; no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read every job of the workflow''s statuses. Returns the number created.';

-- appointment: N hours before a scheduled job, never after its start.
create or replace function public.automation_check_appointments_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  with wf as materialized (
    select w.id, w.organization_id, w.max_attempts,
           greatest(public.automation_config_int(w.trigger_config, 'hours_before', 24), 0) as hours_before,
           o.timezone, o.send_window_start, o.send_window_end
    from public.automation_runnable_workflows('appointment') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), due as (
    -- the look-ahead window: one range scan on the upcoming jobs of every
    -- organisation (the longest window), joined to the workflows by
    -- organisation; the ones reminded already (same job and start) are left
    -- out before any send time is computed
    select wf.*, j.id as job_id, j.client_id, j.scheduled_start,
           format('appointment:%s:%s', j.id, extract(epoch from j.scheduled_start)::bigint) as okey
    from (select max(wf.hours_before) as hours from wf) mx
    cross join lateral (
      select j.organization_id, j.id::text as id, j.client_id::text as client_id, j.scheduled_start
      from public.automation_src_jobs j
      where j.status = 'scheduled'
        and j.scheduled_start > p_now
        and j.scheduled_start <= p_now + make_interval(hours => mx.hours)
        and (p_only is null or j.organization_id = p_only)
        and not (j.organization_id = any (p_except))
      offset 0
    ) j
    join wf on wf.organization_id = j.organization_id
    -- a view row without the values a reminder needs (an id, a client) is left out
    where j.scheduled_start <= p_now + make_interval(hours => wf.hours_before)
      and coalesce(j.id, '') <> '' and coalesce(j.client_id, '') <> ''
      and not exists (select 1 from public.automation_execution_logs e
                      where e.workflow_id = wf.id
                        and e.occurrence_key = format('appointment:%s:%s', j.id, extract(epoch from j.scheduled_start)::bigint))
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select d.id, d.organization_id, 'send-reminder', 'appointment', d.okey, 'job', d.job_id, d.client_id, d.max_attempts,
           public.automation_next_attempt(p_now, d.timezone, d.send_window_start, d.send_window_end, d.scheduled_start),
           d.scheduled_start,
           jsonb_build_object('scheduled_start', d.scheduled_start, 'hours_before', d.hours_before)
    from due d
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
  'Body of the appointment part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per job and scheduled start, hours_before ahead, deadline = the start; a new one skips the older pending ones of the same workflow and job (superseded). Reads the look-ahead window only (one range scan on scheduled starts over every organisation), skipping the jobs reminded already before computing anything. Returns the number created.';

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
  with mark as (
    -- the type's watermark counts in a set-based run only
    select m.checked_at from public.automation_check_marks m
    where m.trigger_type = 'invoice_overdue' and p_only is null
  ), wf0 as materialized (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config,
           o.timezone, o.send_window_start, o.send_window_end,
           greatest(st.checked_at, (select mk.checked_at from mark mk)) as checked_at,
           st.checked_at as own_checked_at,
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone) as changed
    from public.automation_runnable_workflows('invoice_overdue') w
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), cfg as materialized (
    -- the reminder days once per distinct configuration
    select c.trigger_config, public.automation_days_config(c.trigger_config, 'days_after_due', '{1,7,14,30}') as days
    from (select distinct coalesce(wf0.trigger_config, 'null') as trigger_config from wf0) c
  ), wf as materialized (
    select wf0.*, cfg.days, (p_now at time zone wf0.timezone)::date as today,
           (wf0.checked_at at time zone wf0.timezone)::date as last_day,
           -- full pass: new workflow, changed configuration or time zone, and the
           -- daily pass (catches invoices that appeared with an old updated_at,
           -- e.g. imports, which neither the reminder-day nor the updated_at
           -- branch would see); plain columns as arguments: inlined
           (wf0.changed or public.automation_daily_pass_due(wf0.organization_id, wf0.timezone, wf0.own_checked_at, p_now)) as full_scan
    from wf0 join cfg on cfg.trigger_config = coalesce(wf0.trigger_config, 'null')
  ), steady as materialized (
    select * from wf where not wf.full_scan
  ), cand_inv as (
    -- (the "offset 0" fences keep each branch the index range scan it is written as)
    -- full pass: every open invoice past the first reminder day, per organisation
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
    -- reminder days reached since the last run (the first run of each local
    -- day): per reminder day one range scan over every organisation
    select s.id, i.id, i.client_id, i.number, i.due_date
    from (select d.d, min(st.last_day - d.d) as lo, max(st.today - d.d) as hi
          from steady st cross join lateral unnest(st.days) d(d)
          where st.today > st.last_day
          group by d.d) b
    cross join lateral (
      select i.organization_id, i.id::text as id, i.client_id::text as client_id, i.number, i.due_date
      from public.automation_src_invoices i
      where i.status in ('sent', 'overdue') and i.balance > 0
        and i.due_date > b.lo and i.due_date <= b.hi
        and (p_only is null or i.organization_id = p_only)
        and not (i.organization_id = any (p_except))
      offset 0
    ) i
    join steady s on s.organization_id = i.organization_id
    where b.d = any (s.days) and s.today > s.last_day
      and i.due_date > s.last_day - b.d and i.due_date <= s.today - b.d
    union
    -- invoices created or changed since the last run (reopened, due date moved, imported)
    select s.id, i.id, i.client_id, i.number, i.due_date
    from (
      select i.id::text as id, i.organization_id, i.client_id::text as client_id, i.number, i.due_date, i.updated_at
      from public.automation_src_invoices i
      where i.status in ('sent', 'overdue') and i.balance > 0
        and i.updated_at > (select min(st.checked_at) from steady st) - c_slack
        and (p_only is null or i.organization_id = p_only)
        and not (i.organization_id = any (p_except))
      offset 0
    ) i
    join steady s on s.organization_id = i.organization_id
    where i.updated_at > s.checked_at - c_slack
      and i.due_date <= s.today - s.days[1]
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
    -- written when it moves for a reason of its own: a full pass, or a run
    -- of this organisation alone
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    where wf.full_scan or p_only is not null
    order by wf.id
    on conflict (workflow_id) do update set
      checked_at = greatest(s.checked_at, excluded.checked_at),
      trigger_config = excluded.trigger_config, timezone = excluded.timezone, updated_at = now()
    returning 1
  ), marked as (
    insert into public.automation_check_marks as m (trigger_type, checked_at, seen_at)
    select 'invoice_overdue', p_now, now() where p_only is null
    on conflict (trigger_type) do update set
      checked_at = greatest(m.checked_at, excluded.checked_at), seen_at = excluded.seen_at
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_invoices_run(timestamptz, uuid, uuid[]) is
  'Body of check_overdue_invoices for organisation p_only (NULL: all) except p_except: one execution per (invoice, due date, latest reminder day reached) of valid active invoice_overdue workflows of organisations with a usable zone; a newer reminder skips the older pending ones of the same workflow and invoice (superseded). Steady state reads, by one range scan over every organisation each, the invoices that reached a reminder day since the last run (per reminder day) or changed since it (automation_check_marks, automation_check_state); no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read the workflow''s open invoices in full. Returns the number created.';

revoke all on function public.automation_daily_pass_offset(uuid),
  public.automation_daily_pass_due(uuid, text, timestamptz, timestamptz),
  public.automation_check_watermark(uuid),
  public.automation_workflows_forget_check_state(),
  public.automation_check_invoices_run(timestamptz, uuid, uuid[]),
  public.automation_check_maintenance_run(timestamptz, uuid, uuid[]),
  public.automation_check_appointments_run(timestamptz, uuid, uuid[]),
  public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[])
  from public, anon, authenticated;
grant execute on function public.automation_check_watermark(uuid) to service_role;
