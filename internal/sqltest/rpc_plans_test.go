package sqltest_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The RPCs read by primary key or id whatever the statistics say (issue 11:
// the stack's profile found both scans below). With a large organisation
// whose tables have no statistics yet, and statistics on the executions
// taken while none ran (so "few run"), the plans of the claim and of the
// ledger calls (auto_explain, nested statements included) use neither the
// organisation's client or invoice index nor the index of running
// executions, and the answers are those of the lookups by id.
func TestRPCPlansReadByID(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	ctx := context.Background()
	org := pgtest.AllDayOrg(t, db)
	const n = 2000
	pgtest.Exec(t, db, `insert into clients (organization_id, first_name, email)
		select $1, 'Client ' || g, 'client' || g || '@example.com' from generate_series(1, $2) g`, org, n)
	pgtest.Exec(t, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance)
		select $1, c.id, 'INV-' || c.first_name, 'sent', current_date - 3, 100, 100 from clients c where c.organization_id = $1`, org)
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1]}`})
	require.Equal(t, n, pgtest.Int(t, db, `select check_overdue_invoices()`))
	pgtest.Exec(t, db, `vacuum analyze automation_execution_logs`) // none running
	ids := pgtest.ExecutionIDs(t, db, wf)[:20]

	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	var mu sync.Mutex
	var plans strings.Builder
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans.WriteString(n.Message + "\n")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, set := range []string{"load 'auto_explain'", "set auto_explain.log_min_duration = 0", "set auto_explain.log_analyze = on",
		"set auto_explain.log_buffers = on", "set auto_explain.log_nested_statements = on", "set auto_explain.log_level = notice"} {
		_, err := conn.Exec(ctx, set)
		require.NoError(t, err, set)
	}

	claimed := pgtest.ClaimDue(t, conn, automation.ActionInvoiceReminder, ids, 60)
	require.Len(t, claimed, len(ids))
	for _, c := range claimed {
		require.NotNil(t, c.Client, "client of %s", c.Execution.ID)
		require.NotNil(t, c.Invoice, "invoice of %s", c.Execution.ID)
	}
	intents := make([]automation.DeliveryIntent, len(claimed))
	finished := make([]automation.DeliveryFinished, len(claimed))
	for i, c := range claimed {
		intents[i] = deliveryFor(c.Execution.ID, c.Execution.LeaseToken)
		finished[i] = automation.DeliveryFinished{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken,
			DeliveryResult: automation.DeliveryResult{IdempotencyKey: intents[i].IdempotencyKey, Status: automation.DeliverySent, Provider: "smtp"}}
	}
	intents = append(intents, deliveryFor(claimed[0].Execution.ID, uuid.New())) // a lease not held
	begun := pgtest.BeginDeliveries(t, conn, intents...)
	for i, b := range begun[:len(claimed)] {
		assert.Equal(t, automation.BeginNew, b.State, "intent %d", i)
	}
	assert.Equal(t, automation.BeginStale, begun[len(claimed)].State)
	raw, err := json.Marshal(finished)
	require.NoError(t, err)
	var done int
	require.NoError(t, conn.QueryRow(ctx, `select automation_finish_deliveries($1::jsonb)`, string(raw)).Scan(&done))
	assert.Equal(t, len(claimed), done)

	mu.Lock()
	defer mu.Unlock()
	text := plans.String()
	require.Contains(t, text, "automation_deliveries", "auto_explain wrote the RPCs' plans")
	for _, idx := range []string{"clients_org_idx", "invoices_client_idx", "automation_execution_logs_lease_idx"} {
		assert.False(t, strings.Contains(text, idx), "a plan walks %s", idx)
	}
}
