// Package providerevents receives what the messaging providers and the
// recipients tell dueflow after a message was handed over: one-click
// unsubscribe requests (RFC 8058) carrying a signed token
// (shared/unsubscribe), inbound SMS keywords (STOP, START, HELP) from Twilio
// and Telnyx, and delivery events from Mailgun, Twilio and Telnyx. Each
// request is verified with its provider's own scheme (Mailgun's HMAC
// signing key, Twilio's X-Twilio-Signature, Telnyx's Ed25519 signature)
// before its body is read beyond what verification needs; an unverifiable
// request is answered 401 and changes nothing. A rejection is an
// *automation.Error with a request code, mapped to its HTTP status by the
// handler (statusOf); a Store failure is a 503. What verifies becomes
// normalised Events handed to a Store (the database RPC
// automation_record_provider_events). Nothing personal (addresses, numbers,
// message text) or secret is logged.
package providerevents

import (
	"context"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// Event kinds.
const (
	KindOptOut   = "opt_out"
	KindOptIn    = "opt_in"
	KindDelivery = "delivery"
)

// Event providers.
const (
	ProviderLink    = "link" // a one-click unsubscribe link
	ProviderMailgun = "mailgun"
	ProviderTwilio  = "twilio"
	ProviderTelnyx  = "telnyx"
)

// Delivery statuses.
const (
	StatusDelivered    = "delivered"
	StatusBounced      = "bounced"
	StatusComplained   = "complained"
	StatusUndelivered  = "undelivered"
	StatusDeferred     = "deferred"
	StatusUnsubscribed = "unsubscribed"
)

// smsFailureStatus is the status of an SMS the carrier did not deliver: a
// permanent failure (the number cannot receive SMS) is the SMS's hard
// bounce, bounced, which suppresses the number and counts as bounced; any
// other is undelivered.
func smsFailureStatus(permanent bool) string {
	if permanent {
		return StatusBounced
	}
	return StatusUndelivered
}

// MaxReasonBytes bounds Event.Reason.
const MaxReasonBytes = 200

// Event is one normalised fact reported by a provider or a recipient. The
// JSON keys are those automation_record_provider_events reads; empty
// optional values are left out (null in the database).
type Event struct {
	Kind              string             `json:"kind"`                      // KindOptOut | KindOptIn | KindDelivery
	Provider          string             `json:"provider"`                  // ProviderLink | ProviderMailgun | ProviderTwilio | ProviderTelnyx
	EventID           string             `json:"event_id"`                  // provider's unique event id (idempotence key; links: sha256 of the token)
	OrganizationID    string             `json:"organization_id,omitempty"` // from the unsubscribe token; empty otherwise
	ClientID          string             `json:"client_id,omitempty"`       // from the unsubscribe token; empty otherwise
	Channel           automation.Channel `json:"channel"`
	Address           string             `json:"address,omitempty"`             // SMS keyword: the sender's E.164 number; delivery: the recipient
	Sender            string             `json:"sender,omitempty"`              // SMS keyword: our number that received it (E.164)
	ProviderMessageID string             `json:"provider_message_id,omitempty"` // delivery: the provider's message id, as the ledger recorded it
	Status            string             `json:"status,omitempty"`              // delivery: one of the Status constants
	Permanent         bool               `json:"permanent"`                     // delivery: a hard bounce / permanent failure
	Reason            string             `json:"reason,omitempty"`              // provider's reason, at most MaxReasonBytes, no address or text
	OccurredAt        time.Time          `json:"occurred_at"`
}

// Recorded is what the Store did with a batch of events.
type Recorded struct {
	Recorded   int `json:"recorded"`   // new events applied
	Duplicates int `json:"duplicates"` // (provider, event id) seen before: nothing changed
	Unmatched  int `json:"unmatched"`  // no ledger row / organisation matched: nothing changed (a delivery event whose message id no row has yet is parked until one has)
}

// Store records events (shared/supabase's client, through the RPC
// automation_record_provider_events). It must be idempotent per
// (Provider, EventID): providers deliver an event more than once.
type Store interface {
	RecordProviderEvents(ctx context.Context, events []Event) (Recorded, error)
}
