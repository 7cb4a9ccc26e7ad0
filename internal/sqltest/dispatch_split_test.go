package sqltest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The dispatcher names the actions without an endpoint from
// automation_actions, in its order, and leaves their rows pending.
func TestDispatchWarnsFromActionsTable(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	_, _, _, execs := overdueSetup(t, db, 2, "10")
	pgtest.MakeDue(t, db)
	conn, notices := pgtest.NoticeConn(t, dsn)
	warned := func() string {
		for _, n := range notices() {
			if strings.Contains(n, "actions without one") {
				return n
			}
		}
		return ""
	}
	assert.Zero(t, pgtest.Int(t, conn, `select process_pending_automations()`))
	assert.Contains(t, warned(), "(actions without one: send-reminder, invoice-reminder, run-workflow)")

	pgtest.Exec(t, db, `update automation_actions set position = -position`)
	conn2, notices2 := pgtest.NoticeConn(t, dsn)
	notices = notices2
	assert.Zero(t, pgtest.Int(t, conn2, `select process_pending_automations()`))
	assert.Contains(t, warned(), "(actions without one: run-workflow, invoice-reminder, send-reminder)")
	assert.Equal(t, "pending", execution(t, db, execs[0]).Status)
}

// Each step of the dispatcher is its own function answering how many rows
// it moved; process_pending_automations runs them in order.
func TestDispatchSteps(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, db, 3)
	pgtest.MakeDue(t, db)
	// one running with an expired lease, one past its deadline
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'running', attempt = 1,
		lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 second' where id = $1`, execs[0])
	pgtest.Exec(t, db, `update automation_execution_logs set deadline_at = now() - interval '1 second' where id = $1`, execs[1])
	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_rescue_leases()`))
	assert.Equal(t, 0, pgtest.Int(t, db, `select automation_rescue_leases()`), "nothing left to rescue")
	assert.Equal(t, 0, pgtest.Int(t, db, `select automation_skip_settled()`))
	assert.Equal(t, 0, pgtest.Int(t, db, `select automation_skip_obsolete_jobs()`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_expire_due()`))
	assert.Equal(t, "expired", *execution(t, db, execs[1]).ErrorCode)
	assert.Equal(t, "lease_expired", *execution(t, db, execs[0]).ErrorCode)
	assert.Empty(t, pgtest.JSON[[]string](t, db, `select to_jsonb(automation_ready_actions())`), "no endpoint yet")
	pgtest.SetEndpoint(t, db, string(automation.ActionInvoiceReminder), "http://127.0.0.1:9/x", 100)
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	assert.Equal(t, []string{string(automation.ActionInvoiceReminder)},
		pgtest.JSON[[]string](t, db, `select to_jsonb(automation_ready_actions())`))
	assert.Equal(t, 2, pgtest.Int(t, db, `select process_pending_automations()`), "the rescued row and the third")
	assert.Len(t, queuedRequests(t, db), 1)
}

// The job-reminder skip names the action of the job trigger types as a
// constant (the due index's leading column): it is automation_actions'.
func TestJobSkipActionIsTheTables(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	inSQL := pgtest.Text(t, db, `select (regexp_match(prosrc, 'e2\.action = ''([^'']+)'''))[1]
		from pg_proc where oid = 'automation_obsolete_job_reminders()'::regprocedure`)
	for _, tt := range []string{"appointment", "stale_job", "maintenance_due"} {
		assert.Equal(t, inSQL, pgtest.Text(t, db, `select automation_action_for($1)`, tt), tt)
	}
	assert.Equal(t, string(automation.ActionSendReminder), inSQL)
}
