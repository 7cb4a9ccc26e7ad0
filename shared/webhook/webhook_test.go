package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/webhook"
)

var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testSecret = "whsec_" + base64.StdEncoding.EncodeToString(testKey)
	id1        = "0f8fad5b-d9cb-469f-a165-70867728950e"
	id2        = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

func newVerifier(t testing.TB, opts ...webhook.Option) *webhook.Verifier {
	t.Helper()
	v, err := webhook.NewVerifier(testSecret, automation.ActionInvoiceReminder, opts...)
	require.NoError(t, err)
	return v
}

func sign(t testing.TB, body string) http.Header {
	t.Helper()
	s, err := webhook.NewSigner(testSecret)
	require.NoError(t, err)
	h, err := s.Sign([]byte(body))
	require.NoError(t, err)
	return h
}

// sqlSign computes the signature the way the SQL dispatcher does with
// pgcrypto: hmac(id || '.' || ts || '.' || body::text, key, 'sha256').
func sqlSign(id string, ts int64, body string) string {
	m := hmac.New(sha256.New, testKey)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func body(action string, ids ...string) string {
	return fmt.Sprintf(`{"action": %q, "execution_ids": ["%s"]}`, action, strings.Join(ids, `", "`))
}

func TestVerifyAndDecodeValid(t *testing.T) {
	v := newVerifier(t)
	b := body("invoice-reminder", id1, id2, id1)
	req, err := v.VerifyAndDecode([]byte(b), sign(t, b))
	require.NoError(t, err)
	assert.Equal(t, "invoice-reminder", req.Action)
	assert.Equal(t, []uuid.UUID{uuid.MustParse(id1), uuid.MustParse(id2)}, req.ExecutionIDs, "duplicates removed, order kept")
}

func TestInteropWithSQLSignature(t *testing.T) {
	v := newVerifier(t)
	// jsonb::text renders with a space after ':' and ','.
	b := `{"action": "invoice-reminder", "execution_ids": ["` + id1 + `"]}`
	ts := time.Now().Unix()
	h := http.Header{}
	h.Set("webhook-id", id2)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sqlSign(id2, ts, b))
	_, err := v.VerifyAndDecode([]byte(b), h)
	require.NoError(t, err)

	// And our Signer produces exactly what SQL produces.
	s, err := webhook.NewSigner(testSecret)
	require.NoError(t, err)
	got, err := s.SignAt(id2, time.Unix(ts, 0), []byte(b))
	require.NoError(t, err)
	assert.Equal(t, sqlSign(id2, ts, b), got.Get("webhook-signature"))
}

func TestSeveralSignatures(t *testing.T) {
	v := newVerifier(t)
	b := body("invoice-reminder", id1)
	h := sign(t, b)
	good := h.Get("webhook-signature")
	h.Set("webhook-signature", "v1,AAAA v2,whatever "+good+" v1a,zzz")
	_, err := v.VerifyAndDecode([]byte(b), h)
	require.NoError(t, err)

	h.Set("webhook-signature", "v1,AAAA v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	_, err = v.VerifyAndDecode([]byte(b), h)
	assert.ErrorIs(t, err, webhook.ErrSignature)
}

func TestHeaderCaseAndSeveralLines(t *testing.T) {
	v := newVerifier(t)
	b := body("invoice-reminder", id1)
	signed := sign(t, b)
	raw := http.Header{} // keys as a hand-built map may hold them
	for k, vs := range signed {
		raw[strings.ToLower(k)] = vs
	}
	_, err := v.VerifyAndDecode([]byte(b), raw)
	require.NoError(t, err)

	lines := http.Header{}
	lines.Set("Webhook-Id", signed.Get("webhook-id"))
	lines.Set("Webhook-Timestamp", signed.Get("webhook-timestamp"))
	lines.Add("Webhook-Signature", "v1,bm90LXRoZS1zaWduYXR1cmU=")
	lines.Add("Webhook-Signature", signed.Get("webhook-signature"))
	_, err = v.VerifyAndDecode([]byte(b), lines)
	require.NoError(t, err, "a valid signature on a second header line counts")
}

func TestRejections(t *testing.T) {
	now := time.Now()
	b := body("invoice-reminder", id1)
	otherSigner, err := webhook.NewSigner("whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-32-bytes-long!")))
	require.NoError(t, err)
	s, err := webhook.NewSigner(testSecret)
	require.NoError(t, err)
	at := func(d time.Duration) http.Header {
		h, err := s.SignAt(id2, now.Add(d), []byte(b))
		require.NoError(t, err)
		return h
	}
	cases := []struct {
		name   string
		body   string
		header func() http.Header
		status int
		cause  error
	}{
		{"no headers", b, func() http.Header { return http.Header{} }, 401, webhook.ErrMissingHeaders},
		{"no signature", b, func() http.Header { h := at(0); h.Del("webhook-signature"); return h }, 401, webhook.ErrMissingHeaders},
		{"wrong secret", b, func() http.Header { h, _ := otherSigner.Sign([]byte(b)); return h }, 401, webhook.ErrSignature},
		{"tampered body", strings.Replace(b, id1, id2, 1), func() http.Header { return at(0) }, 401, webhook.ErrSignature},
		{"tampered id", b, func() http.Header { h := at(0); h.Set("webhook-id", id1); return h }, 401, webhook.ErrSignature},
		{"too old", b, func() http.Header { return at(-5*time.Minute - 2*time.Second) }, 401, webhook.ErrTimestamp},
		{"too new", b, func() http.Header { return at(5*time.Minute + 2*time.Second) }, 401, webhook.ErrTimestamp},
		{"timestamp not a number", b, func() http.Header { h := at(0); h.Set("webhook-timestamp", "soon"); return h }, 401, webhook.ErrTimestamp},
		{"just inside tolerance", b, func() http.Header { return at(-4*time.Minute - 50*time.Second) }, 0, nil},
	}
	v := newVerifier(t, webhook.WithClock(func() time.Time { return now }))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyAndDecode([]byte(tc.body), tc.header())
			if tc.cause == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.cause)
			assert.Equal(t, tc.status, lambdaurl.StatusCode(err))
		})
	}
}

func TestSizeCheckedBeforeSignature(t *testing.T) {
	v := newVerifier(t, webhook.WithMaxBodyBytes(100))
	big := body("invoice-reminder", id1, id2, id1, id2) // > 100 bytes
	require.Greater(t, len(big), 100)
	_, err := v.VerifyAndDecode([]byte(big), http.Header{}) // unsigned: still 413, not 401
	require.ErrorIs(t, err, webhook.ErrTooLarge)
	assert.Equal(t, http.StatusRequestEntityTooLarge, lambdaurl.StatusCode(err))

	_, err = v.ReadBody(strings.NewReader(big))
	assert.ErrorIs(t, err, webhook.ErrTooLarge)
	got, err := v.ReadBody(strings.NewReader("{}"))
	require.NoError(t, err)
	assert.Equal(t, "{}", string(got))
}

func TestDecodeRejections(t *testing.T) {
	ids := make([]string, 4)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	cases := []struct {
		name, body string
		cause      error
	}{
		{"not json", `nope`, webhook.ErrMalformed},
		{"array", `[]`, webhook.ErrMalformed},
		{"truncated", `{"action": "invoice-reminder"`, webhook.ErrMalformed},
		{"unknown field", `{"action":"invoice-reminder","execution_ids":["` + id1 + `"],"to":"x@y"}`, webhook.ErrMalformed},
		{"trailing data", body("invoice-reminder", id1) + `{}`, webhook.ErrMalformed},
		{"ids wrong type", `{"action":"invoice-reminder","execution_ids":"` + id1 + `"}`, webhook.ErrMalformed},
		{"missing action", `{"execution_ids":["` + id1 + `"]}`, webhook.ErrAction},
		{"unknown action", body("send-everything", id1), webhook.ErrAction},
		{"other function's action", body("send-reminder", id1), webhook.ErrAction},
		{"no ids", `{"action":"invoice-reminder","execution_ids":[]}`, webhook.ErrNoIDs},
		{"null ids", `{"action":"invoice-reminder","execution_ids":null}`, webhook.ErrNoIDs},
		{"missing ids", `{"action":"invoice-reminder"}`, webhook.ErrNoIDs},
		{"bad id", body("invoice-reminder", id1, "not-a-uuid"), webhook.ErrBadID},
		{"id without dashes", body("invoice-reminder", strings.ReplaceAll(id1, "-", "")), webhook.ErrBadID},
		{"nil uuid", body("invoice-reminder", uuid.Nil.String()), webhook.ErrBadID},
		{"too many", body("invoice-reminder", ids...), webhook.ErrTooManyIDs},
	}
	v := newVerifier(t, webhook.WithMaxIDs(3))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyAndDecode([]byte(tc.body), sign(t, tc.body))
			require.ErrorIs(t, err, tc.cause)
			assert.Equal(t, http.StatusBadRequest, lambdaurl.StatusCode(err))
			assert.NotContains(t, err.Error(), "x@y", "the reason never echoes the body")
		})
	}
	_, err := v.VerifyAndDecode([]byte(body("invoice-reminder", ids[:3]...)), sign(t, body("invoice-reminder", ids[:3]...)))
	assert.NoError(t, err, "exactly the limit is fine")
}

func TestConstructorErrors(t *testing.T) {
	_, err := webhook.NewVerifier(testSecret, "send-everything")
	assert.Error(t, err)
	_, err = webhook.NewVerifier("whsec_***", automation.ActionRunWorkflow)
	assert.Error(t, err)
	_, err = webhook.NewVerifier("whsec_"+base64.StdEncoding.EncodeToString([]byte("short")), automation.ActionRunWorkflow)
	assert.Error(t, err)
	_, err = webhook.NewSigner("")
	assert.Error(t, err)
	v, err := webhook.NewVerifier(webhook.NewSecret(), automation.ActionRunWorkflow)
	require.NoError(t, err)
	assert.Equal(t, automation.ActionRunWorkflow, v.Action())
	assert.Equal(t, webhook.DefaultMaxBodyBytes, v.MaxBodyBytes())
	assert.Equal(t, webhook.DefaultMaxIDs, v.MaxIDs())
	assert.Equal(t, 500, lambdaurl.StatusCode(errors.New("other")))
}

func TestHeadersLowercase(t *testing.T) {
	h := sign(t, "{}")
	m := webhook.Headers(h)
	assert.Len(t, m, 3)
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		assert.NotEmpty(t, m[k])
	}
}

func BenchmarkVerifyAndDecode(b *testing.B) {
	v := newVerifier(b)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	bd := body("invoice-reminder", ids...)
	h := sign(b, bd)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyAndDecode([]byte(bd), h); err != nil {
			b.Fatal(err)
		}
	}
}

// A rotation: the function's list holds the new and the old secret while
// the database signs with either (or both, with its _previous key); a
// request signed with a secret outside the list is refused at every step.
func TestSecretRotationOverlap(t *testing.T) {
	oldS, newS, otherS := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()
	b := []byte(body("invoice-reminder", id1))
	signed := func(secret string) http.Header {
		s, err := webhook.NewSigner(secret)
		require.NoError(t, err)
		h, err := s.Sign(b)
		require.NoError(t, err)
		return h
	}
	both := signed(newS + " " + oldS)
	assert.Len(t, strings.Fields(both.Get("webhook-signature")), 2, "a signer of two secrets sends two signatures")
	steps := []struct {
		name     string
		function string // the function's DUEFLOW_WEBHOOK_SECRET
		accepts  []http.Header
		refuses  []http.Header
	}{
		{"old only", oldS, []http.Header{signed(oldS), both}, []http.Header{signed(newS), signed(otherS)}},
		{"both", newS + " " + oldS, []http.Header{signed(oldS), signed(newS), both}, []http.Header{signed(otherS)}},
		{"new only", newS, []http.Header{signed(newS), both}, []http.Header{signed(oldS), signed(otherS)}},
	}
	for _, st := range steps {
		v, err := webhook.NewVerifier(st.function, "invoice-reminder")
		require.NoError(t, err, st.name)
		for i, h := range st.accepts {
			_, err := v.VerifyAndDecode(b, h)
			assert.NoError(t, err, "%s: accepted %d", st.name, i)
		}
		for i, h := range st.refuses {
			_, err := v.VerifyAndDecode(b, h)
			assert.ErrorIs(t, err, webhook.ErrSignature, "%s: refused %d", st.name, i)
		}
	}

	_, err := webhook.NewVerifier(newS+" whsec_short", "invoice-reminder")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret 2 of 2: webhook secret:")
	assert.NotContains(t, err.Error(), newS)
	_, err = webhook.NewVerifier(strings.Repeat(newS+" ", webhook.MaxSecrets+1), "invoice-reminder")
	assert.ErrorContains(t, err, "at most 4")
	_, err = webhook.NewVerifier("  ", "invoice-reminder")
	assert.ErrorContains(t, err, "empty")
}

// ParseSecret is the one rule of a signing secret: whsec_, standard base64
// with its padding, MinSecretBytes to MaxSecretBytes bytes; its errors never quote
// the secret.
func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	key, err := webhook.ParseSecret(testSecret)
	require.NoError(t, err)
	assert.Equal(t, testKey, key)
	for secret, problem := range map[string]string{
		b64(32):                 "must start with whsec_",
		"WHSEC_" + b64(32):      "must start with whsec_",
		"whsec_" + b64(32)[:43]: "is not whsec_<base64>", // padding left out
		"whsec_" + b64(16)[:12] + "\n" + b64(16)[12:]: "is not whsec_<base64>",
		"whsec_!!!notbase64!!!":                       "is not whsec_<base64>",
		"whsec_" + b64(23):                            "key has 23 bytes, want 24 to 64",
		"whsec_" + b64(65):                            "key has 65 bytes, want 24 to 64",
		"whsec_":                                      "key has 0 bytes, want 24 to 64",
	} {
		_, err := webhook.ParseSecret(secret)
		require.Error(t, err, secret)
		assert.Equal(t, problem, err.Error())
	}
	for _, n := range []int{webhook.MinSecretBytes, webhook.MaxSecretBytes} {
		_, err = webhook.ParseSecret("whsec_" + b64(n))
		assert.NoError(t, err, n)
	}
}
