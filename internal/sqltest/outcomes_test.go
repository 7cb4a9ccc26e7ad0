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

// tick is what pg_cron runs every minute, at p_now.
func tick(t testing.TB, db pgtest.DB, at time.Time) {
	t.Helper()
	runAllChecks(t, db, at, checkFns)
	pgtest.Int(t, db, `select process_pending_automations()`)
}

// Bug 1: "completed" is reached only through a function's report. Every
// check, every dispatch, lease expiry, retries and snoozes, for every
// trigger type, leave executions open; the report alone completes them.
func TestCompletedOnlyThroughReport(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	tn := seedTenant(t, db, true)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	for _, a := range automation.Actions {
		pgtest.SetEndpoint(t, db, a, "http://127.0.0.1:9/"+a, 100)
	}
	noneDone := func(step string) {
		t.Helper()
		assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'completed' or completed_at is not null`), step)
		assert.Zero(t, pgtest.Int(t, db, `select coalesce(sum(success_count), 0) from automation_workflows`), step)
	}
	now := time.Now()
	for _, at := range []time.Time{now, now.Add(90 * time.Second), now.Add(90 * time.Second)} { // the every-minute schedule fires once
		tick(t, db, at)
		pgtest.MakeDue(t, db)
		pgtest.Exec(t, db, `update automation_execution_logs set dispatched_at = now() - interval '1 hour' where dispatched_at is not null`)
		noneDone("ticks")
	}
	total := pgtest.Int(t, db, `select count(*) from automation_execution_logs`)
	require.Equal(t, 6, total, "one per trigger type, two for the clients audience")
	require.Equal(t, total, pgtest.Int(t, db, `select count(*) from automation_execution_logs where dispatch_count >= 1`), "every execution rung")

	claimAll := func() []automation.Claimed {
		var out []automation.Claimed
		for _, a := range automation.Actions {
			out = append(out, pgtest.Claim(t, db, a, nil, 100, 60)...)
		}
		require.Len(t, out, total)
		return out
	}
	// claimed, then the functions die: leases expire, rows go back
	claimAll()
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where status = 'running'`)
	tick(t, db, now.Add(90*time.Second))
	noneDone("lease expiry")
	// claimed, reported retry and snoozed
	pgtest.MakeDue(t, db)
	for i, c := range claimAll() {
		o := automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeRetry, ErrorCode: automation.CodeProviderRetryable}
		if i%2 == 0 {
			until := time.Now().Add(time.Hour)
			o = automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeSnoozed, StepIndex: 1, SnoozeUntil: &until}
		}
		require.True(t, pgtest.Report(t, db, o)[0].Applied)
	}
	tick(t, db, now.Add(90*time.Second))
	noneDone("retry and snooze")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status not in ('pending', 'running')`))

	// the report completes them
	pgtest.MakeDue(t, db)
	var outs []automation.Outcome
	for _, c := range claimAll() {
		outs = append(outs, automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	}
	pgtest.Report(t, db, outs...)
	assert.Equal(t, total, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'completed'`))
	assert.Equal(t, wantOnce, perWorkflow(t, db, tn))
}

// analyticsRow is one automation_analytics row's figures.
type analyticsRow struct {
	Executions, Completed, Failed, Skipped, EmailsSent, SMSSent int
}

func analytics(t testing.TB, db pgtest.DB, wf uuid.UUID) analyticsRow {
	t.Helper()
	var a analyticsRow
	require.NoError(t, db.QueryRow(bg, `select coalesce(sum(execution_count), 0), coalesce(sum(success_count), 0), coalesce(sum(failure_count), 0),
		coalesce(sum(skipped), 0), coalesce(sum(emails_sent), 0), coalesce(sum(sms_sent), 0)
		from automation_analytics where workflow_id = $1`, wf).Scan(&a.Executions, &a.Completed, &a.Failed, &a.Skipped, &a.EmailsSent, &a.SMSSent))
	return a
}

type counters struct{ Executions, Success, Failure, Skipped int }

func wfCounters(t testing.TB, db pgtest.DB, wf uuid.UUID) counters {
	t.Helper()
	var c counters
	require.NoError(t, db.QueryRow(bg, `select execution_count, success_count, failure_count, skipped_count from automation_workflows where id = $1`, wf).
		Scan(&c.Executions, &c.Success, &c.Failure, &c.Skipped))
	return c
}

// Bug 8: a finished execution is never overwritten (a late, repeated or
// stale report, the every-minute jobs, an operator's edit), a sent delivery
// is never turned into failed, and counters and analytics are counted once:
// repeating the hourly analytics job, the checks and the dispatch changes
// no figure.
func TestFinalOutcomeAndCountersOnce(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 4)
	require.Len(t, execs, 4)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := map[uuid.UUID]uuid.UUID{}
	for _, c := range got {
		tok[c.Execution.ID] = c.Execution.LeaseToken
	}
	sent, failed, skipped, stale := execs[0], execs[1], execs[2], execs[3]

	// sent: email and SMS out, completed
	email := automation.DeliveryIntent{ExecutionID: sent, LeaseToken: tok[sent], Channel: "email", Recipient: "ada@client.test", Provider: "smtp",
		IdempotencyKey: automation.IdempotencyKey(sent, 0, "email")}
	sms := automation.DeliveryIntent{ExecutionID: sent, LeaseToken: tok[sent], StepIndex: 1, Channel: "sms", Recipient: "+15555550123", Provider: "telnyx",
		IdempotencyKey: automation.IdempotencyKey(sent, 1, "sms")}
	for _, b := range pgtest.BeginDeliveries(t, db, email, sms) {
		require.Equal(t, automation.BeginNew, b.State)
	}
	r := pgtest.Report(t, db,
		automation.Outcome{ExecutionID: sent, LeaseToken: tok[sent], Status: automation.OutcomeCompleted, ActionsExecuted: 2,
			Deliveries: []automation.DeliveryResult{{IdempotencyKey: email.IdempotencyKey, Status: "sent", ProviderMessageID: "m1"},
				{IdempotencyKey: sms.IdempotencyKey, Status: "sent", ProviderMessageID: "s1"}}},
		automation.Outcome{ExecutionID: failed, LeaseToken: tok[failed], Status: automation.OutcomeFailed, ErrorCode: automation.CodeInvalidRecipient},
		automation.Outcome{ExecutionID: skipped, LeaseToken: tok[skipped], Status: automation.OutcomeSkipped, ErrorCode: automation.CodeOptedOut},
		// the same execution twice in one report: only the first applies
		automation.Outcome{ExecutionID: skipped, LeaseToken: tok[skipped], Status: automation.OutcomeCompleted},
	)
	assert.True(t, r[0].Applied)
	assert.True(t, r[1].Applied)
	assert.True(t, r[2].Applied)
	assert.False(t, r[3].Applied)

	// stale: the function is slow, its lease expires and the row is taken back
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, stale)
	pgtest.Int(t, db, `select process_pending_automations()`)
	require.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, stale))

	wantCounters := counters{Executions: 3, Success: 1, Failure: 1, Skipped: 1}
	wantAnalytics := analyticsRow{Executions: 3, Completed: 1, Failed: 1, Skipped: 1, EmailsSent: 1, SMSSent: 1}
	assert.Equal(t, wantCounters, wfCounters(t, db, wf))
	assert.Equal(t, wantAnalytics, analytics(t, db, wf))
	statuses := func() map[string]string {
		return pgtest.JSON[map[string]string](t, db, `select jsonb_object_agg(id, status || ':' || coalesce(error_code, '')) from automation_execution_logs where workflow_id = $1`, wf)
	}
	before := statuses()

	// late and repeated reports: a failure after the message went out, the
	// stale function's success, the same reports again
	for i := 0; i < 2; i++ {
		r = pgtest.Report(t, db,
			automation.Outcome{ExecutionID: sent, LeaseToken: tok[sent], Status: automation.OutcomeFailed, ErrorCode: automation.CodeProviderRejected,
				Deliveries: []automation.DeliveryResult{{IdempotencyKey: email.IdempotencyKey, Status: "failed", ErrorCode: "provider_rejected"}}},
			automation.Outcome{ExecutionID: sent, LeaseToken: tok[sent], Status: automation.OutcomeCompleted, ActionsExecuted: 2},
			automation.Outcome{ExecutionID: failed, LeaseToken: tok[failed], Status: automation.OutcomeCompleted},
			automation.Outcome{ExecutionID: stale, LeaseToken: tok[stale], Status: automation.OutcomeCompleted, ActionsExecuted: 1},
		)
		for _, x := range r {
			assert.False(t, x.Applied, "%s applied a second time", x.ExecutionID)
		}
	}
	// what cron runs every minute and every hour, several times
	for i := 0; i < 3; i++ {
		tick(t, db, time.Now())
		pgtest.Int(t, db, `select update_automation_analytics()`)
	}
	// an operator edits a finished row
	pgtest.Exec(t, db, `update automation_execution_logs set error_message = 'checked by ops' where id = any($1)`, []uuid.UUID{sent, failed, skipped})

	assert.Equal(t, before, statuses())
	assert.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1 and status = 'sent'`, sent), "a sent delivery turned failed")
	assert.Equal(t, wantCounters, wfCounters(t, db, wf))
	assert.Equal(t, wantAnalytics, analytics(t, db, wf))
	assert.Equal(t, 2, pgtest.Int(t, db, `select actions_count from automation_execution_logs where id = $1`, sent))

	// the hourly reconciliation agrees with the ground truth and is idempotent
	assert.Zero(t, pgtest.Int(t, db, `select update_automation_analytics()`), "the reconciliation found figures to correct")
}
