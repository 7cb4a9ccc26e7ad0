package notify_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify"
)

func TestHTTPError(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "30")
	cases := []struct {
		status    int
		code      string
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
		assert.Equal(t, tc.retryable, e.Retryable, tc.status)
		assert.Equal(t, tc.retryable, notify.IsRetryable(e), tc.status)
		assert.Equal(t, tc.after, e.RetryAfter, tc.status)
		assert.Equal(t, tc.status, e.StatusCode)
	}
	e := notify.InvalidRecipient("p", 400, errors.New("bad"))
	assert.False(t, notify.IsRetryable(e))
	assert.Equal(t, notify.CodeInvalidRecipient, e.Code)
	assert.False(t, notify.IsRetryable(notify.Permanent("p", 0, errors.New("x"))))
	a := notify.AuthError("p", 400, errors.New("from number not enabled"))
	assert.True(t, notify.IsRetryable(a))
	assert.Equal(t, notify.CodeAuth, a.Code)
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
	assert.True(t, e.Retryable)
	assert.True(t, notify.IsAmbiguous(e), "timed out waiting: the provider may have it")
	_, err = http.Get("http://127.0.0.1:1/")
	require.Error(t, err)
	assert.True(t, notify.IsDialError(err))
	e = notify.TransportError("p", err)
	assert.Equal(t, notify.CodeNetwork, e.Code)
	assert.False(t, e.Ambiguous, "connection refused: nothing was sent")
	assert.False(t, notify.IsAmbiguous(e))
	assert.False(t, notify.IsAmbiguous(errors.New("plain")))
	assert.True(t, notify.TransportError("p", io.ErrUnexpectedEOF).Ambiguous)
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
	e = notify.TransportError("p", context.DeadlineExceeded)
	e.Ambiguous = false // the provider knows nothing was handed over
	assert.False(t, notify.IsAmbiguous(e))
}
