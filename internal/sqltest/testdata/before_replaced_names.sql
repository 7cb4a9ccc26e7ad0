-- dueflow as an install had it before 20261202001000_inplace_upgrade.sql
-- (issue 9): analytics columns executions, completed, failed and no
-- success_rate, the integer count actions_executed, the schedule state in
-- automation_schedules. Applied over the current schema by
-- TestUpgradeToReplacedNames to recreate that state; never part of the
-- migrations.

alter table public.automation_analytics rename column execution_count to executions;
alter table public.automation_analytics rename column success_count to completed;
alter table public.automation_analytics rename column failure_count to failed;
alter table public.automation_analytics drop column success_rate;
alter table public.automation_execution_logs rename column actions_count to actions_executed;
alter table public.automation_schedule_state rename to automation_schedules;
alter table public.automation_schedules rename constraint automation_schedule_state_pkey to automation_schedules_pkey;
alter table public.automation_schedules
  rename constraint automation_schedule_state_workflow_id_fkey to automation_schedules_workflow_id_fkey;
alter index public.automation_schedule_state_due_idx rename to automation_schedules_due_idx;
alter policy automation_schedule_state_member_read on public.automation_schedules rename to automation_schedules_member_read;
