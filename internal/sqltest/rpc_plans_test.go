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

// The parts automation_report is cut into (20261203000600_report_parts.sql)
// cost no call per row: the planner inlines each into the report's
// statement, so its plan (auto_explain, verbose, nested statements; the
// plans without their query texts) shows their expressions and none of
// their names. A SET clause, SECURITY DEFINER, STRICT on a set-returning
// part or a volatility below its body's would stop the inlining and fail
// this test.
func TestReportPartsInlined(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	ctx := context.Background()
	_, _, execs := pgtest.OverdueInvoices(t, db, 3)
	pgtest.MakeDue(t, db)

	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	var mu sync.Mutex
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, set := range []string{"load 'auto_explain'", "set auto_explain.log_min_duration = 0", "set auto_explain.log_verbose = on",
		"set auto_explain.log_format = json", "set auto_explain.log_nested_statements = on", "set auto_explain.log_level = notice"} {
		_, err := conn.Exec(ctx, set)
		require.NoError(t, err, set)
	}
	claimed := pgtest.ClaimDue(t, conn, automation.ActionInvoiceReminder, execs, 60)
	require.Len(t, claimed, 3)
	mu.Lock()
	plans = nil
	mu.Unlock()
	key := "k-" + claimed[0].Execution.ID.String()
	reported := pgtest.Report(t, conn,
		automation.Outcome{ExecutionID: claimed[0].Execution.ID, LeaseToken: claimed[0].Execution.LeaseToken, Status: automation.OutcomeCompleted,
			Deliveries: []automation.DeliveryResult{{IdempotencyKey: key, Status: automation.DeliverySent}}},
		automation.Outcome{ExecutionID: claimed[1].Execution.ID, LeaseToken: claimed[1].Execution.LeaseToken, Status: automation.OutcomeRetry,
			ErrorCode: "provider_unavailable"},
		automation.Outcome{ExecutionID: claimed[2].Execution.ID, LeaseToken: uuid.New(), Status: automation.OutcomeCompleted})
	assert.True(t, reported[0].Applied)
	assert.True(t, reported[1].Applied)
	assert.Equal(t, "pending", string(reported[1].Status))
	assert.False(t, reported[2].Applied)

	mu.Lock()
	defer mu.Unlock()
	var text strings.Builder
	for _, msg := range plans {
		_, js, ok := strings.Cut(msg, "plan:")
		require.True(t, ok, msg)
		var p struct{ Plan json.RawMessage }
		require.NoError(t, json.Unmarshal([]byte(js), &p), js)
		text.Write(p.Plan)
	}
	require.Contains(t, text.String(), `"Relation Name": "automation_deliveries"`, "auto_explain wrote the report's plan")
	require.Contains(t, text.String(), "jsonb_array_elements(", "the outcomes' and deliveries' parse, inlined")
	for _, part := range []string{"automation_report_outcomes", "automation_outcome_rejection", "automation_outcome_due_at",
		"automation_outcome_next_status", "automation_outcome_next_code", "automation_outcome_error_message",
		"automation_report_deliveries", "automation_reported"} {
		assert.NotContains(t, text.String(), part, "the report's plan calls %s instead of inlining it", part)
	}
}
