package sqltest_test

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// Bug 4, when the doorbell rings twice: the same batch of ids posted to
// several function instances at once (a redispatch while the first is still
// starting) is claimed once per id, and only the holder of the lease can
// begin a delivery or report.
func TestSameBatchRungTwiceClaimedOnce(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, ids := staleBacklog(t, db, 200)

	const instances = 5
	got := make([][]automation.Claimed, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < instances; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i] = pgtest.Claim(t, db, automation.ActionSendReminder, ids, 500, 60)
		}()
	}
	close(start)
	wg.Wait()
	owner := map[uuid.UUID]uuid.UUID{}
	for _, g := range got {
		for _, c := range g {
			_, dup := owner[c.Execution.ID]
			require.False(t, dup, "execution %s claimed twice", c.Execution.ID)
			owner[c.Execution.ID] = c.Execution.LeaseToken
		}
	}
	assert.Len(t, owner, len(ids))

	// a second instance that did not win the claim cannot send or report
	id := ids[0]
	key := automation.IdempotencyKey(id, 0, "email")
	loser := automation.DeliveryIntent{ExecutionID: id, LeaseToken: uuid.New(), Channel: "email", Recipient: "x@client.test", IdempotencyKey: key}
	assert.Equal(t, automation.BeginStale, pgtest.BeginDeliveries(t, db, loser)[0].State)
	winner := loser
	winner.LeaseToken = owner[id]
	assert.Equal(t, automation.BeginNew, pgtest.BeginDeliveries(t, db, winner)[0].State)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: uuid.New(), Status: automation.OutcomeCompleted})
	assert.False(t, r[0].Applied)
	assert.Equal(t, "running", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, id))
}
