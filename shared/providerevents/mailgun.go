package providerevents

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// mailgunEnvelope is the part of a Mailgun webhook read to verify it:
// "signature": {timestamp, token, signature}, the hex HMAC-SHA256 of
// timestamp + token keyed with the account's webhook signing key.
type mailgunEnvelope struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
}

// mailgunPayload is the rest, read once verified.
type mailgunPayload struct {
	EventData struct {
		Event     string  `json:"event"`
		ID        string  `json:"id"`
		Timestamp float64 `json:"timestamp"`
		Severity  string  `json:"severity"`
		Reason    string  `json:"reason"`
		Recipient string  `json:"recipient"`
		Message   struct {
			Headers struct {
				MessageID string `json:"message-id"`
			} `json:"headers"`
		} `json:"message"`
		DeliveryStatus struct {
			Code        json.RawMessage `json:"code"`
			Description string          `json:"description"`
			Message     string          `json:"message"`
		} `json:"delivery-status"`
	} `json:"event-data"`
}

// maxMailgunToken bounds the token kept against replays (Mailgun's are 50
// hex characters).
const maxMailgunToken = 256

// verifyMailgun checks the signature, then the timestamp window, then that
// the token was not used before (on this instance; the database ignores a
// repeated event id anyway).
func (h *Handler) verifyMailgun(body []byte) (token string, err error) {
	var env mailgunEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", reject(automation.CodeUnauthorized, "no Mailgun signature")
	}
	s := env.Signature
	if s.Timestamp == "" || s.Token == "" || s.Signature == "" || len(s.Token) > maxMailgunToken {
		return "", reject(automation.CodeUnauthorized, "no Mailgun signature")
	}
	got, err := hex.DecodeString(s.Signature)
	if err != nil {
		return "", reject(automation.CodeUnauthorized, "bad Mailgun signature")
	}
	mac := hmac.New(sha256.New, []byte(h.opt.MailgunSigningKey))
	mac.Write([]byte(s.Timestamp + s.Token))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "", reject(automation.CodeUnauthorized, "bad Mailgun signature")
	}
	secs, err := strconv.ParseInt(s.Timestamp, 10, 64)
	now := h.now()
	if err != nil || !withinWindow(secs, now) {
		return "", reject(automation.CodeUnauthorized, "timestamp outside the replay window")
	}
	fresh, full := h.tokens.add(s.Token, now)
	if full {
		return "", reject(automation.CodeUnavailable, "too many requests")
	}
	if !fresh {
		return "", reject(automation.CodeUnauthorized, "Mailgun token already used")
	}
	return s.Token, nil
}

// serveMailgun verifies and handles a Mailgun webhook (the JSON webhooks;
// the legacy form-encoded ones are not accepted).
func (h *Handler) serveMailgun(w http.ResponseWriter, r *http.Request, log *slog.Logger) error {
	body, err := h.readBody(r)
	if err != nil {
		return err
	}
	token, err := h.verifyMailgun(body)
	if err != nil {
		return err
	}
	var p mailgunPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return reject(automation.CodeInvalidRequest, "not a Mailgun webhook")
	}
	var events []Event
	if e, ok := mailgunEvent(p, h.now()); ok {
		events = append(events, e)
	}
	if err := h.record(r, log, ProviderMailgun, events); err != nil {
		// not recorded: the provider's retry of this very request must pass
		h.tokens.forget(token)
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{})
	return nil
}

// mailgunEvent maps delivered, failed (permanent: bounced; temporary:
// deferred), complained and unsubscribed; other events (accepted, opened,
// clicked) are not recorded.
func mailgunEvent(p mailgunPayload, now time.Time) (Event, bool) {
	d := p.EventData
	msgID := strings.Trim(strings.TrimSpace(d.Message.Headers.MessageID), "<>")
	if d.ID == "" || msgID == "" {
		return Event{}, false
	}
	at := now
	if d.Timestamp > 0 && !math.IsInf(d.Timestamp, 0) && d.Timestamp < 1e11 {
		sec, frac := math.Modf(d.Timestamp)
		at = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	e := Event{Kind: KindDelivery, Provider: ProviderMailgun, EventID: d.ID, Channel: automation.ChannelEmail,
		Address: strings.TrimSpace(d.Recipient), ProviderMessageID: msgID, OccurredAt: at}
	switch strings.ToLower(d.Event) {
	case "delivered":
		e.Status = StatusDelivered
	case "failed":
		e.Permanent = strings.EqualFold(d.Severity, "permanent")
		e.Status = StatusDeferred
		if e.Permanent {
			e.Status = StatusBounced
		}
		ds := d.DeliveryStatus
		e.Reason = reason(d.Reason, strings.Trim(string(ds.Code), `"`), ds.Description, ds.Message)
	case "complained":
		e.Status = StatusComplained
	case "unsubscribed":
		e.Status = StatusUnsubscribed
	default:
		return Event{}, false
	}
	return e, true
}
