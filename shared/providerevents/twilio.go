package providerevents

import (
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/phone"
)

// HeaderTwilioSignature carries Twilio's signature: base64 HMAC-SHA1, keyed
// with the account's auth token, of the full URL Twilio called followed by
// the form parameters sorted by name (name then value, concatenated).
const HeaderTwilioSignature = "X-Twilio-Signature"

// twilioPermanent are the error codes of a status callback that say the
// number itself cannot receive SMS (a hard bounce); the others are
// temporary or concern the sender.
var twilioPermanent = map[string]bool{
	"21211": true, // invalid 'To' number
	"21610": true, // the recipient replied STOP
	"21614": true, // 'To' is not a mobile number
	"30005": true, // unknown destination handset
	"30006": true, // landline or unreachable carrier
}

// twilioURL is the URL Twilio called: PublicURL (or https://<Host>) with
// the request's path and query.
func (h *Handler) twilioURL(r *http.Request) string {
	base := h.opt.PublicURL
	if base == "" {
		base = "https://" + r.Host
	}
	u := base + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// serveTwilio verifies and handles an inbound SMS (inbound) or a status
// callback.
func (h *Handler) serveTwilio(w http.ResponseWriter, r *http.Request, inbound bool, log *slog.Logger) error {
	body, err := h.readBody(r)
	if err != nil {
		return err
	}
	sig := r.Header.Get(HeaderTwilioSignature)
	if sig == "" {
		return reject(automation.CodeUnauthorized, "missing "+HeaderTwilioSignature)
	}
	// twilio-go's validator: the scheme as Twilio's own libraries check it
	// (with and without the default port; bodySHA256 for JSON bodies).
	v := twclient.NewRequestValidator(h.opt.TwilioAuthToken)
	if !v.ValidateBody(h.twilioURL(r), body, sig) {
		return reject(automation.CodeUnauthorized, "bad "+HeaderTwilioSignature)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return reject(automation.CodeInvalidRequest, "body is not a form")
	}
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsSid")
	}
	if !inbound {
		var events []Event
		if e, ok := twilioStatusEvent(form, sid, h.now()); ok {
			events = append(events, e)
		}
		if err := h.record(r, log, ProviderTwilio, events); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	k := ParseKeyword(form.Get("Body"))
	var events []Event
	if e, ok := keywordEvent(ProviderTwilio, sid, k, form.Get("From"), form.Get("To"), h.now()); ok {
		events = append(events, e)
	}
	if err := h.record(r, log, ProviderTwilio, events); err != nil {
		return err
	}
	// Twilio answers STOP and START itself (its default opt-out handling);
	// HELP is answered here, in TwiML.
	reply := ""
	if k == KeywordHelp {
		reply = h.opt.SMSHelpText
	}
	writeTwiML(w, reply)
	return nil
}

// twilioStatusEvent reads a status callback: delivered, undelivered and
// failed are recorded; queued, sent and the other intermediate states are
// not.
func twilioStatusEvent(form url.Values, sid string, now time.Time) (Event, bool) {
	status := strings.ToLower(form.Get("MessageStatus"))
	if status == "" {
		status = strings.ToLower(form.Get("SmsStatus"))
	}
	e := Event{Kind: KindDelivery, Provider: ProviderTwilio, EventID: sid + ":" + status, Channel: automation.ChannelSMS,
		Address: form.Get("To"), ProviderMessageID: sid, OccurredAt: now}
	if !phone.IsE164(e.Address) {
		e.Address = ""
	}
	code := strings.TrimSpace(form.Get("ErrorCode"))
	switch status {
	case "delivered":
		e.Status = StatusDelivered
	case "undelivered", "failed":
		e.Permanent = twilioPermanent[code]
		e.Status = smsFailureStatus(e.Permanent)
		e.Reason = reason(status, errorCode(code))
	default:
		return Event{}, false
	}
	if sid == "" {
		return Event{}, false
	}
	return e, true
}

func errorCode(code string) string {
	if code == "" || code == "0" {
		return ""
	}
	return "error " + code
}

// writeTwiML answers a Twilio messaging webhook: an empty <Response/>, or
// one <Message> with reply.
func writeTwiML(w http.ResponseWriter, reply string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	var b strings.Builder
	b.WriteString(xml.Header)
	if reply == "" {
		b.WriteString("<Response/>")
	} else {
		b.WriteString("<Response><Message>")
		_ = xml.EscapeText(&b, []byte(reply))
		b.WriteString("</Message></Response>")
	}
	_, _ = w.Write([]byte(b.String()))
}
