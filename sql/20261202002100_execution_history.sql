-- issue 13, the console's timeline of one execution: every dispatch, claim
-- and report, not only the latest. automation_execution_logs keeps the
-- latest dispatch, claim and lease of an execution (a retried execution
-- shows one claim, its first attempt's error overwritten); from now on each
-- move of a row is also appended to automation_execution_events by one
-- statement-level trigger (transition tables, one set-based INSERT per
-- statement, whatever path made the move: claim, report, dispatch, lease
-- expiry, operator). The rows carry ids, counts, codes and the error
-- message the execution row already holds (masked by the paths that write
-- it): never a recipient or a message body.

create table if not exists public.automation_execution_events (
  id bigint generated always as identity primary key,
  execution_id uuid not null references public.automation_execution_logs (id) on delete cascade,
  -- (the replaced system's history rows may lack one: NULL, read by no member)
  organization_id uuid,
  at timestamptz not null default now(),
  kind text not null check (kind in ('dispatched', 'claimed', 'reported', 'snoozed', 'lease_expired', 'status')),
  attempt integer,
  step_index integer,
  status text,
  outcome text,
  error_code text,
  error_message text,
  lease_expires_at timestamptz,
  detail jsonb not null default '{}'
);
-- the timeline reads one execution's events in order; the cascade of the
-- cleanup's delete of an execution finds them by it
create index if not exists automation_execution_events_execution_idx
  on public.automation_execution_events (execution_id, at);
-- the cleanup's retention of events of executions it keeps: append-only,
-- `at` grows with the heap, a few pages of BRIN bound the range delete
create index if not exists automation_execution_events_at_brin
  on public.automation_execution_events using brin (at);

alter table public.automation_execution_events enable row level security;
select public.automation_member_read_policy('public.automation_execution_events'::regclass);
revoke all on public.automation_execution_events from public, anon, authenticated;
grant select on public.automation_execution_events to authenticated;
grant all on public.automation_execution_events to service_role;
comment on table public.automation_execution_events is
  'Append-only history of each execution (automation_execution_logs keeps only the latest dispatch, claim and lease): dispatched, claimed (attempt, lease_expires_at), reported (outcome completed, skipped, failed, retry, deferred; error code and message), snoozed (step_index = the step it resumes at), lease_expired, status (any other move: expired before running, skipped by the dispatcher, cancelled, reopened by a retry). Written by the trigger automation_execution_logs_events; deleted with the execution, and by automation_cleanup after its retention. Members read their organisations'' rows.';

-- One INSERT ... SELECT per UPDATE statement: each row's old and new
-- version joined by id, at most one event per row (no statement dispatches
-- and claims or claims and reports the same row), rows whose status,
-- lease, dispatch, attempt and step did not change give none.
create or replace function public.automation_execution_events_record() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_execution_events
    (execution_id, organization_id, kind, attempt, step_index, status, outcome, error_code, error_message,
     lease_expires_at, detail)
  select m.id, m.organization_id, m.kind, m.attempt, m.step_index, m.status,
    m.outcome, m.error_code, m.error_message, m.lease_expires_at,
    case m.kind
      when 'dispatched' then jsonb_build_object('dispatch', m.dispatch_count)
      when 'snoozed' then jsonb_build_object('from_step', m.old_step, 'next_attempt_at', m.next_attempt_at)
      when 'claimed' then '{}'::jsonb
      else jsonb_strip_nulls(jsonb_build_object('from', m.old_status,
        'next_attempt_at', case when m.status = 'pending' then m.next_attempt_at end,
        'deferrals', case when m.outcome = 'deferred' then m.deferrals end))
    end
  from (
    select n.id, n.organization_id, n.status, n.dispatch_count, n.next_attempt_at, n.deferrals,
      o.status as old_status, o.step_index as old_step,
      case when k.kind = 'claimed' then n.lease_expires_at end as lease_expires_at,
      -- a report's attempt is the one that ran (a snooze or deferral gives it back)
      case when o.status = 'running' then o.attempt else n.attempt end as attempt,
      n.step_index, k.kind,
      case when k.kind in ('reported', 'snoozed') then
        case when n.status <> 'pending' then n.status
             when n.deferrals > o.deferrals then 'deferred'
             when k.kind = 'snoozed' then 'snoozed'
             else 'retry' end
      end as outcome,
      case when k.kind not in ('dispatched', 'claimed') then n.error_code end as error_code,
      case when k.kind not in ('dispatched', 'claimed') then left(n.error_message, 500) end as error_message
    from new_rows n
    join old_rows o on o.id = n.id
    cross join lateral (select case
        when n.status = 'running' then
          case when o.status is distinct from 'running' or n.lease_token is distinct from o.lease_token then 'claimed' end
        when o.status = 'running' then
          case when n.error_message = 'lease expired without a report'
                    and n.error_code in ('lease_expired', 'max_attempts') then 'lease_expired'
               when n.status = 'pending' and n.deferrals = o.deferrals
                    and (n.step_index <> o.step_index or n.attempt < o.attempt) then 'snoozed'
               else 'reported' end
        when n.status is distinct from o.status then 'status'
        when n.dispatched_at is not null and n.dispatched_at is distinct from o.dispatched_at then 'dispatched'
      end as kind) k
    where k.kind is not null
  ) m
  order by m.id;
  return null;
end
$$;
comment on function public.automation_execution_events_record() is
  'Trigger (statement level, after update of automation_execution_logs): appends one automation_execution_events row per execution whose dispatch, claim, report or status moved in the statement; updates that move none of them append nothing.';
revoke all on function public.automation_execution_events_record() from public, anon, authenticated;

drop trigger if exists automation_execution_logs_events on public.automation_execution_logs;
create trigger automation_execution_logs_events after update on public.automation_execution_logs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.automation_execution_events_record();

-- automation_cleanup as in 20261129000700, plus: events older than
-- p_keep_executions of the executions it keeps (the events of those it
-- deletes go with them: the cascade finds them by
-- automation_execution_events_execution_idx), and operator actions older
-- than p_keep_executions (never cleaned before).
create or replace function public.automation_cleanup(
  p_keep_cron_runs interval default interval '7 days',
  p_keep_executions interval default interval '90 days')
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_runs integer := 0;
  v_execs integer := 0;
begin
  if to_regclass('cron.job_run_details') is not null then
    execute 'delete from cron.job_run_details where coalesce(end_time, start_time) < now() - $1' using p_keep_cron_runs;
    get diagnostics v_runs = row_count;
  end if;
  -- a finished execution is also the occurrence key that stops the checks
  -- from creating its reminder again: delete it only when that occurrence
  -- cannot recur (a past scheduled run, an appointment whose start has
  -- passed, or a newer occurrence of the same workflow and subject exists,
  -- e.g. a later reminder day of the invoice, a later stale spell of the
  -- job). The newest invoice, maintenance and stale-job reminder per subject
  -- stays: deleting it would send that reminder again on the next check.
  -- (set-based: one pass for the newest occurrence per workflow and subject)
  with old as (
    select e.id, e.workflow_id, e.subject_id, e.created_at, e.trigger_type, e.deadline_at
    from public.automation_execution_logs e
    where e.status in ('completed', 'failed', 'skipped', 'cancelled')
      and e.completed_at < now() - p_keep_executions
  ), newest as (
    select n.workflow_id, n.subject_id, max(n.created_at) as created_at
    from public.automation_execution_logs n
    where (n.workflow_id, n.subject_id) in (select o.workflow_id, o.subject_id from old o)
    group by n.workflow_id, n.subject_id
  ), gone as (
    select o.id from old o
    left join newest m on m.workflow_id = o.workflow_id and m.subject_id = o.subject_id
    where o.trigger_type = 'scheduled'
       or (o.trigger_type = 'appointment' and o.deadline_at < now())
       or o.created_at < m.created_at
  )
  delete from public.automation_execution_logs e
  using gone where e.id = gone.id;
  get diagnostics v_execs = row_count;
  -- the history of the executions kept (an occurrence key kept for years, a
  -- row re-dispatched for months) and the operator actions: the same
  -- retention (not counted in the result)
  delete from public.automation_execution_events ev where ev.at < now() - p_keep_executions;
  delete from public.automation_operator_actions a where a.at < now() - p_keep_executions;
  -- pg_net owns this table and expires it itself (pg_net.ttl); where this
  -- role may not delete from it, skip it rather than roll back the cleanup
  if to_regclass('net._http_response') is not null then
    begin
      execute 'delete from net._http_response where created < now() - $1' using p_keep_cron_runs;
    exception when insufficient_privilege then
      raise notice 'automation_cleanup: no privilege on net._http_response; left to pg_net.ttl';
    end;
  end if;
  return v_runs + v_execs;
end
$$;
comment on function public.automation_cleanup(interval, interval) is
  'Daily housekeeping: deletes cron.job_run_details older than p_keep_cron_runs (by end_time, or start_time for runs interrupted without one), finished executions (with their deliveries and events) older than p_keep_executions whose occurrence cannot recur (scheduled runs, past appointments, occurrences with a newer one of the same workflow and subject; the newest per subject stays as the key that prevents a duplicate reminder), execution events and operator actions older than p_keep_executions, and old pg_net responses. Returns rows deleted (runs + executions).';
revoke all on function public.automation_cleanup(interval, interval)
  from public, anon, authenticated;
grant execute on function public.automation_cleanup(interval, interval)
  to service_role;
