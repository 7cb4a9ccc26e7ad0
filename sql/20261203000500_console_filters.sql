-- issue 13, the console's executions list filtered by action or by trigger
-- type: keyset pages, newest first, on their own index. Without them a
-- filter that few or no rows match reads the whole table through
-- automation_execution_logs_created_idx (BenchmarkPages at 200,000
-- executions: 260 ms for an action no row has, 280 ms for such a trigger
-- type; the table's size times that at 1,000,000). Two more entries per
-- claim and report (their updates are not HOT: status and lease columns are
-- indexed).
create index if not exists automation_execution_logs_action_created_idx
  on public.automation_execution_logs (action, created_at desc, id desc);
create index if not exists automation_execution_logs_trigger_created_idx
  on public.automation_execution_logs (trigger_type, created_at desc, id desc);
