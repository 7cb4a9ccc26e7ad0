package providerevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/unsubscribe"
)

const (
	orgID    = "a0000000-0000-4000-8000-00000000000a"
	clientID = "c1000000-0000-4000-8000-000000000001"
)

func token(t *testing.T, key []byte, channel automation.Channel, expires time.Time) string {
	t.Helper()
	tok, err := unsubscribe.Sign(key, unsubscribe.Claims{OrganizationID: orgID, ClientID: clientID, Channel: string(channel), Expires: expires})
	require.NoError(t, err)
	return tok
}

func oneClick(tok, contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, PathUnsubscribe+"?t="+url.QueryEscape(tok), strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestUnsubscribeGetShowsFormRecordsNothing(t *testing.T) {
	f := newFixture(t)
	tok := token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour))
	rec := f.do(httptest.NewRequest(http.MethodGet, PathUnsubscribe+"?t="+url.QueryEscape(tok), nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
	assert.Contains(t, body, `<form method="post" action="/unsubscribe?t=`+url.QueryEscape(tok)+`">`)
	assert.Contains(t, body, `name="List-Unsubscribe" value="One-Click"`)
	assert.Contains(t, body, "emails")
	assert.Zero(t, f.store.called(), "a GET (a link scanner) records nothing")
}

func TestUnsubscribeOneClickPost(t *testing.T) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	require.NoError(t, mw.WriteField("List-Unsubscribe", "One-Click"))
	require.NoError(t, mw.Close())
	cases := map[string]struct{ ctype, body string }{
		"form-encoded (Gmail, Yahoo)": {"application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"},
		"multipart (RFC 8058 3.2)":    {mw.FormDataContentType(), mp.String()},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tok := token(t, f.unsub, automation.ChannelSMS, now.Add(time.Hour))
			rec := f.do(oneClick(tok, c.ctype, c.body))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), "no longer receive these text messages")
			sum := sha256.Sum256([]byte(tok))
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, Event{Kind: KindOptOut, Provider: ProviderLink, EventID: hex.EncodeToString(sum[:]), OrganizationID: orgID,
				ClientID: clientID, Channel: automation.ChannelSMS, OccurredAt: now}, f.store.events()[0])
			assert.NotContains(t, f.logs.String(), tok, "the token is not logged")
		})
	}
}

func TestUnsubscribeRefused(t *testing.T) {
	other := bytes.Repeat([]byte{7}, 32)
	cases := map[string]struct {
		tok    func(f *fixture) string
		body   string
		status int
	}{
		"no token":         {func(*fixture) string { return "" }, "List-Unsubscribe=One-Click", http.StatusBadRequest},
		"other key":        {func(f *fixture) string { return token(t, other, automation.ChannelEmail, now.Add(time.Hour)) }, "List-Unsubscribe=One-Click", http.StatusUnauthorized},
		"expired":          {func(f *fixture) string { return token(t, f.unsub, automation.ChannelEmail, now.Add(-time.Second)) }, "List-Unsubscribe=One-Click", http.StatusUnauthorized},
		"garbage":          {func(*fixture) string { return "v1.abc.def" }, "List-Unsubscribe=One-Click", http.StatusUnauthorized},
		"no one-click":     {func(f *fixture) string { return token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour)) }, "", http.StatusBadRequest},
		"wrong value":      {func(f *fixture) string { return token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour)) }, "List-Unsubscribe=Yes", http.StatusBadRequest},
		"too large":        {func(f *fixture) string { return token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour)) }, "List-Unsubscribe=One-Click&x=" + strings.Repeat("a", 70000), http.StatusRequestEntityTooLarge},
		"tampered payload": {func(f *fixture) string { return tamper(token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour))) }, "List-Unsubscribe=One-Click", http.StatusUnauthorized},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(oneClick(c.tok(f), "application/x-www-form-urlencoded", c.body))
			assert.Equal(t, c.status, rec.Code)
			assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
			assert.Zero(t, f.store.called())
		})
	}
}

// tamper swaps the client id inside a token's payload, keeping its MAC.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	return parts[0] + "." + strings.ToUpper(parts[1][:4]) + parts[1][4:] + "." + parts[2]
}

func TestUnsubscribeStoreFailure(t *testing.T) {
	f := newFixture(t)
	f.store.err = errStoreDown
	rec := f.do(oneClick(token(t, f.unsub, automation.ChannelEmail, now.Add(time.Hour)), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "try again")
	f.noPersonalData(t)
}
