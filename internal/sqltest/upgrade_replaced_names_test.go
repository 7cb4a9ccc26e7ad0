package sqltest_test

import (
	_ "embed"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// beforeReplacedNames recreates, over the current schema, an install from
// before analytics took the replaced system's names.
//
//go:embed testdata/before_replaced_names.sql
var beforeReplacedNames string

// An install of dueflow from before the in-place upgrade of the replaced
// system gets, from the migrations applied again, exactly the schema of a
// fresh install: its analytics columns renamed to the replaced system's
// names (success_rate filled), its count of actions renamed actions_count,
// its schedule state renamed automation_schedule_state; every row kept.
func TestUpgradeToReplacedNames(t *testing.T) {
	t.Parallel()
	fresh, _ := pgtest.NewDB(t)
	want := pgtest.Catalog(t, fresh)

	db, _ := pgtest.NewDB(t)
	pgtest.Exec(t, db, beforeReplacedNames)
	org := pgtest.AllDayOrg(t, db)
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"daily","hour":9}`})
	pgtest.Exec(t, db, `insert into automation_analytics (organization_id, workflow_id, date, executions, completed, failed, skipped, emails_sent)
		values ($1, $2, current_date - 1, 4, 3, 1, 0, 3)`, org, wf)
	pgtest.Exec(t, db, `insert into automation_schedules (workflow_id, organization_id, next_run_at) values ($1, $2, now() + interval '1 day')`, wf, org)
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
		subject_type, subject_id, status, completed_at, actions_executed)
		values ($1, $2, 'run-workflow', 'scheduled', 'scheduled:x', 'organization', $3, 'completed', now(), 2)`, wf, org, org.String())
	require.NotContains(t, pgtest.Columns(t, db, "automation_analytics"), "execution_count integer")

	require.NoError(t, pgtest.Migrate(bg, db))
	assert.Equal(t, want, pgtest.Catalog(t, db), "the schema of a fresh install")
	assert.Equal(t, "4 3 1 75.00 3", pgtest.Text(t, db, `select concat_ws(' ', execution_count, success_count, failure_count, success_rate, emails_sent)
		from automation_analytics where workflow_id = $1`, wf))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_schedule_state where workflow_id = $1`, wf))
	assert.Equal(t, 2, pgtest.Int(t, db, `select actions_count from automation_execution_logs where workflow_id = $1`, wf))
}

// The same install upgraded by the Supabase CLI, which applies only the
// versions it has not applied yet (the new core file and this change's
// files; never 20261129000200 again): it gets the same schema and rows.
func TestUpgradeToReplacedNamesNewVersionsOnly(t *testing.T) {
	t.Parallel()
	fresh, _ := pgtest.NewDB(t)
	want := pgtest.Catalog(t, fresh)

	db, _ := pgtest.NewDB(t)
	pgtest.Exec(t, db, beforeReplacedNames)
	org := pgtest.AllDayOrg(t, db)
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"daily","hour":9}`})
	pgtest.Exec(t, db, `insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
		subject_type, subject_id, status, completed_at, actions_executed)
		values ($1, $2, 'run-workflow', 'scheduled', 'scheduled:x', 'organization', $3, 'completed', now(), 2)`, wf, org, org.String())

	core, err := sqlfiles.Files()
	require.NoError(t, err)
	ref, err := sqlfiles.FilesOf(sqlfiles.ReferenceFS())
	require.NoError(t, err)
	for _, f := range append(core, ref...) {
		if f.Name == "20261129000050_core.sql" || f.Name >= "20261202" {
			require.NoError(t, pgtest.ApplyMigration(bg, db, f.Name), f.Name)
		}
	}
	assert.Equal(t, want, pgtest.Catalog(t, db), "the schema of a fresh install")
	assert.Equal(t, 2, pgtest.Int(t, db, `select actions_count from automation_execution_logs where workflow_id = $1`, wf))
}
