package demodata_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/workflow"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// checks are the trigger checks of one cycle (what the pg_cron jobs
// check-automation-triggers, check-overdue-invoices and
// check-maintenance-reminders run).
var checks = []string{
	"select public.check_automation_triggers($1)",
	"select public.check_overdue_invoices($1)",
	"select public.check_maintenance_reminders($1)",
}

// The first cycle creates the same executions whatever the hour: the seed
// and the checks are evaluated at several instants of a UTC day (the checks
// take p_now), which fall at different local hours and dates in the three
// organisations' time zones.
func TestSeedThenChecksCreateTheExpectedExecutions(t *testing.T) {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for _, at := range []time.Time{
		day.Add(30 * time.Minute),
		day.Add(5*time.Hour + 10*time.Minute),
		day.Add(13*time.Hour + 59*time.Minute),
		day.Add(23*time.Hour + 59*time.Minute + 30*time.Second),
	} {
		t.Run(at.Format("15:04:05Z"), func(t *testing.T) { checkFirstCycle(t, at) })
	}
}

func checkFirstCycle(t *testing.T, now time.Time) {
	ctx := context.Background()
	pool, _ := pgtest.NewDB(t)
	require.NoError(t, demodata.Seed(ctx, pool, now))
	for _, q := range checks {
		_, err := pool.Exec(ctx, q, now)
		require.NoError(t, err, q)
	}

	got := map[uuid.UUID]int{}
	actions := map[uuid.UUID]map[string]int{}
	rows, err := pool.Query(ctx, `
select l.workflow_id, l.action, count(*)
  from automation_execution_logs l
 where l.organization_id = any($1)
 group by 1, 2`, demodata.OrgIDs)
	require.NoError(t, err)
	for rows.Next() {
		var wf uuid.UUID
		var action string
		var n int
		require.NoError(t, rows.Scan(&wf, &action, &n))
		got[wf] += n
		if actions[wf] == nil {
			actions[wf] = map[string]int{}
		}
		actions[wf][action] += n
	}
	require.NoError(t, rows.Err())

	total := 0
	for _, e := range demodata.Expected() {
		assert.Equal(t, e.Executions, got[e.WorkflowID], "executions of workflow %s (%s)", e.WorkflowID, e.TriggerType)
		if e.Executions > 0 {
			assert.Equal(t, map[string]int{e.Action: e.Executions}, actions[e.WorkflowID], "action of workflow %s", e.WorkflowID)
		}
		total += e.Executions
		delete(got, e.WorkflowID)
	}
	assert.Empty(t, got, "executions of workflows without an expectation")

	// Every demo execution is due at once: the send windows cover the whole day.
	var notDue int
	require.NoError(t, pool.QueryRow(ctx, `
select count(*) from automation_execution_logs
 where organization_id = any($1) and (status <> 'pending' or next_attempt_at > $2)`,
		demodata.OrgIDs, now).Scan(&notDue))
	assert.Zero(t, notDue, "demo executions not pending and due at once")

	// The cycles of the next minutes create nothing new (occurrence keys;
	// the scheduled workflow's next run is about a day away).
	for _, later := range []time.Duration{time.Minute, 3 * time.Minute} {
		for _, q := range checks {
			_, err := pool.Exec(ctx, q, now.Add(later))
			require.NoError(t, err, q)
		}
	}
	var after int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from automation_execution_logs where organization_id = any($1)`,
		demodata.OrgIDs).Scan(&after))
	assert.Equal(t, total, after, "later cycles create no duplicates")
}

func TestSeedIsARepeatableReset(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.NewDB(t)
	now := time.Now()
	require.NoError(t, demodata.Seed(ctx, pool, now))
	for _, q := range checks {
		_, err := pool.Exec(ctx, q, now)
		require.NoError(t, err, q)
	}
	// Seeding again (a re-run of the demo) removes the executions of the
	// previous run and restores the data.
	require.NoError(t, demodata.Seed(ctx, pool, time.Now()))
	var executions, clients, invoices int
	require.NoError(t, pool.QueryRow(ctx, `
select (select count(*) from automation_execution_logs where organization_id = any($1)),
       (select count(*) from clients where organization_id = any($1)),
       (select count(*) from invoices where organization_id = any($1))`, demodata.OrgIDs).
		Scan(&executions, &clients, &invoices))
	d := demodata.Data()
	assert.Zero(t, executions)
	assert.Equal(t, len(d.Clients), clients)
	assert.Equal(t, len(d.Invoices), invoices)

	// Reset leaves no demo organisation behind.
	require.NoError(t, demodata.Reset(ctx, pool))
	var orgs int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from organizations where id = any($1)`, demodata.OrgIDs).Scan(&orgs))
	assert.Zero(t, orgs)
}

func TestDataIsConsistent(t *testing.T) {
	d := demodata.Data()
	zones := map[string]bool{}
	orgs := map[uuid.UUID]bool{}
	for _, o := range d.Orgs {
		_, err := time.LoadLocation(o.Timezone)
		require.NoError(t, err)
		zones[o.Timezone] = true
		orgs[o.ID] = true
	}
	assert.Len(t, zones, 3, "three organisations in three time zones")
	clientOrg := map[uuid.UUID]uuid.UUID{}
	for _, c := range d.Clients {
		assert.True(t, orgs[c.Org])
		clientOrg[c.ID] = c.Org
	}
	for _, in := range d.Invoices {
		assert.Equal(t, in.Org, clientOrg[in.Client], "invoice %s: client of another organisation", in.Number)
	}
	for _, j := range d.Jobs {
		assert.Equal(t, j.Org, clientOrg[j.Client], "job %s: client of another organisation", j.Title)
	}
	triggers := map[string]bool{}
	for _, w := range d.Workflows {
		triggers[w.TriggerType] = true
	}
	assert.Len(t, triggers, 5, "a workflow for every trigger type")
	assert.Len(t, demodata.Expected(), len(d.Workflows), "an expectation per workflow")
}

// Every demo workflow follows the workflow rules (the database would refuse
// the seed otherwise), the scheduled one with any hour Seed gives it.
func TestDemoWorkflowsFollowTheRules(t *testing.T) {
	for _, w := range demodata.Data().Workflows {
		if w.TriggerType == "scheduled" {
			w.TriggerConfig["hour"] = 23
		}
		cfg, err := json.Marshal(w.TriggerConfig)
		require.NoError(t, err)
		steps, err := json.Marshal(w.Steps)
		require.NoError(t, err)
		assert.Empty(t, workflow.Validate(w.TriggerType, cfg, steps), w.Name)
	}
}
