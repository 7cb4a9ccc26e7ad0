package sqltest_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The claim document decodes strictly into automation.Claimed with the values of the rows.
func TestClaimDocumentMatchesContract(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, wf, inv, execs := overdueSetup(t, db, 20, "1250.5")
	require.Len(t, execs, 1, "an invoice 20 days overdue seen first gets one reminder (day 14)")
	pgtest.MakeDue(t, db)

	var raw []byte
	require.NoError(t, db.QueryRow(bg, `select jsonb_agg(c) from automation_claim('invoice-reminder', null, 10, 120) c`).Scan(&raw))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var got []automation.Claimed
	require.NoError(t, dec.Decode(&got), string(raw))
	require.Len(t, got, 1)
	c := got[0]

	e := c.Execution
	assert.Equal(t, execs[0], e.ID)
	assert.Equal(t, wf, e.WorkflowID)
	assert.Equal(t, org, e.OrganizationID)
	assert.Equal(t, automation.ActionInvoiceReminder, e.Action)
	assert.Equal(t, automation.TriggerInvoiceOverdue, e.TriggerType)
	assert.Contains(t, e.OccurrenceKey, inv.String())
	assert.Contains(t, e.OccurrenceKey, ":d14")
	assert.Equal(t, "invoice", e.SubjectType)
	assert.Equal(t, inv.String(), e.SubjectID)
	require.NotEmpty(t, e.ClientID)
	assert.Equal(t, 1, e.Attempt)
	assert.Equal(t, 5, e.MaxAttempts)
	assert.NotEqual(t, uuid.Nil, e.LeaseToken)
	assert.WithinDuration(t, time.Now().Add(120*time.Second), e.LeaseExpiresAt, 10*time.Second)
	require.NotNil(t, e.DeadlineAt)
	assert.True(t, e.DeadlineAt.After(time.Now()))
	var td map[string]any
	require.NoError(t, json.Unmarshal(e.TriggerData, &td))
	assert.EqualValues(t, 14, td["reminder_day"])

	assert.Equal(t, wf, c.Workflow.ID)
	assert.True(t, c.Workflow.IsActive)
	require.Len(t, c.Workflow.Steps, 1)
	assert.Equal(t, automation.StepSendEmail, c.Workflow.Steps[0].Type)

	assert.Equal(t, org, c.Organization.ID)
	assert.Equal(t, "UTC", c.Organization.Timezone)
	assert.Equal(t, "US", c.Organization.CountryCode)
	assert.Equal(t, "00:00:00", c.Organization.SendWindowStart)
	assert.NotEmpty(t, c.Organization.SenderEmail)

	require.NotNil(t, c.Client)
	assert.Equal(t, e.ClientID, c.Client.ID)
	assert.Equal(t, "ada@client.test", c.Client.Email)
	assert.Equal(t, "+15555550123", c.Client.Phone)
	assert.False(t, c.Client.EmailOptOut)

	require.NotNil(t, c.Invoice)
	assert.Equal(t, inv.String(), c.Invoice.ID)
	assert.Equal(t, "1250.50", c.Invoice.Total)
	assert.Equal(t, "1250.50", c.Invoice.Balance)
	assert.Equal(t, "overdue", c.Invoice.Status, "the check marked the sent invoice overdue")
	assert.Equal(t, time.Now().UTC().AddDate(0, 0, -20).Format("2006-01-02"), c.Invoice.DueDate)
	assert.Equal(t, "USD", c.Invoice.Currency)
	assert.Nil(t, c.Job)
	assert.NotNil(t, c.Deliveries)
	assert.Empty(t, c.Deliveries)

	// claimed rows are no longer claimable
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 60))
	// other actions, unknown ids: absent
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionSendReminder, execs, 10, 60))
}

// Bug 4: two concurrent claimers get disjoint sets.
func TestConcurrentClaimsDisjoint(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job"})
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, next_attempt_at)
		select $1, $2, 'send-reminder', 'stale_job', 'k' || g, 'organization', now() - interval '1 minute' from generate_series(1, 400) g`, wf, org)

	type res struct{ ids []uuid.UUID }
	out := make(chan res, 4)
	start := make(chan struct{})
	for w := 0; w < 4; w++ {
		go func() {
			<-start
			var mine []uuid.UUID
			for {
				got := pgtest.Claim(t, db, automation.ActionSendReminder, nil, 25, 300)
				if len(got) == 0 {
					break
				}
				for _, c := range got {
					mine = append(mine, c.Execution.ID)
				}
			}
			out <- res{mine}
		}()
	}
	close(start)
	seen := map[uuid.UUID]int{}
	for w := 0; w < 4; w++ {
		r := <-out
		for _, id := range r.ids {
			seen[id]++
		}
	}
	assert.Len(t, seen, 400)
	for id, n := range seen {
		require.Equal(t, 1, n, "execution %s claimed %d times", id, n)
	}
}

// Bug 1: nothing becomes completed without a report; dispatch leaves rows pending.
func TestNoCompletedWithoutReport(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 3, "10")
	pgtest.MakeDue(t, db)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", "whsec_"+"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:9/invoice", 100)
	for i := 0; i < 3; i++ {
		pgtest.Int(t, db, `select process_pending_automations()`)
		pgtest.Int(t, db, `select check_overdue_invoices()`)
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status in ('completed', 'failed', 'skipped')`))
	assert.Equal(t, "pending", execution(t, db, execs[0]).Status)
	// a claimed row whose lease expires goes back to pending, not completed
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 60)
	require.Len(t, got, 1)
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, execs[0])
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Equal(t, "pending", execution(t, db, execs[0]).Status)
}

// Lease expiry: the row is taken back, a late report of the old lease is refused.
func TestLeaseExpiryRefusesLateReport(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "99.99")
	first := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 30)
	old := first[0].Execution.LeaseToken

	// before expiry, a wrong token is stale too
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: uuid.New(), Status: automation.OutcomeCompleted})
	assert.False(t, r[0].Applied)
	assert.Equal(t, "stale_lease", r[0].Reason)

	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, execs[0])
	require.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), "no endpoint: nothing dispatched")
	row := execution(t, db, execs[0])
	assert.Equal(t, "pending", row.Status)
	assert.Equal(t, 1, row.Attempt, "the expired attempt stays consumed")

	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: old, Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	assert.False(t, r[0].Applied)
	assert.Equal(t, "stale_lease", r[0].Reason)
	assert.Equal(t, "pending", string(r[0].Status))
	assert.Equal(t, "pending", execution(t, db, execs[0]).Status)
	assert.Zero(t, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))

	second := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 30)
	require.Len(t, second, 1)
	assert.Equal(t, 2, second[0].Execution.Attempt)
	assert.NotEqual(t, old, second[0].Execution.LeaseToken)
	// the old token still cannot finish the new attempt
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: old, Status: automation.OutcomeFailed})
	assert.False(t, r[0].Applied)
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: second[0].Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	assert.True(t, r[0].Applied)
	assert.Equal(t, "completed", string(r[0].Status))

	// unknown id
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: uuid.New(), LeaseToken: uuid.New(), Status: automation.OutcomeCompleted})
	assert.False(t, r[0].Applied)
	assert.Equal(t, "not_found", r[0].Reason)
}

// An expired lease on the last attempt fails the row with max_attempts.
func TestLeaseExpiryOnLastAttemptFails(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `update automation_execution_logs set max_attempts = 1, next_attempt_at = now() - interval '1 second'`)
	require.Len(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 30), 1)
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second'`)
	pgtest.Int(t, db, `select process_pending_automations()`)
	row := execution(t, db, execs[0])
	assert.Equal(t, "failed", row.Status)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeMaxAttempts), *row.ErrorCode)
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))
}

// Backoff with jitter, then max attempts; counters and analytics once.
func TestBackoffAndMaxAttempts(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `update automation_execution_logs set max_attempts = 3`)
	wantBase := []time.Duration{60 * time.Second, 240 * time.Second}
	for attempt := 1; attempt <= 3; attempt++ {
		pgtest.MakeDue(t, db)
		got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
		require.Len(t, got, 1, "attempt %d", attempt)
		require.Equal(t, attempt, got[0].Execution.Attempt)
		before := time.Now()
		r := pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: got[0].Execution.LeaseToken,
			Status: automation.OutcomeRetry, ErrorCode: automation.CodeProviderRetryable, ErrorMessage: "503 from provider"})
		require.True(t, r[0].Applied)
		row := execution(t, db, execs[0])
		if attempt < 3 {
			assert.Equal(t, "pending", string(r[0].Status))
			assert.Equal(t, "pending", row.Status)
			delay := row.NextAttemptAt.Sub(before)
			base := wantBase[attempt-1]
			assert.GreaterOrEqual(t, delay, time.Duration(float64(base)*0.8)-2*time.Second, "attempt %d delay %s", attempt, delay)
			assert.LessOrEqual(t, delay, time.Duration(float64(base)*1.2)+2*time.Second, "attempt %d delay %s", attempt, delay)
			// not due yet: not claimable
			assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60))
		} else {
			assert.Equal(t, "failed", string(r[0].Status))
			require.NotNil(t, row.ErrorCode)
			assert.Equal(t, string(automation.CodeMaxAttempts), *row.ErrorCode)
		}
	}
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	// the hourly reconciliation agrees and does not re-add
	pgtest.Int(t, db, `select update_automation_analytics()`)
	pgtest.Int(t, db, `select update_automation_analytics()`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select failure_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select execution_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))

	// retry_after_seconds overrides the backoff
	_, _, _, execs2 := overdueSetup(t, db, 2, "6")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs2, 60)
	pgtest.Report(t, db, automation.Outcome{ExecutionID: execs2[0], LeaseToken: got[0].Execution.LeaseToken, Status: automation.OutcomeRetry, RetryAfterSecs: 3600})
	assert.WithinDuration(t, time.Now().Add(time.Hour), execution(t, db, execs2[0]).NextAttemptAt, 10*time.Second)
}

// Deadlines: claim, dispatch and retry past the deadline fail as expired.
func TestDeadlineExpiry(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '2 minutes', deadline_at = now() - interval '1 minute'`)
	assert.Empty(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, nil, 10, 60))
	row := execution(t, db, execs[0])
	assert.Equal(t, "failed", row.Status)
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeExpired), *row.ErrorCode)

	// process_pending_automations expires too
	_, _, _, execs2 := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '2 minutes', deadline_at = now() - interval '1 minute' where id = $1`, execs2[0])
	pgtest.Int(t, db, `select process_pending_automations()`)
	assert.Equal(t, "failed", execution(t, db, execs2[0]).Status)

	// a retry whose next attempt would pass the deadline fails as expired
	_, _, _, execs3 := overdueSetup(t, db, 1, "5")
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '1 second', deadline_at = now() + interval '30 seconds' where id = $1`, execs3[0])
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs3, 10, 60)
	require.Len(t, got, 1)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: execs3[0], LeaseToken: got[0].Execution.LeaseToken, Status: automation.OutcomeRetry, RetryAfterSecs: 600})
	assert.Equal(t, "failed", string(r[0].Status))
	row = execution(t, db, execs3[0])
	require.NotNil(t, row.ErrorCode)
	assert.Equal(t, string(automation.CodeExpired), *row.ErrorCode)
}

// Snooze: resumes at the step, at the time, without consuming an attempt.
func TestSnoozeGivesAttemptBack(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	until := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeSnoozed, StepIndex: 2, SnoozeUntil: &until, ActionsExecuted: 1})
	require.True(t, r[0].Applied)
	assert.Equal(t, "pending", string(r[0].Status))
	row := execution(t, db, execs[0])
	assert.Equal(t, 0, row.Attempt)
	assert.Equal(t, 2, row.StepIndex)
	assert.WithinDuration(t, until, row.NextAttemptAt, time.Second)
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	assert.Equal(t, 1, got[0].Execution.Attempt)
	assert.Equal(t, 2, got[0].Execution.StepIndex)
}

// The delivery ledger: new, ambiguous, sent, retryable failure re-armed, stale.
func TestBeginDeliveries(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _, execs := overdueSetup(t, db, 1, "5")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := got[0].Execution.LeaseToken
	email := automation.DeliveryIntent{ExecutionID: execs[0], LeaseToken: tok, StepIndex: 0, Channel: "email", Recipient: "ada@client.test", Provider: "smtp",
		IdempotencyKey: automation.IdempotencyKey(execs[0], 0, "email")}
	sms := automation.DeliveryIntent{ExecutionID: execs[0], LeaseToken: tok, StepIndex: 1, Channel: "sms", Recipient: "+15555550123", Provider: "telnyx",
		IdempotencyKey: automation.IdempotencyKey(execs[0], 1, "sms")}
	b := pgtest.BeginDeliveries(t, db, email, sms)
	assert.Equal(t, automation.BeginNew, b[0].State)
	assert.Equal(t, automation.BeginNew, b[1].State)
	assert.Equal(t, email.IdempotencyKey, b[0].IdempotencyKey)
	// began before, never finished: ambiguous
	b = pgtest.BeginDeliveries(t, db, email)
	assert.Equal(t, automation.BeginAmbiguous, b[0].State)
	// wrong token: stale
	stale := email
	stale.LeaseToken = uuid.New()
	assert.Equal(t, automation.BeginStale, pgtest.BeginDeliveries(t, db, stale)[0].State)

	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: tok, Status: automation.OutcomeRetry,
		Deliveries: []automation.DeliveryResult{
			{IdempotencyKey: email.IdempotencyKey, Status: "sent", ProviderMessageID: "msg-1"},
			{IdempotencyKey: sms.IdempotencyKey, Status: "failed", ErrorCode: "provider_unavailable", Retryable: true},
		}})
	require.True(t, r[0].Applied)
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	require.Len(t, got[0].Deliveries, 2)
	assert.Equal(t, "sent", string(got[0].Deliveries[0].Status))
	assert.Equal(t, "msg-1", got[0].Deliveries[0].ProviderMessageID)
	tok = got[0].Execution.LeaseToken
	email.LeaseToken, sms.LeaseToken = tok, tok
	b = pgtest.BeginDeliveries(t, db, email, sms)
	assert.Equal(t, automation.BeginSent, b[0].State, "a sent delivery is never sent again")
	assert.Equal(t, "msg-1", b[0].ProviderMessageID)
	assert.Equal(t, automation.BeginNew, b[1].State, "a retryable failure is re-armed")
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: tok, Status: automation.OutcomeCompleted, ActionsExecuted: 2,
		Deliveries: []automation.DeliveryResult{
			{IdempotencyKey: email.IdempotencyKey, Status: "failed"}, // never downgrades a sent delivery
			{IdempotencyKey: sms.IdempotencyKey, Status: "sent", ProviderMessageID: "sms-1"},
		}})
	require.True(t, r[0].Applied)
	assert.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1 and status = 'sent'`, execs[0]))
	assert.Equal(t, 1, pgtest.Int(t, db, `select emails_sent from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select sms_sent from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select success_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))
	// a second report with the (now released) token changes nothing
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: execs[0], LeaseToken: tok, Status: automation.OutcomeCompleted})
	assert.False(t, r[0].Applied)
	assert.Equal(t, 1, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))
	pgtest.Int(t, db, `select update_automation_analytics()`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select emails_sent from automation_analytics where workflow_id = $1 and date = current_date`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select success_count from automation_analytics where workflow_id = $1 and date = current_date`, wf))
}

// Concurrent claimers and reporters over shared workflows: no deadlock, every
// execution completed once, counters exact.
func TestConcurrentReportsCountersExact(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.CreateOrg(t, db, pgtest.Org{})
	for i := 0; i < 10; i++ {
		wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job"})
		pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, next_attempt_at)
			select $1, $2, 'send-reminder', 'stale_job', 'k' || g, 'organization', now() - interval '1 minute' from generate_series(1, 60) g`, wf, org)
	}
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			for {
				var raw []byte
				if err := db.QueryRow(bg, `select coalesce(jsonb_agg(c), '[]') from automation_claim('send-reminder', null, 25, 60) c`).Scan(&raw); err != nil {
					errs <- err
					return
				}
				var got []automation.Claimed
				if err := json.Unmarshal(raw, &got); err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					errs <- nil
					return
				}
				outs := make([]automation.Outcome, len(got))
				for i, c := range got {
					outs[i] = automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1}
				}
				in, _ := json.Marshal(outs)
				if _, err := db.Exec(bg, `select automation_report($1::jsonb)`, string(in)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := 0; w < 4; w++ {
		require.NoError(t, <-errs)
	}
	assert.Equal(t, 600, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'completed'`))
	assert.Equal(t, 600, pgtest.Int(t, db, `select sum(success_count) from automation_workflows`))
	assert.Equal(t, 600, pgtest.Int(t, db, `select sum(success_count) from automation_analytics`))
	assert.Equal(t, 600, pgtest.Int(t, db, `select sum(actions_count) from automation_execution_logs`))
}

// A completed outcome keeps the engine's error code (delivery_unknown) so
// operators can find executions whose delivery is uncertain; skipped and
// failed keep theirs; a later clean completion clears an earlier attempt's code.
func TestReportKeepsErrorCodeOfCompleted(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, db, 4)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	codeMsg := func(id uuid.UUID) (string, string) {
		var c, m *string
		require.NoError(t, db.QueryRow(bg, `select error_code, error_message from automation_execution_logs where id = $1`, id).Scan(&c, &m))
		s := func(p *string) string {
			if p == nil {
				return "<null>"
			}
			return *p
		}
		return s(c), s(m)
	}
	unknown, skipped, failed, retried := got[0].Execution, got[1].Execution, got[2].Execution, got[3].Execution
	r := pgtest.Report(t, db,
		automation.Outcome{ExecutionID: unknown.ID, LeaseToken: unknown.LeaseToken, Status: automation.OutcomeCompleted,
			ErrorCode: automation.CodeDeliveryUnknown, ErrorMessage: "provider may have it"},
		automation.Outcome{ExecutionID: skipped.ID, LeaseToken: skipped.LeaseToken, Status: automation.OutcomeSkipped,
			ErrorCode: automation.CodeOptedOut, ErrorMessage: "client opted out"},
		automation.Outcome{ExecutionID: failed.ID, LeaseToken: failed.LeaseToken, Status: automation.OutcomeFailed,
			ErrorCode: automation.CodeInvalidRecipient, ErrorMessage: "bad address"},
		automation.Outcome{ExecutionID: retried.ID, LeaseToken: retried.LeaseToken, Status: automation.OutcomeRetry,
			ErrorCode: automation.CodeProviderRetryable, ErrorMessage: "503"})
	for _, x := range r {
		require.True(t, x.Applied)
	}
	c, m := codeMsg(unknown.ID)
	assert.Equal(t, [2]string{string(automation.CodeDeliveryUnknown), "provider may have it"}, [2]string{c, m})
	assert.Equal(t, "completed", execution(t, db, unknown.ID).Status)
	c, m = codeMsg(skipped.ID)
	assert.Equal(t, [2]string{string(automation.CodeOptedOut), "client opted out"}, [2]string{c, m})
	c, m = codeMsg(failed.ID)
	assert.Equal(t, [2]string{string(automation.CodeInvalidRecipient), "bad address"}, [2]string{c, m})
	c, _ = codeMsg(retried.ID)
	assert.Equal(t, string(automation.CodeProviderRetryable), c)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'completed' and error_code = 'delivery_unknown'`))
	// the retried one completes cleanly on its next attempt: its code is cleared
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{retried.ID}, 60)
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: retried.ID, LeaseToken: got[0].Execution.LeaseToken,
		Status: automation.OutcomeCompleted, ActionsExecuted: 1})[0].Applied)
	c, m = codeMsg(retried.ID)
	assert.Equal(t, [2]string{"<null>", "<null>"}, [2]string{c, m})
}

// An intent with an empty recipient, an unknown channel or no key under a
// held lease is invalid (not stale) and records nothing.
func TestBeginDeliveriesInvalidIntent(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := got[0].Execution.LeaseToken
	ok := deliveryFor(execs[0], tok)
	noRecipient := ok
	noRecipient.Recipient, noRecipient.IdempotencyKey = "", automation.IdempotencyKey(execs[0], 1, "email")
	pigeon := ok
	pigeon.Channel, pigeon.IdempotencyKey = "pigeon", automation.IdempotencyKey(execs[0], 2, "pigeon")
	noKey := ok
	noKey.StepIndex, noKey.IdempotencyKey = 3, ""
	b := pgtest.BeginDeliveries(t, db, noRecipient, ok, pigeon, noKey)
	assert.Equal(t, []automation.BeginState{automation.BeginInvalid, automation.BeginNew, automation.BeginInvalid, automation.BeginInvalid},
		[]automation.BeginState{b[0].State, b[1].State, b[2].State, b[3].State})
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1`, execs[0]))
	// without the lease, the same intent is stale
	noRecipient.LeaseToken = uuid.New()
	assert.Equal(t, automation.BeginStale, pgtest.BeginDeliveries(t, db, noRecipient)[0].State)
}
