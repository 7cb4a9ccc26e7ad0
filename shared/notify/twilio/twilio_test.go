package twilio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/twilio"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "tok0123456789"
)

// fakeTwilio is a small stand-in for the Messages resource.
type fakeTwilio struct {
	mu      sync.Mutex
	paths   []string
	forms   []url.Values
	headers []http.Header
	auth    [][2]string
	status  int
	body    string
	retry   string
}

func (f *fakeTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	u, p, _ := r.BasicAuth()
	f.auth = append(f.auth, [2]string{u, p})
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.forms = append(f.forms, r.PostForm)
	f.headers = append(f.headers, r.Header.Clone())
	if f.retry != "" {
		w.Header().Set("Retry-After", f.retry)
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status == 0 {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid":"SM00000000000000000000000000000001","status":"queued","to":"+15551234567"}`))
		return
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

func newSender(t *testing.T, f *fakeTwilio, suffix string) *twilio.Sender {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: srv.URL + suffix, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return s
}

func sms() notify.Message {
	return notify.Message{Channel: notify.ChannelSMS, To: "+15551234567", Text: "Acme: invoice due. Reply STOP to opt out.", IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms"}
}

func TestSendWireFormat(t *testing.T) {
	f := &fakeTwilio{}
	s := newSender(t, f, "")
	assert.Equal(t, "twilio", s.Name())
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, notify.Result{Provider: "twilio", MessageID: "SM00000000000000000000000000000001"}, res)
	require.Len(t, f.paths, 1)
	assert.Equal(t, "POST /2010-04-01/Accounts/"+sid+"/Messages.json", f.paths[0])
	assert.Equal(t, [2]string{sid, token}, f.auth[0])
	assert.Equal(t, "+15551234567", f.forms[0].Get("To"))
	assert.Equal(t, "+15550001111", f.forms[0].Get("From"))
	assert.Equal(t, "Acme: invoice due. Reply STOP to opt out.", f.forms[0].Get("Body"))
	assert.Equal(t, "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms", f.headers[0].Get("I-Twilio-Idempotency-Token"))

	// A base URL with a path prefix (a proxy or local sink) is honoured.
	f2 := &fakeTwilio{}
	s2 := newSender(t, f2, "/twilio")
	m := sms()
	m.From = "+15550002222"
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, "POST /twilio/2010-04-01/Accounts/"+sid+"/Messages.json", f2.paths[0])
	assert.Equal(t, "+15550002222", f2.forms[0].Get("From"))

	// A messaging service SID as sender goes in MessagingServiceSid.
	m.From = "MG0123456789abcdef0123456789abcdef"
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, "MG0123456789abcdef0123456789abcdef", f2.forms[1].Get("MessagingServiceSid"))
	assert.Empty(t, f2.forms[1].Get("From"))
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		code      string
		retryable bool
		after     int
	}{
		{"invalid number", 400, `{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","status":400}`, notify.CodeInvalidRecipient, false, 0},
		{"not mobile", 400, `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`, notify.CodeInvalidRecipient, false, 0},
		{"unsubscribed", 400, `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`, notify.CodeRejected, false, 0},
		{"bad from", 400, `{"code":21606,"message":"The From phone number is not a valid, SMS-capable inbound phone number","status":400}`, notify.CodeRejected, false, 0},
		{"auth", 401, `{"code":20003,"message":"Authenticate","status":401}`, notify.CodeRejected, false, 0},
		{"rate limited", 429, `{"code":20429,"message":"Too Many Requests","status":429}`, notify.CodeRateLimited, true, 5},
		{"server error json", 500, `{"code":20500,"message":"Internal Server Error","status":500}`, notify.CodeUnavailable, true, 5},
		{"gateway html", 503, `<html>Service Unavailable</html>`, notify.CodeUnavailable, true, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTwilio{status: tc.status, body: tc.body, retry: "5"}
			s := newSender(t, f, "")
			_, err := s.Send(context.Background(), sms())
			var ne *notify.Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tc.code, ne.Code)
			assert.Equal(t, tc.retryable, ne.Retryable)
			assert.Equal(t, tc.status, ne.StatusCode)
			assert.Equal(t, tc.after, ne.RetryAfter)
			assert.NotContains(t, err.Error(), token)
		})
	}
}

func TestTransportAndContext(t *testing.T) {
	s, err := twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: "http://127.0.0.1:1"})
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
	s, err = twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: slow.URL})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Send(ctx, sms())
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsAmbiguous(err), "a timeout waiting for the answer is ambiguous")
	assert.Equal(t, notify.CodeTimeout, ne.Code, "the caller's deadline reaches twilio-go's requests")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestConfig(t *testing.T) {
	_, err := twilio.New(twilio.Config{AccountSID: sid})
	assert.Error(t, err)
	_, err = twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, APIBase: "not a url"})
	assert.Error(t, err)
	s, err := twilio.New(twilio.Config{AccountSID: sid, AuthToken: token})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	assert.False(t, notify.IsRetryable(err), "no sender number is permanent")
}
