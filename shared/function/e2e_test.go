package function

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The wired function, from environment to database: a signed Function URL
// event for executions made by the real overdue check is verified, claimed
// through the PostgREST stand-in, sent over SMTP and reported. A request
// that is not signed never reaches the database.
func TestFunctionURLEventEndToEnd(t *testing.T) {
	ctx := context.Background()
	const jwtSecret = "local-jwt-secret-local-jwt-secret-0000"
	db, _ := pgtest.NewDB(t)
	rest := httptest.NewServer(postgrest.New(db, jwtSecret, Logger(io.Discard, 0)))
	defer rest.Close()
	capture, err := devstack.StartSMTPCapture(0)
	require.NoError(t, err)
	defer func() { _ = capture.Close(ctx) }()

	env := validEnv(t)
	env["SUPABASE_URL"] = rest.URL
	env["SMTP_PORT"] = strconv.Itoa(capture.Port())
	b, err := actionBuilder(automation.ActionInvoiceReminder)(func(k string) string { return env[k] }, Logger(io.Discard, 0))
	require.NoError(t, err)
	defer b.Close()
	h := b.Handler

	org := pgtest.CreateOrg(t, db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@client.test"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -2, Amount: "75.00"})
	pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1]}`, Steps: `[]`})
	var created int
	require.NoError(t, db.QueryRow(ctx, `select check_overdue_invoices()`).Scan(&created))
	require.Equal(t, 1, created)
	var id uuid.UUID
	require.NoError(t, db.QueryRow(ctx, `update automation_execution_logs set next_attempt_at = now() - interval '1 second' returning id`).Scan(&id))

	body, err := json.Marshal(automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
	require.NoError(t, err)
	event := func(hdr map[string]string) events.LambdaFunctionURLRequest {
		ev := events.LambdaFunctionURLRequest{Headers: hdr, Body: string(body)}
		ev.RequestContext.HTTP.Method = "POST"
		return ev
	}

	// Unsigned: 401, nothing claimed.
	resp, err := h.HandleFunctionURL(ctx, event(map[string]string{"content-type": "application/json"}))
	require.NoError(t, err)
	assert.Equal(t, 401, resp.StatusCode)
	var status string
	require.NoError(t, db.QueryRow(ctx, `select status from automation_execution_logs where id = $1`, id).Scan(&status))
	assert.Equal(t, "pending", status)

	signer, err := webhook.NewSigner(env["DUEFLOW_WEBHOOK_SECRET"])
	require.NoError(t, err)
	hdr, err := signer.Sign(body)
	require.NoError(t, err)
	resp, err = h.HandleFunctionURL(ctx, event(webhook.Headers(hdr)))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var sum automation.Summary
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &sum))
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 1, Claimed: 1, Completed: 1}, sum)

	msgs := capture.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"ada@client.test"}, msgs[0].EnvelopeTo)
	assert.True(t, strings.Contains(msgs[0].Text, "$75.00"), msgs[0].Text)
	var dstatus string
	require.NoError(t, db.QueryRow(ctx, `select e.status, d.status from automation_execution_logs e
		join automation_deliveries d on d.execution_id = e.id where e.id = $1`, id).Scan(&status, &dstatus))
	assert.Equal(t, "completed", status)
	assert.Equal(t, "sent", dstatus)
}
