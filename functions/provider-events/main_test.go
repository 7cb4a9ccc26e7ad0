package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/function"
)

func settings() map[string]string {
	return map[string]string{
		"SUPABASE_URL":        "http://127.0.0.1:1",
		"SUPABASE_SECRET_KEY": "sb_secret_0123456789abcdefghij",
		"TELNYX_PUBLIC_KEY":   base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
}

// The function starts from its settings and refuses an unsigned request
// with 401 through the Function URL event path, before any database call.
func TestBuildServesFunctionURLEvents(t *testing.T) {
	env := settings()
	b, err := build(func(k string) string { return env[k] }, function.Logger(io.Discard, 0))
	require.NoError(t, err)
	resp, err := b.Handler.HandleFunctionURL(context.Background(), events.LambdaFunctionURLRequest{
		RawPath: "/telnyx", Body: `{"data":{"event_type":"message.received","id":"x"}}`,
		Headers:        map[string]string{"host": "abc.lambda-url.eu-west-1.on.aws"},
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost}},
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestBuildNamesConfigurationProblems(t *testing.T) {
	env := settings()
	delete(env, "TELNYX_PUBLIC_KEY")
	_, err := build(func(k string) string { return env[k] }, function.Logger(io.Discard, 0))
	assert.ErrorContains(t, err, "nothing to receive")
}
