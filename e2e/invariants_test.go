package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

// invariantOpts say what a test's faults may legitimately leave behind.
type invariantOpts struct {
	// maxUnknown bounds the deliveries left "unknown": the in-flight chunk
	// of each fault event (DUEFLOW_CONCURRENCY per event), or exactly what
	// the test injected.
	maxUnknown int
	// openOK: the test stopped early; an execution may still be pending
	// with a next attempt in the future (never running, never due).
	openOK bool
}

// invariantReport is what checkInvariants counted (for the test's log and
// its own assertions).
type invariantReport struct {
	executions, open int
	byStatus         map[string]int // "status" or "status/error_code"
	sent, unknown    int            // deliveries
	unknownKeys      map[string]bool
	receivedKeys     map[string]int // idempotency keys of the messages the sinks received
	emails, sms      int            // messages the sinks received
}

func (r invariantReport) String() string {
	keys := make([]string, 0, len(r.byStatus))
	for k := range r.byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, r.byStatus[k])
	}
	return fmt.Sprintf("%d executions (%s; %d open), deliveries sent %d unknown %d, received %d emails %d SMS",
		r.executions, strings.Join(parts, " "), r.open, r.sent, r.unknown, r.emails, r.sms)
}

// messageFaults are the failures a message itself causes: an execution may
// end failed for these and nothing else (never because of infrastructure:
// max_attempts, deadline, internal_error, provider_unavailable, timeout,
// network ...).
var messageFaults = map[automation.Code]bool{
	automation.CodeInvalidRecipient: true, automation.CodeProviderRejected: true, automation.CodeTemplate: true,
	automation.CodeContentTooLarge: true, automation.CodeInvalidWorkflow: true, automation.CodeInvalidExecution: true,
}

// premiseSkips are the reasons an execution may be skipped: the premise or
// the recipient, never the infrastructure.
var premiseSkips = map[automation.Code]bool{
	automation.CodeNoRecipient: true, automation.CodeOptedOut: true, automation.CodeInvoiceSettled: true,
	automation.CodeWorkflowInactive: true, automation.CodeSubjectGone: true, automation.CodeSuperseded: true,
}

type ledgerRow struct {
	key, execution, channel, recipient string
	status                             automation.DeliveryStatus
	code                               automation.Code
}

// checkInvariants checks, at the end of a test, what must hold whatever the
// faults were:
//
//	(a) no message received twice: per idempotency key (execution, step,
//	    channel) and recipient, in the SMTP capture and the Telnyx sink;
//	(b) every execution final (completed, skipped, failed, cancelled), or
//	    with openOK pending with a next attempt in the future;
//	(c) none final without its message handed to a provider unless the
//	    message was at fault: failed only with a message fault, skipped only
//	    for the premise or the recipient, completed only with every delivery
//	    sent or unknown;
//	(d) at most maxUnknown deliveries unknown, each flagging its execution
//	    with error_code delivery_unknown;
//	(e) every delivery the ledger calls sent was received (no phantom send)
//	    by its recipient, and every message received has a ledger row that
//	    is sent or unknown;
//	(f) no recipient address or phone number in the functions' logs or
//	    the error_message columns.
func checkInvariants(t *testing.T, s *devstack.Stack, o invariantOpts) invariantReport {
	t.Helper()
	ctx := context.Background()
	db := s.Pool()
	rep := invariantReport{byStatus: map[string]int{}, unknownKeys: map[string]bool{}, receivedKeys: map[string]int{}}

	// the ledger
	ledger := map[string]ledgerRow{}
	byExec := map[string][]ledgerRow{}
	rows, err := db.Query(ctx, `select idempotency_key, execution_id::text, channel, recipient, status, coalesce(error_code, '')
		from automation_deliveries`)
	require.NoError(t, err)
	for rows.Next() {
		var d ledgerRow
		require.NoError(t, rows.Scan(&d.key, &d.execution, &d.channel, &d.recipient, &d.status, &d.code))
		ledger[d.key] = d
		byExec[d.execution] = append(byExec[d.execution], d)
		switch d.status {
		case automation.DeliverySent:
			rep.sent++
		case automation.DeliveryUnknown:
			rep.unknown++
			rep.unknownKeys[d.key] = true
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()

	// what the sinks received, by idempotency key and recipient
	type got struct{ key, to string }
	received := map[got]int{}
	emails, err := s.Emails(ctx)
	require.NoError(t, err)
	rep.emails = len(emails)
	// an email names its delivery by its Message-ID, a hash of the
	// idempotency key (notify.MessageID)
	byMessageID := map[string]string{}
	for key := range ledger {
		byMessageID[messageIDHash(notify.MessageID(key, ""))] = key
	}
	for _, e := range emails {
		key, ok := byMessageID[messageIDHash(e.MessageID)]
		assert.True(t, ok, "(e) received an email whose Message-ID no ledger row has: %s", e.MessageID)
		if !ok {
			key = "message-id:" + e.MessageID
		}
		rep.receivedKeys[key]++
		for _, to := range e.EnvelopeTo {
			received[got{key, to}]++
		}
	}
	sms := s.SMS()
	rep.sms = len(sms)
	for _, m := range sms {
		assert.NotEmpty(t, m.IdempotencyKey, "(a) every SMS carries its idempotency key")
		rep.receivedKeys[m.IdempotencyKey]++
		received[got{m.IdempotencyKey, m.To}]++
	}
	for g, n := range received {
		// (a)
		assert.Equal(t, 1, n, "(a) received %d times: %s to %s", n, g.key, g.to)
		// (e) nothing received without a ledger row saying it may have gone
		d, ok := ledger[g.key]
		if assert.True(t, ok, "(e) received without a ledger row: %s", g.key) {
			assert.Contains(t, []automation.DeliveryStatus{automation.DeliverySent, automation.DeliveryUnknown}, d.status,
				"(e) received, but the ledger says %s: %s", d.status, g.key)
			assert.Equal(t, d.recipient, g.to, "(e) received by another recipient than the ledger's: %s", g.key)
		}
	}
	for key, d := range ledger {
		if d.status == automation.DeliverySent {
			assert.Equal(t, 1, received[got{key, d.recipient}], "(e) the ledger says sent, the %s sink did not receive it: %s", d.channel, key)
		}
	}

	// the executions
	rows, err = db.Query(ctx, `select id::text, status, coalesce(error_code, ''), next_attempt_at > now()
		from automation_execution_logs`)
	require.NoError(t, err)
	type execRow struct {
		id, status string
		code       automation.Code
		future     bool
	}
	var execs []execRow
	for rows.Next() {
		var e execRow
		require.NoError(t, rows.Scan(&e.id, &e.status, &e.code, &e.future))
		execs = append(execs, e)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	rep.executions = len(execs)
	for _, e := range execs {
		k := e.status
		if e.code != "" {
			k += "/" + string(e.code)
		}
		rep.byStatus[k]++
		ds := byExec[e.id]
		switch e.status {
		case "completed":
			handed := 0
			for _, d := range ds {
				switch {
				case d.status == automation.DeliverySent || d.status == automation.DeliveryUnknown:
					handed++
				case d.status == automation.DeliveryFailed && messageFaults[d.code]:
				default:
					assert.Failf(t, "(c) completed with a delivery not handed over", "execution %s: %s delivery %s (%s)", e.id, d.channel, d.status, d.code)
				}
			}
			// the tests' workloads send something for every execution
			assert.NotZero(t, handed, "(c) completed without any message handed to a provider: execution %s", e.id)
		case "failed":
			assert.True(t, messageFaults[e.code], "(c) failed for the infrastructure, not the message: execution %s, error_code %s", e.id, e.code)
		case "skipped":
			assert.True(t, premiseSkips[e.code], "(c) skipped for the infrastructure: execution %s, error_code %s", e.id, e.code)
		case "cancelled":
		case "pending":
			rep.open++
			assert.True(t, o.openOK && e.future, "(b) not final: execution %s pending (%s), next attempt in the future: %v", e.id, e.code, e.future)
		default:
			rep.open++
			assert.Failf(t, "(b) not final", "execution %s is %s (%s)", e.id, e.status, e.code)
		}
		// (d) an unknown delivery is said on its execution
		for _, d := range ds {
			if d.status == automation.DeliveryUnknown && e.status != "pending" {
				assert.Equal(t, automation.CodeDeliveryUnknown, e.code, "(d) execution %s (%s) has an unknown delivery and does not say so", e.id, e.status)
			}
		}
	}
	// (d) the bound
	assert.LessOrEqual(t, rep.unknown, o.maxUnknown, "(d) deliveries unknown: at most the in-flight chunk of each fault")

	// (f)
	checkLogsPersonalData(t, s)
	t.Logf("invariants: %s", rep)
	return rep
}

// messageIDHash is the part of a Message-ID that depends on the delivery
// alone (the left of "<hash>@<sender domain>").
func messageIDHash(id string) string {
	left, _, _ := strings.Cut(strings.Trim(strings.TrimSpace(id), "<>"), "@")
	return left
}

// checkLogsPersonalData fails the test when a file of the stack's log dir
// (the functions' logs) or an error_message column holds a recipient's
// address or phone number (as stored, or as the ledger has it).
func checkLogsPersonalData(t *testing.T, s *devstack.Stack) {
	t.Helper()
	ctx := context.Background()
	var personal []string
	rows, err := s.Pool().Query(ctx, `select distinct v from (
		select recipient from automation_deliveries
		union all select email from automation_src_clients
		union all select phone from automation_src_clients) t (v)
		where length(trim(v)) >= 6`)
	require.NoError(t, err)
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		personal = append(personal, strings.TrimSpace(v))
	}
	require.NoError(t, rows.Err())
	rows.Close()
	// the error columns, where a provider's answer may have been quoted
	var errorTexts []string
	rows, err = s.Pool().Query(ctx, `select error_message from automation_execution_logs where error_message is not null
		union all select error_message from automation_deliveries where error_message is not null`)
	require.NoError(t, err)
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		errorTexts = append(errorTexts, v)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for _, e := range errorTexts {
		for _, p := range personal {
			assert.NotContains(t, e, p, "(f) personal data in an error_message column")
		}
	}
	err = filepath.WalkDir(s.LogDir(), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, p := range personal {
			assert.NotContains(t, string(b), p, "(f) personal data in the log %s", filepath.Base(path))
		}
		return nil
	})
	require.NoError(t, err)
}

// settle runs cycles until no execution is open (at most cycles of them),
// first moving to now what waits on the clock (a retry's backoff, a lease,
// the dispatcher's two minutes before ringing again), as time passing
// would. It answers the cycles it ran.
func settle(t *testing.T, s *devstack.Stack, cycles int) []devstack.TickResult {
	t.Helper()
	ctx := context.Background()
	db := s.Pool()
	var out []devstack.TickResult
	for i := 0; i < cycles; i++ {
		var open int
		require.NoError(t, db.QueryRow(ctx, `select count(*) from automation_execution_logs where status in ('pending', 'running')`).Scan(&open))
		if open == 0 {
			break
		}
		mustExec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where status = 'running'`)
		mustExec(t, db, `update automation_execution_logs set next_attempt_at = now(), dispatched_at = null where status = 'pending'`)
		res, err := s.Tick(ctx)
		require.NoError(t, err)
		t.Logf("settling cycle %d: %s", i+1, res)
		out = append(out, res)
	}
	return out
}

// executionStates counts executions by status/error_code.
func executionStates(t *testing.T, s *devstack.Stack) map[string]int {
	t.Helper()
	out := map[string]int{}
	rows, err := s.Pool().Query(context.Background(), `select status || coalesce('/' || error_code, ''), count(*) from automation_execution_logs group by 1`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		out[k] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// deliveryStates counts deliveries by status/error_code.
func deliveryStates(t *testing.T, s *devstack.Stack) map[string]int {
	t.Helper()
	out := map[string]int{}
	rows, err := s.Pool().Query(context.Background(), `select status || coalesce('/' || error_code, ''), count(*) from automation_deliveries group by 1`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		out[k] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// functionLogsContain reports whether a log of the stack's log dir contains s.
func functionLogsContain(t *testing.T, st *devstack.Stack, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(st.LogDir(), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), s) {
			found = true
		}
		return err
	})
	require.NoError(t, err)
	return found
}
