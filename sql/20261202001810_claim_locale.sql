-- Locale, footer and summary figures in the claim document (issue 12, items
-- 4 and 5). automation_claim_rows, redefined from 20261202001400 (same
-- claim, same plan shape), adds to each document:
--   * organization.locale and organization.address: the organisations view's
--     optional `locale` (BCP 47, e.g. en-GB) and `address` (postal address
--     for the footer) columns; '' when the view has none (read through
--     to_jsonb of the row, so an adopter's view without them keeps working).
--     The engine validates the locale (an unusable one falls back to the
--     country's default, logged; never fails the execution).
--   * invoice.pay_url: the invoices view's optional `pay_url` column (the
--     invoice's own payment link), '' when none.
--   * figures, for scheduled executions only: the organisation's open
--     invoices (sent or overdue with a balance), how many are overdue, their
--     balance per currency, and the reminders sent yesterday (deliveries
--     begun on the organisation's previous local day and sent), once per
--     distinct organisation of the batch, each by index range.
-- It also carries issue 12's consent and message class, and issue 11's
-- id-first lookups; this is the one definition of this week's changes:
--   * workflow.message_class (automation_message_class: trigger_config.
--     message_class or the trigger type's default) and, for a client,
--     "consent": the channels the client opted out of in dueflow's own table
--     (automation_opt_outs, the unsubscribe link: non-transactional messages
--     only), the organisation's suppressions that may be the client's
--     addresses (an SMS STOP, a hard bounce, a complaint: no message of any
--     class; found by automation_address_key, compared exactly by the
--     function) and the numbers told how to opt out in the last 30 days
--     (20261202001700 holds the tables); three index lookups per client.
--   * the client, invoice and job of each execution are looked up by id alone
--     and kept when they belong to the execution's organisation (the RPC
--     profile of 20261202001600: the join on (organisation, id) was planned as
--     a bitmap AND that read every client of the organisation per execution).
-- Idempotent.

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
comment on function public.automation_claim_rows(text, uuid[], integer, integer) is
  'The set-based claim behind automation_claim: claims (FOR UPDATE SKIP LOCKED) due pending executions of p_action, among p_ids when given, at most p_limit: running, attempt + 1, new lease token for p_lease_seconds; due rows past their deadline fail as expired instead. Returns one automation.Claimed document per claimed execution, its workflow as dueflow runs it (the spec: trigger_type, trigger_config, steps, is_active = the spec''s active), every subject, client, invoice and job id as a JSON string (ids read from the source views as text); the workflow''s message_class (automation_message_class) and, for a client, consent: {opted_out: channels the client opted out of (non-transactional), blocked: [{channel, address, reason}] the organisation''s suppressions that may be the client''s addresses, sms_told: numbers told how to opt out in the last 30 days}. Raises when a source view cannot deliver a row (automation_claim then claims one by one). Each organisation document carries locale and address (the view''s optional columns, '''' when absent), each invoice pay_url (likewise), and scheduled executions figures (open and overdue invoices, their balance per currency, reminders sent on the organisation''s previous local day); other executions figures null.';
revoke all on function public.automation_claim_rows(text, uuid[], integer, integer) from public, anon, authenticated;
