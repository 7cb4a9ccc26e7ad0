// Package mailgun sends email through the Mailgun HTTP API (mailgun-go):
// POST {base}/v3/{domain}/messages with basic auth api:{key}. Mailgun
// documents no idempotency key; the delivery's key only shapes the
// message's Message-Id header (notify.MessageID), by which a receiving
// system can recognise a re-sent message. It is not sent as a custom
// variable: Mailgun copies v: variables into the delivered message's
// X-Mailgun-Variables header, which the recipient sees.
package mailgun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"

	mg "github.com/mailgun/mailgun-go/v4"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/text"
)

// ProviderName is recorded in the delivery ledger.
const ProviderName = "mailgun"

// Config configures the Mailgun sender.
type Config struct {
	Domain   string // sending domain (MAILGUN_DOMAIN)
	APIKey   string // MAILGUN_API_KEY
	APIBase  string // MAILGUN_API_BASE, e.g. https://api.eu.mailgun.net; "/v3" is added when missing; empty = US region
	From     string // default sender address
	FromName string // default sender name
	// HTTPClient is used for every call (timeouts, test servers); nil = http.DefaultClient.
	HTTPClient *http.Client
}

// Sender sends email through Mailgun. It is safe for concurrent use.
type Sender struct {
	cfg Config
}

var _ notify.Sender = (*Sender)(nil)

// New checks the configuration and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if strings.TrimSpace(cfg.Domain) == "" || strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("mailgun: domain and API key are required")
	}
	if cfg.APIBase == "" {
		cfg.APIBase = mg.APIBase
	}
	cfg.APIBase = strings.TrimRight(cfg.APIBase, "/")
	if !strings.HasSuffix(cfg.APIBase, "/v3") {
		cfg.APIBase += "/v3"
	}
	return &Sender{cfg: cfg}, nil
}

// Name returns "mailgun".
func (s *Sender) Name() string { return ProviderName }

// Send hands one email to Mailgun; the Result's MessageID is Mailgun's id.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	fromAddr := text.FirstNonEmpty(m.From, s.cfg.From)
	if fromAddr == "" {
		return notify.Result{}, notify.Permanent(ProviderName, 0, errors.New("no sender address"))
	}
	from := (&mail.Address{Name: text.FirstNonEmpty(m.FromName, s.cfg.FromName), Address: fromAddr}).String()
	if _, err := mail.ParseAddress(m.To); err != nil {
		return notify.Result{}, notify.InvalidRecipient(ProviderName, 0, fmt.Errorf("recipient address: %s", redact.Text(err.Error())))
	}
	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = render.StripTags(m.HTML)
	}

	client, ex := notify.InstrumentedClient(ctx, s.cfg.HTTPClient, nil)
	api := mg.NewMailgun(s.cfg.Domain, s.cfg.APIKey)
	api.SetAPIBase(s.cfg.APIBase)
	api.SetClient(client)

	msg := mg.NewMessage(from, m.Subject, text, m.To)
	if m.HTML != "" {
		msg.SetHTML(m.HTML)
	}
	if m.ReplyTo != "" {
		msg.SetReplyTo(m.ReplyTo)
	}
	if list, post, ok := notify.ListUnsubscribe(m.UnsubscribeURL); ok {
		msg.AddHeader("List-Unsubscribe", list)
		msg.AddHeader("List-Unsubscribe-Post", post)
	}
	if m.IdempotencyKey != "" {
		msg.AddHeader("Message-Id", "<"+notify.MessageID(m.IdempotencyKey, fromAddr)+">")
	}
	// No v: variables: Mailgun copies them into the delivered
	// mail (X-Mailgun-Variables), where the recipient would read internal
	// ids. Events are matched by the Message-Id set above.

	_, id, err := api.Send(ctx, msg)
	var ue *mg.UnexpectedResponseError
	if err != nil && !errors.As(err, &ue) && ex.Status >= 200 && ex.Status < 300 {
		// Mailgun accepted the message but its answer was unreadable: the
		// message is on its way, so this is a success without an id (a
		// retry would send it twice).
		return notify.Result{Provider: ProviderName}, nil
	}
	if err != nil {
		return notify.Result{}, classify(err, ex)
	}
	return notify.Result{Provider: ProviderName, MessageID: strings.Trim(id, "<>")}, nil
}

// classify maps a mailgun-go error to a provider failure (notify.Fail).
func classify(err error, ex *notify.Exchange) *automation.Error {
	var ue *mg.UnexpectedResponseError
	if errors.As(err, &ue) {
		reason := apiMessage(ue.Data)
		cause := fmt.Errorf("mailgun api: %s", reason)
		if ue.Actual == http.StatusBadRequest && invalidRecipient(reason) {
			return notify.InvalidRecipient(ProviderName, ue.Actual, cause)
		}
		return notify.HTTPError(ProviderName, ue.Actual, ex.Header, cause)
	}
	if errors.Is(err, mg.ErrInvalidMessage) {
		return notify.Permanent(ProviderName, 0, err)
	}
	return ex.TransportError(ProviderName, err)
}

// apiMessage extracts Mailgun's {"message": "..."} from an error body, with
// addresses and numbers masked (it may name the recipient).
func apiMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return text.Truncate(redact.Text(e.Message), 200)
	}
	return text.Truncate(redact.Text(strings.TrimSpace(string(body))), 200)
}

func invalidRecipient(msg string) bool {
	l := strings.ToLower(msg)
	return strings.Contains(l, "'to' parameter is not a valid address") ||
		strings.Contains(l, "to parameter is not a valid address") ||
		(strings.Contains(l, "not a valid address") && strings.Contains(l, "to"))
}
