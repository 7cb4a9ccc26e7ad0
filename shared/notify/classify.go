package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/redact"
)

// HTTPError classifies a provider's non-2xx HTTP answer: 429 is
// rate_limited and 408 timeout (retryable, with RetryAfter from the
// Retry-After header), 5xx provider_unavailable (retryable), 401/403
// provider_auth (retryable: credentials or sender configuration, an
// operator's fix), any other status provider_rejected (permanent). Providers that can tell an invalid
// recipient from the body use InvalidRecipient instead. err describes the
// answer (never the message body).
func HTTPError(provider string, status int, h http.Header, err error) *automation.Error {
	return HTTPFailure(provider, HTTPCode(status), status, h, err)
}

// HTTPCode is the provider code of an HTTP error status (see HTTPError).
func HTTPCode(status int) automation.Code {
	switch {
	case status == http.StatusTooManyRequests:
		return CodeRateLimited
	case status == http.StatusRequestTimeout:
		return CodeTimeout
	case status >= 500:
		return CodeUnavailable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return CodeAuth
	}
	return CodeRejected
}

// HTTPFailure is the failure of an HTTP answer with status classified as
// code by the provider (a body that says more than the status): a
// retryable code takes the Retry-After hint of h.
func HTTPFailure(provider string, code automation.Code, status int, h http.Header, err error) *automation.Error {
	if err == nil {
		err = fmt.Errorf("http status %d", status)
	}
	d := &Error{Provider: provider, StatusCode: status, Err: err}
	if Retryable(code) && h != nil {
		d.RetryAfter = RetryAfterSeconds(h.Get("Retry-After"), time.Now())
	}
	return Fail(code, d)
}

// TransportError classifies a failure to get any answer: a timeout
// (context deadline, net.Error.Timeout) is CodeTimeout, anything else
// CodeNetwork; both retryable. Unless the failure is clearly a failure to
// connect (dial, DNS), the send is marked Ambiguous: the provider may have
// accepted the message before the connection failed (which is also why the
// idempotency key is sent along). HTTP providers use
// Exchange.TransportError instead, which knows whether the request was
// written.
func TransportError(provider string, err error) *automation.Error {
	return transportError(provider, err, !IsDialError(err))
}

// transportError is TransportError with the hand-over decided by the caller.
func transportError(provider string, err error, ambiguous bool) *automation.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redact.URL(ue.URL) // a base URL may carry a password
	}
	code := CodeNetwork
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		code = CodeTimeout
	}
	return Fail(code, &Error{Provider: provider, Err: err, Ambiguous: ambiguous})
}

// IsDialError reports whether err is a failure to reach the server at all
// (connection refused, DNS, dial timeout): nothing was sent.
func IsDialError(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "proxyconnect")
}

// InvalidRecipient returns the permanent error for a recipient the provider
// will never deliver to (malformed or unreachable address or number).
func InvalidRecipient(provider string, status int, err error) *automation.Error {
	return Fail(CodeInvalidRecipient, &Error{Provider: provider, StatusCode: status, Err: err})
}

// AuthError returns the retryable provider_auth error for a refusal of the
// account's credentials or sender configuration (a from-number not enabled
// for the account): nothing is wrong with the reminder itself.
func AuthError(provider string, status int, err error) *automation.Error {
	return Fail(CodeAuth, &Error{Provider: provider, StatusCode: status, Err: err})
}

// Permanent returns a permanent provider_rejected error (bad configuration,
// a message the provider refuses, an unsubscribed recipient).
func Permanent(provider string, status int, err error) *automation.Error {
	return Fail(CodeRejected, &Error{Provider: provider, StatusCode: status, Err: err})
}

// maxRetryAfter bounds a provider's hint (the retry is rescheduled in the
// database, so an absurd value must not push a reminder by days).
const maxRetryAfter = 6 * 60 * 60

// RetryAfterSeconds parses a Retry-After header value (delta seconds or an
// HTTP date) relative to now; 0 when absent or unparsable, capped at 6 h.
func RetryAfterSeconds(v string, now time.Time) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	secs := 0
	if n, err := strconv.Atoi(v); err == nil {
		secs = n
	} else if t, err := http.ParseTime(v); err == nil {
		secs = int(t.Sub(now).Round(time.Second) / time.Second)
	}
	return max(0, min(secs, maxRetryAfter))
}

// Exchange records what happened to the requests of a client made by
// InstrumentedClient: the last HTTP answer's status and headers (for SDKs
// that hide them) and whether a request was completely written to a
// connection (net/http/httptrace WroteRequest), which tells a failure
// before the hand-over from one after it.
type Exchange struct {
	Status int
	Header http.Header

	mu      sync.Mutex
	changed chan struct{} // signalled on every write event
	begun   int           // requests given a connection (httptrace GotConn)
	ended   int           // requests whose write ended (WroteRequest)
	written bool          // a request was written completely
}

// handOverWait bounds the wait, after a round trip failed, for the writer
// of a request that had a connection to say whether it finished writing
// (the transport closes the connection on failure, so it says at once).
const handOverWait = 250 * time.Millisecond

func (x *Exchange) gotConn() {
	x.mu.Lock()
	x.begun++
	x.mu.Unlock()
	x.signal()
}

func (x *Exchange) wroteRequest(info httptrace.WroteRequestInfo) {
	x.mu.Lock()
	x.ended++
	x.written = x.written || info.Err == nil
	x.mu.Unlock()
	x.signal()
}

func (x *Exchange) signal() {
	select {
	case x.changed <- struct{}{}:
	default:
	}
}

// HandedOver reports whether a request was completely written to a
// connection: from then on the provider may act on it. When a write is
// still under way (the round trip failed while the transport's writer had
// the request), it waits up to 250 ms for the writer's verdict and
// answers true when none comes (unknown counts as handed over: at most
// once).
func (x *Exchange) HandedOver() bool {
	timer := time.NewTimer(handOverWait)
	defer timer.Stop()
	for {
		x.mu.Lock()
		written, pending := x.written, x.begun > x.ended
		x.mu.Unlock()
		if written || !pending {
			return written
		}
		select {
		case <-x.changed:
		case <-timer.C:
			return true
		}
	}
}

// TransportError classifies a failure of a request made through the
// client x was returned with: when an error answer's status was received
// (its body then failed), the answer's classification (HTTPError);
// otherwise TransportError, Ambiguous only when the request had been
// completely written (HandedOver), never for a dial error.
func (x *Exchange) TransportError(provider string, err error) *automation.Error {
	if x.Status >= 300 {
		return HTTPError(provider, x.Status, x.Header, fmt.Errorf("reading the answer: %w", err))
	}
	return transportError(provider, err, !IsDialError(err) && x.HandedOver())
}

// InstrumentedClient returns a copy of base (nil = http.DefaultClient) whose
// requests carry ctx (for SDKs that take none), are passed to edit when it is
// non-nil (add a header, rewrite the base URL), and are traced into the
// returned Exchange (the last answer's status and headers; whether a
// request was written completely). Make one per send: the Exchange is not
// shared between sends.
func InstrumentedClient(ctx context.Context, base *http.Client, edit func(*http.Request)) (*http.Client, *Exchange) {
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	ex := &Exchange{changed: make(chan struct{}, 1)}
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { ex.gotConn() },
		WroteRequest: ex.wroteRequest,
	}
	c.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(httptrace.WithClientTrace(ctx, trace))
		if edit != nil {
			edit(r)
		}
		resp, err := rt.RoundTrip(r)
		if resp != nil {
			ex.Status, ex.Header = resp.StatusCode, resp.Header.Clone()
		}
		return resp, err
	})
	return &c, ex
}

type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
