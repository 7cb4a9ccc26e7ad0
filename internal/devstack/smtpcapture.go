package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Email is one message received by the SMTP capture server or read from
// Mailpit: the envelope and the parsed MIME message.
type Email struct {
	EnvelopeFrom string   // MAIL FROM
	EnvelopeTo   []string // RCPT TO, in order
	From         string   // From: header address
	FromName     string   // From: header display name
	To           []string // To: header addresses
	ReplyTo      string   // Reply-To: header address
	Subject      string   // decoded Subject
	MessageID    string   // Message-ID header
	Text         string   // text/plain part, decoded
	HTML         string   // text/html part, decoded
	Headers      mail.Header
	ReceivedAt   time.Time
}

// SMTPCapture is an in-process SMTP server (go-smtp) that records every
// message it accepts. It accepts any AUTH PLAIN credentials and plain
// connections (SMTP_TLS=none).
type SMTPCapture struct {
	srv   *smtp.Server
	ln    net.Listener
	mu    sync.Mutex
	msgs  []Email
	fail  []string // SMTP replies to give the next messages, e.g. "550"
	delay time.Duration
	done  chan struct{}
}

// StartSMTPCapture listens on 127.0.0.1:port (0 = a free port).
func StartSMTPCapture(port int) (*SMTPCapture, error) {
	ln, err := listen(port)
	if err != nil {
		return nil, fmt.Errorf("smtp capture: %w", err)
	}
	c := &SMTPCapture{ln: ln, done: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &captureSession{c: c}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	c.srv = srv
	go func() {
		_ = srv.Serve(ln)
		close(c.done)
	}()
	return c, nil
}

// Addr is host:port of the server.
func (c *SMTPCapture) Addr() string { return c.ln.Addr().String() }

// Port is the server's TCP port.
func (c *SMTPCapture) Port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// Messages returns a copy of every accepted message, in arrival order.
func (c *SMTPCapture) Messages() []Email {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Email(nil), c.msgs...)
}

// Count is the number of accepted messages.
func (c *SMTPCapture) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Reset forgets every accepted message.
func (c *SMTPCapture) Reset() {
	c.mu.Lock()
	c.msgs = nil
	c.mu.Unlock()
}

// FailNext makes the next messages be refused at DATA with these SMTP codes
// ("450" transient, "550" permanent), one per message.
func (c *SMTPCapture) FailNext(codes ...string) {
	c.mu.Lock()
	c.fail = append(c.fail, codes...)
	c.mu.Unlock()
}

// SetDelay makes the server wait d before accepting each message (a slow
// relay), e.g. to kill a function in the middle of a batch.
func (c *SMTPCapture) SetDelay(d time.Duration) {
	c.mu.Lock()
	c.delay = d
	c.mu.Unlock()
}

// Close stops the server.
func (c *SMTPCapture) Close(ctx context.Context) error {
	err := c.srv.Shutdown(ctx)
	if err != nil {
		_ = c.srv.Close()
	}
	// A Close right after Start may come before Serve has registered the
	// listener with the server, which then does not close it: close it here,
	// or Serve waits for a connection forever.
	_ = c.ln.Close()
	<-c.done
	return nil
}

type captureSession struct {
	c    *SMTPCapture
	from string
	to   []string
}

func (s *captureSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *captureSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error { return nil }), nil
}

func (s *captureSession) Reset()        { s.from, s.to = "", nil }
func (s *captureSession) Logout() error { return nil }

func (s *captureSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *captureSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *captureSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.c.mu.Lock()
	if d := s.c.delay; d > 0 {
		s.c.mu.Unlock()
		time.Sleep(d)
		s.c.mu.Lock()
	}
	if len(s.c.fail) > 0 {
		code := s.c.fail[0]
		s.c.fail = s.c.fail[1:]
		s.c.mu.Unlock()
		if strings.HasPrefix(code, "4") {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "injected transient failure"}
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "injected permanent failure"}
	}
	s.c.mu.Unlock()
	e, err := ParseEmail(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable message"}
	}
	e.EnvelopeFrom = s.from
	e.EnvelopeTo = append([]string(nil), s.to...)
	e.ReceivedAt = time.Now()
	s.c.mu.Lock()
	s.c.msgs = append(s.c.msgs, e)
	s.c.mu.Unlock()
	return nil
}

// ParseEmail parses a raw RFC 5322 message: headers, and the first
// text/plain and text/html parts (multipart and transfer encodings decoded).
func ParseEmail(raw []byte) (Email, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Email{}, fmt.Errorf("parse email: %w", err)
	}
	dec := new(mime.WordDecoder)
	e := Email{Headers: m.Header, MessageID: m.Header.Get("Message-Id")}
	if subj, err := dec.DecodeHeader(m.Header.Get("Subject")); err == nil {
		e.Subject = subj
	} else {
		e.Subject = m.Header.Get("Subject")
	}
	if a, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
		e.From, e.FromName = a.Address, a.Name
	}
	if l, err := m.Header.AddressList("To"); err == nil {
		for _, a := range l {
			e.To = append(e.To, a.Address)
		}
	}
	if a, err := mail.ParseAddress(m.Header.Get("Reply-To")); err == nil {
		e.ReplyTo = a.Address
	}
	if err := walkPart(&e, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body); err != nil {
		return Email{}, err
	}
	return e, nil
}

func walkPart(e *Email, ctype, cte string, body io.Reader) error {
	if ctype == "" {
		ctype = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("parse email: content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("parse email: multipart: %w", err)
			}
			if err := walkPart(e, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("parse email: %s part: %w", mt, err)
	}
	switch mt {
	case "text/plain":
		if e.Text == "" {
			e.Text = string(b)
		}
	case "text/html":
		if e.HTML == "" {
			e.HTML = string(b)
		}
	}
	return nil
}

// newlineStripper drops CR and LF so base64 bodies split in lines decode.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
