package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify/telnyx"
)

func fakeJWT(role string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"role":"`+role+`","iss":"supabase"}`)) + ".c2lnbmF0dXJl"
}

var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func base() map[string]string {
	return map[string]string{
		"DUEFLOW_ACTION":            "invoice-reminder",
		"SUPABASE_URL":              "https://xyz.supabase.co/",
		"SUPABASE_SERVICE_ROLE_KEY": fakeJWT("service_role"),
		"DUEFLOW_WEBHOOK_SECRET":    webhookSecret,
		"EMAIL_PROVIDER":            "smtp",
		"EMAIL_FROM":                "reminders@acme.test",
		"SMTP_HOST":                 "smtp.acme.test",
		"SMTP_PASSWORD":             "smtp-pass-123",
		"SMTP_USERNAME":             "user",
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(base()))
	require.NoError(t, err)
	assert.Equal(t, "https://xyz.supabase.co", c.SupabaseURL)
	assert.Equal(t, "starttls", c.SMTP.TLS)
	assert.Equal(t, 0, c.SMTP.Port)
	assert.Equal(t, SMSNone, c.SMSProvider)
	assert.Equal(t, 8, c.Concurrency)
	assert.Equal(t, 0, c.LedgerChunk, "0: the engine begins Concurrency per ledger call")
	assert.Equal(t, 300, c.LeaseSeconds)
	assert.Equal(t, 10*time.Second, c.RPCTimeout)
	assert.Equal(t, 65536, c.MaxBodyBytes)
	assert.Equal(t, 500, c.MaxIDs)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
	assert.Equal(t, 8, c.SMTP.MaxConnections, "one SMTP session per concurrent send")
	assert.Equal(t, 100, c.SMTP.MaxMessagesPerConnection)
}

func TestSMTPPoolOptions(t *testing.T) {
	e := base()
	e["DUEFLOW_CONCURRENCY"] = "12"
	c, err := Load(env(e))
	require.NoError(t, err)
	assert.Equal(t, 12, c.SMTP.MaxConnections, "defaults to DUEFLOW_CONCURRENCY")

	e["SMTP_MAX_CONNECTIONS"] = "3"
	e["SMTP_MAX_MESSAGES_PER_CONNECTION"] = "50"
	c, err = Load(env(e))
	require.NoError(t, err)
	assert.Equal(t, 3, c.SMTP.MaxConnections)
	assert.Equal(t, 50, c.SMTP.MaxMessagesPerConnection)

	e["SMTP_MAX_CONNECTIONS"] = "0"
	e["SMTP_MAX_MESSAGES_PER_CONNECTION"] = "many"
	_, err = Load(env(e))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SMTP_MAX_CONNECTIONS 0 is out of range")
	assert.Contains(t, err.Error(), `SMTP_MAX_MESSAGES_PER_CONNECTION "many" is not a number`)
}

func TestEveryProblemNamedAtOnce(t *testing.T) {
	e := map[string]string{
		"SMTP_PORT":           "abc",
		"EMAIL_PROVIDER":      "smtp",
		"SMS_PROVIDER":        "carrier-pigeon",
		"DUEFLOW_CONCURRENCY": "0",
		"DUEFLOW_RPC_TIMEOUT": "10",
		"LOG_LEVEL":           "loud",
		"DUEFLOW_ACTION":      "send-invoice",
	}
	_, err := Load(env(e))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"config: 11 problems: ",
		`DUEFLOW_ACTION "send-invoice" is not one of send-reminder, invoice-reminder, run-workflow`,
		"SUPABASE_URL is required",
		"SUPABASE_SECRET_KEY (or the legacy SUPABASE_SERVICE_ROLE_KEY) is required",
		"DUEFLOW_WEBHOOK_SECRET is required",
		"EMAIL_FROM is required",
		"SMTP_HOST is required",
		`SMTP_PORT "abc" is not a number`,
		`SMS_PROVIDER "carrier-pigeon" is not one of twilio, telnyx, none`,
		"DUEFLOW_CONCURRENCY 0 is out of range",
		`DUEFLOW_RPC_TIMEOUT "10" is not a positive duration`,
	} {
		assert.Contains(t, msg, want)
	}
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Len(t, ce.Problems, 11)
}

func TestProviderSpecificRequirements(t *testing.T) {
	e := base()
	e["EMAIL_PROVIDER"] = "mailgun"
	e["SMS_PROVIDER"] = "twilio"
	_, err := Load(env(e))
	require.Error(t, err)
	for _, want := range []string{"MAILGUN_DOMAIN is required", "MAILGUN_API_KEY is required", "SMS_FROM is required",
		"TWILIO_ACCOUNT_SID is required", "TWILIO_AUTH_TOKEN is required"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "SMTP_HOST")

	e = base()
	e["SMS_PROVIDER"] = "telnyx"
	e["TELNYX_API_KEY"] = "KEY123"
	e["TELNYX_MESSAGING_PROFILE_ID"] = "prof"
	c, err := Load(env(e))
	require.NoError(t, err)
	assert.Equal(t, telnyx.DefaultAPIBase, c.Telnyx.APIBase)
	assert.Equal(t, "KEY123", c.Telnyx.APIKey.Value())
}

func TestKeysAreChecked(t *testing.T) {
	e := base()
	e["SUPABASE_SERVICE_ROLE_KEY"] = fakeJWT("anon")
	e["DUEFLOW_WEBHOOK_SECRET"] = "plain-secret"
	e["SUPABASE_URL"] = "xyz.supabase.co"
	_, err := Load(env(e))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `SUPABASE_SERVICE_ROLE_KEY is the legacy anon key`)
	assert.Contains(t, err.Error(), "DUEFLOW_WEBHOOK_SECRET must start with whsec_")
	assert.Contains(t, err.Error(), `SUPABASE_URL "xyz.supabase.co" is not an http(s) URL`)
}

func TestSecretsNeverPrinted(t *testing.T) {
	e := base()
	e["SMTP_PORT"] = "x" // make it fail too
	_, loadErr := Load(env(e))
	require.Error(t, loadErr)
	e["SMTP_PORT"] = "2525"
	c, err := Load(env(e))
	require.NoError(t, err)

	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c, "pw", c.SMTP.Password)
	js, _ := json.Marshal(c)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c.ServiceRoleKey), logs.String(), string(js), loadErr.Error()} {
		assert.NotContains(t, out, "smtp-pass-123")
		assert.NotContains(t, out, e["SUPABASE_SERVICE_ROLE_KEY"])
		assert.NotContains(t, out, webhookSecret)
	}
	assert.Equal(t, "smtp-pass-123", c.SMTP.Password.Value())
}

// The unsubscribe link's keys and base URL: both or neither, keys of at
// least 32 bytes (never quoted in a problem), the URL https (http only to
// a local host); the first key signs.
func TestUnsubscribeSettings(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k2 := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210!"))
	e := base()
	c, err := Load(env(e))
	require.NoError(t, err)
	assert.Nil(t, c.UnsubscribeKeyBytes(), "optional")
	assert.Empty(t, c.PublicURL)

	e["DUEFLOW_UNSUBSCRIBE_KEYS"] = k1 + " " + k2
	e["DUEFLOW_PUBLIC_URL"] = "https://events.acme.test/"
	c, err = Load(env(e))
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210!")}, c.UnsubscribeKeyBytes())
	assert.Equal(t, "https://events.acme.test", c.PublicURL)
	assert.NotContains(t, fmt.Sprintf("%v %+v", c, c), k1, "a secret")

	for _, tc := range []struct{ keys, url, problem string }{
		{k1, "", "DUEFLOW_UNSUBSCRIBE_KEYS and DUEFLOW_PUBLIC_URL must be set together"},
		{"", "https://events.acme.test", "DUEFLOW_UNSUBSCRIBE_KEYS and DUEFLOW_PUBLIC_URL must be set together"},
		{"c2hvcnQ=", "https://events.acme.test", "DUEFLOW_UNSUBSCRIBE_KEYS key 1 has 5 bytes, want at least 32"},
		{k1 + " not*base64", "https://events.acme.test", "DUEFLOW_UNSUBSCRIBE_KEYS key 2 is not base64"},
		{k1, "http://events.acme.test", "DUEFLOW_PUBLIC_URL"},
	} {
		e := base()
		e["DUEFLOW_UNSUBSCRIBE_KEYS"], e["DUEFLOW_PUBLIC_URL"] = tc.keys, tc.url
		_, err := Load(env(e))
		require.Error(t, err, tc.problem)
		assert.Contains(t, err.Error(), tc.problem)
		assert.NotContains(t, err.Error(), k1)
	}
	e["DUEFLOW_PUBLIC_URL"] = "http://127.0.0.1:9000"
	_, err = Load(env(e))
	require.NoError(t, err, "http to the local stack")
	assert.True(t, IsSecretSetting("DUEFLOW_UNSUBSCRIBE_KEYS"))
	assert.False(t, IsSecretSetting("DUEFLOW_PUBLIC_URL"))
}
