package opsdb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/opsdb"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Keyset pages cover every row once, newest first, and the filters and
// counts agree with SQL.
func TestListPagesAndCounts(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	ctx := context.Background()
	_, wf, execs := pgtest.OverdueInvoices(t, db, 7)
	// equal created_at for some rows: the id breaks the tie
	pgtest.Exec(t, db, `update automation_execution_logs set created_at = now() - interval '1 hour' where id = any($1)`, execs[:3])
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'failed', error_code = 'provider_rejected', completed_at = now() where id = $1`, execs[4])

	var seen []uuid.UUID
	f := opsdb.Filter{Limit: 3}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		p, err := opsdb.List(ctx, db, f)
		require.NoError(t, err)
		for _, x := range p.Rows {
			seen = append(seen, x.ID)
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	var want []uuid.UUID
	rows, err := db.Query(ctx, `select id from automation_execution_logs order by created_at desc, id desc`)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		want = append(want, id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, want, seen)

	p, err := opsdb.List(ctx, db, opsdb.Filter{State: "failed", Workflow: wf, ErrorCode: "provider_rejected"})
	require.NoError(t, err)
	require.Len(t, p.Rows, 1)
	assert.Equal(t, execs[4], p.Rows[0].ID)
	p, err = opsdb.List(ctx, db, opsdb.Filter{Since: time.Now().Add(-30 * time.Minute)})
	require.NoError(t, err)
	assert.Len(t, p.Rows, 4)

	counts, err := opsdb.Counts(ctx, db, opsdb.Filter{Workflow: wf, State: "failed"}, opsdb.CountLimits{})
	require.NoError(t, err)
	got := map[string]string{}
	for _, c := range counts {
		got[c.State] = c.String()
	}
	assert.Equal(t, map[string]string{"pending": "6", "running": "0", "completed": "0", "failed": "1", "skipped": "0", "cancelled": "0"}, got)

	_, err = opsdb.List(ctx, db, opsdb.Filter{State: "nope"})
	assert.ErrorContains(t, err, "state")
	_, err = opsdb.List(ctx, db, opsdb.Filter{After: "garbage!"})
	assert.ErrorContains(t, err, "cursor")
}

// Retry and cancel go through the operator functions and are recorded with
// who did them, refusals too; the timeline shows them.
func TestActRecordsActor(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	ctx := context.Background()
	_, wf, execs := pgtest.OverdueInvoices(t, db, 2)

	a, err := opsdb.Act(ctx, db, opsdb.Cancel, execs[0], "alice", "duplicate invoice")
	require.NoError(t, err)
	assert.True(t, a.Applied)
	assert.Equal(t, "cancelled", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, execs[0]))
	assert.Equal(t, "duplicate invoice", pgtest.Text(t, db, `select error_message from automation_execution_logs where id = $1`, execs[0]))

	a, err = opsdb.Act(ctx, db, opsdb.Cancel, execs[0], "alice", "")
	require.NoError(t, err)
	assert.False(t, a.Applied)
	assert.Equal(t, "not_open", a.Reason)

	a, err = opsdb.Act(ctx, db, opsdb.Retry, execs[0], "bob", "")
	require.NoError(t, err)
	assert.True(t, a.Applied)
	assert.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, execs[0]))

	a, err = opsdb.Act(ctx, db, opsdb.Retry, execs[1], "", "")
	require.NoError(t, err)
	assert.Equal(t, "missing_by", a.Reason)

	a, err = opsdb.Act(ctx, db, opsdb.Pause, wf, "carol", "")
	require.NoError(t, err)
	assert.True(t, a.Applied)
	assert.Equal(t, "false", pgtest.Text(t, db, `select is_active::text from automation_workflows where id = $1`, wf))
	a, err = opsdb.Act(ctx, db, opsdb.Pause, wf, "carol", "")
	require.NoError(t, err)
	assert.Equal(t, "unchanged", a.Reason)

	assert.Equal(t, "alice:cancel:true,alice:cancel:false,bob:retry:true,carol:pause:true,carol:pause:false",
		pgtest.Text(t, db, `select string_agg(actor || ':' || action || ':' || applied, ',' order by id) from automation_operator_actions`))

	d, err := opsdb.GetDetail(ctx, db, execs[0])
	require.NoError(t, err)
	var kinds []string
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind+": "+e.Text)
	}
	joined := strings.Join(kinds, "\n")
	assert.Contains(t, joined, "created: created by the invoice_overdue check")
	assert.Contains(t, joined, "operator: cancel by alice: applied")
	assert.Contains(t, joined, "operator: retry by bob: applied")
	assert.Contains(t, joined, "due: due at this time")
	// the claim document: the lease token hidden, the client's address masked
	assert.Contains(t, d.Claim, `"lease_token": "(hidden)"`)
	assert.NotContains(t, d.Claim, "ada@client.test")
	assert.NotContains(t, d.Claim, "+15555550123")
	assert.Empty(t, d.ClaimError)
	assert.True(t, d.Open())

	_, err = opsdb.GetDetail(ctx, db, uuid.New())
	assert.ErrorIs(t, err, opsdb.ErrNotFound)
}

// A retried execution's page shows both claims and the first attempt's
// error, read from the recorded history (the row keeps only the latest);
// a long history shows its latest HistoryCap events and says how many more.
func TestDetailHistoryOfRetriedExecution(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	ctx := context.Background()
	_, _, execs := pgtest.OverdueInvoices(t, db, 1)
	id := execs[0]
	first := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: first[0].Execution.LeaseToken,
		Status: automation.OutcomeRetry, ErrorCode: automation.CodeProviderRetryable, ErrorMessage: "503 from provider"})
	require.True(t, r[0].Applied)
	second := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	r = pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: second[0].Execution.LeaseToken,
		Status: automation.OutcomeCompleted, ActionsExecuted: 1})
	require.True(t, r[0].Applied)

	d, err := opsdb.GetDetail(ctx, db, id)
	require.NoError(t, err)
	require.Len(t, d.History, 2, "one row per attempt")
	assert.Zero(t, d.HistoryCut)
	var claims, text []string
	for _, e := range d.Timeline {
		text = append(text, e.Kind+": "+e.Text)
		if e.Kind == "claimed" {
			claims = append(claims, e.Text)
		}
	}
	joined := strings.Join(text, "\n")
	require.Len(t, claims, 2, joined)
	assert.Contains(t, claims[0], "attempt 1 of 5")
	assert.Contains(t, claims[0], "lease until "+first[0].Execution.LeaseExpiresAt.UTC().Format(time.RFC3339))
	assert.Contains(t, claims[1], "attempt 2 of 5")
	assert.Contains(t, joined, "reported: reported: retry after attempt 1 ("+automation.CodeProviderRetryable+": 503 from provider), due again ")
	assert.Contains(t, joined, "final: reported: completed after 2 attempts, 1 actions")
	assert.Equal(t, 1, strings.Count(joined, "completed"), "the move to completed said once")
	assert.Empty(t, d.ErrorCode, "the row itself no longer has the first error")

	// a long history: the latest HistoryCap events, oldest first
	pgtest.Exec(t, db, `insert into automation_execution_events (execution_id, organization_id, at, kind, status, outcome, attempt)
		select $1, organization_id, now() - interval '1 day' + g * interval '1 second', 'reported', 'pending', 'deferred', g
		from automation_execution_logs, generate_series(1, 250) g where id = $1`, id)
	d, err = opsdb.GetDetail(ctx, db, id)
	require.NoError(t, err)
	require.Len(t, d.History, opsdb.HistoryCap)
	assert.Equal(t, 252-opsdb.HistoryCap, d.HistoryCut)
	assert.Equal(t, 53, d.History[0].Attempt, "the 52 oldest left out")
	assert.Equal(t, "completed", d.History[len(d.History)-1].Status)
	// (the made-up events are older than the execution: the note comes first)
	assert.Equal(t, "note", d.Timeline[0].Kind)
	assert.Equal(t, "52 earlier events not shown (the latest 200 are)", d.Timeline[0].Text)
}

func TestNextRun(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 30, 20, 0, time.UTC)
	for schedule, want := range map[string]string{
		"* * * * *":    "2026-12-02T10:31:00Z",
		"7 * * * *":    "2026-12-02T11:07:00Z",
		"17 3 * * *":   "2026-12-03T03:17:00Z",
		"*/15 * * * *": "2026-12-02T10:45:00Z",
		"0 9 * * 1-5":  "2026-12-03T09:00:00Z", // Thursday
		"0 0 1 1 *":    "2027-01-01T00:00:00Z",
		"30 seconds":   "2026-12-02T10:30:50Z",
	} {
		got, ok := opsdb.NextRun(schedule, now)
		require.True(t, ok, schedule)
		assert.Equal(t, want, got.Format(time.RFC3339), schedule)
	}
	for _, bad := range []string{"@daily", "61 * * * *", "* * *", "a b c d e"} {
		_, ok := opsdb.NextRun(bad, now)
		assert.False(t, ok, bad)
	}
}
