-- issue 14 (the house): the dispatcher split into single-purpose functions
-- that process_pending_automations() calls in order, and the action list as
-- one table.
--
-- * automation_actions: the actions (one function each) and the trigger
--   types each one executes; SQL reads it (automation_action_for, the
--   dispatcher's warning) and shared/automation.Actions equals its rows
--   (test). The job-reminder skip names send-reminder as a constant for
--   the due index (a test keeps it the table's action of the job types), as
--   the check bodies (not redefined here) do for the rows they insert. The
--   check constraints of automation_execution_logs.action and
--   automation_endpoints.action keep their literal lists (a check cannot
--   read a table; a foreign key would cost every execution insert a lookup).
-- * process_pending_automations(), same signature, answer and order of
--   work: automation_rescue_leases, automation_fail_unrunnable,
--   automation_skip_settled and automation_skip_obsolete_jobs (each in its
--   own subtransaction, dispatch_error when it fails, as before),
--   automation_expire_due, automation_ready_actions, automation_dispatch_due
--   (automation_post_batch per batch). The statements are the earlier ones
--   (20261202000800), moved: set-based, on the same indexes. The steps have
--   no SET clause (a GUC save and restore per call): they qualify every
--   name and run inside the dispatcher's pinned search_path; the
--   dispatcher calls them in assignments (simple expressions, no query
--   each), so the split costs the tick next to nothing.
-- * automation_register_endpoint reads the table too: 20261203000200.

-- The actions ---------------------------------------------------------------

create table if not exists public.automation_actions (
  action text primary key check (action ~ '^[a-z][a-z0-9-]*$'),
  trigger_types text[] not null default '{}',
  position integer not null default 0
);
comment on table public.automation_actions is
  'The actions dueflow dispatches (one deployed function each, automation_endpoints.action) and the workflow trigger types whose executions each one runs (a trigger type in one action only), listed in position order. Seeded by 20261203000100_dispatch_split.sql; equals shared/automation.Actions (test).';
alter table public.automation_actions enable row level security;
revoke all on public.automation_actions from public, anon, authenticated;
grant all on public.automation_actions to service_role;

insert into public.automation_actions as a (action, trigger_types, position) values
  ('send-reminder', '{maintenance_due,appointment,stale_job}', 1),
  ('invoice-reminder', '{invoice_overdue}', 2),
  ('run-workflow', '{scheduled}', 3)
on conflict (action) do update set trigger_types = excluded.trigger_types, position = excluded.position
  where (a.trigger_types, a.position) is distinct from (excluded.trigger_types, excluded.position);

create or replace function public.automation_action_for(p_trigger_type text) returns text
language sql stable as $$
  -- plain SQL without SET clauses, so that the planner inlines it
  select a.action from public.automation_actions a where p_trigger_type = any (a.trigger_types)
$$;
comment on function public.automation_action_for(text) is
  'The action (function) that executes a workflow of the given trigger type (automation_actions); NULL for an unknown type.';

-- The dispatcher's steps ----------------------------------------------------

create or replace function public.automation_rescue_leases() returns integer
language plpgsql as $$
declare
  v_count integer;
begin
  -- expired leases: back to pending (the attempt stays consumed), or failed
  -- when no attempt is left (automation_execution_logs_lease_idx)
  update public.automation_execution_logs e set updated_at = now(),
    status = case when e.attempt >= e.max_attempts then 'failed' else 'pending' end,
    error_code = case when e.attempt >= e.max_attempts then 'max_attempts' else 'lease_expired' end,
    error_message = 'lease expired without a report',
    completed_at = case when e.attempt >= e.max_attempts then now() end,
    lease_token = null, lease_expires_at = null, dispatched_at = null,
    next_attempt_at = greatest(e.next_attempt_at, now())
  where e.status = 'running' and e.lease_expires_at < now();
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.automation_rescue_leases() is
  'Step 1 of process_pending_automations: running executions whose lease expired go back to pending (lease_expired; the attempt stays consumed), or fail (max_attempts) when no attempt is left. Returns the number of rows moved.';

create or replace function public.automation_fail_unrunnable() returns integer
language plpgsql as $$
declare
  v_count integer;
begin
  -- the few unready workflows first, then their due pending rows by index
  update public.automation_execution_logs e set updated_at = now(),
    status = 'failed', error_code = 'invalid_workflow', completed_at = now(),
    error_message = left('the workflow cannot run: '
      || array_to_string(array(select public.automation_mask_problem(p) from unnest(u.problems) p), '; '), 500)
  from public.automation_workflows_unready() u
  where not coalesce(u.spec -> 'runnable' = 'true'::jsonb, false)
    and e.workflow_id = u.id and e.status = 'pending' and e.next_attempt_at <= now();
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.automation_fail_unrunnable() is
  'Step 2 of process_pending_automations: due executions of a workflow dueflow can no longer run (the app changed it; its spec is not runnable) fail as invalid_workflow with its masked problems, never rung. Returns the number failed.';

create or replace function public.automation_skip_settled() returns integer
language plpgsql as $$
declare
  v_count integer := 0;
  v_state text;
  v_msg text;
begin
  -- reads the adopter's invoices view: its own subtransaction, so a view
  -- that fails on some row leaves this skip out, never the dispatch
  begin
    update public.automation_execution_logs e set updated_at = now(),
      status = 'skipped', error_code = 'invoice_settled',
      error_message = 'invoice paid, cancelled, void or without balance before the reminder ran', completed_at = now()
    from public.automation_src_invoices i
    where e.status = 'pending' and e.subject_type = 'invoice' and e.next_attempt_at <= now()
      and i.id::text = e.subject_id and i.organization_id = e.organization_id
      and (i.status in ('paid', 'cancelled', 'void') or i.balance <= 0);
    get diagnostics v_count = row_count;
    perform public.automation_dispatch_step_done('invoice_settled');
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    perform public.automation_dispatch_step_failed('invoice_settled', v_state, v_msg);
    return 0;
  end;
  return v_count;
end
$$;
comment on function public.automation_skip_settled() is
  'Step 3 of process_pending_automations: due invoice reminders whose invoice was paid, cancelled, voided or has no balance left are skipped (invoice_settled; the function re-checks at claim time too). In its own subtransaction: a failure of the invoices view is recorded (dispatch_error, automation_dispatch_step_failed) and the step left out of the run. Returns the number skipped.';

create or replace function public.automation_obsolete_job_reminders()
returns table (id uuid, code text, msg text)
language sql stable as $$
  -- plain SQL without SET clauses, so that the planner inlines it: due job
  -- reminders whose premise no longer holds (appointment moved or no longer
  -- scheduled; stale job with activity since or out of its statuses;
  -- maintenance after the client's next service was done or booked)
  select e2.id,
    case when j.id is null or j.status = 'cancelled' then 'subject_gone' else 'superseded' end,
    case
      when j.id is null then 'the job no longer exists'
      when j.status = 'cancelled' then 'the job was cancelled'
      when e2.trigger_type = 'appointment' and j.status <> 'scheduled' then 'the appointment is ' || j.status
      when e2.trigger_type = 'appointment' then 'the job was rescheduled'
      when e2.trigger_type = 'stale_job' then 'the job had activity or left its stale statuses'
      else 'the client had a newer service, or has one booked'
    end
  from public.automation_execution_logs e2
  join public.automation_workflows w0 on w0.id = e2.workflow_id
  -- the trigger_config dueflow runs (the spec's)
  cross join lateral (select public.automation_workflow_current_spec(w0) -> 'trigger_config' as trigger_config offset 0) w
  left join public.automation_src_jobs j on j.id::text = e2.subject_id and j.organization_id = e2.organization_id
  where e2.status = 'pending' and e2.next_attempt_at <= now() and e2.subject_type = 'job'
    -- the action of the job trigger types (automation_actions; a test keeps
    -- them equal) as a constant: the due index's leading column. Read from
    -- the table (a join or array(select ...)) the planner scans the due rows
    -- of every action instead.
    and e2.action = 'send-reminder'
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
$$;
comment on function public.automation_obsolete_job_reminders() is
  'The due job reminders whose premise is gone, with the skip code and message: subject_gone (job deleted or cancelled); superseded (appointment moved or no longer scheduled, stale job with activity since or out of its statuses (the spec''s trigger_config), maintenance after a newer or booked service). Read by automation_skip_obsolete_jobs.';

create or replace function public.automation_skip_obsolete_jobs() returns integer
language plpgsql as $$
declare
  v_ids uuid[];
  v_codes text[];
  v_msgs text[];
  v_count integer := 0;
  v_state text;
  v_msg text;
begin
  -- reads the adopter's jobs view: its own subtransaction (as the settled
  -- skip). Collected first, then updated by primary key: joined directly, a
  -- planner on stale statistics nested-loops the due index per row.
  begin
    select coalesce(array_agg(x.id), '{}'), coalesce(array_agg(x.code), '{}'), coalesce(array_agg(x.msg), '{}')
      into v_ids, v_codes, v_msgs
    from public.automation_obsolete_job_reminders() x;
    if cardinality(v_ids) > 0 then
      update public.automation_execution_logs e set updated_at = now(),
        status = 'skipped', error_code = s.code, error_message = s.msg, completed_at = now()
      from unnest(v_ids, v_codes, v_msgs) as s(id, code, msg)
      where e.id = s.id and e.status = 'pending';
      get diagnostics v_count = row_count;
    end if;
    perform public.automation_dispatch_step_done('job_premise');
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    perform public.automation_dispatch_step_failed('job_premise', v_state, v_msg);
    return 0;
  end;
  return v_count;
end
$$;
comment on function public.automation_skip_obsolete_jobs() is
  'Step 4 of process_pending_automations: skips the due job reminders whose premise is gone (automation_obsolete_job_reminders: subject_gone or superseded; the function re-checks appointments and stale jobs at claim time, only SQL sees a client''s newer jobs). In its own subtransaction: a failure of the jobs view is recorded (dispatch_error) and the step left out of the run. Returns the number skipped.';

create or replace function public.automation_expire_due() returns integer
language plpgsql as $$
declare
  v_count integer;
begin
  update public.automation_execution_logs e set updated_at = now(),
    status = 'failed', error_code = 'expired',
    error_message = 'deadline passed before the execution could run', completed_at = now()
  where e.status = 'pending' and e.next_attempt_at <= now() and e.deadline_at <= now();
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function public.automation_expire_due() is
  'Step 5 of process_pending_automations, after the skips (a reminder of a paid invoice is skipped, not counted as a failure): due pending executions past their deadline fail (expired). Returns the number failed.';

create or replace function public.automation_ready_actions() returns text[]
language plpgsql as $$
declare
  v_ok text[] := '{}';
  v_ep record;
begin
  -- endpoints able to receive: enabled, with a usable secret
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
      (select string_agg(a.action, ', ' order by a.position, a.action) from public.automation_actions a
        where not (a.action = any (v_ok)));
  end if;
  return v_ok;
end
$$;
comment on function public.automation_ready_actions() is
  'Step 6 of process_pending_automations: the actions whose endpoint can receive (enabled, its Vault secret a usable whsec_<base64> key). WARNING for an enabled endpoint without a usable secret, and when due executions wait for an action without one (automation_actions lists them). Their executions stay pending.';

create or replace function public.automation_post_batch(p_batch jsonb) returns integer
language plpgsql as $$
declare
  v_body jsonb := jsonb_build_object('action', p_batch ->> 'action', 'execution_ids', p_batch -> 'ids');
  v_id text := gen_random_uuid()::text;
  v_ts bigint := extract(epoch from now())::bigint;
begin
  perform net.http_post(
    url := p_batch ->> 'url',
    body := v_body,
    params := '{}'::jsonb,
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'webhook-id', v_id,
      'webhook-timestamp', v_ts::text,
      'webhook-signature', public.automation_sign_webhook(
        public.automation_webhook_key(p_batch ->> 'secret_name'), v_id, v_ts, v_body::text)),
    timeout_milliseconds := (p_batch ->> 'timeout_ms')::int);
  return jsonb_array_length(p_batch -> 'ids');
end
$$;
comment on function public.automation_post_batch(jsonb) is
  'One signed POST of a batch ({action, url, timeout_ms, secret_name, ids}) to its endpoint through net.http_post, body {action, execution_ids}, Standard Webhooks headers (secret from Vault). Returns the number of executions posted.';

create or replace function public.automation_dispatch_due(
  p_actions text[], p_redispatch_after interval, p_max_batches integer)
returns integer language plpgsql as $$
declare
  v_batches jsonb;
  v_batch jsonb;
  v_count integer := 0;
begin
  -- due rows of p_actions, not rung within p_redispatch_after: mark and
  -- group into batches
  with due as (
    select e.id, e.action, ep.batch_size,
           row_number() over (partition by e.action order by e.next_attempt_at, e.id) as rn
    from public.automation_execution_logs e
    join public.automation_endpoints ep on ep.action = e.action
    where e.action = any (p_actions)
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

  for v_batch in select * from jsonb_array_elements(v_batches) loop
    v_count := v_count + public.automation_post_batch(v_batch);
  end loop;
  return v_count;
end
$$;
comment on function public.automation_dispatch_due(text[], interval, integer) is
  'Step 7 of process_pending_automations: due pending executions of p_actions not rung within p_redispatch_after (rows locked by another transaction are left for the next run) are marked dispatched and posted, per action in batches of automation_endpoints.batch_size (at most p_max_batches per action), one signed POST each (automation_post_batch). Returns the number of executions posted.';

create or replace function public.process_pending_automations(
  p_redispatch_after interval default interval '2 minutes', p_max_batches integer default 100)
returns integer language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ok text[];
  v_n integer;
begin
  -- assignments, not PERFORM: a simple expression each, no query of its own
  v_n := public.automation_rescue_leases();
  v_n := public.automation_fail_unrunnable();
  v_n := public.automation_skip_settled();
  v_n := public.automation_skip_obsolete_jobs();
  v_n := public.automation_expire_due();
  v_ok := public.automation_ready_actions();
  if cardinality(v_ok) = 0 then
    return 0;
  end if;
  return public.automation_dispatch_due(v_ok, p_redispatch_after, p_max_batches);
end
$$;
comment on function public.process_pending_automations(interval, integer) is
  'The dispatcher (pg_cron, every minute), in order: returns expired leases to pending or failed (automation_rescue_leases), fails due executions of workflows whose spec is not runnable (automation_fail_unrunnable: invalid_workflow), skips due invoice reminders of settled invoices (automation_skip_settled: invoice_settled) and due job reminders whose premise is gone (automation_skip_obsolete_jobs: subject_gone, superseded) (each skip in its own subtransaction: a failure on a source view row is recorded as dispatch_error and left out of that run), fails the remaining due rows past their deadline (automation_expire_due: expired), then posts due pending executions of the actions whose endpoint can receive (automation_ready_actions; WARNING for the others, whose rows stay pending), per action in batches of automation_endpoints.batch_size, signed with Standard Webhooks (automation_dispatch_due). Rows rung but not claimed are rung again after p_redispatch_after. Returns the number of executions dispatched.';

revoke all on function public.automation_action_for(text),
  public.automation_rescue_leases(),
  public.automation_fail_unrunnable(),
  public.automation_skip_settled(),
  public.automation_obsolete_job_reminders(),
  public.automation_skip_obsolete_jobs(),
  public.automation_expire_due(),
  public.automation_ready_actions(),
  public.automation_post_batch(jsonb),
  public.automation_dispatch_due(text[], interval, integer),
  public.process_pending_automations(interval, integer)
  from public, anon, authenticated;
grant execute on function public.automation_action_for(text),
  public.process_pending_automations(interval, integer)
  to service_role;
