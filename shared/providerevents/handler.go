package providerevents

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/text"
)

// Paths below the function's URL.
const (
	PathUnsubscribe   = "/unsubscribe"
	PathTwilioInbound = "/twilio/inbound"
	PathTwilioStatus  = "/twilio/status"
	PathTelnyx        = "/telnyx"
	PathMailgun       = "/mailgun"
)

// ReplayWindow is how far a signed timestamp (Telnyx, Mailgun) may be from
// now, either way.
const ReplayWindow = 5 * time.Minute

// DefaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// Options configures a Handler. A provider without its key is not served
// (its path answers 404).
type Options struct {
	Store Store
	// UnsubscribeKeys verify the one-click tokens (any of them; see
	// shared/unsubscribe). Empty: PathUnsubscribe is not served.
	UnsubscribeKeys [][]byte
	// MailgunSigningKey is the Mailgun account's HTTP webhook signing key.
	MailgunSigningKey string
	// TwilioAuthToken signs Twilio's requests (X-Twilio-Signature).
	TwilioAuthToken string
	// TelnyxPublicKey is the Telnyx account's public key (Ed25519).
	TelnyxPublicKey ed25519.PublicKey
	// PublicURL is the base URL the providers call (DUEFLOW_PUBLIC_URL, the
	// function's URL or a domain in front of it): Twilio signs the full URL
	// it calls. Empty: https://<Host header> is assumed.
	PublicURL string
	// SMSHelpText answers HELP on Twilio (default DefaultSMSHelpText).
	SMSHelpText  string
	MaxBodyBytes int
	Now          func() time.Time
	Logger       *slog.Logger
}

// Handler serves the provider-events function's requests over net/http
// (the Function URL adapter is shared/lambdaurl.HTTPHandler).
type Handler struct {
	opt    Options
	log    *slog.Logger
	now    func() time.Time
	tokens *tokenCache // Mailgun tokens seen within the replay window
}

// New returns a Handler. It fails when no Store is given or no provider is
// configured, or a key is malformed.
func New(o Options) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("providerevents: a Store is required")
	}
	if len(o.UnsubscribeKeys) == 0 && o.MailgunSigningKey == "" && o.TwilioAuthToken == "" && o.TelnyxPublicKey == nil {
		return nil, errors.New("providerevents: nothing to receive: configure at least one of the unsubscribe keys, the Mailgun signing key, the Twilio auth token, the Telnyx public key")
	}
	if o.TelnyxPublicKey != nil && len(o.TelnyxPublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("providerevents: Telnyx public key has %d bytes, want %d", len(o.TelnyxPublicKey), ed25519.PublicKeySize)
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			return nil, errors.New("providerevents: the public URL must be an absolute http(s) URL without a query")
		}
		o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	}
	if o.SMSHelpText == "" {
		o.SMSHelpText = DefaultSMSHelpText
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Handler{opt: o, log: o.Logger, now: o.Now, tokens: newTokenCache(ReplayWindow)}, nil
}

// reject returns a rejection: an *automation.Error with a request code and
// a short public reason (no secret, no personal data) as its message, for
// the answer and the log.
func reject(code automation.Code, reason string) *automation.Error {
	return automation.NewError(code, reason, nil)
}

var errTooLarge = reject(automation.CodeTooLarge, "body too large")

// statusOf maps the codes of rejections to the HTTP status of the answer
// (this handler is the edge of the provider-events function; the signed
// functions' edge is shared/lambdaurl). An error with any other code (a
// Store failure: internal_error) is no rejection.
var statusOf = map[automation.Code]int{
	automation.CodeUnauthorized:     http.StatusUnauthorized,
	automation.CodeInvalidRequest:   http.StatusBadRequest,
	automation.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	automation.CodeNotFound:         http.StatusNotFound,
	automation.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	automation.CodeUnavailable:      http.StatusServiceUnavailable,
}

// routes maps each path to its provider.
var routes = map[string]string{
	PathUnsubscribe: ProviderLink, PathTwilioInbound: ProviderTwilio, PathTwilioStatus: ProviderTwilio,
	PathTelnyx: ProviderTelnyx, PathMailgun: ProviderMailgun,
}

// ServeHTTP routes one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	path := strings.TrimRight(r.URL.Path, "/")
	log := h.log.With("path", text.Truncate(path, 64), "request_id", text.Truncate(r.Header.Get("x-request-id"), 64))
	var err error
	provider := routes[path]
	switch {
	case provider == "":
		err = reject(automation.CodeNotFound, "not found")
	case !h.configured(provider):
		err = reject(automation.CodeNotFound, provider+" is not configured")
	case path == PathUnsubscribe:
		h.serveUnsubscribe(w, r, log)
		return
	case path == PathTwilioInbound || path == PathTwilioStatus:
		err = h.serveTwilio(w, r, path == PathTwilioInbound, log)
	case path == PathTelnyx:
		err = h.serveTelnyx(w, r, log)
	case path == PathMailgun:
		err = h.serveMailgun(w, r, log)
	}
	if err == nil {
		return
	}
	var re *automation.Error
	if errors.As(err, &re) && statusOf[re.Code] != 0 {
		log.WarnContext(r.Context(), "request rejected", "provider", provider, "status", statusOf[re.Code], "reason", re.Message)
	} else {
		// a Store failure: its text may quote a row (masked)
		log.ErrorContext(r.Context(), "provider event not recorded", "provider", provider, "error", redactErr(err),
			"duration_ms", h.now().Sub(start).Milliseconds())
		re = reject(automation.CodeUnavailable, "not recorded, try again later")
	}
	writeJSON(w, statusOf[re.Code], map[string]string{"error": re.Message})
}

func (h *Handler) configured(provider string) bool {
	switch provider {
	case ProviderLink:
		return len(h.opt.UnsubscribeKeys) > 0
	case ProviderTwilio:
		return h.opt.TwilioAuthToken != ""
	case ProviderTelnyx:
		return h.opt.TelnyxPublicKey != nil
	case ProviderMailgun:
		return h.opt.MailgunSigningKey != ""
	}
	return false
}

// readBody reads a POST body of at most MaxBodyBytes.
func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, reject(automation.CodeMethodNotAllowed, "method not allowed")
	}
	if r.ContentLength > int64(h.opt.MaxBodyBytes) {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(h.opt.MaxBodyBytes)+1))
	if err != nil {
		return nil, reject(automation.CodeInvalidRequest, "unreadable body")
	}
	if len(b) > h.opt.MaxBodyBytes {
		return nil, errTooLarge
	}
	return b, nil
}

// record hands events to the Store and logs what it did (counts, kinds,
// statuses; never an address).
func (h *Handler) record(r *http.Request, log *slog.Logger, provider string, events []Event) error {
	if len(events) == 0 {
		log.InfoContext(r.Context(), "provider request verified, nothing to record", "provider", provider)
		return nil
	}
	res, err := h.opt.Store.RecordProviderEvents(r.Context(), events)
	if err != nil {
		return err // it names the RPC that failed; the caller logs the provider
	}
	kinds := make([]string, len(events))
	for i, e := range events {
		kinds[i] = e.Kind
		if e.Status != "" {
			kinds[i] += ":" + e.Status
		}
	}
	log.InfoContext(r.Context(), "provider events recorded", "provider", provider, "events", kinds,
		"recorded", res.Recorded, "duplicates", res.Duplicates, "unmatched", res.Unmatched)
	return nil
}

// reason cleans a provider's reason text: personal data masked, one line,
// at most MaxReasonBytes.
func reason(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	s := strings.Join(strings.Fields(strings.Join(kept, " ")), " ")
	return text.Truncate(redact.Text(s), MaxReasonBytes)
}

// tokenCache remembers tokens until they are older than the replay window,
// so that a signed request is accepted once per function instance.
type tokenCache struct {
	mu     sync.Mutex
	window time.Duration
	seen   map[string]time.Time // token -> when it stops mattering
}

// maxTokens bounds the cache: more requests than that within the window on
// one instance are refused (503, the provider retries).
const maxTokens = 100000

func newTokenCache(window time.Duration) *tokenCache {
	return &tokenCache{window: window, seen: map[string]time.Time{}}
}

// add records token at now; false when it was seen already (a replay) or
// the cache is full.
func (c *tokenCache) add(token string, now time.Time) (fresh bool, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[token]; ok && now.Before(exp) {
		return false, false
	}
	if len(c.seen) >= maxTokens/2 {
		for t, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, t)
			}
		}
		if len(c.seen) >= maxTokens {
			return false, true
		}
	}
	// twice the window: a timestamp may be up to one window in the future
	c.seen[token] = now.Add(2 * c.window)
	return true, false
}

// forget drops token, so that a request whose events could not be recorded
// is accepted again when the provider retries it.
func (c *tokenCache) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, token)
}

// withinWindow reports whether unix seconds ts is within ReplayWindow of now.
func withinWindow(ts int64, now time.Time) bool {
	d := now.Sub(time.Unix(ts, 0))
	return d <= ReplayWindow && d >= -ReplayWindow
}

// redactErr is an error's text with personal data masked.
func redactErr(err error) string { return redact.Text(err.Error()) }
