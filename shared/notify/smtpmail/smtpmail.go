// Package smtpmail sends email through any SMTP relay (SES, Mailgun SMTP,
// Mailpit locally): STARTTLS, implicit TLS or none, AUTH when a username is
// configured (PLAIN and LOGIN only over TLS), multipart/alternative text +
// HTML, and a Message-ID derived from the delivery's idempotency key. The
// messages carry no header of the software (no X-Mailer, User-Agent or
// internal id).
//
// The session (connect, TLS, greeting, EHLO, STARTTLS, AUTH) is set up here
// and the messages are written by wneessen/go-mail, which takes no context:
// every connection is a boundConn, so that each stage of a send, on a new
// or a pooled session, ends at the send's context deadline (or at once when
// it is cancelled), besides Config.Timeout per stage. A send returns by its
// deadline whatever the relay does; a stall before the content was written
// is a retryable timeout (nothing was handed over), one while waiting for
// the reply to the end of DATA is ambiguous.
//
// Error texts name the stage, the SMTP code and the server's reply with
// addresses and numbers masked (shared/redact): never a recipient.
package smtpmail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
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
	HELO     string // optional EHLO name (default: the host name)
	// Timeout bounds each stage (setting up the session; each message),
	// besides the send's context deadline (0 = 30 s).
	Timeout time.Duration
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
	addr   string      // host:port
	helo   string      // EHLO name
	tls    *tls.Config // for STARTTLS and implicit TLS
	client *mail.Client
	slots  chan struct{} // one per session that may be open or in use

	mu      sync.Mutex
	idle    []*session // most recently used last
	closed  bool
	closing sync.WaitGroup // background QUITs
	reaper  *time.Timer    // closes idle sessions after IdleTimeout; nil when none is armed
}

var _ notify.Sender = (*Sender)(nil)

// session is one open SMTP connection.
type session struct {
	c        *smtp.Client
	conn     *boundConn // under c (and under its TLS, if any)
	sent     int        // messages accepted on it
	lastUsed time.Time  // when it was last returned to the pool
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
	defaultPort, ok := map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[cfg.TLS]
	if !ok {
		return nil, fmt.Errorf("smtpmail: unknown TLS mode %q (want starttls, tls or none)", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	helo := cfg.HELO
	if helo == "" {
		helo, _ = os.Hostname()
	}
	if helo == "" {
		helo = "localhost"
	}
	// The session is set up here (dial); go-mail only writes messages on
	// it. No NOOP before and no RSET after each message: a reused session
	// that went stale fails at MAIL FROM, before anything was handed over,
	// and is then replaced (see Send); after the reply to the end of DATA
	// the transaction is over (RFC 5321 4.1.1.4), so RSET would only cost a
	// round trip.
	c, err := mail.NewClient(cfg.Host, mail.WithTimeout(cfg.Timeout), mail.WithoutNoop(), mail.WithoutRset())
	if err != nil {
		return nil, fmt.Errorf("smtpmail: client: %w", err)
	}
	return &Sender{cfg: cfg, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), helo: helo, tls: tc,
		client: c, slots: make(chan struct{}, cfg.MaxConnections)}, nil
}

// Name returns "smtp".
func (s *Sender) Name() string { return ProviderName }

// Send delivers one email. The Result's MessageID is the Message-ID header
// (without angle brackets).
//
// It waits for one of Config.MaxConnections slots, then sends on an idle
// pooled session or on a new one, every stage bounded by ctx. When a reused
// session fails before the message was handed over (the server closed it
// while idle: MAIL FROM, RCPT TO or DATA gets no reply, or 421), the
// session is dropped and the message is sent once more on a new
// connection: nothing can have been delivered. A stall (ctx's deadline or
// Config.Timeout) is not retried here. A failure while or after the content
// was written is never retried here (Ambiguous). A session that failed is
// closed, except after a clean rejection of one message that a RSET
// confirms left it usable.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	msg, id, err := s.build(m)
	if err != nil {
		return notify.Result{}, err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return notify.Result{}, setupError(ctx, "waiting for a connection", ctx.Err(), true)
	}
	defer func() { <-s.slots }()
	if err := ctx.Err(); err != nil {
		// A pooled session would not notice: give up before anything is sent.
		return notify.Result{}, setupError(ctx, "start", err, true)
	}
	for attempt := 0; ; attempt++ {
		sess, reused, err := s.get(ctx, attempt > 0)
		if err != nil {
			return notify.Result{}, err
		}
		sendErr := s.client.SendWithSMTPClient(sess.c, msg)
		timedOut := sendErr != nil && sess.conn.timedOut()
		switch {
		case sendErr == nil || msg.IsDelivered():
			// Delivered: the server answered the end of DATA with 2xx. (An
			// error after that, which WithoutRset rules out, changes nothing
			// for this message; the session is then not reused.)
			cut := sess.conn.release()
			sess.sent++
			s.put(sess, sendErr == nil && !cut)
			return notify.Result{Provider: ProviderName, MessageID: id}, nil
		case reused && attempt == 0 && !timedOut && ctx.Err() == nil && notHandedOver(sendErr):
			sess.conn.release()
			s.retireStale(sess)
			continue
		}
		keep := !timedOut && reusable(sendErr) && sess.c.Reset() == nil
		cut := sess.conn.release()
		s.put(sess, keep && !cut)
		return notify.Result{}, sendError(ctx, sendErr, timedOut)
	}
}

// get returns an idle session (reused = true), or dials a new one when
// there is none or fresh is set, bound to ctx (the caller releases it). The
// caller holds a slot, so at most MaxConnections sessions are open.
func (s *Sender) get(ctx context.Context, fresh bool) (sess *session, reused bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, notify.Fail(notify.CodeNetwork, &notify.Error{Provider: ProviderName, Err: errors.New("sender closed")})
	}
	s.expireLocked(time.Now())
	if !fresh && len(s.idle) > 0 {
		sess = s.idle[len(s.idle)-1]
		s.idle[len(s.idle)-1] = nil
		s.idle = s.idle[:len(s.idle)-1]
	}
	s.mu.Unlock()
	if sess != nil {
		sess.conn.bind(ctx)
		return sess, true, nil
	}
	sess, err = s.dial(ctx)
	return sess, false, err
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

// build assembles the MIME message. Its headers are From, To, Reply-To,
// Subject, Date, Message-ID, List-Unsubscribe and List-Unsubscribe-Post (a
// non-transactional message) and the MIME ones: no header naming the software
// (go-mail's default X-Mailer / User-Agent is left out) or carrying an
// internal id.
func (s *Sender) build(m notify.Message) (*mail.Msg, string, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	from := text.FirstNonEmpty(m.From, s.cfg.From)
	name := text.FirstNonEmpty(m.FromName, s.cfg.FromName)
	if from == "" {
		return nil, "", notify.Permanent(ProviderName, 0, errors.New("no sender address"))
	}
	if err := msg.FromFormat(name, from); err != nil {
		return nil, "", notify.Permanent(ProviderName, 0, errors.New("sender address: not a valid address"))
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", notify.InvalidRecipient(ProviderName, 0, errors.New("recipient address: not a valid address"))
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, "", notify.Permanent(ProviderName, 0, errors.New("reply-to address: not a valid address"))
		}
	}
	msg.Subject(m.Subject)
	if list, post, ok := notify.ListUnsubscribe(m.UnsubscribeURL); ok {
		msg.SetGenHeaderPreformatted(mail.HeaderListUnsubscribe, list)
		msg.SetGenHeaderPreformatted(mail.HeaderListUnsubscribePost, post)
	}
	msg.SetDate()
	key := m.IdempotencyKey
	if key == "" {
		// No delivery to recognise: a random id, still without the host's
		// name that go-mail would put in it.
		key = rand.Text()
	}
	id := notify.MessageID(key, from)
	msg.SetMessageIDWithValue(id)
	body := m.Text
	if strings.TrimSpace(body) == "" && m.HTML != "" {
		body = render.StripTags(m.HTML)
	}
	msg.SetBodyString(mail.TypeTextPlain, body)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, id, nil
}
