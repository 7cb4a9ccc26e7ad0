package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/unsubscribe"
)

// TestProviderEventsUnderRIE: the provider-events binary runs under the
// Lambda RIE behind the local Function URL with the stack's keys; the SMS
// sink's signed STOP verifies through the gateway and is recorded (200), an
// unsigned one is 401, and a one-click link's confirmation page renders
// from a token signed with the stack's key.
func TestProviderEventsUnderRIE(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, stackOptions{})
	status, err := s.Telnyx().PostInbound(ctx, "+14155550123", "+15005550006", "STOP")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "verified and recorded")

	resp, err := http.Post(s.ProviderEventsURL()+"/telnyx", "application/json", strings.NewReader(`{"data":{"event_type":"message.received","id":"x"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	tok, err := unsubscribe.Sign(s.UnsubscribeKey(), unsubscribe.Claims{OrganizationID: "a0000000-0000-4000-8000-00000000000a",
		ClientID: "c1000000-0000-4000-8000-000000000001", Channel: unsubscribe.ChannelEmail, Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	resp, err = http.Get(s.ProviderEventsURL() + "/unsubscribe?t=" + tok)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
}
