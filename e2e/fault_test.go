package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/stacktest"
)

// TestFunctionKilledMidBatch kills the invoice-reminder function (RIE and
// bootstrap process groups, SIGKILL) while it works through a batch. The
// next cycles, after a restart and the leases' expiry, finish every
// execution, and no message goes out twice. The crash costs at most one
// chunk of DUEFLOW_CONCURRENCY messages, each with an "unknown" delivery.
func TestFunctionKilledMidBatch(t *testing.T) {
	const n, concurrency = 40, 2
	ctx := context.Background()
	s := startStack(t, stackOptions{env: []string{
		"DUEFLOW_LEASE_SECONDS=30", fmt.Sprintf("DUEFLOW_CONCURRENCY=%d", concurrency),
		"SMS_PROVIDER=none", // an email-only workload
	}})
	db := s.Pool()
	stacktest.SeedOverdue(t, db, n)
	smtpSrv := s.SMTPCapture()
	smtpSrv.SetDelay(60 * time.Millisecond) // a slow relay: the batch takes ~1.2 s

	type tickOut struct {
		res devstack.TickResult
		err error
	}
	done := make(chan tickOut, 1)
	go func() {
		r, err := s.Tick(ctx)
		done <- tickOut{r, err}
	}()
	require.Eventually(t, func() bool { return smtpSrv.Count() >= 10 }, 30*time.Second, 5*time.Millisecond)
	fn := s.Function("invoice-reminder")
	require.NoError(t, fn.Kill(ctx))
	atKill := smtpSrv.Count()
	first := <-done
	require.NoError(t, first.err)
	t.Logf("first cycle (killed after %d of %d emails): %s", atKill, n, first.res)
	require.Less(t, atKill, n, "the kill happened in the middle of the batch")
	require.Len(t, first.res.Responses, 1)
	assert.Equal(t, 502, first.res.Responses[0].StatusCode, "the gateway answers 502 for a crashed function, as a Function URL does")

	var running int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from automation_execution_logs where status = 'running'`).Scan(&running))
	assert.Equal(t, n, running, "every execution of the batch was claimed; none reported")

	require.NoError(t, fn.Restart(ctx))
	// While the leases hold, nothing is dispatched or sent again.
	res, err := s.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Requests)
	smtpSrv.SetDelay(0)

	for cycle := 0; cycle < 5; cycle++ {
		var open int
		require.NoError(t, db.QueryRow(ctx, `select count(*) from automation_execution_logs where status in ('pending', 'running')`).Scan(&open))
		if open == 0 {
			break
		}
		// the leases run out (instead of waiting DUEFLOW_LEASE_SECONDS)
		mustExec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where status = 'running'`)
		res, err := s.Tick(ctx)
		require.NoError(t, err)
		t.Logf("recovery cycle %d: %s", cycle+1, res)
	}

	statuses := map[string]int{}
	rows, err := db.Query(ctx, `select status || ':' || coalesce(error_code, '') || ':attempt ' || attempt, count(*) from automation_execution_logs group by 1`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		var c int
		require.NoError(t, rows.Scan(&k, &c))
		statuses[k] = c
	}
	rows.Close()
	t.Logf("final: %v", statuses)
	var final, total int
	require.NoError(t, db.QueryRow(ctx, `select count(*) filter (where status = 'completed'), count(*) from automation_execution_logs`).Scan(&final, &total))
	assert.Equal(t, n, total)
	assert.Equal(t, n, final, "every execution finished")

	// No message twice: count by recipient + subject.
	emails := smtpSrv.Messages()
	seen := map[string]int{}
	for _, e := range emails {
		for _, to := range e.EnvelopeTo {
			seen[to+"|"+e.Subject]++
		}
	}
	for k, c := range seen {
		assert.Equal(t, 1, c, "sent %d times: %s", c, k)
	}
	// Every delivery the ledger calls sent reached the inbox; the rest are
	// deliveries the crash left ambiguous, never re-sent.
	var sent, unknown int
	require.NoError(t, db.QueryRow(ctx, `select count(*) filter (where status = 'sent'), count(*) filter (where status = 'unknown') from automation_deliveries`).Scan(&sent, &unknown))
	assert.Equal(t, n, sent+unknown)
	// What an operator sees: who may be missing a message.
	unknownTo := map[string]bool{}
	rows, err = db.Query(ctx, `select recipient from automation_deliveries where status = 'unknown'`)
	require.NoError(t, err)
	for rows.Next() {
		var to string
		require.NoError(t, rows.Scan(&to))
		unknownTo[to] = true
	}
	require.NoError(t, rows.Err())
	rows.Close()
	var missing []string
	for i := 1; i <= n; i++ {
		var st string
		require.NoError(t, db.QueryRow(ctx, `select d.status from automation_deliveries d join automation_execution_logs e on e.id = d.execution_id
			join invoices i on i.id::text = e.subject_id where i.number = $1`, fmt.Sprintf("INV-%d", i)).Scan(&st))
		to := fmt.Sprintf("client%d@example.com", i)
		got := seen[to+"|"+fmt.Sprintf("Invoice INV-%d is overdue", i)]
		if st == "sent" {
			assert.Equal(t, 1, got, "INV-%d: ledger says sent", i)
		}
		if got == 0 {
			missing = append(missing, to)
			assert.True(t, unknownTo[to], "%s never got the reminder and has no unknown delivery", to)
		}
	}
	t.Logf("emails received %d (%d before the kill), deliveries sent %d, unknown %d (%d of them received from the killed attempt), clients missing the email %d %v",
		len(emails), atKill, sent, unknown, unknown-len(missing), len(missing), missing)
	assert.GreaterOrEqual(t, len(emails), sent)
	// The bound: the function begins deliveries in chunks of
	// DUEFLOW_CONCURRENCY (2) just before sending them, so the crash leaves
	// ambiguous only the messages it had sent (they went out, but could not
	// be reported) and at most one chunk in flight.
	assert.LessOrEqual(t, len(missing), concurrency, "clients who never got their reminder")
	assert.LessOrEqual(t, unknown, atKill+concurrency, "deliveries left ambiguous by the crash")
	assert.Equal(t, unknown, len(emails)-sent+len(missing), "unknown = sent by the killed attempt + never sent")
	// Executions whose delivery is unknown say so.
	var unflagged int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from automation_execution_logs e
		where exists (select 1 from automation_deliveries d where d.execution_id = e.id and d.status = 'unknown')
		  and e.error_code is distinct from 'delivery_unknown'`).Scan(&unflagged))
	assert.Zero(t, unflagged, "completed executions with an unknown delivery carry error_code delivery_unknown")

	// one crash: at most the chunk in flight is unknown
	checkInvariants(t, s, invariantOpts{maxUnknown: concurrency})
}
