package workflow_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/workflow"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

// Every bad value class of issue 8 (and the bounds, at and just past each
// one) gives exactly the problems the corpus lists.
func TestValidateCorpus(t *testing.T) {
	cases := loadCorpus(t)
	require.Greater(t, len(cases), 100)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			got := workflow.Validate(c.triggerType(), c.TriggerConfig, c.Steps)
			if got == nil {
				got = []string{}
			}
			assert.Equal(t, c.Problems, got)
		})
	}
}

// The corpus must hold every class the issue names, valid and not.
func TestCorpusCoversTheIssue(t *testing.T) {
	b, err := os.ReadFile("testdata/corpus.json")
	require.NoError(t, err)
	for _, s := range []string{`"hour": "nine"`, `"hour": 9.5`, `"1e10"`, `"1e300"`, `"day_of_week": "monday"`,
		`"day_of_month": "last"`, `"days_inactive": "a week"`, `"months_after_service": "six"`, `"hours_before": "24h"`,
		`"days": "1"`, `"hours": 1.5`, `"subject": 5`, `[[1]]`, `"1e20"`, `"times": 65537`, `"steps: at most 20 steps"`,
		`unknown variable`, `unknown key`, `"minutes": -5`, `"minutes": 0, "hours": 0, "days": 0`, `"days": 366`} {
		assert.Contains(t, string(b), s)
	}
}

func TestValidateOddInput(t *testing.T) {
	all := []string{"trigger_config: must be an object", "steps: must be a list"}
	for _, raw := range []string{"", " ", "{", "[1,", "{} {}", "nul", "\x00"} {
		assert.Equal(t, all, workflow.Validate("scheduled", json.RawMessage(raw), json.RawMessage(raw)), "%q", raw)
	}
	assert.Empty(t, workflow.Validate("scheduled", json.RawMessage(" {} "), json.RawMessage("\n[]\n")))
	// an exponent too long for int64 either way
	assert.Equal(t, []string{"trigger_config.hour: must be a whole number from 0 to 23"},
		workflow.Validate("scheduled", json.RawMessage(`{"hour":1e99999999999999999999}`), json.RawMessage(`[]`)))
	assert.Equal(t, []string{"trigger_config.hour: must be a whole number from 0 to 23"},
		workflow.Validate("scheduled", json.RawMessage(`{"hour":1e-99999999999999999999}`), json.RawMessage(`[]`)))
	assert.Empty(t, workflow.Validate("scheduled", json.RawMessage(`{"hour":0e99999999999999999999}`), json.RawMessage(`[]`)))
	assert.Empty(t, workflow.Validate("scheduled", json.RawMessage(`{"hour":0.000e3}`), json.RawMessage(`[]`)))
	assert.Equal(t, []string{"trigger_config.hour: must be a whole number from 0 to 23"},
		workflow.Validate("scheduled", json.RawMessage(`{"hour":2300e-2}`), json.RawMessage(`[]`)), "23.00 has fractional digits")
}

// A huge document is validated without blowing up: 10,000 steps, one
// problem for the count and one per bad step only.
func TestValidateManySteps(t *testing.T) {
	steps := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"send_sms"},`, 10000), ",") + `,{"type":"delay"}]`
	got := workflow.Validate("scheduled", json.RawMessage(`{}`), json.RawMessage(steps))
	assert.Equal(t, []string{"steps: at most 20 steps", "steps[10000]: a delay must be from 1 minute to 365 days"}, got)
}

// The rules' template variables are exactly the ones the renderer knows.
func TestVariablesAreTheRenderers(t *testing.T) {
	assert.ElementsMatch(t, render.Variables, workflow.Rules().Variables)
	assert.Len(t, workflow.Rules().Variables, len(render.Variables))
}

// Rules decodes rules.json (every key known to the Go types, or it panics)
// and hands out a copy.
func TestRulesDocument(t *testing.T) {
	d := workflow.Rules()

	d.TriggerTypes[0].Name = "changed"
	d.Variables[0] = "changed"
	assert.Equal(t, "scheduled", workflow.Rules().TriggerTypes[0].Name)
	assert.Empty(t, workflow.Validate("scheduled", json.RawMessage(`{}`), json.RawMessage(`[{"type":"send_sms","body":"{{client.first_name}}"}]`)))

	known := map[string]bool{workflow.TypeInteger: true, workflow.TypeEnum: true, workflow.TypeString: true,
		workflow.TypeIntegerList: true, workflow.TypeStringList: true}
	fields := []workflow.Field{}
	for _, tt := range d.TriggerTypes {
		fields = append(fields, tt.Config...)
	}
	for _, st := range d.Steps.Types {
		fields = append(fields, st.Fields...)
	}
	for _, f := range fields {
		assert.True(t, known[f.Type], "%s: type %q", f.Key, f.Type)
	}
}
