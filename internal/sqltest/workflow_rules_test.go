package sqltest_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/workflow"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// badWorkflows are the bad value classes of issue 8, one workflow each (and
// one with many problems at once).
var badWorkflows = []struct{ trigger, config, steps string }{
	{"scheduled", `{"hour":"nine"}`, `[]`},
	{"scheduled", `{"hour":9.5}`, `[]`},
	{"scheduled", `{"hour":1e10}`, `[]`},
	{"scheduled", `{"hour":1e300}`, `[]`},
	{"scheduled", `{"hour":25}`, `[]`},
	{"scheduled", `{"frequency":"fortnightly"}`, `[]`},
	{"scheduled", `{"day_of_week":"monday"}`, `[]`},
	{"scheduled", `{"day_of_month":"last"}`, `[]`},
	{"stale_job", `{"days_inactive":"a week"}`, `[]`},
	{"maintenance_due", `{"months_after_service":"six"}`, `[]`},
	{"appointment", `{"hours_before":"24h"}`, `[]`},
	{"invoice_overdue", `{"days_after_due":[1,"seven"]}`, `[]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","days":"1"}]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","hours":1.5}]`},
	{"invoice_overdue", `{}`, `[{"type":"send_email","subject":5}]`},
	{"invoice_overdue", `{}`, `[[1]]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","minutes":1e20}]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","minutes":-5}]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","minutes":0}]`},
	{"invoice_overdue", `{}`, `[{"type":"delay","days":366}]`},
	{"invoice_overdue", `{}`, `[` + strings.TrimSuffix(strings.Repeat(`{"type":"send_sms"},`, 21), ",") + `]`},
	{"invoice_overdue", `{}`, `[{"type":"send_email","body":"` + strings.Repeat("a", 65537) + `"}]`},
	{"invoice_overdue", `{}`, `[{"type":"send_sms","body":"Hi {{client.password}}"}]`},
	{"invoice_overdue", `{"days_after_due":[1],"cc":"x"}`, `[]`},
	{"webhook", `{}`, `[]`},
	{"stale_job", `{"days_inactive":"a week","statuses":[]}`,
		`[{"type":"send_email","subject":5,"body":"{{x}}"},{"type":"delay","hours":1.5,"days":"1"},[1]]`},
}

// insertWorkflow inserts a workflow and returns its id or the error.
func insertWorkflow(db pgtest.DB, org uuid.UUID, trigger, config, steps string) (uuid.UUID, error) {
	var id uuid.UUID
	err := db.QueryRow(bg, `insert into automation_workflows (organization_id, name, trigger_type, trigger_config, steps)
		values ($1, 'wf', $2, $3::jsonb, $4::jsonb) returning id`, org, trigger, config, steps).Scan(&id)
	return id, err
}

// requireInvalid asserts err is the validation trigger's 23514 naming every
// problem workflow.Validate finds.
func requireInvalid(t *testing.T, err error, trigger, config, steps string) {
	t.Helper()
	problems := workflow.Validate(trigger, json.RawMessage(config), json.RawMessage(steps))
	require.NotEmpty(t, problems)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a refusal, got %v", err)
	assert.Equal(t, "23514", pgErr.Code)
	assert.Equal(t, "automation_workflows: invalid workflow: "+strings.Join(problems, "; "), pgErr.Message)
	assert.Contains(t, pgErr.Hint, "automation_workflow_rules()")
}

func problemsOf(t *testing.T, db pgtest.DB, id uuid.UUID) []string {
	t.Helper()
	var p []string
	require.NoError(t, db.QueryRow(bg, `select problems from automation_workflows where id = $1`, id).Scan(&p))
	return p
}

// Inserts and updates that break the rules are refused (23514), naming
// every problem; the row stays as it was.
func TestWorkflowValidationRefusesBadWrites(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, pool)
	good, err := insertWorkflow(pool, org, "invoice_overdue", `{"days_after_due":[1,7]}`,
		`[{"type":"send_email","subject":"Invoice {{invoice.number}}"},{"type":"delay","days":1},{"type":"send_sms"}]`)
	require.NoError(t, err)
	assert.Equal(t, []string{}, problemsOf(t, pool, good))

	for _, w := range badWorkflows {
		_, err := insertWorkflow(pool, org, w.trigger, w.config, w.steps)
		requireInvalid(t, err, w.trigger, w.config, w.steps)

		_, err = pool.Exec(bg, `update automation_workflows set trigger_type = $2, trigger_config = $3::jsonb, steps = $4::jsonb
			where id = $1`, good, w.trigger, w.config, w.steps)
		requireInvalid(t, err, w.trigger, w.config, w.steps)
	}
	assert.Equal(t, 1, pgtest.Int(t, pool, `select count(*) from automation_workflows`))
	assert.Equal(t, `{"days_after_due": [1, 7]}`, pgtest.Text(t, pool, `select trigger_config::text from automation_workflows where id = $1`, good))

	// a valid update passes and is recorded valid
	pgtest.Exec(t, pool, `update automation_workflows set trigger_config = '{"days_after_due":[3]}' where id = $1`, good)
	assert.Equal(t, []string{}, problemsOf(t, pool, good))
	// problems cannot be written by hand
	pgtest.Exec(t, pool, `update automation_workflows set problems = '{"made up"}' where id = $1`, good)
	assert.Equal(t, []string{}, problemsOf(t, pool, good))
}

// A workflow written with the trigger disabled keeps problems NULL (never
// validated); marking it valid by hand later is refused; re-running the
// migration that holds the back-fill (the spec wiring, since the validation
// trigger moved there) back-fills its problems without refusing it or
// touching updated_at.
func TestWorkflowValidationDisabledAndBackfill(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, pool)
	pgtest.Exec(t, pool, `alter table automation_workflows disable trigger automation_workflows_validate`)
	bad, err := insertWorkflow(pool, org, "scheduled", `{"hour":"nine"}`, `[{"type":"delay","minutes":1e20}]`)
	require.NoError(t, err)
	okID, err := insertWorkflow(pool, org, "appointment", `{"hours_before":24}`, `[]`)
	require.NoError(t, err)
	pgtest.Exec(t, pool, `alter table automation_workflows enable trigger automation_workflows_validate`)
	var p []string
	require.NoError(t, pool.QueryRow(bg, `select problems from automation_workflows where id = $1`, bad).Scan(&p))
	assert.Nil(t, p, "never validated")
	// bookkeeping updates (counters, is_active) do not validate
	pgtest.Exec(t, pool, `update automation_workflows set execution_count = execution_count + 1, is_active = false where id = $1`, bad)
	require.NoError(t, pool.QueryRow(bg, `select problems from automation_workflows where id = $1`, bad).Scan(&p))
	assert.Nil(t, p)
	// nor can it be declared valid
	_, err = pool.Exec(bg, `update automation_workflows set problems = '{}' where id = $1`, bad)
	requireInvalid(t, err, "scheduled", `{"hour":"nine"}`, `[{"type":"delay","minutes":1e20}]`)

	updatedAt := pgtest.Text(t, pool, `select updated_at::text from automation_workflows where id = $1`, bad)
	fl, err := sqlfiles.Files()
	require.NoError(t, err)
	applied := false
	for _, f := range fl {
		if strings.HasSuffix(f.Name, "_workflow_spec_wiring.sql") {
			require.NoError(t, pgcluster.ApplySQL(bg, pool, f.Name, f.SQL))
			applied = true
		}
	}
	require.True(t, applied)
	assert.Equal(t, []string{
		"trigger_config.hour: must be a whole number from 0 to 23",
		"steps[0].minutes: must be a whole number from 0 to 525600",
	}, problemsOf(t, pool, bad))
	assert.Equal(t, []string{}, problemsOf(t, pool, okID))
	assert.Equal(t, updatedAt, pgtest.Text(t, pool, `select updated_at::text from automation_workflows where id = $1`, bad))
	// and the trigger is back
	_, err = insertWorkflow(pool, org, "scheduled", `{"hour":"nine"}`, `[]`)
	requireInvalid(t, err, "scheduled", `{"hour":"nine"}`, `[]`)
}

// automation_workflow_problems never raises: NULLs, every JSON type in
// every position, huge numbers.
func TestWorkflowProblemsNeverRaises(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	values := []any{nil, `null`, `true`, `1`, `-1e300`, `1e300`, `1e-300`, `9.5`, `"x"`, `""`, `[]`, `[null]`, `{}`,
		`{"type":null}`, `[{"type":"delay","minutes":1e300,"hours":-1e300,"days":"1"}]`, `{"hour":{"a":[1]}}`,
		`[{"type":"send_email","subject":null,"body":{},"html":[]}]`, `{"days_after_due":[null,{},[],1e300]}`,
		`{"statuses":[null,1,{}]}`, `[{"type":"send_sms","body":"{{{{}}}}{{"}]`}
	for _, tt := range []any{nil, "", "scheduled", "invoice_overdue", "maintenance_due", "stale_job", "appointment", "x"} {
		for _, cfg := range values {
			for _, steps := range values {
				var p []string
				err := pool.QueryRow(bg, `select automation_workflow_problems($1, $2::jsonb, $3::jsonb)`, tt, cfg, steps).Scan(&p)
				require.NoError(t, err, "%v %v %v", tt, cfg, steps)
				require.NotNil(t, p)
			}
		}
	}
}
