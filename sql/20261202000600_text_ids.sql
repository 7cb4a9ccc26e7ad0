-- Ids of any type: subject, client, job and invoice ids cross dueflow as
-- text, so an app whose ids are uuid, bigint or 'C-2001' adopts dueflow
-- without fake uuids. Organisation (tenant), workflow and execution ids stay
-- uuid.
--
-- * automation_execution_logs.subject_id and client_id become text (an
--   organisation subject's id as its uuid text). A uuid id's text is exactly
--   what format('%s', uuid) wrote into the occurrence keys, so the keys of
--   existing rows stay byte-identical: no reminder is created again.
-- * The checks, the claim and the dispatcher read the source views' ids as
--   text (x.id::text: a no-op on a text column, so an index on the view's
--   expression still serves the lookup; a view still delivering uuid or
--   bigint ids keeps working, without that index). A NULL or empty id is
--   left out; the claim document carries every id as a JSON string.
-- * The reference views over dueflow's own tables:
--   20261202000601_text_ids_reference.sql.
-- The five check bodies, automation_claim_rows and
-- process_pending_automations were moved here when ids became text, and on
-- to 20261202000800_workflow_spec_wiring.sql since. Idempotent.

-- Column types ----------------------------------------------------------------

do $migration$
declare
  v_alter text;
begin
  select string_agg(format('alter column %I type text using %I::text', a.attname, a.attname), ', ' order by a.attnum)
    into v_alter
  from pg_attribute a
  where a.attrelid = 'public.automation_execution_logs'::regclass
    and a.attname in ('subject_id', 'client_id') and not a.attisdropped
    and a.atttypid <> 'text'::regtype;
  if v_alter is not null then
    -- one rewrite of the table; its indexes (automation_execution_logs_pending_subject_idx) are rebuilt with it
    execute 'alter table public.automation_execution_logs ' || v_alter;
  end if;
end
$migration$;
comment on column public.automation_execution_logs.subject_id is
  'The subject''s id as text (invoice or job id as the source view delivers it, the client id, or the organisation''s uuid).';
comment on column public.automation_execution_logs.client_id is
  'The client''s id as text, as automation_src_clients delivers it; NULL for an organisation-addressed run.';

-- The five check bodies (automation_check_invoices_run, ..._maintenance_run,
-- ..._appointments_run, ..._scheduled_run, ..._stale_jobs_run),
-- automation_claim_rows and process_pending_automations: moved on to
-- 20261202000800_workflow_spec_wiring.sql (workflows by their spec).
