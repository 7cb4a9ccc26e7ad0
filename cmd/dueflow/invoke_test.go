package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/webhook"
)

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	port, err := localports.FreePort() // never one of the demo's ports
	require.NoError(t, err)
	return port
}

// invoke builds the real function and runs it under the real RIE: a bad
// signature is refused with 401 before any database call, a request signed
// by invoke with the stack's secret is verified (and then fails to reach
// the absent database).
func TestInvokeRunsTheFunctionUnderTheRIE(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	state := t.TempDir()
	key, err := postgrest.SignJWT("0123456789abcdef0123456789abcdef", "service_role", 0)
	require.NoError(t, err)
	secret := webhook.NewSecret()
	require.NoError(t, writeEnvFile(functionEnvFile(state), []string{
		"SUPABASE_URL=http://127.0.0.1:" + strconv.Itoa(closedPort(t)),
		"SUPABASE_SERVICE_ROLE_KEY=" + key,
		"DUEFLOW_WEBHOOK_SECRET=" + secret,
		"DUEFLOW_RPC_TIMEOUT=2s",
		"EMAIL_PROVIDER=smtp",
		"EMAIL_FROM=reminders@dueflow.test",
		"SMTP_HOST=127.0.0.1",
		"SMTP_PORT=" + strconv.Itoa(closedPort(t)),
		"SMTP_TLS=none",
		"SMS_PROVIDER=none",
	}))
	t.Setenv("DUEFLOW_WEBHOOK_SECRET", "")

	t.Run("bad signature", func(t *testing.T) {
		ev, err := loadEvent(filepath.Join(root, "events", "invoice-reminder.json"))
		require.NoError(t, err)
		ev.Headers["webhook-id"] = "msg_1"
		ev.Headers["webhook-timestamp"] = "1"
		ev.Headers["webhook-signature"] = "v1,bm90IGEgc2lnbmF0dXJl"
		b, err := ev.payload()
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(p, b, 0o644))

		var out, errOut bytes.Buffer
		err = runInvoke(t.Context(), root, invokeOptions{Fn: "invoice-reminder", Event: p, StateDir: state}, &out, &errOut)
		require.NoError(t, err, errOut.String())
		assert.Contains(t, errOut.String(), "the event carries a webhook-signature; sent as is")
		assert.Regexp(t, `^statusCode: 401\n`, out.String())
	})

	t.Run("signed by invoke", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runInvoke(t.Context(), root, invokeOptions{Fn: "invoice-reminder", Event: "events/invoice-reminder.json", StateDir: state}, &out, &errOut)
		require.NoError(t, err, errOut.String())
		assert.Contains(t, errOut.String(), "signed the event body with the local stack's secret")
		assert.Contains(t, errOut.String(), `"msg":"request verified"`, "the function accepted the signature")
		// verified, then the claim cannot reach the (absent) database: 500
		assert.Regexp(t, `^statusCode: 500\n`, out.String())
	})
}
