-- automation_claim and process_pending_automations, isolated from a source
-- view row they cannot read (moved here from 20261129000500 and ...000600
-- when they changed). The claim document is built from the adopter's source
-- views; one row a view cannot deliver (a cast that fails, a value out of
-- range) used to abort the claim of the whole batch, every tenant's
-- executions in it, at every ring. Now the batch is claimed set-based as
-- before; when that raises, it is claimed one execution at a time, and an
-- execution whose own rows cannot be read fails alone (error_code
-- source_error, message masked), visible to operators and retryable with
-- automation_retry_execution once the view is mended. Idempotent.

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
    'client', case when cl.id is not null then jsonb_build_object('id', cl.id, 'first_name', coalesce(cl.first_name, ''),
      'last_name', coalesce(cl.last_name, ''), 'email', coalesce(cl.email, ''),
      'phone', coalesce(cl.phone, ''), 'email_opt_out', coalesce(cl.email_opt_out, false),
      'sms_opt_out', coalesce(cl.sms_opt_out, false)) end,
    'invoice', case when i.id is not null then jsonb_build_object('id', i.id, 'number', i.number, 'status', i.status,
      'due_date', to_char(i.due_date, 'YYYY-MM-DD'), 'total', i.total::numeric(14,2)::text,
      'balance', i.balance::numeric(14,2)::text, 'currency', coalesce(i.currency, 'USD'),
      'portal_url', coalesce(i.portal_url, '')) end,
    'job', case when j.id is not null then jsonb_build_object('id', j.id, 'title', coalesce(j.title, ''),
      'job_type', coalesce(j.job_type, ''), 'status', j.status, 'scheduled_start', j.scheduled_start,
      'completed_at', j.completed_at, 'address', coalesce(j.address, '')) end,
    'deliveries', coalesce(dl.deliveries, '[]'::jsonb))
  from claimed c
  join public.automation_workflows w on w.id = c.workflow_id and w.organization_id = c.organization_id
  left join public.automation_src_organizations o on o.id = c.organization_id
  left join public.automation_src_clients cl on cl.id = c.client_id and cl.organization_id = c.organization_id
  left join public.automation_src_invoices i
    on c.subject_type = 'invoice' and i.id = c.subject_id and i.organization_id = c.organization_id
  left join public.automation_src_jobs j
    on c.subject_type = 'job' and j.id = c.subject_id and j.organization_id = c.organization_id
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
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution. Raises when a source view cannot deliver a row (automation_claim then claims one by one).';

create or replace function public.automation_claim(
  p_action text, p_ids uuid[] default null, p_limit integer default 100, p_lease_seconds integer default 300)
returns setof jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_docs jsonb[];
  v_id uuid;
  v_state text;
  v_msg text;
begin
  begin
    v_docs := array(select public.automation_claim_rows(p_action, p_ids, p_limit, p_lease_seconds));
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
    raise warning 'dueflow: claim of % failed for the batch (SQLSTATE %: %); claiming one execution at a time',
      p_action, v_state, public.automation_mask_error(v_msg);
    v_docs := '{}';
    for v_id in
      select e.id from public.automation_execution_logs e
      where e.action = p_action and e.status = 'pending' and e.next_attempt_at <= now()
        and (p_ids is null or e.id = any (p_ids))
      order by e.next_attempt_at
      limit least(greatest(coalesce(p_limit, 100), 0), 1000)
    loop
      begin
        v_docs := v_docs || array(select public.automation_claim_rows(p_action, array[v_id], 1, p_lease_seconds));
      exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text;
        update public.automation_execution_logs e set updated_at = now(),
          status = 'failed', error_code = 'source_error', completed_at = now(),
          error_message = format('its source rows could not be read (SQLSTATE %s: %s)', v_state, public.automation_mask_error(v_msg))
        where e.id = (select e2.id from public.automation_execution_logs e2
                      where e2.id = v_id and e2.status = 'pending' for update skip locked);
      end;
    end loop;
  end;
  return query select d from unnest(v_docs) d;
end
$$;
comment on function public.automation_claim(text, uuid[], integer, integer) is
  'Claims due pending executions of p_action (among p_ids when given, at most p_limit) for p_lease_seconds and returns one automation.Claimed document each (automation_claim_rows). When the batch cannot be claimed at once because a source view fails on some row, claims one execution at a time: one whose rows cannot be read fails alone (source_error, masked message); the others are claimed.';

revoke all on function public.automation_claim_rows(text, uuid[], integer, integer),
  public.automation_claim(text, uuid[], integer, integer)
  from public, anon, authenticated;
grant execute on function public.automation_claim(text, uuid[], integer, integer) to service_role;

-- The dispatcher's premise skips, isolated -----------------------------------

alter table public.automation_check_problems drop constraint if exists automation_check_problems_code_check;
alter table public.automation_check_problems add constraint automation_check_problems_code_check
  check (code in ('invalid_config', 'invalid_timezone', 'timezone_defaulted', 'check_error', 'hook_error', 'dispatch_error'));

create or replace function public.automation_dispatch_step_failed(p_step text, p_state text, p_message text)
returns void language plpgsql set search_path = public, pg_temp as $$
begin
  raise warning 'dueflow: process_pending_automations: the % skip failed (SQLSTATE %: %); dispatching without it',
    p_step, p_state, public.automation_mask_error(p_message);
  perform public.automation_note_check_problem('process_pending_automations', p_step, null, null, 'dispatch_error',
    format('the %s skip failed and was left out (SQLSTATE %s: %s); the function still re-checks at claim time',
           p_step, p_state, public.automation_mask_error(p_message)));
end
$$;
comment on function public.automation_dispatch_step_failed(text, text, text) is
  'Records that a premise-skip step of process_pending_automations (p_step: invoice_settled, job_premise) failed on a source view: WARNING plus an automation_check_problems row (dispatch_error, masked message).';

create or replace function public.automation_dispatch_step_done(p_step text) returns void
language sql set search_path = public, pg_temp as $$
  delete from public.automation_check_problems p
  where p.check_name = 'process_pending_automations' and p.trigger_type = p_step and p.code = 'dispatch_error'
$$;
comment on function public.automation_dispatch_step_done(text) is
  'Clears the dispatch_error record of a premise-skip step of process_pending_automations once it succeeds again.';

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
      and i.id = e.subject_id and i.organization_id = e.organization_id
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
      left join public.automation_src_jobs j on j.id = e2.subject_id and j.organization_id = e2.organization_id
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
                          where u.organization_id = e2.organization_id and u.client_id = e2.client_id and u.id <> j.id
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

revoke all on function public.automation_dispatch_step_failed(text, text, text),
  public.automation_dispatch_step_done(text),
  public.process_pending_automations(interval, integer)
  from public, anon, authenticated;
grant execute on function public.process_pending_automations(interval, integer) to service_role;
