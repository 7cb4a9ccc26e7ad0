package devstack

import (
	"bufio"
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
// connections (SMTP_TLS=none). For fault tests it can stall at a chosen
// stage of the SMTP conversation (Stall) or drop the connection after a
// message's content (DropAfterData), on its own port, so that running
// functions meet the fault and the recovery without a restart.
type SMTPCapture struct {
	srv     *smtp.Server
	ln      net.Listener
	mu      sync.Mutex
	msgs    []Email
	fail    []string // SMTP replies to give the next messages, e.g. "550"
	delay   time.Duration
	stage   SMTPStage
	release chan struct{} // closed when the current stall ends
	held    []net.Conn    // connections stalled before go-smtp saw them
	stalled int           // conversations stalled since start
	drop    int           // messages still to drop after their content
	dropped int           // messages dropped since start
	done    chan struct{}
}

// SMTPStage is where a stalling relay stops answering (SMTPCapture.Stall).
type SMTPStage int

// Stages of the SMTP conversation a relay can stall at.
const (
	StallNone     SMTPStage = iota // answer everything
	StallGreeting                  // accept the TCP connection, never send the 220 greeting
	StallEHLO                      // greet, read EHLO, never answer it
	StallMail                      // answer up to MAIL FROM, never answer it
	StallDataEnd                   // read the whole message content, never answer its final dot
)

// String names the stage.
func (st SMTPStage) String() string {
	switch st {
	case StallNone:
		return "none"
	case StallGreeting:
		return "greeting"
	case StallEHLO:
		return "ehlo"
	case StallMail:
		return "mail"
	case StallDataEnd:
		return "data-end"
	}
	return fmt.Sprintf("SMTPStage(%d)", int(st))
}

// StartSMTPCapture listens on 127.0.0.1:port (0 = a free port).
func StartSMTPCapture(port int) (*SMTPCapture, error) {
	ln, err := listen(port)
	if err != nil {
		return nil, fmt.Errorf("smtp capture: %w", err)
	}
	c := &SMTPCapture{ln: ln, done: make(chan struct{}), release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(conn *smtp.Conn) (smtp.Session, error) {
		return &captureSession{c: c, conn: conn}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	c.srv = srv
	go func() {
		_ = srv.Serve(stallListener{ln, c})
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

// Stall makes the server stop answering at stage from now on: new
// connections at the greeting or EHLO, every connection (pooled sessions
// too) at MAIL FROM or after a message's content. Stall(StallNone) ends the
// stall: the stalled conversations are then closed (a stalled MAIL FROM or
// message gets a 421 first); nothing stalled is recorded.
func (c *SMTPCapture) Stall(stage SMTPStage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stage == c.stage {
		return
	}
	if c.stage != StallNone {
		close(c.release)
		c.release = make(chan struct{})
		for _, conn := range c.held {
			_ = conn.Close()
		}
		c.held = nil
	}
	c.stage = stage
}

// Stalled is the number of conversations stalled since start.
func (c *SMTPCapture) Stalled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stalled
}

// DropAfterData makes the server close the connection, without a reply,
// once it has read the content of each of the next n messages (a relay that
// crashed or lost the connection at the worst moment). Dropped messages are
// not recorded.
func (c *SMTPCapture) DropAfterData(n int) {
	c.mu.Lock()
	c.drop += n
	c.mu.Unlock()
}

// Dropped is the number of messages dropped since start.
func (c *SMTPCapture) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// stallAt reports whether a conversation reaching stage stalls there, and
// the channel closed when the stall ends.
func (c *SMTPCapture) stallAt(stage SMTPStage) (<-chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stage != stage {
		return nil, false
	}
	c.stalled++
	return c.release, true
}

// stallListener hands go-smtp the connections the server answers and holds
// the ones a greeting or EHLO stall keeps.
type stallListener struct {
	net.Listener
	c *SMTPCapture
}

// Accept returns the next connection the server answers.
func (l stallListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := l.c
		c.mu.Lock()
		stage := c.stage
		if stage == StallGreeting || stage == StallEHLO {
			c.held = append(c.held, conn)
			c.stalled++
		}
		c.mu.Unlock()
		switch stage {
		case StallGreeting:
			continue // no greeting; closed when the stall ends
		case StallEHLO:
			go func() {
				// greet, read EHLO, then say nothing until the stall ends
				if _, err := io.WriteString(conn, "220 localhost ESMTP\r\n"); err == nil {
					_, _ = bufio.NewReader(conn).ReadString('\n')
				}
			}()
			continue
		}
		return conn, nil
	}
}

// Close stops the server.
func (c *SMTPCapture) Close(ctx context.Context) error {
	c.Stall(StallNone) // stalled handlers return; held connections close
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
	conn *smtp.Conn
	from string
	to   []string
}

// errStallEnded answers a stalled command once the stall ends (the client
// has normally given up by then).
var errStallEnded = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "stall ended; closing"}

func (s *captureSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *captureSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error { return nil }), nil
}

func (s *captureSession) Reset()        { s.from, s.to = "", nil }
func (s *captureSession) Logout() error { return nil }

func (s *captureSession) Mail(from string, _ *smtp.MailOptions) error {
	if release, ok := s.c.stallAt(StallMail); ok {
		<-release
		return errStallEnded
	}
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
	if release, ok := s.c.stallAt(StallDataEnd); ok {
		<-release
		return errStallEnded
	}
	s.c.mu.Lock()
	if s.c.drop > 0 {
		s.c.drop--
		s.c.dropped++
		s.c.mu.Unlock()
		_ = s.conn.Conn().Close() // the content was read; the reply never comes
		return errStallEnded
	}
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
