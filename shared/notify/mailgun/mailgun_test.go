package mailgun_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/mailgun"
)

// fakeMailgun is a small stand-in for POST /v3/{domain}/messages that
// records each request's form and answers with a configured status/body.
type fakeMailgun struct {
	mu     sync.Mutex
	forms  []map[string][]string
	auth   [][2]string
	paths  []string
	status int
	body   string
	header map[string]string
}

func (f *fakeMailgun) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	u, p, _ := r.BasicAuth()
	f.auth = append(f.auth, [2]string{u, p})
	f.paths = append(f.paths, r.URL.Path)
	f.forms = append(f.forms, r.MultipartForm.Value)
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status == 0 {
		_, _ = w.Write([]byte(`{"id":"<20261129.1@mg.acme.test>","message":"Queued. Thank you."}`))
		return
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

func newSender(t *testing.T, f *fakeMailgun, base func(string) string) *mailgun.Sender {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := mailgun.New(mailgun.Config{
		Domain: "mg.acme.test", APIKey: "key-123", APIBase: base(srv.URL), From: "noreply@acme.test", FromName: "Acme",
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
	})
	require.NoError(t, err)
	return s
}

func msg() notify.Message {
	return notify.Message{
		Channel: notify.ChannelEmail, To: "ana@client.test", From: "billing@acme.test", FromName: "Acme HVAC",
		ReplyTo: "office@acme.test", Subject: "Invoice due", Text: "Pay please", HTML: "<p>Pay please</p>",
		IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:0:email",
		Tags:           map[string]string{"execution_id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
	}
}

func TestSendWireFormat(t *testing.T) {
	for name, base := range map[string]func(string) string{
		"base without /v3": func(u string) string { return u },
		"base with /v3/":   func(u string) string { return u + "/v3/" },
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeMailgun{}
			s := newSender(t, f, base)
			assert.Equal(t, "mailgun", s.Name())
			res, err := s.Send(context.Background(), msg())
			require.NoError(t, err)
			assert.Equal(t, notify.Result{Provider: "mailgun", MessageID: "20261129.1@mg.acme.test"}, res)
			require.Len(t, f.forms, 1)
			assert.Equal(t, "/v3/mg.acme.test/messages", f.paths[0])
			assert.Equal(t, [2]string{"api", "key-123"}, f.auth[0])
			form := f.forms[0]
			assert.Equal(t, []string{`"Acme HVAC" <billing@acme.test>`}, form["from"])
			assert.Equal(t, []string{"ana@client.test"}, form["to"])
			assert.Equal(t, []string{"Invoice due"}, form["subject"])
			assert.Equal(t, []string{"Pay please"}, form["text"])
			assert.Equal(t, []string{"<p>Pay please</p>"}, form["html"])
			assert.Equal(t, []string{"office@acme.test"}, form["h:Reply-To"])
			assert.Equal(t, []string{"0f8fad5b-d9cb-469f-a165-70867728950e:0:email"}, form["v:idempotency_key"])
			assert.Equal(t, []string{"0f8fad5b-d9cb-469f-a165-70867728950e"}, form["v:execution_id"])
			assert.Equal(t, []string{"<dueflow.0f8fad5b-d9cb-469f-a165-70867728950e.0.email@acme.test>"}, form["h:Message-Id"])
		})
	}
}

func TestDefaultsAndHTMLOnly(t *testing.T) {
	f := &fakeMailgun{}
	s := newSender(t, f, func(u string) string { return u })
	m := msg()
	m.From, m.FromName, m.Text = "", "", ""
	m.HTML = "<p>Hello <b>there</b></p>"
	_, err := s.Send(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, []string{`"Acme" <noreply@acme.test>`}, f.forms[0]["from"])
	assert.Equal(t, []string{"Hello there"}, f.forms[0]["text"], "a text part is always sent")
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		code      string
		retryable bool
		after     int
	}{
		{"invalid to", 400, `{"message":"'to' parameter is not a valid address. please check documentation"}`, notify.CodeInvalidRecipient, false, 0},
		{"other 400", 400, `{"message":"from parameter is missing"}`, notify.CodeRejected, false, 0},
		{"unauthorized", 401, `Forbidden`, notify.CodeRejected, false, 0},
		{"rate limited", 429, `{"message":"slow down"}`, notify.CodeRateLimited, true, 12},
		{"server error", 502, `<html>bad gateway</html>`, notify.CodeUnavailable, true, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMailgun{status: tc.status, body: tc.body, header: map[string]string{"Retry-After": "12"}}
			s := newSender(t, f, func(u string) string { return u })
			_, err := s.Send(context.Background(), msg())
			var ne *notify.Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tc.code, ne.Code)
			assert.Equal(t, tc.retryable, ne.Retryable)
			assert.Equal(t, tc.status, ne.StatusCode)
			assert.Equal(t, tc.after, ne.RetryAfter)
			assert.NotContains(t, err.Error(), "key-123")
		})
	}
}

func TestTransportAndValidation(t *testing.T) {
	s, err := mailgun.New(mailgun.Config{Domain: "mg.acme.test", APIKey: "k", APIBase: "http://127.0.0.1:1", From: "a@acme.test"})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), msg())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeNetwork, ne.Code)
	assert.True(t, ne.Retryable)
	assert.False(t, notify.IsAmbiguous(err), "connection refused: nothing was sent")

	m := msg()
	m.To = "not an address"
	_, err = s.Send(context.Background(), m)
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeInvalidRecipient, ne.Code)

	_, err = mailgun.New(mailgun.Config{Domain: "x"})
	assert.Error(t, err)
}

func TestAcceptedButUnreadableIsSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not json"))
	}))
	defer srv.Close()
	s, err := mailgun.New(mailgun.Config{Domain: "mg.acme.test", APIKey: "k", APIBase: srv.URL, From: "a@acme.test"})
	require.NoError(t, err)
	res, err := s.Send(context.Background(), msg())
	require.NoError(t, err, "a 200 means Mailgun has it: never retry (double send)")
	assert.Equal(t, "mailgun", res.Provider)
	assert.True(t, strings.HasPrefix(srv.URL, "http://"))
}
