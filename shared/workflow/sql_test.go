package workflow_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/workflow"
)

// nullable passes nil for an absent (SQL NULL) JSON value.
func nullable(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	return string(raw)
}

// The SQL function returns exactly rules.json.
func TestSQLRulesEqualRulesJSON(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	b, err := os.ReadFile("rules.json")
	require.NoError(t, err)
	var equal bool
	require.NoError(t, pool.QueryRow(bg, `select automation_workflow_rules() = $1::jsonb`, string(b)).Scan(&equal))
	assert.True(t, equal, "automation_workflow_rules() differs from shared/workflow/rules.json")
}

// Both validators give the corpus' problems, identical lists in the same
// order, and the SQL one never raises.
func TestSQLValidatorMatchesCorpus(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	for _, c := range loadCorpus(t) {
		var got []string
		err := pool.QueryRow(bg, `select automation_workflow_problems($1, $2::jsonb, $3::jsonb)`,
			c.TriggerType, nullable(c.TriggerConfig), nullable(c.Steps)).Scan(&got)
		require.NoError(t, err, c.Name)
		assert.Equal(t, c.Problems, got, c.Name)
		goGot := workflow.Validate(c.triggerType(), c.TriggerConfig, c.Steps)
		if goGot == nil {
			goGot = []string{}
		}
		assert.Equal(t, got, goGot, c.Name)
	}
}

// Random workflows built from the corpus' pieces and odd values: the SQL and
// Go validators agree on every one, and SQL never raises.
func TestSQLAndGoAgreeOnRandomWorkflows(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	r := rand.New(rand.NewPCG(8, 1))
	values := []string{`0`, `1`, `-1`, `23`, `24`, `59`, `365`, `366`, `720`, `8760`, `525600`, `525601`, `9.5`, `9.0`,
		`1e1`, `1.5e1`, `1.50e1`, `100e-2`, `1e10`, `1e20`, `1e300`, `-1e300`, `1e-300`, `-0`, `"9"`, `"nine"`, `"daily"`,
		`"clients"`, `"hvac"`, `true`, `false`, `null`, `[]`, `[1]`, `[1,7]`, `["a"]`, `[""]`, `[366]`, `{}`, `{"a":1}`,
		`"{{client.first_name}}"`, `"{{ nope }}"`, `"{{x"`, `"{{ {{a}}"`, `"a }} b"`, `"` + strings.Repeat("é", 501) + `"`}
	keys := []string{"frequency", "hour", "minute", "day_of_week", "day_of_month", "audience", "days_after_due",
		"months_after_service", "job_type", "days_inactive", "statuses", "hours_before", "type", "subject", "body",
		"html", "minutes", "hours", "days", "zz", "", "Type"}
	types := []string{"scheduled", "invoice_overdue", "maintenance_due", "stale_job", "appointment", "Scheduled", ""}
	stepTypes := []string{`"send_email"`, `"send_sms"`, `"delay"`, `"webhook"`, `5`, `null`}
	object := func(n int, extra string) string {
		parts := []string{}
		if extra != "" {
			parts = append(parts, extra)
		}
		for range n {
			parts = append(parts, fmt.Sprintf("%q:%s", keys[r.IntN(len(keys))], values[r.IntN(len(values))]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	for i := range 400 {
		tt := types[r.IntN(len(types))]
		cfg := object(r.IntN(4), "")
		if r.IntN(10) == 0 {
			cfg = values[r.IntN(len(values))]
		}
		steps := []string{}
		for range r.IntN(4) {
			if r.IntN(8) == 0 {
				steps = append(steps, values[r.IntN(len(values))])
				continue
			}
			steps = append(steps, object(r.IntN(4), `"type":`+stepTypes[r.IntN(len(stepTypes))]))
		}
		stepsJSON := "[" + strings.Join(steps, ",") + "]"
		var got []string
		err := pool.QueryRow(bg, `select automation_workflow_problems($1, $2::jsonb, $3::jsonb)`, tt, cfg, stepsJSON).Scan(&got)
		require.NoError(t, err, "case %d: %s %s %s", i, tt, cfg, stepsJSON)
		goGot := workflow.Validate(tt, json.RawMessage(cfg), json.RawMessage(stepsJSON))
		if goGot == nil {
			goGot = []string{}
		}
		require.Equal(t, got, goGot, "case %d: %s %s %s", i, tt, cfg, stepsJSON)
	}
}
