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
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/text"
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
	// MaxConnections bounds the SMTP sessions open at once, and so the
	// sends in flight (0 = DefaultMaxConnections).
	MaxConnections int
	// MaxMessagesPerConnection closes a session after that many messages
	// (some relays, such as SES, limit messages per connection; 0 =
	// DefaultMaxMessagesPerConnection).
	MaxMessagesPerConnection int
	// IdleTimeout closes sessions unused for that long (0 =
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
}

// Pool defaults.
const (
	DefaultMaxConnections           = 8
	DefaultMaxMessagesPerConnection = 100
	// DefaultIdleTimeout is short: messages of a batch follow each other
	// within milliseconds, and back-to-back batches of one environment
	// within the claim's round trip, while the next minute's tick would
	// find the session closed by many relays anyway.
	DefaultIdleTimeout = 5 * time.Second
)

// Sender sends email over SMTP. It is safe for concurrent use: it keeps a
// bounded pool of open, authenticated SMTP sessions, each reused for many
// messages (see Config.MaxConnections). Call Close at shutdown.
type Sender struct {
	cfg    Config
	client *mail.Client
	slots  chan struct{} // one per session that may be open or in use

	mu      sync.Mutex
	idle    []*session // most recently used last
	closed  bool
	closing sync.WaitGroup // background QUITs
	reaper  *time.Timer    // closes idle sessions after IdleTimeout; nil when none is armed
}

// session is one open SMTP connection.
type session struct {
	c        *smtp.Client
	sent     int       // messages accepted on it
	lastUsed time.Time // when it was last returned to the pool
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
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxMessagesPerConnection <= 0 {
		cfg.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	// No NOOP before and no RSET after each message: a reused session that
	// went stale fails at MAIL FROM, before anything was handed over, and is
	// then replaced (see Send); after the reply to the end of DATA the
	// transaction is over (RFC 5321 4.1.1.4), so RSET would only cost a
	// round trip.
	opts := []mail.Option{mail.WithTimeout(cfg.Timeout), mail.WithoutNoop(), mail.WithoutRset()}
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
	c, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: client: %w", err)
	}
	return &Sender{cfg: cfg, client: c, slots: make(chan struct{}, cfg.MaxConnections)}, nil
}

// Name returns "smtp".
func (s *Sender) Name() string { return ProviderName }

// Send delivers one email. The Result's MessageID is the Message-ID header
// (without angle brackets).
//
// It waits for one of Config.MaxConnections slots, then sends on an idle
// pooled session or on a new one. When a reused session fails before the
// message was handed over (the server closed it while idle: MAIL FROM,
// RCPT TO or DATA gets no reply, or 421), the session is dropped and the
// message is sent once more on a new connection: nothing can have been
// delivered. A failure while or after the content was written is never
// retried here (Ambiguous). A session that failed is closed, except after a
// clean rejection of one message that a RSET confirms left it usable.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	msg, id, err := s.build(m)
	if err != nil {
		return notify.Result{}, err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		e := notify.TransportError(ProviderName, fmt.Errorf("smtp: waiting for a connection: %w", ctx.Err()))
		e.Ambiguous = false
		return notify.Result{}, e
	}
	defer func() { <-s.slots }()
	if err := ctx.Err(); err != nil {
		// A pooled session would not notice: give up before anything is sent.
		e := notify.TransportError(ProviderName, fmt.Errorf("smtp: %w", err))
		e.Ambiguous = false
		return notify.Result{}, e
	}
	for attempt := 0; ; attempt++ {
		sess, reused, err := s.get(ctx, attempt > 0)
		if err != nil {
			// Connect, TLS, EHLO or AUTH failed: nothing was handed over.
			e := notify.TransportError(ProviderName, fmt.Errorf("smtp dial: %w", err))
			e.Ambiguous = false
			return notify.Result{}, e
		}
		sendErr := s.client.SendWithSMTPClient(sess.c, msg)
		if sendErr == nil || msg.IsDelivered() {
			// Delivered: the server answered the end of DATA with 2xx. (An
			// error after that, which WithoutRset rules out, changes nothing
			// for this message; the session is then not reused.)
			sess.sent++
			s.put(sess, sendErr == nil)
			return notify.Result{Provider: ProviderName, MessageID: id}, nil
		}
		if reused && attempt == 0 && notHandedOver(sendErr) && ctx.Err() == nil {
			s.retireStale(sess)
			continue
		}
		s.put(sess, reusable(sendErr) && sess.c.Reset() == nil)
		return notify.Result{}, classify(sendErr)
	}
}

// get returns an idle session (reused = true), or dials a new one when
// there is none or fresh is set. The caller holds a slot, so at most
// MaxConnections sessions are open.
func (s *Sender) get(ctx context.Context, fresh bool) (sess *session, reused bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, errors.New("sender closed")
	}
	s.expireLocked(time.Now())
	if !fresh && len(s.idle) > 0 {
		sess = s.idle[len(s.idle)-1]
		s.idle[len(s.idle)-1] = nil
		s.idle = s.idle[:len(s.idle)-1]
	}
	s.mu.Unlock()
	if sess != nil {
		return sess, true, nil
	}
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, false, err
	}
	return &session{c: c}, false, nil
}

// put returns a session to the pool when ok and it may take more messages,
// and closes it otherwise.
func (s *Sender) put(sess *session, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || s.closed || sess.sent >= s.cfg.MaxMessagesPerConnection {
		s.retireLocked(sess)
		return
	}
	sess.lastUsed = time.Now()
	s.idle = append(s.idle, sess)
	if s.reaper == nil {
		s.reaper = time.AfterFunc(s.cfg.IdleTimeout, s.reap)
	}
}

// reap closes the sessions idle for IdleTimeout and re-arms itself for the
// next one to expire, so that idle sessions are not held open on the relay.
func (s *Sender) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reaper = nil
	if s.closed {
		return
	}
	now := time.Now()
	s.expireLocked(now)
	if len(s.idle) > 0 {
		s.reaper = time.AfterFunc(s.cfg.IdleTimeout-now.Sub(s.idle[0].lastUsed), s.reap)
	}
}

// expireLocked closes the sessions idle for IdleTimeout at now (the
// oldest are first).
func (s *Sender) expireLocked(now time.Time) {
	n := 0
	for n < len(s.idle) && now.Sub(s.idle[n].lastUsed) >= s.cfg.IdleTimeout {
		s.retireLocked(s.idle[n])
		s.idle[n] = nil
		n++
	}
	s.idle = s.idle[n:]
}

// retireStale closes a reused session the server had dropped, and with it
// every idle session that has been unused at least as long (after a pause,
// such as a frozen Lambda environment, they are all likely dead).
func (s *Sender) retireStale(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retireLocked(sess)
	n := 0
	for n < len(s.idle) && !s.idle[n].lastUsed.After(sess.lastUsed) {
		s.retireLocked(s.idle[n])
		s.idle[n] = nil
		n++
	}
	s.idle = s.idle[n:]
}

// retireLocked QUITs a session in the background. Until Close, Close waits
// for it; sessions in use when Close was called are retired untracked (a
// WaitGroup must not grow while Close waits on it).
func (s *Sender) retireLocked(sess *session) {
	tracked := !s.closed
	if tracked {
		s.closing.Add(1)
	}
	go func() {
		if tracked {
			defer s.closing.Done()
		}
		// A dead peer must not hold the QUIT for the full send timeout.
		_ = sess.c.UpdateDeadline(min(s.cfg.Timeout, 2*time.Second))
		if err := sess.c.Quit(); err != nil {
			_ = sess.c.Close()
		}
	}()
}

// Close closes every idle session and makes sessions in use close when
// their send ends; later sends fail. It waits for the QUITs to finish.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.reaper != nil {
		s.reaper.Stop()
		s.reaper = nil
	}
	for _, sess := range s.idle {
		s.retireLocked(sess)
	}
	s.idle = nil
	s.closed = true
	s.mu.Unlock()
	s.closing.Wait()
	return nil
}

// notHandedOver reports whether a send failed because the session broke
// before the message content was sent (no SMTP reply, or 421 "closing
// channel", to the connection check, MAIL FROM, RCPT TO or DATA command).
func notHandedOver(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case mail.ErrConnCheck, mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData:
		code := se.ErrorCode()
		return code == 0 || code == 421
	}
	return false
}

// reusable reports whether the server rejected the message with a reply
// that leaves the session open (any 4xx/5xx but 421 to MAIL FROM, RCPT TO,
// DATA or the end of DATA), or the message was refused before any command.
func reusable(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return true
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
		code := se.ErrorCode()
		return code >= 400 && code < 600 && code != 421
	}
	return false
}

// build assembles the MIME message.
func (s *Sender) build(m notify.Message) (*mail.Msg, string, error) {
	msg := mail.NewMsg()
	from := text.FirstNonEmpty(m.From, s.cfg.From)
	name := text.FirstNonEmpty(m.FromName, s.cfg.FromName)
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
