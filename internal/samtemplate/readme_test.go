package samtemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	"github.com/dueflow/dueflow/shared/automation"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// docSQL returns the ```sql block that follows <!-- test:name --> in file
// (a path from the repository root, e.g. docs/adopting.md): the operator SQL
// of README.md and docs/ is run here as written. The marker must be in that
// file and in no other document, so a stale copy cannot go untested.
func docSQL(t *testing.T, file, name string) string {
	t.Helper()
	marker := "<!-- test:" + name + " -->"
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	require.NoError(t, err)
	for _, d := range append(docs, filepath.Join(repoRoot, "README.md")) {
		if filepath.Clean(d) == filepath.Join(repoRoot, file) {
			continue
		}
		b, err := os.ReadFile(d)
		require.NoError(t, err)
		require.False(t, strings.Contains(string(b), marker), "%s: %s belongs in %s only", relPath(d), marker, file)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, file))
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, marker)
	require.GreaterOrEqual(t, i, 0, "%s has no %s", file, marker)
	s = s[i+len(marker):]
	start := strings.Index(s, "```sql\n")
	require.GreaterOrEqual(t, start, 0)
	s = s[start+len("```sql\n"):]
	end := strings.Index(s, "```")
	require.GreaterOrEqual(t, end, 0)
	return s[:end]
}

// The documents that hold the tested SQL blocks.
const (
	adoptingDoc  = "docs/adopting.md"
	operatingDoc = "docs/operating.md"
)

func mustExec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(t.Context(), sql, args...)
	require.NoError(t, err, sql)
}

func claim(t *testing.T, pool *pgxpool.Pool, action string) []automation.Claimed {
	t.Helper()
	rows, err := pool.Query(t.Context(), `select public.automation_claim($1, null, 100, 300)`, action)
	require.NoError(t, err)
	defer rows.Close()
	var out []automation.Claimed
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var c automation.Claimed
		require.NoError(t, json.Unmarshal(raw, &c))
		out = append(out, c)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestDocAdoptionExample runs docs/adopting.md's "invoices belong to users"
// example (bigint ids) as an adopter does: on the core migrations alone, the
// app's tables, then its views and hooks in place of the core's defaults;
// the invoice check and the claim work through them.
func TestDocAdoptionExample(t *testing.T) {
	pool, _ := pgtest.NewCoreDB(t)
	ctx := t.Context()
	mustExec(t, pool, docSQL(t, adoptingDoc, "adopt-app"))
	mustExec(t, pool, docSQL(t, adoptingDoc, "adopt-views"))

	user, other := uuid.New(), uuid.New()
	for _, u := range []uuid.UUID{user, other} {
		mustExec(t, pool, `insert into auth.users (id, email) values ($1, $2)`, u, u.String()+"@example.com")
		mustExec(t, pool, `insert into profiles (id, business_name, email, time_zone) values ($1, 'Ace Plumbing', 'ace@example.com', 'Europe/London')`, u)
	}
	var customer, overdue, paid string
	require.NoError(t, pool.QueryRow(ctx, `insert into customers (owner_id, full_name, email) values ($1, 'Ada Lovelace King', 'ada@example.com') returning id::text`, user).Scan(&customer))
	require.NoError(t, pool.QueryRow(ctx, `insert into customer_invoices (owner_id, customer_id, invoice_no, issued, due_on, amount_cents, paid_cents)
		values ($1, $2::bigint, 'INV-7', true, (now() at time zone 'Europe/London')::date - 8, 12000, 2000) returning id::text`, user, customer).Scan(&overdue))
	require.NoError(t, pool.QueryRow(ctx, `insert into customer_invoices (owner_id, customer_id, invoice_no, issued, due_on, amount_cents, paid_at)
		values ($1, $2::bigint, 'INV-8', true, (now() at time zone 'Europe/London')::date - 8, 5000, now()) returning id::text`, user, customer).Scan(&paid))
	wf := pgtest.CreateWorkflow(t, pool, pgtest.Workflow{Org: user, Trigger: automation.TriggerInvoiceOverdue, Config: `{"days_after_due":[1,7,14]}`})

	var created int
	require.NoError(t, pool.QueryRow(ctx, `select public.check_overdue_invoices()`).Scan(&created))
	require.Equal(t, 1, created, "one reminder: the paid invoice has none")
	mustExec(t, pool, `update automation_execution_logs set next_attempt_at = now() where workflow_id = $1`, wf)

	got := claim(t, pool, automation.ActionInvoiceReminder)
	require.Len(t, got, 1)
	c := got[0]
	assert.Equal(t, overdue, c.Execution.SubjectID, "the bigint id as text")
	assert.Equal(t, customer, c.Execution.ClientID)
	assert.Equal(t, user, c.Organization.ID)
	assert.Equal(t, "Europe/London", c.Organization.Timezone)
	assert.Equal(t, "ace@example.com", c.Organization.SenderEmail)
	require.NotNil(t, c.Client)
	assert.Equal(t, customer, c.Client.ID)
	assert.Equal(t, "Ada", c.Client.FirstName)
	assert.Equal(t, "Lovelace King", c.Client.LastName)
	assert.Equal(t, "ada@example.com", c.Client.Email)
	require.NotNil(t, c.Invoice)
	assert.Equal(t, overdue, c.Invoice.ID)
	assert.Equal(t, "INV-7", c.Invoice.Number)
	assert.Equal(t, "overdue", c.Invoice.Status)
	assert.Equal(t, "120.00", c.Invoice.Total)
	assert.Equal(t, "100.00", c.Invoice.Balance)

	// RLS through the redefined automation_current_org_ids(): a user sees
	// their own executions only.
	for u, want := range map[uuid.UUID]int{user: 1, other: 0} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `select set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true)`,
			`{"sub":"`+u.String()+`","role":"authenticated"}`, u.String())
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `set local role authenticated`)
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.QueryRow(ctx, `select count(*) from automation_execution_logs`).Scan(&n))
		assert.Equal(t, want, n, "user %s", u)
		require.NoError(t, tx.Rollback(ctx))
	}
}

// TestDocTextIDs runs docs/adopting.md's text-id example on the core migrations
// alone: contacts, work orders and bills keyed 'C-2001', 'J-1001', 'INV-3001'
// get their reminders, and the claim carries those ids and rows.
func TestDocTextIDs(t *testing.T) {
	pool, _ := pgtest.NewCoreDB(t)
	mustExec(t, pool, docSQL(t, adoptingDoc, "adopt-text-app"))
	mustExec(t, pool, docSQL(t, adoptingDoc, "adopt-text-views"))
	var company uuid.UUID
	require.NoError(t, pool.QueryRow(t.Context(), `insert into companies (name, time_zone, email)
		values ('Ace Plumbing', 'Europe/London', 'office@ace.test') returning id`).Scan(&company))
	mustExec(t, pool, `insert into contacts (id, company_id, first_name, last_name, company_name, email) values
		('C-2001', $1, 'Ada', 'Lovelace', null, 'ada@example.com'),
		('C-2002', $1, null, null, 'Acme Ltd', 'accounts@acme.test')`, company)
	mustExec(t, pool, `insert into work_orders (id, company_id, contact_id, title, service_type, status, starts_at, finished_at, updated_at) values
		('J-1001', $1, 'C-2002', 'Boiler service', 'service', 'completed', null, now() - interval '7 months', now() - interval '7 months'),
		('J-1002', $1, 'C-2001', 'Leak inspection', 'repair', 'scheduled', now() + interval '3 hours', null, now()),
		('J-1003', $1, 'C-2001', 'Kitchen repipe', 'repair', 'in-progress', null, null, now() - interval '10 days')`, company)
	mustExec(t, pool, `insert into bills (id, company_id, contact_id, status, due_on, total, amount_paid) values
		('INV-3001', $1, 'C-2001', 'sent', (now() at time zone 'Europe/London')::date - 8, 120, 20),
		('INV-3002', $1, 'C-2002', 'paid', (now() at time zone 'Europe/London')::date - 8, 50, 50)`, company)
	for tt, cfg := range map[string]string{automation.TriggerInvoiceOverdue: `{"days_after_due":[1,7]}`,
		automation.TriggerMaintenanceDue: "", automation.TriggerAppointment: "", automation.TriggerStaleJob: `{"statuses":["in_progress"]}`} {
		pgtest.CreateWorkflow(t, pool, pgtest.Workflow{Org: company, Trigger: tt, Config: cfg})
	}
	assert.Equal(t, 4, pgtest.Int(t, pool, `select check_overdue_invoices() + check_maintenance_reminders() + check_automation_triggers()`))
	assert.Zero(t, pgtest.Int(t, pool, `select count(*) from automation_check_problems`))
	pgtest.MakeDue(t, pool)

	inv := claim(t, pool, automation.ActionInvoiceReminder)
	require.Len(t, inv, 1)
	assert.Equal(t, "INV-3001", inv[0].Execution.SubjectID)
	assert.Equal(t, "C-2001", inv[0].Execution.ClientID)
	require.NotNil(t, inv[0].Invoice)
	assert.Equal(t, "INV-3001", inv[0].Invoice.Number)
	assert.Equal(t, "100.00", inv[0].Invoice.Balance)
	require.NotNil(t, inv[0].Client)
	assert.Equal(t, "ada@example.com", inv[0].Client.Email)
	assert.Equal(t, "Europe/London", inv[0].Organization.Timezone)

	jobs := map[string]automation.Claimed{}
	for _, c := range claim(t, pool, automation.ActionSendReminder) {
		jobs[c.Execution.TriggerType] = c
	}
	for tt, want := range map[string]struct{ job, client, title, name string }{
		automation.TriggerMaintenanceDue: {"J-1001", "C-2002", "Boiler service", "Acme Ltd"},
		automation.TriggerAppointment:    {"J-1002", "C-2001", "Leak inspection", "Ada"},
		automation.TriggerStaleJob:       {"J-1003", "C-2001", "Kitchen repipe", "Ada"},
	} {
		c, ok := jobs[tt]
		require.True(t, ok, tt)
		assert.Equal(t, want.job, c.Execution.SubjectID, tt)
		assert.Equal(t, want.client, c.Execution.ClientID, tt)
		require.NotNil(t, c.Job, tt)
		assert.Equal(t, want.job, c.Job.ID, tt)
		assert.Equal(t, want.title, c.Job.Title, tt)
		require.NotNil(t, c.Client, tt)
		assert.Equal(t, want.client, c.Client.ID, tt)
		assert.Equal(t, want.name, c.Client.FirstName, tt)
	}
	assert.Len(t, jobs, 3)
}

// TestDocUUIDIDs runs docs/adopting.md's uuid example over the reference
// schema: it is dueflow's own reference view, so the migrations keep
// treating it as theirs (a document drifting from the migration fails here).
func TestDocUUIDIDs(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	current := pgtest.Text(t, pool, `select pg_get_viewdef('public.automation_src_jobs'::regclass)`)
	mustExec(t, pool, docSQL(t, adoptingDoc, "adopt-uuid"))
	assert.Equal(t, current, pgtest.Text(t, pool, `select pg_get_viewdef('public.automation_src_jobs'::regclass)`))

	org := pgtest.AllDayOrg(t, pool)
	cl := pgtest.CreateClient(t, pool, pgtest.Client{Org: org, Email: "c@example.com"})
	var job uuid.UUID
	require.NoError(t, pool.QueryRow(t.Context(), `insert into jobs (organization_id, client_id, title, status, scheduled_start)
		values ($1, $2, 'Visit', 'scheduled', now() + interval '2 hours') returning id`, org, cl).Scan(&job))
	pgtest.CreateWorkflow(t, pool, pgtest.Workflow{Org: org, Trigger: automation.TriggerAppointment})
	require.Equal(t, 1, pgtest.Int(t, pool, `select check_maintenance_reminders()`))
	pgtest.MakeDue(t, pool)
	got := claim(t, pool, automation.ActionSendReminder)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Job)
	assert.Equal(t, job.String(), got[0].Job.ID)
	assert.Equal(t, cl.String(), got[0].Execution.ClientID)
}

// TestDocCancelAndRerun runs docs/operating.md's cancel and re-run
// statements.
func TestDocCancelAndRerun(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	ctx := t.Context()
	org := pgtest.CreateOrg(t, pool, pgtest.Org{Name: "Org", Timezone: "UTC", WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	client := pgtest.CreateClient(t, pool, pgtest.Client{Org: org, Email: "c@example.com"})
	pgtest.CreateInvoice(t, pool, pgtest.Invoice{Org: org, Client: client, DueInDays: -3, Amount: "50.00"})
	pgtest.CreateWorkflow(t, pool, pgtest.Workflow{Org: org, Trigger: automation.TriggerInvoiceOverdue, Config: `{"days_after_due":[1]}`})
	var n int
	require.NoError(t, pool.QueryRow(ctx, `select public.check_overdue_invoices()`).Scan(&n))
	require.Equal(t, 1, n)

	cl := claim(t, pool, automation.ActionInvoiceReminder)
	require.Len(t, cl, 1)
	id, token := cl[0].Execution.ID, cl[0].Execution.LeaseToken
	withID := func(sql string) string { return strings.ReplaceAll(sql, "<execution id>", id.String()) }
	status := func() (s string, code *string) {
		require.NoError(t, pool.QueryRow(ctx, `select status, error_code from automation_execution_logs where id = $1`, id).Scan(&s, &code))
		return
	}

	// Cancel a running execution: its function's report is refused.
	mustExec(t, pool, withID(docSQL(t, operatingDoc, "cancel")))
	s, code := status()
	assert.Equal(t, string(automation.StatusCancelled), s)
	assert.Equal(t, "cancelled", *code)
	out, err := json.Marshal([]automation.Outcome{{ExecutionID: id, LeaseToken: token, Status: automation.OutcomeCompleted}})
	require.NoError(t, err)
	var rep []byte
	require.NoError(t, pool.QueryRow(ctx, `select public.automation_report($1::jsonb)`, out).Scan(&rep))
	var reported []automation.Reported
	require.NoError(t, json.Unmarshal(rep, &reported))
	require.Len(t, reported, 1)
	assert.False(t, reported[0].Applied, "stale report after cancel")
	s, _ = status()
	assert.Equal(t, string(automation.StatusCancelled), s)

	// Re-run it: claimable again with its attempts reset; a failed delivery
	// re-armed, the sent one kept.
	mustExec(t, pool, `insert into automation_deliveries (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status)
		values ($1, $2, 0, 'email', 'c@example.com', 'smtp', $3, 'failed'), ($1, $2, 1, 'sms', '+15550100', 'telnyx', $4, 'sent')`,
		id, org, automation.IdempotencyKey(id, 0, "email"), automation.IdempotencyKey(id, 1, "sms"))
	mustExec(t, pool, `update automation_execution_logs set max_attempts = attempt where id = $1`, id)
	mustExec(t, pool, withID(docSQL(t, operatingDoc, "rerun")))
	s, code = status()
	assert.Equal(t, string(automation.StatusPending), s)
	assert.Nil(t, code)
	var kept []string
	rows, err := pool.Query(ctx, `select status from automation_deliveries where execution_id = $1 order by step_index`, id)
	require.NoError(t, err)
	for rows.Next() {
		var st string
		require.NoError(t, rows.Scan(&st))
		kept = append(kept, st)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"failed", "sent"}, kept)
	var rearmed bool
	require.NoError(t, pool.QueryRow(ctx, `select retryable from automation_deliveries where execution_id = $1 and status = 'failed'`, id).Scan(&rearmed))
	assert.True(t, rearmed, "failed delivery may be tried again")

	cl = claim(t, pool, automation.ActionInvoiceReminder)
	require.Len(t, cl, 1)
	assert.Equal(t, id, cl[0].Execution.ID)
	assert.Equal(t, 1, cl[0].Execution.Attempt)
}

// TestDocMonitoring runs docs/operating.md's monitoring queries and the
// statement that resumes a paused job, as written, in the pg_cron database.
// Not parallel: it pauses a job of the shared pg_cron database.
func TestDocMonitoring(t *testing.T) {
	db, _ := pgtest.CronDB(t)
	active := `select count(*) from cron.job where jobname = 'update-automation-analytics' and active`
	pgtest.Exec(t, db, `select cron.alter_job(jobid, active := false) from cron.job where jobname = 'update-automation-analytics'`)
	require.Zero(t, pgtest.Int(t, db, active))
	mustExec(t, db, docSQL(t, operatingDoc, "cron-resume"))
	assert.Equal(t, 1, pgtest.Int(t, db, active))

	// every query of the block, one at a time (an error names the query)
	for _, q := range strings.Split(docSQL(t, operatingDoc, "monitoring"), ";") {
		if strings.TrimSpace(q) == "" {
			continue
		}
		rows, err := db.Query(t.Context(), q)
		require.NoError(t, err, q)
		rows.Close()
		require.NoError(t, rows.Err(), q)
	}
}

// docQueries runs every statement of a block of file, one at a time (an
// error names it), and returns each one's rows as text lines.
func docQueries(t *testing.T, db *pgxpool.Pool, file, block string) [][]string {
	t.Helper()
	var out [][]string
	for _, q := range strings.Split(docSQL(t, file, block), ";") {
		if strings.TrimSpace(q) == "" || strings.TrimSpace(stripComments(q)) == "" {
			continue
		}
		out = append(out, pgtest.JSON[[]string](t, db, `select coalesce(json_agg(x::text), '[]') from (`+q+`) x`))
	}
	return out
}

// stripComments drops the "--" comment lines of a statement.
func stripComments(q string) string {
	var keep []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestDocUpgrade runs docs/adopting.md's queries before and after an upgrade of
// the replaced system's database (internal/replaced), with the upgrade as
// the document applies it: the core, then the adapter set, file by file.
func TestDocUpgrade(t *testing.T) {
	db, _ := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(t.Context(), db, replaced.Options{}))

	before := docQueries(t, db, adoptingDoc, "upgrade-before")
	require.Len(t, before, 2)
	assert.Len(t, before[0], 4, "pending, running, processing, delayed: %v", before[0])
	assert.Len(t, before[1], 7, "the draft, the paused one, the inactive one and four event triggers: %v", before[1])

	require.NoError(t, pgcluster.ApplyFS(t.Context(), db, sqlfiles.FS()))
	require.NoError(t, pgcluster.ApplyFS(t.Context(), db, sqlfiles.ReplacedSystemFS()))
	pgtest.Exec(t, db, `select check_overdue_invoices() + check_maintenance_reminders() + check_automation_triggers()`)

	after := docQueries(t, db, adoptingDoc, "upgrade-after")
	require.Len(t, after, 6)
	assert.Equal(t, []string{"(legacy_not_sent,cancelled,11)", "(,completed,4)", "(,failed,3)"}, after[0])
	assert.NotEmpty(t, after[1], "executions the checks created")
	assert.NotEmpty(t, after[2], "workflows dueflow does not run, with the reason")
	assert.NotEmpty(t, after[3])
	assert.Equal(t, []string{"(mark)"}, after[4])
	assert.Len(t, after[5], 1, "no pg_cron in this database: one row saying so")
}
