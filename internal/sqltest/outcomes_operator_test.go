package sqltest_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// operate calls automation_cancel_execution or automation_retry_execution.
func operate(t testing.TB, db pgtest.DB, q string, args ...any) automation.Reported {
	t.Helper()
	return pgtest.JSON[automation.Reported](t, db, q, args...)
}

// Cancelling: a pending execution is never claimed; a running one loses its
// lease, so its deliveries are refused and its late report changes nothing.
// Counted once. Finished or unknown executions are refused.
func TestCancelExecution(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 3)
	pending, running, done := execs[0], execs[1], execs[2]
	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, []uuid.UUID{running, done}, 10, 60)
	require.Len(t, got, 2)
	tok := map[uuid.UUID]uuid.UUID{}
	for _, c := range got {
		tok[c.Execution.ID] = c.Execution.LeaseToken
	}
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: done, LeaseToken: tok[done], Status: automation.OutcomeCompleted})[0].Applied)

	r := operate(t, db, `select automation_cancel_execution($1, 'client paid by phone')`, pending)
	assert.Equal(t, automation.Reported{ExecutionID: pending, Applied: true, Status: "cancelled"}, r)
	r = operate(t, db, `select automation_cancel_execution($1)`, running)
	assert.True(t, r.Applied)
	var code, msg string
	require.NoError(t, db.QueryRow(bg, `select error_code, error_message from automation_execution_logs where id = $1`, pending).Scan(&code, &msg))
	assert.Equal(t, [2]string{"cancelled", "client paid by phone"}, [2]string{code, msg})
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where id = $1 and lease_token is not null`, running))

	// the running function goes on: nothing it does lands
	assert.Equal(t, automation.BeginStale, pgtest.BeginDeliveries(t, db, deliveryFor(running, tok[running]))[0].State)
	late := pgtest.Report(t, db, automation.Outcome{ExecutionID: running, LeaseToken: tok[running], Status: automation.OutcomeCompleted})
	assert.False(t, late[0].Applied)
	assert.Equal(t, "stale_lease", late[0].Reason)
	assert.Equal(t, "cancelled", execution(t, db, running).Status)
	// never claimed again, counted once
	pgtest.MakeDue(t, db)
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 60))
	assert.Equal(t, 3, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))

	// refused: finished, already cancelled, unknown id
	r = operate(t, db, `select automation_cancel_execution($1)`, done)
	assert.Equal(t, automation.Reported{ExecutionID: done, Applied: false, Status: "completed", Reason: "not_open"}, r)
	assert.False(t, operate(t, db, `select automation_cancel_execution($1)`, pending).Applied)
	unknown := uuid.New()
	assert.Equal(t, automation.Reported{ExecutionID: unknown, Status: "", Reason: "not_found"},
		operate(t, db, `select automation_cancel_execution($1)`, unknown))
	assert.Equal(t, 3, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))
}

// Retrying: a failed, cancelled or skipped execution goes back to pending,
// due now, attempts reset; its sent deliveries are never sent again, a
// permanently failed one may be; counters count the execution once, by its
// last outcome. Open, completed, past-deadline and unknown ones are refused.
func TestRetryExecution(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 3)
	failed, cancelled, open := execs[0], execs[1], execs[2]
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{failed}, 60)
	tok := got[0].Execution.LeaseToken
	email := deliveryFor(failed, tok)
	sms := automation.DeliveryIntent{ExecutionID: failed, LeaseToken: tok, StepIndex: 1, Channel: "sms", Recipient: "+15555550100",
		Provider: "telnyx", IdempotencyKey: automation.IdempotencyKey(failed, 1, "sms")}
	require.Equal(t, automation.BeginNew, pgtest.BeginDeliveries(t, db, email, sms)[1].State)
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: failed, LeaseToken: tok, Status: automation.OutcomeFailed,
		ErrorCode: automation.CodeInvalidRecipient, Deliveries: []automation.DeliveryResult{
			{IdempotencyKey: email.IdempotencyKey, Status: "sent", ProviderMessageID: "m-1"},
			{IdempotencyKey: sms.IdempotencyKey, Status: "failed", ErrorCode: "invalid_recipient"},
		}})[0].Applied)
	require.True(t, operate(t, db, `select automation_cancel_execution($1)`, cancelled).Applied)
	assert.Equal(t, 2, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))

	// refused: open, unknown
	assert.Equal(t, automation.Reported{ExecutionID: open, Status: "pending", Reason: "not_finished"},
		operate(t, db, `select automation_retry_execution($1)`, open))
	unknown := uuid.New()
	assert.Equal(t, "not_found", operate(t, db, `select automation_retry_execution($1)`, unknown).Reason)

	for _, id := range []uuid.UUID{failed, cancelled} {
		assert.Equal(t, automation.Reported{ExecutionID: id, Applied: true, Status: "pending"},
			operate(t, db, `select automation_retry_execution($1)`, id))
		row := execution(t, db, id)
		assert.Equal(t, "pending", row.Status)
		assert.Zero(t, row.Attempt)
		assert.Nil(t, row.ErrorCode)
	}
	assert.Zero(t, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf), "outcomes taken back")
	assert.Zero(t, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select execution_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))

	// due now (no makeDue): claimed at once; the sent email is not sent again, the failed SMS may be
	got = pgtest.Claim(t, db, automation.ActionInvoiceReminder, []uuid.UUID{failed, cancelled}, 10, 60)
	require.Len(t, got, 2)
	for _, c := range got {
		assert.Equal(t, 1, c.Execution.Attempt)
		if c.Execution.ID == failed {
			email.LeaseToken, sms.LeaseToken = c.Execution.LeaseToken, c.Execution.LeaseToken
			sms.Recipient = "+15555550123" // corrected
			b := pgtest.BeginDeliveries(t, db, email, sms)
			assert.Equal(t, automation.BeginSent, b[0].State, "a sent delivery is never sent again")
			assert.Equal(t, automation.BeginNew, b[1].State)
			require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: failed, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted,
				Deliveries: []automation.DeliveryResult{{IdempotencyKey: sms.IdempotencyKey, Status: "sent"}}})[0].Applied)
		} else {
			require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: cancelled, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted})[0].Applied)
		}
	}
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1 and channel = 'email'`, failed))
	assert.Equal(t, 2, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 2, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select update_automation_analytics()`), "analytics already match the rows")

	// completed: refused; past its deadline: refused (it would only expire again)
	assert.Equal(t, "not_finished", operate(t, db, `select automation_retry_execution($1)`, failed).Reason)
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'skipped', deadline_at = now() - interval '1 minute' where id = $1`, cancelled)
	assert.Equal(t, "past_deadline", operate(t, db, `select automation_retry_execution($1)`, cancelled).Reason)
}
