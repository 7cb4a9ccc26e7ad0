package secrets

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/secretsmanagerfake"
)

// useEndpoint points the SDK's default configuration at url with dummy
// credentials for the test.
func useEndpoint(t *testing.T, url string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
	t.Setenv("AWS_REGION", secretsmanagerfake.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "standin")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

func standIn(t *testing.T) *secretsmanagerfake.Server {
	t.Helper()
	sm := secretsmanagerfake.Start()
	t.Cleanup(sm.Close)
	useEndpoint(t, sm.URL())
	return sm
}

func TestSecretsManagerReadsTheJSONObject(t *testing.T) {
	sm := standIn(t)
	arn := sm.PutJSON("dueflow", map[string]string{"DUEFLOW_WEBHOOK_SECRET": "whsec_a", "SMTP_PASSWORD": " pw \n"})
	for _, id := range []string{"dueflow", arn} {
		src, err := NewSecretsManager(t.Context(), id)
		require.NoError(t, err)
		v, err := src.Read(t.Context())
		require.NoError(t, err, id)
		assert.Equal(t, map[string]string{"DUEFLOW_WEBHOOK_SECRET": "whsec_a", "SMTP_PASSWORD": "pw"}, v, "by name or ARN; values trimmed")
		assert.Equal(t, id, src.Name())
	}
}

func TestSecretsManagerErrorsNameTheSecretNeverAValue(t *testing.T) {
	sm := standIn(t)
	sm.Put("not-json", "hunter2-is-the-password")
	sm.Put("not-strings", `{"SMTP_PASSWORD": 12345678, "TELNYX_API_KEY": "KEYvalue"}`)
	cases := map[string]string{
		"missing":     `secrets: read secret "missing"`,
		"not-json":    `secrets: secret "not-json": SecretString is not a JSON object`,
		"not-strings": `secrets: secret "not-strings": keys SMTP_PASSWORD are not strings`,
	}
	for id, want := range cases {
		src, err := NewSecretsManager(t.Context(), id)
		require.NoError(t, err)
		_, err = src.Read(t.Context())
		require.Error(t, err, id)
		assert.Contains(t, err.Error(), want)
		for _, v := range []string{"hunter2", "12345678", "KEYvalue"} {
			assert.NotContains(t, err.Error(), v)
		}
	}
	src, err := NewSecretsManager(t.Context(), "missing")
	require.NoError(t, err)
	_, err = src.Read(t.Context())
	assert.Contains(t, err.Error(), "ResourceNotFoundException", "the service's error code is kept")
}

// An unreachable Secrets Manager fails the cold start with an error naming
// the secret; a stalled one is bounded by the context.
func TestColdStartUnreachableAndStalled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	useEndpoint(t, closed)
	src, err := NewSecretsManager(t.Context(), "dueflow/prod")
	require.NoError(t, err)
	_, err = NewCache(t.Context(), src, time.Minute)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), `secrets: read secret "dueflow/prod": `), "wrapped once: %s", err)

	st, err := secretsmanagerfake.StartStaller()
	require.NoError(t, err)
	defer st.Close()
	useEndpoint(t, st.URL())
	src, err = NewSecretsManager(t.Context(), "dueflow")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = NewCache(ctx, src, time.Minute)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 300*time.Millisecond+time.Second, "returned at the deadline (+ slack)")
	assert.Contains(t, err.Error(), `read secret "dueflow"`)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A rotated value is read once the cached copy is older than the max age;
// a failed re-read keeps the last good values, warns without a value and
// is retried later, not on every call.
func TestCacheRefreshesAfterMaxAgeAndKeepsLastGood(t *testing.T) {
	sm := standIn(t)
	sm.PutJSON("dueflow", map[string]string{"TELNYX_API_KEY": "KEYold"})
	src, err := NewSecretsManager(t.Context(), "dueflow")
	require.NoError(t, err)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var logs bytes.Buffer
	c, err := NewCache(t.Context(), src, 5*time.Minute, WithClock(clock.now),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	require.NoError(t, err)
	v, ver := c.Values()
	assert.Equal(t, "KEYold", v["TELNYX_API_KEY"])
	assert.EqualValues(t, 1, ver)

	sm.PutJSON("dueflow", map[string]string{"TELNYX_API_KEY": "KEYnew"})
	clock.add(4 * time.Minute)
	assert.EqualValues(t, 1, c.Refresh(t.Context()), "younger than the max age: not re-read")
	assert.Equal(t, 1, sm.Calls())
	clock.add(time.Minute)
	assert.EqualValues(t, 2, c.Refresh(t.Context()))
	v, _ = c.Values()
	assert.Equal(t, "KEYnew", v["TELNYX_API_KEY"])
	assert.Contains(t, logs.String(), `"keys":["TELNYX_API_KEY"]`)

	clock.add(5 * time.Minute)
	assert.EqualValues(t, 2, c.Refresh(t.Context()), "same values: same version")
	assert.Equal(t, 3, sm.Calls())

	sm.PutJSON("dueflow", map[string]string{"TELNYX_API_KEY": "KEYnewer"})
	sm.FailNext(100)
	clock.add(5 * time.Minute)
	assert.EqualValues(t, 2, c.Refresh(t.Context()), "failure: last good values")
	v, _ = c.Values()
	assert.Equal(t, "KEYnew", v["TELNYX_API_KEY"])
	assert.Contains(t, logs.String(), "secrets re-read failed; keeping the last good values")
	calls := sm.Calls()
	clock.add(30 * time.Second)
	c.Refresh(t.Context())
	assert.Equal(t, calls, sm.Calls(), "not retried before RetryAfterFailure")
	sm.FailNext(0)
	clock.add(30 * time.Second)
	assert.EqualValues(t, 3, c.Refresh(t.Context()))
	for _, secret := range []string{"KEYold", "KEYnew"} {
		assert.NotContains(t, logs.String(), secret)
	}
}

// A stalled Secrets Manager holds a warm request for at most
// RefreshTimeout (or the request's own deadline, when sooner).
func TestRefreshBoundedWhenStalled(t *testing.T) {
	sm := standIn(t)
	sm.PutJSON("dueflow", map[string]string{"TELNYX_API_KEY": "KEYold"})
	src, err := NewSecretsManager(t.Context(), "dueflow")
	require.NoError(t, err)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	c, err := NewCache(t.Context(), src, time.Minute, WithClock(clock.now), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)

	st, err := secretsmanagerfake.StartStaller()
	require.NoError(t, err)
	defer st.Close()
	useEndpoint(t, st.URL())
	c.src, err = NewSecretsManager(t.Context(), "dueflow")
	require.NoError(t, err)

	clock.add(time.Minute)
	start := time.Now()
	assert.EqualValues(t, 1, c.Refresh(t.Context()))
	assert.Less(t, time.Since(start), RefreshTimeout+time.Second)
	v, _ := c.Values()
	assert.Equal(t, "KEYold", v["TELNYX_API_KEY"])

	clock.add(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	c.Refresh(ctx)
	assert.Less(t, time.Since(start), 200*time.Millisecond+time.Second, "the request's deadline bounds it too")
}

func TestEnvSourceAndSettings(t *testing.T) {
	env := map[string]string{"SMTP_PASSWORD": "pw", "DUEFLOW_SECRETS_MAX_AGE": "90s"}
	getenv := func(k string) string { return env[k] }
	s, err := SettingsFromEnv(getenv)
	require.NoError(t, err)
	assert.Equal(t, Settings{MaxAge: 90 * time.Second}, s)
	src, maxAge, err := Open(t.Context(), s, getenv, []string{"SMTP_PASSWORD", "TELNYX_API_KEY"})
	require.NoError(t, err)
	assert.Zero(t, maxAge, "the environment never changes")
	v, err := src.Read(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"SMTP_PASSWORD": "pw"}, v)
	assert.Equal(t, "environment", src.Name())

	for _, bad := range []string{"0s", "-1m", "5", "25h"} {
		env["DUEFLOW_SECRETS_MAX_AGE"] = bad
		_, err := SettingsFromEnv(getenv)
		require.Error(t, err, bad)
		assert.True(t, strings.HasPrefix(err.Error(), "secrets: DUEFLOW_SECRETS_MAX_AGE"), err.Error())
	}
}
