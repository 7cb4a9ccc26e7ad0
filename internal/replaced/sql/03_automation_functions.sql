-- The replaced system's automation logic in SQL: its monitoring views, the
-- row trigger handle_universal_automation_triggers on jobs, clients,
-- estimates and invoices, and the functions its pg_cron jobs call
-- (REPLACED_SYSTEM.md names the jobs, views and trigger function; the
-- function names and bodies are plausible ones, with the faults
-- docs/bug-classes.md lists). Idempotent.

-- automation_system_health: the operators' health view (production columns)
create or replace view public.automation_system_health as
select
  count(*) filter (where status = 'pending') as pending_count,
  count(*) filter (where status = 'running') as running_count,
  count(*) filter (where status = 'completed' and completed_at > now() - interval '1 hour') as completed_last_hour,
  count(*) filter (where status = 'failed' and completed_at > now() - interval '1 hour') as failed_last_hour,
  max(completed_at) filter (where status = 'completed') as last_success,
  max(completed_at) filter (where status = 'failed') as last_failure,
  (select count(*) from public.automation_workflows where is_active = true) as active_workflows
from public.automation_execution_logs;
comment on view public.automation_system_health is
  'Replaced system: pending and running executions, completed and failed in the last hour, last success and failure, active workflows.';

-- automation_cron_status: the jobs' run statistics (production columns). It
-- reads cron.job, so it is defined over pg_cron only where the extension
-- exists; elsewhere with the same columns and types and no rows.
do $fixture$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    execute $view$
      create or replace view public.automation_cron_status as
      select j.jobname as job_name, j.schedule, j.active as is_active,
             max(d.start_time) as last_run, max(d.end_time) as last_run_ended,
             count(d.runid) as total_runs,
             count(d.runid) filter (where d.status = 'succeeded') as successful_runs,
             count(d.runid) filter (where d.status = 'failed') as failed_runs,
             round(100.0 * count(d.runid) filter (where d.status = 'succeeded') / nullif(count(d.runid), 0), 2) as success_rate
      from cron.job j
      left join cron.job_run_details d on d.jobid = j.jobid
      where j.jobname like '%automation%' or j.jobname like 'check-%' or j.jobname like '%reminders'
      group by j.jobid, j.jobname, j.schedule, j.active
    $view$;
  else
    execute $view$
      create or replace view public.automation_cron_status as
      select null::name as job_name, null::text as schedule, null::boolean as is_active,
             null::timestamptz as last_run, null::timestamptz as last_run_ended,
             0::bigint as total_runs, 0::bigint as successful_runs, 0::bigint as failed_runs,
             null::numeric as success_rate
      where false
    $view$;
  end if;
end
$fixture$;
comment on view public.automation_cron_status is
  'Replaced system: per automation cron job its schedule, whether active, last run start and end, runs, successes, failures and success rate (%).';

-- the builder's {field, operator, value} conditions against a row
create or replace function public.check_trigger_conditions(p_conditions jsonb, p_new jsonb, p_old jsonb)
returns boolean language plpgsql immutable as $$
declare
  c jsonb;
  v_actual text;
  v_expected text;
begin
  if jsonb_typeof(p_conditions) <> 'array' then
    return true;
  end if;
  for c in select * from jsonb_array_elements(p_conditions) loop
    v_actual := p_new ->> (c ->> 'field');
    v_expected := c ->> 'value';
    case coalesce(c ->> 'operator', 'equals')
      when 'not_equals' then
        if lower(v_actual) = lower(v_expected) then return false; end if;
      when 'contains' then
        if v_actual is null or v_actual not ilike '%' || v_expected || '%' then return false; end if;
      when 'changed' then
        if (p_new -> (c ->> 'field')) is not distinct from (p_old -> (c ->> 'field')) then return false; end if;
      else
        if lower(v_actual) is distinct from lower(v_expected) then return false; end if;
    end case;
  end loop;
  return true;
end
$$;
comment on function public.check_trigger_conditions(jsonb, jsonb, jsonb) is
  'Replaced system: true when a row (and its previous version) meets every builder condition {field, operator, value}.';

-- The row trigger: a pending log row per matching active workflow of the
-- row's organisation (the record's organization_id, else the owner's
-- profile). Its trigger_data is the {trigger_type, table_name, operation,
-- record_id, new_record, ...} shape. Errors are swallowed so the app's write
-- never fails.
create or replace function public.handle_universal_automation_triggers() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_new jsonb := to_jsonb(new);
  v_old jsonb := case when tg_op = 'UPDATE' then to_jsonb(old) end;
  v_user_id uuid;
  v_org_id uuid;
  v_types text[] := '{}';
  w record;
begin
  v_user_id := nullif(v_new ->> 'user_id', '')::uuid;
  v_org_id := nullif(v_new ->> 'organization_id', '')::uuid;
  if v_org_id is null and v_user_id is not null then
    select p.organization_id into v_org_id from public.profiles p where p.id = v_user_id;
  end if;
  if v_org_id is null then
    return new;
  end if;

  case tg_table_name
    when 'jobs' then
      if tg_op = 'INSERT' then
        v_types := array['job_created'];
        if v_new ->> 'schedule_start' is not null then
          v_types := v_types || 'job_scheduled'::text;
        end if;
      else
        if v_new -> 'status' is distinct from v_old -> 'status' then
          v_types := v_types || 'job_status_changed'::text;
          if v_new ->> 'status' = 'completed' then
            v_types := v_types || 'job_completed'::text;
          end if;
        end if;
        if v_new -> 'schedule_start' is distinct from v_old -> 'schedule_start' and v_new ->> 'schedule_start' is not null then
          v_types := v_types || 'job_scheduled'::text;
        end if;
      end if;
    when 'clients' then
      if tg_op = 'INSERT' then
        v_types := array['client_created'];
      elsif v_new -> 'tags' is distinct from v_old -> 'tags' then
        v_types := array['client_tags_changed'];
      end if;
    when 'estimates' then
      if tg_op = 'INSERT' then
        v_types := array['estimate_created'];
      elsif v_new -> 'status' is distinct from v_old -> 'status' and v_new ->> 'status' in ('sent', 'accepted', 'declined') then
        v_types := array['estimate_' || (v_new ->> 'status')];
      end if;
    when 'invoices' then
      if tg_op = 'INSERT' then
        v_types := array['invoice_created'];
      else
        if v_new -> 'status' is distinct from v_old -> 'status' and v_new ->> 'status' in ('sent', 'paid') then
          v_types := v_types || ('invoice_' || (v_new ->> 'status'));
        end if;
        -- any update of an unpaid invoice past due: invoice_overdue here as
        -- well as in check_overdue_invoices() (docs/bug-classes.md, class 3)
        if (v_new ->> 'due_date')::date < current_date
           and coalesce(v_new ->> 'payment_status', 'unpaid') <> 'paid'
           and v_new ->> 'status' not in ('paid', 'cancelled', 'draft') then
          v_types := v_types || 'invoice_overdue'::text;
        end if;
      end if;
    else
      return new;
  end case;

  for w in
    select wf.id, wf.trigger_type, wf.trigger_config
    from public.automation_workflows wf
    where wf.organization_id = v_org_id
      and wf.trigger_type = any (v_types)
      and wf.is_active and wf.status = 'active'
      and jsonb_typeof(wf.steps) = 'array' and jsonb_array_length(wf.steps) > 0
  loop
    if not public.check_trigger_conditions(w.trigger_config -> 'conditions', v_new, v_old) then
      continue;
    end if;
    insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
    values (w.id, v_org_id, w.trigger_type,
            jsonb_build_object('trigger_type', w.trigger_type, 'table_name', tg_table_name, 'operation', tg_op,
                               'record_id', v_new ->> 'id', 'new_record', v_new, 'old_record', v_old,
                               'user_id', v_user_id, 'organization_id', v_org_id, 'workflow_id', w.id),
            'pending');
    -- counted when triggered, not when done (docs/bug-classes.md, class 8)
    update public.automation_workflows
    set execution_count = coalesce(execution_count, 0) + 1, last_triggered_at = now()
    where id = w.id;
  end loop;
  return new;
exception when others then
  raise warning 'automation trigger error: %', sqlerrm;
  return new;
end
$$;
comment on function public.handle_universal_automation_triggers() is
  'Replaced system: row trigger on jobs, clients, estimates and invoices inserting a pending automation_execution_logs row per matching active workflow of the row''s organisation.';

drop trigger if exists automation_trigger_jobs on public.jobs;
create trigger automation_trigger_jobs after insert or update on public.jobs
  for each row execute function public.handle_universal_automation_triggers();
drop trigger if exists automation_trigger_clients on public.clients;
create trigger automation_trigger_clients after insert or update on public.clients
  for each row execute function public.handle_universal_automation_triggers();
drop trigger if exists automation_trigger_estimates on public.estimates;
create trigger automation_trigger_estimates after insert or update on public.estimates
  for each row execute function public.handle_universal_automation_triggers();
drop trigger if exists automation_trigger_invoices on public.invoices;
create trigger automation_trigger_invoices after insert or update on public.invoices
  for each row execute function public.handle_universal_automation_triggers();

-- check-automation-triggers (every minute): scheduled and schedule_time
-- workflows whose hour and minute match now in UTC, whatever the user's zone
-- (docs/bug-classes.md, class 5); {trigger_type, scheduled_for} rows.
create or replace function public.check_automation_triggers() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_now timestamp := date_trunc('minute', now() at time zone 'UTC');
begin
  with due as (
    select w.id, w.organization_id, w.trigger_type, w.trigger_config
    from public.automation_workflows w
    where w.trigger_type in ('scheduled', 'schedule_time') and w.is_active and w.status = 'active'
      and coalesce((w.trigger_config ->> 'hour')::int, 9) = extract(hour from v_now)
      and coalesce((w.trigger_config ->> 'minute')::int, 0) = extract(minute from v_now)
      and case coalesce(w.trigger_config ->> 'frequency', 'daily')
            when 'weekly' then coalesce((w.trigger_config ->> 'day_of_week')::int, 1) = extract(dow from v_now)
            when 'monthly' then coalesce((w.trigger_config ->> 'day_of_month')::int, 1) = extract(day from v_now)
            else true
          end
      and not exists (select 1 from public.automation_execution_logs l
                      where l.workflow_id = w.id and l.created_at > now() - interval '23 hours')
  ), logged as (
    insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
    select id, organization_id, trigger_type,
           jsonb_build_object('trigger_type', trigger_type, 'scheduled_for', v_now, 'frequency', trigger_config ->> 'frequency'),
           'pending'
    from due
    returning workflow_id
  )
  update public.automation_schedules s set last_run = now()
  where s.workflow_id in (select workflow_id from logged);
end
$$;
comment on function public.check_automation_triggers() is
  'Replaced system (cron check-automation-triggers): pending rows for scheduled/schedule_time workflows due this minute, in UTC.';

-- process-automations (every minute): marks the last day's pending rows
-- completed with their steps as "actions executed", although nothing was
-- sent (docs/bug-classes.md, class 1). Older pending rows are never picked up.
create or replace function public.process_pending_automations() returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_count integer;
begin
  update public.automation_execution_logs l
  set status = 'completed', started_at = coalesce(l.started_at, now()), completed_at = now(),
      actions_executed = coalesce(w.steps, '[]'::jsonb),
      details = coalesce(l.details, '{}'::jsonb) || jsonb_build_object('processed_by', 'process_pending_automations')
  from public.automation_workflows w
  where w.id = l.workflow_id
    and l.id in (select id from public.automation_execution_logs
                 where status = 'pending' and created_at > now() - interval '24 hours'
                 order by created_at limit 50);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.process_pending_automations() is
  'Replaced system (cron process-automations): marks up to 50 pending rows of the last 24 hours completed (nothing is sent).';

-- check-overdue-invoices (09:00 UTC): marks past-due invoices overdue (which
-- fires the row trigger too) and logs {trigger_type, invoice_id, client_id,
-- days_overdue} rows, deduplicated over a sliding 24 hours (bug class 3).
create or replace function public.check_overdue_invoices() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.invoices set status = 'overdue'
  where due_date < current_date and status in ('sent', 'unpaid', 'viewed', 'partial')
    and coalesce(payment_status, 'unpaid') <> 'paid';

  insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
  select w.id, w.organization_id, 'invoice_overdue',
         jsonb_build_object('trigger_type', 'invoice_overdue', 'invoice_id', i.id, 'client_id', i.client_id,
                            'days_overdue', current_date - i.due_date),
         'pending'
  from public.automation_workflows w
  join public.profiles p on p.organization_id = w.organization_id
  join public.invoices i on i.user_id = p.id
  where w.trigger_type = 'invoice_overdue' and w.is_active and w.status = 'active'
    and i.status = 'overdue' and coalesce(i.payment_status, 'unpaid') <> 'paid'
    and current_date - i.due_date >= coalesce((w.trigger_config ->> 'days_overdue')::int,
                                              (w.trigger_config ->> 'daysOverdue')::int, 1)
    and not exists (select 1 from public.automation_execution_logs l
                    where l.workflow_id = w.id and l.trigger_data ->> 'invoice_id' = i.id::text
                      and l.created_at > now() - interval '24 hours');
end
$$;
comment on function public.check_overdue_invoices() is
  'Replaced system (cron check-overdue-invoices): marks past-due invoices overdue and logs pending invoice_overdue rows (24-hour dedupe).';

-- a client's last service: its latest completed job (jobs have no completed_at)
create or replace function public.check_maintenance_reminders() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
  select w.id, w.organization_id, 'maintenance_due',
         jsonb_build_object('trigger_type', 'maintenance_due', 'client_id', c.id, 'last_service_date', ls.last_service::date),
         'pending'
  from public.automation_workflows w
  join public.profiles p on p.organization_id = w.organization_id
  join public.clients c on c.user_id = p.id
  cross join lateral (
    select max(coalesce(j.schedule_end, j.date, j.updated_at)) as last_service
    from public.jobs j
    where j.client_id = c.id and j.status = 'completed' and j.deleted_at is null
  ) ls
  where w.trigger_type = 'maintenance_due' and w.is_active and w.status = 'active'
    and ls.last_service < now() - make_interval(months => coalesce(
          (w.trigger_conditions ->> 'months_after_last_service')::int,
          (w.trigger_config ->> 'months_after_last_service')::int, 6))
    and not exists (select 1 from public.automation_execution_logs l
                    where l.workflow_id = w.id and l.trigger_data ->> 'client_id' = c.id
                      and l.created_at > now() - interval '30 days');
end
$$;
comment on function public.check_maintenance_reminders() is
  'Replaced system (cron check-maintenance-reminders): pending maintenance_due rows for clients whose last completed job is older than months_after_last_service (default 6).';

-- check-appointment-reminders: job_scheduled workflows, jobs starting within
-- trigger_config.hours_before (default 24) hours
create or replace function public.check_appointment_reminders() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
  select w.id, w.organization_id, 'job_scheduled',
         jsonb_build_object('trigger_type', 'job_scheduled', 'job_id', j.id, 'client_id', j.client_id,
                            'schedule_start', j.schedule_start),
         'pending'
  from public.automation_workflows w
  join public.profiles p on p.organization_id = w.organization_id
  join public.jobs j on j.user_id = p.id
  where w.trigger_type = 'job_scheduled' and w.is_active and w.status = 'active'
    and j.status = 'scheduled' and j.deleted_at is null
    and j.schedule_start between now() and now() + make_interval(hours => coalesce((w.trigger_config ->> 'hours_before')::int, 24))
    and not exists (select 1 from public.automation_execution_logs l
                    where l.workflow_id = w.id and l.trigger_data ->> 'job_id' = j.id
                      and l.created_at > now() - interval '24 hours');
end
$$;
comment on function public.check_appointment_reminders() is
  'Replaced system (cron check-appointment-reminders): pending job_scheduled rows for scheduled jobs starting within hours_before hours.';

-- seasonal-maintenance-reminders: every active client of an organisation with
-- a seasonal maintenance_due workflow, once per 60 days
create or replace function public.seasonal_maintenance_reminders() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_execution_logs (workflow_id, organization_id, trigger_type, trigger_data, status)
  select w.id, w.organization_id, 'maintenance_due',
         jsonb_build_object('trigger_type', 'maintenance_due', 'client_id', c.id, 'seasonal', true),
         'pending'
  from public.automation_workflows w
  join public.profiles p on p.organization_id = w.organization_id
  join public.clients c on c.user_id = p.id
  where w.trigger_type = 'maintenance_due' and w.is_active and w.status = 'active'
    and w.trigger_config ->> 'seasonal' = 'true' and c.status = 'active'
    and not exists (select 1 from public.automation_execution_logs l
                    where l.workflow_id = w.id and l.trigger_data ->> 'client_id' = c.id
                      and l.created_at > now() - interval '60 days');
end
$$;
comment on function public.seasonal_maintenance_reminders() is
  'Replaced system (cron seasonal-maintenance-reminders): pending maintenance_due rows for every active client of organisations with a seasonal workflow.';

-- update-automation-analytics (hourly): adds the last hour's executions to
-- today's row, again on every run (docs/bug-classes.md, class 8)
create or replace function public.update_automation_analytics() returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_analytics as a (workflow_id, date, execution_count, success_count, failure_count,
                                               success_rate, avg_execution_time, total_execution_time)
  select l.workflow_id, current_date, count(*),
         count(*) filter (where l.status = 'completed'), count(*) filter (where l.status = 'failed'),
         round(100.0 * count(*) filter (where l.status = 'completed') / count(*), 2),
         avg(l.execution_time_ms), coalesce(sum(l.execution_time_ms), 0)
  from public.automation_execution_logs l
  where l.workflow_id is not null and l.created_at > now() - interval '1 hour'
  group by l.workflow_id
  on conflict (workflow_id, date) do update set
    execution_count = a.execution_count + excluded.execution_count,
    success_count = a.success_count + excluded.success_count,
    failure_count = a.failure_count + excluded.failure_count,
    success_rate = excluded.success_rate,
    avg_execution_time = excluded.avg_execution_time,
    total_execution_time = a.total_execution_time + excluded.total_execution_time,
    updated_at = now();
end
$$;
comment on function public.update_automation_analytics() is
  'Replaced system (cron update-automation-analytics): adds the last hour''s executions per workflow to today''s automation_analytics row.';

-- cleanup-automation-logs (Sundays 02:00): completed rows older than 90 days
create or replace function public.cleanup_automation_logs() returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_count integer;
begin
  delete from public.automation_execution_logs
  where status = 'completed' and created_at < now() - interval '90 days';
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.cleanup_automation_logs() is
  'Replaced system (cron cleanup-automation-logs): deletes completed execution logs older than 90 days.';
