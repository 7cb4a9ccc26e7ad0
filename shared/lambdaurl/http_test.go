package lambdaurl

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTPHandlerMapsEventAndAnswer(t *testing.T) {
	var got *http.Request
	var gotBody string
	h := NewHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("<Response/>"))
	}), 1024)
	ev := events.LambdaFunctionURLRequest{
		RawPath: "/twilio/inbound", RawQueryString: "a=1&b=2",
		Headers: map[string]string{"host": "abc.lambda-url.eu-west-1.on.aws", "x-twilio-signature": "sig", "content-type": "application/x-www-form-urlencoded"},
		Body:    base64.StdEncoding.EncodeToString([]byte("Body=STOP")), IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "req-1", DomainName: "abc.lambda-url.eu-west-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost, SourceIP: "203.0.113.9"}},
	}
	resp, err := h.HandleFunctionURL(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "<Response/>", resp.Body)
	assert.Equal(t, "text/xml", resp.Headers["content-type"])
	assert.Equal(t, "a,b", resp.Headers["x-multi"])
	require.NotNil(t, got)
	assert.Equal(t, http.MethodPost, got.Method)
	assert.Equal(t, "abc.lambda-url.eu-west-1.on.aws", got.Host)
	assert.Equal(t, "/twilio/inbound", got.URL.Path)
	assert.Equal(t, "a=1&b=2", got.URL.RawQuery)
	assert.Equal(t, "sig", got.Header.Get("X-Twilio-Signature"))
	assert.Equal(t, "req-1", got.Header.Get("X-Request-Id"))
	assert.Equal(t, "Body=STOP", gotBody)
}

func TestHTTPHandlerRefusesLargeBodyUnread(t *testing.T) {
	called := false
	h := NewHTTPHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }), 16)
	for _, ev := range []events.LambdaFunctionURLRequest{
		{Body: strings.Repeat("x", 17)},
		{Body: base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 40))), IsBase64Encoded: true},
	} {
		ev.RequestContext.HTTP.Method = http.MethodPost
		resp, err := h.HandleFunctionURL(context.Background(), ev)
		require.NoError(t, err)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	}
	assert.False(t, called)
}
