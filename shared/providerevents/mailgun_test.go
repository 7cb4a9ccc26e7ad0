package providerevents

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
)

const mailgunMsgID = "20261202165958.1.ABCDEF0123456789@mg.acme.test"

func mailgunEventData(event, extra string) string {
	return `{"event":"` + event + `","id":"G9Bn5sl1TC6nu79C8C0bwg","timestamp":1796230798.5,"recipient":"` + clientEmail + `",` +
		`"message":{"headers":{"message-id":"` + mailgunMsgID + `","to":"` + clientEmail + `","subject":"Invoice 42"}},` +
		`"flags":{"is-test-mode":false}` + extra + `}`
}

func TestMailgunEvents(t *testing.T) {
	at := time.Unix(1796230798, 500000000).UTC()
	cases := []struct {
		name, event, extra string
		want               *Event
	}{
		{"delivered", "delivered", `,"delivery-status":{"code":250,"message":"OK"}`, &Event{Status: StatusDelivered}},
		{"hard bounce", "failed", `,"severity":"permanent","reason":"bounce","delivery-status":{"code":550,"message":"5.1.1 The email account ` + clientEmail + ` does not exist","description":""}`,
			&Event{Status: StatusBounced, Permanent: true, Reason: "bounce 550 5.1.1 The email account a***@e***.com does not exist"}},
		{"soft bounce", "failed", `,"severity":"temporary","reason":"generic","delivery-status":{"code":452,"message":"4.2.2 Mailbox full"}`,
			&Event{Status: StatusDeferred, Reason: "generic 452 4.2.2 Mailbox full"}},
		{"complained", "complained", ``, &Event{Status: StatusComplained}},
		{"unsubscribed", "unsubscribed", ``, &Event{Status: StatusUnsubscribed}},
		{"opened", "opened", ``, nil},
		{"accepted", "accepted", ``, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(mailgunRequest(mailgunBody(mailgunKey, now, randomToken(), mailgunEventData(c.event, c.extra))))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			if c.want == nil {
				assert.Empty(t, f.store.events())
				return
			}
			want := *c.want
			want.Kind, want.Provider, want.Channel, want.EventID = KindDelivery, ProviderMailgun, automation.ChannelEmail, "G9Bn5sl1TC6nu79C8C0bwg"
			want.Address, want.ProviderMessageID, want.OccurredAt = clientEmail, mailgunMsgID, at
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, want, f.store.events()[0])
			f.noPersonalData(t)
		})
	}
}

func TestMailgunUnverifiedRefused(t *testing.T) {
	data := mailgunEventData("failed", `,"severity":"permanent"`)
	good := mailgunBody(mailgunKey, now, randomToken(), data)
	cases := map[string]string{
		"missing":      `{"event-data":` + data + `}`,
		"other key":    mailgunBody("key-ffffffffffffffffffffffffffffffff", now, randomToken(), data),
		"old":          mailgunBody(mailgunKey, now.Add(-6*time.Minute), randomToken(), data),
		"future":       mailgunBody(mailgunKey, now.Add(6*time.Minute), randomToken(), data),
		"not json":     "signature=abc&token=def",
		"bad hex":      strings.Replace(good, `"signature":"`, `"signature":"zz`, 1),
		"token edited": strings.Replace(good, `"token":"`, `"token":"0`, 1),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(mailgunRequest(body))
			assert.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
			assert.Zero(t, f.store.called())
		})
	}
}

func TestMailgunTokenReuseRefused(t *testing.T) {
	f := newFixture(t)
	body := mailgunBody(mailgunKey, now, randomToken(), mailgunEventData("delivered", ""))
	require.Equal(t, http.StatusOK, f.do(mailgunRequest(body)).Code)
	*f.clock = now.Add(time.Minute)
	assert.Equal(t, http.StatusUnauthorized, f.do(mailgunRequest(body)).Code, "the same signed request again")
	assert.Equal(t, 1, f.store.called())
}

func TestMailgunRetryAfterStoreFailureAccepted(t *testing.T) {
	f := newFixture(t)
	body := mailgunBody(mailgunKey, now, randomToken(), mailgunEventData("delivered", ""))
	f.store.err = errStoreDown
	require.Equal(t, http.StatusServiceUnavailable, f.do(mailgunRequest(body)).Code)
	f.store.err = nil
	*f.clock = now.Add(time.Minute)
	assert.Equal(t, http.StatusOK, f.do(mailgunRequest(body)).Code, "the provider's retry of a request that was not recorded")
}
