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

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

const wiringMigration = "20261202000800_workflow_spec_wiring.sql"

// Workflows as the replaced system's builder writes them.
const (
	builderSteps   = `[{"type":"action","config":{"actionType":"email","subject":"Invoice {{invoice.number}}","message":"Dear {{client.firstName}}"}}]`
	builderConfig  = `{"daysOverdue": 3}`
	aiSteps        = `[{"type":"action","config":{"actionType":"ai_generate_message","prompt":"be kind"}}]`
	eventConfig    = `{"triggerType":"job_status_changed","conditions":[]}`
	eventReason    = "trigger type job_status_changed is an event trigger dueflow does not run"
	aiReason       = "steps[0]: action ai_generate_message is not one dueflow has"
	refusalMessage = "automation_workflows: invalid workflow: "
)

// requireRefused asserts err is the validation trigger's 23514 with message
// "automation_workflows: invalid workflow: " + problems.
func requireRefused(t *testing.T, err error, problems string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a refusal, got %v", err)
	assert.Equal(t, "23514", pgErr.Code)
	assert.Equal(t, refusalMessage+problems, pgErr.Message)
}

// specOfRow is the stored spec of a workflow.
func specOfRow(t *testing.T, db pgtest.DB, id uuid.UUID) map[string]any {
	t.Helper()
	return pgtest.JSON[map[string]any](t, db, `select spec from automation_workflows where id = $1`, id)
}

func setValidation(t *testing.T, db pgtest.DB, mode string) {
	t.Helper()
	pgtest.Exec(t, db, `update automation_settings set workflow_validation = $1`, mode)
}

// occurrenceKeys lists a workflow's occurrence keys, sorted.
func occurrenceKeys(t *testing.T, db pgtest.DB, wf uuid.UUID) []string {
	t.Helper()
	return pgtest.JSON[[]string](t, db, `select coalesce(jsonb_agg(occurrence_key order by occurrence_key), '[]')
		from automation_execution_logs where workflow_id = $1`, wf)
}

// orgWithOverdueInvoice creates an all-day organisation with a client and
// one invoice three days overdue; it returns the organisation and the client.
func orgWithOverdueInvoice(t *testing.T, db pgtest.DB) (org, client uuid.UUID) {
	t.Helper()
	org = pgtest.AllDayOrg(t, db)
	client = pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@client.test"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3})
	return org, client
}

// withEndpoints registers the webhook secret and an endpoint per action.
func withEndpoints(t *testing.T, db pgtest.DB, actions ...string) {
	t.Helper()
	pgtest.SetSecret(t, db, "dueflow_webhook_secret", testSecret)
	for _, a := range actions {
		pgtest.SetEndpoint(t, db, a, "http://127.0.0.1:54321/functions/v1/"+a, 100)
	}
}

// A workflow written in the builder's shape on a fresh install (refuse mode)
// is accepted, runs with its converted trigger_config (a reminder on day 3
// only, not the default days), and the claim carries dueflow's steps.
func TestBuilderWorkflowRunsOnFreshInstall(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	assert.Equal(t, "refuse", pgtest.Text(t, db, `select workflow_validation from automation_settings`))
	org := pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@client.test"})
	inv2 := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -2})
	inv3 := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3})
	inv10 := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -10})

	wf, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, builderSteps)
	require.NoError(t, err, "a builder workflow dueflow can run is accepted")
	assert.Equal(t, []string{}, problemsOf(t, db, wf))
	assert.Equal(t, map[string]any{"runnable": true, "reason": nil, "active": true,
		"trigger_type": "invoice_overdue", "trigger_config": map[string]any{"days_after_due": []any{3.0}},
		"steps": []any{map[string]any{"type": "send_email", "subject": "Invoice {{invoice.number}}", "body": "Dear {{client.first_name}}"}},
	}, specOfRow(t, db, wf))
	// the row itself is kept as the app wrote it
	assert.JSONEq(t, builderSteps, pgtest.Text(t, db, `select steps::text from automation_workflows where id = $1`, wf))

	require.Equal(t, 2, pgtest.Int(t, db, `select check_overdue_invoices()`))
	due := func(inv uuid.UUID) string {
		return pgtest.Text(t, db, `select due_date::text from invoices where id = $1`, inv)
	}
	assert.ElementsMatch(t, []string{
		"invoice:" + inv10.String() + ":" + due(inv10) + ":d3",
		"invoice:" + inv3.String() + ":" + due(inv3) + ":d3",
	}, occurrenceKeys(t, db, wf), "day 3 only; nothing for the invoice 2 days overdue (%s)", inv2)

	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, pgtest.ExecutionIDs(t, db, wf), 60)
	for _, c := range got {
		assert.Equal(t, "invoice_overdue", c.Workflow.TriggerType)
		assert.JSONEq(t, `{"days_after_due":[3]}`, string(c.Workflow.TriggerConfig))
		assert.True(t, c.Workflow.IsActive)
		assert.Equal(t, []automation.Step{{Type: "send_email", Subject: "Invoice {{invoice.number}}", Body: "Dear {{client.first_name}}"}},
			c.Workflow.Steps)
	}
}

// refuse mode refuses what dueflow cannot run, naming the spec's reason;
// mark mode stores it with its problems, the checks skip it visibly and
// create nothing for it, the dispatcher rings only for what runs. A builder
// workflow dueflow can run runs in both modes.
func TestValidationModes(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, client := orgWithOverdueInvoice(t, db)
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, updated_at) values ($1, $2, 'in_progress', now() - interval '30 days')`,
		org, client)

	_, err := insertWorkflow(db, org, "job_status_changed", eventConfig, builderSteps)
	requireRefused(t, err, eventReason)
	_, err = insertWorkflow(db, org, "invoice_overdue", builderConfig, aiSteps)
	requireRefused(t, err, aiReason)
	_, err = insertWorkflow(db, org, "invoice_overdue", `{"days_after_due":[1],"cc":"x"}`, `[]`)
	requireRefused(t, err, "trigger_config.cc: unknown key")
	require.Zero(t, pgtest.Int(t, db, `select count(*) from automation_workflows`))

	setValidation(t, db, "mark")
	event, err := insertWorkflow(db, org, "job_status_changed", eventConfig, builderSteps)
	require.NoError(t, err)
	ai, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, aiSteps)
	require.NoError(t, err)
	typo, err := insertWorkflow(db, org, "invoice_overdue", `{"days_after_due":[1],"cc":"x"}`, `[]`)
	require.NoError(t, err)
	runs, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, builderSteps)
	require.NoError(t, err)
	stale, err := insertWorkflow(db, org, "stale_job", `{"triggerType":"stale_job","days_inactive":"7"}`, builderSteps)
	require.NoError(t, err)

	assert.Equal(t, []string{eventReason}, problemsOf(t, db, event))
	assert.Equal(t, []string{aiReason}, problemsOf(t, db, ai))
	assert.Equal(t, []string{"trigger_config.cc: unknown key"}, problemsOf(t, db, typo))
	assert.Equal(t, []string{}, problemsOf(t, db, runs))
	assert.Equal(t, []string{}, problemsOf(t, db, stale))
	for id, reason := range map[uuid.UUID]string{event: eventReason, ai: aiReason, typo: "trigger_config.cc: unknown key"} {
		s := specOfRow(t, db, id)
		assert.Equal(t, false, s["runnable"])
		assert.Equal(t, reason, s["reason"])
	}
	// the rows are kept as the app wrote them
	assert.Equal(t, "job_status_changed", pgtest.Text(t, db, `select trigger_type from automation_workflows where id = $1`, event))
	assert.JSONEq(t, aiSteps, pgtest.Text(t, db, `select steps::text from automation_workflows where id = $1`, ai))

	pgtest.Int(t, db, `select check_overdue_invoices()`)
	pgtest.Int(t, db, `select check_automation_triggers()`)
	pgtest.Int(t, db, `select check_maintenance_reminders()`)
	perWorkflow := pgtest.JSON[map[string]int](t, db, `select coalesce(jsonb_object_agg(workflow_id, n), '{}')
		from (select workflow_id, count(*) as n from automation_execution_logs group by 1) x`)
	assert.Equal(t, map[string]int{runs.String(): 1, stale.String(): 1}, perWorkflow, "only what dueflow can run creates executions")

	type problem struct {
		Check, TriggerType, Code, Message string
		Workflow                          uuid.UUID
	}
	recorded := pgtest.JSON[[]problem](t, db, `select coalesce(jsonb_agg(jsonb_build_object('Check', check_name, 'TriggerType', trigger_type,
		'Code', code, 'Message', message, 'Workflow', workflow_id) order by check_name, trigger_type, message), '[]')
		from automation_check_problems`)
	assert.Equal(t, []problem{
		{"check_automation_triggers", "job_status_changed", "invalid_config", eventReason, event},
		{"check_overdue_invoices", "invoice_overdue", "invalid_config", aiReason, ai},
		{"check_overdue_invoices", "invoice_overdue", "invalid_config", "trigger_config.…: unknown key", typo},
	}, recorded)
	assert.Equal(t, 3, pgtest.Int(t, db, `select check_problems from automation_queue_health`))

	// the dispatcher rings for the runnable workflows' executions only
	pgtest.MakeDue(t, db)
	withEndpoints(t, db, automation.ActionInvoiceReminder, automation.ActionSendReminder)
	require.Equal(t, 2, pgtest.Int(t, db, `select process_pending_automations()`))
	var rung []uuid.UUID
	for _, r := range queuedRequests(t, db) {
		var body automation.Request
		require.NoError(t, json.Unmarshal(r.Body, &body))
		rung = append(rung, body.ExecutionIDs...)
	}
	assert.ElementsMatch(t, append(pgtest.ExecutionIDs(t, db, runs), pgtest.ExecutionIDs(t, db, stale)...), rung)

	// the app mends the event workflow into one dueflow runs: it runs, and
	// its record goes at the next check
	pgtest.Exec(t, db, `update automation_workflows set trigger_type = 'stale_job', trigger_config = '{"days_inactive":7}' where id = $1`, event)
	assert.Equal(t, []string{}, problemsOf(t, db, event))
	require.Equal(t, 1, pgtest.Int(t, db, `select check_automation_triggers()`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_check_problems where workflow_id = $1`, event))

	// back in refuse mode: switching a workflow off is never refused, an edit is
	setValidation(t, db, "refuse")
	pgtest.Exec(t, db, `update automation_workflows set is_active = false where id = $1`, ai)
	assert.Equal(t, false, specOfRow(t, db, ai)["active"])
	_, err = db.Exec(bg, `update automation_workflows set steps = steps where id = $1`, ai)
	requireRefused(t, err, aiReason)
}

// The stored spec's active flag follows is_active; the checks read it.
func TestSpecActiveFollowsRow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _ := orgWithOverdueInvoice(t, db)
	wf, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, builderSteps)
	require.NoError(t, err)

	pgtest.Exec(t, db, `update automation_workflows set is_active = false where id = $1`, wf)
	assert.Equal(t, false, specOfRow(t, db, wf)["active"])
	assert.Zero(t, pgtest.Int(t, db, `select check_overdue_invoices()`))
	pgtest.Exec(t, db, `update automation_workflows set is_active = true where id = $1`, wf)
	assert.Equal(t, true, specOfRow(t, db, wf)["active"])
	assert.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`))
	// a spec written by hand is recomputed from the row
	pgtest.Exec(t, db, `update automation_workflows set spec = '{"runnable":true,"active":true,"trigger_type":"scheduled"}' where id = $1`, wf)
	assert.Equal(t, "invoice_overdue", specOfRow(t, db, wf)["trigger_type"])
}

// Due executions of a workflow the app changed into one dueflow cannot run
// fail (invalid_workflow, the reason named) and are never rung; the others
// are rung.
func TestDispatchFailsExecutionsOfUnrunnableWorkflow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	setValidation(t, db, "mark")
	org, _ := orgWithOverdueInvoice(t, db)
	changed, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, builderSteps)
	require.NoError(t, err)
	kept, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, builderSteps)
	require.NoError(t, err)
	require.Equal(t, 2, pgtest.Int(t, db, `select check_overdue_invoices()`))
	pgtest.MakeDue(t, db)
	pgtest.Exec(t, db, `update automation_workflows set steps = $2::jsonb where id = $1`, changed, aiSteps)

	withEndpoints(t, db, automation.ActionInvoiceReminder)
	require.Equal(t, 1, pgtest.Int(t, db, `select process_pending_automations()`))
	reqs := queuedRequests(t, db)
	require.Len(t, reqs, 1)
	var body automation.Request
	require.NoError(t, json.Unmarshal(reqs[0].Body, &body))
	assert.Equal(t, pgtest.ExecutionIDs(t, db, kept), body.ExecutionIDs)

	bad := pgtest.ExecutionIDs(t, db, changed)
	require.Len(t, bad, 1)
	row := execution(t, db, bad[0])
	assert.Equal(t, "failed", row.Status)
	assert.Equal(t, string(automation.CodeInvalidWorkflow), *row.ErrorCode)
	assert.Equal(t, "the workflow cannot run: "+aiReason,
		pgtest.Text(t, db, `select error_message from automation_execution_logs where id = $1`, bad[0]))
}

// The first run of the migration on an install with the replaced system's
// builder columns chooses mark; a re-run keeps the operator's choice and
// changes nothing; the trigger follows the columns the install has
// (template_config delays, status).
func TestWiringOnReplacedColumns(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	pgtest.Exec(t, db, `delete from automation_settings`)
	pgtest.Exec(t, db, `alter table automation_workflows add column template_config jsonb default '{}', add column status text default 'active'`)
	require.NoError(t, pgtest.ApplyMigration(bg, db, wiringMigration))
	assert.Equal(t, "mark", pgtest.Text(t, db, `select workflow_validation from automation_settings`))

	steps := `[{"type":"action","config":{"actionType":"email","subject":"S","message":"M"}},` +
		`{"type":"action","config":{"actionType":"sms","message":"T"}}]`
	wf, err := insertWorkflow(db, org, "invoice_overdue", builderConfig, steps)
	require.NoError(t, err)
	require.Len(t, specOfRow(t, db, wf)["steps"], 2)
	pgtest.Exec(t, db, `update automation_workflows set template_config = '{"steps":[{"type":"action","config":{"actionType":"email"}},
		{"type":"delay","config":{"delayType":"days","delayValue":1}},{"type":"action","config":{"actionType":"sms"}}]}' where id = $1`, wf)
	assert.Equal(t, []any{
		map[string]any{"type": "send_email", "subject": "S", "body": "M"},
		map[string]any{"type": "delay", "days": 1.0},
		map[string]any{"type": "send_sms", "body": "T"},
	}, specOfRow(t, db, wf)["steps"], "a write of template_config recomputes the spec")
	pgtest.Exec(t, db, `update automation_workflows set status = 'paused' where id = $1`, wf)
	assert.Equal(t, false, specOfRow(t, db, wf)["active"], "status is one of the active flags")

	setValidation(t, db, "refuse")
	before := pgtest.Text(t, db, `select jsonb_agg(to_jsonb(w) order by id)::text from automation_workflows w`)
	require.NoError(t, pgtest.ApplyMigration(bg, db, wiringMigration))
	assert.Equal(t, "refuse", pgtest.Text(t, db, `select workflow_validation from automation_settings`), "the operator's choice is kept")
	assert.Equal(t, before, pgtest.Text(t, db, `select jsonb_agg(to_jsonb(w) order by id)::text from automation_workflows w`),
		"a re-run changes nothing")
}

// The checks' workflow lookups are index scans on the stored spec.
func TestRunnableWorkflowsLookupUsesIndexes(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	tx, err := db.Begin(bg)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(bg) }()
	pgtest.Exec(t, tx, `set local enable_seqscan = off`)
	plan := func(q string) string {
		rows, err := tx.Query(bg, "explain "+q)
		require.NoError(t, err)
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var l string
			require.NoError(t, rows.Scan(&l))
			lines = append(lines, l)
		}
		require.NoError(t, rows.Err())
		return strings.Join(lines, "\n")
	}
	p := plan(`select * from automation_runnable_workflows('invoice_overdue') where organization_id = gen_random_uuid()`)
	assert.Contains(t, p, "automation_workflows_spec_run_idx")
	assert.Contains(t, p, "automation_workflows_spec_unready_idx")
	assert.NotContains(t, p, "Seq Scan")
	p = plan(`select * from automation_workflows_unready()`)
	assert.Contains(t, p, "automation_workflows_spec_unready_idx")
	assert.NotContains(t, p, "Seq Scan")
}
