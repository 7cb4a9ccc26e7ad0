package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The same idempotency key twice in one automation_begin_deliveries call:
// only the first intent may be new (sent once); the repeat is invalid (never
// sent), as a repeated execution in one report counts only once.
func TestBeginDeliveriesDuplicateKeyInOneCall(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 1, "5")
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	d := deliveryFor(execs[0], got[0].Execution.LeaseToken)
	b := pgtest.BeginDeliveries(t, db, d, d)
	assert.Equal(t, []automation.BeginState{automation.BeginNew, automation.BeginInvalid}, []automation.BeginState{b[0].State, b[1].State})
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1`, execs[0]))
	// a later call with the key once: it began and never finished
	assert.Equal(t, automation.BeginAmbiguous, pgtest.BeginDeliveries(t, db, d)[0].State)
}
