package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/stacktest"
)

// faultEnv is the functions' environment of the fault tests: an email-only
// workload (unless sms), short leases, DUEFLOW_CONCURRENCY=concurrency.
func faultEnv(concurrency int, sms bool) []string {
	env := []string{"DUEFLOW_LEASE_SECONDS=30", fmt.Sprintf("DUEFLOW_CONCURRENCY=%d", concurrency)}
	if !sms {
		env = append(env, "SMS_PROVIDER=none")
	}
	return env
}

// seedOverdueSMS is stacktest.SeedOverdue with a phone number per client and an SMS
// step after the email.
func seedOverdueSMS(t testing.TB, db *pgxpool.Pool, n int) {
	stacktest.SeedOverdue(t, db, n)
	mustExec(t, db, `update clients set phone = '+1212555' || lpad((100 + split_part(first_name, ' ', 2)::int)::text, 4, '0')`)
	mustExec(t, db, `update automation_workflows set steps = steps || '[{"type":"send_sms","body":"{{organization.name}}: invoice {{invoice.number}} is overdue."}]'::jsonb`)
}

// countWhere is select count(*) from automation_execution_logs where cond.
func countWhere(t *testing.T, db *pgxpool.Pool, table, cond string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `select count(*) from `+table+` where `+cond).Scan(&n))
	return n
}

// assertReportedInTime checks that every function call of a cycle answered
// 200 (the batch was reported) before the function's deadline.
func assertReportedInTime(t *testing.T, s *devstack.Stack, res devstack.TickResult, timeout time.Duration) {
	t.Helper()
	for _, r := range res.Responses {
		assert.Equal(t, 200, r.StatusCode, "the batch is reported: %s %s", r.ErrorMsg, r.Content)
		assert.Less(t, r.Elapsed, timeout, "answered before the function's deadline")
	}
	// the RIE's words when it stops an invocation at its deadline
	assert.False(t, functionLogsContain(t, s, "Reset initiated: Timeout"), "the RIE never had to stop a function at its deadline")
}

// TestSMTPRelayStalls points the functions at a relay that accepts TCP
// connections and then stops answering at one stage of the conversation,
// with a 10 s function deadline. The batch is still reported before the
// deadline. A message never handed over (stall before its content was
// written) is not lost: it is tried again and delivered once the relay
// answers again; a message whose content was written and never confirmed is
// "unknown", its execution flagged delivery_unknown, and never sent again.
// Nothing fails.
func TestSMTPRelayStalls(t *testing.T) {
	for _, tc := range []struct {
		stage      devstack.SMTPStage
		handedOver bool
	}{
		{devstack.StallGreeting, false},
		{devstack.StallEHLO, false},
		{devstack.StallMail, false},
		{devstack.StallDataEnd, true},
	} {
		t.Run(tc.stage.String(), func(t *testing.T) { smtpRelayStall(t, tc.stage, tc.handedOver) })
	}
}

func smtpRelayStall(t *testing.T, stage devstack.SMTPStage, handedOver bool) {
	const n, concurrency = 20, 4
	const timeout = 10 * time.Second
	ctx := context.Background()
	s := startStack(t, stackOptions{env: faultEnv(concurrency, false), fnTimeout: timeout})
	db := s.Pool()
	stacktest.SeedOverdue(t, db, n)
	relay := s.SMTPCapture()
	relay.Stall(stage)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("stalled cycle: %s; executions %v, deliveries %v", res, executionStates(t, s), deliveryStates(t, s))
	require.Len(t, res.Responses, 1)
	assertReportedInTime(t, s, res, timeout)
	require.NotZero(t, relay.Stalled(), "the relay stalled")
	assert.Zero(t, relay.Count(), "nothing was accepted while the relay stalled")
	assert.Zero(t, countWhere(t, db, "automation_execution_logs", "status = 'failed'"), "nothing failed because the relay stalled")
	unknown := countWhere(t, db, "automation_deliveries", "status = 'unknown'")
	if handedOver {
		assert.Positive(t, unknown, "a message whose content was written and never confirmed is unknown")
		assert.LessOrEqual(t, unknown, concurrency, "only the chunk in flight")
	} else {
		assert.Zero(t, unknown, "a message never handed over is not unknown")
		assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'pending'"), "every execution waits for its next attempt")
	}

	relay.Stall(devstack.StallNone)
	settle(t, s, 6)
	maxUnknown := 0
	if handedOver {
		maxUnknown = concurrency
	}
	rep := checkInvariants(t, s, invariantOpts{maxUnknown: maxUnknown})
	assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'completed'"), "every execution completed once the relay answered")
	assert.Equal(t, n-rep.unknown, rep.emails, "every message not unknown was delivered once")
	assertNotResent(t, rep)
}

// assertNotResent checks that no delivery recorded unknown was received:
// in these tests the sink never accepted the attempt that made it unknown,
// so receiving it means it was sent again.
func assertNotResent(t *testing.T, rep invariantReport) {
	t.Helper()
	for key := range rep.unknownKeys {
		assert.Zero(t, rep.receivedKeys[key], "an unknown delivery was sent again: %s", key)
	}
}

// TestSlowProviderShortTimeout: a relay that takes 1.5 s per message and a
// function deadline of 10 s, so a batch of 40 cannot be sent in one
// invocation, nor in as many as the executions have attempts (2 here).
// Every invocation reports before its deadline, what it could not send is
// deferred (the cut spends no attempt), and after enough cycles every
// message is sent exactly once; nothing fails and nothing is unknown.
func TestSlowProviderShortTimeout(t *testing.T) {
	const n, concurrency, attempts = 40, 4, 2
	const timeout = 10 * time.Second
	ctx := context.Background()
	s := startStack(t, stackOptions{env: faultEnv(concurrency, false), fnTimeout: timeout})
	db := s.Pool()
	stacktest.SeedOverdue(t, db, n)
	relay := s.SMTPCapture()
	mustExec(t, db, `update automation_workflows set max_attempts = $1`, attempts)
	relay.SetDelay(1500 * time.Millisecond)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("first cycle: %s; executions %v", res, executionStates(t, s))
	assertReportedInTime(t, s, res, timeout)
	first := relay.Count()
	assert.Less(t, first, n, "one invocation cannot send the whole batch")
	assert.Positive(t, first)
	more := settle(t, s, 8)
	for _, r := range more {
		assertReportedInTime(t, s, r, timeout)
	}
	assert.Greater(t, 1+len(more), attempts, "the work took more cycles than an execution has attempts")
	rep := checkInvariants(t, s, invariantOpts{maxUnknown: 0})
	assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'completed'"))
	assert.Equal(t, n, rep.emails, "every message sent once")
}

// TestPostgresRestartMidBatch restarts Postgres (fast shutdown: every
// connection cut) while a function sends a batch of emails through a slow
// relay. Once it is back and the leases have expired, every execution
// completes (email and SMS), no message goes out twice, and only the chunk
// in flight when the database went away is unknown.
func TestPostgresRestartMidBatch(t *testing.T) {
	const n, concurrency = 40, 4
	ctx := context.Background()
	s := startStack(t, stackOptions{env: faultEnv(concurrency, true)})
	db := s.Pool()
	seedOverdueSMS(t, db, n)
	relay := s.SMTPCapture()
	relay.SetDelay(300 * time.Millisecond) // ten chunks of four: about 3 s of sending

	type tickOut struct {
		res devstack.TickResult
		err error
	}
	done := make(chan tickOut, 1)
	go func() {
		r, err := s.Tick(ctx)
		done <- tickOut{r, err}
	}()
	require.Eventually(t, func() bool { return relay.Count() >= 8 }, time.Minute, 5*time.Millisecond)
	require.NoError(t, s.StopPostgres(ctx))
	atStop := relay.Count()
	time.Sleep(time.Second)
	require.NoError(t, s.StartPostgres(ctx))
	first := <-done
	require.NoError(t, first.err)
	t.Logf("cycle with the restart (Postgres stopped after %d of %d emails): %s", atStop, n, first.res)
	require.Less(t, atStop, n, "the restart happened in the middle of the batch")
	require.Eventually(t, func() bool {
		_, err := db.Exec(ctx, "select 1")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	t.Logf("after the restart: executions %v, deliveries %v", executionStates(t, s), deliveryStates(t, s))

	relay.SetDelay(0)
	settle(t, s, 6)
	rep := checkInvariants(t, s, invariantOpts{maxUnknown: concurrency})
	assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'completed'"), "every execution completed")
	assert.Equal(t, 2*n, rep.sent+rep.unknown, "one delivery per message, email and SMS")
}

// TestSMTPDropsAfterData: the relay reads the content of three messages and
// closes the connection without answering (it may or may not have queued
// them). Those three deliveries are unknown, their executions flagged
// delivery_unknown, and they are never sent again; the rest are delivered
// once.
func TestSMTPDropsAfterData(t *testing.T) {
	const n, concurrency, drops = 30, 4, 3
	ctx := context.Background()
	s := startStack(t, stackOptions{env: faultEnv(concurrency, false)})
	db := s.Pool()
	stacktest.SeedOverdue(t, db, n)
	relay := s.SMTPCapture()
	relay.DropAfterData(drops)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("first cycle: %s; executions %v, deliveries %v", res, executionStates(t, s), deliveryStates(t, s))
	require.Len(t, res.Responses, 1)
	assert.Equal(t, 200, res.Responses[0].StatusCode)
	require.Equal(t, drops, relay.Dropped())
	assert.Zero(t, countWhere(t, db, "automation_execution_logs", "status = 'failed'"))

	settle(t, s, 4)
	rep := checkInvariants(t, s, invariantOpts{maxUnknown: drops})
	assert.Equal(t, drops, rep.unknown, "each dropped message is unknown")
	assert.Equal(t, n-drops, rep.emails, "the rest delivered once")
	assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'completed'"))
	assert.Equal(t, drops, countWhere(t, db, "automation_execution_logs", "error_code = 'delivery_unknown'"))
	assertNotResent(t, rep)
}

// TestProviderOutageOutlastsAttempts: the SMS provider answers 503 for more
// cycles than an execution has attempts (4 > max_attempts 2). An outage is
// the infrastructure's trouble, not the message's: the executions are
// deferred (their attempts given back), none fails, and once the provider
// is back every SMS goes out once (the emails went out in the first cycle,
// once).
func TestProviderOutageOutlastsAttempts(t *testing.T) {
	const n, concurrency, attempts, outageCycles = 10, 4, 2, 4
	ctx := context.Background()
	s := startStack(t, stackOptions{env: faultEnv(concurrency, true)})
	db := s.Pool()
	seedOverdueSMS(t, db, n)
	mustExec(t, db, `update automation_workflows set max_attempts = $1`, attempts)
	s.Telnyx().SetOutage(503)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("first cycle: %s; executions %v", res, executionStates(t, s))
	settle(t, s, outageCycles-1)
	t.Logf("after %d cycles of outage: executions %v, deliveries %v", outageCycles, executionStates(t, s), deliveryStates(t, s))
	assert.Zero(t, countWhere(t, db, "automation_execution_logs", "status = 'failed'"), "nothing failed during the outage")
	assert.Empty(t, s.SMS())

	s.Telnyx().SetOutage(0)
	settle(t, s, 3)
	rep := checkInvariants(t, s, invariantOpts{maxUnknown: 0})
	assert.Equal(t, n, countWhere(t, db, "automation_execution_logs", "status = 'completed'"))
	assert.Equal(t, n, rep.sms, "every SMS once, after the outage")
	assert.Equal(t, n, rep.emails, "every email once")
}
