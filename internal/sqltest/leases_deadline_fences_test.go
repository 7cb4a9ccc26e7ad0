package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// A claimed execution whose deadline passes while its batch runs (an
// appointment that starts before the function reaches it): the ledger begins
// nothing for it (answer expired), so its message is never sent; the other
// execution of the same call begins as usual.
func TestBeginDeliveriesRefusedPastDeadline(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, db, 2)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	require.Len(t, got, 2)
	late, onTime := got[0].Execution, got[1].Execution
	pgtest.Exec(t, db, `update automation_execution_logs set deadline_at = now() - interval '1 second' where id = $1`, late.ID)

	b := pgtest.BeginDeliveries(t, db, deliveryFor(late.ID, late.LeaseToken), deliveryFor(onTime.ID, onTime.LeaseToken))
	assert.Equal(t, []automation.BeginState{automation.BeginExpired, automation.BeginNew}, []automation.BeginState{b[0].State, b[1].State})
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1`, late.ID), "nothing recorded past the deadline")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1`, onTime.ID))
}

// An operator retry takes the execution's old outcome back from the
// analytics row of the UTC day the counter trigger added it to, whatever the
// TimeZone of the operator's session (at any instant one of UTC+14 and
// UTC-11 is on another date than UTC).
func TestRetryTakesBackTheUTCDayWhateverTheSessionZone(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			db, _ := pgtest.NewDB(t)
			_, wf, execs := pgtest.OverdueInvoices(t, db, 1)
			require.Len(t, execs, 1)
			require.True(t, operate(t, db, `select automation_cancel_execution($1)`, execs[0]).Applied)
			utcDay := `(now() at time zone 'UTC')::date`
			require.Equal(t, 1, pgtest.Int(t, db, `select execution_count from automation_analytics where workflow_id = $1 and date = `+utcDay, wf))

			conn, err := db.Acquire(t.Context())
			require.NoError(t, err)
			defer conn.Release()
			pgtest.Exec(t, conn, `select set_config('TimeZone', $1, false)`, zone)
			require.True(t, operate(t, conn, `select automation_retry_execution($1)`, execs[0]).Applied)
			pgtest.Exec(t, conn, `reset TimeZone`)
			assert.Zero(t, pgtest.Int(t, db, `select execution_count from automation_analytics where workflow_id = $1 and date = `+utcDay, wf),
				"the outcome is taken back from its own day")
		})
	}
}
