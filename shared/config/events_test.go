package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func eventsEnv(t *testing.T) (map[string]string, ed25519.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return map[string]string{
		"SUPABASE_URL":              "https://xyz.supabase.co",
		"SUPABASE_SERVICE_ROLE_KEY": fakeJWT("service_role"),
		EnvUnsubscribeKeys:          base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + " " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 48)),
		EnvMailgunSigningKey:        "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
		"TWILIO_AUTH_TOKEN":         "0123456789abcdef0123456789abcdef",
		EnvTelnyxPublicKey:          base64.StdEncoding.EncodeToString(pub),
		EnvPublicURL:                "https://events.acme.test/",
	}, pub
}

func TestLoadEvents(t *testing.T) {
	kv, pub := eventsEnv(t)
	c, err := LoadEvents(env(kv))
	require.NoError(t, err)
	assert.Equal(t, "https://xyz.supabase.co", c.SupabaseURL)
	require.Len(t, c.UnsubscribeKeys, 2)
	assert.Equal(t, bytes.Repeat([]byte{1}, 32), c.UnsubscribeKeys[0], "the first key signs")
	assert.Equal(t, pub, c.TelnyxPublicKey)
	assert.Equal(t, "https://events.acme.test", c.PublicURL)
	assert.Equal(t, DefaultMaxBodyBytes, c.MaxBodyBytes)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
	assert.Equal(t, redacted, c.MailgunSigningKey.String())

	// one provider is enough; none is an error
	c, err = LoadEvents(env(map[string]string{"SUPABASE_URL": kv["SUPABASE_URL"], "SUPABASE_SERVICE_ROLE_KEY": kv["SUPABASE_SERVICE_ROLE_KEY"], EnvTelnyxPublicKey: kv[EnvTelnyxPublicKey]}))
	require.NoError(t, err)
	assert.Nil(t, c.UnsubscribeKeys)
	_, err = LoadEvents(env(map[string]string{"SUPABASE_URL": kv["SUPABASE_URL"], "SUPABASE_SERVICE_ROLE_KEY": kv["SUPABASE_SERVICE_ROLE_KEY"]}))
	assert.ErrorContains(t, err, "nothing to receive")
}

func TestLoadEventsNamesEveryProblemNeverAValue(t *testing.T) {
	kv, _ := eventsEnv(t)
	kv[EnvUnsubscribeKeys] = base64.StdEncoding.EncodeToString([]byte("short-key-value")) + " not*base64"
	kv[EnvTelnyxPublicKey] = base64.StdEncoding.EncodeToString([]byte("0123456789"))
	kv["TWILIO_AUTH_TOKEN"] = "tok-en"
	kv[EnvMailgunSigningKey] = "key with spaces"
	kv[EnvPublicURL] = "http://events.acme.test"
	kv[EnvSMSHelpText] = strings.Repeat("h", MaxSMSHelpText+1)
	_, err := LoadEvents(env(kv))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"DUEFLOW_UNSUBSCRIBE_KEYS key 1 has 15 bytes, want at least 32",
		"TELNYX_PUBLIC_KEY is not the base64 of a 32-byte Ed25519 key",
		"TWILIO_AUTH_TOKEN is not 32 letters and digits",
		"MAILGUN_WEBHOOK_SIGNING_KEY contains whitespace",
		"DUEFLOW_PUBLIC_URL must be https://",
		"DUEFLOW_SMS_HELP_TEXT has 307 characters",
	} {
		assert.Contains(t, msg, want)
	}
	for _, secret := range []string{"short-key-value", "tok-en", "key with spaces"} {
		assert.NotContains(t, msg, secret)
	}
}

func TestEventsKeysAreSecretSettings(t *testing.T) {
	for _, k := range []string{EnvMailgunSigningKey, EnvTelnyxPublicKey, EnvUnsubscribeKeys, "TWILIO_AUTH_TOKEN"} {
		assert.True(t, IsSecretSetting(k), k)
	}
	assert.False(t, IsSecretSetting(EnvPublicURL))
}
