-- RPC profile (issue 11, item 1): what the stack's profile
-- (BENCH_PROFILE=explain, internal/stacktest) showed reading far more than
-- the rows it needs, rewritten to read by primary key or id whatever the
-- statistics say; same answers and guarantees.
--   * automation_claim_rows: the client, invoice and job of each execution
--     are looked up by id alone and kept when they belong to the execution's
--     organisation. The join on (organisation, id) was planned as a bitmap AND
--     with the organisation index, which reads every client and invoice of
--     the organisation per execution: 16,880 buffers per claim of 100 in a
--     10,000-client organisation.
--   * automation_begin_deliveries: the held lease is read by primary key,
--     then checked; the lease's conditions inside the lookup let the planner
--     walk the index of running executions (lease_expires_at > now()) when
--     the statistics say few run: 10,352 buffers for 16 intents.
--   * automation_finish_deliveries: likewise (its status test matched the
--     running index's predicate).
-- Redefined from 20261202001400. Old and new function binaries call the
-- same signatures. Idempotent.

-- (plan_cache_mode force_custom_plan: a plan for the call's own p_ids, as
-- in 20261202001400)
create or replace function public.automation_claim_rows(
  p_action text, p_ids uuid[], p_limit integer, p_lease_seconds integer)
returns setof jsonb language plpgsql set search_path = public, pg_temp set jit = off
set plan_cache_mode = force_custom_plan as $$
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
  ), wf as materialized (
    -- the workflow as dueflow runs it (its spec), whatever shape the app wrote,
    -- built once per workflow of the batch; one the app changed since into a
    -- workflow dueflow cannot run (between the dispatcher's skip and this
    -- claim) is handed over inactive: skipped, never sent on a partly
    -- converted spec
    select ws.id, ws.organization_id,
      jsonb_build_object('id', ws.id, 'name', coalesce(ws.name, ''), 'trigger_type', ws.spec -> 'trigger_type',
        'trigger_config', ws.spec -> 'trigger_config',
        'is_active', coalesce((ws.spec ->> 'active')::boolean and (ws.spec ->> 'runnable')::boolean, false),
        'steps', ws.spec -> 'steps') as doc
    from (select distinct c.workflow_id from claimed c) x
    -- offset 0: one primary-key lookup per workflow, never a scan of them all
    cross join lateral (
      select w.id, w.organization_id, w.name, public.automation_workflow_current_spec(w) as spec
      from public.automation_workflows w where w.id = x.workflow_id
      offset 0) ws
  ), od as materialized (
    -- the organisation, once per organisation of the batch (looked up by id:
    -- no other organisation's row is read)
    select x.organization_id as id, o.doc
    from (select distinct c.organization_id from claimed c) x
    cross join lateral (
      select jsonb_build_object('id', o.id, 'name', o.name, 'timezone', o.timezone,
        'country_code', coalesce(o.country_code, ''), 'sender_name', coalesce(o.sender_name, ''),
        'sender_email', coalesce(o.sender_email, ''), 'reply_to_email', coalesce(o.reply_to_email, ''),
        'phone', coalesce(o.phone, ''), 'portal_url', coalesce(o.portal_url, ''),
        'send_window_start', o.send_window_start::text, 'send_window_end', o.send_window_end::text) as doc
      from public.automation_src_organizations o where o.id = x.organization_id
      offset 0
    ) o
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
    'workflow', wf.doc,
    'organization', od.doc,
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
  join wf on wf.id = c.workflow_id and wf.organization_id = c.organization_id
  left join od on od.id = c.organization_id
  -- each source row found by its id alone (offset 0: one probe of the view's
  -- id index per execution), then kept only when it is the execution's
  -- organisation's; never a scan of the organisation's clients or invoices
  -- (a bitmap AND of its organisation index read every row of a large
  -- tenant per execution)
  left join lateral (select x.* from public.automation_src_clients x where x.id::text = c.client_id offset 0) cl
    on cl.organization_id = c.organization_id
  left join lateral (select x.* from public.automation_src_invoices x
                     where c.subject_type = 'invoice' and x.id::text = c.subject_id offset 0) i
    on i.organization_id = c.organization_id
  left join lateral (select x.* from public.automation_src_jobs x
                     where c.subject_type = 'job' and x.id::text = c.subject_id offset 0) j
    on j.organization_id = c.organization_id
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
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution, its workflow as dueflow runs it (the spec: trigger_type, trigger_config, steps, is_active = the spec''s active), every subject, client, invoice and job id as a JSON string (ids read from the source views as text). Raises when a source view cannot deliver a row (automation_claim then claims one by one).';

create or replace function public.automation_finish_deliveries(p_finished jsonb)
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_count integer;
begin
  -- as automation_report's: sent / failed / unknown with the provider's
  -- answer, only under the execution's held lease; a sent delivery is never
  -- downgraded (so the counter trigger sees each one become sent once)
  with inp as (
    select distinct on (f ->> 'idempotency_key')
           case when f ->> 'execution_id' ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$'
                then (f ->> 'execution_id')::uuid end as execution_id,
           case when f ->> 'lease_token' ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$'
                then (f ->> 'lease_token')::uuid end as lease_token,
           f ->> 'idempotency_key' as ikey, f ->> 'status' as status, f ->> 'provider' as provider,
           f ->> 'provider_message_id' as provider_message_id, f ->> 'error_code' as error_code,
           f ->> 'error_message' as error_message,
           case when jsonb_typeof(f -> 'retryable') = 'boolean' then (f -> 'retryable')::boolean else false end as retryable
    from jsonb_array_elements(case when jsonb_typeof(p_finished) = 'array' then p_finished else '[]' end) f
    where jsonb_typeof(f) = 'object' and f ->> 'status' in ('sent', 'failed', 'unknown')
    -- a key listed twice: sent wins
    order by f ->> 'idempotency_key', (f ->> 'status' = 'sent') desc
  ), held as (
    -- one primary-key lookup per element, the lease checked on the row found
    -- (offset 0: the index of running executions, whose predicate the
    -- status test matches, is never walked instead)
    select inp.* from inp
    cross join lateral (select e.status, e.lease_token from public.automation_execution_logs e
                        where e.id = inp.execution_id offset 0) e
    where e.status = 'running' and e.lease_token = inp.lease_token
  ), done as (
    update public.automation_deliveries d set
      status = x.status,
      sent_at = case when x.status = 'sent' then coalesce(d.sent_at, now()) else d.sent_at end,
      provider = coalesce(nullif(x.provider, ''), d.provider),
      provider_message_id = coalesce(nullif(x.provider_message_id, ''), d.provider_message_id),
      error_code = nullif(x.error_code, ''), error_message = nullif(x.error_message, ''),
      retryable = x.retryable
    from held x
    where d.idempotency_key = x.ikey and d.execution_id = x.execution_id and d.status <> 'sent'
    returning 1
  )
  select count(*)::int into v_count from done;
  return v_count;
end
$$;
comment on function public.automation_finish_deliveries(jsonb) is
  'Finishes deliveries (array of {execution_id, lease_token} + automation.DeliveryResult) as automation_report does: status sent/failed/unknown, provider, provider_message_id, error_code, error_message, retryable; only while the execution is running under that lease token (a stale lease changes nothing); a sent delivery is never changed. Elements of another shape or status are ignored. Returns the number of deliveries changed.';

create or replace function public.automation_begin_deliveries(p_deliveries jsonb)
returns jsonb language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_out jsonb;
begin
  if p_deliveries is null or jsonb_typeof(p_deliveries) <> 'array' then
    raise exception 'automation_begin_deliveries: p_deliveries must be a JSON array' using errcode = '22023';
  end if;
  with inp as (
    select t.ord as n, (t.d ->> 'execution_id')::uuid as execution_id,
           (t.d ->> 'lease_token')::uuid as lease_token,
           coalesce((t.d ->> 'step_index')::int, 0) as step_index,
           t.d ->> 'channel' as channel, t.d ->> 'recipient' as recipient,
           coalesce(t.d ->> 'provider', '') as provider, t.d ->> 'idempotency_key' as ikey
    from jsonb_array_elements(p_deliveries) with ordinality as t(d, ord)
  ), held as (
    -- one primary-key lookup per intent: the subquery (offset 0) has only the
    -- id, the lease is checked on the row it found. With the lease's
    -- conditions inside, the planner walked the index of running executions
    -- (lease_expires_at > now()) whenever the statistics said few run: every
    -- running row per intent (10,000 buffers for 16 intents).
    select inp.*, e.organization_id, (e.deadline_at is not null and e.deadline_at <= now()) as past_deadline
    from inp cross join lateral (
      select e.organization_id, e.deadline_at, e.status, e.lease_token, e.lease_expires_at
      from public.automation_execution_logs e
      where e.id = inp.execution_id
      offset 0) e
    where e.status = 'running' and e.lease_token = inp.lease_token and e.lease_expires_at > now()
  ), valid as (
    -- an intent the ledger cannot record (no key, unknown channel, no recipient) is invalid, not stale;
    -- so is a repeat of a key earlier in the same call (only the first may be new: sent once).
    -- Past the execution's deadline nothing begins (an appointment reminder
    -- late in a batch must not go out after the appointment started).
    select h.* from held h
    where coalesce(h.ikey, '') <> '' and h.channel in ('email', 'sms') and coalesce(h.recipient, '') <> ''
      and not h.past_deadline
      and not exists (select 1 from held h2 where h2.ikey = h.ikey and h2.n < h.n)
  ), prev as (
    select d.idempotency_key, d.execution_id, d.status, d.retryable, d.provider_message_id
    from public.automation_deliveries d
    where d.idempotency_key in (select ikey from valid)
    for update
  ), ins as (
    insert into public.automation_deliveries
      (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status)
    select h.execution_id, h.organization_id, h.step_index, h.channel, h.recipient, h.provider, h.ikey, 'sending'
    from valid h where not exists (select 1 from prev p where p.idempotency_key = h.ikey)
    on conflict (idempotency_key) do nothing
    returning idempotency_key
  ), amb as (
    update public.automation_deliveries d set status = 'unknown'
    -- only rows prev found (and locked): nothing to look at on a first attempt
    from valid h join prev p on p.idempotency_key = h.ikey and p.status in ('sending', 'unknown')
    where d.idempotency_key = p.idempotency_key and d.execution_id = h.execution_id and d.status in ('sending', 'unknown')
    returning d.idempotency_key
  ), rearm as (
    update public.automation_deliveries d set
      status = 'sending', attempts = d.attempts + 1, error_code = null, error_message = null,
      retryable = false, recipient = h.recipient, provider = h.provider
    from valid h join prev p on p.idempotency_key = h.ikey and p.status = 'failed' and p.retryable
    where d.idempotency_key = p.idempotency_key and d.execution_id = h.execution_id and d.status = 'failed' and d.retryable
    returning d.idempotency_key
  )
  select coalesce(jsonb_agg(
    jsonb_strip_nulls(jsonb_build_object(
      'idempotency_key', coalesce(inp.ikey, ''),
      'state', case
        when h.n is null then 'stale'
        when h.past_deadline then 'expired'
        when v.n is null then 'invalid'
        when p.idempotency_key is null then case when exists (select 1 from ins where ins.idempotency_key = inp.ikey) then 'new' else 'ambiguous' end
        when p.execution_id <> h.execution_id then 'failed'
        when p.status = 'sent' then 'sent'
        when p.status in ('sending', 'unknown') then 'ambiguous'
        when p.status = 'failed' and p.retryable then 'new'
        else 'failed' end,
      'provider_message_id', case when p.status = 'sent' then nullif(p.provider_message_id, '') end))
    order by inp.n), '[]'::jsonb)
  into v_out
  from inp
  left join held h on h.n = inp.n
  left join valid v on v.n = inp.n
  left join prev p on p.idempotency_key = inp.ikey and v.n is not null;
  return v_out;
end
$$;
comment on function public.automation_begin_deliveries(jsonb) is
  'Records delivery intents (automation.DeliveryIntent[]) in the ledger before a provider call, fenced by a held lease. Answers per intent (automation.DeliveryBegun[], input order): new, sent, ambiguous (began before, never finished: now unknown), failed, invalid (no idempotency key, unknown channel, empty recipient, or a key repeated within the call: nothing recorded, never send), expired (the execution''s deadline has passed: nothing recorded, never send), or stale (lease not held).';
revoke all on function public.automation_claim_rows(text, uuid[], integer, integer),
  public.automation_finish_deliveries(jsonb),
  public.automation_begin_deliveries(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_finish_deliveries(jsonb),
  public.automation_begin_deliveries(jsonb)
  to service_role;
