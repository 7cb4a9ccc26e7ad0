// Package notifytest is test support for the provider packages of
// shared/notify: a local HTTP stand-in that records every request and
// answers as told, and the assertions on notify.Error classification that
// every provider's tests make. It is imported by tests only.
package notifytest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// RequireError asserts that err is a *notify.Error with want's Code,
// Retryable, StatusCode and RetryAfter, and that its text contains none of
// secrets (keys, tokens, message bodies).
func RequireError(t testing.TB, err error, want notify.Error, secrets ...string) *notify.Error {
	t.Helper()
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, want.Code, ne.Code, "code")
	assert.Equal(t, want.Retryable, ne.Retryable, "retryable")
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
	RequireError(t, err, notify.Error{Code: notify.CodeNetwork, Retryable: true})
	assert.False(t, notify.IsAmbiguous(err), "connection refused: nothing was sent")
}

// RequireTimeout asserts the classification of a deadline reached while
// waiting for the answer: a timeout, ambiguous (the provider may have it).
func RequireTimeout(t testing.TB, err error) {
	t.Helper()
	var ne *notify.Error
	require.True(t, errors.As(err, &ne), "a *notify.Error: %v", err)
	assert.Equal(t, notify.CodeTimeout, ne.Code, "the caller's deadline reaches the request")
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
