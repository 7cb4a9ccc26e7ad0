package sqltest_test

import (
	"encoding/json"
	"fmt"
	"sync"
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
	in := beginMailgunDelivery(t, db, exec)

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

// The other order: the ledger's transaction records the message id while the
// event is being parked, so the trigger sees no parked row and the park
// check sees no committed ledger row. The next provider-events call sweeps
// it: the bounce applies once the id is visible.
func TestParkedEventSweptAfterConcurrentLedger(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, _, exec := optoutSetup(t, db, "ada@a.test", "")
	in := beginMailgunDelivery(t, db, exec)

	tx, err := db.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(t.Context()) //nolint:errcheck // committed below
	pgtest.RecordDeliveries(t, tx, []automation.DeliveryFinished{
		finishedAs(in, automation.DeliveryResult{Status: "sent", ProviderMessageID: "m-race"})})

	ev := providerEvent{Kind: "delivery", Provider: "mailgun", EventID: "race", Channel: "email", ProviderMessageID: "m-race",
		Address: "ada@a.test", Status: "bounced", Permanent: true}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, ev), "the ledger's id is not committed yet")
	require.NoError(t, tx.Commit(t.Context()))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`), "the trigger could not see it")

	pgtest.Exec(t, db, `select automation_record_provider_events('[]')`)
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	assert.Equal(t, "bounced", pgtest.Text(t, db, `select delivery_status from automation_deliveries where execution_id = $1`, exec))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_suppressions where organization_id = $1 and reason = 'bounced'`, org))
}

// A parked event whose apply fails stays parked (the failure rolls its
// removal back) and applies on a later sweep.
func TestParkedEventStaysWhenItsApplyFails(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, exec := optoutSetup(t, db, "ada@a.test", "")
	in := beginMailgunDelivery(t, db, exec)
	ev := providerEvent{Kind: "delivery", Provider: "mailgun", EventID: "fails", Channel: "email", ProviderMessageID: "m-fails",
		Address: "ada@a.test", Status: "delivered"}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, ev))
	// the event's apply raises (a constraint that refuses it stands in for a
	// deadlock or lock timeout)
	pgtest.Exec(t, db, `alter table automation_provider_events add constraint zz_refuse check (event_id <> 'fails') not valid`)
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(in, automation.DeliveryResult{Status: "sent", ProviderMessageID: "m-fails"})})
	assert.Equal(t, "sent", pgtest.Text(t, db, `select status from automation_deliveries where execution_id = $1`, exec), "the ledger's write went on")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	assert.Equal(t, "", pgtest.Text(t, db, `select coalesce(delivery_status, '') from automation_deliveries where execution_id = $1`, exec))

	pgtest.Exec(t, db, `alter table automation_provider_events drop constraint zz_refuse`)
	pgtest.Exec(t, db, `select automation_record_provider_events('[]')`)
	assert.Equal(t, "delivered", pgtest.Text(t, db, `select delivery_status from automation_deliveries where execution_id = $1`, exec))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
}

// beginMailgunDelivery claims exec and begins its email to ada@a.test
// through mailgun (no provider message id yet).
func beginMailgunDelivery(t *testing.T, db pgtest.DB, exec uuid.UUID) automation.DeliveryIntent {
	t.Helper()
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{exec}, 60)
	require.Len(t, got, 1)
	in := automation.DeliveryIntent{ExecutionID: exec, LeaseToken: got[0].Execution.LeaseToken, Channel: "email",
		Recipient: "ada@a.test", Provider: "mailgun", IdempotencyKey: automation.IdempotencyKey(exec, 0, "email")}
	require.Equal(t, "new", string(pgtest.RecordDeliveries(t, db, nil, in)[0].State))
	return in
}

// The sweep on each provider-events call reads only the events parked in
// the last 15 minutes (a webhook shared with another sender parks that
// sender's events for 7 days); the daily cleanup sweeps them all.
func TestParkedEventSweepWindow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, exec := optoutSetup(t, db, "ada@a.test", "")
	in := beginMailgunDelivery(t, db, exec)
	ev := providerEvent{Kind: "delivery", Provider: "mailgun", EventID: "old", Channel: "email", ProviderMessageID: "m-old",
		Address: "ada@a.test", Status: "delivered"}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, ev))
	pgtest.Exec(t, db, `alter table automation_deliveries disable trigger automation_deliveries_parked_events`)
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(in, automation.DeliveryResult{Status: "sent", ProviderMessageID: "m-old"})})
	pgtest.Exec(t, db, `alter table automation_deliveries enable trigger automation_deliveries_parked_events`)
	pgtest.Exec(t, db, `update automation_parked_provider_events set parked_at = now() - interval '1 hour'`)

	pgtest.Exec(t, db, `select automation_record_provider_events('[]')`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`), "older than the call's window")
	pgtest.Exec(t, db, `select automation_cleanup()`)
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	assert.Equal(t, "delivered", pgtest.Text(t, db, `select delivery_status from automation_deliveries where execution_id = $1`, exec))
}

// Ledger answers (through automation_record_deliveries and through
// automation_report, whose statements apply parked events in their own
// transaction) and the provider's delivery events for the same messages,
// all at once, for one organisation and workflow (so every apply updates
// the same analytics row): no call fails (a lock conflict inside a parked
// apply stays inside its subtransaction), and after the next sweep every
// event has applied exactly once.
func TestParkedEventsUnderConcurrentLedger(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	const n = 40
	_, wf, execs := pgtest.OverdueInvoices(t, db, n)
	claimed := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 300)
	intents := make([]automation.DeliveryIntent, n)
	for i, c := range claimed {
		intents[i] = automation.DeliveryIntent{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Channel: "email",
			Recipient: fmt.Sprintf("c%d@a.test", i), Provider: "mailgun", IdempotencyKey: automation.IdempotencyKey(c.Execution.ID, 0, "email")}
	}
	pgtest.RecordDeliveries(t, db, nil, intents...)

	ctx := t.Context()
	call := func(sql string, arg any) error {
		b, err := json.Marshal(arg)
		if err != nil {
			return err
		}
		_, err = db.Exec(ctx, sql, string(b))
		return err
	}
	event := func(i int) providerEvent {
		msgID := fmt.Sprintf("m-%d", i)
		return providerEvent{Kind: "delivery", Provider: "mailgun", EventID: "e-" + msgID, Channel: "email",
			ProviderMessageID: msgID, Address: intents[i].Recipient, Status: "delivered"}
	}
	// every third event arrives first, for certain: parked
	for i := 0; i < n; i += 3 {
		require.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, event(i)))
	}
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i, in := range intents {
		res := automation.DeliveryResult{IdempotencyKey: in.IdempotencyKey, Status: "sent", ProviderMessageID: event(i).ProviderMessageID}
		wg.Add(2)
		go func() { // the function's answer, by the ledger or in the report
			defer wg.Done()
			if i%2 == 0 {
				errs <- call(`select automation_record_deliveries($1::jsonb, '[]')`,
					[]automation.DeliveryFinished{{ExecutionID: in.ExecutionID, LeaseToken: in.LeaseToken, DeliveryResult: res}})
				return
			}
			errs <- call(`select automation_report($1::jsonb)`, []automation.Outcome{{ExecutionID: in.ExecutionID,
				LeaseToken: in.LeaseToken, Status: "completed", ActionsExecuted: 1, Deliveries: []automation.DeliveryResult{res}}})
		}()
		go func() { // the others' events, before or after; the first ones again (a provider's retry)
			defer wg.Done()
			errs <- call(`select automation_record_provider_events($1::jsonb)`, []providerEvent{event(i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	pgtest.Exec(t, db, `select automation_record_provider_events('[]')`) // the next call's sweep
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_parked_provider_events`))
	assert.Equal(t, n, pgtest.Int(t, db, `select count(*)::int from automation_deliveries
		where execution_id = any($1) and status = 'sent' and delivery_status = 'delivered'`, execs))
	assert.Equal(t, n, pgtest.Int(t, db, `select coalesce(sum(delivered), 0)::int from automation_analytics where workflow_id = $1`, wf),
		"each event counted once")
	assert.Equal(t, n/2, pgtest.Int(t, db, `select count(*)::int from automation_execution_logs
		where id = any($1) and status = 'completed'`, execs))
}
