-- issue 13, the console's timeline of one execution: every claim and
-- report, not only the latest. automation_execution_logs keeps the latest
-- dispatch, claim and lease of an execution (a retried execution shows one
-- claim, its first attempt's error overwritten); from now on each move of a
-- row out of running (a report, a snooze, a lease that expired, a cancel)
-- and each other status move is also appended to
-- automation_execution_events, by one statement-level trigger (transition
-- tables, one set-based INSERT per statement, whatever path made the move).
--
-- One row per attempt, not one per claim and one per report: the row that
-- ends an attempt carries its claim (claimed_at = started_at, attempt,
-- lease_expires_at) and the dispatch that led to it (dispatched_at,
-- dispatch_count) from the execution's old version. The claim, the hot
-- path's other half, writes no event (the attempt running now is the
-- execution row's own latest claim), and a dispatch none (dispatch_count
-- says how many dispatches went unclaimed between two claims). Measured:
-- a row per claim and per dispatch cost 6-27 % more Postgres CPU per
-- execution in the engine pipeline benchmark (sql/README.md).
--
-- The rows carry ids, counts, codes and the error message the execution row
-- already holds (masked by the paths that write it): never a recipient or a
-- message body. An execution has at most one row per attempt, snooze,
-- deferral (automation_settings.max_deferrals) and operator move: they go
-- with it (on delete cascade; automation_cleanup).

create table if not exists public.automation_execution_events (
  id bigint generated always as identity primary key,
  execution_id uuid not null references public.automation_execution_logs (id) on delete cascade,
  -- (the replaced system's history rows may lack one: NULL, read by no member)
  organization_id uuid,
  at timestamptz not null default now(),
  kind text not null check (kind in ('reported', 'snoozed', 'lease_expired', 'status')),
  attempt integer,
  step_index integer,
  status text,
  outcome text,
  error_code text,
  error_message text,
  claimed_at timestamptz,
  lease_expires_at timestamptz,
  dispatched_at timestamptz,
  dispatch_count integer,
  detail jsonb not null default '{}'
);
-- the timeline reads one execution's events in order; the cascade of the
-- cleanup's delete of an execution finds them by it
create index if not exists automation_execution_events_execution_idx
  on public.automation_execution_events (execution_id, at);

alter table public.automation_execution_events enable row level security;
select public.automation_member_read_policy('public.automation_execution_events'::regclass);
revoke all on public.automation_execution_events from public, anon, authenticated;
grant select on public.automation_execution_events to authenticated;
grant all on public.automation_execution_events to service_role;
comment on table public.automation_execution_events is
  'Append-only history of each execution (automation_execution_logs keeps only the latest dispatch, claim and lease): one row per attempt that ended (kind reported: outcome completed, skipped, failed, retry, deferred, with error code and message; snoozed: step_index = the step it resumes at; lease_expired), carrying its claim (claimed_at, attempt, lease_expires_at) and the dispatch before it (dispatched_at, dispatch_count), and one per other status move (kind status: expired before running, skipped by the dispatcher, cancelled, reopened by a retry). Written by the trigger automation_execution_logs_events; deleted with the execution. Members read their organisations'' rows.';

-- One INSERT ... SELECT per UPDATE statement: each row's old and new
-- version joined by id, at most one event per row; a claim, a dispatch and
-- an update that moves no status give none.
-- (the transition tables have no statistics and no index: the planner may
-- nest-loop them, quadratic in the statement's rows, 26 s for a dispatch of
-- 10,000; a hash join reads each once)
create or replace function public.automation_execution_events_record() returns trigger
language plpgsql security definer set search_path = public, pg_temp
set enable_nestloop = off set enable_mergejoin = off as $$
begin
  insert into public.automation_execution_events
    (execution_id, organization_id, kind, attempt, step_index, status, outcome, error_code, error_message,
     claimed_at, lease_expires_at, dispatched_at, dispatch_count, detail)
  select n.id, n.organization_id, k.kind,
    -- an attempt's: the one that ran (a snooze or deferral gives it back)
    case when o.status = 'running' then o.attempt else n.attempt end,
    n.step_index, n.status,
    case when k.kind in ('reported', 'snoozed') then
      case when n.status <> 'pending' then n.status
           when n.deferrals > o.deferrals then 'deferred'
           when k.kind = 'snoozed' then 'snoozed'
           else 'retry' end
    end,
    n.error_code, left(n.error_message, 500),
    case when o.status = 'running' then o.started_at end,
    case when o.status = 'running' then o.lease_expires_at end,
    case when o.status = 'running' then o.dispatched_at end,
    case when o.status = 'running' then o.dispatch_count end,
    jsonb_strip_nulls(jsonb_build_object('from', o.status,
      'from_step', case when k.kind = 'snoozed' then o.step_index end,
      'next_attempt_at', case when n.status = 'pending' then n.next_attempt_at end,
      'deferrals', case when n.deferrals > o.deferrals then n.deferrals end))
  from new_rows n
  join old_rows o on o.id = n.id
  cross join lateral (select case
      when n.status is not distinct from o.status or n.status = 'running' then null
      when o.status = 'running' and n.status <> 'cancelled' then
        case when n.error_message = 'lease expired without a report'
                  and n.error_code in ('lease_expired', 'max_attempts') then 'lease_expired'
             when n.status = 'pending' and n.deferrals = o.deferrals
                  and (n.step_index <> o.step_index or n.attempt < o.attempt) then 'snoozed'
             else 'reported' end
      else 'status'
    end as kind) k
  where k.kind is not null
  order by n.id;
  return null;
end
$$;
comment on function public.automation_execution_events_record() is
  'Trigger (statement level, after update of automation_execution_logs): appends one automation_execution_events row per execution whose status moved in the statement (an attempt that ended, with its claim and dispatch; any other move); claims, dispatches and updates that move no status append nothing.';
revoke all on function public.automation_execution_events_record() from public, anon, authenticated;

drop trigger if exists automation_execution_logs_events on public.automation_execution_logs;
create trigger automation_execution_logs_events after update on public.automation_execution_logs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.automation_execution_events_record();

-- automation_cleanup as in 20261129000700 (the events of the executions it
-- deletes go with them: the cascade finds them by
-- automation_execution_events_execution_idx), plus operator actions older
-- than p_keep_executions (never cleaned before; few rows: a scan).
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
  -- who did what: the same retention (not counted in the result)
  delete from public.automation_operator_actions a where a.at < now() - p_keep_executions;
  -- parked delivery events whose message id is known by now (the provider
  -- events' own calls sweep too; this covers a quiet day)
  perform public.automation_sweep_parked_provider_events(10000);
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
  'Daily housekeeping: deletes cron.job_run_details older than p_keep_cron_runs (by end_time, or start_time for runs interrupted without one), finished executions (with their deliveries and events) older than p_keep_executions whose occurrence cannot recur (scheduled runs, past appointments, occurrences with a newer one of the same workflow and subject; the newest per subject stays as the key that prevents a duplicate reminder), operator actions older than p_keep_executions, and old pg_net responses; applies parked provider events whose message id is known by now. Returns rows deleted (runs + executions).';
revoke all on function public.automation_cleanup(interval, interval)
  from public, anon, authenticated;
grant execute on function public.automation_cleanup(interval, interval)
  to service_role;

-- identity sequences: the tables are service_role's only, so are their
-- sequences (Supabase's default privileges grant them to anon and
-- authenticated)
revoke all on sequence public.automation_execution_events_id_seq, public.automation_operator_actions_id_seq
  from public, anon, authenticated;
