package mailgun_test

import (
	"bytes"
	"context"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/internal/notifytest"
	"github.com/dueflow/dueflow/shared/notify/mailgun"
)

// queued is Mailgun's answer to POST /v3/{domain}/messages.
var queued = notifytest.Answer{Body: `{"id":"<20261129.1@mg.acme.test>","message":"Queued. Thank you."}`}

func newSender(t *testing.T, a notifytest.Answer, base func(string) string) (*mailgun.Sender, *notifytest.Server) {
	t.Helper()
	srv := notifytest.NewServer(t, a)
	s, err := mailgun.New(mailgun.Config{
		Domain: "mg.acme.test", APIKey: "key-123", APIBase: base(srv.URL), From: "noreply@acme.test", FromName: "Acme",
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
	})
	require.NoError(t, err)
	return s, srv
}

func asIs(u string) string { return u }

// form decodes a request's multipart form values.
func form(t *testing.T, r notifytest.Request) map[string][]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/form-data", mt)
	f, err := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"]).ReadForm(1 << 20)
	require.NoError(t, err)
	return f.Value
}

func msg() notify.Message {
	return notify.Message{
		Channel: automation.ChannelEmail, To: "ana@client.test", From: "billing@acme.test", FromName: "Acme HVAC",
		ReplyTo: "office@acme.test", Subject: "Invoice due", Text: "Pay please", HTML: "<p>Pay please</p>",
		IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e:0:email",
	}
}

func TestSendWireFormat(t *testing.T) {
	for name, base := range map[string]func(string) string{
		"base without /v3": func(u string) string { return u },
		"base with /v3/":   func(u string) string { return u + "/v3/" },
	} {
		t.Run(name, func(t *testing.T) {
			s, srv := newSender(t, queued, base)
			assert.Equal(t, "mailgun", s.Name())
			res, err := s.Send(context.Background(), msg())
			require.NoError(t, err)
			assert.Equal(t, notify.Result{Provider: "mailgun", MessageID: "20261129.1@mg.acme.test"}, res)
			r := srv.Only(t)
			assert.Equal(t, "POST /v3/mg.acme.test/messages", r.Method+" "+r.Path)
			assert.Equal(t, [2]string{"api", "key-123"}, [2]string{r.User, r.Password})
			form := form(t, r)
			assert.Equal(t, []string{`"Acme HVAC" <billing@acme.test>`}, form["from"])
			assert.Equal(t, []string{"ana@client.test"}, form["to"])
			assert.Equal(t, []string{"Invoice due"}, form["subject"])
			assert.Equal(t, []string{"Pay please"}, form["text"])
			assert.Equal(t, []string{"<p>Pay please</p>"}, form["html"])
			assert.Equal(t, []string{"office@acme.test"}, form["h:Reply-To"])
			assert.NotContains(t, form, "v:idempotency_key", "v: variables reach the recipient (X-Mailgun-Variables)")
			for k := range form {
				assert.False(t, strings.HasPrefix(k, "v:"), "no v: variable (%s): they reach the recipient", k)
			}
			assert.Equal(t, []string{"<" + notify.MessageID("0f8fad5b-d9cb-469f-a165-70867728950e:0:email", "billing@acme.test") + ">"}, form["h:Message-Id"])
		})
	}
}

func TestDefaultsAndHTMLOnly(t *testing.T) {
	s, srv := newSender(t, queued, asIs)
	m := msg()
	m.From, m.FromName, m.Text = "", "", ""
	m.HTML = "<p>Hello <b>there</b></p>"
	_, err := s.Send(context.Background(), m)
	require.NoError(t, err)
	f := form(t, srv.Only(t))
	assert.Equal(t, []string{`"Acme" <noreply@acme.test>`}, f["from"])
	assert.Equal(t, []string{"Hello there"}, f["text"], "a text part is always sent")
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name string
		body string
		want notifytest.Want
	}{
		{"invalid to", `{"message":"'to' parameter is not a valid address. please check documentation"}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeInvalidRecipient}},
		{"recipient named", `{"message":"to parameter is not a valid address: ana@client.test"}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeInvalidRecipient}},
		{"other 400", `{"message":"from parameter is missing"}`,
			notifytest.Want{StatusCode: 400, Code: notify.CodeRejected}},
		{"unauthorized", `Forbidden`,
			notifytest.Want{StatusCode: 401, Code: notify.CodeAuth, Retryable: true, RetryAfter: 12}},
		{"rate limited", `{"message":"slow down"}`,
			notifytest.Want{StatusCode: 429, Code: notify.CodeRateLimited, Retryable: true, RetryAfter: 12}},
		{"server error", `<html>bad gateway</html>`,
			notifytest.Want{StatusCode: 502, Code: notify.CodeUnavailable, Retryable: true, RetryAfter: 12}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSender(t, notifytest.Answer{Status: tc.want.StatusCode, Body: tc.body, RetryAfter: "12"}, asIs)
			_, err := s.Send(context.Background(), msg())
			notifytest.RequireError(t, err, tc.want, "key-123", "ana@client.test", "ana@")
		})
	}
}

func TestTransportAndValidation(t *testing.T) {
	newSender := func(base string) (notify.Sender, error) {
		return mailgun.New(mailgun.Config{Domain: "mg.acme.test", APIKey: "k", APIBase: base, From: "a@acme.test"})
	}
	notifytest.RequireTransportErrors(t, newSender, msg())

	s, err := newSender(notifytest.Refused)
	require.NoError(t, err)

	m := msg()
	m.To = "ana@client.test, bob@client.test"
	_, err = s.Send(context.Background(), m)
	notifytest.RequireError(t, err, notifytest.Want{Code: notify.CodeInvalidRecipient}, "bob@client.test", "ana@client.test")

	_, err = mailgun.New(mailgun.Config{Domain: "x"})
	assert.Error(t, err)
}

func TestAcceptedButUnreadableIsSuccess(t *testing.T) {
	s, _ := newSender(t, notifytest.Answer{Body: "not json"}, asIs)
	res, err := s.Send(context.Background(), msg())
	require.NoError(t, err, "a 200 means Mailgun has it: never retry (double send)")
	assert.Equal(t, "mailgun", res.Provider)
}

func TestStallsBoundedByDeadline(t *testing.T) {
	notifytest.RequireStallsBounded(t, func(base string) (notify.Sender, error) {
		return mailgun.New(mailgun.Config{Domain: "mg.acme.test", APIKey: "k", APIBase: base, From: "a@acme.test"})
	}, msg())
}

// A non-transactional message's one-click unsubscribe URL becomes the
// List-Unsubscribe and List-Unsubscribe-Post headers (RFC 8058); without
// one, neither is sent.
func TestListUnsubscribeHeaders(t *testing.T) {
	s, srv := newSender(t, queued, asIs)
	m := msg()
	m.UnsubscribeURL = "https://events.acme.test/unsubscribe?t=v1.abc.def"
	_, err := s.Send(context.Background(), m)
	require.NoError(t, err)
	f := form(t, srv.Only(t))
	assert.Equal(t, []string{"<https://events.acme.test/unsubscribe?t=v1.abc.def>"}, f["h:List-Unsubscribe"])
	assert.Equal(t, []string{"List-Unsubscribe=One-Click"}, f["h:List-Unsubscribe-Post"])

	s2, srv2 := newSender(t, queued, asIs)
	_, err = s2.Send(context.Background(), msg())
	require.NoError(t, err)
	f = form(t, srv2.Only(t))
	assert.NotContains(t, f, "h:List-Unsubscribe")
	assert.NotContains(t, f, "h:List-Unsubscribe-Post")
}
