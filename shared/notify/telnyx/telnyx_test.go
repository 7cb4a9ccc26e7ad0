package telnyx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
)

// fakeTelnyx is a small stand-in for POST /v2/messages.
type fakeTelnyx struct {
	mu      sync.Mutex
	bodies  []map[string]any
	headers []http.Header
	paths   []string
	status  int
	answer  string
	retry   string
}

func (f *fakeTelnyx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := io.ReadAll(r.Body)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		http.Error(w, `{"errors":[{"code":"10015","title":"Bad Request"}]}`, 400)
		return
	}
	f.bodies = append(f.bodies, m)
	f.headers = append(f.headers, r.Header.Clone())
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	if f.retry != "" {
		w.Header().Set("Retry-After", f.retry)
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status == 0 {
		_, _ = w.Write([]byte(`{"data":{"id":"40317f5c-5e4f-4d4c-8c43-5b2a3f7d6e11","record_type":"message","to":[{"phone_number":"+15551234567","status":"queued"}]}}`))
		return
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.answer))
}

func newSender(t *testing.T, f http.Handler, profile string) *telnyx.Sender {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := telnyx.New(telnyx.Config{APIKey: "KEYabc", MessagingProfileID: profile, From: "+15550001111", APIBase: srv.URL + "/", HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return s
}

func sms() notify.Message {
	return notify.Message{Channel: notify.ChannelSMS, To: "+15551234567", Text: "Acme: reminder. Reply STOP to opt out.", IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms"}
}

func TestSendWireFormat(t *testing.T) {
	f := &fakeTelnyx{}
	s := newSender(t, f, "prof-1")
	assert.Equal(t, "telnyx", s.Name())
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, notify.Result{Provider: "telnyx", MessageID: "40317f5c-5e4f-4d4c-8c43-5b2a3f7d6e11"}, res)
	require.Len(t, f.bodies, 1)
	assert.Equal(t, "POST /v2/messages", f.paths[0])
	assert.Equal(t, "Bearer KEYabc", f.headers[0].Get("Authorization"))
	assert.Equal(t, "application/json", f.headers[0].Get("Content-Type"))
	assert.Equal(t, "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms", f.headers[0].Get("Idempotency-Key"))
	assert.Equal(t, map[string]any{
		"from": "+15550001111", "to": "+15551234567", "text": "Acme: reminder. Reply STOP to opt out.", "messaging_profile_id": "prof-1",
	}, f.bodies[0])

	// Without a profile the field is omitted; a message's own From wins.
	f2 := &fakeTelnyx{}
	s2 := newSender(t, f2, "")
	m := sms()
	m.From = "+15550002222"
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"from": "+15550002222", "to": "+15551234567", "text": m.Text}, f2.bodies[0])
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		answer    string
		code      string
		retryable bool
		after     int
	}{
		{"invalid to", 400, `{"errors":[{"code":"40310","title":"Invalid 'to' address","detail":"The 'to' address should be a single valid number."}]}`, notify.CodeInvalidRecipient, false, 0},
		{"numeric code", 422, `{"errors":[{"code":10016,"title":"Phone number must be in +E.164 format"}]}`, notify.CodeInvalidRecipient, false, 0},
		{"opted out", 400, `{"errors":[{"code":"40300","title":"Blocked due to STOP message"}]}`, notify.CodeRejected, false, 0},
		{"auth", 401, `{"errors":[{"code":"10009","title":"Authentication failed"}]}`, notify.CodeRejected, false, 0},
		{"rate limited", 429, `{"errors":[{"code":"10011","title":"Too many requests"}]}`, notify.CodeRateLimited, true, 9},
		{"rate limit code on 400", 400, `{"errors":[{"code":"40011","title":"Too many requests"}]}`, notify.CodeRateLimited, true, 0},
		{"server error", 503, `upstream down`, notify.CodeUnavailable, true, 9},
		{"unexpected", 500, `{"errors":[{"code":"10007","title":"Unexpected error"}]}`, notify.CodeUnavailable, true, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTelnyx{status: tc.status, answer: tc.answer, retry: "9"}
			s := newSender(t, f, "")
			_, err := s.Send(context.Background(), sms())
			var ne *notify.Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tc.code, ne.Code)
			assert.Equal(t, tc.retryable, ne.Retryable)
			assert.Equal(t, tc.status, ne.StatusCode)
			assert.Equal(t, tc.after, ne.RetryAfter)
			assert.NotContains(t, err.Error(), "KEYabc")
			assert.NotContains(t, err.Error(), "Reply STOP to opt out", "never the message body")
		})
	}
}

func TestTransportAndConfig(t *testing.T) {
	s, err := telnyx.New(telnyx.Config{APIKey: "k", From: "+15550001111", APIBase: "http://127.0.0.1:1"})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeNetwork, ne.Code)
	assert.True(t, ne.Retryable)
	assert.False(t, notify.IsAmbiguous(err), "connection refused: nothing was sent")

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	s, err = telnyx.New(telnyx.Config{APIKey: "k", From: "+15550001111", APIBase: slow.URL})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Send(ctx, sms())
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsAmbiguous(err), "a timeout waiting for the answer is ambiguous")
	assert.Equal(t, notify.CodeTimeout, ne.Code)

	_, err = telnyx.New(telnyx.Config{})
	assert.Error(t, err)
	_, err = telnyx.New(telnyx.Config{APIKey: "k", APIBase: "nope"})
	assert.Error(t, err)
	s, err = telnyx.New(telnyx.Config{APIKey: "k"})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	assert.False(t, notify.IsRetryable(err), "no sender and no profile is permanent")
}

func TestAcceptedButUnreadableIsSuccess(t *testing.T) {
	s := newSender(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte("garbage"))
	}), "")
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, "telnyx", res.Provider)
}
