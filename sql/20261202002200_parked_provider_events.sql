-- dueflow: a delivery event that arrives before its ledger row knows the
-- provider's message id is parked, and applied when the id is recorded.
--
-- The function records a chunk's provider answers (the message ids) after
-- the chunk is sent, and a fast carrier or mailbox can report "delivered"
-- or "bounced" before that. Such an event matched nothing and was dropped
-- with a 200, so the provider never sent it again: a bounce that never
-- suppressed the address, a rejected SMS that stayed "sent". Now an event
-- whose (provider, message id) no ledger row has yet is kept for 7 days in
-- automation_parked_provider_events and applied by a statement trigger on
-- automation_deliveries as soon as a row gets that id. An event that found
-- its row but not its recipient is still dropped (it is not that message).

create table if not exists public.automation_parked_provider_events (
  provider text not null,
  event_id text not null,
  provider_message_id text not null,
  event jsonb not null,
  parked_at timestamptz not null default now(),
  primary key (provider, event_id)
);
create index if not exists automation_parked_provider_events_message_idx
  on public.automation_parked_provider_events (provider, provider_message_id);
create index if not exists automation_parked_provider_events_parked_idx
  on public.automation_parked_provider_events (parked_at);
comment on table public.automation_parked_provider_events is
  'Delivery events whose provider message id no ledger row had yet when they arrived (the chunk''s answers not recorded yet): applied by automation_apply_parked_provider_events when a delivery gets that id, dropped after 7 days. The event as the function normalised it (it may name the recipient, as the ledger does).';

alter table public.automation_parked_provider_events enable row level security;
revoke all on public.automation_parked_provider_events from public, anon, authenticated;
grant all on public.automation_parked_provider_events to service_role;

create or replace function public.automation_park_provider_event(p jsonb) returns boolean
language plpgsql set search_path = public, pg_temp as $$
begin
  -- only a delivery event no ledger row can claim yet; one whose row exists
  -- but disagrees (another recipient, another channel) is not that message
  if p ->> 'kind' is distinct from 'delivery'
     or exists (select 1 from public.automation_deliveries d
                where d.provider = btrim(p ->> 'provider') and d.provider_message_id = btrim(p ->> 'provider_message_id')) then
    return false;
  end if;
  insert into public.automation_parked_provider_events (provider, event_id, provider_message_id, event)
  values (btrim(p ->> 'provider'), p ->> 'event_id', btrim(p ->> 'provider_message_id'), p)
  on conflict (provider, event_id) do nothing;
  return true;
end
$$;
comment on function public.automation_park_provider_event(jsonb) is
  'Parks an unmatched delivery event (automation_apply_provider_event answered unmatched) when no ledger row has its (provider, provider_message_id) yet; answers whether it was parked.';

create or replace function public.automation_apply_parked_event(p_provider text, p_event_id text) returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  v_event jsonb;
begin
  -- taken and applied in this function's one subtransaction: a failure (a
  -- deadlock, a lock timeout) rolls the delete back with it, and the event
  -- stays parked for the next sweep
  delete from public.automation_parked_provider_events p
  where p.provider = p_provider and p.event_id = p_event_id
  returning p.event into v_event;
  if v_event is null then
    return false;
  end if;
  perform public.automation_apply_provider_event(v_event);
  return true;
exception when others then
  raise warning 'dueflow: a parked provider event could not be applied yet (SQLSTATE %); it stays parked', sqlstate;
  return false;
end
$$;
comment on function public.automation_apply_parked_event(text, text) is
  'Applies one parked delivery event (automation_apply_provider_event) and removes it, in one subtransaction: when the apply fails the event stays parked (a later sweep retries it). Answers whether it was applied.';

create or replace function public.automation_apply_parked_provider_events() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ev record;
begin
  -- usually empty (one probe, then nothing); otherwise one index probe
  -- per message id of the statement
  if not exists (select 1 from public.automation_parked_provider_events) then
    return null;
  end if;
  for v_ev in
    select p.provider, p.event_id
    from public.automation_parked_provider_events p
    join (select distinct n.provider, n.provider_message_id from new_rows n
          where n.provider_message_id is not null) n
      on p.provider = n.provider and p.provider_message_id = n.provider_message_id
    order by p.parked_at, p.event_id
  loop
    perform public.automation_apply_parked_event(v_ev.provider, v_ev.event_id);
  end loop;
  return null;
end
$$;
comment on function public.automation_apply_parked_provider_events() is
  'Trigger (statement, after update of automation_deliveries): applies the parked delivery events of every row of the statement that now has their (provider, provider_message_id), each alone (automation_apply_parked_event).';

create or replace function public.automation_sweep_parked_provider_events(
  p_limit integer default 100, p_since interval default null) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ev record;
  v_n integer := 0;
begin
  -- what the trigger could not see: an event parked while the ledger's
  -- transaction that recorded its id was still open, or one whose apply
  -- failed; bounded per call, and to the events parked in the last p_since
  -- when given (a webhook shared with another sender parks that sender's
  -- events too: a frequent sweep reads only the recent ones, by parked_at)
  for v_ev in
    select p.provider, p.event_id
    from public.automation_parked_provider_events p
    where (p_since is null or p.parked_at >= now() - p_since)
      and exists (select 1 from public.automation_deliveries d
                  where d.provider = p.provider and d.provider_message_id = p.provider_message_id)
    order by p.parked_at, p.event_id
    limit greatest(coalesce(p_limit, 100), 0)
  loop
    if public.automation_apply_parked_event(v_ev.provider, v_ev.event_id) then
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end
$$;
comment on function public.automation_sweep_parked_provider_events(integer, interval) is
  'Applies (at most p_limit) parked delivery events whose message id a ledger row now has, among those parked in the last p_since (all when null): the ones the trigger could not see (parked while the ledger''s transaction was open) or could not apply. Run by automation_record_provider_events on every call (the last 15 minutes) and by automation_cleanup (all). Answers how many were applied.';

drop trigger if exists automation_deliveries_parked_events on public.automation_deliveries;
create trigger automation_deliveries_parked_events after update on public.automation_deliveries
  referencing new table as new_rows
  for each statement execute function public.automation_apply_parked_provider_events();

create or replace function public.automation_record_provider_events(p_events jsonb) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ev jsonb;
  v_outcome text;
  v_recorded integer := 0;
  v_duplicates integer := 0;
  v_unmatched integer := 0;
  v_parked integer := 0;
  v_invalid integer := 0;
begin
  if p_events is null or jsonb_typeof(p_events) <> 'array' then
    raise exception 'automation_record_provider_events: p_events must be a JSON array' using errcode = '22023';
  end if;
  for v_ev in select e from jsonb_array_elements(p_events) e loop
    begin
      -- each event in its own subtransaction: a malformed one fails alone
      v_outcome := public.automation_apply_provider_event(v_ev);
      if v_outcome = 'unmatched' then
        if public.automation_park_provider_event(v_ev) then
          v_parked := v_parked + 1;
        else
          -- the ledger row may have got its id since the lookup (another
          -- transaction committed in between): once more
          v_outcome := public.automation_apply_provider_event(v_ev);
        end if;
      end if;
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
  -- older than 90 days go, parked events after 7, a bounded number per call
  delete from public.automation_provider_events pe
  where pe.ctid = any (array(select x.ctid from public.automation_provider_events x
                             where x.received_at < now() - interval '90 days' limit 500));
  delete from public.automation_parked_provider_events pe
  where pe.ctid = any (array(select x.ctid from public.automation_parked_provider_events x
                             where x.parked_at < now() - interval '7 days' limit 500));
  perform public.automation_sweep_parked_provider_events(100, interval '15 minutes');
  return jsonb_build_object('recorded', v_recorded, 'duplicates', v_duplicates,
    'unmatched', v_unmatched, 'parked', v_parked, 'invalid', v_invalid);
end
$$;
comment on function public.automation_record_provider_events(jsonb) is
  'RPC of the provider-events function. p_events: JSON array of {kind opt_out|opt_in|delivery, provider link|mailgun|twilio|telnyx, event_id, organization_id, client_id, channel email|sms, address, sender, provider_message_id, status, permanent, reason, occurred_at}. Idempotent per (provider, event_id). Link opt_out/opt_in: that client of that organisation (opts out of / back into the channel''s non-transactional messages; the client must belong to the organisation). SMS keyword opt_out: the number is suppressed (no SMS of any class) for every organisation whose ledger has an SMS to it (from that sender where known); opt_in lifts it. delivery: the ledger row (provider, provider_message_id), recipient checked, gets delivery_status and reason (never moved back: automation_delivery_status_rank) and is counted in automation_analytics on the event''s UTC day; bounced or undelivered with permanent, or complained, suppress the address for that organisation and channel, unsubscribed opts the message''s client out. A delivery event whose message id no ledger row has yet is parked (automation_parked_provider_events, 7 days) and applied when the id is recorded. Each event in its own subtransaction: a malformed one is counted invalid and changes nothing. Applied events are remembered 90 days. Answers {recorded, duplicates, unmatched (parked included), parked, invalid}.';
revoke all on function public.automation_record_provider_events(jsonb) from public, anon, authenticated;
grant execute on function public.automation_record_provider_events(jsonb) to service_role;
revoke all on function public.automation_park_provider_event(jsonb), public.automation_apply_parked_provider_events(),
  public.automation_apply_parked_event(text, text), public.automation_sweep_parked_provider_events(integer, interval)
  from public, anon, authenticated;
grant execute on function public.automation_sweep_parked_provider_events(integer, interval) to service_role;

-- The SMS notices' statement trigger joins its old and new transition
-- tables (no statistics, no index) in one pass: a nested loop is quadratic
-- in the statement's rows. (Only there: the counter triggers also join real
-- tables, whose index probes a nested loop needs.)
alter function public.automation_record_sms_notices() set enable_nestloop = off;
alter function public.automation_record_sms_notices() set enable_mergejoin = off;
