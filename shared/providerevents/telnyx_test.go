package providerevents

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
)

const telnyxEventID = "b301ed3f-1490-491f-995f-6e64e69674d4"

func telnyxInbound(text string) string {
	return `{"data":{"event_type":"message.received","id":"` + telnyxEventID + `","occurred_at":"2026-12-02T16:59:58.000+00:00",` +
		`"payload":{"id":"40385f64-5717-4562-b3fc-2c963f66afa6","direction":"inbound","type":"SMS","text":"` + text + `",` +
		`"from":{"phone_number":"` + clientNumber + `","carrier":"T-Mobile USA","line_type":"Wireless"},` +
		`"to":[{"phone_number":"` + ourNumber + `","status":"webhook_delivered"}],"errors":[]},"record_type":"event"},` +
		`"meta":{"attempt":1,"delivered_to":"https://events.example.test/prod/telnyx"}}`
}

func telnyxReport(eventType, status, errors string) string {
	return `{"data":{"event_type":"` + eventType + `","id":"` + telnyxEventID + `","occurred_at":"2026-12-02T16:59:58.000+00:00",` +
		`"payload":{"id":"4031938e-60a7-4c35-a1b5-4b1f8b3b8bbb","direction":"outbound","type":"SMS","text":"Your invoice is due",` +
		`"from":{"phone_number":"` + ourNumber + `"},"to":[{"phone_number":"` + clientNumber + `","status":"` + status + `"}],` +
		`"errors":` + errors + `},"record_type":"event"},"meta":{"attempt":1}}`
}

var telnyxAt = time.Date(2026, 12, 2, 16, 59, 58, 0, time.UTC)

func TestTelnyxInboundKeywords(t *testing.T) {
	for text, kind := range map[string]string{"STOP": KindOptOut, "Quit ": KindOptOut, "start": KindOptIn, "HELP": "", "hello": ""} {
		t.Run(text, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(telnyxRequest(f.telnyx, now, telnyxInbound(text)))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			if kind == "" {
				assert.Empty(t, f.store.events(), "HELP is answered by the messaging profile's auto-response")
				return
			}
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, Event{Kind: kind, Provider: ProviderTelnyx, EventID: telnyxEventID, Channel: automation.ChannelSMS,
				Address: clientNumber, Sender: ourNumber, OccurredAt: telnyxAt}, f.store.events()[0])
			f.noPersonalData(t)
		})
	}
}

func TestTelnyxDeliveryReports(t *testing.T) {
	const msgID = "4031938e-60a7-4c35-a1b5-4b1f8b3b8bbb"
	cases := []struct {
		name, eventType, status, errors string
		want                            *Event
	}{
		{"delivered", "message.finalized", "delivered", `[]`, &Event{Status: StatusDelivered}},
		{"failed not routable", "message.finalized", "delivery_failed", `[{"code":"40001","title":"Not routable","detail":"Destination +14155550123 is a landline"}]`,
			&Event{Status: StatusBounced, Permanent: true, Reason: "delivery_failed 40001 Not routable"}},
		{"failed temporary", "message.finalized", "delivery_failed", `[{"code":"40006","title":"Recipient unavailable"}]`,
			&Event{Status: StatusUndelivered, Reason: "delivery_failed 40006 Recipient unavailable"}},
		{"sending failed", "message.sent", "sending_failed", `[{"code":40008,"title":"Undeliverable"}]`,
			&Event{Status: StatusUndelivered, Reason: "sending_failed 40008 Undeliverable"}},
		{"sent", "message.sent", "sent", `[]`, nil},
		{"unconfirmed", "message.finalized", "delivery_unconfirmed", `[]`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(telnyxRequest(f.telnyx, now, telnyxReport(c.eventType, c.status, c.errors)))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			if c.want == nil {
				assert.Empty(t, f.store.events())
				return
			}
			want := *c.want
			want.Kind, want.Provider, want.Channel, want.EventID = KindDelivery, ProviderTelnyx, automation.ChannelSMS, telnyxEventID
			want.Address, want.ProviderMessageID, want.OccurredAt = clientNumber, msgID, telnyxAt
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, want, f.store.events()[0])
			f.noPersonalData(t)
		})
	}
}

// Every Telnyx event kind (an inbound keyword, a delivery report) refused
// unless signed with the profile's Ed25519 key within the 5-minute window:
// 401 and nothing reaches the store.
func TestTelnyxUnverifiedRefused(t *testing.T) {
	_, other, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	bodies := map[string]string{
		"inbound":         telnyxInbound("STOP"),
		"delivery report": telnyxReport("message.finalized", "delivery_failed", `[{"code":"40001","title":"Not routable"}]`),
	}
	for kind, body := range bodies {
		cases := map[string]func(f *fixture) *http.Request{
			"missing":   func(*fixture) *http.Request { return telnyxRequest(nil, now, body) },
			"other key": func(*fixture) *http.Request { return telnyxRequest(other, now, body) },
			"tampered": func(f *fixture) *http.Request {
				r := telnyxRequest(f.telnyx, now, body)
				r2 := telnyxRequest(nil, now, strings.Replace(body, clientNumber, "+14155550199", 1))
				r2.Header = r.Header
				return r2
			},
			"timestamp changed": func(f *fixture) *http.Request {
				r := telnyxRequest(f.telnyx, now, body)
				r.Header.Set("telnyx-timestamp", "1796230801")
				return r
			},
			"replayed after 6 minutes": func(f *fixture) *http.Request { return telnyxRequest(f.telnyx, now.Add(-6*time.Minute), body) },
			"from the future":          func(f *fixture) *http.Request { return telnyxRequest(f.telnyx, now.Add(6*time.Minute), body) },
			"signature not base64": func(f *fixture) *http.Request {
				r := telnyxRequest(f.telnyx, now, body)
				r.Header.Set("telnyx-signature-ed25519", "%%%")
				return r
			},
		}
		for name, mk := range cases {
			t.Run(kind+"/"+name, func(t *testing.T) {
				f := newFixture(t)
				rec := f.do(mk(f))
				assert.Equal(t, http.StatusUnauthorized, rec.Code)
				assert.Zero(t, f.store.called())
			})
		}
	}
}

func TestTelnyxWithinWindowAccepted(t *testing.T) {
	f := newFixture(t)
	rec := f.do(telnyxRequest(f.telnyx, now.Add(-4*time.Minute), telnyxInbound("STOP")))
	assert.Equal(t, http.StatusOK, rec.Code)
}
