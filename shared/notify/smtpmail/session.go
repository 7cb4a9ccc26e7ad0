package smtpmail

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// Stages of setting up a session, named in errors.
const (
	stageConnect  = "connect"
	stageTLS      = "TLS handshake"
	stageGreeting = "greeting"
	stageEHLO     = "EHLO"
	stageStartTLS = "STARTTLS"
	stageAuth     = "AUTH"
)

// errNoAuth: the server offers no AUTH mechanism this sender may use.
var errNoAuth = errors.New("no usable AUTH mechanism offered (PLAIN and LOGIN only over TLS)")

// dial opens a new session bound to ctx: connect, implicit TLS, greeting,
// EHLO, STARTTLS and AUTH as configured, each stage ending at ctx's
// deadline and within Config.Timeout. A failure is classified (setupError)
// and leaves nothing open.
func (s *Sender) dial(ctx context.Context) (*session, error) {
	d := net.Dialer{Timeout: s.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, setupError(ctx, stageConnect, err, ctx.Err() != nil)
	}
	bc := &boundConn{Conn: raw}
	bc.bind(ctx)
	_ = bc.SetDeadline(time.Now().Add(s.cfg.Timeout))
	c, stage, err := s.open(ctx, bc)
	if err != nil {
		timedOut := bc.timedOut()
		bc.release()
		_ = bc.Close()
		return nil, setupError(ctx, stage, err, timedOut)
	}
	return &session{c: c, conn: bc}, nil
}

// open speaks the session's opening on conn; on failure it answers the
// stage that failed.
func (s *Sender) open(ctx context.Context, conn *boundConn) (*smtp.Client, string, error) {
	var nc net.Conn = conn
	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, stageTLS, err
		}
		nc = tc
	}
	c, err := smtp.NewClient(nc, s.cfg.Host)
	if err != nil {
		return nil, stageGreeting, err
	}
	if err := c.Hello(s.helo); err != nil {
		return nil, stageEHLO, err
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return nil, stageStartTLS, errors.New("not offered by the server (required)")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return nil, stageStartTLS, err
		}
	}
	if s.cfg.Username == "" {
		return c, "", nil
	}
	a, err := s.auth(c)
	if err == nil {
		err = c.Auth(a)
	}
	if err != nil {
		return nil, stageAuth, err
	}
	return c, "", nil
}

// auth picks the first mechanism of SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS),
// CRAM-MD5, PLAIN and LOGIN that the server offers; the -PLUS variants,
// PLAIN and LOGIN only on a TLS connection (implicit or after STARTTLS):
// never a password in clear text.
func (s *Sender) auth(c *smtp.Client) (smtp.Auth, error) {
	ok, offered := c.Extension("AUTH")
	if !ok {
		return nil, errNoAuth
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	state, err := c.GetTLSConnectionState()
	encrypted := err == nil && state.HandshakeComplete
	u, p := s.cfg.Username, s.cfg.Password
	for _, m := range []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"} {
		if !slices.Contains(mechs, m) {
			continue
		}
		switch {
		case m == "SCRAM-SHA-256":
			return smtp.ScramSHA256Auth(u, p), nil
		case m == "SCRAM-SHA-1":
			return smtp.ScramSHA1Auth(u, p), nil
		case m == "CRAM-MD5":
			return smtp.CRAMMD5Auth(u, p), nil
		case !encrypted:
		case m == "SCRAM-SHA-256-PLUS":
			return smtp.ScramSHA256PlusAuth(u, p, state), nil
		case m == "SCRAM-SHA-1-PLUS":
			return smtp.ScramSHA1PlusAuth(u, p, state), nil
		case m == "PLAIN":
			return smtp.PlainAuth("", u, p, s.cfg.Host, false), nil
		case m == "LOGIN":
			return smtp.LoginAuth(u, p, s.cfg.Host, false), nil
		}
	}
	return nil, errNoAuth
}
