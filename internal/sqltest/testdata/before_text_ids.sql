-- dueflow as an install had it before 20261202000600_text_ids.sql: uuid
-- subject and client ids in automation_execution_logs, the reference views
-- delivering uuid ids, and the check bodies that wrote the occurrence keys
-- from them (copied verbatim from 20261202000200_check_isolation.sql of that
-- release). Applied over the current schema by TestUpgradeKeepsOccurrenceKeys
-- to recreate that state; never part of the migrations.

-- (that release kept its schedule state in automation_schedules)
alter table public.automation_schedule_state rename to automation_schedules;
alter table public.automation_schedules rename constraint automation_schedule_state_pkey to automation_schedules_pkey;
alter table public.automation_schedules
  rename constraint automation_schedule_state_workflow_id_fkey to automation_schedules_workflow_id_fkey;
alter index public.automation_schedule_state_due_idx rename to automation_schedules_due_idx;
alter policy automation_schedule_state_member_read on public.automation_schedules rename to automation_schedules_member_read;

drop index if exists public.clients_id_text_idx, public.jobs_id_text_idx, public.jobs_client_text_idx,
  public.jobs_completed_text_idx, public.invoices_id_text_idx;
create index if not exists jobs_completed_idx on public.jobs (organization_id, client_id, completed_at desc)
  where status = 'completed';
alter table public.automation_execution_logs
  alter column subject_id type uuid using subject_id::uuid,
  alter column client_id type uuid using client_id::uuid;

drop view public.automation_src_clients, public.automation_src_jobs, public.automation_src_invoices;
create or replace view public.automation_src_clients with (security_invoker = true) as
  select id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out
  from public.clients;

create or replace view public.automation_src_jobs with (security_invoker = true) as
  select id, organization_id, client_id, title, job_type, status, scheduled_start,
         completed_at, address, updated_at
  from public.jobs;

create or replace view public.automation_src_invoices with (security_invoker = true) as
  select id, organization_id, client_id, job_id, number, status, due_date, total,
         balance, currency, portal_url, updated_at
  from public.invoices;

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
      select i.id, i.client_id, i.number, i.due_date from public.automation_src_invoices i
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
      select i.id, i.client_id, i.number, i.due_date from public.automation_src_invoices i
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
      select i.id, i.organization_id, i.client_id, i.number, i.due_date, i.updated_at
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
    -- a view row without the values a reminder needs is left out
    where ci.id is not null and ci.client_id is not null
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
      select distinct on (j.client_id) j.id, j.client_id, j.completed_at
      from public.automation_src_jobs j
      where j.organization_id = wf.organization_id
        and j.status = 'completed' and j.completed_at is not null and j.client_id is not null
        and j.id is not null
        and (wf.job_type is null or j.job_type = wf.job_type)
      order by j.client_id, j.completed_at desc
    ) j
    where j.completed_at + make_interval(months => wf.months) <= p_now
      -- nothing to remind when the next visit is already booked
      and not exists (select 1 from public.automation_src_jobs u
                      where u.organization_id = wf.organization_id and u.client_id = j.client_id
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
           format('appointment:%s:%s', j.id, extract(epoch from j.scheduled_start)::bigint), 'job', j.id,
           j.client_id, wf.max_attempts,
           public.automation_next_attempt(p_now, wf.timezone, wf.send_window_start, wf.send_window_end, j.scheduled_start),
           j.scheduled_start,
           jsonb_build_object('scheduled_start', j.scheduled_start, 'hours_before', wf.hours_before)
    from wf
    join public.automation_src_jobs j
      on j.organization_id = wf.organization_id
     and j.status = 'scheduled'
     and j.scheduled_start > p_now
     and j.scheduled_start <= p_now + make_interval(hours => wf.hours_before)
     -- a view row without the values a reminder needs is left out
     and j.id is not null and j.client_id is not null
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
    select d.*, 'organization'::text as subject_type, d.organization_id as subject_id, null::uuid as client_id,
           format('scheduled:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) as okey
    from due d where d.audience <> 'clients'
    union all
    select d.*, 'client', c.id, c.id,
           format('scheduled:%s:client:%s', to_char(d.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), c.id)
    from due d join public.automation_src_clients c on c.organization_id = d.organization_id
    where d.audience = 'clients' and c.id is not null
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
           format('stale:%s:%s', j.id, extract(epoch from j.updated_at)::bigint), 'job', j.id, j.client_id,
           wf.max_attempts,
           public.automation_next_attempt(p_now, wf.timezone, wf.send_window_start, wf.send_window_end, p_now + interval '7 days'),
           p_now + interval '7 days',
           jsonb_build_object('last_activity_at', j.updated_at, 'days_inactive', wf.days_inactive)
    from wf
    join public.automation_src_jobs j
      on j.organization_id = wf.organization_id
     and j.status = any (wf.statuses)
     and j.updated_at <= p_now - make_interval(days => wf.days_inactive)
     -- a view row without the values a reminder needs is left out
     and j.id is not null and j.client_id is not null
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
