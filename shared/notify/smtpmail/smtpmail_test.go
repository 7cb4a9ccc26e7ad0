package smtpmail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/internal/notifytest"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// received is one message accepted by the test server.
type received struct {
	From string
	To   []string
	Data []byte
	User string
}

// backend is a real in-process SMTP server (go-smtp) that stores what it
// receives and rejects chosen recipients with chosen replies.
type backend struct {
	mu      sync.Mutex
	msgs    []received
	reject  map[string]*smtp.SMTPError // by recipient
	user    string
	pass    string
	dataErr *smtp.SMTPError
	// mailErrOnce, when set, answers the next MAIL FROM and is cleared.
	mailErrOnce *smtp.SMTPError
	// delay holds every DATA that long; peakData is the most DATA at once.
	delay            time.Duration
	inData, peakData int
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct {
	b   *backend
	cur received
}

func (s *session) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error {
		if u != s.b.user || p != s.b.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.cur.User = u
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.cur.User == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "auth required"}
	}
	s.b.mu.Lock()
	e := s.b.mailErrOnce
	s.b.mailErrOnce = nil
	s.b.mu.Unlock()
	if e != nil {
		return e
	}
	s.cur.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.b.reject[to]; e != nil {
		return e
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.inData++
	s.b.peakData = max(s.b.peakData, s.b.inData)
	dataErr := s.b.dataErr
	s.b.mu.Unlock()
	time.Sleep(s.b.delay)
	s.b.mu.Lock()
	s.b.inData--
	s.b.mu.Unlock()
	if dataErr != nil {
		return dataErr
	}
	s.cur.Data = b
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{User: s.cur.User} }
func (s *session) Logout() error { return nil }

func startServer(t testing.TB, b *backend, tlsCfg *tls.Config, implicit bool) (string, int) {
	t.Helper()
	host, port, _ := startCountingServer(t, b, tlsCfg, implicit)
	return host, port
}

// startCountingServer starts the test server behind a listener that counts
// TCP connections.
func startCountingServer(t testing.TB, b *backend, tlsCfg *tls.Config, implicit bool) (string, int, *connCounter) {
	t.Helper()
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = tlsCfg
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cc := &connCounter{Listener: tcp}
	var l net.Listener = cc
	if implicit {
		l = tls.NewListener(cc, tlsCfg)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := tcp.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port, cc
}

// connCounter is a listener that counts accepted connections, the ones
// open now and the most open at once, and can drop them all.
type connCounter struct {
	net.Listener
	mu                   sync.Mutex
	accepted, open, peak int
	conns                []net.Conn
}

func (c *connCounter) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accepted++
	c.open++
	c.peak = max(c.peak, c.open)
	c.conns = append(c.conns, conn)
	return &countedConn{Conn: conn, c: c}, nil
}

// stats returns accepted, open and peak.
func (c *connCounter) stats() (int, int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted, c.open, c.peak
}

// dropAll closes every server-side connection, as a relay does with idle ones.
func (c *connCounter) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() {
		cc.c.mu.Lock()
		cc.c.open--
		cc.c.mu.Unlock()
	})
	return cc.Conn.Close()
}

// selfSigned returns a server TLS config for 127.0.0.1 and a client config trusting it.
func selfSigned(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func message() notify.Message {
	return notify.Message{
		Channel: automation.ChannelEmail, To: "ana@client.test", FromName: "Acme HVAC", From: "billing@acme.test",
		ReplyTo: "office@acme.test", Subject: "Invoice INV-1 is past due",
		Text: "Hi Ana,\nplease pay.", HTML: "<p>Hi Ana,</p><p>please <b>pay</b>.</p>",
		IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:0:email",
	}
}

// parts parses a received message and returns its headers and text/HTML parts.
func parts(t *testing.T, data []byte) (mail.Header, string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	require.NoError(t, err)
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mt)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text, html string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p) // quoted-printable is decoded by multipart
		require.NoError(t, err)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	return msg.Header, text, html
}

func TestSendMultipartWithAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	b := &backend{user: "relayuser", pass: "s3cret"}
	host, port := startServer(t, b, serverTLS, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSStartTLS, TLSConfig: clientTLS, Username: "relayuser", Password: "s3cret", Timeout: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, "smtp", s.Name())

	res, err := s.Send(context.Background(), message())
	require.NoError(t, err)
	assert.Equal(t, "smtp", res.Provider)
	assert.Equal(t, notify.MessageID(message().IdempotencyKey, "billing@acme.test"), res.MessageID)

	require.Len(t, b.msgs, 1)
	got := b.msgs[0]
	assert.Equal(t, "relayuser", got.User)
	assert.Equal(t, "billing@acme.test", got.From)
	assert.Equal(t, []string{"ana@client.test"}, got.To)
	h, text, html := parts(t, got.Data)
	assert.Equal(t, "<"+res.MessageID+">", h.Get("Message-ID"))
	assert.Equal(t, "<office@acme.test>", h.Get("Reply-To"))
	from, err := mail.ParseAddress(h.Get("From"))
	require.NoError(t, err)
	assert.Equal(t, &mail.Address{Name: "Acme HVAC", Address: "billing@acme.test"}, from)
	assert.Equal(t, "Invoice INV-1 is past due", h.Get("Subject"))
	assert.NotEmpty(t, h.Get("Date"))
	requireNoInternalHeaders(t, got.Data)
	assert.Equal(t, "Hi Ana,\r\nplease pay.", strings.TrimSpace(text))
	assert.Equal(t, "<p>Hi Ana,</p><p>please <b>pay</b>.</p>", strings.TrimSpace(html))

	// Same idempotency key -> same Message-ID: a receiver can dedupe a re-send.
	res2, err := s.Send(context.Background(), message())
	require.NoError(t, err)
	assert.Equal(t, res.MessageID, res2.MessageID)
}

func TestSendStartTLSAndImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	for _, mode := range []string{smtpmail.TLSStartTLS, smtpmail.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			b := &backend{}
			host, port := startServer(t, b, serverTLS, mode == smtpmail.TLSImplicit)
			s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: mode, TLSConfig: clientTLS, Timeout: 5 * time.Second})
			require.NoError(t, err)
			m := message()
			m.HTML = ""
			m.From, m.FromName = "", ""
			_, err = s.Send(context.Background(), m)
			require.Error(t, err, "no sender at all")
			assert.False(t, notify.IsRetryable(err))

			s, err = smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: mode, TLSConfig: clientTLS, From: "noreply@acme.test", FromName: "Acme", Timeout: 5 * time.Second})
			require.NoError(t, err)
			_, err = s.Send(context.Background(), m)
			require.NoError(t, err)
			require.Len(t, b.msgs, 1)
			assert.Equal(t, "noreply@acme.test", b.msgs[0].From)
			assert.Contains(t, string(b.msgs[0].Data), "Hi Ana,")
		})
	}
}

func TestNoPasswordOverPlainText(t *testing.T) {
	b := &backend{user: "relayuser", pass: "s3cret"}
	host, port := startServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Username: "relayuser", Password: "s3cret", Timeout: 5 * time.Second})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	require.Error(t, err, "PLAIN credentials are never sent unencrypted")
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Empty(t, b.msgs)
}

func TestStartTLSRequired(t *testing.T) {
	host, port := startServer(t, &backend{}, nil, false) // no STARTTLS offered
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, Timeout: 5 * time.Second})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	require.Error(t, err, "never falls back to plain text when STARTTLS is required")
}

func TestErrorClassification(t *testing.T) {
	b := &backend{reject: map[string]*smtp.SMTPError{
		// Servers echo the address; it must not reach the error text.
		"nobody@client.test":  {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<nobody@client.test>: no such mailbox"},
		"busy@client.test":    {Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"},
		"policy@client.test":  {Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay denied for policy@client.test"},
		"slow@client.test":    {Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "rate limited, slow down"},
		"authreq@client.test": {Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"},
	}}
	host, port := startServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second})
	require.NoError(t, err)
	cases := []struct {
		to        string
		code      automation.Code
		retryable bool
		status    int
	}{
		{"nobody@client.test", notify.CodeInvalidRecipient, false, 550},
		{"busy@client.test", notify.CodeUnavailable, true, 451},
		{"policy@client.test", notify.CodeRejected, false, 554},
		{"slow@client.test", notify.CodeRateLimited, true, 450},
		{"authreq@client.test", notify.CodeAuth, true, 530},
		{"not an address", notify.CodeInvalidRecipient, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			m := message()
			m.To = tc.to
			_, err := s.Send(context.Background(), m)
			ne := notifytest.RequireError(t, err, notifytest.Want{Code: tc.code, Retryable: tc.retryable, StatusCode: tc.status}, tc.to, "client.test")
			if tc.status != 0 {
				assert.Contains(t, err.Error(), "RCPT TO: "+strconv.Itoa(tc.status), "the stage and the reply")
			}
			assert.False(t, ne.Ambiguous)
		})
	}
	assert.Empty(t, b.msgs)

	b.dataErr = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	_, err = s.Send(context.Background(), message())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeRejected, automation.ErrorCode(err))
	assert.False(t, notify.IsRetryable(err))
}

func TestDialErrorsAreRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // nothing listens there now
	s, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: port, TLS: smtpmail.TLSNone, Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	notifytest.RequireRefused(t, err)
	var ne *notify.Error

	// A server that accepts but never answers: timeout via the context.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hang.Close()
	go func() {
		c, err := hang.Accept()
		if err == nil {
			time.Sleep(3 * time.Second)
			c.Close()
		}
	}()
	s, err = smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: hang.Addr().(*net.TCPAddr).Port, TLS: smtpmail.TLSNone, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = s.Send(ctx, message())
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsRetryable(err))
	assert.Equal(t, notify.CodeTimeout, automation.ErrorCode(err))
	assert.False(t, ne.Ambiguous, "no greeting: nothing was handed over")
	assert.Contains(t, err.Error(), "greeting")
}

func TestConfigErrors(t *testing.T) {
	_, err := smtpmail.New(smtpmail.Config{})
	assert.Error(t, err)
	_, err = smtpmail.New(smtpmail.Config{Host: "x", TLS: "ssl3"})
	assert.Error(t, err)
	_, err = smtpmail.New(smtpmail.Config{Host: "x", Port: 465, TLS: "ssl3"})
	assert.Error(t, err)
}

func TestHTMLOnlyGetsTextPart(t *testing.T) {
	b := &backend{}
	host, port := startServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone})
	require.NoError(t, err)
	m := message()
	m.Text = ""
	_, err = s.Send(context.Background(), m)
	require.NoError(t, err)
	require.Len(t, b.msgs, 1)
	_, text, html := parts(t, b.msgs[0].Data)
	assert.Equal(t, "Hi Ana,\r\n\r\nplease pay.", strings.TrimSpace(text))
	assert.NotEmpty(t, html)
}

// TestConnectionLostAfterDataIsAmbiguous uses a raw TCP peer (rawPeer) that
// speaks just enough SMTP to take the message and then hangs up without the
// final reply: the server may have queued it, so the error must say so.
func TestConnectionLostAfterDataIsAmbiguous(t *testing.T) {
	port, _ := rawPeer(t, 1)
	s, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: port, TLS: smtpmail.TLSNone, Timeout: 3 * time.Second})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsRetryable(err))
	assert.True(t, notify.IsAmbiguous(err), "%v", err)
}

// requireNoInternalHeaders asserts that a raw message's headers name no
// software and carry no internal id: no X-Mailer, User-Agent or X-Dueflow-*
// header, and the execution's id (the idempotency key's first part)
// nowhere in the header block.
func requireNoInternalHeaders(t *testing.T, raw []byte) {
	t.Helper()
	head, _, found := strings.Cut(string(raw), "\r\n\r\n")
	require.True(t, found, "a header block")
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	require.NoError(t, err)
	for name := range msg.Header {
		assert.NotContains(t, []string{"X-Mailer", "User-Agent"}, name)
		assert.False(t, strings.HasPrefix(strings.ToLower(name), "x-dueflow"), "header %s", name)
	}
	execID, _, _ := strings.Cut(message().IdempotencyKey, ":")
	assert.NotContains(t, head, execID)
	assert.NotContains(t, strings.ToLower(head), "go-mail")
	assert.NotContains(t, strings.ToLower(head), "dueflow")
}

// A non-transactional message's one-click unsubscribe URL becomes the
// List-Unsubscribe and List-Unsubscribe-Post headers (RFC 8058); a URL that
// would break the header is left out, the message still sent.
func TestListUnsubscribeHeaders(t *testing.T) {
	b := &backend{}
	host, port := startServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for _, tc := range []struct{ url, list, post string }{
		{"https://events.acme.test/unsubscribe?t=v1.abc.def", "<https://events.acme.test/unsubscribe?t=v1.abc.def>", "List-Unsubscribe=One-Click"},
		{"", "", ""},
		{"https://evil.test/x>\r\nBcc: victim@x.test", "", ""},
	} {
		m := message()
		m.UnsubscribeURL = tc.url
		_, err := s.Send(context.Background(), m)
		require.NoError(t, err)
		h, _, _ := parts(t, b.msgs[len(b.msgs)-1].Data)
		assert.Equal(t, tc.list, h.Get("List-Unsubscribe"), tc.url)
		assert.Equal(t, tc.post, h.Get("List-Unsubscribe-Post"), tc.url)
		assert.Empty(t, h.Get("Bcc"))
	}
}
