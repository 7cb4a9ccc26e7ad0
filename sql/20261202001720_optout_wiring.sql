-- Messages people accept (issue 12), the rest of the wiring:
--   * automation_workflow_rules(): every trigger type's trigger_config
--     accepts message_class (transactional | non_transactional), the
--     workflow's override of its trigger type's class, and templates may
--     use {{unsubscribe_url}} (= shared/workflow/rules.json).
--   * automation_begin_deliveries: an intent's sender (the number or address
--     the message goes from: an SMS STOP finds the organisations that texted
--     the number from it) and opt_out_notice (the SMS carries "Reply STOP to
--     opt out"; recorded as told when it becomes sent) are kept in the ledger.
-- Redefined from 20261202000100 (rules) and 20261202001400 (begin), same
-- otherwise. Idempotent.

create or replace function public.automation_workflow_rules() returns jsonb
language sql immutable parallel safe as $fn$
  select $rules$
{
  "version": 1,
  "trigger_types": [
    {
      "name": "scheduled",
      "config": [
        {"key": "frequency", "type": "enum", "values": ["every_minute", "hourly", "daily", "weekly", "monthly"]},
        {"key": "hour", "type": "integer", "min": 0, "max": 23},
        {"key": "minute", "type": "integer", "min": 0, "max": 59},
        {"key": "day_of_week", "type": "integer", "min": 0, "max": 6},
        {"key": "day_of_month", "type": "integer", "min": 1, "max": 31},
        {"key": "audience", "type": "enum", "values": ["organization", "clients"]},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "invoice_overdue",
      "config": [
        {"key": "days_after_due", "type": "integer_list", "max_items": 20, "min": 0, "max": 365},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "maintenance_due",
      "config": [
        {"key": "months_after_service", "type": "integer", "min": 1, "max": 120},
        {"key": "job_type", "type": "string", "max_chars": 100},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "stale_job",
      "config": [
        {"key": "days_inactive", "type": "integer", "min": 1, "max": 365},
        {"key": "statuses", "type": "string_list", "max_items": 20, "max_chars": 50},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "appointment",
      "config": [
        {"key": "hours_before", "type": "integer", "min": 1, "max": 720},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    }
  ],
  "steps": {
    "max_steps": 20,
    "types": [
      {
        "name": "send_email",
        "fields": [
          {"key": "subject", "type": "string", "max_chars": 500, "template": true},
          {"key": "body", "type": "string", "max_bytes": 65536, "template": true},
          {"key": "html", "type": "string", "max_bytes": 65536, "template": true}
        ]
      },
      {
        "name": "send_sms",
        "fields": [
          {"key": "body", "type": "string", "max_chars": 1600, "template": true}
        ]
      },
      {
        "name": "delay",
        "fields": [
          {"key": "minutes", "type": "integer", "min": 0, "max": 525600, "unit_minutes": 1},
          {"key": "hours", "type": "integer", "min": 0, "max": 8760, "unit_minutes": 60},
          {"key": "days", "type": "integer", "min": 0, "max": 365, "unit_minutes": 1440}
        ],
        "total_minutes": {"min": 1, "max": 525600, "message": "a delay must be from 1 minute to 365 days"}
      }
    ]
  },
  "variables": [
    "client.first_name", "client.last_name", "client.full_name", "client.email", "client.phone",
    "organization.name", "organization.phone", "organization.email", "organization.portal_url",
    "invoice.number", "invoice.total", "invoice.balance", "invoice.due_date", "invoice.days_overdue", "invoice.portal_url",
    "job.title", "job.type", "job.scheduled_start", "job.scheduled_date", "job.address", "job.completed_at",
    "unsubscribe_url"
  ]
}
$rules$::jsonb
$fn$;
comment on function public.automation_workflow_rules() is
  'The workflow rules document (trigger types and their trigger_config keys, step types and their fields, bounds, template variables), equal to shared/workflow/rules.json. automation_workflow_problems() interprets it.';

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
           coalesce(t.d ->> 'provider', '') as provider, t.d ->> 'idempotency_key' as ikey,
           left(nullif(btrim(coalesce(t.d ->> 'sender', '')), ''), 320) as sender,
           coalesce(jsonb_typeof(t.d -> 'opt_out_notice') = 'boolean' and (t.d -> 'opt_out_notice')::boolean, false) as notice
    from jsonb_array_elements(p_deliveries) with ordinality as t(d, ord)
  ), held as (
    -- one primary-key lookup per intent (offset 0 keeps it per intent): not a
    -- scan of every running execution, whatever the statistics say
    select inp.*, e.organization_id, (e.deadline_at is not null and e.deadline_at <= now()) as past_deadline
    from inp cross join lateral (
      select e.organization_id, e.deadline_at from public.automation_execution_logs e
      where e.id = inp.execution_id and e.status = 'running'
        and e.lease_token = inp.lease_token and e.lease_expires_at > now()
      offset 0) e
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
      (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status,
       sender, opt_out_notice)
    select h.execution_id, h.organization_id, h.step_index, h.channel, h.recipient, h.provider, h.ikey, 'sending',
           h.sender, h.notice
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
      retryable = false, recipient = h.recipient, provider = h.provider,
      sender = coalesce(h.sender, d.sender), opt_out_notice = h.notice
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
  'Records delivery intents (automation.DeliveryIntent[]) in the ledger before a provider call, fenced by a held lease. Answers per intent (automation.DeliveryBegun[], input order): new, sent, ambiguous (began before, never finished: now unknown), failed, invalid (no idempotency key, unknown channel, empty recipient, or a key repeated within the call: nothing recorded, never send), expired (the execution''s deadline has passed: nothing recorded, never send), or stale (lease not held). An intent may name its sender (recorded in automation_deliveries.sender) and opt_out_notice (the SMS carries the opt-out instruction: automation_sms_notices records the number when it becomes sent).';
revoke all on function public.automation_begin_deliveries(jsonb) from public, anon, authenticated;
grant execute on function public.automation_begin_deliveries(jsonb) to service_role;
