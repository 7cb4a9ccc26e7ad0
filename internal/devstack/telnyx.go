package devstack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// SMS is one message accepted by the Telnyx-compatible sink.
type SMS struct {
	ID                 string    // the id answered, as Telnyx would
	From               string    // "from" of the request
	To                 string    // "to" of the request (E.164)
	Text               string    // "text" of the request
	MessagingProfileID string    // "messaging_profile_id", when given
	IdempotencyKey     string    // the Idempotency-Key header, when given
	ReceivedAt         time.Time // when the sink accepted it
}

// TelnyxSink is a small stand-in for Telnyx's POST /v2/messages: it checks
// the Bearer key, validates the JSON body, records the message and answers
// {"data":{...}} with a message id, or Telnyx's {"errors":[...]} shape.
type TelnyxSink struct {
	apiKey string
	// the provider's side of its webhooks (message.received,
	// message.finalized), signed like Telnyx's: Ed25519 over
	// "<timestamp>|<body>" (see PostInbound, PostDeliveryReport)
	signKey    ed25519.PrivateKey
	webhookURL string
	mu         sync.Mutex
	msgs       []SMS
	fail       []int // status codes to answer for the next requests, in order
	outage     int   // status code to answer every request with while non-zero
}

// NewTelnyxSink returns a sink that accepts requests carrying apiKey.
func NewTelnyxSink(apiKey string) *TelnyxSink {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &TelnyxSink{apiKey: apiKey, signKey: priv}
}

// PublicKey is the key the sink's webhooks verify with (TELNYX_PUBLIC_KEY).
func (s *TelnyxSink) PublicKey() ed25519.PublicKey { return s.signKey.Public().(ed25519.PublicKey) }

// SetWebhookURL is where the sink posts its webhooks (the messaging
// profile's webhook URL: provider-events' /telnyx).
func (s *TelnyxSink) SetWebhookURL(u string) {
	s.mu.Lock()
	s.webhookURL = u
	s.mu.Unlock()
}

// PostInbound posts a signed message.received webhook: from (a client's
// number) texted text to to (our number). It returns the HTTP status.
func (s *TelnyxSink) PostInbound(ctx context.Context, from, to, text string) (int, error) {
	return s.postWebhook(ctx, "message.received", map[string]any{
		"id": uuid.NewString(), "record_type": "message", "direction": "inbound", "type": "SMS", "text": text,
		"from":   map[string]string{"phone_number": from},
		"to":     []map[string]string{{"phone_number": to, "status": "webhook_delivered"}},
		"errors": []any{},
	})
}

// PostDeliveryReport posts a signed message.finalized webhook for a
// message the sink accepted: status "delivered", or "delivery_failed" with
// errCode (e.g. "40001", not routable). It returns the HTTP status.
func (s *TelnyxSink) PostDeliveryReport(ctx context.Context, m SMS, status, errCode string) (int, error) {
	errs := []map[string]string{}
	if errCode != "" {
		errs = append(errs, map[string]string{"code": errCode, "title": "Delivery failed", "detail": "injected by the local sink"})
	}
	return s.postWebhook(ctx, "message.finalized", map[string]any{
		"id": m.ID, "record_type": "message", "direction": "outbound", "type": "SMS",
		"from":   map[string]string{"phone_number": m.From},
		"to":     []map[string]string{{"phone_number": m.To, "status": status}},
		"errors": errs,
	})
}

func (s *TelnyxSink) postWebhook(ctx context.Context, eventType string, payload map[string]any) (int, error) {
	s.mu.Lock()
	target := s.webhookURL
	s.mu.Unlock()
	if target == "" {
		return 0, errors.New("telnyx sink: no webhook URL")
	}
	body, err := json.Marshal(map[string]any{
		"data": map[string]any{"event_type": eventType, "id": uuid.NewString(), "occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
			"payload": payload, "record_type": "event"},
		"meta": map[string]any{"attempt": 1, "delivered_to": target},
	})
	if err != nil {
		return 0, fmt.Errorf("telnyx sink: %w", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("telnyx sink: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Telnyx-Timestamp", ts)
	req.Header.Set("Telnyx-Signature-Ed25519", base64.StdEncoding.EncodeToString(ed25519.Sign(s.signKey, []byte(ts+"|"+string(body)))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("telnyx sink: post %s: %w", eventType, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Messages returns a copy of every recorded message, in arrival order.
func (s *TelnyxSink) Messages() []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMS(nil), s.msgs...)
}

// Reset forgets every recorded message.
func (s *TelnyxSink) Reset() {
	s.mu.Lock()
	s.msgs = nil
	s.mu.Unlock()
}

// FailNext makes the next len(statuses) valid requests fail with those HTTP
// statuses (e.g. 429, 503, 422) without recording them.
func (s *TelnyxSink) FailNext(statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.mu.Unlock()
}

// SetOutage makes the sink answer every valid request with status (e.g.
// 503) without recording it, until SetOutage(0): a provider outage.
func (s *TelnyxSink) SetOutage(status int) {
	s.mu.Lock()
	s.outage = status
	s.mu.Unlock()
}

type telnyxError struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

func writeTelnyxError(w http.ResponseWriter, status int, code, title, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string][]telnyxError{"errors": {{Code: code, Title: title, Detail: detail}}})
}

// ServeHTTP handles POST .../v2/messages.
//
// Long: the Telnyx sink's one endpoint: decode, scripted answer, delivery report
func (s *TelnyxSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/v2/messages") {
		writeTelnyxError(w, http.StatusNotFound, "10005", "Resource not found", r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		writeTelnyxError(w, http.StatusMethodNotAllowed, "10015", "Method not allowed", r.Method)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || s.apiKey == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.apiKey)) != 1 {
		writeTelnyxError(w, http.StatusUnauthorized, "10009", "Authentication failed", "The API key is missing or invalid.")
		return
	}
	var req struct {
		From               string `json:"from"`
		To                 string `json:"to"`
		Text               string `json:"text"`
		MessagingProfileID string `json:"messaging_profile_id"`
	}
	body, err := readLimited(r.Body, 1<<20)
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeTelnyxError(w, http.StatusBadRequest, "10015", "Invalid request body", "The body must be a JSON object.")
		return
	}
	switch {
	case !isE164(req.To):
		writeTelnyxError(w, http.StatusUnprocessableEntity, "40310", "Invalid 'to' address", "The 'to' address must be an E.164 number.")
		return
	case req.From == "" && req.MessagingProfileID == "":
		writeTelnyxError(w, http.StatusUnprocessableEntity, "40305", "Invalid 'from' address", "Either 'from' or 'messaging_profile_id' is required.")
		return
	case req.Text == "":
		writeTelnyxError(w, http.StatusUnprocessableEntity, "40002", "Missing text", "The 'text' parameter is required.")
		return
	}
	s.mu.Lock()
	if len(s.fail) > 0 || s.outage != 0 {
		status := s.outage
		if len(s.fail) > 0 {
			status = s.fail[0]
			s.fail = s.fail[1:]
		}
		s.mu.Unlock()
		writeTelnyxError(w, status, "10011", http.StatusText(status), "injected by the test sink")
		return
	}
	m := SMS{ID: uuid.NewString(), From: req.From, To: req.To, Text: req.Text, MessagingProfileID: req.MessagingProfileID,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), ReceivedAt: time.Now()}
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
		"record_type":          "message",
		"direction":            "outbound",
		"id":                   m.ID,
		"type":                 "SMS",
		"messaging_profile_id": m.MessagingProfileID,
		"from":                 map[string]string{"phone_number": m.From},
		"to":                   []map[string]string{{"phone_number": m.To, "status": "queued"}},
		"text":                 m.Text,
		"parts":                1,
		"received_at":          m.ReceivedAt.UTC().Format(time.RFC3339Nano),
	}})
}

func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
