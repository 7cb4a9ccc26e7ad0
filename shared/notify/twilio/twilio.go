// Package twilio sends SMS through Twilio's Messages API with twilio-go:
// POST {base}/2010-04-01/Accounts/{sid}/Messages.json, basic auth sid:token,
// form fields To, From, Body.
//
// twilio-go v1.31.0 takes no context and has no setting for the API base
// URL (the base is fixed inside the generated service). Both are supplied
// through the HTTP client given to it: every request carries the caller's
// context and is redirected to Config.APIBase when one is set (tests, a
// local sink, a proxy).
//
// No idempotency key is sent: the Messages API documents none (Twilio's
// I-Twilio-Idempotency-Token is a header Twilio sets on the webhooks it
// sends, not one it honours on requests). The delivery ledger is the
// guarantee against double sends; a request known not to have been
// written completely is retried, one that may have been is not.
package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/redact"
)

// ProviderName is recorded in the delivery ledger.
const ProviderName = "twilio"

// Twilio error codes with a meaning for retries.
const (
	CodeInvalidToNumber  = 21211 // 'To' is not a valid phone number
	CodeNotMobile        = 21614 // 'To' is not a valid mobile number
	CodeCannotRoute      = 21612 // cannot route to this number
	CodeUnsubscribed     = 21610 // recipient replied STOP
	CodeTooManyRequests  = 20429
	CodeInvalidFromPhone = 21606 // 'From' is not a valid, SMS-capable number of this account
	CodeUnverified       = 21608 // trial account: number not verified for this account
	// Raised by twilio-go itself, before sending: the account SID or auth
	// token holds characters other than letters and digits.
	CodeIllegalUsername = 21222
	CodeIllegalPassword = 21224
)

// Config configures the Twilio sender.
type Config struct {
	AccountSID string // TWILIO_ACCOUNT_SID
	AuthToken  string // TWILIO_AUTH_TOKEN
	From       string // default sender (SMS_FROM): an E.164 number, or a messaging service SID "MG..."
	APIBase    string // TWILIO_API_BASE; empty = https://api.twilio.com
	// StatusCallback is the URL Twilio posts each message's delivery status
	// to (the provider-events function's /twilio/status); empty: none is
	// asked for, and only a messaging service's own callback reports.
	StatusCallback string
	// HTTPClient is used for every call (timeouts, test servers); nil = http.DefaultClient.
	HTTPClient *http.Client
}

// Sender sends SMS through Twilio. It is safe for concurrent use.
type Sender struct {
	cfg  Config
	base *url.URL
}

var _ notify.Sender = (*Sender)(nil)

// New checks the configuration and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, errors.New("twilio: account SID and auth token are required")
	}
	s := &Sender{cfg: cfg}
	if cfg.APIBase != "" {
		u, err := url.Parse(strings.TrimRight(cfg.APIBase, "/"))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("twilio: API base %q is not an absolute URL", cfg.APIBase)
		}
		s.base = u
	}
	return s, nil
}

// Name returns "twilio".
func (s *Sender) Name() string { return ProviderName }

// Send hands one SMS to Twilio; the Result's MessageID is the message SID.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	from := m.From
	if from == "" {
		from = s.cfg.From
	}
	if from == "" {
		return notify.Result{}, notify.Permanent(ProviderName, 0, errors.New("no sender number"))
	}
	if m.To == "" {
		return notify.Result{}, notify.InvalidRecipient(ProviderName, 0, errors.New("no recipient number"))
	}
	httpClient, ex := notify.InstrumentedClient(ctx, s.cfg.HTTPClient, func(r *http.Request) {
		if s.base != nil {
			r.URL.Scheme, r.URL.Host, r.Host = s.base.Scheme, s.base.Host, s.base.Host
			r.URL.Path = s.base.Path + r.URL.Path
		}
	})
	c := &twclient.Client{Credentials: twclient.NewCredentials(s.cfg.AccountSID, s.cfg.AuthToken), HTTPClient: httpClient}
	c.SetAccountSid(s.cfg.AccountSID)
	api := openapi.NewApiServiceWithClient(c)
	params := (&openapi.CreateMessageParams{}).SetTo(m.To).SetBody(m.Text)
	if IsMessagingServiceSID(from) {
		params.SetMessagingServiceSid(from) // Twilio picks the number from the service's pool
	} else {
		params.SetFrom(from)
	}
	if s.cfg.StatusCallback != "" {
		params.SetStatusCallback(s.cfg.StatusCallback)
	}
	msg, err := api.CreateMessage(params)
	var te *twclient.TwilioRestError
	if err != nil && !errors.As(err, &te) && ex.Status >= 200 && ex.Status < 300 {
		// Twilio accepted the message but the answer was unreadable: it is
		// on its way, so this is a success without a SID (a retry would
		// send it twice).
		return notify.Result{Provider: ProviderName}, nil
	}
	if err != nil {
		return notify.Result{}, classify(err, ex)
	}
	res := notify.Result{Provider: ProviderName}
	if msg != nil && msg.Sid != nil {
		res.MessageID = *msg.Sid
	}
	return res, nil
}

// classify maps a twilio-go error to a provider failure (notify.Fail).
func classify(err error, ex *notify.Exchange) *automation.Error {
	var te *twclient.TwilioRestError
	if errors.As(err, &te) {
		status := te.Status
		if status == 0 {
			status = ex.Status
		}
		cause := fmt.Errorf("twilio error %d: %s", te.Code, redact.Text(te.Message)) // names the number
		if ex.Status == 0 {
			// Raised by twilio-go before sending (nothing was answered):
			// credentials it refuses to send are the operator's to fix.
			if te.Code == CodeIllegalUsername || te.Code == CodeIllegalPassword {
				return notify.AuthError(ProviderName, 0, cause)
			}
			return notify.Permanent(ProviderName, 0, cause)
		}
		switch te.Code {
		case CodeInvalidToNumber, CodeNotMobile, CodeCannotRoute:
			return notify.InvalidRecipient(ProviderName, status, cause)
		case CodeUnsubscribed:
			return notify.Permanent(ProviderName, status, cause)
		case CodeInvalidFromPhone, CodeUnverified:
			return notify.AuthError(ProviderName, status, cause) // account configuration: retried
		case CodeTooManyRequests:
			status = http.StatusTooManyRequests
		}
		return notify.HTTPError(ProviderName, status, ex.Header, cause)
	}
	// An error answer twilio-go could not decode (HTML from a proxy) is
	// classified by its status; no answer, by whether the request was
	// written.
	return ex.TransportError(ProviderName, err)
}

// IsMessagingServiceSID reports whether from is a messaging service SID
// ("MG" and 32 hex digits) rather than a phone number.
func IsMessagingServiceSID(from string) bool {
	if len(from) != 34 || !strings.HasPrefix(from, "MG") {
		return false
	}
	for _, r := range from[2:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
