package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/fakestore"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
)

// fakeClock is the engine's and the store's clock; a slowSender moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// slowSender is a provider that takes latency (of the fake clock) per
// message. Used with Concurrency 1, so that sends do not overlap.
type slowSender struct {
	name    string
	clk     *fakeClock
	latency time.Duration
	mu      sync.Mutex
	keys    map[string]int // idempotency key -> sends
}

func (s *slowSender) Name() string { return s.name }

func (s *slowSender) Send(_ context.Context, m notify.Message) (notify.Result, error) {
	s.clk.Advance(s.latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]int{}
	}
	s.keys[m.IdempotencyKey]++
	return notify.Result{Provider: s.name, MessageID: m.IdempotencyKey}, nil
}

func (s *slowSender) sends() (messages, twice int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.keys {
		messages += n
		if n > 1 {
			twice++
		}
	}
	return messages, twice
}

// slowFixture: the tester's case, a provider taking 2 s a message and a
// function timeout of 15 s (Margin 5 s), one send at a time.
type slowFixture struct {
	clk   *fakeClock
	store *fakestore.Store
	email *slowSender
	sms   *slowSender
	eng   *Engine
}

func newSlowFixture(t *testing.T) *slowFixture {
	t.Helper()
	clk := &fakeClock{t: time.Now()}
	f := &slowFixture{clk: clk, store: fakestore.New(),
		email: &slowSender{name: "smtp", clk: clk, latency: 2 * time.Second},
		sms:   &slowSender{name: "telnyx", clk: clk, latency: time.Second}}
	f.store.Now = clk.Now
	var err error
	f.eng, err = New(Options{Action: automation.ActionInvoiceReminder, Store: f.store, Email: f.email, SMS: f.sms,
		Concurrency: 1, Batch: 100, Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	return f
}

// invoke is one function invocation with a 15 s timeout (of the fake clock).
func (f *slowFixture) invoke(t *testing.T, ids ...uuid.UUID) automation.Summary {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), f.clk.Now().Add(15*time.Second))
	defer cancel()
	sum, err := f.eng.Process(ctx, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
	require.NoError(t, err)
	return sum
}

func (f *slowFixture) pending() []uuid.UUID {
	var ids []uuid.UUID
	for id, e := range f.store.Execs {
		if e.Status == automation.StatusPending {
			ids = append(ids, id)
		}
	}
	return ids
}

// The tester's finding: 30 reminders rung with their ids, each invocation
// in a new (cold) environment, which has not learnt the provider's pace,
// sends 5 (10 s of 2 s sends) and is cut by its deadline. The cut ones are
// deferred, not retried: every message goes out once after enough
// invocations, none fails, although the last ones were cut more often than
// they have attempts.
func TestSlowProviderDeadlineCutsCostNoAttempts(t *testing.T) {
	f := newSlowFixture(t)
	var ids []uuid.UUID
	for range 30 {
		ids = append(ids, f.store.Add(invoiceDoc(email)))
	}
	deferred := 0
	for n := 0; n < 20 && len(f.pending()) > 0; n++ {
		f.eng.pace = newPace() // a cold start
		sum := f.invoke(t, f.pending()...)
		assert.Zero(t, sum.Failed)
		assert.Zero(t, sum.Retried, "a deadline cut spends no attempt")
		assert.Equal(t, 5, sum.Completed, "invocation %d", n)
		deferred += sum.Deferred
	}
	sent, twice := f.email.sends()
	assert.Equal(t, 30, sent)
	assert.Zero(t, twice)
	maxDeferrals := 0
	for _, id := range ids {
		e := f.store.Get(id)
		assert.Equal(t, automation.StatusCompleted, e.Status)
		maxDeferrals = max(maxDeferrals, e.Deferrals)
	}
	assert.Equal(t, 25+20+15+10+5, deferred)
	assert.Equal(t, 5, maxDeferrals)
	assert.GreaterOrEqual(t, maxDeferrals, invoiceDoc().Execution.MaxAttempts, "cut as often as it has attempts: retries would have failed it")
	for _, o := range f.store.Reports[0] {
		if o.Status == automation.OutcomeRetry {
			assert.True(t, o.Deferred)
			assert.Equal(t, automation.CodeDeadline, o.ErrorCode)
		}
	}
}

// Without ids, the first (cold) claim takes Batch; once the engine has seen
// 2 s sends it claims what fits before the cutoff: floor(10 s × 0.8 / 2 s)
// × Concurrency = 4, and no later batch is cut.
func TestClaimSizedByProviderPace(t *testing.T) {
	f := newSlowFixture(t)
	for range 30 {
		f.store.Add(invoiceDoc(email))
	}
	sum := f.invoke(t)
	assert.Equal(t, 30, sum.Claimed, "cold start: Batch")
	assert.Equal(t, 5, sum.Completed)
	assert.Equal(t, 25, sum.Deferred)
	for n := 0; n < 10 && len(f.pending()) > 0; n++ {
		sum = f.invoke(t)
		assert.Equal(t, 4, f.store.Claims[len(f.store.Claims)-1].Limit)
		assert.Zero(t, sum.Deferred, "sized to what can be sent: nothing cut")
		assert.Equal(t, sum.Claimed, sum.Completed)
	}
	assert.Empty(t, f.pending())
	sent, twice := f.email.sends()
	assert.Equal(t, 30, sent)
	assert.Zero(t, twice)

	// the same pace, 4 sends at once: four times as many
	f.eng.o.Concurrency = 4
	assert.Equal(t, 16, f.eng.claimLimit(deadlineIn(t, f.clk, 15*time.Second)))
	// a long timeout: Batch
	assert.Equal(t, 100, f.eng.claimLimit(deadlineIn(t, f.clk, 10*time.Minute)))
	// less time than one send: one execution
	assert.Equal(t, 1, f.eng.claimLimit(deadlineIn(t, f.clk, 6*time.Second)))
	// explicit ids are claimed as far as the pace goes; the rest stay
	// pending, unclaimed and unspent, for the dispatcher's next ring
	var ids []uuid.UUID
	for range 12 {
		ids = append(ids, f.store.Add(invoiceDoc(email)))
	}
	f.eng.o.Concurrency = 1
	sum = f.invoke(t, ids...)
	assert.Equal(t, 4, sum.Claimed)
	assert.Equal(t, 4, f.store.Claims[len(f.store.Claims)-1].Limit)
	assert.Zero(t, sum.Deferred, "nothing cut")
	assert.Len(t, f.pending(), 8)
	for _, id := range f.pending() {
		assert.Zero(t, f.store.Get(id).Attempt, "an unclaimed execution spent nothing")
	}
}

// deadlineIn is a context whose deadline is d after the fake clock's now.
func deadlineIn(t *testing.T, clk *fakeClock, d time.Duration) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(d))
	t.Cleanup(cancel)
	return ctx
}

// The pace is per channel and per execution: a workflow sending an email
// (2 s) and an SMS (1 s) costs 3 s an execution, so 10 s × 0.8 / 3 s = 2
// per invocation. An execution resumed after its email went out costs only
// its SMS: the estimate follows what the batches really send.
func TestClaimPaceSumsChannels(t *testing.T) {
	f := newSlowFixture(t)
	a, b := f.store.Add(invoiceDoc(email, sms)), f.store.Add(invoiceDoc(email, sms))
	sum := f.invoke(t, a, b) // 2 emails, then 2 SMS: 6 s, inside the cutoff
	assert.Equal(t, 2, sum.Completed)
	assert.InDelta(t, 3.0, f.eng.pace.perExecution(), 0.01)
	for range 6 {
		f.store.Add(invoiceDoc(email, sms))
	}
	sum = f.invoke(t)
	assert.Equal(t, 2, f.store.Claims[len(f.store.Claims)-1].Limit)
	assert.Equal(t, 2, sum.Completed)
	assert.Zero(t, sum.Deferred)
}

// A 429 with Retry-After: deferred for that long, recorded rate_limited, the
// attempt given back; past the store's max_deferrals it fails for good.
func TestRateLimitDefersForRetryAfter(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.sms.fail = func(notify.Message) error {
		return notify.HTTPError("telnyx", http.StatusTooManyRequests, http.Header{"Retry-After": {"90"}}, nil)
	}
	f.store.MaxDeferrals = 1
	id := f.store.Add(invoiceDoc(sms))
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Deferred)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeRetry, o.Status)
	assert.True(t, o.Deferred)
	assert.Equal(t, notify.CodeRateLimited, o.ErrorCode)
	assert.Equal(t, 90, o.RetryAfterSecs)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, notify.CodeRateLimited, o.Deliveries[0].ErrorCode)
	assert.True(t, o.Deliveries[0].Retryable)
	e := f.store.Get(id)
	assert.Equal(t, automation.StatusPending, e.Status)
	assert.Zero(t, e.Attempt)
	assert.Equal(t, 1, e.Deferrals)
	assert.Equal(t, f.now.Add(90*time.Second), e.NextAttempt)

	f.process(t, id)
	e = f.store.Get(id)
	assert.Equal(t, automation.StatusFailed, e.Status)
	assert.Equal(t, automation.CodeMaxDeferrals, e.ErrorCode)
}

// A provider failure nobody classified is retried and spends an attempt:
// max_attempts ends it.
func TestUnclassifiedProviderFailureSpendsAttempts(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	f.email.fail = func(notify.Message) error { return errors.New("unexpected provider answer") }
	doc := invoiceDoc(email)
	doc.Execution.MaxAttempts = 2
	id := f.store.Add(doc)
	sum := f.process(t, id)
	assert.Equal(t, 1, sum.Retried)
	o := f.lastOutcome(t, id)
	assert.False(t, o.Deferred)
	assert.Equal(t, automation.CodeProviderError, o.ErrorCode)
	assert.Equal(t, 1, f.store.Get(id).Attempt)
	f.process(t, id)
	e := f.store.Get(id)
	assert.Equal(t, automation.StatusFailed, e.Status)
	assert.Equal(t, automation.CodeMaxAttempts, e.ErrorCode)
	assert.Zero(t, e.Deferrals)
}

// Which retries are deferred: infrastructure trouble only.
func TestDeferrableCodes(t *testing.T) {
	for _, c := range []automation.Code{automation.CodeDeadline, automation.CodeInternal, notify.CodeRateLimited, notify.CodeUnavailable,
		notify.CodeNetwork, notify.CodeTimeout, notify.CodeAuth} {
		assert.True(t, deferrable[c], c)
	}
	for _, c := range []automation.Code{automation.CodeProviderError, automation.CodeProviderRejected, automation.CodeInvalidRecipient,
		automation.CodeTemplate, ""} {
		assert.False(t, deferrable[c], c)
	}
}
