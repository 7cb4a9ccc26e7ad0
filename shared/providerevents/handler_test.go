package providerevents

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewValidates(t *testing.T) {
	_, err := New(Options{Store: &recordingStore{}})
	assert.ErrorContains(t, err, "nothing to receive")
	_, err = New(Options{TwilioAuthToken: twilioToken})
	assert.ErrorContains(t, err, "Store is required")
	_, err = New(Options{Store: &recordingStore{}, TelnyxPublicKey: make([]byte, 31)})
	assert.ErrorContains(t, err, "Telnyx public key has 31 bytes")
	_, err = New(Options{Store: &recordingStore{}, TwilioAuthToken: twilioToken, PublicURL: "ftp://x"})
	assert.ErrorContains(t, err, "public URL")
}

func TestUnknownAndUnconfiguredPaths(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MailgunSigningKey = "" })
	assert.Equal(t, http.StatusNotFound, f.do(httptest.NewRequest(http.MethodPost, "/sendgrid", nil)).Code)
	rec := f.do(mailgunRequest(mailgunBody(mailgunKey, now, randomToken(), mailgunEventData("delivered", ""))))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), "mailgun is not configured")
	assert.Zero(t, f.store.called())
}

func TestBodiesAreSizeLimited(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	big := telnyxInbound("STOP" + strings.Repeat(" ", 2000))
	rec := f.do(telnyxRequest(f.telnyx, now, big))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	r := httptest.NewRequest(http.MethodPost, PathMailgun, strings.NewReader(strings.Repeat("x", 1025)))
	r.ContentLength = -1 // streamed: no Content-Length to refuse early
	assert.Equal(t, http.StatusRequestEntityTooLarge, f.do(r).Code)
	assert.Zero(t, f.store.called())
}

func TestProviderPathsArePostOnly(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{PathTelnyx, PathMailgun, PathTwilioInbound, PathTwilioStatus} {
		assert.Equal(t, http.StatusMethodNotAllowed, f.do(httptest.NewRequest(http.MethodGet, p, nil)).Code, p)
	}
}

func TestParseKeyword(t *testing.T) {
	assert.Equal(t, KeywordOptOut, ParseKeyword("\tSTOP "))
	assert.Equal(t, KeywordNone, ParseKeyword("STOP ALL NOW PLEASE"))
	assert.Equal(t, KeywordNone, ParseKeyword("stopp"))
	assert.Equal(t, KeywordHelp, ParseKeyword("Help"))
	assert.Equal(t, KeywordOptOut, ParseKeyword("stop  all"))
	assert.Equal(t, KeywordOptOut, ParseKeyword("OptOut"))
	assert.Equal(t, KeywordOptIn, ParseKeyword("yes"))
}
