// Package telnyx sends SMS through the Telnyx Messaging API v2 with plain
// net/http (no Go SDK is used): POST {base}/v2/messages with
// "Authorization: Bearer <key>" and JSON {"from","to","text",
// "messaging_profile_id"}; the answer is {"data":{"id":...}}, errors are
// {"errors":[{"code","title","detail"}]}.
//
// The delivery's idempotency key is sent as the Idempotency-Key header,
// when it has the documented form (1 to 255 letters, digits, "-", "_",
// ":"). That is Telnyx's general idempotency mechanism: the same key,
// method and path with a byte-identical body replay the first successful
// answer for 24 hours (a different body: 422). The reference of
// /v2/messages does not declare it, so the delivery ledger remains the
// guarantee against double sends.
package telnyx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/text"
)

// ProviderName is recorded in the delivery ledger.
const ProviderName = "telnyx"

// DefaultAPIBase is the Telnyx API origin.
const DefaultAPIBase = "https://api.telnyx.com"

// IdempotencyHeader carries the delivery's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// idempotencyKeyRE is the documented form of an Idempotency-Key.
var idempotencyKeyRE = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,255}$`)

// Config configures the Telnyx sender.
type Config struct {
	APIKey             string // TELNYX_API_KEY
	MessagingProfileID string // TELNYX_MESSAGING_PROFILE_ID, optional
	From               string // default sender number (SMS_FROM); may be empty with a messaging profile
	APIBase            string // TELNYX_API_BASE; empty = DefaultAPIBase
	// HTTPClient is used for every call (timeouts, test servers); nil = http.DefaultClient.
	HTTPClient *http.Client
}

// Sender sends SMS through Telnyx. It is safe for concurrent use.
type Sender struct {
	cfg      Config
	endpoint string
	client   *http.Client
}

var _ notify.Sender = (*Sender)(nil)

// Request is the JSON body of POST /v2/messages.
type Request struct {
	From               string `json:"from,omitempty"`
	To                 string `json:"to"`
	Text               string `json:"text"`
	MessagingProfileID string `json:"messaging_profile_id,omitempty"`
}

// Response is the JSON answer of a successful POST /v2/messages (the part used).
type Response struct {
	Data struct {
		ID string `json:"id"`
	} `json:"data"`
}

// ErrorObject is one element of a Telnyx error answer's "errors" (JSON, not
// a Go error: classify turns the answer into a provider failure).
type ErrorObject struct {
	Code   Code   `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// ErrorResponse is a Telnyx error answer.
type ErrorResponse struct {
	Errors []ErrorObject `json:"errors"`
}

// Code is a Telnyx error code; the API writes it as a string ("40310") but
// a number is accepted too.
type Code string

// UnmarshalJSON accepts "40310" and 40310.
func (c *Code) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = Code(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("telnyx error code: %w", err)
	}
	*c = Code(n.String())
	return nil
}

// Error codes that say the recipient number will never work.
var invalidRecipientCodes = map[Code]bool{
	"40310": true, // invalid 'to' address
	"40012": true, // invalid destination number
	"40001": true, // not routable (landline)
	"10002": true, // invalid phone number
	"10016": true, // phone number must be in +E.164 format
}

// Error codes that are permanent for other reasons.
var permanentCodes = map[Code]bool{
	"40300": true, // blocked: the recipient replied STOP
}

// Error codes that say the account's sender configuration is wrong (an
// operator's fix): provider_auth, retried.
var configCodes = map[Code]bool{
	"40305": true, // invalid 'from' address: number not enabled for messaging on this account
}

// Error codes that are worth retrying whatever the HTTP status.
var retryableCodes = map[Code]bool{
	"10011": true, // too many requests
	"40011": true, // upstream rate limit
	"10007": true, // unexpected error
	"10008": true, // request timeout
}

// New checks the configuration and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("telnyx: API key is required")
	}
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("telnyx: API base %q is not an absolute URL", base)
	}
	c := cfg.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	return &Sender{cfg: cfg, endpoint: u.String() + "/v2/messages", client: c}, nil
}

// Name returns "telnyx".
func (s *Sender) Name() string { return ProviderName }

// Send hands one SMS to Telnyx; the Result's MessageID is Telnyx's id.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	from := m.From
	if from == "" {
		from = s.cfg.From
	}
	if from == "" && s.cfg.MessagingProfileID == "" {
		return notify.Result{}, notify.Permanent(ProviderName, 0, errors.New("no sender number and no messaging profile"))
	}
	if m.To == "" {
		return notify.Result{}, notify.InvalidRecipient(ProviderName, 0, errors.New("no recipient number"))
	}
	body, err := json.Marshal(Request{From: from, To: m.To, Text: m.Text, MessagingProfileID: s.cfg.MessagingProfileID})
	if err != nil {
		return notify.Result{}, notify.Permanent(ProviderName, 0, fmt.Errorf("encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return notify.Result{}, notify.Permanent(ProviderName, 0, fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if idempotencyKeyRE.MatchString(m.IdempotencyKey) {
		req.Header.Set(IdempotencyHeader, m.IdempotencyKey)
	}
	client, ex := notify.InstrumentedClient(ctx, s.client, nil)
	resp, err := client.Do(req)
	if err != nil {
		return notify.Result{}, ex.TransportError(ProviderName, err)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok Response
		if readErr == nil {
			_ = json.Unmarshal(raw, &ok) // accepted: an unreadable answer still means sent
		}
		return notify.Result{Provider: ProviderName, MessageID: ok.Data.ID}, nil
	}
	return notify.Result{}, classify(resp.StatusCode, resp.Header, raw)
}

// classify maps a Telnyx error answer to a provider failure (notify.Fail).
func classify(status int, h http.Header, raw []byte) *automation.Error {
	var er ErrorResponse
	_ = json.Unmarshal(raw, &er)
	if len(er.Errors) == 0 {
		return notify.HTTPError(ProviderName, status, h, fmt.Errorf("telnyx answer status %d", status))
	}
	e0 := er.Errors[0]
	cause := fmt.Errorf("telnyx error %s: %s", e0.Code, redact.Text(strings.TrimSpace(e0.Title+": "+text.Truncate(e0.Detail, 200))))
	for _, e := range er.Errors {
		if invalidRecipientCodes[e.Code] {
			return notify.InvalidRecipient(ProviderName, status, fmt.Errorf("telnyx error %s: %s", e.Code, redact.Text(e.Title)))
		}
		if permanentCodes[e.Code] {
			return notify.Permanent(ProviderName, status, fmt.Errorf("telnyx error %s: %s", e.Code, redact.Text(e.Title)))
		}
		if configCodes[e.Code] {
			return notify.AuthError(ProviderName, status, fmt.Errorf("telnyx error %s: %s", e.Code, redact.Text(e.Title)))
		}
	}
	code := notify.HTTPCode(status)
	if !notify.Retryable(code) && retryableCodes[e0.Code] {
		code = notify.CodeUnavailable
		if e0.Code == "10011" || e0.Code == "40011" {
			code = notify.CodeRateLimited
		}
	}
	return notify.HTTPFailure(ProviderName, code, status, h, cause)
}
