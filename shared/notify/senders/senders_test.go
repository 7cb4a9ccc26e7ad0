package senders

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/config"
)

// base is a valid configuration with SMTP email and no SMS.
func base() map[string]string {
	return map[string]string{
		"DUEFLOW_ACTION":      "send-reminder",
		"SUPABASE_URL":        "https://xyz.supabase.co/",
		"SUPABASE_SECRET_KEY": "sb_secret_0123456789abcdefghij",
		"DUEFLOW_WEBHOOK_SECRET": "whsec_" +
			base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"EMAIL_PROVIDER":       "smtp",
		"EMAIL_FROM":           "reminders@acme.test",
		"SMTP_HOST":            "smtp.acme.test",
		"SMTP_USERNAME":        "user",
		"SMTP_PASSWORD":        "smtp-pass-123",
		"SMTP_MAX_CONNECTIONS": "3",
	}
}

// Each provider the configuration names is built, and SMS_PROVIDER none
// builds no SMS sender.
func TestFromConfig(t *testing.T) {
	cases := []struct {
		env        map[string]string
		email, sms string
	}{
		{map[string]string{}, "smtp", ""},
		{map[string]string{"EMAIL_PROVIDER": "mailgun", "MAILGUN_DOMAIN": "mg.acme.test", "MAILGUN_API_KEY": "key-1",
			"SMS_PROVIDER": "twilio", "SMS_FROM": "+15555550100", "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
			"TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef"}, "mailgun", "twilio"},
		{map[string]string{"SMS_PROVIDER": "telnyx", "SMS_FROM": "+15555550100", "TELNYX_API_KEY": "KEY",
			"TELNYX_API_BASE": "http://127.0.0.1:54326"}, "smtp", "telnyx"},
	}
	for _, tc := range cases {
		e := base()
		for k, v := range tc.env {
			e[k] = v
		}
		cfg, err := config.Load(func(k string) string { return e[k] })
		require.NoError(t, err)
		email, sms, err := FromConfig(cfg)
		require.NoError(t, err)
		assert.Equal(t, tc.email, email.Name())
		if tc.sms == "" {
			assert.Nil(t, sms)
		} else {
			assert.Equal(t, tc.sms, sms.Name())
		}
		Close(email, sms)
	}
}

// A configuration that names no known provider (not one Load returns)
// is refused with the part named.
func TestFromConfigUnknownProvider(t *testing.T) {
	_, _, err := FromConfig(&config.Config{EmailProvider: "pigeon"})
	assert.EqualError(t, err, `email sender: unknown provider "pigeon"`)
	_, _, err = FromConfig(&config.Config{EmailProvider: config.EmailMailgun, Mailgun: config.Mailgun{Domain: "mg.acme.test", APIKey: "k"},
		EmailFrom: "a@acme.test", SMSProvider: "pigeon"})
	assert.EqualError(t, err, `sms sender: unknown provider "pigeon"`)
}

// Twilio reports delivery status to the provider-events function under
// DUEFLOW_PUBLIC_URL; without it, nothing is asked for.
func TestTwilioStatusCallback(t *testing.T) {
	assert.Equal(t, "", twilioStatusCallback(""))
	assert.Equal(t, "https://events.acme.test/twilio/status", twilioStatusCallback("https://events.acme.test/"))
	assert.Equal(t, "https://events.acme.test/twilio/status", twilioStatusCallback("https://events.acme.test"))
}
