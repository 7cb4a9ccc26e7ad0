package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/supabase"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const jwtSecret = "integration-jwt-secret-with-32-chars-or-more"

var bg = context.Background()

// stack is the real SQL behind the PostgREST stand-in, the supabase
// adapter, the real SMTP sender and an in-process SMTP server.
type stack struct {
	db    *pgxpool.Pool
	store *supabase.Client
	smtp  *devstack.SMTPCapture
	email *smtpmail.Sender
}

func newStack(t testing.TB) *stack {
	t.Helper()
	db, _ := pgtest.NewDB(t)
	srv := httptest.NewServer(postgrest.New(db, jwtSecret, slog.New(slog.NewJSONHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	key, err := postgrest.SignJWT(jwtSecret, "service_role", time.Hour)
	require.NoError(t, err)
	store, err := supabase.New(supabase.Config{URL: srv.URL, Key: key, Timeout: 10 * time.Second})
	require.NoError(t, err)
	capture, err := devstack.StartSMTPCapture(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = capture.Close(bg) })
	email, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: capture.Port(), TLS: smtpmail.TLSNone,
		From: "noreply@dueflow.test", Timeout: 10 * time.Second})
	require.NoError(t, err)
	// Before the capture server's Shutdown, which waits for open sessions.
	t.Cleanup(func() { _ = email.Close() })
	return &stack{db: db, store: store, smtp: capture, email: email}
}

func (s *stack) engine(t testing.TB, action string, store engine.Store) *engine.Engine {
	t.Helper()
	if store == nil {
		store = s.store
	}
	e, err := engine.New(engine.Options{Action: action, Store: store, Email: s.email, Concurrency: 8,
		NormalizePhone: phone.ParseE164, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	return e
}

// overdue creates an organisation with an all-day window, a workflow with
// steps, and one overdue invoice per client email ("" = no email and no
// phone); the real check creates the executions, made due now.
func (s *stack) overdue(t testing.TB, steps string, emails ...string) (wf uuid.UUID, execs map[string]uuid.UUID) {
	t.Helper()
	org := pgtest.CreateOrg(t, s.db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	wf = pgtest.CreateWorkflow(t, s.db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7]}`, Steps: steps})
	invs := map[uuid.UUID]string{}
	for _, e := range emails {
		phone := ""
		if e != "" {
			phone = "+15555550123"
		}
		client := pgtest.CreateClient(t, s.db, pgtest.Client{Org: org, Email: e, Phone: phone})
		invs[pgtest.CreateInvoice(t, s.db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3, Amount: "120.50"})] = e
	}
	var n int
	require.NoError(t, s.db.QueryRow(bg, `select check_overdue_invoices()`).Scan(&n))
	require.Equal(t, len(emails), n)
	s.makeDue(t)
	execs = map[string]uuid.UUID{}
	rows, err := s.db.Query(bg, `select id, subject_id::uuid from automation_execution_logs where workflow_id = $1`, wf)
	require.NoError(t, err)
	for rows.Next() {
		var id, inv uuid.UUID
		require.NoError(t, rows.Scan(&id, &inv))
		execs[invs[inv]] = id
	}
	require.NoError(t, rows.Err())
	return wf, execs
}

func (s *stack) makeDue(t testing.TB) {
	t.Helper()
	_, err := s.db.Exec(bg, `update automation_execution_logs set next_attempt_at = now() - interval '1 second' where status = 'pending'`)
	require.NoError(t, err)
}

type execRow struct {
	Status, ErrorCode string
	Attempt, Step     int
	Actions           int
	NextAttemptAt     time.Time
}

func (s *stack) exec(t testing.TB, id uuid.UUID) execRow {
	t.Helper()
	var r execRow
	require.NoError(t, s.db.QueryRow(bg, `select status, coalesce(error_code, ''), attempt, step_index, actions_count, next_attempt_at
		from automation_execution_logs where id = $1`, id).Scan(&r.Status, &r.ErrorCode, &r.Attempt, &r.Step, &r.Actions, &r.NextAttemptAt))
	return r
}

type deliveryRow struct {
	Step                         int
	Channel, Recipient, Provider string
	Status, MessageID            string
	SentAt                       *time.Time
}

func (s *stack) deliveries(t testing.TB, id uuid.UUID) []deliveryRow {
	t.Helper()
	rows, err := s.db.Query(bg, `select step_index, channel, recipient, provider, status, coalesce(provider_message_id, ''), sent_at
		from automation_deliveries where execution_id = $1 order by step_index, channel`, id)
	require.NoError(t, err)
	defer rows.Close()
	var out []deliveryRow
	for rows.Next() {
		var d deliveryRow
		require.NoError(t, rows.Scan(&d.Step, &d.Channel, &d.Recipient, &d.Provider, &d.Status, &d.MessageID, &d.SentAt))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

func process(t testing.TB, e *engine.Engine, ids ...uuid.UUID) automation.Summary {
	t.Helper()
	sum, err := e.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
	require.NoError(t, err)
	return sum
}

func values(m map[string]uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestIntegrationSendSkipAndLedger(t *testing.T) {
	s := newStack(t)
	_, execs := s.overdue(t, `[{"type":"send_email","subject":"Invoice {{invoice.number}}: {{invoice.balance}} due"}]`,
		"ada@client.test", "", "paid@client.test")
	_, err := s.db.Exec(bg, `update invoices set status = 'paid', balance = 0 where id::text = (select subject_id from automation_execution_logs where id = $1)`, execs["paid@client.test"])
	require.NoError(t, err)

	sum := process(t, s.engine(t, automation.ActionInvoiceReminder, nil), values(execs)...)
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 3, Claimed: 3, Completed: 1, Skipped: 2}, sum)

	// Exactly one email, to the real address.
	msgs := s.smtp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"ada@client.test"}, msgs[0].EnvelopeTo)
	assert.Contains(t, msgs[0].Subject, "$120.50")

	sent := s.exec(t, execs["ada@client.test"])
	assert.Equal(t, execRow{Status: "completed", Attempt: 1, Actions: 1, NextAttemptAt: sent.NextAttemptAt}, sent)
	ds := s.deliveries(t, execs["ada@client.test"])
	require.Len(t, ds, 1)
	assert.Equal(t, "sent", ds[0].Status)
	assert.Equal(t, "email", ds[0].Channel)
	assert.Equal(t, "ada@client.test", ds[0].Recipient)
	assert.Equal(t, "smtp", ds[0].Provider)
	assert.NotEmpty(t, ds[0].MessageID)
	assert.NotNil(t, ds[0].SentAt)

	noRcpt := s.exec(t, execs[""])
	assert.Equal(t, "skipped", noRcpt.Status)
	assert.Equal(t, string(automation.CodeNoRecipient), noRcpt.ErrorCode)
	assert.Empty(t, s.deliveries(t, execs[""]))

	paid := s.exec(t, execs["paid@client.test"])
	assert.Equal(t, "skipped", paid.Status)
	assert.Equal(t, string(automation.CodeInvoiceSettled), paid.ErrorCode)

	// A second ring for the same ids claims nothing and sends nothing.
	sum = process(t, s.engine(t, automation.ActionInvoiceReminder, nil), values(execs)...)
	assert.Zero(t, sum.Claimed)
	assert.Equal(t, 1, s.smtp.Count())
}

// crashingStore loses every report: the function died after sending.
type crashingStore struct{ engine.Store }

func (crashingStore) Report(context.Context, []automation.Outcome) ([]automation.Reported, error) {
	return nil, errors.New("killed before the report")
}

func TestIntegrationCrashAfterSendDoesNotResend(t *testing.T) {
	s := newStack(t)
	_, execs := s.overdue(t, `[]`, "ada@client.test")
	id := execs["ada@client.test"]

	_, err := s.engine(t, automation.ActionInvoiceReminder, crashingStore{s.store}).
		Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
	require.Error(t, err)
	require.Equal(t, 1, s.smtp.Count())
	assert.Equal(t, "sending", s.deliveries(t, id)[0].Status)

	// The lease expires; the dispatcher's sweep takes the row back.
	_, err = s.db.Exec(bg, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where id = $1`, id)
	require.NoError(t, err)
	_, err = s.db.Exec(bg, `select process_pending_automations()`)
	require.NoError(t, err)
	require.Equal(t, "pending", s.exec(t, id).Status)
	s.makeDue(t)

	sum := process(t, s.engine(t, automation.ActionInvoiceReminder, nil), id)
	assert.Equal(t, 1, sum.Completed)
	assert.Equal(t, 1, s.smtp.Count(), "the message went out twice")
	row := s.exec(t, id)
	assert.Equal(t, "completed", row.Status)
	assert.Equal(t, 2, row.Attempt)
	assert.Equal(t, "unknown", s.deliveries(t, id)[0].Status)
}

// The report never arrives (a function killed after its last send, or the
// database unreachable then): through the real SQL, every chunk but the last
// is recorded sent by the next chunk's ledger call, so only the last chunk
// becomes unknown on the next attempt and only its executions are flagged.
// The operator settles those (the messages did arrive): counted once, the
// flags cleared.
func TestIntegrationFailedReportLeavesOnlyLastChunkUnknown(t *testing.T) {
	s := newStack(t)
	emails := make([]string, 20)
	for i := range emails {
		emails[i] = fmt.Sprintf("c%d@client.test", i)
	}
	wf, execs := s.overdue(t, `[]`, emails...)
	ids := values(execs)
	// Concurrency 8: chunks of 8, 8, 4
	e := s.engine(t, automation.ActionInvoiceReminder, crashingStore{s.store})
	_, err := e.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
	require.Error(t, err)
	require.Equal(t, 20, s.smtp.Count())
	count := func(q string) int {
		var n int
		require.NoError(t, s.db.QueryRow(bg, q, wf).Scan(&n))
		return n
	}
	byStatus := `select count(*) from automation_deliveries d join automation_execution_logs e on e.id = d.execution_id
		where e.workflow_id = $1 and d.status = `
	assert.Equal(t, 16, count(byStatus+`'sent' and d.provider_message_id <> '' and d.sent_at is not null`), "the first two chunks recorded sent")
	assert.Equal(t, 4, count(byStatus+`'sending'`), "only the last chunk begun and not finished")
	assert.Equal(t, 16, count(`select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`))

	// The leases expire, the sweep takes the rows back, the next attempt
	// sends nothing again.
	_, err = s.db.Exec(bg, `update automation_execution_logs set lease_expires_at = now() - interval '1 second' where workflow_id = $1`, wf)
	require.NoError(t, err)
	_, err = s.db.Exec(bg, `select process_pending_automations()`)
	require.NoError(t, err)
	s.makeDue(t)
	sum := process(t, s.engine(t, automation.ActionInvoiceReminder, nil), ids...)
	assert.Equal(t, 20, sum.Completed)
	assert.Equal(t, 20, s.smtp.Count(), "sent twice")
	assert.Equal(t, 4, count(byStatus+`'unknown'`))
	assert.Equal(t, 4, count(`select count(*) from automation_execution_logs where workflow_id = $1 and error_code = 'delivery_unknown'`))
	assert.Equal(t, 4, count(`select count(*) from automation_unknown_deliveries where workflow_id = $1`))

	// They did arrive: settled sent, counted once, the flags cleared.
	rows, err := s.db.Query(bg, `select id from automation_unknown_deliveries where workflow_id = $1`, wf)
	require.NoError(t, err)
	var unknown []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		unknown = append(unknown, id)
	}
	require.NoError(t, rows.Err())
	for _, id := range unknown {
		var applied bool
		require.NoError(t, s.db.QueryRow(bg, `select (automation_settle_delivery($1, true, 'ops') ->> 'applied')::boolean`, id).Scan(&applied))
		assert.True(t, applied)
	}
	assert.Equal(t, 20, count(byStatus+`'sent'`))
	assert.Equal(t, 20, count(`select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`))
	assert.Zero(t, count(`select count(*) from automation_execution_logs where workflow_id = $1 and error_code is not null`))
}

func TestIntegrationDelayResumesAtNextStep(t *testing.T) {
	s := newStack(t)
	_, execs := s.overdue(t, `[{"type":"send_email","subject":"first"},{"type":"delay","hours":2},{"type":"send_email","subject":"second"}]`, "ada@client.test")
	id := execs["ada@client.test"]
	e := s.engine(t, automation.ActionInvoiceReminder, nil)

	sum := process(t, e, id)
	assert.Equal(t, 1, sum.Snoozed)
	row := s.exec(t, id)
	assert.Equal(t, "pending", row.Status)
	assert.Equal(t, 2, row.Step)
	assert.Equal(t, 0, row.Attempt, "a delay does not consume an attempt")
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), row.NextAttemptAt, 2*time.Minute)
	assert.Zero(t, process(t, e, id).Claimed, "not due before the delay is over")

	s.makeDue(t)
	sum = process(t, e, id)
	assert.Equal(t, 1, sum.Completed)
	msgs := s.smtp.Messages()
	require.Len(t, msgs, 2)
	assert.Equal(t, "first", msgs[0].Subject)
	assert.Equal(t, "second", msgs[1].Subject)
	assert.Equal(t, "completed", s.exec(t, id).Status)
	ds := s.deliveries(t, id)
	require.Len(t, ds, 2)
	assert.Equal(t, []int{0, 2}, []int{ds[0].Step, ds[1].Step})
	assert.Equal(t, "sent", ds[1].Status)
}

func TestIntegrationProviderFailures(t *testing.T) {
	s := newStack(t)
	_, execs := s.overdue(t, `[]`, "ada@client.test")
	id := execs["ada@client.test"]
	e := s.engine(t, automation.ActionInvoiceReminder, nil)

	// A temporary SMTP refusal is the provider's trouble: deferred through
	// the real automation_report, the attempt given back.
	s.smtp.FailNext("451")
	sum := process(t, e, id)
	assert.Equal(t, 1, sum.Deferred)
	row := s.exec(t, id)
	assert.Equal(t, "pending", row.Status)
	assert.Equal(t, 0, row.Attempt)
	assert.Equal(t, string(notify.CodeUnavailable), row.ErrorCode)
	assert.True(t, row.NextAttemptAt.After(time.Now()), "backed off")
	assert.Equal(t, "failed", s.deliveries(t, id)[0].Status)

	// The next attempt re-arms the retryable delivery; this time the server refuses for good.
	s.makeDue(t)
	s.smtp.FailNext("550")
	sum = process(t, e, id)
	assert.Equal(t, 1, sum.Failed)
	row = s.exec(t, id)
	assert.Equal(t, "failed", row.Status)
	assert.Contains(t, []string{string(automation.CodeInvalidRecipient), string(automation.CodeProviderRejected)}, row.ErrorCode)
	assert.Zero(t, s.smtp.Count())
}

// Two invocations ringed with the same ids at once (a re-dispatch racing
// the first ring): every execution is claimed and sent exactly once.
func TestIntegrationConcurrentInvocationsSendOnce(t *testing.T) {
	s := newStack(t)
	emails := make([]string, 20)
	for i := range emails {
		emails[i] = fmt.Sprintf("c%d@client.test", i)
	}
	_, execs := s.overdue(t, `[]`, emails...)
	ids := values(execs)
	e := s.engine(t, automation.ActionInvoiceReminder, nil)

	var wg sync.WaitGroup
	sums := make([]automation.Summary, 3)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			sums[i], err = e.Process(bg, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	claimed, completed := 0, 0
	for _, sum := range sums {
		claimed += sum.Claimed
		completed += sum.Completed
	}
	assert.Equal(t, len(ids), claimed)
	assert.Equal(t, len(ids), completed)
	assert.Equal(t, len(ids), s.smtp.Count())
	seen := map[string]int{}
	for _, m := range s.smtp.Messages() {
		seen[m.EnvelopeTo[0]]++
	}
	for _, addr := range emails {
		assert.Equal(t, 1, seen[addr], addr)
	}
}

// Several tenants share one claimed batch; one tenant's workflow was changed
// with the validation trigger disabled and its steps hold wrong JSON types.
// Through the real SQL and PostgREST: that tenant's executions fail alone
// (invalid_workflow, the problems named), every other one is sent.
func TestIntegrationUndecodableExecutionFailsAlone(t *testing.T) {
	s := newStack(t)
	steps := `[{"type":"send_email","subject":"Invoice {{invoice.number}}"}]`
	_, execsA := s.overdue(t, steps, "a1@client.test", "a2@client.test")
	wfB, execsB := s.overdue(t, steps, "b1@client.test")
	_, execsC := s.overdue(t, steps, "c1@client.test")

	_, err := s.db.Exec(bg, `alter table automation_workflows disable trigger automation_workflows_validate`)
	require.NoError(t, err)
	_, err = s.db.Exec(bg, `update automation_workflows set problems = null,
		steps = '[{"type":"delay","days":"1"},{"type":"send_email","subject":5},[1],{"type":"delay","hours":1.5,"minutes":1e20}]'
		where id = $1`, wfB)
	require.NoError(t, err)
	_, err = s.db.Exec(bg, `alter table automation_workflows enable trigger automation_workflows_validate`)
	require.NoError(t, err)

	ids := append(append(values(execsA), values(execsB)...), values(execsC)...)
	sum := process(t, s.engine(t, automation.ActionInvoiceReminder, nil), ids...)
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 4, Claimed: 4, Completed: 3, Failed: 1}, sum)

	var to []string
	for _, m := range s.smtp.Messages() {
		to = append(to, m.EnvelopeTo...)
	}
	assert.ElementsMatch(t, []string{"a1@client.test", "a2@client.test", "c1@client.test"}, to)
	for _, id := range append(values(execsA), values(execsC)...) {
		assert.Equal(t, "completed", s.exec(t, id).Status)
	}
	bad := s.exec(t, execsB["b1@client.test"])
	assert.Equal(t, "failed", bad.Status)
	assert.Equal(t, string(automation.CodeInvalidWorkflow), bad.ErrorCode)
	assert.Empty(t, s.deliveries(t, execsB["b1@client.test"]))
	var msg string
	require.NoError(t, s.db.QueryRow(bg, `select error_message from automation_execution_logs where id = $1`, execsB["b1@client.test"]).Scan(&msg))
	assert.Equal(t, "steps[0].days: must be a whole number from 0 to 365; steps[1].subject: must be text of at most 500 characters; "+
		"steps[2]: must be an object; steps[3].minutes: must be a whole number from 0 to 525600; steps[3].hours: must be a whole number from 0 to 8760", msg)
}

// A workflow written in the replaced system's builder shape (steps
// {"type":"action","config":{"actionType":"email",...}}, {{client.firstName}},
// {"daysOverdue": 3}) is accepted on a fresh install and sent through the
// real SQL and PostgREST with dueflow's variables rendered.
func TestIntegrationBuilderWorkflowSent(t *testing.T) {
	s := newStack(t)
	org := pgtest.CreateOrg(t, s.db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	client := pgtest.CreateClient(t, s.db, pgtest.Client{Org: org, Email: "ada@client.test"})
	inv := pgtest.CreateInvoice(t, s.db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3, Amount: "120.50"})
	wf := pgtest.CreateWorkflow(t, s.db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"daysOverdue": 3}`,
		Steps: `[{"type":"action","config":{"actionType":"email","subject":"Invoice {{invoice.number}}","message":"Dear {{client.firstName}}"}}]`})
	var n int
	require.NoError(t, s.db.QueryRow(bg, `select check_overdue_invoices()`).Scan(&n))
	require.Equal(t, 1, n)
	s.makeDue(t)
	ids := pgtest.ExecutionIDs(t, s.db, wf)
	require.Len(t, ids, 1)

	sum := process(t, s.engine(t, automation.ActionInvoiceReminder, nil), ids...)
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 1, Claimed: 1, Completed: 1}, sum)
	var number string
	require.NoError(t, s.db.QueryRow(bg, `select number from invoices where id = $1`, inv).Scan(&number))
	msgs := s.smtp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{"ada@client.test"}, msgs[0].EnvelopeTo)
	assert.Equal(t, "Invoice "+number, msgs[0].Subject)
	assert.Equal(t, "Dear Ada", strings.TrimSpace(msgs[0].Text))
	assert.Equal(t, "completed", s.exec(t, ids[0]).Status)
}
