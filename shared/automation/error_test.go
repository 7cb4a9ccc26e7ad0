package automation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/supabase"
	"github.com/dueflow/dueflow/shared/unsubscribe"
)

func TestErrorShape(t *testing.T) {
	cause := errors.New("dial tcp: secret-internal-detail")
	e := automation.NewError(automation.CodeInvalidRequest, "malformed request body: unknown field", cause)
	wrapped := fmt.Errorf("read: %w", e)

	assert.Equal(t, "malformed request body: unknown field", e.Error(), "the message, never the cause's text")
	assert.ErrorIs(t, wrapped, cause, "the cause is reachable")
	assert.Equal(t, automation.CodeInvalidRequest, automation.ErrorCode(wrapped), "the code through a wrap")

	assert.Equal(t, automation.Code(""), automation.ErrorCode(nil))
	assert.Equal(t, automation.CodeInternal, automation.ErrorCode(cause), "an error without a code is internal")

	assert.Equal(t, cause.Error(), automation.NewError(automation.CodeInternal, "", cause).Error(), "no message: the cause's text")
	assert.Equal(t, "too_large", automation.NewError(automation.CodeTooLarge, "", nil).Error(), "neither: the code")
}

// Every package's failure carries its code (automation.ErrorCode), through
// a caller's wrap, with its detail type reachable beneath it.
func TestErrorCodeOfEveryPackage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"code":"P0001","message":"boom","details":null,"hint":null}`))
	}))
	defer srv.Close()
	db, err := supabase.New(supabase.Config{URL: srv.URL, Key: "sb_secret_test", Timeout: time.Second})
	require.NoError(t, err)
	_, rpcErr := db.Claim(context.Background(), automation.ClaimRequest{Action: automation.ActionSendReminder})
	_, configErr := config.Load(func(string) string { return "" })
	_, templateErr := render.Text("Hi {{client.nickname}}", nil)
	_, tooLargeErr := render.SMS(render.Template{Text: strings.Repeat("x", 20000)}, nil)
	_, phoneErr := phone.ParseE164("12", "US")
	_, tokenErr := unsubscribe.Verify([][]byte{make([]byte, unsubscribe.MinKeyBytes)}, "v1.x.y", time.Now())

	cases := []struct {
		name   string
		err    error
		code   automation.Code
		detail any // a pointer to the package's detail type
	}{
		{"notify provider failure", notify.HTTPError("twilio", http.StatusTooManyRequests, nil, nil), automation.CodeRateLimited, new(*notify.Error)},
		{"notify permanent", notify.InvalidRecipient("smtp", 550, errors.New("no such mailbox")), automation.CodeInvalidRecipient, new(*notify.Error)},
		{"supabase RPC failure", rpcErr, automation.CodeInternal, new(*supabase.RPCError)},
		{"config problem", configErr, automation.CodeConfig, new(*config.Error)},
		{"render template error", templateErr, automation.CodeTemplate, new(*render.UnknownVariableError)},
		{"render content too large", tooLargeErr, automation.CodeContentTooLarge, new(*render.TooLargeError)},
		{"phone invalid number", phoneErr, automation.CodeInvalidRecipient, new(*automation.Error)},
		{"unsubscribe invalid token", tokenErr, automation.CodeUnauthorized, new(*automation.Error)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			wrapped := fmt.Errorf("caller: %w", tc.err)
			var ae *automation.Error
			require.ErrorAs(t, wrapped, &ae, "an *automation.Error")
			assert.Equal(t, tc.code, automation.ErrorCode(wrapped))
			assert.ErrorAs(t, wrapped, tc.detail, "the detail beneath")
		})
	}
}
