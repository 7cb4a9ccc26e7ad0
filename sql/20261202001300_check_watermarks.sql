-- Checks cost O(what changed) (issue 11, item 2): the maintenance and
-- stale-job checks keep a watermark per workflow (automation_check_state, as
-- the invoice check does), and the appointment check reads only the
-- look-ahead window and leaves alone what it created already.
--
-- A steady-state run of the maintenance or stale-job check reads, per
-- workflow (a bounded per-organisation probe, each an index range scan):
--
-- * the rows whose due moment fell in (last run, now]: a completed job whose
--   completed_at + months_after_service (maintenance), an open job whose
--   updated_at + days_inactive (stale job) passed since the last run: the
--   passage of time alone, without any row changing;
-- * maintenance: the clients of jobs changed since the last run (updated_at
--   newer than the server time of the last run minus 10 minutes: a job
--   completed, edited after completion, booked, cancelled, of another type);
--   each such client's last service is evaluated again;
-- * the subjects of the workflow's pending reminders (few: they wait for the
--   send window at most): the clients (maintenance), the jobs (stale job), so
--   a service or activity recorded with an older time replaces the reminder
--   at once rather than the next day.
--
-- A workflow without state, with a changed trigger_config or organisation
-- time zone, and the first run of each organisation-local day scan the
-- workflow's rows in full (as before this file). The daily pass catches
-- what leaves no trace in updated_at: a deleted job (the client's previous
-- service becomes the last), a row written with an old updated_at (imports),
-- a view row that moved to another organisation.
--
-- The state is written in the same statement as the executions: a run that
-- fails (its subtransaction in automation_run_check) leaves the watermark
-- where it was, and the next successful run covers the whole gap.
--
-- Month and day arithmetic runs in UTC (set timezone = 'UTC' on the bodies,
-- as pg_cron and PostgREST sessions have it), so that a due moment can be
-- turned into a completed_at / updated_at range exactly.
--
-- Indexes the checks need on the app's tables: reference
-- 20261202001301_check_indexes.sql, the replaced-system adapter, and the
-- README's adopt section. Redefines automation_check_maintenance_run,
-- automation_check_appointments_run and automation_check_stale_jobs_run
-- (from 20261202000800_workflow_spec_wiring.sql). Idempotent.

comment on table public.automation_check_state is
  'Per-workflow watermark of the invoice, maintenance and stale-job checks: checked_at = the p_now of the last successful run (due moments in (checked_at, p_now] are read by index range), updated_at = the server time of that run (rows changed since, minus 10 minutes, are read again), trigger_config and timezone it ran with (a change, or no row, scans the workflow in full once; so does the first run of each organisation-local day). Written in the same statement as the executions: a failed run leaves it unmoved.';

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
  with wf as (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config, m.months,
           make_interval(months => m.months) as span,
           nullif(w.trigger_config ->> 'job_type', '') as job_type,
           o.timezone, o.send_window_start, o.send_window_end,
           st.checked_at, st.updated_at as seen_at,
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone
            or (p_now at time zone o.timezone)::date > (st.checked_at at time zone o.timezone)::date) as full_scan
    from public.automation_runnable_workflows('maintenance_due') w
    cross join lateral (select greatest(public.automation_config_int(w.trigger_config, 'months_after_service', 6), 1) as months) m
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), cand_clients as (
    -- (the "offset 0" fences keep each branch a per-organisation index range scan)
    -- full scan: every client with a completed service
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
    -- (last run, now]: completed_at in (checked_at - months, p_now - months],
    -- up to 4 days more at a month's end (Jan 31 + 1 month = Feb 28)
    select wf.id, j.client_id
    from wf
    cross join lateral (
      select j.client_id::text as client_id, j.completed_at from public.automation_src_jobs j
      where j.organization_id = wf.organization_id and j.status = 'completed'
        and j.completed_at > wf.checked_at - wf.span
        and j.completed_at <= p_now - wf.span
                              + case when extract(day from p_now) >= 28 then interval '4 days' else interval '0' end
        and (wf.job_type is null or j.job_type = wf.job_type)
      offset 0
    ) j
    where not wf.full_scan
      and j.completed_at + wf.span > wf.checked_at and j.completed_at + wf.span <= p_now
    union
    -- jobs changed since the last run (any status: a service completed or
    -- edited, a visit booked or cancelled): their clients
    select wf.id, j.client_id
    from wf
    cross join lateral (
      select j.client_id::text as client_id from public.automation_src_jobs j
      where j.organization_id = wf.organization_id and j.updated_at > wf.seen_at - c_slack
      offset 0
    ) j
    where not wf.full_scan
    union
    -- the clients of the workflow's pending reminders (few: they wait for the
    -- send window at most): a newer service recorded with an older time
    -- replaces the reminder at once
    -- (one range scan of the pending reminders, not a probe per workflow)
    select wf.id, e.client_id
    from (select e.workflow_id, e.client_id from public.automation_execution_logs e
          where e.status = 'pending' and e.action = 'send-reminder' and e.trigger_type = 'maintenance_due'
          offset 0) e
    join wf on wf.id = e.workflow_id
    where not wf.full_scan
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
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    order by wf.id
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
comment on function public.automation_check_maintenance_run(timestamptz, uuid, uuid[]) is
  'Body of the maintenance_due part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per client and last completed service job (ties: the highest id) once months_after_service have passed (in UTC) and no visit is booked; a new one skips the older pending ones of the same workflow and client (superseded). Steady state reads only services whose due moment fell in (last run, p_now], the clients of jobs changed since the last run (automation_check_state) and those of its pending reminders; no state, a changed trigger_config or time zone, and the first run of each organisation-local day read every client of the workflow. Returns the number created.';

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
  ), due as (
    -- the look-ahead window, per organisation a range scan on the upcoming
    -- jobs; the ones reminded already (same job and start) are left out
    -- before any send time is computed
    select wf.*, j.id as job_id, j.client_id, j.scheduled_start,
           format('appointment:%s:%s', j.id, extract(epoch from j.scheduled_start)::bigint) as okey
    from wf
    cross join lateral (
      select j.id::text as id, j.client_id::text as client_id, j.scheduled_start from public.automation_src_jobs j
      where j.organization_id = wf.organization_id
        and j.status = 'scheduled'
        and j.scheduled_start > p_now
        and j.scheduled_start <= p_now + make_interval(hours => wf.hours_before)
      offset 0
    ) j
    -- a view row without the values a reminder needs (an id, a client) is left out
    where coalesce(j.id, '') <> '' and coalesce(j.client_id, '') <> ''
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
  'Body of the appointment part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per job and scheduled start, hours_before ahead, deadline = the start; a new one skips the older pending ones of the same workflow and job (superseded). Reads the look-ahead window only (per organisation a range scan on scheduled starts), skipping the jobs reminded already before computing anything. Returns the number created.';

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
  with wf as (
    select w.id, w.organization_id, w.max_attempts, w.trigger_config, d.days_inactive,
           make_interval(days => d.days_inactive) as span,
           coalesce((select array_agg(x) from jsonb_array_elements_text(
                       case when jsonb_typeof(w.trigger_config -> 'statuses') = 'array' then w.trigger_config -> 'statuses' end) x),
                    '{scheduled,in_progress}') as statuses,
           o.timezone, o.send_window_start, o.send_window_end,
           st.checked_at,
           (st.workflow_id is null or st.trigger_config is distinct from w.trigger_config
            or st.timezone is distinct from o.timezone
            or (p_now at time zone o.timezone)::date > (st.checked_at at time zone o.timezone)::date) as full_scan
    from public.automation_runnable_workflows('stale_job') w
    cross join lateral (select greatest(public.automation_config_int(w.trigger_config, 'days_inactive', 7), 0) as days_inactive) d
    join public.automation_check_organizations() o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
  ), cand as (
    -- (the "offset 0" fences keep each branch a per-organisation index range scan)
    -- full scan: every job of the workflow's statuses without activity since
    -- days_inactive
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
    -- jobs whose threshold (last activity + days_inactive) passed in (last run, now]
    select wf.id, j.id, j.client_id, j.status, j.updated_at
    from wf
    cross join lateral (
      select j.id::text as id, j.client_id::text as client_id, j.status, j.updated_at from public.automation_src_jobs j
      where j.organization_id = wf.organization_id
        and j.updated_at > wf.checked_at - wf.span - c_slack and j.updated_at <= p_now - wf.span
      offset 0
    ) j
    where not wf.full_scan
    union
    -- the jobs of the workflow's pending reminders: activity recorded since
    -- (even with an older time) makes a new occurrence at once
    select wf.id, j.id, j.client_id, j.status, j.updated_at
    from (select e.workflow_id, e.subject_id, e.trigger_data from public.automation_execution_logs e
          where e.status = 'pending' and e.action = 'send-reminder' and e.trigger_type = 'stale_job'
          offset 0) e
    join wf on wf.id = e.workflow_id
    join lateral (
      select j.id::text as id, j.client_id::text as client_id, j.status, j.updated_at from public.automation_src_jobs j
      where j.id::text = e.subject_id and j.organization_id = wf.organization_id
      offset 0
    ) j on true
    where not wf.full_scan
      and j.updated_at is distinct from (e.trigger_data ->> 'last_activity_at')::timestamptz
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
    insert into public.automation_check_state as s (workflow_id, organization_id, checked_at, trigger_config, timezone)
    select wf.id, wf.organization_id, p_now, wf.trigger_config, wf.timezone from wf
    order by wf.id
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
comment on function public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]) is
  'Body of the stale_job part of check_automation_triggers for organisation p_only (NULL: all) except p_except: one execution per job and last activity once days_inactive days (in UTC) have passed; a new one skips the older pending ones of the same workflow and job (superseded). Steady state reads only jobs whose last activity + days_inactive fell in (last run, p_now] and the jobs of the workflow''s pending reminders (automation_check_state); no state, a changed trigger_config or time zone, and the first run of each organisation-local day read every job of the workflow''s statuses. Returns the number created.';

revoke all on function public.automation_check_maintenance_run(timestamptz, uuid, uuid[]),
  public.automation_check_appointments_run(timestamptz, uuid, uuid[]),
  public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[])
  from public, anon, authenticated;
