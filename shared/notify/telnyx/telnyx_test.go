package telnyx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/internal/notifytest"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
)

// queued is Telnyx's answer to POST /v2/messages.
var queued = notifytest.Answer{Body: `{"data":{"id":"40317f5c-5e4f-4d4c-8c43-5b2a3f7d6e11","record_type":"message","to":[{"phone_number":"+15551234567","status":"queued"}]}}`}

func newSender(t *testing.T, a notifytest.Answer, profile string) (*telnyx.Sender, *notifytest.Server) {
	t.Helper()
	srv := notifytest.NewServer(t, a)
	s, err := telnyx.New(telnyx.Config{APIKey: "KEYabc", MessagingProfileID: profile, From: "+15550001111", APIBase: srv.URL + "/", HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return s, srv
}

// body decodes a request's JSON body (numbers kept as json.Number).
func body(t *testing.T, r notifytest.Request) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m), string(r.Body))
	return m
}

func sms() notify.Message {
	return notify.Message{Channel: automation.ChannelSMS, To: "+15551234567", Text: "Acme: reminder. Reply STOP to opt out.", IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms"}
}

func TestSendWireFormat(t *testing.T) {
	s, srv := newSender(t, queued, "prof-1")
	assert.Equal(t, "telnyx", s.Name())
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, notify.Result{Provider: "telnyx", MessageID: "40317f5c-5e4f-4d4c-8c43-5b2a3f7d6e11"}, res)
	r := srv.Only(t)
	assert.Equal(t, "POST /v2/messages", r.Method+" "+r.Path)
	assert.Equal(t, "Bearer KEYabc", r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "0f8fad5b-d9cb-469f-a165-70867728950e:1:sms", r.Header.Get("Idempotency-Key"))
	assert.Equal(t, map[string]any{
		"from": "+15550001111", "to": "+15551234567", "text": "Acme: reminder. Reply STOP to opt out.", "messaging_profile_id": "prof-1",
	}, body(t, r))

	// Without a profile the field is omitted; a message's own From wins.
	s2, srv2 := newSender(t, queued, "")
	m := sms()
	m.From = "+15550002222"
	m.IdempotencyKey = "key with spaces/and slashes" // not the documented form: not sent
	_, err = s2.Send(context.Background(), m)
	require.NoError(t, err)
	r = srv2.Only(t)
	assert.Equal(t, map[string]any{"from": "+15550002222", "to": "+15551234567", "text": m.Text}, body(t, r))
	assert.Empty(t, r.Header.Get("Idempotency-Key"))
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name   string
		answer string
		want   notifytest.Want
	}{
		{"invalid to", `{"errors":[{"code":"40310","title":"Invalid 'to' address","detail":"The 'to' address should be a single valid number."}]}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeInvalidRecipient}},
		{"numeric code", `{"errors":[{"code":10016,"title":"Phone number must be in +E.164 format"}]}`,
			notifytest.Want{StatusCode: 422, Code: notify.CodeInvalidRecipient}},
		{"opted out", `{"errors":[{"code":"40300","title":"Blocked due to STOP message"}]}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeRejected}},
		{"auth", `{"errors":[{"code":"10009","title":"Authentication failed"}]}`,
			notifytest.Want{StatusCode: 401, Code: notify.CodeAuth, Retryable: true, RetryAfter: 9}},
		{"from not enabled", `{"errors":[{"code":"40305","title":"Invalid 'from' address","detail":"The 'from' address is not enabled for messaging."}]}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeAuth, Retryable: true}},
		{"rate limited", `{"errors":[{"code":"10011","title":"Too many requests"}]}`,
			notifytest.Want{StatusCode: 429, Code: notify.CodeRateLimited, Retryable: true, RetryAfter: 9}},
		{"rate limit code on 400", `{"errors":[{"code":"40011","title":"Too many requests"}]}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeRateLimited, Retryable: true, RetryAfter: 9}},
		{"server error", `upstream down`,
			notifytest.Want{StatusCode: 503, Code: notify.CodeUnavailable, Retryable: true, RetryAfter: 9}},
		{"unexpected", `{"errors":[{"code":"10007","title":"Unexpected error","detail":"sending to +1 555-123-4567 failed"}]}`,
			notifytest.Want{StatusCode: 500, Code: notify.CodeUnavailable, Retryable: true, RetryAfter: 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSender(t, notifytest.Answer{Status: tc.want.StatusCode, Body: tc.answer, RetryAfter: "9"}, "")
			_, err := s.Send(context.Background(), sms())
			notifytest.RequireError(t, err, tc.want, "KEYabc", "Reply STOP to opt out", "555-123-4567", "5551234567")
		})
	}
}

func TestTransportAndConfig(t *testing.T) {
	notifytest.RequireTransportErrors(t, func(base string) (notify.Sender, error) {
		return telnyx.New(telnyx.Config{APIKey: "k", From: "+15550001111", APIBase: base})
	}, sms())

	_, err := telnyx.New(telnyx.Config{})
	assert.Error(t, err)
	_, err = telnyx.New(telnyx.Config{APIKey: "k", APIBase: "nope"})
	assert.Error(t, err)
	s, err := telnyx.New(telnyx.Config{APIKey: "k"})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), sms())
	assert.False(t, notify.IsRetryable(err), "no sender and no profile is permanent")
}

func TestAcceptedButUnreadableIsSuccess(t *testing.T) {
	s, _ := newSender(t, notifytest.Answer{Body: "garbage"}, "")
	res, err := s.Send(context.Background(), sms())
	require.NoError(t, err)
	assert.Equal(t, "telnyx", res.Provider)
}

func TestStallsBoundedByDeadline(t *testing.T) {
	notifytest.RequireStallsBounded(t, func(base string) (notify.Sender, error) {
		return telnyx.New(telnyx.Config{APIKey: "k", From: "+15550001111", APIBase: base})
	}, sms())
}
