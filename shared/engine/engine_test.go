package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/fakestore"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

// recorder is a notify.Sender that records what it is asked to send and
// answers with fail(msg) when set.
type recorder struct {
	name string
	mu   sync.Mutex
	sent []notify.Message
	fail func(notify.Message) error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(_ context.Context, m notify.Message) (notify.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return notify.Result{}, err
		}
	}
	return notify.Result{Provider: r.name, MessageID: fmt.Sprintf("msg-%d", len(r.sent))}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

type fixture struct {
	store *fakestore.Store
	email *recorder
	sms   *recorder
	eng   *Engine
	now   time.Time
}

func newFixture(t *testing.T, action string) *fixture {
	t.Helper()
	f := &fixture{store: fakestore.New(), email: &recorder{name: "smtp"}, sms: &recorder{name: "telnyx"},
		now: time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)}
	f.store.Now = func() time.Time { return f.now }
	var err error
	f.eng, err = New(Options{Action: action, Store: f.store, Email: f.email, SMS: f.sms, EmailFrom: "noreply@dueflow.test",
		Concurrency: 4, Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	return f
}

// invoiceDoc is a claimable overdue-invoice execution.
func invoiceDoc(steps ...automation.Step) automation.Claimed {
	sub := uuid.NewString()
	return automation.Claimed{
		Execution: automation.Execution{ID: uuid.New(), WorkflowID: uuid.New(), OrganizationID: uuid.New(),
			Action: automation.ActionInvoiceReminder, TriggerType: automation.TriggerInvoiceOverdue,
			SubjectType: "invoice", SubjectID: sub, MaxAttempts: 5},
		Workflow:     automation.Workflow{IsActive: true, TriggerType: automation.TriggerInvoiceOverdue, Steps: steps},
		Organization: automation.Organization{Name: "Acme Heating", Timezone: "America/Chicago", CountryCode: "US", SenderEmail: "billing@acme.test", Phone: "+15550100"},
		Client:       &automation.Client{ID: uuid.NewString(), FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.org", Phone: "+13125550123"},
		Invoice:      &automation.Invoice{ID: sub, Number: "INV-7", Status: "overdue", DueDate: "2026-11-01", Total: "120.00", Balance: "120.00", Currency: "USD"},
	}
}

func (f *fixture) process(t *testing.T, ids ...uuid.UUID) automation.Summary {
	t.Helper()
	sum, err := f.eng.Process(context.Background(), automation.Request{Action: f.eng.o.Action, ExecutionIDs: ids})
	require.NoError(t, err)
	return sum
}

func (f *fixture) lastOutcome(t *testing.T, id uuid.UUID) automation.Outcome {
	t.Helper()
	for i := len(f.store.Reports) - 1; i >= 0; i-- {
		for _, o := range f.store.Reports[i] {
			if o.ExecutionID == id {
				return o
			}
		}
	}
	t.Fatalf("no outcome for %s", id)
	return automation.Outcome{}
}

var email = automation.Step{Type: automation.StepSendEmail}
var sms = automation.Step{Type: automation.StepSendSMS}

func TestSendsAndCompletes(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(email))
	sum := f.process(t, id)
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 1, Claimed: 1, Completed: 1}, sum)
	require.Equal(t, 1, f.email.count())
	m := f.email.sent[0]
	assert.Equal(t, "ada@example.org", m.To)
	assert.Equal(t, "billing@acme.test", m.From)
	assert.Contains(t, m.Subject, "INV-7")
	assert.Contains(t, m.Text, "Ada")
	assert.Equal(t, automation.IdempotencyKey(id, 0, "email"), m.IdempotencyKey)

	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	assert.Equal(t, 1, o.ActionsExecuted)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliverySent, o.Deliveries[0].Status)
	assert.Equal(t, "msg-1", o.Deliveries[0].ProviderMessageID)
	assert.Equal(t, automation.StatusCompleted, f.store.Get(id).Status)
	assert.Equal(t, automation.DeliverySent, f.store.Deliveries[m.IdempotencyKey].Status)
}

func TestNoRecipientNeverUsesPlaceholder(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	doc.Client.Email, doc.Client.Phone = "", "  "
	id := f.store.Add(doc)
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Skipped)
	assert.Zero(t, f.email.count()+f.sms.count(), "nothing may be sent to a placeholder")
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeNoRecipient, o.ErrorCode)
	assert.Zero(t, f.store.Calls["begin"])

	// No client at all.
	doc = invoiceDoc(email)
	doc.Client = nil
	id = f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.CodeNoRecipient, f.lastOutcome(t, id).ErrorCode)
	assert.Zero(t, f.email.count())
}

func TestMissingChannelIsSkippedOtherStillSent(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	doc.Client.Email = ""
	doc.Client.Phone = "+1 (312) 555-0123"
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Zero(t, f.email.count())
	require.Equal(t, 1, f.sms.count())
	assert.Equal(t, "+13125550123", f.sms.sent[0].To)
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
}

func TestOptedOut(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	doc.Client.EmailOptOut, doc.Client.SMSOptOut = true, true
	id := f.store.Add(doc)
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeOptedOut, o.ErrorCode)
	assert.Zero(t, f.email.count()+f.sms.count())

	// Opted out of email only: the SMS goes.
	doc = invoiceDoc(email, sms)
	doc.Client.EmailOptOut = true
	id = f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
	assert.Zero(t, f.email.count())
	assert.Equal(t, 1, f.sms.count())
}

func TestPreconditions(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*automation.Claimed)
		status automation.OutcomeStatus
		code   automation.Code
	}{
		{"paid", func(c *automation.Claimed) { c.Invoice.Status = "paid" }, automation.OutcomeSkipped, automation.CodeInvoiceSettled},
		{"void", func(c *automation.Claimed) { c.Invoice.Status = "void" }, automation.OutcomeSkipped, automation.CodeInvoiceSettled},
		{"zero balance", func(c *automation.Claimed) { c.Invoice.Balance = "0.00" }, automation.OutcomeSkipped, automation.CodeInvoiceSettled},
		{"invoice gone", func(c *automation.Claimed) { c.Invoice = nil }, automation.OutcomeSkipped, automation.CodeSubjectGone},
		{"inactive", func(c *automation.Claimed) { c.Workflow.IsActive = false }, automation.OutcomeSkipped, automation.CodeWorkflowInactive},
		{"expired", func(c *automation.Claimed) {
			d := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
			c.Execution.DeadlineAt = &d
		}, automation.OutcomeFailed, automation.CodeExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, automation.ActionInvoiceReminder)
			doc := invoiceDoc(email)
			tc.mod(&doc)
			id := f.store.Add(doc)
			f.process(t, id)
			o := f.lastOutcome(t, id)
			assert.Equal(t, tc.status, o.Status)
			assert.Equal(t, tc.code, o.ErrorCode)
			assert.Zero(t, f.email.count())
		})
	}
}

// A template variable outside the fixed set breaks the workflow rules: the
// execution fails for good (invalid_workflow) before anything is rendered.
func TestUnknownTemplateVariableFailsWithoutRetry(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(automation.Step{Type: automation.StepSendEmail, Subject: "Hi", Body: "Pay {{invoice.secret}}"}))
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeInvalidWorkflow, o.ErrorCode)
	assert.Equal(t, "steps[0].body: unknown variable {{invoice.secret}}", o.ErrorMessage)
	assert.Zero(t, f.email.count())
	assert.Equal(t, automation.StatusFailed, f.store.Get(id).Status)
}

// A provider outage (5xx) defers the execution: its attempt is given back.
func TestProvider5xxRetries(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.email.fail = func(notify.Message) error {
		return notify.Fail(notify.CodeUnavailable, &notify.Error{Provider: "smtp", StatusCode: 503, RetryAfter: 120, Err: errors.New("service unavailable")})
	}
	id := f.store.Add(invoiceDoc(email))
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Deferred)
	assert.Zero(t, sum.Retried)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	assert.True(t, o.Deferred)
	assert.Equal(t, notify.CodeUnavailable, o.ErrorCode)
	assert.Equal(t, 120, o.RetryAfterSecs)
	assert.Zero(t, f.store.Get(id).Attempt, "no attempt spent")
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliveryFailed, o.Deliveries[0].Status)
	assert.True(t, o.Deliveries[0].Retryable)
	assert.Equal(t, automation.StatusPending, f.store.Get(id).Status)

	// The next attempt re-arms the delivery and sends it.
	f.email.fail = nil
	f.process(t, id)
	assert.Equal(t, 2, f.email.count())
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
}

func TestInvalidAddressFailsPermanently(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.email.fail = func(notify.Message) error {
		return notify.Fail(notify.CodeInvalidRecipient, &notify.Error{Provider: "smtp", StatusCode: 550, Err: errors.New("mailbox unavailable")})
	}
	id := f.store.Add(invoiceDoc(email))
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Failed)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeInvalidRecipient, o.ErrorCode)
	assert.Equal(t, automation.StatusFailed, f.store.Get(id).Status)

	// An address that does not even parse is never handed to a provider.
	doc := invoiceDoc(email)
	doc.Client.Email = "not an address"
	id = f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.CodeInvalidRecipient, f.lastOutcome(t, id).ErrorCode)
	assert.Equal(t, 1, f.email.count())
}

// A crash between the provider call and the report: the report never
// happens, the lease expires, the execution is claimed again. The message
// must not go out a second time.
func TestCrashAfterSendDoesNotSendTwice(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(email))
	f.store.FailReport = true
	_, err := f.eng.Process(context.Background(), automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
	require.Error(t, err)
	require.Equal(t, 1, f.email.count())
	key := automation.IdempotencyKey(id, 0, "email")
	assert.Equal(t, automation.DeliverySending, f.store.Deliveries[key].Status)

	f.store.FailReport = false
	f.store.Expire()
	f.process(t, id)
	assert.Equal(t, 1, f.email.count(), "sent again after a crash")
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	assert.Equal(t, automation.CodeDeliveryUnknown, o.ErrorCode)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliveryUnknown, o.Deliveries[0].Status)
	assert.Equal(t, automation.DeliveryUnknown, f.store.Deliveries[key].Status)
}

// A delivery recorded sent is never sent again, whatever retries happen.
func TestSentDeliveryNeverSentAgain(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	doc := invoiceDoc(email, sms)
	doc.Execution.Action = automation.ActionSendReminder
	id := f.store.Add(doc)
	f.sms.fail = func(notify.Message) error {
		return notify.Fail(notify.CodeRateLimited, &notify.Error{Provider: "telnyx", StatusCode: 429, Err: errors.New("slow down")})
	}
	f.process(t, id)
	assert.Equal(t, automation.OutcomeRetry, f.lastOutcome(t, id).Status)
	assert.Equal(t, 1, f.email.count())

	f.sms.fail = nil
	for range 3 { // later attempts (and stray redispatches) never resend the email
		f.process(t, id)
	}
	assert.Equal(t, 1, f.email.count(), "email sent twice")
	assert.Equal(t, 2, f.sms.count())
	assert.Equal(t, automation.StatusCompleted, f.store.Get(id).Status)
}

func TestDelaySnoozesThenResumes(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(email, automation.Step{Type: automation.StepDelay, Hours: 2}, sms))
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Snoozed)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSnoozed, o.Status)
	assert.Equal(t, 2, o.StepIndex)
	require.NotNil(t, o.SnoozeUntil)
	assert.Equal(t, f.now.Add(2*time.Hour), *o.SnoozeUntil)
	assert.Equal(t, 1, f.email.count())
	assert.Zero(t, f.sms.count())
	assert.Equal(t, 2, f.store.Get(id).StepIndex)

	// Resumed by the database later: continues at the SMS step only.
	f.now = f.now.Add(2 * time.Hour)
	f.process(t, id)
	assert.Equal(t, 1, f.email.count())
	assert.Equal(t, 1, f.sms.count())
	o = f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	assert.Equal(t, automation.StatusCompleted, f.store.Get(id).Status)
}

func TestStaleLeaseStopsWithoutReport(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(email))
	stale := &staleStore{Store: f.store}
	f.eng.o.Store = stale
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Stale)
	assert.Zero(t, f.email.count())
	assert.Zero(t, f.store.Calls["report"])
}

// staleStore takes every lease away right after the claim.
type staleStore struct{ *fakestore.Store }

func (s *staleStore) Claim(ctx context.Context, req automation.ClaimRequest) ([]json.RawMessage, error) {
	out, err := s.Store.Claim(ctx, req)
	s.Expire()
	return out, err
}

func TestDeadlineStopsNewSends(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.eng.o.Now = time.Now
	id := f.store.Add(invoiceDoc(email))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // < Margin
	defer cancel()
	sum, err := f.eng.Process(ctx, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Deferred)
	assert.Zero(t, f.email.count())
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	assert.True(t, o.Deferred)
	assert.Equal(t, automation.CodeDeadline, o.ErrorCode)
}

func TestBeginFailureRetriesWithoutSending(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.store.FailBegin = true
	id := f.store.Add(invoiceDoc(email))
	f.process(t, id)
	assert.Zero(t, f.email.count())
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	assert.Equal(t, automation.CodeInternal, o.ErrorCode)
	assert.True(t, o.Deferred, "a database failure spends no attempt")
	assert.Zero(t, f.store.Get(id).Attempt)
}

func TestOrganizationAudience(t *testing.T) {
	f := newFixture(t, automation.ActionRunWorkflow)
	doc := invoiceDoc(automation.Step{Type: automation.StepSendEmail, Subject: "Weekly digest", Body: "Hello {{organization.name}}"})
	doc.Execution.Action, doc.Execution.TriggerType, doc.Execution.SubjectType = automation.ActionRunWorkflow, automation.TriggerScheduled, "organization"
	doc.Client, doc.Invoice = nil, nil
	id := f.store.Add(doc)
	f.process(t, id)
	require.Equal(t, 1, f.email.count())
	assert.Equal(t, "billing@acme.test", f.email.sent[0].To)
	assert.Equal(t, "Hello Acme Heating", f.email.sent[0].Text)
}

// One claim and one report per batch, whatever its size; one begin per chunk
// of Concurrency (4 here) messages of each step wave: 2 waves x 25 chunks.
func TestRoundTripsPerBatch(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	var ids []uuid.UUID
	for range 100 {
		ids = append(ids, f.store.Add(invoiceDoc(email, sms)))
	}
	sum := f.process(t, ids...)
	assert.Equal(t, 100, sum.Completed)
	assert.Equal(t, map[string]int{"claim": 1, "record": 50, "report": 1}, f.store.Calls)
	assert.Equal(t, 100, f.email.count())
	assert.Equal(t, 100, f.sms.count())
}

// countingStore counts deliveries begun new in the ledger and keeps, at
// each begin, the most deliveries begun and not yet sent (finished).
type countingStore struct {
	Store
	sent    func() int
	mu      sync.Mutex
	begun   int
	maxOpen int
}

func (s *countingStore) RecordDeliveries(ctx context.Context, f []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	out, err := s.Store.RecordDeliveries(ctx, f, ds)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range out {
		if b.State == automation.BeginNew {
			s.begun++
		}
	}
	s.maxOpen = max(s.maxOpen, s.begun-s.sent())
	return out, err
}

// finishing counts the sends that have returned.
type finishing struct {
	notify.Sender
	n *atomic.Int64
}

func (f finishing) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	defer f.n.Add(1)
	return f.Sender.Send(ctx, m)
}

// A crash can only lose what was begun and not yet sent: never more than
// Concurrency deliveries at any moment.
func TestBegunButUnsentBoundedByConcurrency(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	var sent atomic.Int64
	f.eng.o.Email, f.eng.o.SMS = finishing{f.email, &sent}, finishing{f.sms, &sent}
	cs := &countingStore{Store: f.store, sent: func() int { return int(sent.Load()) }}
	f.eng.o.Store = cs
	var ids []uuid.UUID
	for range 30 {
		ids = append(ids, f.store.Add(invoiceDoc(email, sms)))
	}
	assert.Equal(t, 30, f.process(t, ids...).Completed)
	assert.Equal(t, 60, cs.begun)
	assert.Equal(t, 4, cs.maxOpen, "deliveries begun and not sent")
}

// deadStore is a database the function can no longer reach once dead is set.
type deadStore struct {
	*fakestore.Store
	dead atomic.Bool
}

func (s *deadStore) RecordDeliveries(ctx context.Context, f []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	if s.dead.Load() {
		return nil, errors.New("process killed")
	}
	return s.Store.RecordDeliveries(ctx, f, ds)
}

// A crash mid-batch (here: the function dies after the 10th message; the
// begun chunk's other messages never reach the provider). The chunks before
// it were recorded sent by the ledger call of the next chunk; on the next
// attempt only the chunk in flight is ambiguous (at most Concurrency
// recipients miss their message); the rest are sent, and nothing is sent
// twice.
func TestCrashMidBatchLosesAtMostConcurrency(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	var ids []uuid.UUID
	for range 20 {
		ids = append(ids, f.store.Add(invoiceDoc(email)))
	}
	// The crash: the 10th message is accepted, then the process is gone; no
	// later message reaches the provider, no later call reaches the database.
	dead := &deadStore{Store: f.store}
	f.eng.o.Store = dead
	f.email.fail = func(notify.Message) error {
		if len(f.email.sent) >= 10 {
			dead.dead.Store(true)
		}
		if len(f.email.sent) > 10 {
			return errors.New("process killed")
		}
		return nil
	}
	f.store.FailReport = true
	_, err := f.eng.Process(context.Background(), automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
	require.Error(t, err)
	// What the provider really got before the crash.
	delivered := map[string]bool{}
	f.email.mu.Lock()
	for i, m := range f.email.sent {
		if i < 10 {
			delivered[m.IdempotencyKey] = true
		}
	}
	f.email.mu.Unlock()
	inFlight, recorded := 0, 0
	for _, d := range f.store.Deliveries {
		switch d.Status {
		case automation.DeliverySending:
			inFlight++
		case automation.DeliverySent:
			recorded++
		}
	}
	assert.Equal(t, 4, inFlight, "the 3rd chunk of 4 was in flight when the 10th message went out")
	assert.Equal(t, 8, recorded, "the first two chunks are recorded sent, although the report never came")
	f.store.FailReport = false
	f.store.Expire()
	f.eng.o.Store = f.store
	f.email.fail = nil
	f.email.mu.Lock()
	f.email.sent = nil
	f.email.mu.Unlock()
	f.process(t, ids...)

	unknown, missing := 0, 0
	for _, id := range ids {
		key := automation.IdempotencyKey(id, 0, "email")
		resent := false
		for _, m := range f.email.sent {
			resent = resent || m.IdempotencyKey == key
		}
		assert.False(t, delivered[key] && resent, "sent twice")
		o := f.lastOutcome(t, id)
		assert.Equal(t, automation.OutcomeCompleted, o.Status)
		if f.store.Deliveries[key].Status == automation.DeliveryUnknown {
			unknown++
			assert.Equal(t, automation.CodeDeliveryUnknown, o.ErrorCode)
		}
		if !delivered[key] && !resent {
			missing++
			assert.Equal(t, automation.DeliveryUnknown, f.store.Deliveries[key].Status, "a missing message has an unknown delivery")
		}
	}
	assert.Equal(t, inFlight, unknown, "only the chunk in flight is unknown")
	assert.Equal(t, 2, missing, "begun by the crashed attempt and never sent (the 11th and 12th)")
	assert.Equal(t, 20-recorded-inFlight, f.email.count(), "every delivery never begun is sent on recovery")
}

func TestWrongActionRejected(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	_, err := f.eng.Process(context.Background(), automation.Request{Action: automation.ActionRunWorkflow})
	require.Error(t, err)
	assert.Zero(t, f.store.Calls["claim"])
}

// A failure after the hand-over (the provider may have the message) is
// recorded unknown and never sent again.
func TestAmbiguousProviderFailureNotResent(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.email.fail = func(notify.Message) error {
		return notify.Fail(notify.CodeNetwork, &notify.Error{Provider: "smtp", Ambiguous: true, Err: errors.New("connection reset after DATA")})
	}
	id := f.store.Add(invoiceDoc(email))
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliveryUnknown, o.Deliveries[0].Status)

	f.email.fail = nil
	f.process(t, id)
	assert.Equal(t, 1, f.email.count(), "re-sent after an ambiguous failure")
	assert.Equal(t, automation.CodeDeliveryUnknown, f.lastOutcome(t, id).ErrorCode)
}

func TestNoSMSProviderAndUnknownStep(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.eng.o.SMS = nil // SMS_PROVIDER=none
	id := f.store.Add(invoiceDoc(sms))
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeConfig, o.ErrorCode)

	id = f.store.Add(invoiceDoc(automation.Step{Type: "send_fax"}))
	f.process(t, id)
	o = f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeInvalidWorkflow, o.ErrorCode)
	assert.Equal(t, "steps[0].type: must be one of send_email, send_sms, delay", o.ErrorMessage)
	assert.Zero(t, f.email.count()+f.sms.count())
}

func TestDefaultStepsWhenWorkflowHasNone(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	doc := invoiceDoc()
	doc.Execution.Action, doc.Execution.TriggerType, doc.Execution.SubjectType = automation.ActionSendReminder, automation.TriggerMaintenanceDue, "job"
	doc.Invoice = nil
	doc.Job = &automation.Job{ID: uuid.NewString(), Title: "Boiler service", Status: "completed"}
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
	assert.Equal(t, 1, f.email.count())
	assert.Equal(t, 1, f.sms.count())
	assert.Contains(t, f.email.sent[0].Text, "Boiler service")
}

// A provider failure known to have happened before the hand-over (here a
// dial timeout: Code timeout, Ambiguous false) is retried and sent on the
// next attempt, not recorded unknown and dropped.
func TestTimeoutBeforeHandOverRetried(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.email.fail = func(notify.Message) error {
		return notify.Fail(notify.CodeTimeout, &notify.Error{Provider: "smtp", Err: errors.New("dial tcp: i/o timeout")})
	}
	id := f.store.Add(invoiceDoc(email))
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliveryFailed, o.Deliveries[0].Status)
	assert.True(t, o.Deliveries[0].Retryable)

	f.email.fail = nil
	f.process(t, id)
	assert.Equal(t, 2, f.email.count(), "sent on the next attempt")
	o = f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	assert.Empty(t, o.ErrorCode)
}

// flakyReport fails the first failures Report calls of its Store, after
// applying them when applied is set (the answer was lost, not the report).
type flakyReport struct {
	Store
	failures int
	applied  bool
}

func (s *flakyReport) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	if s.failures > 0 {
		s.failures--
		if s.applied {
			_, _ = s.Store.Report(ctx, os)
		}
		return nil, errors.New("report: connection reset")
	}
	return s.Store.Report(ctx, os)
}

// A transient report failure is repeated: the sent message is recorded sent
// and the execution completed, whether the failed call was lost before or
// after it applied (a repeat of an applied report changes nothing).
func TestReportRepeatedAfterTransientFailure(t *testing.T) {
	defer func(p time.Duration) { reportPause = p }(reportPause)
	reportPause = time.Millisecond
	for _, applied := range []bool{false, true} {
		f := newFixture(t, automation.ActionInvoiceReminder)
		f.eng.o.Store = &flakyReport{Store: f.store, failures: 1, applied: applied}
		id := f.store.Add(invoiceDoc(email))
		sum := f.process(t, id)
		assert.Equal(t, 1, f.email.count(), "applied=%v", applied)
		assert.Equal(t, automation.StatusCompleted, f.store.Get(id).Status, "applied=%v", applied)
		key := automation.IdempotencyKey(id, 0, "email")
		assert.Equal(t, automation.DeliverySent, f.store.Deliveries[key].Status, "applied=%v", applied)
		if applied {
			assert.Equal(t, 1, sum.Stale, "the repeat of an applied report is refused")
		} else {
			assert.Equal(t, 1, sum.Completed)
		}
	}
}

// hangingSender answers only when its context ends, like a provider that
// accepted the connection and never replies.
type hangingSender struct{}

func (hangingSender) Name() string { return "smtp" }

func (hangingSender) Send(ctx context.Context, _ notify.Message) (notify.Result, error) {
	<-ctx.Done()
	return notify.Result{}, notify.TransportError("smtp", ctx.Err())
}

// timedReport records when the report was made.
type timedReport struct {
	Store
	at time.Time
}

func (s *timedReport) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	s.at = time.Now()
	return s.Store.Report(ctx, os)
}

// A send that hangs is abandoned before the request's deadline, so that the
// batch can still be reported (a function killed at its deadline reports
// nothing: every message of its batch would end "unknown").
func TestHangingSendLeavesTimeToReport(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.eng.o.Now, f.store.Now = time.Now, time.Now
	f.eng.o.Margin = 400 * time.Millisecond
	f.eng.o.Email = hangingSender{}
	st := &timedReport{Store: f.store}
	f.eng.o.Store = st
	id := f.store.Add(invoiceDoc(email))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := f.eng.Process(ctx, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
	require.NoError(t, err)
	require.False(t, st.at.IsZero(), "reported")
	assert.True(t, st.at.Before(deadline), "reported %v after the deadline", st.at.Sub(deadline))
	o := f.lastOutcome(t, id)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliveryUnknown, o.Deliveries[0].Status, "abandoned after the hand-over: maybe sent")
}

// dropReport is a Store whose report answer leaves out one execution.
type dropReport struct {
	*fakestore.Store
	drop uuid.UUID
}

func (d dropReport) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	rep, err := d.Store.Report(ctx, os)
	out := rep[:0]
	for _, r := range rep {
		if r.ExecutionID != d.drop {
			out = append(out, r)
		}
	}
	return out, err
}

func TestOutcomeMissingFromReportAnswerNotCountedApplied(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	kept, dropped := f.store.Add(invoiceDoc(email)), f.store.Add(invoiceDoc(email))
	var logs syncBuffer
	eng, err := New(Options{Action: automation.ActionInvoiceReminder, Store: dropReport{Store: f.store, drop: dropped},
		Email: f.email, SMS: f.sms, EmailFrom: "noreply@dueflow.test", Concurrency: 4, Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	sum, err := eng.Process(context.Background(), automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{kept, dropped}})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Completed)
	assert.Equal(t, 1, sum.Stale)
	assert.Contains(t, logs.String(), `"execution_id":"`+dropped.String()+`"`)
	assert.Contains(t, logs.String(), "missing from the report")
}

func TestProviderAuthRetriesAndLogsError(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	var logs syncBuffer
	f.eng.o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	f.sms.fail = func(notify.Message) error {
		return notify.AuthError("telnyx", 400, errors.New("telnyx error 40305: Invalid 'from' address"))
	}
	id := f.store.Add(invoiceDoc(sms))
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Deferred)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	assert.True(t, o.Deferred, "an operator's fix, not the message's fault")
	assert.Equal(t, notify.CodeAuth, o.ErrorCode)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, notify.CodeAuth, o.Deliveries[0].ErrorCode)
	assert.True(t, o.Deliveries[0].Retryable)
	assert.Equal(t, automation.StatusPending, f.store.Get(id).Status)
	assert.Contains(t, logs.String(), `"level":"ERROR"`)
}

// syncBuffer is a bytes.Buffer safe for the engine's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A batch in which one document's workflow breaks the rules, one cannot be
// read and one has no readable lease: each of those fails alone (or is left
// to its lease), and the rest of the batch is sent.
func TestUndecodableDocumentsFailAlone(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	good1 := f.store.Add(invoiceDoc(email))
	badSteps := f.store.Add(invoiceDoc(email))
	badExec := f.store.Add(invoiceDoc(email))
	noLease := f.store.Add(invoiceDoc(email))
	good2 := f.store.Add(invoiceDoc(email))
	f.store.Execs[badSteps].Mangle = func(d map[string]any) {
		d["workflow"].(map[string]any)["steps"] = []any{map[string]any{"type": "delay", "days": "1"}, map[string]any{"type": "send_email", "subject": 5}}
	}
	f.store.Execs[badExec].Mangle = func(d map[string]any) {
		d["execution"].(map[string]any)["attempt"] = "SECRET-VALUE"
	}
	f.store.Execs[noLease].Mangle = func(d map[string]any) {
		d["execution"].(map[string]any)["lease_token"] = 42
	}

	sum := f.process(t, good1, badSteps, badExec, noLease, good2)
	assert.Equal(t, automation.Summary{Action: automation.ActionInvoiceReminder, Requested: 5, Claimed: 5, Completed: 2, Failed: 2}, sum)
	assert.Equal(t, 2, f.email.count())
	assert.Equal(t, automation.StatusCompleted, f.store.Get(good1).Status)
	assert.Equal(t, automation.StatusCompleted, f.store.Get(good2).Status)

	o := f.lastOutcome(t, badSteps)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeInvalidWorkflow, o.ErrorCode)
	assert.Equal(t, "steps[0].days: must be a whole number from 0 to 365; steps[1].subject: must be text of at most 500 characters", o.ErrorMessage)
	assert.Equal(t, automation.StatusFailed, f.store.Get(badSteps).Status)

	o = f.lastOutcome(t, badExec)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeInvalidExecution, o.ErrorCode)
	assert.Equal(t, "claimed document unreadable at execution.attempt (want int)", o.ErrorMessage)
	assert.Equal(t, automation.StatusFailed, f.store.Get(badExec).Status)

	// no readable lease: nothing reported, left running until its lease expires
	for _, rep := range f.store.Reports {
		for _, o := range rep {
			assert.NotEqual(t, noLease, o.ExecutionID)
		}
	}
	assert.Equal(t, automation.StatusRunning, f.store.Get(noLease).Status)
}

// Every wrong JSON type of issue 8 in a claimed workflow's steps fails only
// its own execution (invalid_workflow), naming the step and field.
func TestWrongStepTypesFailTheirExecutionOnly(t *testing.T) {
	for _, tc := range []struct {
		step any
		want string
	}{
		{map[string]any{"type": "delay", "days": "1"}, "steps[0].days: must be a whole number from 0 to 365"},
		{map[string]any{"type": "delay", "hours": 1.5}, "steps[0].hours: must be a whole number from 0 to 8760"},
		{map[string]any{"type": "send_email", "subject": 5}, "steps[0].subject: must be text of at most 500 characters"},
		{[]any{1}, "steps[0]: must be an object"},
		{map[string]any{"type": "delay", "minutes": 1e20}, "steps[0].minutes: must be a whole number from 0 to 525600"},
		{map[string]any{"type": "delay", "minutes": -5}, "steps[0].minutes: must be a whole number from 0 to 525600"},
		{map[string]any{"type": "delay", "days": 0}, "steps[0]: a delay must be from 1 minute to 365 days"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			f := newFixture(t, automation.ActionInvoiceReminder)
			bad := f.store.Add(invoiceDoc(email))
			good := f.store.Add(invoiceDoc(email))
			f.store.Execs[bad].Mangle = func(d map[string]any) { d["workflow"].(map[string]any)["steps"] = []any{tc.step} }
			sum := f.process(t, bad, good)
			assert.Equal(t, 1, sum.Completed)
			assert.Equal(t, 1, sum.Failed)
			assert.Equal(t, 1, f.email.count())
			o := f.lastOutcome(t, bad)
			assert.Equal(t, automation.CodeInvalidWorkflow, o.ErrorCode)
			assert.Equal(t, tc.want, o.ErrorMessage)
		})
	}
}

// recordingStore keeps what every ledger call was asked to finish.
type recordingStore struct {
	Store
	mu       sync.Mutex
	finished [][]automation.DeliveryFinished
}

func (s *recordingStore) RecordDeliveries(ctx context.Context, f []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	s.mu.Lock()
	s.finished = append(s.finished, append([]automation.DeliveryFinished(nil), f...))
	s.mu.Unlock()
	return s.Store.RecordDeliveries(ctx, f, ds)
}

// Each ledger call finishes the chunk sent before it, across step waves
// too, under the execution's lease; the report still lists every delivery.
// When the final report fails for good, the earlier chunks are recorded
// sent and only the last chunk is begun and not finished. No call is added.
func TestLedgerCallFinishesPreviousChunk(t *testing.T) {
	defer func(p time.Duration) { reportPause = p }(reportPause)
	reportPause = time.Millisecond
	f := newFixture(t, automation.ActionInvoiceReminder) // Concurrency 4
	rs := &recordingStore{Store: f.store}
	f.eng.o.Store = rs
	var ids []uuid.UUID
	for range 6 {
		ids = append(ids, f.store.Add(invoiceDoc(email, sms)))
	}
	f.store.FailReport = true
	_, err := f.eng.Process(context.Background(), automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
	require.Error(t, err)
	assert.Equal(t, 6, f.email.count())
	assert.Equal(t, 6, f.sms.count())
	// emails in chunks of 4 + 2, then SMS in 4 + 2: four calls, each
	// finishing the chunk before it (the 2 last emails with the first SMS)
	require.Len(t, rs.finished, 4)
	assert.Equal(t, []int{0, 4, 2, 4}, []int{len(rs.finished[0]), len(rs.finished[1]), len(rs.finished[2]), len(rs.finished[3])})
	assert.Equal(t, 4, f.store.Calls["record"], "no ledger call added")
	for _, fin := range rs.finished[1:] {
		for _, d := range fin {
			doc := f.store.Get(d.ExecutionID)
			assert.Equal(t, doc.LeaseToken, d.LeaseToken, "finished under the execution's lease")
			assert.Equal(t, automation.DeliverySent, d.Status)
			assert.NotEmpty(t, d.ProviderMessageID)
		}
	}
	sent, sending := map[string]int{}, map[string]int{}
	for _, d := range f.store.Deliveries {
		switch d.Status {
		case automation.DeliverySent:
			sent[string(d.Channel)]++
			assert.NotEmpty(t, d.ProviderMessageID)
		case automation.DeliverySending:
			sending[string(d.Channel)]++
		}
	}
	assert.Equal(t, map[string]int{"email": 6, "sms": 4}, sent, "every chunk but the last recorded sent without a report")
	assert.Equal(t, map[string]int{"sms": 2}, sending, "only the last chunk begun and not finished")

	// Recovery: nothing is sent twice; only the last chunk's two deliveries
	// are unknown, and only their executions are flagged.
	f.store.FailReport = false
	f.store.Expire()
	f.process(t, ids...)
	assert.Equal(t, 6, f.email.count())
	assert.Equal(t, 6, f.sms.count())
	flagged := 0
	for _, id := range ids {
		o := f.lastOutcome(t, id)
		assert.Equal(t, automation.OutcomeCompleted, o.Status)
		if o.ErrorCode == automation.CodeDeliveryUnknown {
			flagged++
			assert.Equal(t, automation.DeliveryUnknown, f.store.Deliveries[automation.IdempotencyKey(id, 1, "sms")].Status)
		}
	}
	assert.Equal(t, 2, flagged)
}

// A ledger call that fails keeps the answers it was to finish: the next
// call carries them (here the one of the next wave), and the report too.
func TestFailedLedgerCallKeepsAnswersForTheNext(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	rs := &recordingStore{Store: &flakyRecord{Store: f.store, failAt: 2}}
	f.eng.o.Store = rs
	var ids []uuid.UUID
	for range 8 {
		ids = append(ids, f.store.Add(invoiceDoc(email, sms)))
	}
	f.process(t, ids...)
	// emails: chunk 1 (4 sent); the call of chunk 2 fails (nothing begun,
	// its 4 executions retry); the SMS of the first 4 are begun by a call
	// that finishes the email chunk the failed call was to finish
	require.Len(t, rs.finished, 3)
	assert.Len(t, rs.finished[1], 4)
	assert.Equal(t, rs.finished[1], rs.finished[2], "the failed call's answers are carried by the next")
	assert.Equal(t, 4, f.email.count())
	assert.Equal(t, 4, f.sms.count())
	for _, d := range f.store.Deliveries {
		assert.Equal(t, automation.DeliverySent, d.Status)
	}
}

// flakyRecord fails the failAt-th ledger call (1-based).
type flakyRecord struct {
	Store
	n, failAt int
}

func (s *flakyRecord) RecordDeliveries(ctx context.Context, f []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	s.n++
	if s.n == s.failAt {
		return nil, errors.New("record deliveries: connection reset")
	}
	return s.Store.RecordDeliveries(ctx, f, ds)
}

// An execution with an unknown delivery ends delivery_unknown whatever else
// was sent: this attempt's ambiguous answer (the later SMS is sent), and an
// earlier attempt's, found in the claim document after a delay moved the
// execution past that step.
func TestUnknownDeliveryAlwaysFlagsItsExecution(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	ambiguous := func(notify.Message) error {
		return notify.Fail(notify.CodeNetwork, &notify.Error{Provider: "smtp", Ambiguous: true, Err: errors.New("connection reset after DATA")})
	}
	doc := invoiceDoc(email, sms)
	doc.Execution.Action = automation.ActionSendReminder
	id := f.store.Add(doc)
	f.email.fail = ambiguous
	f.process(t, id)
	require.Equal(t, automation.OutcomeRetry, f.lastOutcome(t, id).Status)
	f.email.fail = nil
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Completed)
	assert.Equal(t, 1, f.sms.count(), "the SMS was sent")
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	assert.Equal(t, automation.CodeDeliveryUnknown, o.ErrorCode, "an unknown email is not hidden by a sent SMS")

	// email, delay, SMS: the email's fate is unknown (a crash before the
	// report), the delay is reached on the next attempt, and the attempt
	// after it sends only the SMS; still flagged.
	doc = invoiceDoc(email, automation.Step{Type: automation.StepDelay, Hours: 1}, sms)
	doc.Execution.Action = automation.ActionSendReminder
	id = f.store.Add(doc)
	f.store.FailReport = true
	_, err := f.eng.Process(context.Background(), automation.Request{Action: automation.ActionSendReminder, ExecutionIDs: []uuid.UUID{id}})
	require.Error(t, err)
	f.store.FailReport = false
	f.store.Expire()
	f.process(t, id)
	require.Equal(t, automation.OutcomeSnoozed, f.lastOutcome(t, id).Status)
	f.now = f.now.Add(time.Hour)
	f.process(t, id)
	assert.Equal(t, 2, f.sms.count())
	o = f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeCompleted, o.Status)
	require.Len(t, o.Deliveries, 1, "resumed after the delay: the email is not in this attempt")
	assert.Equal(t, automation.IdempotencyKey(id, 2, "sms"), o.Deliveries[0].IdempotencyKey)
	assert.Equal(t, automation.CodeDeliveryUnknown, o.ErrorCode)

	// a clean execution is not flagged
	doc = invoiceDoc(email, sms)
	doc.Execution.Action = automation.ActionSendReminder
	id = f.store.Add(doc)
	f.process(t, id)
	assert.Empty(t, f.lastOutcome(t, id).ErrorCode)
}

// peakSender tracks the most sends running at once.
type peakSender struct {
	notify.Sender
	mu        sync.Mutex
	now, peak int
}

func (p *peakSender) Send(ctx context.Context, m notify.Message) (notify.Result, error) {
	p.mu.Lock()
	p.now++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	time.Sleep(time.Millisecond) // long enough for the others of the chunk to start
	defer func() { p.mu.Lock(); p.now--; p.mu.Unlock() }()
	return p.Sender.Send(ctx, m)
}

// LedgerChunk begins more than Concurrency deliveries per ledger call:
// fewer calls, the crash bound grows to LedgerChunk, and still no more than
// Concurrency sends run at once.
func TestLedgerChunkBeginsAheadSendsConcurrency(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.eng.o.LedgerChunk = 3 * f.eng.o.Concurrency
	var sent atomic.Int64
	peak := &peakSender{Sender: finishing{f.email, &sent}}
	f.eng.o.Email, f.eng.o.SMS = peak, finishing{f.sms, &sent}
	cs := &countingStore{Store: f.store, sent: func() int { return int(sent.Load()) }}
	f.eng.o.Store = cs
	var ids []uuid.UUID
	for range 30 {
		ids = append(ids, f.store.Add(invoiceDoc(email, sms)))
	}
	assert.Equal(t, 30, f.process(t, ids...).Completed)
	assert.Equal(t, 60, cs.begun)
	assert.Equal(t, f.eng.o.LedgerChunk, cs.maxOpen, "deliveries begun and not sent: one ledger chunk")
	assert.Equal(t, map[string]int{"claim": 1, "record": 6, "report": 1}, f.store.Calls, "30 per wave in chunks of 12: 3 calls, two waves")
	assert.Equal(t, f.eng.o.Concurrency, peak.peak, "sends at once")
}
