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
-- This file redefines automation_finish_deliveries (from 20261202001400);
-- the claim's lookup is in automation_claim_rows of 20261202001810 and the
-- begin's in automation_begin_deliveries of 20261202001720 (one definition
-- of each function for this week's changes). Old and new function binaries
-- call the same signatures. Idempotent.

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

revoke all on function public.automation_claim_rows(text, uuid[], integer, integer),
  public.automation_finish_deliveries(jsonb),
  public.automation_begin_deliveries(jsonb)
  from public, anon, authenticated;
grant execute on function public.automation_finish_deliveries(jsonb),
  public.automation_begin_deliveries(jsonb)
  to service_role;
