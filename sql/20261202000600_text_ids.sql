-- Ids of any type: subject, client, job and invoice ids cross dueflow as
-- text, so an app whose ids are uuid, bigint or 'C-2001' adopts dueflow
-- without fake uuids. Organisation (tenant), workflow and execution ids stay
-- uuid.
--
-- * automation_execution_logs.subject_id and client_id become text (an
--   organisation subject's id as its uuid text). A uuid id's text is exactly
--   what format('%s', uuid) wrote into the occurrence keys, so the keys of
--   existing rows stay byte-identical: no reminder is created again.
-- * The checks, the claim and the dispatcher read the source views' ids as
--   text (x.id::text: a no-op on a text column, so an index on the view's
--   expression still serves the lookup; a view still delivering uuid or
--   bigint ids keeps working, without that index). A NULL or empty id is
--   left out; the claim document carries every id as a JSON string.
-- * The reference views over dueflow's own tables:
--   20261202000601_text_ids_reference.sql.
-- Moved here when they changed: the five check bodies (from
-- 20261202000200_check_isolation.sql), automation_claim_rows and
-- process_pending_automations (from 20261202000400_source_isolation.sql).
-- Idempotent.

-- Column types ----------------------------------------------------------------

do $migration$
declare
  v_alter text;
begin
  select string_agg(format('alter column %I type text using %I::text', a.attname, a.attname), ', ' order by a.attnum)
    into v_alter
  from pg_attribute a
  where a.attrelid = 'public.automation_execution_logs'::regclass
    and a.attname in ('subject_id', 'client_id') and not a.attisdropped
    and a.atttypid <> 'text'::regtype;
  if v_alter is not null then
    -- one rewrite of the table; its indexes (automation_execution_logs_pending_subject_idx) are rebuilt with it
    execute 'alter table public.automation_execution_logs ' || v_alter;
  end if;
end
$migration$;
comment on column public.automation_execution_logs.subject_id is
  'The subject''s id as text (invoice or job id as the source view delivers it, the client id, or the organisation''s uuid).';
comment on column public.automation_execution_logs.client_id is
  'The client''s id as text, as automation_src_clients delivers it; NULL for an organisation-addressed run.';

-- The checks' bodies ----------------------------------------------------------
-- (run by automation_run_check_body, 20261202000200_check_isolation.sql)

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
    from public.automation_workflows w
    join (select o.id, o.send_window_start, o.send_window_end,
                 coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.automation_src_organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
    left join public.automation_check_state st on st.workflow_id = w.id
    where w.is_active and w.trigger_type = 'invoice_overdue'
      and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
      and o.timezone is not null
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
    from public.automation_workflows w
    join (select o.id, o.send_window_start, o.send_window_end,
                 coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.automation_src_organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
    where w.is_active and w.trigger_type = 'maintenance_due'
      and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
      and o.timezone is not null
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
    from public.automation_workflows w
    join (select o.id, o.send_window_start, o.send_window_end,
                 coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.automation_src_organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
    where w.is_active and w.trigger_type = 'appointment'
      and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
      and o.timezone is not null
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

-- scheduled: organisation-local frequency; a missed run fires once.
create or replace function public.automation_check_scheduled_run(p_now timestamptz, p_only uuid, p_except uuid[])
returns integer language plpgsql set search_path = public, pg_temp set jit = off
  set plan_cache_mode = force_custom_plan as $$
declare
  v_count integer;
  v_touched uuid[];
begin
  -- a schedule per valid active scheduled workflow; recomputed when its
  -- configuration or the organisation's time zone changed
  insert into public.automation_schedules as s
    (workflow_id, organization_id, next_run_at, trigger_config, timezone)
  select w.id, w.organization_id, public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now),
         w.trigger_config, o.timezone
  from public.automation_workflows w
  join (select o.id, coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
        from public.automation_src_organizations o
        left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
  left join public.automation_schedules cur on cur.workflow_id = w.id
  where w.is_active and w.trigger_type = 'scheduled'
    and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
    and o.timezone is not null
    and (p_only is null or w.organization_id = p_only)
    and not (w.organization_id = any (p_except))
    and (cur.workflow_id is null
         or cur.trigger_config is distinct from w.trigger_config
         or cur.timezone is distinct from o.timezone)
    and public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now) is not null
  on conflict (workflow_id) do update set
    next_run_at = excluded.next_run_at, trigger_config = excluded.trigger_config,
    timezone = excluded.timezone, updated_at = now();

  with due as (
    select s.workflow_id, s.next_run_at as run_at, w.organization_id, w.max_attempts,
           coalesce(w.trigger_config ->> 'audience', 'organization') as audience,
           public.automation_next_scheduled_run(w.trigger_config, o.timezone, p_now) as next_run
    from public.automation_schedules s
    join public.automation_workflows w
      on w.id = s.workflow_id and w.organization_id = s.organization_id
     and w.is_active and w.trigger_type = 'scheduled'
    join (select o.id, coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.automation_src_organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
    where s.next_run_at <= p_now
      and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
      and o.timezone is not null
      and (p_only is null or w.organization_id = p_only)
      and not (w.organization_id = any (p_except))
    for update of s skip locked
  ), targets as (
    select d.*, 'organization'::text as subject_type, d.organization_id::text as subject_id, null::text as client_id,
           format('scheduled:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) as okey
    from due d where d.audience <> 'clients'
    union all
    select d.*, 'client', c.id::text, c.id::text,
           format('scheduled:%s:client:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), c.id::text)
    from due d join public.automation_src_clients c on c.organization_id = d.organization_id
    -- a client without an id is left out
    where d.audience = 'clients' and coalesce(c.id::text, '') <> ''
  ), ins as (
    insert into public.automation_execution_logs
      (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type,
       subject_id, client_id, max_attempts, next_attempt_at, deadline_at, trigger_data)
    select t.workflow_id, t.organization_id, 'run-workflow', 'scheduled', t.okey, t.subject_type,
           t.subject_id, t.client_id, t.max_attempts, p_now,
           greatest(t.next_run, p_now + interval '1 hour'),
           jsonb_build_object('run_at', t.run_at)
    from targets t
    on conflict (workflow_id, occurrence_key) do nothing
    returning workflow_id
  ), advanced as (
    update public.automation_schedules s set next_run_at = d.next_run, last_run_at = p_now, updated_at = now()
    from due d where s.workflow_id = d.workflow_id and d.next_run is not null
    returning 1
  )
  select count(*), array_agg(distinct workflow_id) into v_count, v_touched from ins;
  perform public.automation_touch_workflows(v_touched, p_now);
  return v_count;
end
$$;
comment on function public.automation_check_scheduled_run(timestamptz, uuid, uuid[]) is
  'Body of the scheduled part of check_automation_triggers for organisation p_only (NULL: all) except p_except: per valid active workflow, in the organisation''s time zone; a missed run fires once, then the schedule moves past p_now. Returns the number created.';

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
    from public.automation_workflows w
    join (select o.id, o.send_window_start, o.send_window_end,
                 coalesce(tz.name, public.automation_effective_timezone(o.timezone)) as timezone
          from public.automation_src_organizations o
          left join public.automation_timezones tz on tz.name = o.timezone) o on o.id = w.organization_id
    where w.is_active and w.trigger_type = 'stale_job'
      and coalesce(w.problems, public.automation_workflow_problems(w.trigger_type, w.trigger_config, w.steps)) = '{}'
      and o.timezone is not null
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
    'workflow', jsonb_build_object('id', w.id, 'name', w.name, 'trigger_type', w.trigger_type,
      'trigger_config', w.trigger_config, 'is_active', w.is_active, 'steps', w.steps),
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
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution, every subject, client, invoice and job id as a JSON string (ids read from the source views as text). Raises when a source view cannot deliver a row (automation_claim then claims one by one).';

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
      join public.automation_workflows w on w.id = e2.workflow_id
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
  'Returns expired leases to pending (or failed at max attempts), skips due invoice reminders whose invoice is settled (invoice_settled) and due job reminders whose premise is gone (subject_gone: job deleted or cancelled; superseded: appointment moved or no longer scheduled, stale job with activity since or out of its statuses, maintenance after a newer or booked service), fails the remaining due rows past their deadline (expired), (a skip step that fails on a source view row is recorded as dispatch_error and left out of that run,) then posts due pending executions, per action in batches of automation_endpoints.batch_size, to the endpoint through net.http_post, signed with Standard Webhooks (secret from Vault). Rows rung but not claimed are rung again after p_redispatch_after. Missing endpoint or secret: rows stay pending, WARNING. Returns the number of executions dispatched.';

revoke all on function public.automation_check_invoices_run(timestamptz, uuid, uuid[]),
  public.automation_check_maintenance_run(timestamptz, uuid, uuid[]),
  public.automation_check_appointments_run(timestamptz, uuid, uuid[]),
  public.automation_check_scheduled_run(timestamptz, uuid, uuid[]),
  public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]),
  public.automation_claim_rows(text, uuid[], integer, integer),
  public.process_pending_automations(interval, integer)
  from public, anon, authenticated;
grant execute on function public.process_pending_automations(interval, integer) to service_role;
