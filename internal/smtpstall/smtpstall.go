// Package smtpstall is test support: a real TCP SMTP server that answers
// normally up to a chosen stage of the session and then keeps reading
// without ever answering, like a relay that hangs. STARTTLS, implicit TLS
// and AUTH PLAIN/LOGIN (any credentials) are offered as configured. It is
// imported by tests only.
package smtpstall

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Stage is the point of a session where the server stops answering.
type Stage string

// Stages, in session order. EndOfData stalls after the whole content was
// received, before the reply to the final "." (the message may have been
// handed over); every earlier stage stalls before anything was.
const (
	None      Stage = ""
	Greeting  Stage = "greeting"
	EHLO      Stage = "EHLO"
	STARTTLS  Stage = "STARTTLS"
	AUTH      Stage = "AUTH"
	MAIL      Stage = "MAIL FROM"
	RCPT      Stage = "RCPT TO"
	DATA      Stage = "DATA"
	Content   Stage = "content" // after "354": stops reading, so a large content fills the buffers
	EndOfData Stage = "end of DATA"
)

// Stages lists the stages a session can stall at by not answering, in
// order (Content, which stops reading, is apart).
var Stages = []Stage{Greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, EndOfData}

// Config configures a Server.
type Config struct {
	// TLS, when set, is offered as STARTTLS, or from the first byte when
	// Implicit is set.
	TLS      *tls.Config
	Implicit bool
	// Auth offers AUTH PLAIN and LOGIN and accepts any credentials.
	Auth bool
}

// Server is the stalling SMTP server.
type Server struct {
	cfg Config
	ln  net.Listener

	mu        sync.Mutex
	stall     Stage
	conns     map[net.Conn]struct{}
	accepted  int      // connections
	stalled   int      // sessions that stopped answering
	received  int      // contents received in full (delivered or stalled at EndOfData)
	delivered [][]byte // contents answered 250
	authMechs []string // AUTH mechanisms used, in order
	closed    bool
	done      chan struct{} // closed by Close
}

// Start starts a Server on 127.0.0.1; it is closed when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Server{cfg: cfg, ln: ln, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Port is the server's TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// StallAt makes sessions stop answering at stage from now on (None: answer
// everything). It applies to open sessions too: a pooled session that
// delivered a message stalls at MAIL of the next one after StallAt(MAIL).
func (s *Server) StallAt(stage Stage) {
	s.mu.Lock()
	s.stall = stage
	s.mu.Unlock()
}

// Accepted is the number of connections accepted.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Stalled is the number of sessions that stopped answering.
func (s *Server) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Received is the number of message contents received in full, whether
// answered or not.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Delivered returns the contents answered "250", in order.
func (s *Server) Delivered() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.delivered...)
}

// AuthMechanisms returns the AUTH mechanisms clients used, in order.
func (s *Server) AuthMechanisms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authMechs...)
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(64 << 10) // a content that is not read fills it soon
		}
		s.accepted++
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.session(c)
		}()
	}
}

// stallsAt reports whether the session is to stop answering at stage.
func (s *Server) stallsAt(stage Stage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != stage {
		return false
	}
	s.stalled++
	return true
}

// session speaks SMTP on c until the client quits or a stall. Stalling is
// reading and discarding until the connection closes.
//
// Long: the SMTP stand-in's command loop, one case per SMTP verb
func (s *Server) session(raw net.Conn) {
	var c net.Conn = raw
	if s.cfg.Implicit {
		c = tls.Server(raw, s.cfg.TLS)
	}
	if s.stallsAt(Greeting) {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	r := bufio.NewReader(c)
	reply := func(lines ...string) bool {
		_, err := io.WriteString(c, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	stall := func() { _, _ = io.Copy(io.Discard, r) }
	secure := s.cfg.Implicit
	if !reply("220 localhost ESMTP ready") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if stage := stageOf(verb); stage != None && s.stallsAt(stage) {
			stall()
			return
		}
		var ok bool
		switch verb {
		case "EHLO", "HELO":
			ext := []string{"250-localhost", "250-8BITMIME", "250-ENHANCEDSTATUSCODES"}
			if s.cfg.TLS != nil && !secure {
				ext = append(ext, "250-STARTTLS")
			}
			if s.cfg.Auth {
				ext = append(ext, "250-AUTH PLAIN LOGIN")
			}
			ext = append(ext, "250 SIZE 10485760")
			ok = reply(ext...)
		case "STARTTLS":
			if s.cfg.TLS == nil || secure {
				ok = reply("502 5.5.1 not available")
				break
			}
			if !reply("220 2.0.0 go ahead") {
				return
			}
			c = tls.Server(raw, s.cfg.TLS)
			r = bufio.NewReader(c)
			secure, ok = true, true
		case "AUTH":
			ok = s.auth(arg, r, reply)
		case "MAIL", "RCPT", "RSET", "NOOP":
			ok = reply("250 2.0.0 ok")
		case "DATA":
			if !reply("354 go ahead") {
				return
			}
			if s.stallsAt(Content) {
				<-s.done // read nothing more until the server closes
				return
			}
			data, err := readData(r)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.received++
			s.mu.Unlock()
			if s.stallsAt(EndOfData) {
				stall()
				return
			}
			s.mu.Lock()
			s.delivered = append(s.delivered, data)
			s.mu.Unlock()
			ok = reply("250 2.0.0 queued")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			ok = reply("500 5.5.2 unknown command")
		}
		if !ok {
			return
		}
	}
}

// stageOf is the stage a command starts.
func stageOf(verb string) Stage {
	switch verb {
	case "EHLO", "HELO":
		return EHLO
	case "STARTTLS":
		return STARTTLS
	case "AUTH":
		return AUTH
	case "MAIL":
		return MAIL
	case "RCPT":
		return RCPT
	case "DATA":
		return DATA
	}
	return None
}

// auth runs AUTH PLAIN or LOGIN, accepting any credentials.
func (s *Server) auth(arg string, r *bufio.Reader, reply func(...string) bool) bool {
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	next := func(challenge string) bool {
		if !reply("334 " + challenge) {
			return false
		}
		_, err := r.ReadString('\n')
		return err == nil
	}
	switch mech {
	case "PLAIN":
		if initial == "" && !next("") {
			return false
		}
	case "LOGIN":
		if initial == "" && !next("VXNlcm5hbWU6") {
			return false
		}
		if !next("UGFzc3dvcmQ6") {
			return false
		}
	default:
		return reply("504 5.5.4 unrecognised mechanism")
	}
	s.mu.Lock()
	s.authMechs = append(s.authMechs, mech)
	s.mu.Unlock()
	return reply("235 2.7.0 authenticated")
}

// readData reads a message content up to the line ".", undoing the dot
// stuffing.
func readData(r *bufio.Reader) ([]byte, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" || line == ".\n" {
			return []byte(b.String()), nil
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}
