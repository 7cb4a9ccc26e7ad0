package twilio_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/internal/notifytest"
	"github.com/dueflow/dueflow/shared/notify/twilio"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "tok0123456789"
)

// created is Twilio's answer to a new message on the Messages resource.
var created = notifytest.Answer{Status: http.StatusCreated, Body: `{"sid":"SM00000000000000000000000000000001","status":"queued","to":"+15551234567"}`}

func newSender(t *testing.T, a notifytest.Answer, suffix string) (*twilio.Sender, *notifytest.Server) {
	t.Helper()
	srv := notifytest.NewServer(t, a)
	s, err := twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: srv.URL + suffix, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return s, srv
}

// form decodes a request's urlencoded form.
func form(t *testing.T, r notifytest.Request) url.Values {
	t.Helper()
	assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	v, err := url.ParseQuery(string(r.Body))
	require.NoError(t, err)
	return v
}

func sms() notify.Message {
	return notify.Message{Channel: automation.ChannelSMS, To: "+15551234567", Text: "Acme: invoice due. Reply STOP to opt out.", IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms"}
}

func TestSendWireFormat(t *testing.T) {
	s, srv := newSender(t, created, "")
	assert.Equal(t, "twilio", s.Name())
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, notify.Result{Provider: "twilio", MessageID: "SM00000000000000000000000000000001"}, res)
	r := srv.Only(t)
	assert.Equal(t, "POST /2010-04-01/Accounts/"+sid+"/Messages.json", r.Method+" "+r.Path)
	assert.Equal(t, [2]string{sid, token}, [2]string{r.User, r.Password})
	f := form(t, r)
	assert.Equal(t, "+15551234567", f.Get("To"))
	assert.Equal(t, "+15550001111", f.Get("From"))
	assert.Equal(t, "Acme: invoice due. Reply STOP to opt out.", f.Get("Body"))
	for k, v := range r.Header {
		assert.NotContains(t, v, "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms", "header %s: Twilio documents no idempotency key", k)
	}

	// A base URL with a path prefix (a proxy or local sink) is honoured.
	s2, srv2 := newSender(t, created, "/twilio")
	m := sms()
	m.From = "+15550002222"
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	r = srv2.Only(t)
	assert.Equal(t, "POST /twilio/2010-04-01/Accounts/"+sid+"/Messages.json", r.Method+" "+r.Path)
	assert.Equal(t, "+15550002222", form(t, r).Get("From"))

	// A messaging service SID as sender goes in MessagingServiceSid.
	m.From = "MG0123456789abcdef0123456789abcdef"
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	reqs := srv2.Requests()
	require.Len(t, reqs, 2)
	f = form(t, reqs[1])
	assert.Equal(t, "MG0123456789abcdef0123456789abcdef", f.Get("MessagingServiceSid"))
	assert.Empty(t, f.Get("From"))
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name string
		body string
		want notifytest.Want
	}{
		{"invalid number", `{"code":21211,"message":"The 'To' number +15551234567 is not a valid phone number.","status":400}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeInvalidRecipient}},
		{"not mobile", `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeInvalidRecipient}},
		{"unsubscribed", `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeRejected}},
		{"bad from", `{"code":21606,"message":"The From phone number is not a valid, SMS-capable inbound phone number","status":400}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeAuth, Retryable: true}},
		{"unverified", `{"code":21608,"message":"The number is unverified. Trial accounts cannot send messages to unverified numbers","status":400}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeAuth, Retryable: true}},
		{"auth", `{"code":20003,"message":"Authenticate","status":401}`,
			notifytest.Want{StatusCode: 401, Code: notify.CodeAuth, Retryable: true, RetryAfter: 5}},
		{"rate limited", `{"code":20429,"message":"Too Many Requests for +15551234567","status":429}`,
			notifytest.Want{StatusCode: 429, Code: notify.CodeRateLimited, Retryable: true, RetryAfter: 5}},
		{"server error json", `{"code":20500,"message":"Internal Server Error","status":500}`,
			notifytest.Want{StatusCode: 500, Code: notify.CodeUnavailable, Retryable: true, RetryAfter: 5}},
		{"gateway html", `<html>Service Unavailable</html>`,
			notifytest.Want{StatusCode: 503, Code: notify.CodeUnavailable, Retryable: true, RetryAfter: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSender(t, notifytest.Answer{Status: tc.want.StatusCode, Body: tc.body, RetryAfter: "5"}, "")
			_, err := s.Send(context.Background(), sms())
			notifytest.RequireError(t, err, tc.want, token, "5551234567") // never the recipient
		})
	}
}

func TestTransportAndContext(t *testing.T) {
	notifytest.RequireTransportErrors(t, func(base string) (notify.Sender, error) {
		return twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: base})
	}, sms())
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

	// A token twilio-go refuses to send (not letters and digits): nothing
	// is sent, and it is the operator's to fix (retried), not the reminder's.
	srv := notifytest.NewServer(t, created)
	s, err = twilio.New(twilio.Config{AccountSID: sid, AuthToken: "tok-with-dash", From: "+15550001111", APIBase: srv.URL})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	notifytest.RequireError(t, err, notifytest.Want{Code: notify.CodeAuth, Retryable: true}, "tok-with-dash")
	assert.False(t, notify.IsAmbiguous(err))
	assert.Empty(t, srv.Requests())
}

func TestStallsBoundedByDeadline(t *testing.T) {
	notifytest.RequireStallsBounded(t, func(base string) (notify.Sender, error) {
		return twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: base})
	}, sms())
}

// With a status callback configured, every message asks Twilio to report
// its delivery status there (the provider-events function); without one,
// none is asked for.
func TestStatusCallback(t *testing.T) {
	_, srv := newSender(t, created, "")
	s, err := twilio.New(twilio.Config{AccountSID: sid, AuthToken: token, From: "+15550001111", APIBase: srv.URL,
		StatusCallback: "https://events.example.test/twilio/status", HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, "https://events.example.test/twilio/status", form(t, srv.Only(t)).Get("StatusCallback"))

	plain, srv2 := newSender(t, created, "")
	_, err = plain.Send(context.Background(), sms())
	require.NoError(t, err)
	_, asked := form(t, srv2.Only(t))["StatusCallback"]
	assert.False(t, asked)
}
