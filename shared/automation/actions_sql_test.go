package automation_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Go's action list is the SQL table automation_actions, in the same order
// (Go cannot read the database at init), and every trigger type Go knows
// maps to exactly one action.
func TestActionsEqualSQLTable(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewCoreDB(t)
	ctx := context.Background()
	sqlActions := pgtest.JSON[[]string](t, pool,
		`select coalesce(jsonb_agg(action order by position, action), '[]') from automation_actions`)
	goActions := make([]string, 0, len(automation.Actions))
	for _, a := range automation.Actions {
		goActions = append(goActions, string(a))
	}
	assert.Equal(t, goActions, sqlActions, "shared/automation.Actions differs from the rows of automation_actions")

	triggers := []string{string(automation.TriggerScheduled), string(automation.TriggerInvoiceOverdue),
		string(automation.TriggerMaintenanceDue), string(automation.TriggerStaleJob), string(automation.TriggerAppointment)}
	for _, tt := range triggers {
		var n int
		require.NoError(t, pool.QueryRow(ctx,
			`select count(*) from automation_actions where $1 = any (trigger_types)`, tt).Scan(&n))
		assert.Equal(t, 1, n, "trigger type %s: actions", tt)
	}
	var extra []string
	require.NoError(t, pool.QueryRow(ctx, `select coalesce(array_agg(t order by t), '{}') from automation_actions a,
		unnest(a.trigger_types) t where not (t = any ($1))`, triggers).Scan(&extra))
	assert.Empty(t, extra, "trigger types in automation_actions that Go does not know")
}

// automation_action_for reads the table: each trigger type's action, NULL
// for an unknown type.
func TestActionForReadsTable(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewCoreDB(t)
	ctx := context.Background()
	for tt, want := range map[string]string{
		string(automation.TriggerInvoiceOverdue): string(automation.ActionInvoiceReminder),
		string(automation.TriggerMaintenanceDue): string(automation.ActionSendReminder),
		string(automation.TriggerAppointment):    string(automation.ActionSendReminder),
		string(automation.TriggerStaleJob):       string(automation.ActionSendReminder),
		string(automation.TriggerScheduled):      string(automation.ActionRunWorkflow),
	} {
		var got string
		require.NoError(t, pool.QueryRow(ctx, `select automation_action_for($1)`, tt).Scan(&got))
		assert.Equal(t, want, got, tt)
	}
	var unknown *string
	require.NoError(t, pool.QueryRow(ctx, `select automation_action_for('nope')`).Scan(&unknown))
	assert.Nil(t, unknown)
}
