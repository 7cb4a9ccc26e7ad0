package function

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/internal/secretsmanagerfake"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/webhook"
)

// restRecorder answers every PostgREST RPC with an empty set (nothing
// claimed) and records the API key each call carried: which service-role
// key the function's store uses.
type restRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []string
}

func newRestRecorder(t testing.TB) *restRecorder {
	r := &restRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.keys = append(r.keys, req.Header.Get("apikey"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *restRecorder) lastKey() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) == 0 {
		return ""
	}
	return r.keys[len(r.keys)-1]
}

func serviceKey(t testing.TB, jwtSecret string) string {
	t.Helper()
	k, err := postgrest.SignJWT(jwtSecret, "service_role", 0)
	require.NoError(t, err)
	return k
}

// secretEnv is validEnv with the secret keys taken out (returned as the
// second map, to be stored in the stand-in's secret "dueflow") and the
// function pointed at that secret.
func secretEnv(t testing.TB, sm *secretsmanagerfake.Server, restURL, maxAge string) (env, secret map[string]string) {
	env = validEnv(t)
	secret = map[string]string{}
	for _, k := range config.SecretKeys {
		if v, ok := env[k]; ok {
			secret[k] = v
			delete(env, k)
		}
	}
	env["SUPABASE_URL"] = restURL
	env[secretsEnvID] = "dueflow"
	env["DUEFLOW_SECRETS_MAX_AGE"] = maxAge
	for _, kv := range sm.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env, secret
}

const secretsEnvID = "DUEFLOW_SECRET_ID"

// setAWSEnv puts the stand-in's AWS variables into the test process (the
// SDK reads them from there).
func setAWSEnv(t *testing.T, env map[string]string) {
	for k, v := range env {
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// signedEvent is a Function URL event for one made-up execution id, signed
// with secret (one or several).
func signedEvent(t testing.TB, secret string) events.LambdaFunctionURLRequest {
	t.Helper()
	body, err := json.Marshal(automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{uuid.New()}})
	require.NoError(t, err)
	s, err := webhook.NewSigner(secret)
	require.NoError(t, err)
	h, err := s.Sign(body)
	require.NoError(t, err)
	ev := events.LambdaFunctionURLRequest{Headers: webhook.Headers(h), Body: string(body)}
	ev.RequestContext.HTTP.Method = http.MethodPost
	return ev
}

func rotate(sm *secretsmanagerfake.Server, change map[string]string, base map[string]string) map[string]string {
	next := map[string]string{}
	for k, v := range base {
		next[k] = v
	}
	for k, v := range change {
		next[k] = v
	}
	sm.PutJSON("dueflow", next)
	return next
}

// A warm function follows its secret: after the max age the next request
// is verified with the rotated webhook secrets and claims with the rotated
// service-role key; the replaced senders are closed; values that make an
// invalid configuration, or a failing Secrets Manager, leave the last good
// ones in use; no value is ever logged.
func TestWarmFunctionFollowsRotatedSecret(t *testing.T) {
	sm := secretsmanagerfake.Start()
	defer sm.Close()
	rest := newRestRecorder(t)
	env, _ := secretEnv(t, sm, rest.srv.URL, "300ms")
	setAWSEnv(t, env)
	keyA, keyB := serviceKey(t, "jwt-secret-a-jwt-secret-a-jwt-secret-a"), serviceKey(t, "jwt-secret-b-jwt-secret-b-jwt-secret-b")
	whA, whB := webhook.NewSecret(), webhook.NewSecret()
	env["SUPABASE_SERVICE_ROLE_KEY"] = serviceKey(t, "stale-env-key-stale-env-key-stale-env") // the secret wins
	secret := rotate(sm, map[string]string{"SUPABASE_SERVICE_ROLE_KEY": keyA, "DUEFLOW_WEBHOOK_SECRET": whA}, map[string]string{"TELNYX_API_KEY": "KEYtelnyxsecretvalue"})

	var logs bytes.Buffer
	var logMu sync.Mutex
	f, err := Start(t.Context(), automation.ActionInvoiceReminder, actionBuilder(automation.ActionInvoiceReminder), func(k string) string { return env[k] }, lockedWriter{&logs, &logMu})
	require.NoError(t, err)
	retired := make(chan uint64, 8)
	f.onRetire = func(v uint64) { retired <- v }

	status := func(secret string) int {
		resp, err := f.HandleFunctionURL(t.Context(), signedEvent(t, secret))
		require.NoError(t, err)
		return resp.StatusCode
	}
	require.Equal(t, 200, status(whA))
	assert.Equal(t, keyA, rest.lastKey())
	assert.Equal(t, 401, status(whB))

	// Overlap: the function takes both, the database may sign with either.
	secret = rotate(sm, map[string]string{"SUPABASE_SERVICE_ROLE_KEY": keyB, "DUEFLOW_WEBHOOK_SECRET": whB + " " + whA}, secret)
	time.Sleep(400 * time.Millisecond)
	assert.Equal(t, 200, status(whB), "rotated secret picked up after the max age")
	assert.Equal(t, keyB, rest.lastKey(), "store rebuilt with the rotated key")
	assert.Equal(t, 200, status(whA), "old secret still accepted during the overlap")
	select {
	case v := <-retired:
		assert.EqualValues(t, 1, v, "the first generation's senders were closed")
	case <-time.After(5 * time.Second):
		t.Fatal("replaced generation not closed")
	}

	secret = rotate(sm, map[string]string{"DUEFLOW_WEBHOOK_SECRET": whB}, secret)
	time.Sleep(400 * time.Millisecond)
	assert.Equal(t, 401, status(whA), "old secret dropped")
	assert.Equal(t, 200, status(whB))

	// Bad values: kept the last good handler.
	rotate(sm, map[string]string{"SUPABASE_SERVICE_ROLE_KEY": "not-a-jwt-value"}, secret)
	time.Sleep(400 * time.Millisecond)
	assert.Equal(t, 200, status(whB))
	assert.Equal(t, keyB, rest.lastKey())
	// Secrets Manager failing: the last good values stay.
	sm.FailNext(1000)
	time.Sleep(400 * time.Millisecond)
	assert.Equal(t, 200, status(whB))

	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	assert.Contains(t, out, "function rebuilt with changed secrets")
	assert.Contains(t, out, "cannot be rebuilt with them; keeping the previous values")
	assert.Contains(t, out, "SUPABASE_SERVICE_ROLE_KEY is neither a secret key (sb_secret_…) nor a legacy service_role JWT")
	assert.Contains(t, out, "secrets re-read failed; keeping the last good values")
	for _, v := range []string{keyA, keyB, whA, whB, "not-a-jwt-value", "KEYtelnyxsecretvalue"} {
		assert.NotContains(t, out, v)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// The real binary under the Lambda RIE: a cold start reads the current
// secret (a rotation the warm process has not seen yet, its max age being
// an hour, takes effect after a restart), and a warm process with a short
// max age picks a rotation up without one.
func TestRotationUnderRIE(t *testing.T) {
	root, err := devstack.FindRoot(".")
	require.NoError(t, err)
	rie, err := devstack.ToolPath(root, "aws-lambda-rie")
	require.NoError(t, err)
	bin := buildBinary(t)
	sm := secretsmanagerfake.Start()
	defer sm.Close()
	rest := newRestRecorder(t)
	ctx := t.Context()

	invoke := func(fn *devstack.Function, secret string) int {
		payload, err := json.Marshal(signedEvent(t, secret))
		require.NoError(t, err)
		out, fnErr, err := fn.Invoke(ctx, payload)
		require.NoError(t, err)
		require.False(t, fnErr, string(out))
		var resp events.LambdaFunctionURLResponse
		require.NoError(t, json.Unmarshal(out, &resp), string(out))
		return resp.StatusCode
	}
	start := func(name, maxAge string) *devstack.Function {
		env, _ := secretEnv(t, sm, rest.srv.URL, maxAge)
		var list []string
		for k, v := range env {
			list = append(list, k+"="+v)
		}
		fn := devstack.NewFunction(devstack.FunctionSpec{Name: automation.ActionInvoiceReminder, Bootstrap: bin, Env: list, TimeoutS: 20},
			rie, filepath.Join(t.TempDir(), name), nil)
		require.NoError(t, os.MkdirAll(filepath.Join(t.TempDir(), name), 0o755))
		require.NoError(t, fn.Start(ctx))
		t.Cleanup(func() { _ = fn.Stop(context.Background()) })
		return fn
	}
	whA, whB, whC := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()

	secret := map[string]string{"SUPABASE_SERVICE_ROLE_KEY": serviceKey(t, "jwt-secret-a-jwt-secret-a-jwt-secret-a"), "TELNYX_API_KEY": "KEY"}
	secret = rotate(sm, map[string]string{"DUEFLOW_WEBHOOK_SECRET": whA}, secret)
	cold := start("cold", "1h")
	require.Equal(t, 200, invoke(cold, whA))
	secret = rotate(sm, map[string]string{"DUEFLOW_WEBHOOK_SECRET": whB}, secret)
	assert.Equal(t, 401, invoke(cold, whB), "warm, within its max age: the cached secret")
	require.NoError(t, cold.Kill(ctx))
	require.NoError(t, cold.Restart(ctx))
	assert.Equal(t, 200, invoke(cold, whB), "the next cold start reads the rotated secret")

	warm := start("warm", "1s")
	require.Equal(t, 200, invoke(warm, whB))
	rotate(sm, map[string]string{"DUEFLOW_WEBHOOK_SECRET": whC}, secret)
	time.Sleep(1100 * time.Millisecond)
	assert.Equal(t, 200, invoke(warm, whC), "warm, after the max age: the rotated secret, no restart")
	assert.Equal(t, 401, invoke(warm, whB))
}

// Cold start against a Secrets Manager that cannot be reached: the process
// exits 1 with an error naming the secret id and never a value; against
// one that accepts connections and never answers: within the cold-start
// bound.
func TestColdStartSecretsManagerDown(t *testing.T) {
	bin := buildBinary(t)
	sm := secretsmanagerfake.Start()
	env, _ := secretEnv(t, sm, "http://127.0.0.1:9", "5m")
	sm.Close() // unreachable from now on
	env[secretsEnvID] = "dueflow/prod"
	run := func(env map[string]string) (string, time.Duration) {
		cmd := exec.Command(bin)
		cmd.Env = environ(env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, stderr.String())
		assert.Equal(t, 1, ee.ExitCode())
		return stderr.String(), time.Since(start)
	}
	msg, _ := run(env)
	assert.Contains(t, msg, `invoice-reminder: secrets: read secret "dueflow/prod": `)
	assert.Equal(t, 1, strings.Count(msg, "dueflow/prod"), "wrapped once: %s", msg)
	for _, k := range config.SecretKeys {
		if v := validEnv(t)[k]; v != "" {
			assert.NotContains(t, msg, v)
		}
	}

	st, err := secretsmanagerfake.StartStaller()
	require.NoError(t, err)
	defer st.Close()
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = st.URL()
	msg, took := run(env)
	assert.Contains(t, msg, `read secret "dueflow/prod"`)
	assert.Less(t, took, 5*time.Second+3*time.Second, "bounded by the cold-start timeout (+ process start)")
}

// BenchmarkInitSecretsManager is BenchmarkInit with the secret read from
// the Secrets Manager stand-in: SDK configuration, one GetSecretValue, the
// overlay, then the configuration and the handler.
func BenchmarkInitSecretsManager(b *testing.B) {
	sm := secretsmanagerfake.Start()
	defer sm.Close()
	env, secret := secretEnv(b, sm, "http://127.0.0.1:54321", "5m")
	sm.PutJSON("dueflow", secret)
	for k, v := range env {
		if strings.HasPrefix(k, "AWS_") {
			b.Setenv(k, v)
		}
	}
	b.Setenv("AWS_CONFIG_FILE", os.DevNull)
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	getenv := func(k string) string { return env[k] }
	for b.Loop() {
		if _, err := Start(context.Background(), automation.ActionInvoiceReminder, actionBuilder(automation.ActionInvoiceReminder), getenv, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStartSecretsManager is BenchmarkColdStart with the secret
// read from the Secrets Manager stand-in.
func BenchmarkColdStartSecretsManager(b *testing.B) {
	sm := secretsmanagerfake.Start()
	defer sm.Close()
	env, secret := secretEnv(b, sm, "http://127.0.0.1:54321", "5m")
	sm.PutJSON("dueflow", secret)
	coldStart(b, env)
}
