package sqlfiles_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// A bounce that arrives before the function has recorded the message's
// provider id (the chunk's answers are written after the chunk is sent) is
// parked, and applied when the ledger row gets that id: the delivery is
// bounced, the address suppressed and the bounce counted, as if the event
// had come after. An event whose row exists with another recipient is not
// parked.
func TestProviderEventBeforeItsMessageID(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, wf, exec := optoutSetup(t, db, "ada@a.test", "")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{exec}, 60)
	require.Len(t, got, 1)
	in := automation.DeliveryIntent{ExecutionID: exec, LeaseToken: got[0].Execution.LeaseToken, Channel: "email",
		Recipient: "ada@a.test", Provider: "mailgun", IdempotencyKey: automation.IdempotencyKey(exec, 0, "email")}
	require.Equal(t, "new", string(pgtest.RecordDeliveries(t, db, nil, in)[0].State))

	early := providerEvent{Kind: "delivery", Provider: "mailgun", EventID: "early", Channel: "email", ProviderMessageID: "m-early",
		Address: "ada@a.test", Status: "bounced", Permanent: true, Reason: "mailbox does not exist"}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, early))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_suppressions`), "nothing applied yet")
	// the provider sends it again: still parked once
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, early))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))

	// the chunk's answer arrives: the parked bounce applies in the same statement
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(in, automation.DeliveryResult{Status: "sent", ProviderMessageID: "m-early"})})
	assert.Equal(t, "sent bounced", pgtest.Text(t, db,
		`select status || ' ' || coalesce(delivery_status, '') from automation_deliveries where execution_id = $1`, exec))
	assert.Equal(t, 1, pgtest.Int(t, db,
		`select count(*)::int from automation_suppressions where organization_id = $1 and address = 'ada@a.test' and reason = 'bounced'`, org))
	assert.Equal(t, 1, pgtest.Int(t, db, `select sum(bounced)::int from automation_delivery_analytics where workflow_id = $1`, wf))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	// applied once: a later repeat is a duplicate
	assert.Equal(t, eventCounts{Duplicates: 1}, recordEvents(t, db, early))

	// a row with that id exists but names another recipient: not that message, not parked
	other := early
	other.EventID, other.Address = "other", "someone@else.test"
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, other))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))

	// parked events expire after 7 days
	late := early
	late.EventID, late.ProviderMessageID = "never", "m-never"
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, late))
	pgtest.Exec(t, db, `update automation_parked_provider_events set parked_at = now() - interval '8 days'`)
	pgtest.Exec(t, db, `select automation_record_provider_events('[]')`)
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
}
