package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// Analytics days are UTC days whatever the session's TimeZone: at any
// instant one of UTC+14 and UTC-11 is on another calendar date than UTC, so
// a count keyed by the session's current_date lands on the wrong day in one
// of them — both from the outcome trigger and from the recompute.
func TestAnalyticsDayIsUTCWhateverTheSessionZone(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			db, _ := pgtest.NewDB(t)
			_, wf, execs := pgtest.OverdueInvoices(t, db, 1)
			require.Len(t, execs, 1)
			conn, err := db.Acquire(t.Context())
			require.NoError(t, err)
			defer conn.Release()
			pgtest.Exec(t, conn, `select set_config('TimeZone', $1, false)`, zone)
			pgtest.Exec(t, conn, `update automation_execution_logs set status = 'completed', completed_at = now() where id = $1`, execs[0])
			utcDay := `(now() at time zone 'UTC')::date`
			assert.Equal(t, 1, pgtest.Int(t, conn, `select coalesce(sum(success_count), 0)::int from automation_analytics where workflow_id = $1 and date = `+utcDay, wf), "trigger")
			pgtest.Int(t, conn, `select update_automation_analytics()`)
			assert.Equal(t, 1, pgtest.Int(t, conn, `select coalesce(sum(success_count), 0)::int from automation_analytics where workflow_id = $1 and date = `+utcDay, wf), "recompute")
			assert.Zero(t, pgtest.Int(t, conn, `select count(*)::int from automation_analytics where workflow_id = $1 and date <> `+utcDay, wf), "no row on another day")
			pgtest.Exec(t, conn, `reset TimeZone`)
		})
	}
}
