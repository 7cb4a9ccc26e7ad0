package workflow_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/render"
)

// specRow is the SQL of automation_workflow_spec over an automation_workflows
// row built from $1 (a JSON object of column values), not inserted.
const specRow = `automation_workflow_spec(jsonb_populate_record(null::automation_workflows, $1::jsonb))`

// Every valid workflow of the corpus, as a row of a fresh install's
// automation_workflows (no status, enabled, template_config, action_type
// columns), comes back unchanged: runnable, no reason, its trigger type,
// configuration and steps equal to what was written.
func TestSQLSpecFixedPoint(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	n := 0
	for _, c := range loadCorpus(t) {
		if len(c.Problems) > 0 {
			continue
		}
		n++
		row, err := json.Marshal(map[string]any{"trigger_type": c.TriggerType, "trigger_config": c.TriggerConfig,
			"steps": c.Steps, "is_active": n%2 == 0})
		require.NoError(t, err)
		var runnable, same, active bool
		var reason *string
		err = pool.QueryRow(bg, `select (s ->> 'runnable')::boolean, s ->> 'reason',
				s -> 'trigger_type' = $1::jsonb -> 'trigger_type' and s -> 'trigger_config' = $1::jsonb -> 'trigger_config'
				  and s -> 'steps' = $1::jsonb -> 'steps',
				(s ->> 'active')::boolean
			from `+specRow+` s`, string(row)).Scan(&runnable, &reason, &same, &active)
		require.NoError(t, err, c.Name)
		assert.True(t, runnable, "%s: %v", c.Name, reason)
		assert.Nil(t, reason, c.Name)
		assert.True(t, same, "%s: changed: %s", c.Name, pgtest.Text(t, pool, `select `+specRow+`::text`, string(row)))
		assert.Equal(t, n%2 == 0, active, "%s: active is is_active on a fresh install", c.Name)
	}
	require.Greater(t, n, 15)
}

// On a fresh install the spec reads the same conventions; a NULL row and
// NULL columns never raise.
func TestSQLSpecFreshInstall(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	spec := func(row string) string { return pgtest.Text(t, pool, `select `+specRow+`::text`, row) }
	assert.JSONEq(t, `{"runnable":true,"reason":null,"trigger_type":"appointment","trigger_config":{"hours_before":48},
		"steps":[{"type":"send_sms","body":"{{job.title}} at {{organization.name}}"}],"active":true}`,
		spec(`{"trigger_type":"job_scheduled","trigger_config":{"triggerType":"job_scheduled","hours_before":"48"},"is_active":true,
			"steps":[{"type":"action","config":{"actionType":"sms","message":"{{job.title}} at {{company.name}}"}}]}`))
	assert.JSONEq(t, `{"runnable":false,"reason":"trigger type is not set","trigger_type":null,"trigger_config":null,"steps":null,"active":false}`,
		spec(`{}`))
	assert.JSONEq(t, `{"runnable":false,"reason":"trigger type is not set","trigger_type":null,"trigger_config":null,"steps":null,"active":false}`,
		pgtest.Text(t, pool, `select automation_workflow_spec(null::automation_workflows)::text`))
}

// The alias table maps the app's names to dueflow's variables only, and the
// spec renames every one of them, with or without spaces inside the braces.
func TestSQLSpecVariableAliases(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	aliases := pgtest.JSON[map[string]string](t, pool, `select automation_workflow_variable_aliases()`)
	require.Greater(t, len(aliases), 20)
	for from, to := range aliases {
		assert.True(t, render.IsVariable(to), "%s -> %s: not a dueflow variable", from, to)
		assert.False(t, render.IsVariable(from), "%s is a dueflow variable already", from)
		body := fmt.Sprintf("a {{%s}} b {{ %s }}", from, from)
		row, err := json.Marshal(map[string]any{"trigger_type": "scheduled", "trigger_config": map[string]any{},
			"steps": []any{map[string]any{"type": "action", "config": map[string]any{"actionType": "sms", "message": body}}}})
		require.NoError(t, err)
		got := pgtest.JSON[struct {
			Runnable bool
			Steps    []struct{ Body string }
		}](t, pool, `select `+specRow, string(row))
		assert.True(t, got.Runnable, from)
		require.Len(t, got.Steps, 1, from)
		assert.Equal(t, fmt.Sprintf("a {{%s}} b {{%s}}", to, to), got.Steps[0].Body, from)
	}
}
