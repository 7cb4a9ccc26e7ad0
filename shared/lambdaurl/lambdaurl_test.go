package lambdaurl_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/webhook"
)

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// recorder is a Processor that counts calls and returns a fixed answer.
type recorder struct {
	calls atomic.Int32
	last  automation.Request
	err   error
}

func (r *recorder) Process(_ context.Context, req automation.Request) (automation.Summary, error) {
	r.calls.Add(1)
	r.last = req
	if r.err != nil {
		return automation.Summary{}, r.err
	}
	return automation.Summary{Action: req.Action, Requested: len(req.ExecutionIDs), Claimed: 1, Completed: 1}, nil
}

type fixture struct {
	h    *lambdaurl.Handler
	p    *recorder
	logs *bytes.Buffer
	s    *webhook.Signer
}

func newFixture(t *testing.T, opts ...webhook.Option) *fixture {
	t.Helper()
	v, err := webhook.NewVerifier(secret, automation.ActionSendReminder, opts...)
	require.NoError(t, err)
	s, err := webhook.NewSigner(secret)
	require.NoError(t, err)
	logs := &bytes.Buffer{}
	p := &recorder{}
	return &fixture{h: lambdaurl.New(v, p, slog.New(slog.NewJSONHandler(logs, nil))), p: p, logs: logs, s: s}
}

func (f *fixture) event(t *testing.T, method, body string) events.LambdaFunctionURLRequest {
	t.Helper()
	h, err := f.s.Sign([]byte(body))
	require.NoError(t, err)
	ev := events.LambdaFunctionURLRequest{Version: "2.0", Headers: webhook.Headers(h), Body: body}
	ev.Headers["content-type"] = "application/json"
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.RequestID = "req-from-event"
	return ev
}

func reqBody(ids ...uuid.UUID) string {
	b, _ := json.Marshal(automation.Request{Action: automation.ActionSendReminder, ExecutionIDs: ids})
	return string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e lambdaurl.ErrorBody
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error
}

func TestFunctionURLAccepted(t *testing.T) {
	f := newFixture(t)
	id := uuid.New()
	body := reqBody(id)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "aws-req-1"})
	resp, err := f.h.HandleFunctionURL(ctx, f.event(t, "POST", body))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Equal(t, "application/json", resp.Headers["content-type"])
	var sum automation.Summary
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &sum))
	assert.Equal(t, automation.Summary{Action: "send-reminder", Requested: 1, Claimed: 1, Completed: 1}, sum)
	assert.Equal(t, []uuid.UUID{id}, f.p.last.ExecutionIDs)
	assert.Contains(t, f.logs.String(), `"request_id":"aws-req-1"`)
	assert.NotContains(t, f.logs.String(), id.String(), "the body is never logged")
}

func TestFunctionURLBase64AndHeaderCase(t *testing.T) {
	f := newFixture(t)
	body := reqBody(uuid.New())
	ev := f.event(t, "POST", body)
	ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
	ev.IsBase64Encoded = true
	upper := map[string]string{}
	for k, v := range ev.Headers {
		upper[strings.ToUpper(k)] = v
	}
	ev.Headers = upper
	resp, err := f.h.HandleFunctionURL(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Contains(t, f.logs.String(), `"request_id":"req-from-event"`)

	ev.Body = "!!!not base64"
	resp, err = f.h.HandleFunctionURL(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, int32(1), f.p.calls.Load())
}

func TestFunctionURLRejectedBeforeProcessing(t *testing.T) {
	f := newFixture(t, webhook.WithMaxBodyBytes(200))
	good := reqBody(uuid.New())
	cases := []struct {
		name   string
		ev     func() events.LambdaFunctionURLRequest
		status int
	}{
		{"GET", func() events.LambdaFunctionURLRequest { return f.event(t, "GET", good) }, 405},
		{"unsigned", func() events.LambdaFunctionURLRequest {
			ev := f.event(t, "POST", good)
			delete(ev.Headers, "webhook-signature")
			return ev
		}, 401},
		{"bad signature", func() events.LambdaFunctionURLRequest {
			ev := f.event(t, "POST", good)
			ev.Headers["webhook-signature"] = "v1,Zm9v"
			return ev
		}, 401},
		{"tampered", func() events.LambdaFunctionURLRequest {
			ev := f.event(t, "POST", good)
			ev.Body = reqBody(uuid.New())
			return ev
		}, 401},
		{"too large", func() events.LambdaFunctionURLRequest {
			return f.event(t, "POST", reqBody(uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()))
		}, 413},
		{"too large base64", func() events.LambdaFunctionURLRequest {
			ev := f.event(t, "POST", good)
			ev.Body = base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 300)))
			ev.IsBase64Encoded = true
			return ev
		}, 413},
		{"wrong action", func() events.LambdaFunctionURLRequest {
			return f.event(t, "POST", `{"action":"invoice-reminder","execution_ids":["`+uuid.NewString()+`"]}`)
		}, 400},
		{"unknown field", func() events.LambdaFunctionURLRequest {
			return f.event(t, "POST", `{"action":"send-reminder","execution_ids":["`+uuid.NewString()+`"],"to":"a@b"}`)
		}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.h.HandleFunctionURL(context.Background(), tc.ev())
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.NotEmpty(t, errorOf(t, resp.Body))
			if tc.status == 405 {
				assert.Equal(t, "POST", resp.Headers["allow"])
			}
		})
	}
	assert.Zero(t, f.p.calls.Load(), "the processor (and so the database) is never reached")
}

func TestProcessorFailureIsGeneric500(t *testing.T) {
	f := newFixture(t)
	f.p.err = errors.New("claim: dial tcp 10.0.0.7:5432: secret-internal-detail")
	resp, err := f.h.HandleFunctionURL(context.Background(), f.event(t, "POST", reqBody(uuid.New())))
	require.NoError(t, err)
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "internal error", errorOf(t, resp.Body))
	assert.NotContains(t, resp.Body, "secret-internal-detail")
	assert.Contains(t, f.logs.String(), "secret-internal-detail", "the cause is logged for operators")
}

// An API Gateway HTTP API (payload format 2.0) event has the shape of a
// Function URL event: the same handler serves it.
func TestAPIGatewayV2Payload(t *testing.T) {
	f := newFixture(t)
	body := reqBody(uuid.New(), uuid.New())
	h, err := f.s.Sign([]byte(body))
	require.NoError(t, err)
	apigw := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /send-reminder", RawPath: "/send-reminder",
		Headers: webhook.Headers(h), Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "apigw-req",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/send-reminder"},
		},
	}
	raw, err := json.Marshal(apigw)
	require.NoError(t, err)
	var ev events.LambdaFunctionURLRequest
	require.NoError(t, json.Unmarshal(raw, &ev)) // what the Lambda runtime does with the payload
	resp, err := f.h.HandleFunctionURL(context.Background(), ev)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, resp.Body)

	// The answer is a valid API Gateway v2 response too.
	out, err := json.Marshal(resp)
	require.NoError(t, err)
	var gw events.APIGatewayV2HTTPResponse
	require.NoError(t, json.Unmarshal(out, &gw))
	assert.Equal(t, 200, gw.StatusCode)
	assert.Contains(t, gw.Body, `"requested":2`)
	assert.Contains(t, f.logs.String(), `"request_id":"apigw-req"`)
}

func TestHTTPHandler(t *testing.T) {
	f := newFixture(t, webhook.WithMaxBodyBytes(200))
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	post := func(body string, sign bool) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		require.NoError(t, err)
		if sign {
			h, err := f.s.Sign([]byte(body))
			require.NoError(t, err)
			for k, v := range h {
				req.Header[k] = v
			}
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := post(reqBody(uuid.New()), true)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, string(b))
	assert.Contains(t, string(b), `"claimed":1`)

	resp = post(reqBody(uuid.New()), false)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)

	resp = post(strings.Repeat("x", 5000), false)
	resp.Body.Close()
	assert.Equal(t, 413, resp.StatusCode)

	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	assert.Equal(t, int32(1), f.p.calls.Load())
}
