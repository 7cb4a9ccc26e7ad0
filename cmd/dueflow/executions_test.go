package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/opsdb"
	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestExecutionsFlags(t *testing.T) {
	o, err := parseExecutionsFlags([]string{"--state", "failed", "--action", "send-reminder", "--since", "2026-12-01",
		"--org", "0b6c2a52-8c4f-4d4e-9a55-3f1b1c1e2d3f", "--json", "--limit", "5"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "failed", o.Filter.State)
	assert.Equal(t, "2026-12-01T00:00:00Z", o.Filter.Since.Format("2006-01-02T15:04:05Z07:00"))
	assert.True(t, o.JSON)
	assert.Equal(t, 5, o.Filter.Limit)
	for _, bad := range [][]string{{"--state", "done"}, {"--org", "x"}, {"--since", "yesterday"}, {"--limit", "0"}, {"extra"}} {
		_, err := parseExecutionsFlags(bad, io.Discard)
		assert.Error(t, err, bad)
	}
}

// executions (table and JSON), execution, retry and cancel against a
// database, through the same functions the commands run.
func TestExecutionsCommands(t *testing.T) {
	t.Parallel()
	pool, dsn := pgtest.NewDB(t)
	ctx := context.Background()
	_, _, execs := pgtest.OverdueInvoices(t, pool, 3)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var out bytes.Buffer
	require.NoError(t, writeExecutions(ctx, conn, executionsOptions{Filter: opsdb.Filter{Limit: 2}}, &out))
	assert.Contains(t, out.String(), "counts: pending 3, running 0, completed 0, failed 0, skipped 0, cancelled 0")
	assert.Contains(t, out.String(), "next page: --after ")

	out.Reset()
	require.NoError(t, writeExecutions(ctx, conn, executionsOptions{JSON: true, Filter: opsdb.Filter{State: "pending"}}, &out))
	var doc struct {
		Counts     map[string]string `json:"counts"`
		Executions []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"executions"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, "3", doc.Counts["pending"])
	assert.Len(t, doc.Executions, 3)

	out.Reset()
	require.NoError(t, runActionWith(ctx, conn, "cancel", opsdb.Cancel, execs[0], "ops", "", &out))
	assert.Contains(t, out.String(), "cancel "+execs[0].String()+": applied by ops, now cancelled")
	out.Reset()
	err = runActionWith(ctx, conn, "cancel", opsdb.Cancel, execs[0], "ops", "", &out)
	assert.Equal(t, exitCode(1), err)
	assert.Contains(t, out.String(), "not applied: cancel")
	assert.Contains(t, out.String(), "only pending or running executions can be cancelled")

	d, err := opsdb.GetDetail(ctx, conn, execs[0])
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, writeExecution(d, &out))
	assert.Contains(t, out.String(), "execution "+execs[0].String()+": cancelled")
	assert.Contains(t, out.String(), "operator   cancel by ops: applied")
	assert.Contains(t, out.String(), "trigger data:")
}
