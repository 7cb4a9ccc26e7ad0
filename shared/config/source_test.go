package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The secret's keys win over the environment; other names come from the
// environment; a key of the secret that is not a secret setting is refused
// by name, never by value.
func TestOverlay(t *testing.T) {
	e := base()
	e["SMTP_PASSWORD"] = "stale-env-password"
	getenv, err := Overlay(env(e), map[string]string{"SMTP_PASSWORD": "from-secret", "TELNYX_API_KEY": "KEY1"})
	require.NoError(t, err)
	assert.Equal(t, "from-secret", getenv("SMTP_PASSWORD"))
	assert.Equal(t, "KEY1", getenv("TELNYX_API_KEY"))
	assert.Equal(t, "smtp.acme.test", getenv("SMTP_HOST"))
	cfg, err := Load(getenv)
	require.NoError(t, err)
	assert.Equal(t, "from-secret", cfg.SMTP.Password.Value())

	_, err = Overlay(env(e), map[string]string{"SMTP_HOST": "evil.test", "SMTP_PASWORD": "typo-value", "SMTP_PASSWORD": "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the secret holds keys that are not secret settings: SMTP_HOST, SMTP_PASWORD")
	assert.NotContains(t, err.Error(), "typo-value")
	assert.NotContains(t, err.Error(), "evil.test")
}

// During a rotation DUEFLOW_WEBHOOK_SECRET lists two secrets; each is checked.
func TestWebhookSecretList(t *testing.T) {
	e := base()
	e["DUEFLOW_WEBHOOK_SECRET"] = webhookSecret + " " + webhookSecret
	_, err := Load(env(e))
	require.NoError(t, err)
	e["DUEFLOW_WEBHOOK_SECRET"] = webhookSecret + " whsec_c2hvcnQ="
	_, err = Load(env(e))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DUEFLOW_WEBHOOK_SECRET key has 5 bytes, want 24 to 64")
}
