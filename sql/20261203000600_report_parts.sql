-- issue 14 (the house): automation_report (from 20261202001400_rpc_speed.sql)
-- cut where a name explains a part; the reason beside
-- every function still over 80 lines of code, in its comment. Same answers,
-- same writes. Idempotent.
--
-- * The `where (select count(*) from dl) >= 0` the issue called a no-op
--   stays, with its reason beside it. It filters nothing (a count is never
--   negative) and changes no result: PostgreSQL runs a data-modifying
--   statement in WITH exactly once and to completion whether or not the
--   primary query reads it, and all sub-statements see one snapshot. What
--   it changes is when dl runs: read by the primary query, inside the
--   statement's plan; unread, after it. Measured in one run, alternated per
--   batch of 100 outcomes on the 1M-invoice bench database
--   (BenchmarkReportBodies, 60 batches x 5, 2026-12-03 11:40-11:42, load
--   1.1): without it the report takes 1.021, 1.027, 1.053, 1.070, 1.042 x
--   as long (median 1.042). The 20261202001400 body, before the parts below
--   were cut out, took 0.975, 0.990, 1.000, 1.001, 0.998 x (the parts cost
--   nothing measurable).
-- * The parts, SQL functions without SET clauses that the planner inlines
--   into the report's statement (no call per row; EXPLAIN VERBOSE shows
--   their expressions, TestReportPartsInlined keeps it so):
--   automation_report_outcomes (the outcomes typed, input order),
--   automation_outcome_rejection (not_found, stale_lease, invalid),
--   automation_outcome_due_at (when a retry or snooze is due again, before
--   the send window), automation_outcome_next_status and
--   automation_outcome_next_code (the status and error code an applied
--   outcome leaves), automation_outcome_error_message,
--   automation_report_deliveries (an outcome's deliveries typed) and
--   automation_reported (one answer). Each is the expression of the
--   20261202001400 definition, moved; the statement's CTEs, locks and
--   updates are as they were.
-- * "Long: <reason>." at the end of the comment of each function still
--   over 80 lines of code (TestSQLFunctionLength reads it): the claim, the
--   three set-based check bodies and the workflow rules document.

create or replace function public.automation_report_outcomes(p_outcomes jsonb)
returns table (n bigint, execution_id uuid, lease_token uuid, status text, error_code text, error_message text,
               step_index integer, snooze_until timestamptz, retry_after integer, deferred boolean,
               actions_executed integer, deliveries jsonb)
language sql stable as $$
  select t.ord, (t.o ->> 'execution_id')::uuid, (t.o ->> 'lease_token')::uuid,
         t.o ->> 'status', nullif(t.o ->> 'error_code', ''),
         nullif(t.o ->> 'error_message', ''),
         coalesce((t.o ->> 'step_index')::int, 0), (t.o ->> 'snooze_until')::timestamptz,
         nullif((t.o ->> 'retry_after_seconds')::int, 0),
         -- only a retry can be deferred; absent (old binaries) = a plain retry
         coalesce(t.o ->> 'status' = 'retry' and t.o -> 'deferred' = 'true'::jsonb, false),
         coalesce((t.o ->> 'actions_executed')::int, 0),
         case when jsonb_typeof(t.o -> 'deliveries') = 'array' then t.o -> 'deliveries' else '[]'::jsonb end
  from jsonb_array_elements(p_outcomes) with ordinality as t(o, ord)
$$;
comment on function public.automation_report_outcomes(jsonb) is
  'The outcomes of an automation_report call (a JSON array of automation.Outcome), typed, n = the position in the array (from 1): empty error_code and error_message as NULL, step_index and actions_executed 0 when absent, retry_after_seconds 0 as NULL, deferred only for a retry, deliveries [] unless an array. Raises on a malformed id, number or time. Inlined into automation_report.';

create or replace function public.automation_outcome_due_at(
  p_status text, p_snooze_until timestamptz, p_retry_after integer, p_deferred boolean,
  p_error_code text, p_deferrals integer, p_attempt integer)
returns timestamptz language sql volatile as $$
  select case
    when p_status = 'snoozed' then greatest(p_snooze_until, now())
    else now() + case
      when p_retry_after is not null then make_interval(secs => p_retry_after)
      -- cut by the function's deadline: due again at once (the next tick rings it)
      when p_deferred and p_error_code = 'deadline' then interval '0'
      when p_deferred then public.automation_deferral_backoff(p_deferrals + 1)
      else public.automation_backoff(p_attempt)
    end
  end
$$;
comment on function public.automation_outcome_due_at(text, timestamptz, integer, boolean, text, integer, integer) is
  'When a reported retry or snooze is due again, before the send window: a snooze at snooze_until (now if past); a retry after retry_after_seconds, at once when deferred for error_code deadline, after automation_deferral_backoff(deferrals + 1) when deferred, else after automation_backoff(attempt). Inlined into automation_report.';

create or replace function public.automation_outcome_next_status(
  p_status text, p_deferred boolean, p_deferrals integer, p_max_deferrals integer,
  p_attempt integer, p_max_attempts integer, p_deadline_at timestamptz, p_at timestamptz)
returns text language sql immutable as $$
  select case
    when p_status in ('completed', 'skipped', 'failed') then p_status
    when p_deferred and p_deferrals >= p_max_deferrals then 'failed'
    when p_status = 'retry' and not p_deferred and p_attempt >= p_max_attempts then 'failed'
    when p_deadline_at is not null and p_at > p_deadline_at then 'failed'
    else 'pending'
  end
$$;
comment on function public.automation_outcome_next_status(text, boolean, integer, integer, integer, integer, timestamptz, timestamptz) is
  'The status an applied outcome (p_status: completed, skipped, failed, retry, snoozed) leaves its execution in: a final status as reported; failed when a deferral passes max_deferrals, a retry has no attempt left, or the next attempt p_at passes the deadline; else pending. Inlined into automation_report.';

create or replace function public.automation_outcome_next_code(
  p_status text, p_error_code text, p_deferred boolean, p_deferrals integer, p_max_deferrals integer,
  p_attempt integer, p_max_attempts integer, p_deadline_at timestamptz, p_at timestamptz)
returns text language sql immutable as $$
  select case
    when p_status = 'failed' then coalesce(p_error_code, 'internal_error')
    -- completed keeps the engine's code (delivery_unknown: sent status uncertain); a clean completion clears it
    when p_status in ('completed', 'skipped') then p_error_code
    when p_deferred and p_deferrals >= p_max_deferrals then 'max_deferrals'
    when p_status = 'retry' and not p_deferred and p_attempt >= p_max_attempts then 'max_attempts'
    when p_status in ('retry', 'snoozed') and p_deadline_at is not null and p_at > p_deadline_at then 'expired'
    when p_status = 'retry' then coalesce(p_error_code, 'provider_unavailable')
  end
$$;
comment on function public.automation_outcome_next_code(text, text, boolean, integer, integer, integer, integer, timestamptz, timestamptz) is
  'The error code an applied outcome leaves on its execution, beside automation_outcome_next_status: failed keeps its code (internal_error when none), completed and skipped theirs (NULL: a clean completion), then max_deferrals, max_attempts, expired, a retry''s own code (provider_unavailable when none); a snooze none. Inlined into automation_report.';

create or replace function public.automation_outcome_error_message(
  p_next_code text, p_error_code text, p_error_message text, p_deferrals integer)
returns text language sql stable as $$
  select case when p_next_code is null then null
              when p_next_code = 'expired' and p_error_message is null then 'the next attempt would pass the deadline'
              when p_next_code = 'max_deferrals' then left(format('deferred %s times (automation_settings.max_deferrals); last: %s',
                p_deferrals + 1, coalesce(p_error_code, '?') || coalesce(': ' || p_error_message, '')), 500)
              else p_error_message end
$$;
comment on function public.automation_outcome_error_message(text, text, text, integer) is
  'The error message an applied outcome leaves beside the code p_next_code (automation_outcome_next_code): none without a code; why for expired (when the outcome gave none) and max_deferrals (with the last reported code and message, at most 500 characters); else the reported message. Inlined into automation_report.';

create or replace function public.automation_outcome_rejection(
  p_cur_id uuid, p_cur_status text, p_cur_lease_token uuid, p_lease_token uuid, p_status text, p_snooze_until timestamptz)
returns text language sql immutable as $$
  select case
    when p_cur_id is null then 'not_found'
    when p_cur_status <> 'running' or p_cur_lease_token is distinct from p_lease_token then 'stale_lease'
    when p_status is null or p_status not in ('completed', 'skipped', 'failed', 'retry', 'snoozed')
      or (p_status = 'snoozed' and p_snooze_until is null) then 'invalid'
  end
$$;
comment on function public.automation_outcome_rejection(uuid, text, uuid, uuid, text, timestamptz) is
  'Why automation_report does not apply an outcome (status p_status, lease p_lease_token) to the execution it locked (p_cur_*; NULL id: none): not_found, stale_lease (not running, or under another lease), invalid (no status, an unknown one, or a snooze without snooze_until); NULL: it applies. Inlined into automation_report.';

create or replace function public.automation_report_deliveries(p_deliveries jsonb)
returns table (ikey text, status text, provider text, provider_message_id text, error_code text, error_message text,
               retryable boolean)
language sql immutable as $$
  select dd ->> 'idempotency_key', dd ->> 'status', dd ->> 'provider', dd ->> 'provider_message_id',
         dd ->> 'error_code', dd ->> 'error_message', (dd ->> 'retryable')::boolean
  from jsonb_array_elements(p_deliveries) dd
$$;
comment on function public.automation_report_deliveries(jsonb) is
  'The deliveries of one outcome of an automation_report call (its deliveries array of automation.DeliveryResult), typed: idempotency key, status, provider, provider_message_id, error_code, error_message, retryable. Raises on a retryable that is not a boolean. Inlined into automation_report.';

create or replace function public.automation_reported(
  p_execution_id uuid, p_applied boolean, p_new_status text, p_cur_status text, p_reason text)
returns jsonb language sql stable as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'execution_id', p_execution_id,
    'applied', p_applied,
    'status', coalesce(p_new_status, p_cur_status, ''),
    'reason', case when not p_applied then coalesce(p_reason, 'stale_lease') end))
$$;
comment on function public.automation_reported(uuid, boolean, text, text, text) is
  'One automation.Reported answer of automation_report: execution_id, applied, status (the new one when applied, else the execution''s, '''' when none), reason when not applied (p_reason: automation_outcome_rejection''s, stale_lease when none: the lease moved on before the update). Inlined into automation_report.';

create or replace function public.automation_report(p_outcomes jsonb)
returns jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_out jsonb;
  v_max_deferrals integer := public.automation_max_deferrals();
begin
  if p_outcomes is null or jsonb_typeof(p_outcomes) <> 'array' then
    raise exception 'automation_report: p_outcomes must be a JSON array' using errcode = '22023';
  end if;

  -- one statement: lock, judge against the lease, finish deliveries, move executions
  with inp as (
    select * from public.automation_report_outcomes(p_outcomes)
  ), cur as (
    select e.ctid as row_ctid, e.id, e.status, e.lease_token, e.attempt, e.max_attempts, e.deferrals, e.deadline_at, e.organization_id
    from public.automation_execution_logs e
    where e.id = any (array(select execution_id from inp where execution_id is not null))
    order by e.id
    for update
  ), judged as (
    select inp.*, cur.row_ctid, cur.status as cur_status, cur.attempt, cur.max_attempts, cur.deferrals, cur.deadline_at, cur.organization_id,
      coalesce(public.automation_outcome_rejection(cur.id, cur.status, cur.lease_token, inp.lease_token, inp.status, inp.snooze_until),
        -- the same execution twice in one report: only the first counts
        case when row_number() over (partition by inp.execution_id order by inp.n) > 1 then 'invalid' end) as reason
    from inp left join cur on cur.id = inp.execution_id
  ), ok as (
    -- the send window is read only for what becomes due again (retry,
    -- snooze), once per such row; a completion needs no zone
    select j.*, v_max_deferrals as max_deferrals, case
        when j.status in ('retry', 'snoozed') then (
          select public.automation_next_attempt(
            public.automation_outcome_due_at(j.status, j.snooze_until, j.retry_after, j.deferred, j.error_code, j.deferrals, j.attempt),
            -- an unusable zone (NULL, not an IANA name) snaps in UTC rather than failing the batch
            coalesce(public.automation_effective_timezone(o.timezone), 'UTC'), o.send_window_start, o.send_window_end, j.deadline_at)
          from (select 1) one
          left join public.automation_src_organizations o on o.id = j.organization_id
          limit 1)
      end as at
    from judged j
    where j.reason is null
  ), nxt as (
    select ok.*,
      public.automation_outcome_next_status(ok.status, ok.deferred, ok.deferrals, ok.max_deferrals,
        ok.attempt, ok.max_attempts, ok.deadline_at, ok.at) as new_status,
      public.automation_outcome_next_code(ok.status, ok.error_code, ok.deferred, ok.deferrals, ok.max_deferrals,
        ok.attempt, ok.max_attempts, ok.deadline_at, ok.at) as new_code
    from ok
  ), dl as (
    -- finish the deliveries listed (a sent delivery is never downgraded)
    update public.automation_deliveries d set
      status = x.status,
      sent_at = case when x.status = 'sent' then coalesce(d.sent_at, now()) else d.sent_at end,
      provider = coalesce(nullif(x.provider, ''), d.provider),
      provider_message_id = coalesce(nullif(x.provider_message_id, ''), d.provider_message_id),
      error_code = nullif(x.error_code, ''), error_message = nullif(x.error_message, ''),
      retryable = coalesce(x.retryable, false)
    from (
      select distinct on (r.ikey) ok.execution_id, r.*
      from ok cross join lateral public.automation_report_deliveries(ok.deliveries) r
      order by r.ikey
    ) x
    where d.idempotency_key = x.ikey and d.execution_id = x.execution_id
      and x.status in ('sent', 'failed', 'unknown') and d.status <> 'sent'
    returning 1
  ), upd as (
    update public.automation_execution_logs e set updated_at = now(),
      status = nxt.new_status,
      error_code = nxt.new_code,
      error_message = public.automation_outcome_error_message(nxt.new_code, nxt.error_code, nxt.error_message, nxt.deferrals),
      actions_count = e.actions_count + greatest(nxt.actions_executed, 0),
      lease_token = null, lease_expires_at = null,
      completed_at = case when nxt.new_status in ('completed', 'skipped', 'failed') then now() end,
      next_attempt_at = case when nxt.new_status = 'pending' then nxt.at else e.next_attempt_at end,
      dispatched_at = case when nxt.new_status = 'pending' then null else e.dispatched_at end,
      step_index = case when nxt.status = 'snoozed' then greatest(nxt.step_index, 0) else e.step_index end,
      -- neither a delay nor a deferral consumes an attempt
      attempt = case when (nxt.status = 'snoozed' and nxt.new_status = 'pending') or nxt.deferred
                     then greatest(e.attempt - 1, 0) else e.attempt end,
      deferrals = e.deferrals + nxt.deferred::int
    from nxt
    -- the row locked by cur, by its ctid: one TID lookup each, whatever the
    -- statistics say about running rows (no scan of every running execution)
    where e.ctid = nxt.row_ctid and e.id = nxt.execution_id and e.status = 'running' and e.lease_token = nxt.lease_token
    returning nxt.n, e.status
  )
  select coalesce(jsonb_agg(public.automation_reported(j.execution_id, upd.n is not null, upd.status, j.cur_status, j.reason)
    order by j.n), '[]'::jsonb) into v_out
  from judged j
  left join upd on upd.n = j.n
  -- filters nothing (dl runs anyway), but read here dl runs inside the
  -- statement's plan, not after it: measured faster (BenchmarkReportBodies)
  where (select count(*) from dl) >= 0;
  return v_out;
end
$$;
comment on function public.automation_report(jsonb) is
  'Applies outcomes (automation.Outcome[]) fenced by lease token: finishes listed deliveries, then moves each execution to completed/skipped/failed, or pending: a retry spends its attempt (backoff + jitter, or retry_after_seconds; failed max_attempts when none is left); a retry with deferred true (infrastructure trouble) gives the attempt back and counts a deferral (retry_after_seconds, at once for error_code deadline, else automation_deferral_backoff; failed max_deferrals past automation_settings.max_deferrals); a snooze gives the attempt back; all snapped into the send window of the organisation''s zone (UTC when that is unusable), failed expired when that passes the deadline. Counters and analytics follow once (trigger). Answers automation.Reported[] in input order; a stale token changes nothing (stale_lease).';

revoke all on function public.automation_report_outcomes(jsonb),
  public.automation_outcome_rejection(uuid, text, uuid, uuid, text, timestamptz),
  public.automation_outcome_due_at(text, timestamptz, integer, boolean, text, integer, integer),
  public.automation_outcome_next_status(text, boolean, integer, integer, integer, integer, timestamptz, timestamptz),
  public.automation_outcome_next_code(text, text, boolean, integer, integer, integer, integer, timestamptz, timestamptz),
  public.automation_outcome_error_message(text, text, text, integer),
  public.automation_report_deliveries(jsonb),
  public.automation_reported(uuid, boolean, text, text, text),
  public.automation_report(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_report(jsonb) to service_role;

-- The reason beside each function still over 80 lines of code: the
-- comment's text as it was, then "Long: <reason>." (TestSQLFunctionLength).
comment on function public.automation_claim_rows(text, uuid[], integer, integer) is
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution, its workflow as dueflow runs it (the spec: trigger_type, trigger_config, steps, is_active = the spec''s active), every subject, client, invoice and job id as a JSON string (ids read from the source views as text); the workflow''s message_class (automation_message_class) and, for a client, consent: {opted_out: channels the client opted out of (non-transactional), blocked: [{channel, address, reason}] the organisation''s suppressions that may be the client''s addresses, sms_told: numbers told how to opt out in the last 30 days}. Raises when a source view cannot deliver a row (automation_claim then claims one by one). Each organisation document carries locale and address (the view''s optional columns, '''' when absent), each invoice pay_url (likewise), and scheduled executions figures (open and overdue invoices, their balance per currency, reminders sent on the organisation''s previous local day); other executions figures null. Long: hot-path RPC, one set-based statement per claim (measured by the RPC benchmarks).';
comment on function public.automation_check_invoices_run(timestamptz, uuid, uuid[]) is
  'Body of check_overdue_invoices for organisation p_only (NULL: all) except p_except: one execution per (invoice, due date, latest reminder day reached) of valid active invoice_overdue workflows of organisations with a usable zone; a newer reminder skips the older pending ones of the same workflow and invoice (superseded). Steady state reads, by one range scan over every organisation each, the invoices that reached a reminder day since the last run (per reminder day) or changed since it (automation_check_marks, automation_check_state); no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read the workflow''s open invoices in full. Returns the number created. Long: one set-based statement, its CTEs sharing one snapshot and its plan fences (measured by the tick benchmark).';
comment on function public.automation_check_maintenance_run(timestamptz, uuid, uuid[]) is
  'Body of the maintenance_due part of check_maintenance_reminders for organisation p_only (NULL: all) except p_except: one execution per client and last completed service job (ties: the highest id) once months_after_service have passed (in UTC) and no visit is booked; a new one skips the older pending ones of the same workflow and client (superseded). Steady state reads, by one range scan over every organisation each, the services whose due moment fell in (last run, p_now] and the clients of jobs changed since the last run (automation_check_marks, automation_check_state), and the clients of its pending reminders; no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read every client of the workflow. Returns the number created. Long: one set-based statement, its CTEs sharing one snapshot and its plan fences (measured by the tick benchmark).';
comment on function public.automation_check_stale_jobs_run(timestamptz, uuid, uuid[]) is
  'Body of the stale_job part of check_automation_triggers for organisation p_only (NULL: all) except p_except: one execution per job and last activity once days_inactive days (in UTC) have passed; a new one skips the older pending ones of the same workflow and job (superseded). Steady state reads, by one range scan over every organisation per distinct days_inactive, the jobs whose last activity + days_inactive fell in (last run, p_now] (automation_check_marks, automation_check_state), and the jobs of the workflow''s pending reminders; no state, a changed trigger_config or time zone, and the daily pass (automation_daily_pass_offset) read every job of the workflow''s statuses. Returns the number created. Long: one set-based statement, its CTEs sharing one snapshot and its plan fences (measured by the tick benchmark).';
comment on function public.automation_workflow_rules() is
  'The workflow rules document (trigger types and their trigger_config keys, step types and their fields, bounds, template variables), equal to shared/workflow/rules.json. automation_workflow_problems() interprets it. Long: data, not logic: the JSON document equal to shared/workflow/rules.json.';
