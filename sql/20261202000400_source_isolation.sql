-- automation_claim and process_pending_automations, isolated from a source
-- view row they cannot read (moved here from 20261129000500 and ...000600
-- when they changed; automation_claim_rows and process_pending_automations
-- moved on to 20261202000600_text_ids.sql when ids became text). The claim document is built from the adopter's source
-- views; one row a view cannot deliver (a cast that fails, a value out of
-- range) used to abort the claim of the whole batch, every tenant's
-- executions in it, at every ring. Now the batch is claimed set-based as
-- before; when that raises, it is claimed one execution at a time, and an
-- execution whose own rows cannot be read fails alone (error_code
-- source_error, message masked), visible to operators and retryable with
-- automation_retry_execution once the view is mended. Idempotent.

-- automation_claim_rows (the set-based claim): moved to 20261202000600_text_ids.sql, then to
-- 20261202000800_workflow_spec_wiring.sql.

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
        if v_state in ('40001', '40P01', '57014') then
          raise; -- a serialization failure, deadlock or cancel is not the row's fault: the claim fails, retried later
        end if;
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

revoke all on function public.automation_claim(text, uuid[], integer, integer)
  from public, anon, authenticated;
grant execute on function public.automation_claim(text, uuid[], integer, integer) to service_role;

-- The dispatcher's premise skips, isolated -----------------------------------

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

-- process_pending_automations: moved to 20261202000600_text_ids.sql, then to
-- 20261202000800_workflow_spec_wiring.sql.

revoke all on function public.automation_dispatch_step_failed(text, text, text),
  public.automation_dispatch_step_done(text)
  from public, anon, authenticated;
