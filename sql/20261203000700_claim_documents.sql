-- Issue 14, the claim document in one place. automation_claim_rows
-- (redefined from 20261202001810, same signature, same documents) is cut in
-- two: the lease (choose due rows, expire those past their deadline, claim
-- the others: its cand, expired and claimed CTEs, as before) and
-- automation_claim_documents, which builds the automation.Claimed document
-- of each execution row it is given: the claimed rows as the lease's update
-- left them (a fresh read in the same statement would see them as they were
-- before it). The console's claim preview (internal/opsdb) calls the same
-- function for one unclaimed row through automation_claim_preview, which
-- masks what is personal (automation_mask_recipient) and hides the lease
-- token and the job's address: the Go copy of the document is gone, so the
-- preview can no longer drift from the claim. Idempotent.
-- Cost of the cut, measured with the claim of 20261202001810 and this one
-- alternated per batch in one database (BenchmarkClaimReport's data: 1,000
-- organisations, 1,000,000 invoices; 100 executions per claim; 7 runs of 100
-- batches each; load 4-7, 2026-12-03): new / old claim time 0.96-1.04,
-- median 1.016 (noise). The builder as an inlinable language sql function
-- (no SET clauses, called through a lateral array_agg) was slower: 1.03-1.06.

-- The documents of the given execution rows, one per row whose workflow is
-- the row's organisation's, ordered by next_attempt_at, id: every planning
-- choice of 20261202001400 and 20261202001810 kept (the source rows by id
-- with offset 0, the workflow, organisation and figures documents once per
-- distinct id of the batch in materialized CTEs, jit off); a custom plan per
-- call (plan_cache_mode), so that the rows' count is known to the planner.
-- Stable: it reads with the snapshot of the statement that calls it, the
-- claim's.
create or replace function public.automation_claim_documents(p_rows public.automation_execution_logs[])
returns setof jsonb language plpgsql stable set search_path = public, pg_temp set jit = off
set plan_cache_mode = force_custom_plan as $$
begin
  return query
  with claimed as (
    -- the rows given (the claim's: as its update left them); the name and
    -- everything below as in 20261202001810
    select c.* from unnest(p_rows) c
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
        'steps', ws.spec -> 'steps',
        'message_class', public.automation_message_class(ws.spec ->> 'trigger_type', ws.spec -> 'trigger_config')) as doc
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
        'send_window_start', o.send_window_start::text, 'send_window_end', o.send_window_end::text,
        -- optional columns: '' when the view has none
        'locale', coalesce(left(btrim(to_jsonb(o) ->> 'locale'), 35), ''),
        'address', coalesce(left(btrim(to_jsonb(o) ->> 'address'), 1000), '')) as doc
      from public.automation_src_organizations o where o.id = x.organization_id
      offset 0
    ) o
  ), fg as materialized (
    -- the scheduled summary's figures, once per organisation of the batch
    -- with a scheduled execution; "yesterday" is the organisation's local
    -- previous day (UTC when its zone is unusable)
    select x.organization_id as id,
      jsonb_build_object('open_invoices', coalesce(inv.n, 0), 'overdue_invoices', coalesce(inv.overdue, 0),
        'open_balances', coalesce(inv.balances, '[]'::jsonb), 'reminders_sent_yesterday', sent.n) as doc
    from (select distinct c.organization_id from claimed c where c.trigger_type = 'scheduled') x
    left join od on od.id = x.organization_id
    cross join lateral (
      select coalesce(public.automation_effective_timezone(od.doc ->> 'timezone'), 'UTC') as tz) z
    cross join lateral (
      select sum(g.n)::integer as n, sum(g.overdue)::integer as overdue,
        jsonb_agg(jsonb_build_object('currency', g.currency, 'amount', g.balance::numeric(14,2)::text)
          order by g.currency) as balances
      from (
        select coalesce(nullif(btrim(i.currency), ''), 'USD') as currency, count(*) as n,
          count(*) filter (where i.status = 'overdue') as overdue, sum(i.balance) as balance
        from public.automation_src_invoices i
        where i.organization_id = x.organization_id and i.status in ('sent', 'overdue') and i.balance > 0
        group by 1) g
    ) inv
    cross join lateral (
      select count(*)::integer as n
      from public.automation_deliveries d
      where d.organization_id = x.organization_id and d.status = 'sent'
        and d.created_at >= (date_trunc('day', now() at time zone z.tz) - interval '1 day') at time zone z.tz
        and d.created_at < date_trunc('day', now() at time zone z.tz) at time zone z.tz
    ) sent
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
      'portal_url', coalesce(i.portal_url, ''),
      'pay_url', coalesce(to_jsonb(i) ->> 'pay_url', '')) end,
    'job', case when j.id is not null then jsonb_build_object('id', j.id::text, 'title', coalesce(j.title, ''),
      'job_type', coalesce(j.job_type, ''), 'status', j.status, 'scheduled_start', j.scheduled_start,
      'completed_at', j.completed_at, 'address', coalesce(j.address, '')) end,
    'deliveries', coalesce(dl.deliveries, '[]'::jsonb),
    'figures', fg.doc,
    'consent', cs.doc)
  from claimed c
  join wf on wf.id = c.workflow_id and wf.organization_id = c.organization_id
  left join od on od.id = c.organization_id
  left join fg on fg.id = c.organization_id and c.trigger_type = 'scheduled'
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
  -- what the client accepts: dueflow's opt-outs of this client, the
  -- organisation's suppressions that may be the client's addresses
  -- (candidates by automation_address_key: the function compares the exact
  -- address it sends to) and the numbers told how to opt out in 30 days
  left join lateral (
    select jsonb_build_object(
      'opted_out', coalesce((select jsonb_agg(o.channel order by o.channel) from public.automation_opt_outs o
                             where o.organization_id = c.organization_id and o.client_id = c.client_id), '[]'::jsonb),
      'blocked', coalesce((select jsonb_agg(jsonb_build_object('channel', s.channel, 'address', s.address, 'reason', s.reason)
                                            order by s.channel, s.address, s.reason)
                           from public.automation_suppressions s
                           where s.organization_id = c.organization_id
                             and ((s.channel = 'email' and s.address_key = public.automation_address_key('email', cl.email))
                               or (s.channel = 'sms' and s.address_key = public.automation_address_key('sms', cl.phone)))),
                          '[]'::jsonb),
      'sms_told', coalesce((select jsonb_agg(n.address order by n.address) from public.automation_sms_notices n
                            where n.organization_id = c.organization_id
                              and n.address_key = public.automation_address_key('sms', cl.phone)
                              and n.told_at > now() - interval '30 days'), '[]'::jsonb)) as doc
    where cl.id is not null
  ) cs on true
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

-- force_custom_plan: a plan for the call's own p_ids. The generic plan
-- PL/pgSQL switches to after five calls cannot tell whether p_ids is NULL,
-- so a claim of named ids (the dispatcher's batches) walked the index of due
-- rows from the oldest until it met its ids (44-48 ms for 100 ids 20,000
-- rows deep in the backlog, 14-21 ms with a custom plan, planning included).
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
  )
  -- the documents of the rows as this statement's update left them (lease
  -- token, attempt, lease expiry): handed over, not read again
  select d from public.automation_claim_documents(array(select c::public.automation_execution_logs from claimed c)) d;
end
$$;

-- The preview's masks, one object at a time: each listed key's value
-- replaced by automation_mask_recipient of it (an address a…@e….org, a
-- number …23); anything that is not an object (a JSON null: no client)
-- unchanged.
create or replace function public.automation_mask_recipients_in(p_doc jsonb, p_keys text[]) returns jsonb
language sql immutable set search_path = public, pg_temp as $$
  select case when jsonb_typeof(p_doc) = 'object' then
    p_doc || coalesce((select jsonb_object_agg(k, public.automation_mask_recipient(p_doc ->> k))
                       from unnest(p_keys) k where p_doc ? k), '{}'::jsonb)
  else p_doc end
$$;

-- The console's preview of the document an execution would be claimed
-- with: automation_claim_documents of its row as it is now (not claimed:
-- attempt, lease and started values are the row's), every e-mail address
-- and phone number masked (the organisation's sender, reply-to and phone,
-- the client's, the deliveries' recipients, the consent's blocked addresses
-- and numbers told), the lease token and the job's address (where the
-- client lives) "(hidden)". Same keys as the claim's document, by
-- construction. Security definer, as automation_claim: the service role
-- runs it without the right to build documents itself.
create or replace function public.automation_claim_preview(p_id uuid) returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
  select d || jsonb_build_object(
    'execution', d -> 'execution' || jsonb_build_object('lease_token', '(hidden)'),
    'organization', public.automation_mask_recipients_in(d -> 'organization', '{sender_email,reply_to_email,phone}'),
    'client', public.automation_mask_recipients_in(d -> 'client', '{email,phone}'),
    'job', case when jsonb_typeof(d -> 'job') = 'object' then d -> 'job' || jsonb_build_object('address',
             case when coalesce(d #>> '{job,address}', '') <> '' then '(hidden)' else '' end) else d -> 'job' end,
    'deliveries', (select coalesce(jsonb_agg(public.automation_mask_recipients_in(x.e, '{recipient}') order by x.n), '[]'::jsonb)
                   from jsonb_array_elements(d -> 'deliveries') with ordinality x(e, n)),
    'consent', case when jsonb_typeof(d -> 'consent') = 'object' then d -> 'consent' || jsonb_build_object(
      'blocked', (select coalesce(jsonb_agg(public.automation_mask_recipients_in(x.e, '{address}') order by x.n), '[]'::jsonb)
                  from jsonb_array_elements(d #> '{consent,blocked}') with ordinality x(e, n)),
      'sms_told', (select coalesce(jsonb_agg(public.automation_mask_recipient(x.e #>> '{}') order by x.n), '[]'::jsonb)
                   from jsonb_array_elements(d #> '{consent,sms_told}') with ordinality x(e, n)))
    else d -> 'consent' end)
  from public.automation_claim_documents(array(select e from public.automation_execution_logs e where e.id = p_id)) d
$$;

comment on function public.automation_claim_documents(public.automation_execution_logs[]) is
  'The automation.Claimed document of each given execution row (as given: automation_claim_rows passes the rows its claim just updated), in next_attempt_at, id order; a row whose workflow is missing or another organisation''s gets none. Keys: execution (the row''s fields with its lease token), workflow (as dueflow runs it: the spec, is_active = the spec''s active and runnable, message_class), organization (with locale and address, '''' when the view has none), client, invoice (with pay_url), job (NULL when the execution has none), deliveries, figures (scheduled executions only: open and overdue invoices, balance per currency, reminders sent on the organisation''s previous local day) and, for a client, consent {opted_out, blocked, sms_told}. Raises when a source view cannot deliver a row. Internal: automation_claim_rows and automation_claim_preview call it. Long: hot-path RPC: one set-based statement builds every document of a claim (measured by the RPC benchmarks).';
comment on function public.automation_claim_rows(text, uuid[], integer, integer) is
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution (built by automation_claim_documents from the rows as the claim left them), its workflow as dueflow runs it (the spec: trigger_type, trigger_config, steps, is_active = the spec''s active), every subject, client, invoice and job id as a JSON string (ids read from the source views as text); the workflow''s message_class (automation_message_class) and, for a client, consent: {opted_out: channels the client opted out of (non-transactional), blocked: [{channel, address, reason}] the organisation''s suppressions that may be the client''s addresses, sms_told: numbers told how to opt out in the last 30 days}. Raises when a source view cannot deliver a row (automation_claim then claims one by one). Each organisation document carries locale and address (the view''s optional columns, '''' when absent), each invoice pay_url (likewise), and scheduled executions figures (open and overdue invoices, their balance per currency, reminders sent on the organisation''s previous local day); other executions figures null.';
comment on function public.automation_mask_recipients_in(jsonb, text[]) is
  'p_doc with the value of each key in p_keys masked by automation_mask_recipient (a JSON object; anything else unchanged). For the console''s claim preview.';
comment on function public.automation_claim_preview(uuid) is
  'The console''s preview of execution p_id''s claim document, without claiming it: automation_claim_documents of its row as it is now, every e-mail address and phone number masked (automation_mask_recipient), the lease token and the job''s address "(hidden)". NULL when there is no such execution or its workflow is not its organisation''s; raises when a source view cannot deliver its rows.';

revoke all on function public.automation_claim_rows(text, uuid[], integer, integer),
  public.automation_claim_documents(public.automation_execution_logs[]),
  public.automation_mask_recipients_in(jsonb, text[]),
  public.automation_claim_preview(uuid)
  from public, anon, authenticated;
-- the preview runs its masking helper as its owner (security definer): only
-- the preview is granted
revoke all on function public.automation_mask_recipients_in(jsonb, text[]) from service_role;
grant execute on function public.automation_claim_preview(uuid) to service_role;
