package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Settings of the provider-events function.
const (
	EnvMailgunSigningKey = "MAILGUN_WEBHOOK_SIGNING_KEY"
	EnvTelnyxPublicKey   = "TELNYX_PUBLIC_KEY"
	EnvUnsubscribeKeys   = "DUEFLOW_UNSUBSCRIBE_KEYS"
	EnvPublicURL         = "DUEFLOW_PUBLIC_URL"
	EnvSMSHelpText       = "DUEFLOW_SMS_HELP_TEXT"
)

// MaxSMSHelpText bounds DUEFLOW_SMS_HELP_TEXT (two SMS segments).
const MaxSMSHelpText = 306

// Events is the provider-events function's configuration: the database it
// records into and each provider's verification key (a provider without
// its key is not received).
type Events struct {
	SupabaseURL    string
	ServiceRoleKey Secret
	RPCTimeout     time.Duration
	MaxBodyBytes   int
	LogLevel       slog.Level

	// UnsubscribeKeys verify one-click unsubscribe tokens (the first one
	// signs them in the senders): DUEFLOW_UNSUBSCRIBE_KEYS, base64 keys
	// separated by spaces.
	UnsubscribeKeys [][]byte
	// MailgunSigningKey is Mailgun's HTTP webhook signing key.
	MailgunSigningKey Secret
	// TwilioAuthToken signs Twilio's webhooks.
	TwilioAuthToken Secret
	// TelnyxPublicKey is the Telnyx account's public key (base64 in
	// TELNYX_PUBLIC_KEY).
	TelnyxPublicKey ed25519.PublicKey
	// PublicURL is the base URL the providers call (DUEFLOW_PUBLIC_URL,
	// optional: https://<Host> of each request otherwise).
	PublicURL   string
	SMSHelpText string
}

// LoadEvents reads the provider-events function's configuration through
// getenv, reporting every problem at once (never a value). At least one
// provider key must be set.
func LoadEvents(getenv func(string) string) (*Events, error) {
	p := &parser{getenv: getenv}
	c := &Events{
		SupabaseURL:    p.url("SUPABASE_URL", true),
		ServiceRoleKey: p.supabaseKey(),
		RPCTimeout:     p.duration("DUEFLOW_RPC_TIMEOUT", DefaultRPCTimeout),
		MaxBodyBytes:   p.int("DUEFLOW_MAX_BODY_BYTES", DefaultMaxBodyBytes, 256, 16<<20),
		LogLevel:       p.logLevel(),
	}
	c.UnsubscribeKeys = p.unsubscribeKeys()
	c.MailgunSigningKey = p.credential(EnvMailgunSigningKey, false)
	c.TwilioAuthToken = p.credential("TWILIO_AUTH_TOKEN", false)
	p.checkTwilio(Twilio{AuthToken: c.TwilioAuthToken})
	if v := p.str(EnvTelnyxPublicKey, false); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != ed25519.PublicKeySize {
			p.bad(EnvTelnyxPublicKey + " is not the base64 of a 32-byte Ed25519 key (the Public Key of the Telnyx portal's Keys & Credentials page)")
		} else {
			c.TelnyxPublicKey = ed25519.PublicKey(k)
		}
	}
	c.PublicURL = p.publicURL()
	c.SMSHelpText = p.str(EnvSMSHelpText, false)
	if n := utf8.RuneCountInString(c.SMSHelpText); n > MaxSMSHelpText {
		p.bad(fmt.Sprintf("%s has %d characters, at most %d", EnvSMSHelpText, n, MaxSMSHelpText))
	}
	if len(c.UnsubscribeKeys) == 0 && c.MailgunSigningKey == "" && c.TwilioAuthToken == "" && c.TelnyxPublicKey == nil && len(p.problems) == 0 {
		p.bad(fmt.Sprintf("nothing to receive: set at least one of %s, %s, TWILIO_AUTH_TOKEN, %s", EnvUnsubscribeKeys, EnvMailgunSigningKey, EnvTelnyxPublicKey))
	}
	if len(p.problems) > 0 {
		return nil, problemsError(p.problems)
	}
	return c, nil
}

// unsubscribeKeys reads DUEFLOW_UNSUBSCRIBE_KEYS: base64 keys of at least
// unsubscribe.MinKeyBytes, separated by spaces (the signing key first).
func (p *parser) unsubscribeKeys() [][]byte {
	keys, err := decodeUnsubscribeKeys(p.getenv(EnvUnsubscribeKeys))
	if err != nil {
		p.bad(err.Error())
	}
	return keys
}

// publicURL reads DUEFLOW_PUBLIC_URL: https, or http for a local host.
func (p *parser) publicURL() string {
	v := p.str(EnvPublicURL, false)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.User != nil:
		p.bad(EnvPublicURL + " is not an https:// URL without a query")
	case u.Path != "" && u.Path != "/":
		// the function answers /unsubscribe and the providers' paths at its root
		p.bad(EnvPublicURL + " must be the function URL's root (https://host/), without a path")
	case u.Scheme == "http" && !isLocalHost(u.Hostname()):
		p.bad(fmt.Sprintf("%s must be https:// (http is for %s only)", EnvPublicURL, localHosts))
	default:
		return strings.TrimRight(v, "/")
	}
	return ""
}
