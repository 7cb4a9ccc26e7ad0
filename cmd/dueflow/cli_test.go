package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/webhook"
)

func TestInvokeFlags(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseInvokeFlags(nil, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--fn is required")

	_, err = parseInvokeFlags([]string{"--fn", "send-sms"}, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown function "send-sms"`)
	assert.Contains(t, err.Error(), "send-reminder, invoice-reminder, run-workflow")

	_, err = parseInvokeFlags([]string{"--fn", "run-workflow", "extra"}, &stderr)
	require.ErrorContains(t, err, "unexpected arguments")

	_, err = parseInvokeFlags([]string{"--nope"}, &stderr)
	require.Error(t, err)

	o, err := parseInvokeFlags([]string{"--fn", "invoice-reminder"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("events", "invoice-reminder.json"), o.Event, "default event")

	o, err = parseInvokeFlags([]string{"--fn", "run-workflow", "--event", "/tmp/x.json"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, "/tmp/x.json", o.Event)
}

func TestDemoFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseDemoFlags(nil, &stderr)
	require.NoError(t, err)
	assert.False(t, o.Once)
	o, err = parseDemoFlags([]string{"--once"}, &stderr)
	require.NoError(t, err)
	assert.True(t, o.Once)
	_, err = parseDemoFlags([]string{"--once", "now"}, &stderr)
	require.ErrorContains(t, err, "unexpected arguments")
	_, err = parseDemoFlags([]string{"--timeout", "0s"}, &stderr)
	require.ErrorContains(t, err, "--timeout must be positive")
}

// The sample events are Function URL events (payload 2.0) whose body is the
// request pg_net sends to that function.
func TestSampleEvents(t *testing.T) {
	for _, fn := range automation.Actions {
		t.Run(fn, func(t *testing.T) {
			ev, err := loadEvent(filepath.Join("..", "..", "events", fn+".json"))
			require.NoError(t, err)
			assert.Equal(t, "POST", ev.RequestContext.HTTP.Method)
			p, err := ev.payload()
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(p, &doc))
			assert.Equal(t, "$default", doc["routeKey"], "fields the Go type lacks are kept")
			assert.Equal(t, "$default", doc["requestContext"].(map[string]any)["stage"])
			assert.Equal(t, "application/json", ev.Headers["content-type"])
			assert.NotContains(t, ev.Headers, webhook.HeaderSignature, "invoke signs at run time")
			var req automation.Request
			require.NoError(t, json.Unmarshal([]byte(ev.Body), &req))
			assert.Equal(t, fn, req.Action)
			assert.NotEmpty(t, req.ExecutionIDs)
		})
	}
}

// invoke signs an unsigned event so that the function's verifier accepts
// it, and leaves a signed one alone.
func TestSignEvent(t *testing.T) {
	secret := webhook.NewSecret()
	ev, err := loadEvent(filepath.Join("..", "..", "events", "send-reminder.json"))
	require.NoError(t, err)
	signed, err := signEvent(ev, secret)
	require.NoError(t, err)
	assert.True(t, signed)

	v, err := webhook.NewVerifier(secret, automation.ActionSendReminder)
	require.NoError(t, err)
	h := http.Header{}
	for k, val := range ev.Headers {
		h.Set(k, val)
	}
	req, err := v.VerifyAndDecode([]byte(ev.Body), h)
	require.NoError(t, err)
	assert.Len(t, req.ExecutionIDs, 2)

	other, err := webhook.NewVerifier(webhook.NewSecret(), automation.ActionSendReminder)
	require.NoError(t, err)
	assert.Error(t, other.Verify([]byte(ev.Body), h), "another secret does not verify")

	again, err := signEvent(ev, secret)
	require.NoError(t, err)
	assert.False(t, again, "an event with a webhook-signature is sent as is")

	_, err = signEvent(ev, "not-a-secret")
	assert.NoError(t, err, "no signing needed, no secret parsed")
	ev.Headers = nil
	_, err = signEvent(ev, "not-a-secret")
	assert.Error(t, err)
}

func TestEnvFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "function.env")
	env := []string{"SUPABASE_URL=http://127.0.0.1:54321", "DUEFLOW_WEBHOOK_SECRET=whsec_abc=", "EMPTY="}
	require.NoError(t, writeEnvFile(p, env))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := readEnvFile(p)
	require.NoError(t, err)
	assert.Equal(t, env, got)
	assert.Equal(t, "whsec_abc=", envValue(got, "DUEFLOW_WEBHOOK_SECRET"))

	require.NoError(t, os.WriteFile(p, []byte("JUSTAWORD\n"), 0o600))
	_, err = readEnvFile(p)
	assert.ErrorContains(t, err, "not KEY=value")
}

func TestInvokeWithoutLocalStack(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	err = runInvoke(t.Context(), root, invokeOptions{Fn: "send-reminder", Event: "events/send-reminder.json", StateDir: t.TempDir()}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make demo")
}

func TestPrintInvokeResult(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, printInvokeResult(&b, invokeResult{Payload: []byte(`{"statusCode":401,"headers":{"content-type":"application/json"},"body":"{\"error\":\"webhook signature mismatch\"}"}`)}))
	assert.Equal(t, "statusCode: 401\n{\n  \"error\": \"webhook signature mismatch\"\n}\n", b.String())

	b.Reset()
	require.Error(t, printInvokeResult(&b, invokeResult{FunctionError: true, Payload: []byte(`{"errorType":"Runtime.ExitError"}`)}))
	assert.Contains(t, b.String(), "Runtime.ExitError")
}

// make invoke without FN fails with a clear message, before building anything.
func TestMakeInvokeRequiresFN(t *testing.T) {
	cmd := exec.Command("make", "--no-print-directory", "-s", "invoke", "FN=")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, string(out), "FN is required")
	assert.False(t, strings.Contains(string(out), "go run"), "nothing ran")
}

func TestTableWrite(t *testing.T) {
	var b bytes.Buffer
	tb := table{Columns: []string{"action", "pending"}, Rows: [][]string{{"invoice-reminder", "3"}, {"run-workflow", "12"}}}
	require.NoError(t, tb.write(&b))
	assert.Equal(t, "action            pending\ninvoice-reminder  3\nrun-workflow      12\n", b.String())

	b.Reset()
	require.NoError(t, table{Columns: []string{"a"}}.write(&b))
	assert.Equal(t, "a\n(none)\n", b.String())

	assert.Equal(t, "a b", cleanCell("a\n  b"))
	assert.Equal(t, `""`, cleanCell(""))
	assert.Len(t, []rune(cleanCell(strings.Repeat("x", 100))), 60)
}
