package sqltest_test

import (
	"sort"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// Bug 9: a lost pg_net call (the request row vanished as UNLOGGED tables do
// after a crash, a 5xx answer, a timeout) never loses the reminder: the rows
// stay pending and claimable, are rung again with the same ids once the
// redispatch interval has passed (not before), and nothing completes them
// without a report.
func TestLostHTTPCallIsRungAgain(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := dispatchedOverdue(t, db, 3)
	require.Equal(t, execs, sortedIDs(queuedIDs(t, db)))

	losses := []struct {
		name string
		lose string // what happened to the queued request
	}{
		{"request row lost (UNLOGGED queue after a crash)", `delete from net.http_request_queue`},
		{"function answered 503", `with d as (delete from net.http_request_queue returning id)
			insert into net._http_response (id, status_code, content) select id, 503, 'unavailable' from d`},
		{"request timed out", `with d as (delete from net.http_request_queue returning id)
			insert into net._http_response (id, timed_out, error_msg) select id, true, 'Timeout of 5000 ms reached' from d`},
		{"connection refused", `with d as (delete from net.http_request_queue returning id)
			insert into net._http_response (id, error_msg) select id, 'Couldn''t connect to server' from d`},
	}
	for i, l := range losses {
		pgtest.Exec(t, db, l.lose)
		// within the redispatch interval: no storm of rings, nothing changes
		assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`), l.name)
		assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and status = 'pending'`, wf), l.name)
		// the interval passes (shifted rather than slept)
		pgtest.Exec(t, db, `update automation_execution_logs set dispatched_at = dispatched_at - interval '2 minutes 1 second' where dispatched_at is not null`)
		assert.Equal(t, 3, pgtest.Int(t, db, `select process_pending_automations()`), "%s: rung again", l.name)
		assert.Equal(t, execs, sortedIDs(queuedIDs(t, db)), "%s: the same executions", l.name)
		assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and dispatch_count = $2`, wf, i+2), l.name)
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status <> 'pending'`), "nothing completed or failed without a report")
	assert.Zero(t, pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf))

	// still claimable; once claimed and reported, never rung again
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, got, 3)
	var outs []automation.Outcome
	for _, c := range got {
		outs = append(outs, automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	}
	for _, r := range pgtest.Report(t, db, outs...) {
		assert.True(t, r.Applied)
	}
	pgtest.Exec(t, db, `delete from net.http_request_queue`)
	pgtest.Exec(t, db, `update automation_execution_logs set dispatched_at = now() - interval '1 hour'`)
	assert.Zero(t, pgtest.Int(t, db, `select process_pending_automations()`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from net.http_request_queue`))
	assert.Equal(t, 3, pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf))
}

// Bug 9: a running execution whose function died (lease expired without a
// report) goes back to pending and is rung again.
func TestDeadFunctionIsRungAgain(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := dispatchedOverdue(t, db, 1)
	pgtest.Exec(t, db, `delete from net.http_request_queue`)
	require.Len(t, pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60), 1)
	// the function dies: no report; the lease runs out
	pgtest.Exec(t, db, `update automation_execution_logs set lease_expires_at = now() - interval '1 second', started_at = now() - interval '2 minutes'`)
	assert.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`), "rung again in the tick that takes the lease back")
	assert.Equal(t, execs, queuedIDs(t, db))
	assert.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, execs[0]))
}

// Bug 9: the HTTP timeout is the endpoint's (default 60 s), never pg_net's
// 5 s default.
func TestDispatchTimeoutIsTheEndpoints(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	dispatchedOverdue(t, db, 1)
	assert.Equal(t, 60000, pgtest.Int(t, db, `select timeout_milliseconds from net.http_request_queue`))

	pgtest.Exec(t, db, `update automation_endpoints set timeout_ms = 120000`)
	pgtest.Exec(t, db, `delete from net.http_request_queue`)
	pgtest.Exec(t, db, `update automation_execution_logs set dispatched_at = now() - interval '3 minutes'`)
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	assert.Equal(t, 120000, pgtest.Int(t, db, `select timeout_milliseconds from net.http_request_queue`))
}

// Bug 9: pg_net's ~200 requests a second is not the limit: executions travel
// in batches (one request per batch_size ids), and a backlog beyond one
// tick's cap is dispatched by the next tick, none lost.
func TestDispatchBatchesABacklog(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	staleBacklog(t, db, 1000)
	dispatchTo(t, db, automation.ActionSendReminder)

	// a tick capped at 3 batches
	assert.Equal(t, 300, pgtest.Int(t, db, `select process_pending_automations(interval '2 minutes', 3)`))
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from net.http_request_queue`))
	// the next (uncapped) tick takes the rest in batches of 100
	assert.Equal(t, 700, pgtest.Int(t, db, `select process_pending_automations()`))
	assert.Equal(t, 10, pgtest.Int(t, db, `select count(*) from net.http_request_queue`), "1000 executions in 10 requests")
	ids := queuedIDs(t, db)
	assert.Len(t, ids, 1000)
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	assert.Len(t, seen, 1000, "each execution in exactly one request")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from net.http_request_queue
		where jsonb_array_length(convert_from(body, 'UTF8')::jsonb -> 'execution_ids') > 100`))
}

// Bug 9: pg_net keeps its queue in UNLOGGED tables; dueflow's state lives in
// ordinary (WAL-logged, crash-safe) tables only.
func TestAutomationStateIsCrashSafe(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	notLogged := pgtest.JSON[[]string](t, db, `select coalesce(jsonb_agg(c.relname order by c.relname), '[]') from pg_class c
		join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relpersistence <> 'p'`)
	assert.Empty(t, notLogged, "UNLOGGED or temporary tables in public")
	for _, tbl := range []string{"automation_execution_logs", "automation_deliveries", "automation_workflows", "automation_schedule_state"} {
		assert.Equal(t, "p", pgtest.Text(t, db, `select relpersistence::text from pg_class where oid = ('public.' || $1)::regclass`, tbl), tbl)
	}
}

// Bug 7 (and the doorbell carries nothing else): a dispatched request holds
// only the action and execution ids, signed; no bearer token, API key or
// service-role key travels with it.
func TestDispatchCarriesNoKey(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	dispatchedOverdue(t, db, 2)
	reqs := pgtest.JSON[[]struct {
		H map[string]string `json:"h"`
		B map[string]any    `json:"b"`
	}](t, db, `select jsonb_agg(jsonb_build_object('h', headers, 'b', convert_from(body, 'UTF8')::jsonb)) from net.http_request_queue`)
	require.Len(t, reqs, 1)
	var keys []string
	for k := range reqs[0].H {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"Content-Type", "webhook-id", "webhook-signature", "webhook-timestamp"}, keys)
	for _, v := range reqs[0].H {
		assert.NotContains(t, v, "eyJ")
		assert.NotContains(t, v, "whsec_")
	}
	var bodyKeys []string
	for k := range reqs[0].B {
		bodyKeys = append(bodyKeys, k)
	}
	sort.Strings(bodyKeys)
	assert.Equal(t, []string{"action", "execution_ids"}, bodyKeys, "no recipient or content in the request")
}

func sortedIDs(ids []uuid.UUID) []uuid.UUID {
	out := append([]uuid.UUID(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
