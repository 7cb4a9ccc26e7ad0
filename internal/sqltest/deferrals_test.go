package sqltest_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// deferrals reads an execution's deferral count.
func deferrals(t *testing.T, db pgtest.DB, id uuid.UUID) int {
	t.Helper()
	return pgtest.Int(t, db, `select deferrals from automation_execution_logs where id = $1`, id)
}

// deferNow claims id (made due) and reports a deferred retry with code and
// retryAfter; it answers the report's status.
func deferNow(t *testing.T, db pgtest.DB, id uuid.UUID, code automation.Code, retryAfter int) string {
	t.Helper()
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{id}, 60)
	require.Equal(t, 1, got[0].Execution.Attempt, "a deferral gave its attempt back")
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, Deferred: true, ErrorCode: code, ErrorMessage: "telnyx: " + string(code), RetryAfterSecs: retryAfter})
	require.True(t, r[0].Applied)
	return string(r[0].Status)
}

// A rate limit with Retry-After: the attempt is given back (even with one
// attempt allowed), the deferral counted, the provider's code recorded and
// its Retry-After honoured; a plain retry (a function from before the
// deferrals) still spends the attempt.
func TestDeferralGivesAttemptBack(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "5")
	id := execs[0]
	pgtest.Exec(t, db, `update automation_execution_logs set max_attempts = 1`)
	for n := 1; n <= 3; n++ {
		before := time.Now()
		assert.Equal(t, "pending", deferNow(t, db, id, "rate_limited", 120))
		row := execution(t, db, id)
		assert.Equal(t, "pending", row.Status)
		assert.Zero(t, row.Attempt, "no attempt spent")
		assert.Equal(t, n, deferrals(t, db, id))
		require.NotNil(t, row.ErrorCode)
		assert.Equal(t, "rate_limited", *row.ErrorCode)
		assert.WithinDuration(t, before.Add(120*time.Second), row.NextAttemptAt, 5*time.Second, "Retry-After honoured")
		assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60), "not due before Retry-After")
	}
	assert.Equal(t, 1, pgtest.Int(t, db, `select deferred from automation_queue_health`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select pending from automation_queue_health`), "a deferred execution is pending")
	assert.Zero(t, pgtest.Int(t, db, `select coalesce(execution_count, 0) from automation_workflows where id = $1`, wf), "nothing counted yet")

	// the same failure reported the old way spends the only attempt
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, ErrorCode: "provider_unavailable"})
	assert.Equal(t, "failed", string(r[0].Status))
	row := execution(t, db, id)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeMaxAttempts), *row.ErrorCode)
	assert.Equal(t, 3, deferrals(t, db, id))
	assert.Zero(t, pgtest.Int(t, db, `select deferred from automation_queue_health`))

	// "deferred" means nothing on a final outcome
	_, _, _, execs2 := overdueSetup(t, db, 2, "6")
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs2, 60)
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs2[0], LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeCompleted, Deferred: true, ActionsExecuted: 1})
	assert.Equal(t, "completed", string(r[0].Status))
	assert.Equal(t, 1, execution(t, db, execs2[0]).Attempt)
	assert.Zero(t, deferrals(t, db, execs2[0]))
}

// A deadline cut is due again at once (the next tick rings it) and spends
// nothing; other deferrals without Retry-After back off gently: 30 s, 60 s,
// ... capped at 15 min, +-20 %.
func TestDeferralBackoff(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	id := execs[0]

	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, Deferred: true, ErrorCode: "deadline"})
	require.True(t, r[0].Applied)
	row := execution(t, db, id)
	assert.Equal(t, "pending", row.Status)
	assert.Zero(t, row.Attempt)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, "deadline", *row.ErrorCode)
	again := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, again, 1, "claimable at once, without being made due")
	assert.Equal(t, 1, again[0].Execution.Attempt)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: again[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, Deferred: true, ErrorCode: "deadline"})
	assert.Equal(t, 2, deferrals(t, db, id))

	for _, base := range []time.Duration{120 * time.Second, 240 * time.Second} { // the 3rd and 4th deferral
		before := time.Now()
		assert.Equal(t, "pending", deferNow(t, db, id, "provider_unavailable", 0))
		delay := execution(t, db, id).NextAttemptAt.Sub(before)
		assert.GreaterOrEqual(t, delay, time.Duration(float64(base)*0.8)-2*time.Second, "delay %s", delay)
		assert.LessOrEqual(t, delay, time.Duration(float64(base)*1.2)+2*time.Second, "delay %s", delay)
	}
	assert.Zero(t, execution(t, db, id).Attempt)
	for _, n := range []int{1, 6, 50, 1000} {
		secs := pgtest.Int(t, db, `select extract(epoch from automation_deferral_backoff($1))::int`, n)
		assert.LessOrEqual(t, secs, 1080, "deferral %d: %d s", n, secs)
		assert.GreaterOrEqual(t, secs, 24, "deferral %d: %d s", n, secs)
	}
	assert.GreaterOrEqual(t, pgtest.Int(t, db, `select extract(epoch from automation_deferral_backoff(50))::int`), 720, "capped at 15 min")
}

// The caps: deferred more than automation_settings.max_deferrals times fails
// max_deferrals (counted once); a deferral that would pass the deadline fails
// expired; an operator's retry starts the count anew.
func TestDeferralCaps(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "5")
	id := execs[0]
	assert.Equal(t, 200, pgtest.Int(t, db, `select automation_max_deferrals()`), "the default")
	pgtest.Exec(t, db, `update automation_settings set max_deferrals = 2`)
	assert.Equal(t, "pending", deferNow(t, db, id, "provider_unavailable", 0))
	assert.Equal(t, "pending", deferNow(t, db, id, "provider_unavailable", 0))
	assert.Equal(t, "failed", deferNow(t, db, id, "provider_unavailable", 0))
	row := execution(t, db, id)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeMaxDeferrals), *row.ErrorCode)
	assert.Zero(t, row.Attempt, "it never spent an attempt")
	assert.Contains(t, pgtest.Text(t, db, `select error_message from automation_execution_logs where id = $1`, id), "deferred 3 times")
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select execution_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))

	// the operator's retry resets the count
	assert.Equal(t, "pending", pgtest.Text(t, db, `select automation_retry_execution($1) ->> 'status'`, id))
	assert.Zero(t, deferrals(t, db, id))
	assert.Equal(t, "pending", deferNow(t, db, id, "rate_limited", 60))

	// the deadline bounds deferrals as it bounds retries
	_, _, _, execs2 := overdueSetup(t, db, 2, "6")
	pgtest.Exec(t, db, `update automation_execution_logs set deadline_at = now() + interval '10 minutes' where id = $1`, execs2[0])
	assert.Equal(t, "pending", deferNow(t, db, execs2[0], "deadline", 0), "due at once: before the deadline")
	assert.Equal(t, "failed", deferNow(t, db, execs2[0], "rate_limited", 3600))
	row = execution(t, db, execs2[0])
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeExpired), *row.ErrorCode)

	// an expired lease (a function that died without reporting) spends its
	// attempt and counts no deferral: max_attempts bounds a crash loop
	_, _, _, execs3 := overdueSetup(t, db, 3, "7")
	pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs3, 60)
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, execs3[0])
	pgtest.Int(t, db, `select process_pending_automations()`)
	row = execution(t, db, execs3[0])
	assert.Equal(t, "pending", row.Status)
	assert.Equal(t, 1, row.Attempt)
	assert.Zero(t, deferrals(t, db, execs3[0]))
}
