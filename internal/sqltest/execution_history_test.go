package sqltest_test

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
	Attempt, StepIndex, DispatchCount              int
	ClaimedAt, LeaseExpiresAt, DispatchedAt        *time.Time
	Detail                                         map[string]any
}

func executionEvents(t testing.TB, db pgtest.DB, id any) []historyEvent {
	t.Helper()
	return pgtest.JSON[[]historyEvent](t, db, `select coalesce(jsonb_agg(jsonb_build_object('Kind', kind,
		'Status', coalesce(status, ''), 'Outcome', coalesce(outcome, ''), 'ErrorCode', coalesce(error_code, ''),
		'ErrorMessage', coalesce(error_message, ''), 'Attempt', coalesce(attempt, -1), 'StepIndex', coalesce(step_index, -1),
		'DispatchCount', coalesce(dispatch_count, -1), 'ClaimedAt', claimed_at, 'LeaseExpiresAt', lease_expires_at,
		'DispatchedAt', dispatched_at, 'Detail', detail) order by at, id), '[]')
		from automation_execution_events where execution_id = $1`, id)
}

// A retried execution keeps its whole history through the real RPCs:
// dispatch, claim, retry with the provider's error, dispatch, claim,
// completed: one row per attempt, with its claim and dispatch. A dispatch,
// a claim and an update that moves no status append nothing.
func TestExecutionHistoryThroughRPCs(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, _, execs := overdueSetup(t, db, 1, "42")
	require.Len(t, execs, 1)
	id := execs[0]
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:54321/functions/v1/invoice-reminder", 10)

	pgtest.MakeDue(t, db)
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	first := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, first, 1)
	// nothing that moves a status: the trigger data, updated_at, a no-op statement
	pgtest.Exec(t, db, `update automation_execution_logs set trigger_data = trigger_data || '{"x":1}', updated_at = now() where id = $1`, id)
	pgtest.Exec(t, db, `update automation_execution_logs set status = status`)
	assert.Empty(t, executionEvents(t, db, id), "dispatch, claim and no-op updates")

	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: first[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, ErrorCode: automation.CodeProviderRetryable, ErrorMessage: "503 from provider"})
	require.True(t, r[0].Applied)
	pgtest.MakeDue(t, db)
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	second := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, second, 1)
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: second[0].Execution.LeaseToken,
		Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	require.True(t, r[0].Applied)

	ev := executionEvents(t, db, id)
	require.Len(t, ev, 2)
	// the first attempt: its claim, lease and dispatch, and its error, overwritten on the row since
	assert.Equal(t, "reported", ev[0].Kind)
	assert.Equal(t, "retry", ev[0].Outcome)
	assert.Equal(t, "pending", ev[0].Status)
	assert.Equal(t, 1, ev[0].Attempt)
	assert.Equal(t, string(automation.CodeProviderRetryable), ev[0].ErrorCode)
	assert.Equal(t, "503 from provider", ev[0].ErrorMessage)
	assert.Equal(t, 1, ev[0].DispatchCount)
	require.NotNil(t, ev[0].ClaimedAt)
	require.NotNil(t, ev[0].DispatchedAt)
	require.NotNil(t, ev[0].LeaseExpiresAt)
	assert.WithinDuration(t, first[0].Execution.LeaseExpiresAt, *ev[0].LeaseExpiresAt, time.Millisecond)
	assert.NotNil(t, ev[0].Detail["next_attempt_at"])
	// the second: completed
	assert.Equal(t, "completed", ev[1].Outcome)
	assert.Equal(t, 2, ev[1].Attempt)
	assert.Equal(t, 2, ev[1].DispatchCount)
	require.NotNil(t, ev[1].LeaseExpiresAt)
	assert.WithinDuration(t, second[0].Execution.LeaseExpiresAt, *ev[1].LeaseExpiresAt, time.Millisecond)
	assert.Empty(t, ev[1].ErrorCode)
	assert.Equal(t, "", pgtest.Text(t, db, `select coalesce(error_code, '') from automation_execution_logs where id = $1`, id))
	assert.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_execution_events where organization_id = $1`, org))
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
		Status: automation.OutcomeRetry, Deferred: true, ErrorCode: automation.CodeProviderRetryable, ErrorMessage: "rate limited"})
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
		"snoozed/snoozed/pending", "reported/deferred/pending", "lease_expired//pending",
		"status//cancelled", "status//pending",
	}, lines)
	require.Len(t, ev, 5)
	assert.Equal(t, 1, ev[0].StepIndex, "the step it resumes at")
	assert.EqualValues(t, 0, ev[0].Detail["from_step"])
	assert.Equal(t, 1, ev[0].Attempt, "the attempt that ran (given back)")
	assert.EqualValues(t, 1, ev[1].Detail["deferrals"])
	assert.Equal(t, "rate limited", ev[1].ErrorMessage)
	assert.Equal(t, "lease_expired", ev[2].ErrorCode)
	for _, e := range ev[:3] {
		assert.NotNil(t, e.ClaimedAt, "an attempt carries its claim")
	}
	assert.Equal(t, "operator said so", ev[3].ErrorMessage)
	assert.Equal(t, "pending", ev[3].Detail["from"])
	assert.Nil(t, ev[3].ClaimedAt)
	assert.Equal(t, "cancelled", ev[4].Detail["from"])

	// expired before it could run: a status move of the claim's statement
	_, _, _, execs2 := overdueSetup(t, db, 2, "6")
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '2 minutes', deadline_at = now() - interval '1 minute' where id = $1`, execs2[0])
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs2, 10, 60))
	ev = executionEvents(t, db, execs2[0])
	require.Len(t, ev, 1)
	assert.Equal(t, "status", ev[0].Kind)
	assert.Equal(t, "failed", ev[0].Status)
	assert.Equal(t, string(automation.CodeExpired), ev[0].ErrorCode)
}

// The events go with their execution when the cleanup deletes it;
// operator actions older than the retention go too.
func TestExecutionHistoryCleanup(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	sched := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"every_minute"}`})
	pgtest.Int(t, db, `select check_automation_triggers()`) // creates the schedule
	pgtest.Exec(t, db, `update automation_schedule_state set next_run_at = now() - interval '1 minute' where workflow_id = $1`, sched)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	run := pgtest.ExecutionIDs(t, db, sched)
	require.Len(t, run, 1)
	got := pgtest.ClaimDue(t, db, automation.ActionRunWorkflow, run, 60)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: run[0], LeaseToken: got[0].Execution.LeaseToken, Status: automation.OutcomeCompleted})
	require.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_events where execution_id = $1`, run[0]))

	// an old operator action and a recent one on a kept execution
	_, _, _, kept := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `select automation_operator_act('cancel', $1, 'alice')`, kept[0])
	pgtest.Exec(t, db, `update automation_operator_actions set at = now() - interval '100 days'`)
	pgtest.Exec(t, db, `select automation_operator_act('retry', $1, 'bob')`, kept[0])

	pgtest.Exec(t, db, `update automation_execution_logs set completed_at = now() - interval '100 days' where id = $1`, run[0])
	require.Equal(t, 1, pgtest.Int(t, db, `select automation_cleanup()`), "the scheduled run")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_events where execution_id = $1`, run[0]))
	assert.Equal(t, "status/cancelled,status/pending", pgtest.Text(t, db, `select string_agg(kind || '/' || status, ',' order by id)
		from automation_execution_events where execution_id = $1`, kept[0]), "a kept execution keeps its history")
	assert.Equal(t, "bob", pgtest.Text(t, db, `select string_agg(actor, ',') from automation_operator_actions`))
}
