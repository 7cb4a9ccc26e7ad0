// Package webhook verifies and decodes the signed requests pg_net posts to a
// function (Standard Webhooks: webhook-id, webhook-timestamp,
// webhook-signature, HMAC-SHA256 over id.timestamp.body) and signs such
// requests for tests, `dueflow invoke` and benchmarks.
//
// The order of checks is fixed: body size first, then the timestamp and the
// signature, and only then the JSON. Nothing that depends on the content of
// an unverified body runs.
package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/google/uuid"
)

// Header names of a Standard Webhooks request (lowercase, as pg_net and
// Lambda Function URL events carry them; http.Header lookups ignore case).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Defaults of the request limits (DUEFLOW_MAX_BODY_BYTES, DUEFLOW_MAX_IDS)
// and the accepted clock skew.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultMaxIDs       = 500
	Tolerance           = 5 * time.Minute
	// MinSecretBytes and MaxSecretBytes bound a signing key (decoded
	// bytes), as Standard Webhooks does and automation_register_endpoint
	// checks: a secret the functions take can always be registered.
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// MaxSecrets is the most secrets one Verifier or Signer takes (a
	// rotation needs two).
	MaxSecrets = 4
	// SecretPrefix starts every signing secret: "whsec_" + the base64 key.
	SecretPrefix = "whsec_"
)

// Sentinel causes of a rejected request; test with errors.Is. Every error
// returned by Verify, Decode and VerifyAndDecode is an *automation.Error
// (its Code one of automation.CodeUnauthorized, CodeTooLarge,
// CodeInvalidRequest; its Message a short public reason that never holds
// secrets or the body) wrapping one of them.
var (
	ErrMissingHeaders = errors.New("missing webhook headers")    // unauthorized
	ErrTimestamp      = errors.New("webhook timestamp invalid")  // unauthorized
	ErrSignature      = errors.New("webhook signature mismatch") // unauthorized
	ErrTooLarge       = errors.New("request body too large")     // too_large
	ErrMalformed      = errors.New("malformed request body")     // invalid_request
	ErrAction         = errors.New("wrong or unknown action")    // invalid_request
	ErrNoIDs          = errors.New("no execution ids")           // invalid_request
	ErrBadID          = errors.New("invalid execution id")       // invalid_request
	ErrTooManyIDs     = errors.New("too many execution ids")     // invalid_request
)

// reject returns the rejection of a request: code, the cause's text (and
// the formatted detail) as the public reason, the cause wrapped.
func reject(code automation.Code, cause error, format string, args ...any) *automation.Error {
	reason := cause.Error()
	if format != "" {
		reason += ": " + fmt.Sprintf(format, args...)
	}
	return automation.NewError(code, reason, cause)
}

// Verifier checks signed requests for one function (one action).
type Verifier struct {
	whs          []*standardwebhooks.Webhook // any of them may sign
	action       string
	maxBodyBytes int
	maxIDs       int
	now          func() time.Time
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithMaxBodyBytes sets the largest accepted body (default 64 KiB); n <= 0 keeps the default.
func WithMaxBodyBytes(n int) Option {
	return func(v *Verifier) {
		if n > 0 {
			v.maxBodyBytes = n
		}
	}
}

// WithMaxIDs sets the most execution ids one request may carry (default 500); n <= 0 keeps the default.
func WithMaxIDs(n int) Option {
	return func(v *Verifier) {
		if n > 0 {
			v.maxIDs = n
		}
	}
}

// WithClock replaces time.Now for the timestamp tolerance check (tests).
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// ParseSecret decodes one signing secret, "whsec_<standard base64 key>"
// of MinSecretBytes to MaxSecretBytes bytes, and returns its key. It is the one rule
// of a signing secret in Go: DUEFLOW_WEBHOOK_SECRET (shared/config), the
// Verifier and Signer, and the local stack's secret. Its errors never
// quote the secret and read after the secret's name ("… must start with
// whsec_").
func ParseSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || strings.ContainsAny(b64, "\r\n") { // the decoder skips line breaks
		return nil, errors.New("is not " + SecretPrefix + "<base64>")
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("key has %d bytes, want %d to %d", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// parseSecret makes the signer of one secret (ParseSecret).
func parseSecret(secret string) (*standardwebhooks.Webhook, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	return wh, nil
}

// parseSecrets parses one secret or several separated by white space
// (newest first, during a rotation: "whsec_new whsec_old").
func parseSecrets(list string) ([]*standardwebhooks.Webhook, error) {
	fields := strings.Fields(list)
	if len(fields) == 0 {
		return nil, errors.New("webhook secret: empty")
	}
	if len(fields) > MaxSecrets {
		return nil, fmt.Errorf("webhook secret: %d secrets, at most %d", len(fields), MaxSecrets)
	}
	whs := make([]*standardwebhooks.Webhook, 0, len(fields))
	for i, f := range fields {
		wh, err := parseSecret(f)
		if err != nil {
			if len(fields) > 1 {
				return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
			}
			return nil, err
		}
		whs = append(whs, wh)
	}
	return whs, nil
}

// NewVerifier returns a Verifier for the function of action (one of
// automation.Actions) with the secret "whsec_<base64 key>", or several
// separated by spaces ("whsec_new whsec_old", while a secret is rotated): a
// request signed with any of them is accepted.
func NewVerifier(secret, action string, opts ...Option) (*Verifier, error) {
	if !automation.IsAction(action) {
		return nil, fmt.Errorf("webhook verifier: unknown action %q", action)
	}
	whs, err := parseSecrets(secret)
	if err != nil {
		return nil, err
	}
	v := &Verifier{whs: whs, action: action, maxBodyBytes: DefaultMaxBodyBytes, maxIDs: DefaultMaxIDs, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Action is the action this Verifier accepts.
func (v *Verifier) Action() string { return v.action }

// MaxBodyBytes is the largest body accepted.
func (v *Verifier) MaxBodyBytes() int { return v.maxBodyBytes }

// MaxIDs is the most execution ids accepted in one request.
func (v *Verifier) MaxIDs() int { return v.maxIDs }

// CheckSize rejects a body longer than the limit (automation.CodeTooLarge). Call it before
// reading further, and before Verify.
func (v *Verifier) CheckSize(n int) error {
	if n > v.maxBodyBytes {
		return reject(automation.CodeTooLarge, ErrTooLarge, "limit is %d bytes", v.maxBodyBytes)
	}
	return nil
}

// ReadBody reads at most MaxBodyBytes from r; a longer body is ErrTooLarge
// (automation.CodeTooLarge) without reading it all.
func (v *Verifier) ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(v.maxBodyBytes)+1))
	if err != nil {
		return nil, reject(automation.CodeInvalidRequest, ErrMalformed, "reading body failed")
	}
	if err := v.CheckSize(len(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// Verify checks the size of body, the timestamp (within Tolerance of now)
// and the signature (any of several space-separated "v1,<base64>"
// signatures may match, made with any of the Verifier's secrets).
// Errors are *automation.Error with code too_large or unauthorized.
func (v *Verifier) Verify(body []byte, h http.Header) error {
	if err := v.CheckSize(len(body)); err != nil {
		return err
	}
	id, ts, sig := header(h, HeaderID), header(h, HeaderTimestamp), header(h, HeaderSignature)
	if id == "" || ts == "" || sig == "" {
		return reject(automation.CodeUnauthorized, ErrMissingHeaders, "")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return reject(automation.CodeUnauthorized, ErrTimestamp, "not unix seconds")
	}
	now := v.now().Unix()
	tol := int64(Tolerance / time.Second)
	if secs < now-tol || secs > now+tol {
		return reject(automation.CodeUnauthorized, ErrTimestamp, "outside the %s tolerance", Tolerance)
	}
	// The timestamp is checked above with our (injectable) clock; the
	// library compares the HMAC in constant time, against one key: each
	// secret of a rotation is tried in turn.
	canon := http.Header{}
	canon.Set(HeaderID, id)
	canon.Set(HeaderTimestamp, ts)
	canon.Set(HeaderSignature, sig)
	for _, wh := range v.whs {
		if wh.VerifyIgnoringTimestamp(body, canon) == nil {
			return nil
		}
	}
	return reject(automation.CodeUnauthorized, ErrSignature, "")
}

// header returns a header's value whatever the case of its key (a map built
// by hand may hold "webhook-id" rather than "Webhook-Id"); several values
// are joined with spaces, so signatures sent on several lines all count.
func header(h http.Header, name string) string {
	var vals []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	return strings.TrimSpace(strings.Join(vals, " "))
}

// wireRequest mirrors automation.Request with ids as text, so each id is
// checked here (canonical form) rather than by uuid's lenient parser.
type wireRequest struct {
	Action       *string  `json:"action"`
	ExecutionIDs []string `json:"execution_ids"`
}

// Decode parses a verified body strictly: a single JSON object with exactly
// the fields action and execution_ids, action equal to this function's,
// 1..MaxIDs canonical lowercase-or-uppercase UUIDs (duplicates removed,
// order kept). Errors are *automation.Error with code invalid_request (or too_large).
func (v *Verifier) Decode(body []byte) (automation.Request, error) {
	if err := v.CheckSize(len(body)); err != nil {
		return automation.Request{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var w wireRequest
	if err := dec.Decode(&w); err != nil {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrMalformed, "%s", jsonReason(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrMalformed, "trailing data after the JSON object")
	}
	if w.Action == nil {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrAction, "missing")
	}
	if !automation.IsAction(*w.Action) {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrAction, "unknown action")
	}
	if *w.Action != v.action {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrAction, "this function handles %s", v.action)
	}
	if len(w.ExecutionIDs) == 0 {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrNoIDs, "")
	}
	if len(w.ExecutionIDs) > v.maxIDs {
		return automation.Request{}, reject(automation.CodeInvalidRequest, ErrTooManyIDs, "%d ids, limit is %d", len(w.ExecutionIDs), v.maxIDs)
	}
	ids := make([]uuid.UUID, 0, len(w.ExecutionIDs))
	seen := make(map[uuid.UUID]struct{}, len(w.ExecutionIDs))
	for i, s := range w.ExecutionIDs {
		id, err := parseID(s)
		if err != nil {
			return automation.Request{}, reject(automation.CodeInvalidRequest, ErrBadID, "execution_ids[%d]", i)
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
	}
	return automation.Request{Action: *w.Action, ExecutionIDs: ids}, nil
}

// parseID accepts only the canonical 36-character form and not the nil UUID.
func parseID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errors.New("not a canonical uuid")
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("parse uuid: %w", err)
	}
	if id == uuid.Nil {
		return uuid.Nil, errors.New("nil uuid")
	}
	return id, nil
}

// jsonReason describes a JSON error without echoing body content.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field"
	default:
		return "invalid JSON"
	}
}

// VerifyAndDecode is Verify followed by Decode.
func (v *Verifier) VerifyAndDecode(body []byte, h http.Header) (automation.Request, error) {
	if err := v.Verify(body, h); err != nil {
		return automation.Request{}, err
	}
	return v.Decode(body)
}

// Signer signs request bodies the way process_pending_automations() does in
// SQL: for tests, `dueflow invoke` and benchmarks.
type Signer struct {
	whs []*standardwebhooks.Webhook
	now func() time.Time
}

// NewSigner returns a Signer for the secret "whsec_<base64 key>", or for
// several separated by spaces: it then signs with each, as the database
// does during a rotation.
func NewSigner(secret string) (*Signer, error) {
	whs, err := parseSecrets(secret)
	if err != nil {
		return nil, err
	}
	return &Signer{whs: whs, now: time.Now}, nil
}

// Sign returns the three webhook headers for body, with a fresh random
// webhook-id and the current time.
func (s *Signer) Sign(body []byte) (http.Header, error) {
	return s.SignAt(uuid.NewString(), s.now(), body)
}

// SignAt returns the three webhook headers for body with the given id and
// timestamp (tests of expired or future timestamps).
func (s *Signer) SignAt(id string, ts time.Time, body []byte) (http.Header, error) {
	sigs := make([]string, 0, len(s.whs))
	for _, wh := range s.whs {
		sig, err := wh.Sign(id, ts, body)
		if err != nil {
			return nil, fmt.Errorf("sign webhook: %w", err)
		}
		sigs = append(sigs, sig)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h, nil
}

// Headers returns the headers of a signed request as a lowercase map, the
// shape of Lambda Function URL event headers.
func Headers(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			m[strings.ToLower(k)] = strings.Join(vs, " ")
		}
	}
	return m
}

// NewSecret returns a fresh random secret "whsec_<base64 of 32 bytes>".
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}
