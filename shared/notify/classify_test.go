package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

func TestHTTPError(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "30")
	cases := []struct {
		status    int
		code      automation.Code
		retryable bool
		after     int
	}{
		{429, notify.CodeRateLimited, true, 30},
		{500, notify.CodeUnavailable, true, 30},
		{503, notify.CodeUnavailable, true, 30},
		{408, notify.CodeTimeout, true, 30},
		{400, notify.CodeRejected, false, 0},
		{401, notify.CodeAuth, true, 30},
		{403, notify.CodeAuth, true, 30},
		{404, notify.CodeRejected, false, 0},
	}
	for _, tc := range cases {
		e := notify.HTTPError("p", tc.status, h, nil)
		assert.Equal(t, tc.code, e.Code, tc.status)
		assert.Equal(t, tc.code, automation.ErrorCode(fmt.Errorf("send: %w", e)), "the code through a wrap")
		assert.Equal(t, tc.retryable, notify.IsRetryable(e), tc.status)
		assert.Equal(t, tc.after, notify.RetryAfter(e), tc.status)
		assert.Equal(t, tc.status, detail(t, e).StatusCode)
	}
	e := notify.InvalidRecipient("p", 400, errors.New("bad"))
	assert.False(t, notify.IsRetryable(e))
	assert.Equal(t, notify.CodeInvalidRecipient, e.Code)
	assert.False(t, notify.IsRetryable(notify.Permanent("p", 0, errors.New("x"))))
	a := notify.AuthError("p", 400, errors.New("from number not enabled"))
	assert.True(t, notify.IsRetryable(a))
	assert.Equal(t, notify.CodeAuth, a.Code)
}

// detail returns the provider detail of a failure.
func detail(t *testing.T, err error) *notify.Error {
	t.Helper()
	var d *notify.Error
	require.ErrorAs(t, err, &d)
	return d
}

func TestRetryAfterSeconds(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, 0, notify.RetryAfterSeconds("", now))
	assert.Equal(t, 0, notify.RetryAfterSeconds("soon", now))
	assert.Equal(t, 0, notify.RetryAfterSeconds("-5", now))
	assert.Equal(t, 120, notify.RetryAfterSeconds(" 120 ", now))
	assert.Equal(t, 90, notify.RetryAfterSeconds(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, 6*3600, notify.RetryAfterSeconds("999999", now))
}

func TestTransportError(t *testing.T) {
	assert.Equal(t, notify.CodeTimeout, notify.TransportError("p", context.DeadlineExceeded).Code)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(200 * time.Millisecond) }))
	defer srv.Close()
	_, err := (&http.Client{Timeout: 20 * time.Millisecond}).Get(srv.URL)
	require.Error(t, err)
	e := notify.TransportError("p", err)
	assert.Equal(t, notify.CodeTimeout, e.Code)
	assert.True(t, notify.IsRetryable(e))
	assert.True(t, notify.IsAmbiguous(e), "timed out waiting: the provider may have it")
	_, err = http.Get("http://127.0.0.1:1/")
	require.Error(t, err)
	assert.True(t, notify.IsDialError(err))
	e = notify.TransportError("p", err)
	assert.Equal(t, notify.CodeNetwork, e.Code)
	assert.False(t, notify.IsAmbiguous(e), "connection refused: nothing was sent")
	assert.False(t, notify.IsAmbiguous(errors.New("plain")))
	assert.True(t, notify.IsAmbiguous(notify.TransportError("p", io.ErrUnexpectedEOF)))
}

func TestInstrumentedClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("X-Seen", r.Header.Get("X-Edit"))
		w.WriteHeader(429)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c, ex := notify.InstrumentedClient(ctx, nil, func(r *http.Request) { r.Header.Set("X-Edit", "yes") })
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 429, ex.Status)
	assert.Equal(t, "7", ex.Header.Get("Retry-After"))
	assert.Equal(t, "yes", ex.Header.Get("X-Seen"))
	cancel()
	_, err = c.Get(srv.URL)
	assert.ErrorIs(t, err, context.Canceled, "requests carry the context")
}

// A timeout before anything was handed over (a dial timeout, a 408 answer,
// the wait for an SMTP slot) is not ambiguous: the message was not sent and
// must be retried, not recorded unknown and dropped.
func TestTimeoutBeforeHandOverIsNotAmbiguous(t *testing.T) {
	assert.False(t, notify.IsAmbiguous(notify.HTTPError("p", http.StatusRequestTimeout, nil, nil)), "408 is a definite answer")
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	e := notify.TransportError("p", dial)
	assert.Equal(t, notify.CodeTimeout, e.Code)
	assert.False(t, notify.IsAmbiguous(e), "dial timed out: nothing was sent")
	e = notify.Fail(notify.CodeTimeout, &notify.Error{Provider: "p", Err: context.DeadlineExceeded}) // the provider knows nothing was handed over
	assert.False(t, notify.IsAmbiguous(e))
}

// A provider's text naming the recipient is masked in what is logged and
// stored (Error), and a base URL's password never shows.
func TestErrorTextMasksPersonalData(t *testing.T) {
	e := notify.InvalidRecipient("twilio", 400, errors.New("twilio error 21211: The 'To' number +15005550001 is not a valid phone number."))
	assert.Equal(t, "twilio: invalid_recipient (status 400): twilio error 21211: The 'To' number +1******0001 is not a valid phone number.", e.Error())
	e = notify.Permanent("smtp", 550, errors.New("550 5.1.1 <zelda.quux@wombat-client.test>: Recipient address rejected"))
	assert.Equal(t, "smtp: provider_rejected (status 550): 550 5.1.1 <z***@w***.test>: Recipient address rejected", e.Error())
	_, err := http.Get("http://user:s3cret@127.0.0.1:1/")
	require.Error(t, err)
	e = notify.TransportError("p", err)
	assert.NotContains(t, e.Error(), "s3cret")
	assert.Contains(t, e.Error(), "127.0.0.1:1", "where it failed stays readable")
}

// HandedOver tells a request never written from one written completely,
// whatever the error type: a server that reads nothing of a large body
// (the write never ends) is not handed over; one that read the request
// and closed the connection is.
func TestExchangeHandedOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // reads a little, then closes: the writer fails mid-body
				buf := make([]byte, 1024)
				_, _ = c.Read(buf)
				_ = c.Close()
			}()
		}
	}()
	c, ex := notify.InstrumentedClient(context.Background(), nil, nil)
	_, err = c.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader(strings.Repeat("x", 8<<20)))
	require.Error(t, err)
	assert.False(t, ex.HandedOver(), "the body was cut off: %v", err)
	assert.False(t, notify.IsAmbiguous(ex.TransportError("p", err)))

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
	}))
	defer srv.Close()
	c, ex = notify.InstrumentedClient(context.Background(), nil, nil)
	_, err = c.Post(srv.URL, "text/plain", strings.NewReader("hello"))
	require.Error(t, err)
	assert.True(t, ex.HandedOver())
	e := ex.TransportError("p", err)
	assert.True(t, notify.IsAmbiguous(e), "read and dropped: the provider may have it")
	assert.Equal(t, notify.CodeNetwork, e.Code)
}
