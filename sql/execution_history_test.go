package migrations_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// historyEvent is one automation_execution_events row as the tests read it.
type historyEvent struct {
	Kind, Status, Outcome, ErrorCode, ErrorMessage string
	Attempt, StepIndex                             int
	Lease                                          bool
	Detail                                         map[string]any
}

func executionEvents(t testing.TB, db pgtest.DB, id any) []historyEvent {
	t.Helper()
	return pgtest.JSON[[]historyEvent](t, db, `select coalesce(jsonb_agg(jsonb_build_object('Kind', kind,
		'Status', coalesce(status, ''), 'Outcome', coalesce(outcome, ''), 'ErrorCode', coalesce(error_code, ''),
		'ErrorMessage', coalesce(error_message, ''), 'Attempt', coalesce(attempt, -1), 'StepIndex', coalesce(step_index, -1),
		'Lease', lease_expires_at is not null, 'Detail', detail) order by at, id), '[]')
		from automation_execution_events where execution_id = $1`, id)
}

// A retried execution keeps its whole history through the real RPCs:
// dispatch, claim, retry with the provider's error, dispatch, claim,
// completed; an update that moves nothing appends nothing.
func TestExecutionHistoryThroughRPCs(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, _, execs := overdueSetup(t, db, 1, "42")
	require.Len(t, execs, 1)
	id := execs[0]
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:54321/functions/v1/invoice-reminder", 10)

	pgtest.MakeDue(t, db) // changes next_attempt_at only: no event
	assert.Empty(t, executionEvents(t, db, id))
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	first := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, first, 1)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: first[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, ErrorCode: automation.ErrProviderRetryable, ErrorMessage: "503 from provider"})
	require.True(t, r[0].Applied)

	// nothing relevant: the trigger data, updated_at, a second no-op statement
	pgtest.Exec(t, db, `update automation_execution_logs set trigger_data = trigger_data || '{"x":1}', updated_at = now() where id = $1`, id)
	pgtest.Exec(t, db, `update automation_execution_logs set status = status`)
	require.Len(t, executionEvents(t, db, id), 3)

	pgtest.MakeDue(t, db)
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	second := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, second, 1)
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: second[0].Execution.LeaseToken,
		Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	require.True(t, r[0].Applied)

	ev := executionEvents(t, db, id)
	require.Len(t, ev, 6)
	kinds := make([]string, len(ev))
	for i, e := range ev {
		kinds[i] = e.Kind
	}
	assert.Equal(t, []string{"dispatched", "claimed", "reported", "dispatched", "claimed", "reported"}, kinds)
	assert.EqualValues(t, 1, ev[0].Detail["dispatch"])
	assert.EqualValues(t, 2, ev[3].Detail["dispatch"])
	// two claims: attempts 1 and 2, each with its lease
	assert.Equal(t, 1, ev[1].Attempt)
	assert.True(t, ev[1].Lease)
	assert.Equal(t, "running", ev[1].Status)
	assert.Equal(t, 2, ev[4].Attempt)
	assert.True(t, ev[4].Lease)
	// the first attempt's error, overwritten on the row since
	assert.Equal(t, "retry", ev[2].Outcome)
	assert.Equal(t, "pending", ev[2].Status)
	assert.Equal(t, 1, ev[2].Attempt)
	assert.Equal(t, automation.ErrProviderRetryable, ev[2].ErrorCode)
	assert.Equal(t, "503 from provider", ev[2].ErrorMessage)
	assert.False(t, ev[2].Lease)
	assert.Equal(t, "completed", ev[5].Outcome)
	assert.Equal(t, 2, ev[5].Attempt)
	assert.Empty(t, ev[5].ErrorCode)
	assert.Equal(t, "", pgtest.Text(t, db, `select coalesce(error_code, '') from automation_execution_logs where id = $1`, id))
	assert.Equal(t, 6, pgtest.Int(t, db, `select count(*) from automation_execution_events where organization_id = $1`, org))
}

// Snooze, deferral, lease expiry and moves outside a report (expired before
// running, cancelled, reopened) each name what happened.
func TestExecutionHistoryKinds(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	id := execs[0]

	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	until := time.Now().Add(time.Hour)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeSnoozed, StepIndex: 1, SnoozeUntil: &until, ActionsExecuted: 1})
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, Deferred: true, ErrorCode: automation.ErrProviderRetryable, ErrorMessage: "rate limited"})
	pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, id)
	pgtest.Int(t, db, `select process_pending_automations()`)
	pgtest.Exec(t, db, `select automation_cancel_execution($1, 'operator said so')`, id)
	pgtest.Exec(t, db, `select automation_retry_execution($1)`, id)

	ev := executionEvents(t, db, id)
	var lines []string
	for _, e := range ev {
		lines = append(lines, e.Kind+"/"+e.Outcome+"/"+e.Status)
	}
	assert.Equal(t, []string{
		"claimed//running", "snoozed/snoozed/pending",
		"claimed//running", "reported/deferred/pending",
		"claimed//running", "lease_expired//pending",
		"status//cancelled", "status//pending",
	}, lines)
	require.Len(t, ev, 8)
	assert.Equal(t, 1, ev[1].StepIndex, "the step it resumes at")
	assert.EqualValues(t, 0, ev[1].Detail["from_step"])
	assert.EqualValues(t, 1, ev[3].Detail["deferrals"])
	assert.Equal(t, "rate limited", ev[3].ErrorMessage)
	assert.Equal(t, "lease_expired", ev[5].ErrorCode)
	assert.Equal(t, "operator said so", ev[6].ErrorMessage)
	assert.Equal(t, "pending", ev[6].Detail["from"])

	// expired before it could run: a status move of the claim's statement
	_, _, _, execs2 := overdueSetup(t, db, 2, "6")
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '2 minutes', deadline_at = now() - interval '1 minute' where id = $1`, execs2[0])
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs2, 10, 60))
	ev = executionEvents(t, db, execs2[0])
	require.Len(t, ev, 1)
	assert.Equal(t, "status", ev[0].Kind)
	assert.Equal(t, "failed", ev[0].Status)
	assert.Equal(t, automation.ErrExpired, ev[0].ErrorCode)
}

// The events go with their execution when the cleanup deletes it; the
// events and operator actions older than the retention go too.
func TestExecutionHistoryCleanup(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	sched := pgtest.CreateWorkflow(t, db, org, "scheduled", `{"frequency":"every_minute"}`, "")
	pgtest.Int(t, db, `select check_automation_triggers()`) // creates the schedule
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = now() - interval '1 minute' where workflow_id = $1`, sched)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	run := pgtest.ExecutionIDs(t, db, sched)
	require.Len(t, run, 1)
	got := pgtest.ClaimDue(t, db, automation.ActionRunWorkflow, run, 60)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: run[0], LeaseToken: got[0].Execution.LeaseToken, Status: automation.OutcomeCompleted})
	require.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_execution_events where execution_id = $1`, run[0]))

	// a kept execution's old event, an old operator action
	_, _, _, kept := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `select automation_operator_act('cancel', $1, 'alice')`, kept[0])
	require.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_events where execution_id = $1`, kept[0]))
	pgtest.Exec(t, db, `update automation_execution_events set at = now() - interval '100 days' where execution_id = $1`, kept[0])
	pgtest.Exec(t, db, `update automation_operator_actions set at = now() - interval '100 days'`)
	pgtest.Exec(t, db, `select automation_operator_act('retry', $1, 'bob')`, kept[0])

	pgtest.Exec(t, db, `update automation_execution_logs set completed_at = now() - interval '100 days' where id = $1`, run[0])
	require.Equal(t, 1, pgtest.Int(t, db, `select automation_cleanup()`), "the scheduled run")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_events where execution_id = $1`, run[0]))
	assert.Equal(t, "status/pending", pgtest.Text(t, db, `select string_agg(kind || '/' || status, ',') from automation_execution_events where execution_id = $1`, kept[0]),
		"the old cancel went, the recent retry stays")
	assert.Equal(t, "bob", pgtest.Text(t, db, `select string_agg(actor, ',') from automation_operator_actions`))
}
