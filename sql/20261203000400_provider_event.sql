-- issue 14 (the house): automation_apply_provider_event (from
-- 20261202001700_optout.sql) under 80 lines: the event parsed and checked by
-- automation_parse_provider_event, a delivery event applied by
-- automation_apply_delivery_event. Same answers, same order of checks and
-- writes, same 22023 messages.

create or replace function public.automation_parse_provider_event(p jsonb,
  out kind text, out provider text, out event_id text, out channel text, out org uuid, out client text,
  out address text, out sender text, out msgid text, out status text, out perm boolean, out reason text,
  out occurred_at timestamptz)
language plpgsql stable set search_path = public, pg_temp as $$
begin
  perm := false;
  if jsonb_typeof(p) is distinct from 'object' then
    raise exception 'provider event: not an object' using errcode = '22023';
  end if;
  kind := p ->> 'kind';
  provider := btrim(coalesce(p ->> 'provider', ''));
  event_id := coalesce(p ->> 'event_id', '');
  channel := p ->> 'channel';
  client := nullif(btrim(coalesce(p ->> 'client_id', '')), '');
  address := nullif(btrim(coalesce(p ->> 'address', '')), '');
  sender := btrim(coalesce(p ->> 'sender', ''));
  msgid := nullif(btrim(coalesce(p ->> 'provider_message_id', '')), '');
  status := p ->> 'status';
  reason := left(nullif(btrim(coalesce(p ->> 'reason', '')), ''), 200);
  if kind is null or kind not in ('opt_out', 'opt_in', 'delivery') then
    raise exception 'provider event: kind' using errcode = '22023';
  end if;
  if provider = '' or length(provider) > 50 or event_id = '' or length(event_id) > 200 then
    raise exception 'provider event: provider and event_id' using errcode = '22023';
  end if;
  if channel is null or channel not in ('email', 'sms') then
    raise exception 'provider event: channel' using errcode = '22023';
  end if;
  if coalesce(length(address), 0) > 320 or length(sender) > 320 or coalesce(length(msgid), 0) > 500
     or coalesce(length(client), 0) > 500 then
    raise exception 'provider event: a field is too long' using errcode = '22023';
  end if;
  if jsonb_typeof(p -> 'permanent') = 'boolean' then
    perm := (p -> 'permanent')::boolean;
  elsif coalesce(jsonb_typeof(p -> 'permanent'), 'null') <> 'null' then
    raise exception 'provider event: permanent' using errcode = '22023';
  end if;
  -- a time in the future is the provider's clock: now; one more than 30
  -- days old (a replay, a zero time) counts 30 days ago
  occurred_at := greatest(least(coalesce(nullif(p ->> 'occurred_at', '')::timestamptz, now()), now()), now() - interval '30 days');
  if nullif(p ->> 'organization_id', '') is not null then
    org := (p ->> 'organization_id')::uuid;
  end if;
  if kind = 'delivery' and (msgid is null or status is null
      or status not in ('delivered', 'bounced', 'complained', 'undelivered', 'deferred', 'unsubscribed')) then
    raise exception 'provider event: delivery needs provider_message_id and a known status' using errcode = '22023';
  end if;
  if provider = 'link' and (kind = 'delivery' or org is null or client is null) then
    raise exception 'provider event: a link event names its organisation and client' using errcode = '22023';
  end if;
  if provider <> 'link' and kind in ('opt_out', 'opt_in') and (channel <> 'sms' or address is null) then
    raise exception 'provider event: an SMS keyword names the number' using errcode = '22023';
  end if;
end
$$;
comment on function public.automation_parse_provider_event(jsonb) is
  'One normalised provider event (see automation_record_provider_events) as typed fields, trimmed (occurred_at within the last 30 days and not after now; permanent false when absent); raises 22023 on a malformed event (kind, provider and event_id, channel, lengths, permanent, a delivery''s message id and status, a link event''s organisation and client, an SMS keyword''s number).';

create or replace function public.automation_apply_delivery_event(
  p_provider text, p_event_id text, p_channel text, p_address text, p_msgid text, p_status text, p_perm boolean,
  p_reason text, p_at timestamptz)
returns text language plpgsql set search_path = public, pg_temp as $$
declare
  v_outcome text := 'unmatched';
  v_d record;
begin
  -- a delivery event: its ledger row, by the provider's message id; the
  -- recipient must agree when the event names one
  select x.id, x.organization_id, x.execution_id, x.channel, x.recipient, x.delivery_status into v_d
  from public.automation_deliveries x
  where x.provider = p_provider and x.provider_message_id = p_msgid
  order by x.created_at desc
  limit 1
  for update;
  if found and v_d.channel = p_channel
     and (p_address is null or lower(p_address) = lower(v_d.recipient)) then
    v_outcome := 'recorded';
    if public.automation_delivery_status_rank(p_status) >= public.automation_delivery_status_rank(v_d.delivery_status)
       and p_status is distinct from v_d.delivery_status then
      update public.automation_deliveries x set
        delivery_status = p_status, delivery_reason = p_reason, delivery_status_at = p_at
      where x.id = v_d.id;
      if p_status <> 'deferred' then
        insert into public.automation_analytics as a
          (organization_id, workflow_id, date, delivered, bounced, complained, unsubscribed, undelivered)
        select e.organization_id, e.workflow_id, (p_at at time zone 'UTC')::date,
               (p_status = 'delivered')::int, (p_status = 'bounced')::int, (p_status = 'complained')::int,
               (p_status = 'unsubscribed')::int, (p_status = 'undelivered')::int
        from public.automation_execution_logs e where e.id = v_d.execution_id
        on conflict (organization_id, workflow_id, date) do update set
          delivered = a.delivered + excluded.delivered, bounced = a.bounced + excluded.bounced,
          complained = a.complained + excluded.complained, unsubscribed = a.unsubscribed + excluded.unsubscribed,
          undelivered = a.undelivered + excluded.undelivered, updated_at = now();
      end if;
    end if;
    if (p_status in ('bounced', 'undelivered') and p_perm) or p_status = 'complained' then
      -- a permanent SMS failure (unreachable number, the carrier's STOP
      -- block) suppresses the number like a hard email bounce
      insert into public.automation_suppressions
        (organization_id, channel, address, reason, provider, detail, event_id)
      values (v_d.organization_id, v_d.channel, v_d.recipient,
              case when p_status = 'complained' then 'complained' else 'bounced' end, p_provider, p_reason, p_event_id)
      on conflict (organization_id, channel, address, reason) do nothing;
    elsif p_status = 'unsubscribed' then
      -- the provider's unsubscribe: the client of that message
      insert into public.automation_opt_outs (organization_id, client_id, channel, source, event_id)
      select v_d.organization_id, e.client_id, v_d.channel, p_provider, p_event_id
      from public.automation_execution_logs e
      where e.id = v_d.execution_id and coalesce(e.client_id, '') <> ''
      on conflict (organization_id, client_id, channel) do nothing;
    end if;
  end if;
  return v_outcome;
end
$$;
comment on function public.automation_apply_delivery_event(text, text, text, text, text, text, boolean, text, timestamptz) is
  'A delivery event of automation_apply_provider_event: its ledger row by (provider, provider message id), the channel and the recipient (when named) agreeing, gets the status unless it ranks lower (automation_delivery_status_rank), counted in analytics on the event''s UTC day (not deferred); a permanent bounce or undelivered, or a complaint, suppresses the address; an unsubscribe opts the message''s client out of the channel. Answers recorded or unmatched.';

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
  v_perm boolean;
  v_reason text;
  v_at timestamptz;
  v_n integer := 0;
  v_outcome text := 'unmatched';
begin
  select x.kind, x.provider, x.event_id, x.channel, x.org, x.client, x.address, x.sender, x.msgid, x.status, x.perm,
         x.reason, x.occurred_at
    into v_kind, v_provider, v_event_id, v_channel, v_org, v_client, v_address, v_sender, v_msgid, v_status, v_perm,
         v_reason, v_at
  from public.automation_parse_provider_event(p) x;

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
    v_outcome := public.automation_apply_delivery_event(v_provider, v_event_id, v_channel, v_address, v_msgid,
      v_status, v_perm, v_reason, v_at);
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
  'Applies one normalised provider event (see automation_record_provider_events; parsed by automation_parse_provider_event, a delivery event by automation_apply_delivery_event); answers recorded, duplicate or unmatched; raises 22023 on a malformed event.';

revoke all on function public.automation_parse_provider_event(jsonb),
  public.automation_apply_delivery_event(text, text, text, text, text, text, boolean, text, timestamptz),
  public.automation_apply_provider_event(jsonb)
  from public, anon, authenticated;
