-- Messages people accept (issue 12): opt-outs, suppressions and what
-- happened to a message after the hand-over.
--   * automation_opt_outs: a client opted out of one channel's
--     non-transactional messages of one organisation (the unsubscribe link,
--     a provider's unsubscribe event).
--   * automation_suppressions: an address no message of any class goes to,
--     per organisation and channel: an SMS STOP (opted_out), a hard bounce
--     (bounced), a complaint (complained).
--   * automation_sms_notices: when a number was last told how to opt out
--     ("Reply STOP to opt out"), per organisation; written when such an SMS
--     becomes sent (automation_deliveries.opt_out_notice, see
--     20261202001720).
--   * automation_provider_events: the provider events already applied
--     (idempotence per provider and event id).
--   * automation_deliveries: delivery_status / delivery_reason /
--     delivery_status_at (what the provider said after the hand-over),
--     sender, opt_out_notice.
--   * automation_analytics: delivered, bounced, complained, unsubscribed,
--     undelivered; the views automation_delivery_analytics (per workflow and
--     day) and automation_delivery_health (per organisation, 30 days).
--   * automation_record_provider_events(p_events): the RPC of the
--     provider-events function.
-- Opt-outs live in dueflow's own tables: an adopting app's columns are never
-- written (its clients' email_opt_out / sms_opt_out, read through the source
-- view, are still honoured by the functions). Idempotent.

-- The part of an address an index can find it by: an e-mail address in
-- lower case (the address inside "Name <a@b>"), a phone number's last 8
-- digits (whatever the formatting of the source view). Candidates only: the
-- function compares the exact address it sends to.
create or replace function public.automation_address_key(p_channel text, p_address text) returns text
language sql immutable parallel safe set search_path = public, pg_temp as $$
  select case
    when p_channel = 'sms' then nullif(right(regexp_replace(coalesce(p_address, ''), '[^0-9]', '', 'g'), 8), '')
    else nullif(coalesce(substring(lower(coalesce(p_address, '')) from '([^<>[:space:]]+@[^<>[:space:]]+)'),
                         lower(btrim(coalesce(p_address, '')))), '')
  end
$$;
comment on function public.automation_address_key(text, text) is
  'Lookup key of an address: an e-mail address lower-cased (the addr-spec of "Name <a@b>"), a phone number''s last 8 digits. A candidate key, not an identity: the functions compare the exact normalised address.';

-- The class of a workflow's messages: its trigger_config.message_class when
-- valid, else its trigger type's default (invoice reminders and
-- appointments are transactional; maintenance, stale-job follow-ups and
-- scheduled mail are not).
create or replace function public.automation_message_class(p_trigger_type text, p_trigger_config jsonb) returns text
language sql immutable parallel safe set search_path = public, pg_temp as $$
  select case
    when jsonb_typeof(p_trigger_config) = 'object'
         and p_trigger_config ->> 'message_class' in ('transactional', 'non_transactional')
      then p_trigger_config ->> 'message_class'
    when p_trigger_type in ('invoice_overdue', 'appointment') then 'transactional'
    else 'non_transactional'
  end
$$;
comment on function public.automation_message_class(text, jsonb) is
  'transactional or non_transactional: trigger_config.message_class when it is one of those, else the trigger type''s default (invoice_overdue and appointment transactional, the others non_transactional).';

-- Tables ------------------------------------------------------------------------------

create table if not exists public.automation_opt_outs (
  organization_id uuid not null,
  client_id text not null,
  channel text not null check (channel in ('email', 'sms')),
  source text not null,
  event_id text,
  created_at timestamptz not null default now(),
  primary key (organization_id, client_id, channel)
);
comment on table public.automation_opt_outs is
  'Clients opted out of one channel''s non-transactional messages of one organisation (source: link = the one-click unsubscribe link, or the provider whose unsubscribe event it was). Transactional messages still go. Written by automation_record_provider_events only.';

create table if not exists public.automation_suppressions (
  organization_id uuid not null,
  channel text not null check (channel in ('email', 'sms')),
  address text not null,
  address_key text generated always as (public.automation_address_key(channel, address)) stored,
  reason text not null check (reason in ('opted_out', 'bounced', 'complained')),
  sender text not null default '',
  provider text not null,
  detail text,
  event_id text,
  created_at timestamptz not null default now(),
  primary key (organization_id, channel, address, reason)
);
create index if not exists automation_suppressions_key_idx
  on public.automation_suppressions (organization_id, channel, address_key);
comment on table public.automation_suppressions is
  'Addresses no message of any class goes to, per organisation and channel: opted_out (an SMS STOP to sender), bounced (a permanent bounce), complained (a spam complaint). detail: the provider''s reason code. An SMS START removes opted_out only.';

create table if not exists public.automation_sms_notices (
  organization_id uuid not null,
  address text not null,
  address_key text generated always as (public.automation_address_key('sms', address)) stored,
  told_at timestamptz not null,
  primary key (organization_id, address)
);
create index if not exists automation_sms_notices_key_idx
  on public.automation_sms_notices (organization_id, address_key, told_at);
comment on table public.automation_sms_notices is
  'When an organisation last told a number how to opt out (an SMS sent with the opt-out instruction); a non-transactional SMS carries the instruction when this is older than 30 days or absent.';

create table if not exists public.automation_provider_events (
  provider text not null,
  event_id text not null,
  kind text not null,
  outcome text not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);
create index if not exists automation_provider_events_received_idx on public.automation_provider_events (received_at);
comment on table public.automation_provider_events is
  'Provider events applied by automation_record_provider_events (idempotence per provider and event id, kept 90 days): a repeat is a duplicate and changes nothing. Events that matched nothing are not kept, so a provider''s retry may match later. No personal data.';

-- the delivery ledger learns what happened after the hand-over
alter table public.automation_deliveries add column if not exists sender text;
alter table public.automation_deliveries add column if not exists opt_out_notice boolean not null default false;
alter table public.automation_deliveries add column if not exists delivery_status text;
alter table public.automation_deliveries add column if not exists delivery_reason text;
alter table public.automation_deliveries add column if not exists delivery_status_at timestamptz;
select public.automation_ensure_constraint('public.automation_deliveries', 'automation_deliveries_delivery_status_check',
  $c$check (delivery_status in ('delivered', 'bounced', 'complained', 'undelivered', 'deferred', 'unsubscribed'))$c$);
comment on column public.automation_deliveries.sender is
  'The sender the message went from (an SMS''s number, an e-mail''s address) when the function recorded it; NULL before 20261202001720.';
comment on column public.automation_deliveries.opt_out_notice is
  'The SMS carried the opt-out instruction: when it becomes sent, automation_sms_notices records the number as told.';
comment on column public.automation_deliveries.delivery_status is
  'What the provider reported after the hand-over (automation_record_provider_events): delivered, bounced, complained, undelivered, deferred, unsubscribed; NULL: nothing heard.';
comment on column public.automation_deliveries.delivery_reason is
  'The provider''s reason for delivery_status (at most 200 characters, no address).';
-- provider events find their delivery by the provider's message id; an SMS
-- STOP finds the organisations that texted the number
create index if not exists automation_deliveries_provider_message_idx
  on public.automation_deliveries (provider, provider_message_id) where provider_message_id is not null;
create index if not exists automation_deliveries_sms_recipient_idx
  on public.automation_deliveries (recipient) where channel = 'sms';

alter table public.automation_analytics
  add column if not exists delivered integer not null default 0,
  add column if not exists bounced integer not null default 0,
  add column if not exists complained integer not null default 0,
  add column if not exists unsubscribed integer not null default 0,
  add column if not exists undelivered integer not null default 0;

-- RLS: members read their organisations' rows; only service_role writes.
alter table public.automation_opt_outs enable row level security;
alter table public.automation_suppressions enable row level security;
alter table public.automation_sms_notices enable row level security;
alter table public.automation_provider_events enable row level security;
select public.automation_member_read_policy(t)
from unnest('{public.automation_opt_outs,public.automation_suppressions,public.automation_sms_notices}'::regclass[]) t;
revoke all on public.automation_opt_outs, public.automation_suppressions, public.automation_sms_notices,
  public.automation_provider_events from public, anon, authenticated;
grant select on public.automation_opt_outs, public.automation_suppressions, public.automation_sms_notices to authenticated;
grant all on public.automation_opt_outs, public.automation_suppressions, public.automation_sms_notices,
  public.automation_provider_events to service_role;

-- SMS notices: recorded when an SMS that carried the instruction becomes sent.
create or replace function public.automation_record_sms_notices() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  insert into public.automation_sms_notices as s (organization_id, address, told_at)
  select n.organization_id, n.recipient, max(coalesce(n.sent_at, now()))
  from new_rows n join old_rows o on o.id = n.id
  where n.channel = 'sms' and n.opt_out_notice and n.status = 'sent' and o.status <> 'sent'
  group by n.organization_id, n.recipient
  order by n.organization_id, n.recipient
  on conflict (organization_id, address) do update set told_at = greatest(s.told_at, excluded.told_at);
  return null;
end
$$;
comment on function public.automation_record_sms_notices() is
  'Trigger: an SMS delivery that carried the opt-out instruction (opt_out_notice) and became sent records its number as told (automation_sms_notices), once per statement.';
drop trigger if exists automation_deliveries_sms_notice on public.automation_deliveries;
create trigger automation_deliveries_sms_notice after update on public.automation_deliveries
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.automation_record_sms_notices();

-- Provider events ------------------------------------------------------------------------

-- How far a delivery status has come: a later event never moves it back
-- (a "deferred" after "delivered", a "delivered" after a bounce).
create or replace function public.automation_delivery_status_rank(p_status text) returns integer
language sql immutable parallel safe set search_path = public, pg_temp as $$
  select case p_status
    when 'deferred' then 1 when 'delivered' then 2
    when 'undelivered' then 3 when 'bounced' then 3
    when 'unsubscribed' then 4 when 'complained' then 4
    else 0 end
$$;
comment on function public.automation_delivery_status_rank(text) is
  'Order of delivery statuses: deferred < delivered < undelivered, bounced < unsubscribed, complained; an event of a lower rank does not replace a higher one.';

-- One event; raises on a malformed one (the caller isolates it).
create or replace function public.automation_apply_provider_event(p jsonb) returns text
language plpgsql set search_path = public, pg_temp as $$
declare
  v_kind text;
  v_provider text;
  v_event_id text;
  v_channel text;
  v_org uuid;
  v_client text;
  v_address text;
  v_sender text;
  v_msgid text;
  v_status text;
  v_perm boolean := false;
  v_reason text;
  v_at timestamptz;
  v_n integer := 0;
  v_outcome text := 'unmatched';
  v_d record;
begin
  if jsonb_typeof(p) is distinct from 'object' then
    raise exception 'provider event: not an object' using errcode = '22023';
  end if;
  v_kind := p ->> 'kind';
  v_provider := btrim(coalesce(p ->> 'provider', ''));
  v_event_id := coalesce(p ->> 'event_id', '');
  v_channel := p ->> 'channel';
  v_client := nullif(btrim(coalesce(p ->> 'client_id', '')), '');
  v_address := nullif(btrim(coalesce(p ->> 'address', '')), '');
  v_sender := btrim(coalesce(p ->> 'sender', ''));
  v_msgid := nullif(btrim(coalesce(p ->> 'provider_message_id', '')), '');
  v_status := p ->> 'status';
  v_reason := left(nullif(btrim(coalesce(p ->> 'reason', '')), ''), 200);
  if v_kind is null or v_kind not in ('opt_out', 'opt_in', 'delivery') then
    raise exception 'provider event: kind' using errcode = '22023';
  end if;
  if v_provider = '' or length(v_provider) > 50 or v_event_id = '' or length(v_event_id) > 200 then
    raise exception 'provider event: provider and event_id' using errcode = '22023';
  end if;
  if v_channel is null or v_channel not in ('email', 'sms') then
    raise exception 'provider event: channel' using errcode = '22023';
  end if;
  if coalesce(length(v_address), 0) > 320 or length(v_sender) > 320 or coalesce(length(v_msgid), 0) > 500
     or coalesce(length(v_client), 0) > 500 then
    raise exception 'provider event: a field is too long' using errcode = '22023';
  end if;
  if jsonb_typeof(p -> 'permanent') = 'boolean' then
    v_perm := (p -> 'permanent')::boolean;
  elsif coalesce(jsonb_typeof(p -> 'permanent'), 'null') <> 'null' then
    raise exception 'provider event: permanent' using errcode = '22023';
  end if;
  -- a time in the future is the provider's clock: now; one more than 30
  -- days old (a replay, a zero time) counts 30 days ago
  v_at := greatest(least(coalesce(nullif(p ->> 'occurred_at', '')::timestamptz, now()), now()), now() - interval '30 days');
  if nullif(p ->> 'organization_id', '') is not null then
    v_org := (p ->> 'organization_id')::uuid;
  end if;
  if v_kind = 'delivery' and (v_msgid is null or v_status is null
      or v_status not in ('delivered', 'bounced', 'complained', 'undelivered', 'deferred', 'unsubscribed')) then
    raise exception 'provider event: delivery needs provider_message_id and a known status' using errcode = '22023';
  end if;
  if v_provider = 'link' and (v_kind = 'delivery' or v_org is null or v_client is null) then
    raise exception 'provider event: a link event names its organisation and client' using errcode = '22023';
  end if;
  if v_provider <> 'link' and v_kind in ('opt_out', 'opt_in') and (v_channel <> 'sms' or v_address is null) then
    raise exception 'provider event: an SMS keyword names the number' using errcode = '22023';
  end if;

  insert into public.automation_provider_events (provider, event_id, kind, outcome)
  values (v_provider, v_event_id, v_kind, 'pending')
  on conflict (provider, event_id) do nothing;
  if not found then
    return 'duplicate';
  end if;

  if v_provider = 'link' then
    -- the token's organisation and client (verified by the function); the
    -- client must be that organisation's
    if exists (select 1 from public.automation_src_clients c
               where c.id::text = v_client and c.organization_id = v_org) then
      if v_kind = 'opt_out' then
        insert into public.automation_opt_outs (organization_id, client_id, channel, source, event_id)
        values (v_org, v_client, v_channel, 'link', v_event_id)
        on conflict (organization_id, client_id, channel) do nothing;
      else
        delete from public.automation_opt_outs o
        where o.organization_id = v_org and o.client_id = v_client and o.channel = v_channel;
      end if;
      v_outcome := 'recorded';
    end if;
  elsif v_kind = 'opt_out' then
    -- an SMS STOP: every organisation that texted this number (from this
    -- sender, where the ledger knows the sender)
    insert into public.automation_suppressions as s
      (organization_id, channel, address, reason, sender, provider, detail, event_id)
    select distinct d.organization_id, 'sms', v_address, 'opted_out', v_sender, v_provider, v_reason, v_event_id
    from public.automation_deliveries d
    where d.channel = 'sms' and d.recipient = v_address
      and (v_sender = '' or coalesce(d.sender, '') in ('', v_sender))
    on conflict (organization_id, channel, address, reason) do update set
      sender = excluded.sender, provider = excluded.provider, event_id = excluded.event_id;
    get diagnostics v_n = row_count;
    if v_n > 0 then
      v_outcome := 'recorded';
    end if;
  elsif v_kind = 'opt_in' then
    delete from public.automation_suppressions s
    where s.channel = 'sms' and s.address = v_address and s.reason = 'opted_out'
      and (v_sender = '' or s.sender in ('', v_sender));
    get diagnostics v_n = row_count;
    if v_n > 0 then
      v_outcome := 'recorded';
    end if;
  else
    -- a delivery event: its ledger row, by the provider's message id; the
    -- recipient must agree when the event names one
    select x.id, x.organization_id, x.execution_id, x.channel, x.recipient, x.delivery_status into v_d
    from public.automation_deliveries x
    where x.provider = v_provider and x.provider_message_id = v_msgid
    order by x.created_at desc
    limit 1
    for update;
    if found and v_d.channel = v_channel
       and (v_address is null or lower(v_address) = lower(v_d.recipient)) then
      v_outcome := 'recorded';
      if public.automation_delivery_status_rank(v_status) >= public.automation_delivery_status_rank(v_d.delivery_status)
         and v_status is distinct from v_d.delivery_status then
        update public.automation_deliveries x set
          delivery_status = v_status, delivery_reason = v_reason, delivery_status_at = v_at
        where x.id = v_d.id;
        if v_status <> 'deferred' then
          insert into public.automation_analytics as a
            (organization_id, workflow_id, date, delivered, bounced, complained, unsubscribed, undelivered)
          select e.organization_id, e.workflow_id, (v_at at time zone 'UTC')::date,
                 (v_status = 'delivered')::int, (v_status = 'bounced')::int, (v_status = 'complained')::int,
                 (v_status = 'unsubscribed')::int, (v_status = 'undelivered')::int
          from public.automation_execution_logs e where e.id = v_d.execution_id
          on conflict (organization_id, workflow_id, date) do update set
            delivered = a.delivered + excluded.delivered, bounced = a.bounced + excluded.bounced,
            complained = a.complained + excluded.complained, unsubscribed = a.unsubscribed + excluded.unsubscribed,
            undelivered = a.undelivered + excluded.undelivered, updated_at = now();
        end if;
      end if;
      if (v_status in ('bounced', 'undelivered') and v_perm) or v_status = 'complained' then
        -- a permanent SMS failure (unreachable number, the carrier's STOP
        -- block) suppresses the number like a hard email bounce
        insert into public.automation_suppressions
          (organization_id, channel, address, reason, provider, detail, event_id)
        values (v_d.organization_id, v_d.channel, v_d.recipient,
                case when v_status = 'complained' then 'complained' else 'bounced' end, v_provider, v_reason, v_event_id)
        on conflict (organization_id, channel, address, reason) do nothing;
      elsif v_status = 'unsubscribed' then
        -- the provider's unsubscribe: the client of that message
        insert into public.automation_opt_outs (organization_id, client_id, channel, source, event_id)
        select v_d.organization_id, e.client_id, v_d.channel, v_provider, v_event_id
        from public.automation_execution_logs e
        where e.id = v_d.execution_id and coalesce(e.client_id, '') <> ''
        on conflict (organization_id, client_id, channel) do nothing;
      end if;
    end if;
  end if;

  if v_outcome = 'recorded' then
    update public.automation_provider_events pe set outcome = v_outcome
    where pe.provider = v_provider and pe.event_id = v_event_id;
  else
    -- not kept: a retry of the provider may match later (the ledger row not
    -- finished yet)
    delete from public.automation_provider_events pe
    where pe.provider = v_provider and pe.event_id = v_event_id;
  end if;
  return v_outcome;
end
$$;
comment on function public.automation_apply_provider_event(jsonb) is
  'Applies one normalised provider event (see automation_record_provider_events); answers recorded, duplicate or unmatched; raises 22023 on a malformed event.';

create or replace function public.automation_record_provider_events(p_events jsonb) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ev jsonb;
  v_outcome text;
  v_recorded integer := 0;
  v_duplicates integer := 0;
  v_unmatched integer := 0;
  v_invalid integer := 0;
begin
  if p_events is null or jsonb_typeof(p_events) <> 'array' then
    raise exception 'automation_record_provider_events: p_events must be a JSON array' using errcode = '22023';
  end if;
  for v_ev in select e from jsonb_array_elements(p_events) e loop
    begin
      -- each event in its own subtransaction: a malformed one fails alone
      v_outcome := public.automation_apply_provider_event(v_ev);
    exception when others then
      v_outcome := 'invalid';
    end;
    case v_outcome
      when 'recorded' then v_recorded := v_recorded + 1;
      when 'duplicate' then v_duplicates := v_duplicates + 1;
      when 'unmatched' then v_unmatched := v_unmatched + 1;
      else v_invalid := v_invalid + 1;
    end case;
  end loop;
  -- the idempotence record outlives every provider's retries (days): rows
  -- older than 90 days go, a bounded number per call
  delete from public.automation_provider_events pe
  where pe.ctid = any (array(select x.ctid from public.automation_provider_events x
                             where x.received_at < now() - interval '90 days' limit 500));
  return jsonb_build_object('recorded', v_recorded, 'duplicates', v_duplicates,
    'unmatched', v_unmatched, 'invalid', v_invalid);
end
$$;
comment on function public.automation_record_provider_events(jsonb) is
  'RPC of the provider-events function. p_events: JSON array of {kind opt_out|opt_in|delivery, provider link|mailgun|twilio|telnyx, event_id, organization_id, client_id, channel email|sms, address, sender, provider_message_id, status, permanent, reason, occurred_at}. Idempotent per (provider, event_id). Link opt_out/opt_in: that client of that organisation (opts out of / back into the channel''s non-transactional messages; the client must belong to the organisation). SMS keyword opt_out: the number is suppressed (no SMS of any class) for every organisation whose ledger has an SMS to it (from that sender where known); opt_in lifts it. delivery: the ledger row (provider, provider_message_id), recipient checked, gets delivery_status and reason (never moved back: automation_delivery_status_rank) and is counted in automation_analytics on the event''s UTC day; bounced or undelivered with permanent, or complained, suppress the address for that organisation and channel, unsubscribed opts the message''s client out. Each event in its own subtransaction: a malformed one is counted invalid and changes nothing. Applied events are remembered 90 days. Answers {recorded, duplicates, unmatched, invalid}.';

-- Analytics that know delivery ------------------------------------------------------------

create or replace view public.automation_delivery_analytics with (security_invoker = true) as
  select a.organization_id, a.workflow_id, a.date,
         coalesce(a.emails_sent, 0) + coalesce(a.sms_sent, 0) as sent,
         a.delivered, a.bounced, a.complained, a.unsubscribed, a.undelivered,
         coalesce(a.failure_count, 0) as failed
  from public.automation_analytics a;
comment on view public.automation_delivery_analytics is
  'Per workflow and UTC day: messages sent (e-mail + SMS handed over), delivered, bounced, complained, unsubscribed and undelivered (provider events, on the event''s day), failed (executions that failed).';

create or replace view public.automation_delivery_health with (security_invoker = true) as
  select a.organization_id,
         sum(coalesce(a.emails_sent, 0) + coalesce(a.sms_sent, 0))::bigint as sent_30d,
         sum(a.delivered)::bigint as delivered_30d,
         sum(a.bounced)::bigint as bounced_30d,
         sum(a.complained)::bigint as complained_30d,
         round(100.0 * sum(a.bounced) / nullif(sum(coalesce(a.emails_sent, 0) + coalesce(a.sms_sent, 0)), 0), 2) as bounce_rate,
         round(100.0 * sum(a.complained) / nullif(sum(coalesce(a.emails_sent, 0) + coalesce(a.sms_sent, 0)), 0), 3) as complaint_rate,
         (select count(*) from public.automation_suppressions s where s.organization_id = a.organization_id) as suppressed,
         (select count(*) from public.automation_opt_outs o where o.organization_id = a.organization_id) as opted_out
  from public.automation_analytics a
  where a.date > (now() at time zone 'UTC')::date - 30
  group by a.organization_id;
comment on view public.automation_delivery_health is
  'Per organisation, the last 30 UTC days: sent, delivered, bounced, complained, bounce_rate and complaint_rate (% of sent), addresses suppressed and clients opted out now. Mailbox providers act on bounce rates above ~2 % and complaint rates above ~0.1-0.3 %.';

revoke all on public.automation_delivery_analytics, public.automation_delivery_health from public, anon, authenticated;
grant select on public.automation_delivery_analytics, public.automation_delivery_health to service_role;

revoke all on function public.automation_address_key(text, text),
  public.automation_message_class(text, jsonb),
  public.automation_record_sms_notices(),
  public.automation_delivery_status_rank(text),
  public.automation_apply_provider_event(jsonb),
  public.automation_record_provider_events(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_address_key(text, text),
  public.automation_message_class(text, jsonb),
  public.automation_record_provider_events(jsonb)
  to service_role;
