package providerevents

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordingStore records what it is given.
type recordingStore struct {
	mu     sync.Mutex
	calls  [][]Event
	err    error
	answer Recorded
}

func (s *recordingStore) RecordProviderEvents(_ context.Context, events []Event) (Recorded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, append([]Event(nil), events...))
	if s.err != nil {
		return Recorded{}, s.err
	}
	if s.answer != (Recorded{}) {
		return s.answer, nil
	}
	return Recorded{Recorded: len(events)}, nil
}

func (s *recordingStore) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, c := range s.calls {
		out = append(out, c...)
	}
	return out
}

func (s *recordingStore) called() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

var errStoreDown = errors.New("connection refused for alice@example.com")

// now is the clock of every test handler.
var now = time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)

const (
	publicURL    = "https://events.example.test/prod"
	twilioToken  = "0123456789abcdef0123456789abcdef"
	mailgunKey   = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
	clientNumber = "+14155550123"
	ourNumber    = "+15005550006"
	clientEmail  = "alice@example.com"
)

type fixture struct {
	h       *Handler
	store   *recordingStore
	logs    *bytes.Buffer
	unsub   []byte
	telnyx  ed25519.PrivateKey
	clock   *time.Time
	options Options
}

func newFixture(t *testing.T, edit ...func(*Options)) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	unsub := make([]byte, 32)
	_, _ = rand.Read(unsub)
	f := &fixture{store: &recordingStore{}, logs: &bytes.Buffer{}, unsub: unsub, telnyx: priv}
	clock := now
	f.clock = &clock
	f.options = Options{
		Store: f.store, UnsubscribeKeys: [][]byte{unsub}, MailgunSigningKey: mailgunKey, TwilioAuthToken: twilioToken,
		TelnyxPublicKey: pub, PublicURL: publicURL, Now: func() time.Time { return *f.clock },
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&f.options)
	}
	f.h, err = New(f.options)
	require.NoError(t, err)
	return f
}

func (f *fixture) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// noPersonalData fails when the logs hold an address or a number.
func (f *fixture) noPersonalData(t *testing.T) {
	t.Helper()
	for _, s := range []string{clientNumber, strings.TrimPrefix(clientNumber, "+"), clientEmail, "STOP", twilioToken, mailgunKey} {
		require.NotContains(t, f.logs.String(), s, "logs")
	}
}

// --- Twilio's scheme, written out: base64 HMAC-SHA1 over the URL and the
// sorted parameters, keyed with the auth token.

func twilioSign(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := fullURL
	for _, k := range keys {
		s += k + form.Get(k)
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func twilioRequest(path string, form url.Values, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		r.Header.Set(HeaderTwilioSignature, sig)
	}
	return r
}

func signedTwilio(path string, form url.Values) *http.Request {
	return twilioRequest(path, form, twilioSign(twilioToken, publicURL+path, form))
}

// --- Telnyx's: Ed25519 over "<timestamp>|<body>".

func telnyxRequest(priv ed25519.PrivateKey, at time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, PathTelnyx, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if priv != nil {
		ts := strconv.FormatInt(at.Unix(), 10)
		r.Header.Set("telnyx-timestamp", ts)
		r.Header.Set("telnyx-signature-ed25519", base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(ts+"|"+body))))
	}
	return r
}

// --- Mailgun's: hex HMAC-SHA256 of timestamp + token with the signing key,
// inside the JSON body.

func mailgunBody(key string, at time.Time, token, eventData string) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + token))
	return `{"signature":{"timestamp":"` + ts + `","token":"` + token + `","signature":"` + hex.EncodeToString(m.Sum(nil)) +
		`"},"event-data":` + eventData + `}`
}

func mailgunRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, PathMailgun, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func randomToken() string {
	b := make([]byte, 25)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
