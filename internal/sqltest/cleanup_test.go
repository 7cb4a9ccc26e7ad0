package sqltest_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// Bug 10: cron.job_run_details does not grow forever. In the pg_cron
// database a daily job runs automation_cleanup(), which deletes run details
// older than the retention and keeps recent ones.
func TestCronRunDetailsAreCleanedUp(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.CronDB(t)
	require.Equal(t, 1, pgtest.Int(t, db, `select count(*) from cron.job where jobname = 'cleanup-automation-logs' and active`))
	assert.Contains(t, pgtest.Text(t, db, `select command from cron.job where jobname = 'cleanup-automation-logs'`), "automation_cleanup(")
	sched := pgtest.Text(t, db, `select schedule from cron.job where jobname = 'cleanup-automation-logs'`)
	assert.Regexp(t, `^\d+ \d+ \* \* \*$`, sched, "daily")

	marker := "dueflow-regression-" + uuid.NewString()
	pgtest.Exec(t, db, `insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
		select 0, 1, current_database(), current_user, $1 || ':' || age, 'succeeded', '1 row', now() - age::interval - interval '1 second', now() - age::interval
		from unnest(array['90 days', '30 days', '8 days', '6 days', '1 hour', '1 second']) age`, marker)
	require.Equal(t, 6, pgtest.Int(t, db, `select count(*) from cron.job_run_details where command like $1 || '%'`, marker))

	// keep executions far longer than anything in this shared database
	// (the old rows are checked below rather than the count this call
	// answers: another test of this package may run the cleanup in the same
	// shared pg_cron database at the same moment)
	pgtest.Int(t, db, `select automation_cleanup(interval '7 days', interval '100 years')`)
	var kept []string
	rows, err := db.Query(bg, `select split_part(command, ':', 2) from cron.job_run_details where command like $1 || '%' order by end_time`, marker)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		kept = append(kept, s)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"6 days", "1 hour", "1 second"}, kept)
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from cron.job_run_details where end_time < now() - interval '7 days'`))
}

// Bug 10, the other ever-growing tables: old pg_net responses and old
// finished executions (with their deliveries) that cannot recur are deleted; open executions
// are kept whatever their age; the cleanup runs without pg_cron too.
func TestCleanupOfResponsesAndFinishedExecutions(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 3)
	require.Len(t, execs, 3)
	done, oldOpen, recentDone := execs[0], execs[1], execs[2]
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'completed', completed_at = now() - interval '100 days', created_at = now() - interval '100 days' where id = $1`, done)
	pgtest.Exec(t, db, `insert into automation_deliveries (execution_id, organization_id, channel, recipient, idempotency_key, status)
		select id, organization_id, 'email', 'ada@client.test', id || ':0:email', 'sent' from automation_execution_logs where id = $1`, done)
	// a later occurrence of the same invoice (next reminder day) makes the old
	// one unable to recur, so it may go; the newest per subject always stays
	// (it is the key that stops the check from creating that reminder again)
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
			subject_type, subject_id, client_id, status, completed_at, created_at)
		select workflow_id, organization_id, action, trigger_type, occurrence_key || ':later', subject_type, subject_id, client_id,
			'completed', now() - interval '95 days', now() - interval '95 days'
		from automation_execution_logs where id = $1`, done)
	pgtest.Exec(t, db, `update automation_execution_logs set created_at = now() - interval '200 days', next_attempt_at = now() + interval '1 day' where id = $1`, oldOpen)
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'failed', error_code = 'max_attempts', completed_at = now() - interval '1 day' where id = $1`, recentDone)
	pgtest.Exec(t, db, `insert into net._http_response (id, status_code, created) values (1, 200, now() - interval '30 days'), (2, 503, now() - interval '1 hour')`)

	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_cleanup()`), "one execution (no pg_cron here)")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where id = $1`, done))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_deliveries where execution_id = $1`, done))
	assert.Equal(t, 3, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, wf), "open, recent and newest-per-subject rows kept")
	assert.Equal(t, []int{2}, ints(t, db, `select id::int from net._http_response order by id`))
}

func ints(t testing.TB, db *pgxpool.Pool, q string, args ...any) []int {
	t.Helper()
	rows, err := db.Query(bg, q, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	return out
}

// Bug 10, interrupted runs: pg_cron marks runs interrupted by a restart
// 'failed' ('server restarted') without an end_time; automation_cleanup()
// ages them by their start_time, so they do not stay forever.
func TestInterruptedCronRunsAreCleanedUp(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.CronDB(t)
	marker := "dueflow-interrupted-" + uuid.NewString()
	pgtest.Exec(t, db, `insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
		values (0, 1, current_database(), current_user, $1 || ':old', 'failed', 'server restarted', now() - interval '30 days', null),
		       (0, 1, current_database(), current_user, $1 || ':recent', 'failed', 'server restarted', now() - interval '1 day', null)`, marker)
	pgtest.Int(t, db, `select automation_cleanup(interval '7 days', interval '100 years')`)
	assert.Equal(t, "recent", pgtest.Text(t, db, `select string_agg(split_part(command, ':', 2), ',') from cron.job_run_details where command like $1 || '%'`, marker))
}
