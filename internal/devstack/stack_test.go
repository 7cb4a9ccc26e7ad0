package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/webhook"
)

// TestStackDispatchesSignedFunctionURLCalls runs the stack with the echo
// function as send-reminder: a due execution is posted by
// process_pending_automations through the pg_net stand-in and the gateway to
// the function under the RIE, with a Standard Webhooks signature the shared
// verifier accepts; Close leaves no process and no port behind.
func TestStackDispatchesSignedFunctionURLCalls(t *testing.T) {
	ctx := context.Background()
	root, err := FindRoot(".")
	require.NoError(t, err)
	var lines []string
	state, err := TempStateDir("devstack-stack-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	s, err := Start(ctx, Config{
		Root:           root,
		StateDir:       state,
		Functions:      []string{"send-reminder"},
		BuiltFunctions: map[string]string{"send-reminder": echoBootstrap},
		NoCron:         true,
		FastPostgres:   true,
		UseMailpit:     true,
		Progress:       func(m string) { lines = append(lines, m) },
	})
	require.NoError(t, err)
	defer s.Close(ctx)
	assert.NotEmpty(t, lines)

	var wf, exec string
	org := "7f1d7f1c-0000-4000-8000-000000000001"
	require.NoError(t, s.Pool().QueryRow(ctx, `insert into automation_workflows (organization_id, name, trigger_type) values ($1, 'wf', 'maintenance_due') returning id`, org).Scan(&wf))
	require.NoError(t, s.Pool().QueryRow(ctx, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type)
		values ($1, $2, 'send-reminder', 'maintenance_due', 'k1', 'organization') returning id`, wf, org).Scan(&exec))

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Requests, res.String())
	r := res.Responses[0]
	require.Equal(t, 201, r.StatusCode, r.ErrorMsg)
	assert.Equal(t, s.GatewayURL()+"/functions/v1/send-reminder", r.URL)

	var out struct {
		Event events.LambdaFunctionURLRequest `json:"event"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Content), &out))
	ev := out.Event
	v, err := webhook.NewVerifier(s.WebhookSecret(), "send-reminder")
	require.NoError(t, err)
	h := http.Header{}
	for k, val := range ev.Headers {
		h.Set(k, val)
	}
	req, err := v.VerifyAndDecode([]byte(ev.Body), h)
	require.NoError(t, err, "the SQL signature verifies with the shared Go verifier")
	require.Len(t, req.ExecutionIDs, 1)
	assert.Equal(t, exec, req.ExecutionIDs[0].String())

	var stored int
	require.NoError(t, s.Pool().QueryRow(ctx, `select status_code from net._http_response where id = $1`, r.ID).Scan(&stored))
	assert.Equal(t, 201, stored)

	// the service-role key works against the PostgREST stand-in through the gateway
	rpc, _ := http.NewRequest(http.MethodPost, s.GatewayURL()+"/rest/v1/rpc/automation_claim", strings.NewReader(`{"p_action":"send-reminder","p_ids":["`+exec+`"]}`))
	rpc.Header.Set("Authorization", "Bearer "+s.ServiceRoleKey())
	rpc.Header.Set("apikey", s.ServiceRoleKey())
	rpc.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(rpc)
	require.NoError(t, err)
	var claimed []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&claimed))
	resp.Body.Close()
	require.Len(t, claimed, 1)

	// so does the secret API key, in apikey alone (the execution is now
	// leased: nothing more to claim, but the call is let through)
	rpc, _ = http.NewRequest(http.MethodPost, s.GatewayURL()+"/rest/v1/rpc/automation_claim", strings.NewReader(`{"p_action":"send-reminder","p_ids":["`+exec+`"]}`))
	rpc.Header.Set("apikey", s.SecretKey())
	rpc.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(rpc)
	require.NoError(t, err)
	claimed = nil
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&claimed))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, claimed)

	// Mailpit receives SMTP and Emails reads it back through its API
	host := "127.0.0.1:" + fmt.Sprint(s.mailpit.SMTPPort())
	msg := "From: a@x.test\r\nTo: b@y.test\r\nSubject: hello\r\nContent-Type: text/plain\r\n\r\nbody text\r\n"
	require.NoError(t, smtp.SendMail(host, nil, "a@x.test", []string{"b@y.test"}, []byte(msg)))
	emails, err := s.Emails(ctx)
	require.NoError(t, err)
	require.Len(t, emails, 1)
	assert.Equal(t, "hello", emails[0].Subject)
	assert.Equal(t, []string{"b@y.test"}, emails[0].To)
	assert.Contains(t, emails[0].Text, "body text")

	procs := s.Processes()
	require.NotEmpty(t, procs["postgres"])
	require.NotEmpty(t, procs["rie:send-reminder"])
	require.NotEmpty(t, procs["mailpit"])
	gw := strings.TrimPrefix(s.GatewayURL(), "http://")
	started := startTimes(procs)
	require.NoError(t, s.Close(ctx))
	for pid, st := range started {
		assert.NotEqual(t, st, procStart(pid), "pid %d still running after Close", pid)
	}
	for _, addr := range []string{gw, host} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "%s still accepting after Close", addr)
	}
}

// TestStackStopsWhenContextIsCancelledAndRestarts: cancelling Start's
// context stops every process the stack started (Postgres included) and
// frees its ports; a new Start on the same state directory works.
func TestStackStopsWhenContextIsCancelledAndRestarts(t *testing.T) {
	root, err := FindRoot(".")
	require.NoError(t, err)
	state, err := TempStateDir("devstack-cancel-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Config{
		Root:           root,
		StateDir:       state,
		Functions:      []string{"run-workflow"},
		BuiltFunctions: map[string]string{"run-workflow": echoBootstrap},
		NoCron:         true,
		FastPostgres:   true,
	})
	require.NoError(t, err)
	procs := s.Processes()
	require.NotEmpty(t, procs["postgres"])
	require.NotEmpty(t, procs["rie:run-workflow"])
	gw := strings.TrimPrefix(s.GatewayURL(), "http://")
	secret := s.WebhookSecret()
	started := startTimes(procs)
	cancel()
	require.Eventually(t, func() bool {
		for pid, st := range started {
			if procStart(pid) == st {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "processes left after cancel")
	_, err = net.DialTimeout("tcp", gw, time.Second)
	assert.Error(t, err)
	assert.NoError(t, s.Close(context.Background()), "Close after cancel is a no-op")

	// A restart on the same state directory reuses the cluster: the compat
	// SQL and the migrations apply again (idempotent) and the Vault secret
	// is kept.
	s2, err := Start(context.Background(), Config{
		Root:           root,
		StateDir:       state,
		Functions:      []string{"run-workflow"},
		BuiltFunctions: map[string]string{"run-workflow": echoBootstrap},
		NoCron:         true,
		FastPostgres:   true,
	})
	require.NoError(t, err)
	defer s2.Close(context.Background())
	assert.Equal(t, secret, s2.WebhookSecret())
	var url string
	require.NoError(t, s2.Pool().QueryRow(context.Background(), `select url from automation_endpoints where action = 'run-workflow'`).Scan(&url))
	assert.Equal(t, s2.GatewayURL()+"/functions/v1/run-workflow", url, "the endpoint follows the new gateway port")
}

// startTimes identifies each process by pid and start time (pids are reused
// quickly on a busy machine).
func startTimes(procs map[string][]int) map[int]int64 {
	out := map[int]int64{}
	for _, pids := range procs {
		for _, pid := range pids {
			if st := procStart(pid); st != 0 {
				out[pid] = st
			}
		}
	}
	return out
}
