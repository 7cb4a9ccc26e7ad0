package providerevents

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/phone"
)

// Telnyx's signature headers: the base64 Ed25519 signature, by the
// account's key, of "<timestamp>|<raw body>", and the Unix timestamp.
const (
	HeaderTelnyxSignature = "Telnyx-Signature-Ed25519"
	HeaderTelnyxTimestamp = "Telnyx-Timestamp"
)

// telnyxPermanent are the delivery error codes that say the number itself
// cannot receive SMS.
var telnyxPermanent = map[string]bool{
	"40001": true, // not routable (landline or non-routable number)
	"40300": true, // blocked due to STOP message
}

type telnyxTo struct {
	PhoneNumber string `json:"phone_number"`
	Status      string `json:"status"`
}

// telnyxErrorObject is one element of a Telnyx delivery event's "errors"
// (JSON, not a Go error).
type telnyxErrorObject struct {
	Code  json.RawMessage `json:"code"` // a string ("40001"), or a number
	Title string          `json:"title"`
}

type telnyxWebhook struct {
	Data struct {
		EventType  string `json:"event_type"`
		ID         string `json:"id"`
		OccurredAt string `json:"occurred_at"`
		Payload    struct {
			ID   string `json:"id"`
			From struct {
				PhoneNumber string `json:"phone_number"`
			} `json:"from"`
			To     []telnyxTo          `json:"to"`
			Text   string              `json:"text"`
			Errors []telnyxErrorObject `json:"errors"`
		} `json:"payload"`
	} `json:"data"`
}

// verifyTelnyx checks the Ed25519 signature and the timestamp window.
func (h *Handler) verifyTelnyx(r *http.Request, body []byte) error {
	sig, ts := r.Header.Get(HeaderTelnyxSignature), r.Header.Get(HeaderTelnyxTimestamp)
	if sig == "" || ts == "" {
		return reject(automation.CodeUnauthorized, "missing Telnyx signature headers")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return reject(automation.CodeUnauthorized, "bad "+HeaderTelnyxTimestamp)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return reject(automation.CodeUnauthorized, "bad "+HeaderTelnyxSignature)
	}
	msg := make([]byte, 0, len(ts)+1+len(body))
	msg = append(append(append(msg, ts...), '|'), body...)
	if !ed25519.Verify(h.opt.TelnyxPublicKey, msg, raw) {
		return reject(automation.CodeUnauthorized, "bad "+HeaderTelnyxSignature)
	}
	// checked after the signature: the timestamp is only trusted once signed
	if !withinWindow(secs, h.now()) {
		return reject(automation.CodeUnauthorized, "timestamp outside the replay window")
	}
	return nil
}

// serveTelnyx verifies and handles a Telnyx messaging webhook:
// message.received (keywords) and message.sent / message.finalized
// (delivery reports). HELP is not answered here: Telnyx answers keywords
// with the messaging profile's auto-responses (its "info" keywords), and
// ignores a webhook's answer body.
func (h *Handler) serveTelnyx(w http.ResponseWriter, r *http.Request, log *slog.Logger) error {
	body, err := h.readBody(r)
	if err != nil {
		return err
	}
	if err := h.verifyTelnyx(r, body); err != nil {
		return err
	}
	var wh telnyxWebhook
	if err := json.Unmarshal(body, &wh); err != nil || wh.Data.ID == "" {
		return reject(automation.CodeInvalidRequest, "not a Telnyx webhook")
	}
	d := wh.Data
	at := h.now()
	if t, err := time.Parse(time.RFC3339Nano, d.OccurredAt); err == nil {
		at = t.UTC()
	}
	var events []Event
	switch d.EventType {
	case "message.received":
		to := ""
		if len(d.Payload.To) > 0 {
			to = d.Payload.To[0].PhoneNumber
		}
		if e, ok := keywordEvent(ProviderTelnyx, d.ID, ParseKeyword(d.Payload.Text), d.Payload.From.PhoneNumber, to, at); ok {
			events = append(events, e)
		}
	case "message.sent", "message.finalized":
		events = telnyxDeliveryEvents(d.ID, d.Payload.ID, d.Payload.To, d.Payload.Errors, at)
	}
	if err := h.record(r, log, ProviderTelnyx, events); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{})
	return nil
}

// telnyxDeliveryEvents maps each recipient's final status: delivered, or
// delivery_failed / sending_failed (bounced with a permanent code, else
// undelivered: smsFailureStatus); sent, queued and
// delivery_unconfirmed are not final and are not recorded.
func telnyxDeliveryEvents(eventID, msgID string, to []telnyxTo, errs []telnyxErrorObject, at time.Time) []Event {
	if msgID == "" {
		return nil
	}
	var codes, titles []string
	permanent := false
	for _, e := range errs {
		c := strings.Trim(string(e.Code), `" `)
		codes = append(codes, c)
		titles = append(titles, e.Title)
		permanent = permanent || telnyxPermanent[c]
	}
	var out []Event
	for i, t := range to {
		e := Event{Kind: KindDelivery, Provider: ProviderTelnyx, EventID: eventID, Channel: automation.ChannelSMS,
			ProviderMessageID: msgID, OccurredAt: at}
		if i > 0 {
			e.EventID += ":" + strconv.Itoa(i)
		}
		if phone.IsE164(t.PhoneNumber) {
			e.Address = t.PhoneNumber
		}
		switch t.Status {
		case "delivered":
			e.Status = StatusDelivered
		case "delivery_failed", "sending_failed":
			e.Status = smsFailureStatus(permanent)
			e.Permanent = permanent
			e.Reason = reason(t.Status, strings.Join(codes, ","), strings.Join(titles, "; "))
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}
