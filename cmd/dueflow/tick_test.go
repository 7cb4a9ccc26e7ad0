package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestTickRunsOneCycle(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	require.NoError(t, demodata.Seed(ctx, pool, time.Now()))
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var b bytes.Buffer
	rep, err := runCycle(ctx, conn, &b)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	// each job prints what its function returned: executions created, rows dispatched
	assert.Regexp(t, `^check-automation-triggers\s+2$`, lines[0]) // the scheduled run and the stale job
	assert.Regexp(t, `^check-overdue-invoices\s+7$`, lines[1])
	assert.Regexp(t, `^check-maintenance-reminders\s+6$`, lines[2])
	assert.Regexp(t, `^process-automations\s+\d+$`, lines[3])

	total := 0
	for _, r := range rep.Created.Rows {
		require.Len(t, r, 4)
		assert.Equal(t, "pending", r[2])
		n, err := strconv.Atoi(r[3])
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, 15, total)

	// A second cycle right after creates nothing.
	b.Reset()
	rep, err = runCycle(ctx, conn, &b)
	require.NoError(t, err)
	assert.Empty(t, rep.Created.Rows)
	var out bytes.Buffer
	require.NoError(t, rep.write(&out))
	assert.Contains(t, out.String(), "== Created by this cycle\n")
	assert.Contains(t, out.String(), "(none)")
}

func TestCycleSQLReadsTheCronJobs(t *testing.T) {
	ctx := context.Background()
	_, dsn := pgtest.CronDB(t)
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	jobs, err := cycleSQL(ctx, conn)
	require.NoError(t, err)
	require.Len(t, jobs, 4)
	want := map[string]string{}
	rows, err := conn.Query(ctx, `select jobname, command from cron.job`)
	require.NoError(t, err)
	for rows.Next() {
		var n, c string
		require.NoError(t, rows.Scan(&n, &c))
		want[n] = c
	}
	require.NoError(t, rows.Err())
	for _, j := range jobs {
		assert.Equal(t, want[j.Job], j.SQL, "tick runs what pg_cron runs for %s", j.Job)
	}
}

func TestResultText(t *testing.T) {
	assert.Equal(t, "done (no rows)", resultText(table{Columns: []string{"x"}}))
	assert.Equal(t, "done", resultText(table{Columns: []string{"x"}, Rows: [][]string{{`""`}}}))
	assert.Equal(t, "7", resultText(table{Columns: []string{"x"}, Rows: [][]string{{"7"}}}))
	assert.Equal(t, "a=1 b=2; a=3 b=4", resultText(table{Columns: []string{"a", "b"}, Rows: [][]string{{"1", "2"}, {"3", "4"}}}))
}

// dueflow tick and the local stack's Tick run the same statements.
func TestCycleJobsMatchDevstack(t *testing.T) {
	var sqls []string
	for _, j := range cycleJobs {
		sqls = append(sqls, j.SQL)
	}
	assert.Equal(t, devstack.TickSQL, sqls)
}
