package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func testSecret(n int) string {
	key := bytes.Repeat([]byte{0x5a}, n)
	for i := range key {
		key[i] = byte(i*37 + 11)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

type endpointRow struct {
	URL              string
	Enabled          bool
	Batch, TimeoutMS int
	SecretName       string
}

func endpoint(t *testing.T, pool *pgxpool.Pool, action string) endpointRow {
	t.Helper()
	var r endpointRow
	require.NoError(t, pool.QueryRow(t.Context(),
		`select url, enabled, batch_size, timeout_ms, secret_name from automation_endpoints where action = $1`, action).
		Scan(&r.URL, &r.Enabled, &r.Batch, &r.TimeoutMS, &r.SecretName))
	return r
}

func callRegister(ctx context.Context, pool *pgxpool.Pool, action, url string, secret *string, batch, timeout *int) error {
	_, err := pool.Exec(ctx, `select public.automation_register_endpoint($1, $2, $3, $4, $5)`, action, url, secret, batch, timeout)
	return err
}

func TestRegisterEndpointUpserts(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	ctx := t.Context()
	url := "https://abc123.lambda-url.eu-west-1.on.aws/"
	require.NoError(t, callRegister(ctx, pool, "send-reminder", url, nil, nil, nil))
	assert.Equal(t, endpointRow{url, true, 100, 60000, "dueflow_webhook_secret"}, endpoint(t, pool, "send-reminder"))

	_, err := pool.Exec(ctx, `update automation_endpoints set enabled = false where action = 'send-reminder'`)
	require.NoError(t, err)
	batch, timeout := 50, 90000
	url2 := "https://def456.lambda-url.eu-west-1.on.aws/"
	require.NoError(t, callRegister(ctx, pool, "send-reminder", url2, nil, &batch, &timeout))
	assert.Equal(t, endpointRow{url2, true, 50, 90000, "dueflow_webhook_secret"}, endpoint(t, pool, "send-reminder"), "re-registering enables and updates")

	require.NoError(t, callRegister(ctx, pool, "send-reminder", url2, nil, nil, nil))
	assert.Equal(t, 50, endpoint(t, pool, "send-reminder").Batch, "omitted batch size keeps the stored one")

	// Local hosts may use http.
	for i, u := range []string{
		"http://localhost:54321/functions/v1/send-reminder",
		"http://127.0.0.1:9000/",
		"http://[::1]:8080/x",
		"http://host.docker.internal:54321/functions/v1/run-workflow",
		"HTTPS://Example.COM/path?q=1",
	} {
		require.NoError(t, callRegister(ctx, pool, "run-workflow", u, nil, nil, nil), "case %d %s", i, u)
		assert.Equal(t, strings.Replace(u, "HTTPS:", "https:", 1), endpoint(t, pool, "run-workflow").URL, "scheme lower-cased")
	}
}

func TestRegisterEndpointRefuses(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	ctx := t.Context()
	big, small := 501, 10
	cases := []struct {
		name, action, url string
		batch, timeout    *int
		want              string
	}{
		{"unknown action", "send-sms", "https://x.example.com/", nil, nil,
			`unknown action "send-sms": expected one of send-reminder, invoice-reminder, run-workflow`},
		{"empty action", "", "https://x.example.com/", nil, nil, `unknown action "": expected one of`},
		{"http public host", "send-reminder", "http://abc.lambda-url.eu-west-1.on.aws/", nil, nil,
			`refusing http:// URL for non-local host "abc.lambda-url.eu-west-1.on.aws": use https://`},
		{"http look-alike", "send-reminder", "http://localhost.evil.com/", nil, nil, `refusing http:// URL for non-local host "localhost.evil.com"`},
		{"no scheme", "send-reminder", "abc.lambda-url.eu-west-1.on.aws", nil, nil, `malformed URL "abc.lambda-url.eu-west-1.on.aws"`},
		{"ftp", "send-reminder", "ftp://x.example.com/", nil, nil, `malformed URL "ftp://x.example.com/": scheme must be https`},
		{"no host", "send-reminder", "https:///path", nil, nil, `malformed URL`},
		{"space", "send-reminder", "https://x.example.com/a b", nil, nil, `malformed URL`},
		{"user info", "send-reminder", "https://user:pw@x.example.com/", nil, nil, `malformed URL`},
		{"bad port", "send-reminder", "https://x.example.com:99999/", nil, nil, `port 99999 out of range`},
		{"bad host", "send-reminder", "https://x..example.com/", nil, nil, `bad host name`},
		{"batch", "send-reminder", "https://x.example.com/", &big, nil, `batch size 501 out of range`},
		{"timeout", "send-reminder", "https://x.example.com/", nil, &small, `timeout 10 ms out of range`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := callRegister(ctx, pool, c.action, c.url, nil, c.batch, c.timeout)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "22023", "invalid_parameter_value (PostgREST answers 400)")
		})
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from automation_endpoints`).Scan(&n))
	assert.Zero(t, n, "nothing registered")
}

func TestRegisterEndpointStoresSecretInVault(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	ctx := t.Context()
	s1, s2 := testSecret(32), testSecret(24)
	require.NoError(t, callRegister(ctx, pool, "invoice-reminder", "https://x.example.com/", &s1, nil, nil))
	require.NoError(t, callRegister(ctx, pool, "send-reminder", "https://y.example.com/", &s2, nil, nil))

	var n int
	var got string
	require.NoError(t, pool.QueryRow(ctx,
		`select count(*), max(decrypted_secret) from vault.decrypted_secrets where name = 'dueflow_webhook_secret'`).Scan(&n, &got))
	assert.Equal(t, 1, n, "updated in place, not duplicated")
	assert.Equal(t, s2, got)

	// The dispatcher reads the same secret back as its HMAC key.
	var key []byte
	require.NoError(t, pool.QueryRow(ctx, `select public.automation_webhook_key('dueflow_webhook_secret')`).Scan(&key))
	want, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s2, "whsec_"))
	assert.Equal(t, want, key)

	for name, bad := range map[string]string{
		"no prefix": strings.TrimPrefix(s1, "whsec_"),
		"not b64":   "whsec_!!!notbase64!!!",
		"too short": testSecret(8),
		"too long":  testSecret(65),
	} {
		t.Run(name, func(t *testing.T) {
			err := callRegister(ctx, pool, "run-workflow", "https://z.example.com/", &bad, nil, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "signing secret")
			assert.NotContains(t, err.Error(), strings.TrimPrefix(bad, "whsec_"), "the secret is never echoed")
		})
	}
	require.NoError(t, pool.QueryRow(ctx, `select decrypted_secret from vault.decrypted_secrets where name = 'dueflow_webhook_secret'`).Scan(&got))
	assert.Equal(t, s2, got, "a refused secret changes nothing")
}

func TestRegisterEndpointPrivileges(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	ctx := t.Context()
	for role, allowed := range map[string]bool{"service_role": true, "authenticated": false, "anon": false} {
		t.Run(role, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			_, err = tx.Exec(ctx, "set local role "+role)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, `select public.automation_register_endpoint('send-reminder', 'https://x.example.com/')`)
			if allowed {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "permission denied")
			}
		})
	}
}

func TestParseStackOutputs(t *testing.T) {
	describe := `{"Stacks":[{"StackName":"dueflow","Outputs":[
	  {"OutputKey":"SendReminderFunctionUrl","OutputValue":"https://a.lambda-url.eu-west-1.on.aws/","Description":"Function URL of action send-reminder"},
	  {"OutputKey":"RunWorkflowFunctionUrl","OutputValue":"https://c.lambda-url.eu-west-1.on.aws/"},
	  {"OutputKey":"SomethingElse","OutputValue":"x"},
	  {"OutputKey":"InvoiceReminderFunctionUrl","OutputValue":"https://b.lambda-url.eu-west-1.on.aws/"}]}]}`
	samList := `[{"OutputKey":"InvoiceReminderFunctionUrl","OutputValue":"https://b.lambda-url.eu-west-1.on.aws/","Description":"x"}]`
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	eps, err := readStackOutputs(write("describe.json", describe))
	require.NoError(t, err)
	assert.Equal(t, []endpointReg{
		{"invoice-reminder", "https://b.lambda-url.eu-west-1.on.aws/"},
		{"run-workflow", "https://c.lambda-url.eu-west-1.on.aws/"},
		{"send-reminder", "https://a.lambda-url.eu-west-1.on.aws/"},
	}, eps)

	eps, err = readStackOutputs(write("sam.json", samList))
	require.NoError(t, err)
	assert.Equal(t, []endpointReg{{"invoice-reminder", "https://b.lambda-url.eu-west-1.on.aws/"}}, eps)

	_, err = readStackOutputs(write("none.json", `[{"OutputKey":"Other","OutputValue":"x"}]`))
	assert.ErrorContains(t, err, "none of SendReminderFunctionUrl, InvoiceReminderFunctionUrl, RunWorkflowFunctionUrl found")
	_, err = readStackOutputs(write("two.json", `{"Stacks":[{},{}]}`))
	assert.ErrorContains(t, err, "want exactly one stack")
	_, err = readStackOutputs(write("bad.json", `nope`))
	assert.ErrorContains(t, err, "not the JSON of describe-stacks")
}

func TestRegisterFlags(t *testing.T) {
	var stderr bytes.Buffer
	for args, want := range map[string]string{
		"":                                       "nothing to register",
		"--action send-reminder":                 "--action and --url go together",
		"--url https://x/":                       "--action and --url go together",
		"--outputs o.json --action run-workflow": "either --outputs or --action",
		"--action a --url u extra":               "unexpected arguments",
		"--action a --url u --batch-size -1":     "must be positive",
		"--secret whsec_abc":                     "flag provided but not defined: -secret",
	} {
		_, err := parseRegisterFlags(strings.Fields(args), &stderr)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), want, args)
	}
}

func TestRegisterCommand(t *testing.T) {
	pool, dsn := pgtest.NewDB(t)
	outputs := filepath.Join(t.TempDir(), "outputs.json")
	require.NoError(t, os.WriteFile(outputs, []byte(`[
	  {"OutputKey":"SendReminderFunctionUrl","OutputValue":"https://a.lambda-url.eu-west-1.on.aws/"},
	  {"OutputKey":"InvoiceReminderFunctionUrl","OutputValue":"https://b.lambda-url.eu-west-1.on.aws/"},
	  {"OutputKey":"RunWorkflowFunctionUrl","OutputValue":"https://c.lambda-url.eu-west-1.on.aws/"}]`), 0o600))
	secret := testSecret(32)
	env := map[string]string{"DUEFLOW_WEBHOOK_SECRET": secret}
	var stdout, stderr bytes.Buffer
	err := runRegister(t.Context(), []string{"--db", dsn, "--outputs", outputs, "--secret-env", "DUEFLOW_WEBHOOK_SECRET", "--timeout-ms", "65000"},
		&stdout, &stderr, func(k string) string { return env[k] })
	require.NoError(t, err, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "registered send-reminder    https://a.lambda-url.eu-west-1.on.aws/ (enabled, batch 100, timeout 65000 ms, secret dueflow_webhook_secret)")
	assert.Contains(t, out, "registered run-workflow")
	assert.Contains(t, out, "stored the signing secret from $DUEFLOW_WEBHOOK_SECRET in Vault as dueflow_webhook_secret")
	assert.NotContains(t, out, strings.TrimPrefix(secret, "whsec_"))
	assert.Equal(t, "https://b.lambda-url.eu-west-1.on.aws/", endpoint(t, pool, "invoice-reminder").URL)
	var got string
	require.NoError(t, pool.QueryRow(t.Context(), `select decrypted_secret from vault.decrypted_secrets where name = 'dueflow_webhook_secret'`).Scan(&got))
	assert.Equal(t, secret, got)

	assert.NotContains(t, out, "warning")

	stdout.Reset()
	require.NoError(t, runRegister(t.Context(), []string{"--db", dsn, "--action", "run-workflow", "--url", "https://c.lambda-url.eu-west-1.on.aws/", "--timeout-ms", "5000"},
		&stdout, &stderr, func(string) string { return "" }))
	assert.Contains(t, stdout.String(), "warning: run-workflow: pg_net timeout 5000 ms is below the functions' 60000 ms timeout")

	// One bad endpoint: nothing of the batch is stored (one transaction).
	mixed := filepath.Join(t.TempDir(), "mixed.json")
	require.NoError(t, os.WriteFile(mixed, []byte(`[
	  {"OutputKey":"InvoiceReminderFunctionUrl","OutputValue":"https://new.lambda-url.eu-west-1.on.aws/"},
	  {"OutputKey":"RunWorkflowFunctionUrl","OutputValue":"http://evil.example.com/"}]`), 0o600))
	stdout.Reset()
	err = runRegister(t.Context(), []string{"--db", dsn, "--outputs", mixed},
		&stdout, &stderr, func(string) string { return "" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), `register run-workflow`)
	assert.Contains(t, err.Error(), `refusing http:// URL for non-local host "evil.example.com"`)
	assert.Empty(t, stdout.String())
	assert.Equal(t, "https://b.lambda-url.eu-west-1.on.aws/", endpoint(t, pool, "invoice-reminder").URL, "rolled back")

	err = runRegister(t.Context(), []string{"--db", dsn, "--action", "send-reminder", "--url", "https://a.example.com/", "--secret-env", "NOPE"},
		&stdout, &stderr, func(string) string { return "" })
	assert.ErrorContains(t, err, "--secret-env NOPE: the environment variable is empty or unset")
	// During a rotation the functions' list is "new old": Vault gets the new.
	newer := testSecret(40)
	env["DUEFLOW_WEBHOOK_SECRET"] = newer + " " + secret
	stdout.Reset()
	require.NoError(t, runRegister(t.Context(), []string{"--db", dsn, "--action", "send-reminder", "--url", "https://a.example.com/", "--secret-env", "DUEFLOW_WEBHOOK_SECRET"},
		&stdout, &stderr, func(k string) string { return env[k] }))
	assert.Contains(t, stdout.String(), "$DUEFLOW_WEBHOOK_SECRET lists 2 secrets: storing the first (the newest)")
	require.NoError(t, pool.QueryRow(t.Context(), `select decrypted_secret from vault.decrypted_secrets where name = 'dueflow_webhook_secret'`).Scan(&got))
	assert.Equal(t, newer, got)
}
