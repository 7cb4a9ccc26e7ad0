-- dueflow dispatch: process_pending_automations() rings the functions through
-- pg_net with Standard Webhooks signatures. pg_net is only a doorbell: the
-- execution row stays pending until a function claims it, and rows not
-- claimed within redispatch_after are rung again.

create or replace function public.automation_webhook_key(p_secret_name text)
returns bytea language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_secret text;
begin
  select s.decrypted_secret into v_secret
  from vault.decrypted_secrets s where s.name = p_secret_name
  order by s.created_at desc limit 1;
  if v_secret is null or v_secret !~ '^whsec_[A-Za-z0-9+/=]+$' then
    return null;
  end if;
  return decode(substr(v_secret, 7), 'base64');
exception when others then
  return null;
end
$$;
comment on function public.automation_webhook_key(text) is
  'The HMAC key of a Vault secret holding whsec_<base64>, or null when missing or malformed.';

create or replace function public.automation_sign_webhook(p_key bytea, p_id text, p_ts bigint, p_body text)
returns text language sql immutable set search_path = public, pg_temp as $$
  select 'v1,' || translate(encode(extensions.hmac(convert_to(p_id || '.' || p_ts || '.' || p_body, 'UTF8'), p_key, 'sha256'), 'base64'), E'\n', '')
$$;
comment on function public.automation_sign_webhook(bytea, text, bigint, text) is
  'Standard Webhooks signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>.';

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

  -- 2. invoice reminders whose invoice was settled meanwhile: nothing to do
  --     (the function re-checks at claim time too)
  update public.automation_execution_logs e set updated_at = now(),
    status = 'skipped', error_code = 'invoice_settled',
    error_message = 'invoice paid, cancelled, void or without balance before the reminder ran', completed_at = now()
  from public.automation_src_invoices i
  where e.status = 'pending' and e.subject_type = 'invoice' and e.next_attempt_at <= now()
    and i.id = e.subject_id and i.organization_id = e.organization_id
    and (i.status in ('paid', 'cancelled', 'void') or i.balance <= 0);

  -- 2b. job reminders whose premise no longer holds (the function re-checks
  --     appointments and stale jobs at claim time; only SQL can see a
  --     client's newer jobs): appointment moved or no longer scheduled;
  --     stale job with activity since or out of its stale statuses;
  --     maintenance after the client's next service was done or booked
  --     (collected first, then updated by primary key: joined directly, a
  --     planner on stale statistics nested-loops the due index per row)
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
  'Returns expired leases to pending (or failed at max attempts), skips due invoice reminders whose invoice is settled (invoice_settled) and due job reminders whose premise is gone (subject_gone: job deleted or cancelled; superseded: appointment moved or no longer scheduled, stale job with activity since or out of its statuses, maintenance after a newer or booked service), fails the remaining due rows past their deadline (expired), then posts due pending executions, per action in batches of automation_endpoints.batch_size, to the endpoint through net.http_post, signed with Standard Webhooks (secret from Vault). Rows rung but not claimed are rung again after p_redispatch_after. Missing endpoint or secret: rows stay pending, WARNING. Returns the number of executions dispatched.';

revoke all on function public.automation_webhook_key(text),
  public.automation_sign_webhook(bytea, text, bigint, text),
  public.process_pending_automations(interval, integer)
  from public, anon, authenticated;
grant execute on function public.process_pending_automations(interval, integer) to service_role;
