// Package smtpmail sends email through any SMTP relay (SES, Mailgun SMTP,
// Mailpit locally) with wneessen/go-mail: STARTTLS, implicit TLS or none,
// AUTH when a username is configured, multipart/alternative text + HTML, and
// a Message-ID derived from the delivery's idempotency key.
package smtpmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/render"
)

// ProviderName is recorded in the delivery ledger.
const ProviderName = "smtp"

// TLS modes (SMTP_TLS).
const (
	TLSStartTLS = "starttls" // default: STARTTLS required
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain text (local sinks such as Mailpit)
)

// Config configures the SMTP sender.
type Config struct {
	Host     string
	Port     int    // 0 = 587 (starttls), 465 (tls), 25 (none)
	Username string // AUTH only when set
	Password string
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSNone
	From     string // default sender address when a message has none
	FromName string // default sender name
	HELO     string // optional EHLO name
	Timeout  time.Duration
	// TLSConfig overrides the TLS settings (custom roots in tests).
	TLSConfig *tls.Config
}

// Sender sends email over SMTP. It is safe for concurrent use: every Send
// dials its own connection.
type Sender struct {
	cfg  Config
	opts []mail.Option
}

// New checks the configuration and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if strings.TrimSpace(cfg.Host) == "" {
		return nil, errors.New("smtpmail: host is required")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	opts := []mail.Option{mail.WithTimeout(cfg.Timeout)}
	port := cfg.Port
	switch cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
		if port == 0 {
			port = 587
		}
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
		if port == 0 {
			port = 465
		}
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if port == 0 {
			port = 25
		}
	default:
		return nil, fmt.Errorf("smtpmail: unknown TLS mode %q (want starttls, tls or none)", cfg.TLS)
	}
	opts = append(opts, mail.WithPort(port))
	if cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	cfg.Port = port
	return &Sender{cfg: cfg, opts: opts}, nil
}

// Name returns "smtp".
func (s *Sender) Name() string { return ProviderName }

// Send delivers one email. The Result's MessageID is the Message-ID header
// (without angle brackets).
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	msg, id, err := s.build(m)
	if err != nil {
		return notify.Result{}, err
	}
	c, err := mail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return notify.Result{}, notify.Permanent(ProviderName, 0, fmt.Errorf("smtp client: %w", err))
	}
	// Dial (connect, TLS, AUTH) and send separately: a failure before the
	// message is handed over is never ambiguous.
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		e := notify.TransportError(ProviderName, fmt.Errorf("smtp dial: %w", err))
		e.Ambiguous = false
		return notify.Result{}, e
	}
	sendErr := c.SendWithSMTPClient(sc, msg)
	// Once the server has answered the end of DATA, the message is queued;
	// an error closing the session changes nothing.
	_ = c.CloseWithSMTPClient(sc)
	if sendErr != nil {
		return notify.Result{}, classify(sendErr)
	}
	return notify.Result{Provider: ProviderName, MessageID: id}, nil
}

// build assembles the MIME message.
func (s *Sender) build(m notify.Message) (*mail.Msg, string, error) {
	msg := mail.NewMsg()
	from := firstNonEmpty(m.From, s.cfg.From)
	name := firstNonEmpty(m.FromName, s.cfg.FromName)
	if from == "" {
		return nil, "", notify.Permanent(ProviderName, 0, errors.New("no sender address"))
	}
	if err := msg.FromFormat(name, from); err != nil {
		return nil, "", notify.Permanent(ProviderName, 0, fmt.Errorf("sender address: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", notify.InvalidRecipient(ProviderName, 0, fmt.Errorf("recipient address: %w", err))
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, "", notify.Permanent(ProviderName, 0, fmt.Errorf("reply-to address: %w", err))
		}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	id := notify.MessageID(m.IdempotencyKey, from)
	if id != "" {
		msg.SetMessageIDWithValue(id)
		msg.SetGenHeader("X-Dueflow-Idempotency-Key", m.IdempotencyKey)
	} else {
		msg.SetMessageID()
		id = strings.Trim(firstHeader(msg, mail.HeaderMessageID), "<>")
	}
	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = render.StripTags(m.HTML)
	}
	msg.SetBodyString(mail.TypeTextPlain, text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, id, nil
}

func firstHeader(msg *mail.Msg, h mail.Header) string {
	if v := msg.GetGenHeader(h); len(v) > 0 {
		return v[0]
	}
	return ""
}

// classify turns a go-mail error into a *notify.Error: a 5xx reply to RCPT
// TO that names the mailbox (550, 551, 553) is invalid_recipient, any other
// 5xx provider_rejected (permanent), 4xx provider_unavailable (retryable),
// and failures without an SMTP reply (broken connection) are network or
// timeout errors (retryable; Ambiguous when the content was being written).
func classify(err error) *notify.Error {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return notify.TransportError(ProviderName, err)
	}
	code := se.ErrorCode()
	switch {
	case code >= 500 && code < 600:
		if se.Reason == mail.ErrSMTPRcptTo && (code == 550 || code == 551 || code == 553) {
			return notify.InvalidRecipient(ProviderName, code, err)
		}
		return notify.Permanent(ProviderName, code, err)
	case code >= 400 && code < 500:
		return &notify.Error{Provider: ProviderName, Code: notify.CodeUnavailable, Retryable: true, StatusCode: code, Err: err}
	case se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts:
		return notify.Permanent(ProviderName, 0, err)
	}
	e := notify.TransportError(ProviderName, err)
	// Only a failure while or after the content was written can mean the
	// server has the message.
	e.Ambiguous = se.Reason == mail.ErrWriteContent || se.Reason == mail.ErrSMTPDataClose || se.Reason == mail.ErrAmbiguous
	return e
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return x
		}
	}
	return ""
}
