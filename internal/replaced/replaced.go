// Package replaced is a test fixture: the database of the system dueflow
// replaces, as a user's install has it (../shared/REPLACED_SYSTEM.md), so that
// tests can upgrade it in place with dueflow's sql/.
//
// It models a Supabase field-service app whose automations lived in SQL:
// text-id app tables (clients 'C-2000'.., jobs 'J-1000'.. from a counter
// function; uuid invoices owned by users, without organization_id; profiles
// with a nullable per-user time zone), the replaced automation tables with
// all their columns (automation_workflows, automation_execution_logs,
// automation_schedules, automation_analytics; the logs' RLS policy
// `for all using (true)`), the monitoring views automation_cron_status and
// automation_system_health with their production columns, the row trigger
// handle_universal_automation_triggers on jobs, clients, estimates and
// invoices, the SQL functions the old cron jobs call, and rows: three
// organisations, workflows in the builder's shapes and older ones, execution
// history of every status including months-old pending rows. The pg_cron jobs
// are a separate file (ApplyCron), since pg_cron lives in one database of a
// cluster.
//
// Apply needs the Supabase stand-ins (internal/supacompat) and none of
// dueflow's migrations. Every file is idempotent and runs in its own
// transaction; the SQL files (sql/*.sql, in name order, cron.sql last) also
// run with psql.
package replaced

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

//go:embed sql/*.sql
var files embed.FS

// Files of the fixture that are not part of the base install.
const (
	olderInstallFile = "sql/older_install.sql"
	cronFile         = "sql/cron.sql"
)

// Organisations (profiles.organization_id; the install has no organisations table).
const (
	OrgA = "10000000-0000-4000-8000-00000000000a" // users UserA1, UserA2 (NULL zone), UserA3: three zones
	OrgB = "10000000-0000-4000-8000-00000000000b" // user UserB1, Europe/London
	OrgC = "10000000-0000-4000-8000-00000000000c" // user UserC1, Australia/Sydney
)

// Users (auth.users and profiles).
const (
	UserA1     = "20000000-0000-4000-8000-0000000000a1" // OrgA, America/New_York
	UserA2     = "20000000-0000-4000-8000-0000000000a2" // OrgA, profiles.timezone NULL
	UserA3     = "20000000-0000-4000-8000-0000000000a3" // OrgA, America/Chicago
	UserB1     = "20000000-0000-4000-8000-0000000000b1" // OrgB, Europe/London
	UserC1     = "20000000-0000-4000-8000-0000000000c1" // OrgC, Australia/Sydney
	UserNoOrgF = "20000000-0000-4000-8000-0000000000f1" // no organisation, no zone
)

// Workflows (automation_workflows), one per shape the install holds.
const (
	WorkflowInvoiceBuilder   = "40000000-0000-4000-8000-000000000001" // A invoice_overdue, builder steps, {daysOverdue: 3}
	WorkflowMaintenance      = "40000000-0000-4000-8000-000000000002" // A maintenance_due, email+sms, delay in template_config, months in trigger_conditions
	WorkflowJobCompleted     = "40000000-0000-4000-8000-000000000003" // A job_completed, nodes/edges
	WorkflowJobStatusChanged = "40000000-0000-4000-8000-000000000004" // A job_status_changed, builder condition status = on-hold
	WorkflowScheduled        = "40000000-0000-4000-8000-000000000005" // B scheduled weekly 09:00, automation_schedules row
	WorkflowInvoiceLegacy    = "40000000-0000-4000-8000-000000000006" // B invoice_overdue, {step_type} steps, {days_overdue: 7}, {{client_name}}
	WorkflowScheduleTime     = "40000000-0000-4000-8000-000000000007" // C schedule_time daily 08:30, automation_schedules row
	WorkflowAppointment      = "40000000-0000-4000-8000-000000000008" // C job_scheduled {hours_before: 24}
	WorkflowDraft            = "40000000-0000-4000-8000-000000000009" // A draft: trigger_type, trigger_config and steps NULL
	WorkflowPaused           = "40000000-0000-4000-8000-00000000000a" // B paused, is_active and enabled false
	WorkflowFlagsDisagree    = "40000000-0000-4000-8000-00000000000b" // C status inactive but is_active true; daysOverdue "5"
	WorkflowSingleAction     = "40000000-0000-4000-8000-00000000000c" // A action_type/action_config, steps []
	WorkflowAIAction         = "40000000-0000-4000-8000-00000000000d" // B job_completed, actionType ai_generate_message
	WorkflowSeasonal         = "40000000-0000-4000-8000-00000000000e" // C maintenance_due {seasonal: true}
)

// Pending execution logs an upgrade must judge (automation_execution_logs).
const (
	LogPendingInvoice120d   = "50000000-0000-4000-8000-000000000001" // {trigger_type, invoice_id, client_id, days_overdue}
	LogPendingJob95d        = "50000000-0000-4000-8000-000000000002" // {trigger_type, table_name, operation, record_id: 'J-1002', new_record}
	LogPendingNoOrg200d     = "50000000-0000-4000-8000-000000000003" // organization_id NULL, automation_id set
	LogPendingScheduled10m  = "50000000-0000-4000-8000-000000000004" // recent scheduled run
	LogPendingInvoice2h     = "50000000-0000-4000-8000-000000000005" // recent invoice reminder
	LogPendingNoWorkflow60d = "50000000-0000-4000-8000-00000000000d" // workflow_id NULL, automation_id only
	LogPendingCancelled45d  = "50000000-0000-4000-8000-000000000011" // invoice since cancelled
)

// Job is one of the install's pg_cron jobs.
type Job struct {
	Name     string
	Schedule string
}

// Jobs are the pg_cron jobs ApplyCron schedules, as the install has them.
var Jobs = []Job{
	{"check-automation-triggers", "* * * * *"},
	{"process-automations", "* * * * *"},
	{"check-overdue-invoices", "0 9 * * *"},
	{"check-maintenance-reminders", "0 8 * * *"},
	{"update-automation-analytics", "0 * * * *"},
	{"cleanup-automation-logs", "0 2 * * 0"},
	{"check-appointment-reminders", "0 * * * *"},
	{"seasonal-maintenance-reminders", "0 9 1 3,6,9,12 *"},
	{"process-automation-queue", "*/5 * * * *"},
}

// Options select the variant of the install.
type Options struct {
	// OlderInstall leaves out clients.organization_id (installs from before
	// that column). The first Apply to a database decides: a later Apply
	// without it does not add the column back.
	OlderInstall bool
}

// Apply creates the replaced system's tables, views, functions, row triggers
// and rows (not its cron jobs: ApplyCron), each file in one transaction.
// Applying it again changes nothing.
func Apply(ctx context.Context, db pgcluster.Beginner, o Options) error {
	names, err := fs.Glob(files, "sql/[0-9]*.sql")
	if err != nil {
		return fmt.Errorf("replaced: list files: %w", err)
	}
	sort.Strings(names)
	if o.OlderInstall {
		names = append(names, olderInstallFile)
	}
	for _, n := range names {
		if err := applyFile(ctx, db, n, ""); err != nil {
			return err
		}
	}
	return nil
}

// CronOptions configure ApplyCron.
type CronOptions struct {
	// Paused schedules the jobs inactive, for tests that must not have them
	// fire; an install has them active.
	Paused bool
}

// ApplyCron schedules the install's pg_cron jobs (Jobs) in db, which must be
// the database pg_cron is installed in and have Apply's functions. Applying
// it again changes nothing (cron.schedule updates a job of the same name).
func ApplyCron(ctx context.Context, db pgcluster.Beginner, o CronOptions) error {
	prefix := ""
	if o.Paused {
		prefix = "select set_config('replaced.cron_paused', 'on', true);\n"
	}
	return applyFile(ctx, db, cronFile, prefix)
}

func applyFile(ctx context.Context, db pgcluster.Beginner, name, prefix string) error {
	b, err := files.ReadFile(name)
	if err != nil {
		return fmt.Errorf("replaced: read %s: %w", name, err)
	}
	return pgcluster.ApplySQL(ctx, db, "replaced "+name, prefix+string(b))
}
