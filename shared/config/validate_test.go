package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioToken = "0123456789abcdef0123456789abcdef"
	secretKey   = "sb_secret_N7xQ2pLk9vR4sT8wY1zA3bC5dE"
)

// with returns base() changed by kv ("" deletes a variable).
func with(kv map[string]string) map[string]string {
	e := base()
	for k, v := range kv {
		if v == "" {
			delete(e, k)
		} else {
			e[k] = v
		}
	}
	return e
}

func TestSupabaseKeyKinds(t *testing.T) {
	jwt := fakeJWT("service_role")
	accepted := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"secret key, current name", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: secretKey}, secretKey},
		{"secret key, legacy name", map[string]string{EnvServiceRoleKey: secretKey}, secretKey},
		{"service_role JWT, legacy name", map[string]string{EnvServiceRoleKey: jwt}, jwt},
		{"service_role JWT, current name", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: jwt}, jwt},
		{"both names, same key", map[string]string{EnvServiceRoleKey: secretKey, EnvSecretKey: secretKey}, secretKey},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(with(tc.env)))
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.ServiceRoleKey.Value())
		})
	}

	anon, publishable := fakeJWT("anon"), "sb_publishable_Hk3Jd8sL2mN5qR7tV9wX1y"
	refused := []struct {
		name string
		env  map[string]string
		want string
		key  string // must not appear in the message
	}{
		{"both names, different keys", map[string]string{EnvSecretKey: secretKey, EnvServiceRoleKey: jwt},
			"SUPABASE_SECRET_KEY and SUPABASE_SERVICE_ROLE_KEY hold different keys: set one of them", secretKey},
		{"publishable key", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: publishable},
			"SUPABASE_SECRET_KEY is a publishable key (sb_publishable_…), which cannot call the automation functions: take a secret key (sb_secret_…) from the dashboard's Project Settings → API Keys", publishable},
		{"legacy anon key", map[string]string{EnvServiceRoleKey: anon},
			"SUPABASE_SERVICE_ROLE_KEY is the legacy anon key, which cannot call the automation functions: take a secret key (sb_secret_…) from the dashboard's Project Settings → API Keys (or the legacy service_role key, under its Legacy API keys tab)", anon},
		{"another role", map[string]string{EnvServiceRoleKey: fakeJWT("authenticated")},
			`SUPABASE_SERVICE_ROLE_KEY has role "authenticated", want service_role`, "c2lnbmF0dXJl"},
		{"neither kind", map[string]string{EnvServiceRoleKey: "my-service-key-1234"},
			"SUPABASE_SERVICE_ROLE_KEY is neither a secret key (sb_secret_…) nor a legacy service_role JWT", "my-service-key-1234"},
		{"secret key prefix alone", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: "sb_secret_"},
			"SUPABASE_SECRET_KEY is not a whole secret key", "sb_secret_\""},
		{"secret key with a space inside", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: "sb_secret_N7xQ2 pLk9vR4"},
			"SUPABASE_SECRET_KEY contains whitespace, control or non-ASCII characters", "N7xQ2"},
		{"secret key with a non-ASCII character", map[string]string{EnvServiceRoleKey: "", EnvSecretKey: "sb_secret_N7xQ2–pLk9vR4"},
			"SUPABASE_SECRET_KEY contains whitespace, control or non-ASCII characters", "N7xQ2"},
		{"neither name", map[string]string{EnvServiceRoleKey: ""},
			"SUPABASE_SECRET_KEY (or the legacy SUPABASE_SERVICE_ROLE_KEY) is required", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(with(tc.env)))
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			assert.Contains(t, ce.Problems[0], tc.want)
			if tc.key != "" {
				assert.NotContains(t, err.Error(), tc.key)
			}
		})
	}
}

// Each risky value is refused with a message naming the variable and what
// is wrong, and never showing a secret.
func TestRiskyValuesRefused(t *testing.T) {
	twilio := map[string]string{"SMS_PROVIDER": "twilio", "SMS_FROM": "+15555550100", "TWILIO_ACCOUNT_SID": twilioSID, "TWILIO_AUTH_TOKEN": twilioToken}
	telnyx := map[string]string{"SMS_PROVIDER": "telnyx", "SMS_FROM": "+15555550100", "TELNYX_API_KEY": "KEY0123456789ABCDEF"}
	mailgun := map[string]string{"EMAIL_PROVIDER": "mailgun", "MAILGUN_DOMAIN": "mg.acme.test", "MAILGUN_API_KEY": "key-0123456789abcdef"}
	plus := func(a map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name   string
		env    map[string]string
		want   string
		hidden []string // secrets (or personal data) the message must not show
	}{
		{"supabase over http", map[string]string{"SUPABASE_URL": "http://xyz.supabase.co"},
			`SUPABASE_URL "http://xyz.supabase.co" would send a key over plain http to a remote host: use https:// (http is for localhost, 127.0.0.0/8, [::1] and host.docker.internal only)`, nil},
		{"supabase over http, look-alike host", map[string]string{"SUPABASE_URL": "http://localhost.evil.test:8000"},
			`SUPABASE_URL "http://localhost.evil.test:8000" would send a key over plain http`, nil},
		{"supabase over http with user info and query", map[string]string{"SUPABASE_URL": "http://admin:Pa55word@db.acme.test/x?apikey=Qk3yZ"},
			`SUPABASE_URL "http://admin@db.acme.test/x?apikey=redacted" would send a key over plain http`, []string{"Pa55word", "Qk3yZ"}},
		{"not a URL, with a password", map[string]string{"SUPABASE_URL": "ftp://u:Pa55word@files.acme.test"},
			`SUPABASE_URL "ftp://u@files.acme.test" is not an http(s) URL`, []string{"Pa55word"}},
		{"unparseable, with a password", map[string]string{"SUPABASE_URL": "https://u:Pa55 word@files.acme.test"},
			`SUPABASE_URL "https://***@files.acme.test" is not an http(s) URL`, []string{"Pa55"}},
		{"mailgun over http", plus(mailgun, "MAILGUN_API_BASE", "http://api.eu.mailgun.net"),
			`MAILGUN_API_BASE "http://api.eu.mailgun.net" would send a key over plain http`, []string{"key-0123456789abcdef"}},
		{"telnyx over http", plus(telnyx, "TELNYX_API_BASE", "http://api.telnyx.com"),
			`TELNYX_API_BASE "http://api.telnyx.com" would send a key over plain http`, []string{"KEY0123456789ABCDEF"}},
		{"twilio over http", plus(twilio, "TWILIO_API_BASE", "http://api.twilio.com"),
			`TWILIO_API_BASE "http://api.twilio.com" would send a key over plain http`, []string{twilioToken}},
		{"twilio token with a space", plus(twilio, "TWILIO_AUTH_TOKEN", "0123456789abcdef 123456789abcdef"),
			"TWILIO_AUTH_TOKEN contains whitespace, control or non-ASCII characters", []string{"0123456789abcdef"}},
		{"twilio token with a newline", plus(twilio, "TWILIO_AUTH_TOKEN", "0123456789abcdef\n0123456789abcdef"),
			"TWILIO_AUTH_TOKEN contains whitespace, control or non-ASCII characters", []string{"0123456789abcdef"}},
		{"twilio token too short", plus(twilio, "TWILIO_AUTH_TOKEN", "0123456789abcdef"),
			"TWILIO_AUTH_TOKEN is not 32 letters and digits", []string{"0123456789abcdef"}},
		{"twilio token with punctuation", plus(twilio, "TWILIO_AUTH_TOKEN", "0123456789abcdef:123456789abcdef"),
			"TWILIO_AUTH_TOKEN is not 32 letters and digits", []string{"0123456789abcdef"}},
		{"twilio account SID", plus(twilio, "TWILIO_ACCOUNT_SID", "AC123"),
			"TWILIO_ACCOUNT_SID is not AC followed by 32 hex digits", []string{twilioToken}},
		{"twilio API key SID", plus(twilio, "TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef"),
			"TWILIO_ACCOUNT_SID is an API key SID (SK…): dueflow signs in with the Account SID (AC…) and its Auth Token", nil},
		{"telnyx key shape", plus(telnyx, "TELNYX_API_KEY", "abc123-telnyx"),
			"TELNYX_API_KEY does not start with KEY", []string{"abc123-telnyx"}},
		{"telnyx key with a tab", plus(telnyx, "TELNYX_API_KEY", "KEY0123\t456"),
			"TELNYX_API_KEY contains whitespace, control or non-ASCII characters", []string{"KEY0123"}},
		{"mailgun key with a space", plus(mailgun, "MAILGUN_API_KEY", "key-0123 456"),
			"MAILGUN_API_KEY contains whitespace, control or non-ASCII characters", []string{"key-0123"}},
		{"sms from, national number", plus(twilio, "SMS_FROM", "5555550100"),
			"SMS_FROM is not an E.164 number (+ and 7 to 15 digits, no spaces), a messaging service SID (MG and 32 hex digits) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter)", []string{"5555550100"}},
		{"sms from, spaced number", plus(twilio, "SMS_FROM", "+1 555 555 0100"),
			"SMS_FROM is not an E.164 number", []string{"555 0100"}},
		{"sms from, too many digits", plus(telnyx, "SMS_FROM", "+1234567890123456"),
			"SMS_FROM is not an E.164 number (+ and 7 to 15 digits, no spaces) or an alphanumeric sender ID", []string{"1234567890123456"}},
		{"sms from, sender ID too long", plus(telnyx, "SMS_FROM", "AcmePlumbing"),
			"SMS_FROM is not an E.164 number", nil},
		{"sms from, sender ID with punctuation", plus(twilio, "SMS_FROM", "Acme-Co"),
			"SMS_FROM is not an E.164 number", nil},
		{"sms from, messaging service SID for telnyx", plus(telnyx, "SMS_FROM", "MG0123456789abcdef0123456789abcdef"),
			"SMS_FROM is not an E.164 number (+ and 7 to 15 digits, no spaces) or an alphanumeric sender ID", nil},
		{"sms from, an email", plus(twilio, "SMS_FROM", "ops@acme.test"),
			"SMS_FROM is not an E.164 number", []string{"ops@acme.test"}},
		{"lease shorter than the function timeout", map[string]string{"DUEFLOW_FUNCTION_TIMEOUT": "60s", "DUEFLOW_LEASE_SECONDS": "60"},
			"DUEFLOW_LEASE_SECONDS 60 is shorter than the function timeout (DUEFLOW_FUNCTION_TIMEOUT 1m0s) plus 30s: an execution could be claimed again while its invocation still runs; use at least 90", nil},
		{"lease within the margin", map[string]string{"DUEFLOW_FUNCTION_TIMEOUT": "300s"},
			"DUEFLOW_LEASE_SECONDS 300 is shorter than the function timeout (DUEFLOW_FUNCTION_TIMEOUT 5m0s) plus 30s", nil},
		{"function timeout beyond Lambda's", map[string]string{"DUEFLOW_FUNCTION_TIMEOUT": "16m", "DUEFLOW_LEASE_SECONDS": "3600"},
			"DUEFLOW_FUNCTION_TIMEOUT 16m0s is longer than Lambda's 15m0s", nil},
		{"function timeout not a duration", map[string]string{"DUEFLOW_FUNCTION_TIMEOUT": "60"},
			`DUEFLOW_FUNCTION_TIMEOUT "60" is not a positive duration`, nil},
		{"smtp password in clear to a remote relay", map[string]string{"SMTP_TLS": "none"},
			"SMTP_TLS none with SMTP_PASSWORD would send the password in clear to smtp.acme.test: use starttls or tls (none is for localhost, 127.0.0.0/8, [::1] and host.docker.internal only)", []string{"smtp-pass-123"}},
		{"smtp password with a control character", map[string]string{"SMTP_PASSWORD": "smtp\x00pass"},
			"SMTP_PASSWORD contains control characters", []string{"smtp\x00pass"}},
		{"email from", map[string]string{"EMAIL_FROM": "ada at acme"},
			"EMAIL_FROM is not an email address", []string{"ada at acme"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(with(tc.env)))
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			assert.Contains(t, ce.Problems[0], tc.want)
			for _, h := range tc.hidden {
				assert.NotContains(t, err.Error(), h)
			}
		})
	}
}

// Several risky values at once: every one is named in the one message.
func TestRiskyValuesNamedTogether(t *testing.T) {
	_, err := Load(env(with(map[string]string{
		"SUPABASE_URL": "http://xyz.supabase.co", "SMTP_TLS": "none", "SMS_PROVIDER": "twilio", "SMS_FROM": "555-0100",
		"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok en", "DUEFLOW_FUNCTION_TIMEOUT": "60s", "DUEFLOW_LEASE_SECONDS": "45",
	})))
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Len(t, ce.Problems, 6, err.Error())
	for _, want := range []string{"SUPABASE_URL", "SMTP_TLS none", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN contains whitespace", "SMS_FROM", "DUEFLOW_LEASE_SECONDS 45"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, strings.HasPrefix(err.Error(), "config: 6 problems: "))
}

// What the local stack, the tests and real deployments use stays accepted.
func TestSafeValuesAccepted(t *testing.T) {
	cases := map[string]map[string]string{
		"http to 127.0.0.1":            {"SUPABASE_URL": "http://127.0.0.1:54321"},
		"http to another loopback":     {"SUPABASE_URL": "http://127.0.0.2:54321"},
		"http to localhost":            {"SUPABASE_URL": "http://localhost:54321/"},
		"http to ::1":                  {"SUPABASE_URL": "http://[::1]:54321"},
		"http to host.docker.internal": {"SUPABASE_URL": "http://host.docker.internal:54321"},
		"https anywhere":               {"SUPABASE_URL": "https://abcd.supabase.co"},
		"smtp in clear, local relay":   {"SMTP_TLS": "none", "SMTP_HOST": "127.0.0.1"},
		"smtp in clear, no password":   {"SMTP_TLS": "none", "SMTP_USERNAME": "", "SMTP_PASSWORD": ""},
		"smtp password with a space":   {"SMTP_PASSWORD": "correct horse battery"},
		"twilio number": {"SMS_PROVIDER": "twilio", "SMS_FROM": "+15005550006", "TWILIO_ACCOUNT_SID": twilioSID,
			"TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_API_BASE": "http://127.0.0.1:4010"},
		"twilio messaging service": {"SMS_PROVIDER": "twilio", "SMS_FROM": "MG0123456789ABCDEF0123456789abcdef", "TWILIO_ACCOUNT_SID": twilioSID,
			"TWILIO_AUTH_TOKEN": twilioToken},
		"twilio sender ID":           {"SMS_PROVIDER": "twilio", "SMS_FROM": "Acme Co", "TWILIO_ACCOUNT_SID": twilioSID, "TWILIO_AUTH_TOKEN": twilioToken},
		"telnyx number":              {"SMS_PROVIDER": "telnyx", "SMS_FROM": "+442079460958", "TELNYX_API_KEY": "KEY0123456789ABCDEF_xyz"},
		"telnyx sender ID":           {"SMS_PROVIDER": "telnyx", "SMS_FROM": "ACME", "TELNYX_API_KEY": "KEY01"},
		"telnyx profile, no from":    {"SMS_PROVIDER": "telnyx", "TELNYX_MESSAGING_PROFILE_ID": "4001", "TELNYX_API_KEY": "KEY01"},
		"sms none ignores SMS_FROM":  {"SMS_FROM": "anything"},
		"lease = timeout + margin":   {"DUEFLOW_FUNCTION_TIMEOUT": "60s", "DUEFLOW_LEASE_SECONDS": "90"},
		"short lease, timeout unset": {"DUEFLOW_LEASE_SECONDS": "30"},
		"mailgun EU base": {"EMAIL_PROVIDER": "mailgun", "MAILGUN_DOMAIN": "mg.acme.test", "MAILGUN_API_KEY": "0123456789abcdef0123456789abcdef-0123abcd-4567cdef",
			"MAILGUN_API_BASE": "https://api.eu.mailgun.net"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(env(with(kv)))
			require.NoError(t, err)
		})
	}
	c, err := Load(env(with(map[string]string{"DUEFLOW_FUNCTION_TIMEOUT": "60s", "DUEFLOW_LEASE_SECONDS": "300"})))
	require.NoError(t, err)
	assert.Equal(t, 60e9, float64(c.FunctionTimeout))
}
