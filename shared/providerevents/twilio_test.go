package providerevents

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
)

func inboundForm(body string) url.Values {
	return url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {"AC0123456789abcdef0123456789abcdef"},
		"From": {clientNumber}, "To": {ourNumber}, "Body": {body}, "NumMedia": {"0"}, "SmsStatus": {"received"}}
}

func TestTwilioInboundKeywords(t *testing.T) {
	cases := []struct {
		body string
		kind string
	}{
		{"STOP", KindOptOut}, {" stop\n", KindOptOut}, {"StopAll", KindOptOut}, {"UNSUBSCRIBE", KindOptOut},
		{"cancel", KindOptOut}, {"End", KindOptOut}, {"quit", KindOptOut},
		{"START", KindOptIn}, {"unstop", KindOptIn},
		{"please stop", ""}, {"Thanks!", ""}, {"", ""},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(signedTwilio(PathTwilioInbound, inboundForm(c.body)))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Header().Get("Content-Type"), "text/xml")
			assert.Contains(t, rec.Body.String(), "<Response/>", "Twilio answers STOP/START itself")
			if c.kind == "" {
				assert.Empty(t, f.store.events())
				return
			}
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, Event{Kind: c.kind, Provider: ProviderTwilio, EventID: "SM0123456789abcdef0123456789abcdef", Channel: automation.ChannelSMS,
				Address: clientNumber, Sender: ourNumber, OccurredAt: now}, f.store.events()[0])
			f.noPersonalData(t)
		})
	}
}

func TestTwilioHelpAnsweredInTwiML(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SMSHelpText = "Acme & Co reminders. Reply STOP to stop." })
	rec := f.do(signedTwilio(PathTwilioInbound, inboundForm("help")))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "<Response><Message>Acme &amp; Co reminders. Reply STOP to stop.</Message></Response>")
	assert.Zero(t, f.store.called(), "HELP records nothing")
}

func TestTwilioSignatureCoversURLAndQuery(t *testing.T) {
	f := newFixture(t)
	form := inboundForm("STOP")
	path := PathTwilioInbound + "?org=1"
	// signed for another URL: refused
	rec := f.do(twilioRequest(path, form, twilioSign(twilioToken, publicURL+PathTwilioInbound, form)))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	rec = f.do(twilioRequest(path, form, twilioSign(twilioToken, publicURL+path, form)))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Len(t, f.store.events(), 1)
}

func TestTwilioHostWithoutPublicURL(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.PublicURL = "" })
	form := inboundForm("STOP")
	r := twilioRequest(PathTwilioInbound, form, twilioSign(twilioToken, "https://abc.lambda-url.eu-west-1.on.aws"+PathTwilioInbound, form))
	r.Host = "abc.lambda-url.eu-west-1.on.aws"
	assert.Equal(t, http.StatusOK, f.do(r).Code)
	assert.Len(t, f.store.events(), 1)
}

func TestTwilioUnverifiedRefused(t *testing.T) {
	form := inboundForm("STOP")
	tampered := inboundForm("STOP")
	tampered.Set("From", "+14155550199")
	status := statusForm("undelivered", "30005")
	statusTampered := statusForm("delivered", "")
	cases := map[string]*http.Request{
		"missing":        twilioRequest(PathTwilioInbound, form, ""),
		"other token":    twilioRequest(PathTwilioInbound, form, twilioSign("ffffffffffffffffffffffffffffffff", publicURL+PathTwilioInbound, form)),
		"tampered body":  twilioRequest(PathTwilioInbound, tampered, twilioSign(twilioToken, publicURL+PathTwilioInbound, form)),
		"status missing": twilioRequest(PathTwilioStatus, url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}, ""),
		"status other token": twilioRequest(PathTwilioStatus, status,
			twilioSign("ffffffffffffffffffffffffffffffff", publicURL+PathTwilioStatus, status)),
		"status tampered": twilioRequest(PathTwilioStatus, statusTampered, twilioSign(twilioToken, publicURL+PathTwilioStatus, status)),
		"status signed for the inbound path": twilioRequest(PathTwilioStatus, status,
			twilioSign(twilioToken, publicURL+PathTwilioInbound, status)),
		"status garbage": twilioRequest(PathTwilioStatus, status, "not base64!"),
		"garbage":        twilioRequest(PathTwilioInbound, form, "not base64!"),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(r)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Zero(t, f.store.called())
		})
	}
}

// Twilio's scheme has no timestamp: a replayed request verifies again, and
// carries the same event id, which the database records once.
func TestTwilioReplaySameEventID(t *testing.T) {
	f := newFixture(t)
	form := inboundForm("STOP")
	require.Equal(t, http.StatusOK, f.do(signedTwilio(PathTwilioInbound, form)).Code)
	require.Equal(t, http.StatusOK, f.do(signedTwilio(PathTwilioInbound, form)).Code)
	ev := f.store.events()
	require.Len(t, ev, 2)
	assert.Equal(t, ev[0].EventID, ev[1].EventID)
}

func statusForm(status, code string) url.Values {
	v := url.Values{"MessageSid": {"SMaaaabbbbccccddddeeeeffff00001111"}, "MessageStatus": {status}, "SmsStatus": {status},
		"To": {clientNumber}, "From": {ourNumber}, "AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "ApiVersion": {"2010-04-01"}}
	if code != "" {
		v.Set("ErrorCode", code)
	}
	return v
}

func TestTwilioStatusCallbacks(t *testing.T) {
	const sid = "SMaaaabbbbccccddddeeeeffff00001111"
	cases := []struct {
		status, code string
		want         *Event
	}{
		{"delivered", "", &Event{Status: StatusDelivered}},
		{"undelivered", "30005", &Event{Status: StatusBounced, Permanent: true, Reason: "undelivered error 30005"}},
		{"failed", "30006", &Event{Status: StatusBounced, Permanent: true, Reason: "failed error 30006"}},
		{"undelivered", "30003", &Event{Status: StatusUndelivered, Reason: "undelivered error 30003"}},
		{"sent", "", nil},
		{"queued", "", nil},
	}
	for _, c := range cases {
		t.Run(c.status+c.code, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(signedTwilio(PathTwilioStatus, statusForm(c.status, c.code)))
			require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
			if c.want == nil {
				assert.Empty(t, f.store.events())
				return
			}
			want := *c.want
			want.Kind, want.Provider, want.Channel, want.EventID = KindDelivery, ProviderTwilio, automation.ChannelSMS, sid+":"+c.status
			want.Address, want.ProviderMessageID, want.OccurredAt = clientNumber, sid, now
			require.Len(t, f.store.events(), 1)
			assert.Equal(t, want, f.store.events()[0])
			f.noPersonalData(t)
		})
	}
}

func TestTwilioStoreFailureIs503(t *testing.T) {
	f := newFixture(t)
	f.store.err = errStoreDown
	rec := f.do(signedTwilio(PathTwilioInbound, inboundForm("STOP")))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	f.noPersonalData(t)
}

// A Store failure as shared/supabase returns it (an *automation.Error with
// code internal_error) is no rejection: 503 with the generic answer, never
// its text.
func TestCodedStoreFailureIs503(t *testing.T) {
	f := newFixture(t)
	f.store.err = automation.NewError(automation.CodeInternal, "", errors.New("rpc automation_record_provider_events: status 500: boom"))
	rec := f.do(signedTwilio(PathTwilioInbound, inboundForm("STOP")))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"not recorded, try again later"}`, rec.Body.String())
	f.noPersonalData(t)
}
