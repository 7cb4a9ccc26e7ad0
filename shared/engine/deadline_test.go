package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/shared/automation"
)

// The deadline passes between the claim and the ledger call (a long batch,
// an appointment that starts meanwhile): the ledger answers expired and the
// engine sends nothing and fails the execution as expired, while the other
// execution of the batch is sent.
func TestLedgerExpiredSendsNothing(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	late := invoiceDoc(email)
	dl := f.now.Add(time.Hour)
	late.Execution.DeadlineAt = &dl
	lateID, onTime := f.store.Add(late), f.store.Add(invoiceDoc(email))
	f.store.Now = func() time.Time { return f.now.Add(2 * time.Hour) } // the database's clock has moved past it

	sum := f.process(t, lateID, onTime)
	assert.Equal(t, 1, sum.Completed)
	assert.Equal(t, 1, sum.Failed)
	assert.Equal(t, 1, f.email.count(), "only the execution still before its deadline is sent")
	o := f.lastOutcome(t, lateID)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeExpired, o.ErrorCode)
	assert.Empty(t, o.Deliveries)
}
