// Package providerevents holds the normalised provider event that the
// provider-events function passes to the database (the contract of issue
// 12 between the "optout" and "events" engineers): an unsubscribe link, an
// SMS keyword or a delivery report, after its provider's signature was
// verified. The database side is the RPC automation_record_provider_events
// (shared/supabase.Client.RecordProviderEvents).
package providerevents

import (
	"context"
	"time"
)

// Event is one normalised provider event.
type Event struct {
	Kind              string    // "opt_out" | "opt_in" | "delivery"
	Provider          string    // "link" (unsubscribe link) | "mailgun" | "twilio" | "telnyx"
	EventID           string    // provider's unique event id (idempotence key; for links: sha256 of the token)
	OrganizationID    string    // from the unsubscribe token; empty for SMS keywords and delivery events
	ClientID          string    // from the unsubscribe token; empty otherwise
	Channel           string    // "email" | "sms"
	Address           string    // SMS keyword: the client's E.164 number; delivery: recipient (email or E.164); else ""
	Sender            string    // SMS keyword: our number that received it (E.164); else ""
	ProviderMessageID string    // delivery: the provider's message id as the ledger recorded it at send time
	Status            string    // delivery: "delivered" | "bounced" | "complained" | "undelivered" | "deferred" | "unsubscribed"
	Permanent         bool      // delivery: a hard bounce / permanent failure
	Reason            string    // provider's reason code/description, ≤ 200 chars, no address or message text
	OccurredAt        time.Time // zero: when the database records it
}

// Store records events in the database.
type Store interface {
	RecordProviderEvents(ctx context.Context, events []Event) (Recorded, error)
}

// Recorded is what the database did with a call's events: applied, already
// applied before (same provider and event id), or matching nothing (no
// such delivery, client or number; not kept, so a retry may match later).
type Recorded struct{ Recorded, Duplicates, Unmatched int }
