package sqltest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

type queued struct {
	ID      int64
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
	Timeout int
}

func queuedRequests(t testing.TB, db pgtest.DB) []queued {
	t.Helper()
	return pgtest.JSON[[]queued](t, db, `select coalesce(jsonb_agg(jsonb_build_object('ID', id, 'Method', method, 'URL', url,
		'Headers', headers, 'Body', encode(body, 'base64'), 'Timeout', timeout_milliseconds) order by id), '[]')
		from net.http_request_queue`)
}

// Dispatch: batches per action, signed so that the Standard Webhooks library
// verifies the exact queued body bytes; re-dispatch only after 2 minutes.
func TestDispatchSignedBatches(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@c.test"})
	for i := 0; i < 5; i++ {
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -3})
	}
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue"})
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "stale_job"})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, updated_at) values ($1, $2, 'in_progress', now() - interval '30 days')`, org, cl)
	require.Equal(t, 5, pgtest.Int(t, db, `select check_overdue_invoices()`))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	pgtest.MakeDue(t, db)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:54321/functions/v1/invoice-reminder", 2)
	pgtest.SetEndpoint(t, db, automation.ActionSendReminder, "http://127.0.0.1:54321/functions/v1/send-reminder", 100)

	require.Equal(t, 6, pgtest.Int(t, db, `select process_pending_automations()`))
	reqs := queuedRequests(t, db)
	require.Len(t, reqs, 4, "3 batches of at most 2 + 1")
	wh, err := standardwebhooks.NewWebhook(testSecret)
	require.NoError(t, err)
	seen := map[uuid.UUID]bool{}
	perAction := map[string]int{}
	for _, r := range reqs {
		assert.Equal(t, "POST", r.Method)
		assert.Equal(t, 60000, r.Timeout)
		h := http.Header{}
		for k, v := range r.Headers {
			h.Set(k, v)
		}
		assert.Equal(t, "application/json", h.Get("Content-Type"))
		_, err := uuid.Parse(h.Get("webhook-id"))
		assert.NoError(t, err, "webhook-id is a uuid")
		require.NoError(t, wh.Verify(r.Body, h), "signature over the queued body")
		var body automation.Request
		require.NoError(t, json.Unmarshal(r.Body, &body))
		assert.Contains(t, r.URL, body.Action)
		perAction[body.Action] += len(body.ExecutionIDs)
		for _, id := range body.ExecutionIDs {
			assert.False(t, seen[id])
			seen[id] = true
		}
		if body.Action == automation.ActionInvoiceReminder {
			assert.LessOrEqual(t, len(body.ExecutionIDs), 2)
		}
		// a tampered body fails
		assert.Error(t, wh.Verify(append([]byte(" "), r.Body...), h))
	}
	assert.Equal(t, map[string]int{automation.ActionInvoiceReminder: 5, automation.ActionSendReminder: 1}, perAction)
	assert.Equal(t, 6, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'pending' and dispatched_at is not null and dispatch_count = 1`))

	// rung recently: not rung again
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`))
	// claimed rows are never rung again; unclaimed ones are after 2 minutes
	got := pgtest.Claim(t, db, automation.ActionSendReminder, nil, 10, 60)
	require.Len(t, got, 1)
	pgtest.Exec(t, db, `update automation_execution_logs set dispatched_at = now() - interval '3 minutes' where dispatched_at is not null`)
	assert.Equal(t, 5, pgtest.Int(t, db, `select process_pending_automations()`))
	assert.Equal(t, 5, pgtest.Int(t, db, `select count(*) from automation_execution_logs where dispatch_count = 2`))
}

// A missing endpoint or secret leaves rows pending (with a warning), never completed.
func TestDispatchWithoutEndpointOrSecret(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 2, "10")
	pgtest.MakeDue(t, db)
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), "no endpoint")
	pgtest.SetEndpoint(t, db, automation.ActionInvoiceReminder, "http://127.0.0.1:9/x", 100)
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), "no secret")
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", "not-a-whsec-secret")
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), "malformed secret")
	row := execution(t, db, execs[0])
	assert.Equal(t, "pending", row.Status)
	assert.Zero(t, row.DispatchCount)
	assert.Empty(t, queuedRequests(t, db))
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	assert.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
}
