package engine

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

// droppedAfterData fails every send as a connection lost after the
// hand-over: the provider may have the message.
func droppedAfterData(notify.Message) error {
	return notify.Fail(notify.CodeNetwork, &notify.Error{Provider: "smtp", Ambiguous: true,
		Err: errors.New("end of DATA: connection lost")})
}

// A ledger failure must not report anything for the deliveries it did not
// begin: a "failed, retryable" result would re-arm an earlier attempt's
// unknown or sending row, and the next attempt would send it a second time.
func TestLedgerFailureNeverReArmsAnEarlierDelivery(t *testing.T) {
	t.Run("sent, report lost", func(t *testing.T) {
		f := newFixture(t, automation.ActionInvoiceReminder)
		id := f.store.Add(invoiceDoc(email))
		f.store.FailReport = true
		_, _ = f.eng.Process(t.Context(), automation.Request{Action: f.eng.o.Action, ExecutionIDs: []uuid.UUID{id}})
		f.store.FailReport = false
		f.store.Expire()
		f.store.FailBegin = true
		f.process(t, id) // the ledger blips; the report gets through
		f.store.FailBegin = false
		f.process(t, id)
		assert.Equal(t, 1, f.email.count(), "handed to the provider once")
		assert.Equal(t, automation.StatusCompleted, f.store.Get(id).Status)
		assert.Equal(t, automation.CodeDeliveryUnknown, f.store.Get(id).ErrorCode)
	})
	t.Run("dropped after DATA, then a ledger blip", func(t *testing.T) {
		f := newFixture(t, automation.ActionInvoiceReminder)
		id := f.store.Add(invoiceDoc(email))
		f.email.fail = droppedAfterData
		f.process(t, id)
		f.email.fail = nil
		f.store.FailBegin = true
		f.process(t, id)
		f.store.FailBegin = false
		f.process(t, id)
		assert.Equal(t, 1, f.email.count(), "the maybe-accepted message is never handed over again")
		assert.Equal(t, automation.CodeDeliveryUnknown, f.store.Get(id).ErrorCode)
	})
}

// An unknown delivery flags its execution even when a later attempt skips
// or fails it: the reason stays in the message.
func TestUnknownDeliveryFlagsSkippedAndFailed(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email)
	id := f.store.Add(doc)
	f.email.fail = droppedAfterData
	f.process(t, id)
	f.email.fail = nil
	// the invoice is paid before the next attempt
	ex := f.store.Execs[id]
	inv := *ex.Doc.Invoice
	inv.Status = "paid"
	ex.Doc.Invoice = &inv
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeDeliveryUnknown, o.ErrorCode)
	assert.Contains(t, o.ErrorMessage, automation.CodeInvoiceSettled)
	require.Equal(t, 1, f.email.count())
}
