// Package notifytest is test support for the provider packages of
// shared/notify: a local HTTP stand-in that records every request and
// answers as told, and the assertions on notify.Error classification that
// every provider's tests make. It is imported by tests only.
package notifytest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

// Refused is a base URL where nothing listens: a send fails before anything
// was handed over.
const Refused = "http://127.0.0.1:1"

// Answer is what the Server sends back to every request.
type Answer struct {
	Status     int    // 0 = 200
	Body       string // sent as application/json
	RetryAfter string // the Retry-After header, when set
}

// Request is one request the Server received.
type Request struct {
	Method   string
	Path     string
	Header   http.Header
	Body     []byte
	User     string // basic auth, when sent
	Password string
}

// Server is an httptest server standing in for a provider's HTTP API.
type Server struct {
	URL    string
	answer Answer
	mu     sync.Mutex
	reqs   []Request
}

// NewServer starts a Server answering a to every request; it is closed when
// the test ends.
func NewServer(t testing.TB, a Answer) *Server {
	t.Helper()
	s := &Server{answer: a}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u, p, _ := r.BasicAuth()
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, User: u, Password: p})
	s.mu.Unlock()
	if s.answer.RetryAfter != "" {
		w.Header().Set("Retry-After", s.answer.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	if s.answer.Status != 0 {
		w.WriteHeader(s.answer.Status)
	}
	_, _ = io.WriteString(w, s.answer.Body)
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Only returns the single request received, failing the test unless there
// was exactly one.
func (s *Server) Only(t testing.TB) Request {
	t.Helper()
	reqs := s.Requests()
	require.Len(t, reqs, 1, "requests received")
	return reqs[0]
}

// Hanging starts a server that accepts requests and never answers (until the
// request's context ends or the test does) and returns its URL.
func Hanging(t testing.TB) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL
}

// Want is the expected classification of a provider failure.
type Want struct {
	Code       automation.Code
	Retryable  bool
	StatusCode int
	RetryAfter int
}

// RequireError asserts that err is a provider failure (notify.Fail) with
// want's code (automation.ErrorCode), retryability, and a *notify.Error
// detail with want's StatusCode and RetryAfter, and that its text contains
// none of secrets (keys, tokens, message bodies). It returns the detail.
func RequireError(t testing.TB, err error, want Want, secrets ...string) *notify.Error {
	t.Helper()
	var ae *automation.Error
	require.ErrorAs(t, err, &ae)
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, want.Code, automation.ErrorCode(err), "code")
	assert.Equal(t, want.Retryable, notify.IsRetryable(err), "retryable")
	assert.Equal(t, want.StatusCode, ne.StatusCode, "status")
	assert.Equal(t, want.RetryAfter, ne.RetryAfter, "retry after")
	for _, s := range secrets {
		assert.NotContains(t, err.Error(), s)
	}
	return ne
}

// RequireRefused asserts the classification of a connection refused: a
// retryable network error, not ambiguous (nothing was handed over).
func RequireRefused(t testing.TB, err error) {
	t.Helper()
	RequireError(t, err, Want{Code: notify.CodeNetwork, Retryable: true})
	assert.False(t, notify.IsAmbiguous(err), "connection refused: nothing was sent")
}

// RequireTimeout asserts the classification of a deadline reached while
// waiting for the answer: a timeout, ambiguous (the provider may have it).
func RequireTimeout(t testing.TB, err error) {
	t.Helper()
	var ne *notify.Error
	require.True(t, errors.As(err, &ne), "a *notify.Error detail: %v", err)
	assert.Equal(t, notify.CodeTimeout, automation.ErrorCode(err), "the caller's deadline reaches the request")
	assert.True(t, notify.IsAmbiguous(err), "a timeout waiting for the answer is ambiguous")
}

// RequireTransportErrors asserts how a provider classifies transport
// failures. newSender builds its sender on an API base URL. A refused
// connection is a retryable network error that is not ambiguous; a
// deadline (100 ms) reached while waiting for the answer is an ambiguous
// timeout, returned promptly.
func RequireTransportErrors(t testing.TB, newSender func(base string) (notify.Sender, error), m notify.Message) {
	t.Helper()
	s, err := newSender(Refused)
	require.NoError(t, err)
	_, err = s.Send(context.Background(), m)
	RequireRefused(t, err)

	s, err = newSender(Hanging(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Send(ctx, m)
	RequireTimeout(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "the caller's deadline ends the request")
}

// Stage is where a Stalling server stops serving a request.
type Stage int

// The stages of a request a Stalling server can stop at.
const (
	// StallHandshake accepts the connection and never reads or writes:
	// a TLS handshake never completes (use the https base).
	StallHandshake Stage = iota
	// StallAfterHeaders reads the request's headers and never answers.
	StallAfterHeaders
	// StallInBody reads the headers and a little of the body, then reads
	// no more (give the request a body larger than the socket buffers).
	StallInBody
	// StallAnswerBody reads the whole request, sends the status line and
	// headers of its answer and never sends the body.
	StallAnswerBody
	// DropAfterRequest reads the whole request and closes the connection
	// without an answer.
	DropAfterRequest
)

// String names the stage.
func (s Stage) String() string {
	return [...]string{"handshake", "after headers", "in body", "answer body", "drop after request"}[s]
}

// Stalling starts a plain TCP server that serves every connection up to
// stage (for StallAnswerBody, with status and the Retry-After header
// retryAfter when not empty) and holds it open until the test ends. It
// returns the server's base URL: https for StallHandshake, http otherwise.
func Stalling(t testing.TB, stage Stage, status int, retryAfter string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		wg.Wait()
	})
	serve := func(c net.Conn) {
		defer wg.Done()
		defer c.Close()
		go func() { <-done; _ = c.Close() }()
		if tc, ok := c.(*net.TCPConn); ok && stage == StallInBody {
			_ = tc.SetReadBuffer(4096) // no autotuning: the client's writes block
		}
		br := bufio.NewReader(c)
		if stage != StallHandshake {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch stage {
			case StallInBody:
				_, _ = io.CopyN(io.Discard, req.Body, 1024)
			case StallAnswerBody, DropAfterRequest:
				_, _ = io.Copy(io.Discard, req.Body)
			}
			switch stage {
			case DropAfterRequest:
				return
			case StallAnswerBody:
				head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n", status, http.StatusText(status))
				if retryAfter != "" {
					head += "Retry-After: " + retryAfter + "\r\n"
				}
				_, _ = io.WriteString(c, head+"\r\n{")
			}
		}
		<-done
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go serve(c)
		}
	}()
	scheme := "http://"
	if stage == StallHandshake {
		scheme = "https://"
	}
	return scheme + ln.Addr().String()
}

// stallSlack is how long after its deadline a send may return: the
// transport's clean-up and the wait for the writer's verdict on a request
// still being written (notify.Exchange.HandedOver, at most 250 ms), on a
// machine shared by many test runs (a send that ignored its deadline would
// hang until the test's end).
const stallSlack = 2 * time.Second

// RequireStallsBounded asserts, for a provider built by newSender on an API
// base URL, that a send to a server stalling at each Stage returns by the
// caller's deadline (+ stallSlack) and is classified by whether the
// request had been handed over: a stalled TLS handshake or a body the
// server stopped reading is a retryable timeout that is not ambiguous
// (nothing complete reached the provider); a request read and never
// answered is an ambiguous timeout; a connection dropped after the request
// an ambiguous network error; an answer whose body stalls is decided by its
// status (2xx: sent; 503: provider_unavailable and 429: rate_limited, with
// Retry-After, neither ambiguous).
func RequireStallsBounded(t *testing.T, newSender func(base string) (notify.Sender, error), m notify.Message) {
	big := m
	big.Text, big.HTML = strings.Repeat("x", 8<<20), "" // larger than the socket buffers
	cases := []struct {
		stage     Stage
		status    int
		m         notify.Message
		want      Want // Code "" = success
		ambiguous bool
	}{
		{StallHandshake, 0, m, Want{Code: notify.CodeTimeout, Retryable: true}, false},
		{StallAfterHeaders, 0, m, Want{Code: notify.CodeTimeout, Retryable: true}, true},
		{StallInBody, 0, big, Want{Code: notify.CodeTimeout, Retryable: true}, false},
		{StallAnswerBody, http.StatusOK, m, Want{}, false},
		{StallAnswerBody, http.StatusServiceUnavailable, m, Want{Code: notify.CodeUnavailable, Retryable: true, StatusCode: 503, RetryAfter: 7}, false},
		{StallAnswerBody, http.StatusTooManyRequests, m, Want{Code: notify.CodeRateLimited, Retryable: true, StatusCode: 429, RetryAfter: 7}, false},
		{DropAfterRequest, 0, m, Want{Code: notify.CodeNetwork, Retryable: true}, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %d", tc.stage, tc.status), func(t *testing.T) {
			s, err := newSender(Stalling(t, tc.stage, tc.status, "7"))
			require.NoError(t, err)
			const deadline = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err = s.Send(ctx, tc.m)
			took := time.Since(start)
			assert.Less(t, took, deadline+stallSlack, "returned by the deadline")
			if tc.want.Code == "" {
				assert.NoError(t, err, "an accepted answer is a send, even when its body never comes")
				return
			}
			RequireError(t, err, tc.want)
			assert.Equal(t, tc.ambiguous, notify.IsAmbiguous(err), "ambiguous: %v", err)
		})
	}
}
