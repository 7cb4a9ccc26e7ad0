// Package config reads a function's configuration from the environment and
// checks it, reporting every missing or invalid variable at once (a
// config_error, *automation.Error, whose cause *Error lists them); it is
// data only (the senders it names are built by shared/notify/senders).
// Secret values are never printed: they are held as Secret, which formats
// and logs as "[redacted]".
package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/unsubscribe"
	"github.com/dueflow/dueflow/shared/webhook"
)

// Secret is a configuration value that must never be printed or logged.
type Secret string

const redacted = "[redacted]"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string { return redacted }

// GoString redacts the secret (%#v).
func (s Secret) GoString() string { return redacted }

// LogValue redacts the secret in slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// Provider names.
const (
	EmailSMTP    = "smtp"
	EmailMailgun = "mailgun"
	SMSTwilio    = "twilio"
	SMSTelnyx    = "telnyx"
	SMSNone      = "none"
)

// SMTP is the smtp email provider's configuration.
type SMTP struct {
	Host     string
	Port     int // 0 = the TLS mode's default port
	Username string
	Password Secret
	TLS      string // starttls | tls | none
	// MaxConnections bounds the SMTP sessions kept open and reused
	// (SMTP_MAX_CONNECTIONS; default DUEFLOW_CONCURRENCY).
	MaxConnections int
	// MaxMessagesPerConnection closes a session after that many messages
	// (SMTP_MAX_MESSAGES_PER_CONNECTION; default 100; some relays such as
	// SES limit messages per connection).
	MaxMessagesPerConnection int
}

// Mailgun is the mailgun email provider's configuration.
type Mailgun struct {
	Domain  string
	APIKey  Secret
	APIBase string // optional
}

// Twilio is the twilio SMS provider's configuration.
type Twilio struct {
	AccountSID string
	AuthToken  Secret
	APIBase    string // optional
}

// Telnyx is the telnyx SMS provider's configuration.
type Telnyx struct {
	APIKey             Secret
	MessagingProfileID string
	APIBase            string
}

// EnvAction names the action a function runs (DUEFLOW_ACTION): the three
// action functions are one program (functions/action), and template.yaml
// sets this per function.
const EnvAction = "DUEFLOW_ACTION"

// Config is an action function's configuration.
type Config struct {
	// Action is the action this function runs (EnvAction, one of
	// automation.Actions).
	Action      string
	SupabaseURL string
	// ServiceRoleKey is the key the RPCs are called with: a secret key
	// (sb_secret_…) or a legacy service_role JWT, from SUPABASE_SECRET_KEY
	// or SUPABASE_SERVICE_ROLE_KEY.
	ServiceRoleKey Secret
	WebhookSecret  Secret
	// UnsubscribeKeys signs the one-click unsubscribe links of
	// non-transactional messages (DUEFLOW_UNSUBSCRIBE_KEYS: base64 keys of
	// at least unsubscribe.MinKeyBytes separated by spaces; the first
	// signs, any verifies: UnsubscribeKeyBytes). Empty together with
	// PublicURL: messages go without the link.
	UnsubscribeKeys Secret
	// PublicURL is the https base URL of the provider-events function
	// (DUEFLOW_PUBLIC_URL); the link is PublicURL + "/unsubscribe?t=<token>".
	PublicURL string

	EmailProvider string // smtp | mailgun
	EmailFrom     string
	EmailFromName string
	SMTP          SMTP
	Mailgun       Mailgun

	SMSProvider string // twilio | telnyx | none
	SMSFrom     string
	Twilio      Twilio
	Telnyx      Telnyx

	Concurrency int
	// LedgerChunk: deliveries begun per ledger call, what a crash can leave
	// unknown (DUEFLOW_LEDGER_CHUNK; 0 = Concurrency).
	LedgerChunk  int
	LeaseSeconds int
	// FunctionTimeout is the function's timeout in Lambda
	// (DUEFLOW_FUNCTION_TIMEOUT, which template.yaml keeps equal to the
	// functions' Timeout; Lambda does not tell it otherwise); 0 = unknown.
	// When known, a lease shorter than it plus LeaseMargin is refused.
	FunctionTimeout time.Duration
	RPCTimeout      time.Duration
	MaxBodyBytes    int
	MaxIDs          int
	LogLevel        slog.Level
}

// Defaults.
const (
	DefaultConcurrency  = 8
	DefaultLeaseSeconds = 300
	DefaultRPCTimeout   = 10 * time.Second
	DefaultMaxBodyBytes = 65536
	DefaultMaxIDs       = 500

	DefaultSMTPMessagesPerConnection = 100
)

// Error lists every problem of a configuration. Load and LoadEvents return
// it as the cause of an *automation.Error with code config_error (problemsError),
// whose text is its text; errors.As reaches it for the list.
type Error struct{ Problems []string }

var _ error = (*Error)(nil)

// problemsError returns the configuration's problems as a config_error.
func problemsError(list []string) *automation.Error {
	return automation.NewError(automation.CodeConfig, "", &Error{Problems: list})
}

// Error names every problem on one line.
func (e *Error) Error() string {
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("config: %d %s: %s", len(e.Problems), noun, strings.Join(e.Problems, "; "))
}

// FromEnv reads the process environment.
func FromEnv() (*Config, error) { return Load(os.Getenv) }

// Load reads the configuration through getenv (os.Getenv, or a map in
// tests). An empty value counts as unset.
//
// Long: one read and check per setting, in the order the docs list them; the parts it shares are already named functions
func Load(getenv func(string) string) (*Config, error) {
	p := &parser{getenv: getenv}
	c := &Config{}

	c.Action = p.oneOf(EnvAction, "", automation.Actions...)
	c.SupabaseURL = p.url("SUPABASE_URL", true)
	c.ServiceRoleKey = p.supabaseKey()
	// One secret, or several separated by spaces during a rotation (any
	// of them verifies a request; see shared/webhook).
	c.WebhookSecret = Secret(p.str("DUEFLOW_WEBHOOK_SECRET", true))
	for _, s := range strings.Fields(c.WebhookSecret.Value()) {
		if _, err := webhook.ParseSecret(s); err != nil {
			p.bad("DUEFLOW_WEBHOOK_SECRET " + err.Error())
		}
	}

	c.UnsubscribeKeys = Secret(p.str(EnvUnsubscribeKeys, false))
	if _, err := decodeUnsubscribeKeys(c.UnsubscribeKeys.Value()); err != nil {
		p.bad(err.Error())
	}
	c.PublicURL = p.publicURL()
	if (c.UnsubscribeKeys == "") != (c.PublicURL == "") {
		p.bad(EnvUnsubscribeKeys + " and " + EnvPublicURL + " must be set together")
	}

	c.EmailProvider = p.oneOf("EMAIL_PROVIDER", "", EmailSMTP, EmailMailgun)
	c.EmailFrom = p.str("EMAIL_FROM", true)
	if c.EmailFrom != "" {
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			p.bad("EMAIL_FROM is not an email address") // not echoed: an address is personal data
		}
	}
	c.EmailFromName = p.str("EMAIL_FROM_NAME", false)
	switch c.EmailProvider {
	case EmailSMTP:
		c.SMTP = SMTP{
			Host:     p.str("SMTP_HOST", true),
			Port:     p.int("SMTP_PORT", 0, 1, 65535),
			Username: p.str("SMTP_USERNAME", false),
			Password: p.smtpPassword(),
			TLS:      p.oneOf("SMTP_TLS", "starttls", "starttls", "tls", "none"),
			// 0 = DUEFLOW_CONCURRENCY, set below.
			MaxConnections:           p.int("SMTP_MAX_CONNECTIONS", 0, 1, 256),
			MaxMessagesPerConnection: p.int("SMTP_MAX_MESSAGES_PER_CONNECTION", DefaultSMTPMessagesPerConnection, 1, 100000),
		}
		if (c.SMTP.Username == "") != (c.SMTP.Password == "") {
			p.bad("SMTP_USERNAME and SMTP_PASSWORD must be set together")
		}
		p.checkSMTPInClear(c.SMTP)
	case EmailMailgun:
		c.Mailgun = Mailgun{
			Domain:  p.str("MAILGUN_DOMAIN", true),
			APIKey:  p.credential("MAILGUN_API_KEY", true),
			APIBase: p.url("MAILGUN_API_BASE", false),
		}
	}

	c.SMSProvider = p.oneOf("SMS_PROVIDER", SMSNone, SMSTwilio, SMSTelnyx, SMSNone)
	switch c.SMSProvider {
	case SMSTwilio:
		c.SMSFrom = p.str("SMS_FROM", true)
		c.Twilio = Twilio{
			AccountSID: p.str("TWILIO_ACCOUNT_SID", true),
			AuthToken:  p.credential("TWILIO_AUTH_TOKEN", true),
			APIBase:    p.url("TWILIO_API_BASE", false),
		}
		p.checkTwilio(c.Twilio)
	case SMSTelnyx:
		c.Telnyx = Telnyx{
			APIKey:             p.credential("TELNYX_API_KEY", true),
			MessagingProfileID: p.str("TELNYX_MESSAGING_PROFILE_ID", false),
			APIBase:            p.url("TELNYX_API_BASE", false),
		}
		if c.Telnyx.APIBase == "" {
			c.Telnyx.APIBase = telnyx.DefaultAPIBase
		}
		c.SMSFrom = p.str("SMS_FROM", c.Telnyx.MessagingProfileID == "")
		p.checkTelnyx(c.Telnyx)
	default:
		c.SMSFrom = p.str("SMS_FROM", false)
	}

	p.checkSMSFrom(c.SMSProvider, c.SMSFrom)

	c.Concurrency = p.int("DUEFLOW_CONCURRENCY", DefaultConcurrency, 1, 256)
	c.LedgerChunk = p.int("DUEFLOW_LEDGER_CHUNK", 0, 0, 10000)
	if c.EmailProvider == EmailSMTP && c.SMTP.MaxConnections == 0 {
		c.SMTP.MaxConnections = c.Concurrency
	}
	before := len(p.problems)
	c.LeaseSeconds = p.int("DUEFLOW_LEASE_SECONDS", DefaultLeaseSeconds, 30, 3600) // automation_claim caps leases at 3600 s
	c.FunctionTimeout = p.duration("DUEFLOW_FUNCTION_TIMEOUT", 0)
	if len(p.problems) == before {
		p.checkLease(c.LeaseSeconds, c.FunctionTimeout)
	}
	c.RPCTimeout = p.duration("DUEFLOW_RPC_TIMEOUT", DefaultRPCTimeout)
	c.MaxBodyBytes = p.int("DUEFLOW_MAX_BODY_BYTES", DefaultMaxBodyBytes, 256, 16<<20)
	c.MaxIDs = p.int("DUEFLOW_MAX_IDS", DefaultMaxIDs, 1, 10000)
	c.LogLevel = p.logLevel()

	if len(p.problems) > 0 {
		return nil, problemsError(p.problems)
	}
	return c, nil
}

// UnsubscribeKeyBytes returns the decoded unsubscribe keys, the signing key
// first; nil when none is set (Load has checked them).
func (c *Config) UnsubscribeKeyBytes() [][]byte {
	keys, _ := decodeUnsubscribeKeys(c.UnsubscribeKeys.Value())
	return keys
}

// decodeUnsubscribeKeys decodes space-separated standard base64 keys of at
// least unsubscribe.MinKeyBytes each. Its errors never quote a key.
func decodeUnsubscribeKeys(v string) ([][]byte, error) {
	var keys [][]byte
	for i, s := range strings.Fields(v) {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s key %d is not base64", EnvUnsubscribeKeys, i+1)
		}
		if len(k) < unsubscribe.MinKeyBytes {
			return nil, fmt.Errorf("%s key %d has %d bytes, want at least %d", EnvUnsubscribeKeys, i+1, len(k), unsubscribe.MinKeyBytes)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// jwtRole reads the role claim of a JWT without verifying it (the function
// does not know the signing secret; PostgREST verifies it).
func jwtRole(tok string) (string, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", false
	}
	var claims struct {
		Role string `json:"role"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return "", false
	}
	return claims.Role, true
}

// logLevel reads LOG_LEVEL (default info).
func (p *parser) logLevel() slog.Level {
	switch lv := strings.ToLower(p.str("LOG_LEVEL", false)); lv {
	case "", "info":
		return slog.LevelInfo
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		p.bad(fmt.Sprintf("LOG_LEVEL %q is not one of debug, info, warn, error", lv))
		return slog.LevelInfo
	}
}

type parser struct {
	getenv   func(string) string
	problems []string
}

func (p *parser) bad(msg string) { p.problems = append(p.problems, msg) }

func (p *parser) str(name string, required bool) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" && required {
		p.bad(name + " is required")
	}
	return v
}

// url reads the base URL of an API that is sent a key: https, or http to a
// local host only (see isLocalHost). Messages show it through redact.URL.
func (p *parser) url(name string, required bool) string {
	v := p.str(name, required)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.bad(fmt.Sprintf("%s %q is not an http(s) URL", name, redact.URL(v)))
		return ""
	}
	if u.Scheme == "http" && !isLocalHost(u.Hostname()) {
		p.bad(fmt.Sprintf("%s %q would send a key over plain http to a remote host: use https:// (http is for %s only)", name, redact.URL(v), localHosts))
		return ""
	}
	return strings.TrimRight(v, "/")
}

// oneOf reads an enumerated value; def "" makes it required.
func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(p.str(name, def == ""))
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.bad(fmt.Sprintf("%s %q is not one of %s", name, v, strings.Join(allowed, ", ")))
	return ""
}

func (p *parser) int(name string, def, lo, hi int) int {
	v := p.str(name, false)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.bad(fmt.Sprintf("%s %q is not a number", name, v))
		return def
	}
	if n < lo || n > hi {
		p.bad(fmt.Sprintf("%s %d is out of range [%d, %d]", name, n, lo, hi))
		return def
	}
	return n
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.str(name, false)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.bad(fmt.Sprintf("%s %q is not a positive duration (e.g. 10s)", name, v))
		return def
	}
	return d
}
