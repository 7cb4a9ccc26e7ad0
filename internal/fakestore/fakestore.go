// Package fakestore is an in-memory stand-in of the three automation RPCs
// (automation_claim, automation_record_deliveries, automation_report) with
// the semantics of docs/contract.md: leases fenced by token, the delivery
// ledger's answers (new, sent, ambiguous, failed, stale, invalid) and the status
// transitions of a report, deferrals included (a deferred retry gives its
// attempt back, counts a deferral and is due after Retry-After, at once for
// a deadline cut, else after a back-off; failed max_deferrals past
// MaxDeferrals, expired past the deadline). It is for engine unit tests
// only; the integration tests use the real SQL.
package fakestore

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/automation"
)

// Exec is one execution row.
type Exec struct {
	Doc automation.Claimed // returned by Claim (Execution fields refreshed)
	// Mangle, when set, rewrites the claim document (decoded as generic
	// JSON) before Claim returns it: a document the engine cannot read, as
	// a row written before the workflow rules can give.
	Mangle      func(doc map[string]any)
	Status      automation.Status
	StepIndex   int
	Attempt     int
	LeaseToken  uuid.UUID
	LeaseExp    time.Time
	NextAttempt time.Time
	ErrorCode   automation.Code
	RetryAfter  int
	Deferrals   int
	seq         int // insertion order: the claim's tie-break
}

// Ledger is one delivery row.
type Ledger struct {
	automation.Delivery
	ExecutionID uuid.UUID
	Retryable   bool
	ErrorCode   automation.Code
}

// Store is the in-memory database. Set FailReport to make Report fail
// (a crash between the provider call and the report), FailBegin to make
// RecordDeliveries fail (the ledger unreachable).
type Store struct {
	mu         sync.Mutex
	Now        func() time.Time
	Execs      map[uuid.UUID]*Exec
	Deliveries map[string]*Ledger
	Calls      map[string]int // RPC name -> calls
	Reports    [][]automation.Outcome
	FailReport bool
	FailBegin  bool
	// MaxDeferrals is automation_settings.max_deferrals (New: 200).
	MaxDeferrals int
	// Claims records every claim request.
	Claims []automation.ClaimRequest
	// Intents records every delivery intent given to the ledger.
	Intents []automation.DeliveryIntent
	added   int
}

// New returns an empty store.
func New() *Store {
	return &Store{Now: time.Now, Execs: map[uuid.UUID]*Exec{}, Deliveries: map[string]*Ledger{}, Calls: map[string]int{}, MaxDeferrals: 200}
}

// Add inserts a pending execution; its id is c.Execution.ID (set when zero).
func (s *Store) Add(c automation.Claimed) uuid.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Execution.ID == uuid.Nil {
		c.Execution.ID = uuid.New()
	}
	if c.Execution.MaxAttempts == 0 {
		c.Execution.MaxAttempts = 5
	}
	s.added++
	s.Execs[c.Execution.ID] = &Exec{Doc: c, Status: automation.StatusPending, StepIndex: c.Execution.StepIndex, seq: s.added}
	return c.Execution.ID
}

// Get returns a copy of an execution row.
func (s *Store) Get(id uuid.UUID) Exec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.Execs[id]
}

// Expire simulates the lease expiry sweep: running rows go back to pending.
func (s *Store) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.Execs {
		if e.Status == automation.StatusRunning {
			e.Status, e.LeaseToken = automation.StatusPending, uuid.Nil
		}
	}
}

// Claim implements automation_claim. Rows named by id are claimed whether
// due or not (tests re-run a retry at once); without ids, pending rows due
// by Now are claimed, earliest NextAttempt first. Like the SQL, a document
// always has trigger_config (an object) and steps (a list).
func (s *Store) Claim(_ context.Context, req automation.ClaimRequest) ([]json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls["claim"]++
	s.Claims = append(s.Claims, req)
	ids := req.IDs
	if len(ids) == 0 {
		ids = s.due()
	}
	var out []json.RawMessage
	for _, id := range ids {
		e, ok := s.Execs[id]
		if !ok || e.Status != automation.StatusPending || e.Doc.Execution.Action != req.Action || len(out) >= req.Limit {
			continue
		}
		e.Status, e.Attempt, e.LeaseToken = automation.StatusRunning, e.Attempt+1, uuid.New()
		e.LeaseExp = s.Now().Add(time.Duration(req.LeaseSeconds) * time.Second)
		doc := e.Doc
		doc.Execution.Attempt, doc.Execution.LeaseToken, doc.Execution.LeaseExpiresAt = e.Attempt, e.LeaseToken, e.LeaseExp
		doc.Execution.StepIndex = e.StepIndex
		doc.Deliveries = nil
		for _, d := range s.Deliveries {
			if d.ExecutionID == id {
				doc.Deliveries = append(doc.Deliveries, d.Delivery)
			}
		}
		if doc.Workflow.TriggerConfig == nil {
			doc.Workflow.TriggerConfig = json.RawMessage(`{}`)
		}
		if doc.Workflow.Steps == nil {
			doc.Workflow.Steps = []automation.Step{}
		}
		raw, err := encode(doc, e.Mangle)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// due lists the pending rows due by Now, earliest NextAttempt first.
func (s *Store) due() []uuid.UUID {
	now := s.Now()
	var es []*Exec
	for _, e := range s.Execs {
		if e.Status == automation.StatusPending && !e.NextAttempt.After(now) {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if !es[i].NextAttempt.Equal(es[j].NextAttempt) {
			return es[i].NextAttempt.Before(es[j].NextAttempt)
		}
		return es[i].seq < es[j].seq
	})
	ids := make([]uuid.UUID, len(es))
	for i, e := range es {
		ids[i] = e.Doc.Execution.ID
	}
	return ids
}

// encode marshals a claim document, rewritten by mangle when set.
func encode(doc automation.Claimed, mangle func(map[string]any)) (json.RawMessage, error) {
	raw, err := json.Marshal(doc)
	if err != nil || mangle == nil {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	mangle(m)
	return json.Marshal(m)
}

// RecordDeliveries implements automation_record_deliveries: finishes the
// deliveries whose execution still holds the lease, then begins ds.
func (s *Store) RecordDeliveries(_ context.Context, finished []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls["record"]++
	if s.FailBegin {
		return nil, errors.New("record deliveries: connection reset")
	}
	for _, f := range finished {
		if e, ok := s.Execs[f.ExecutionID]; ok && e.Status == automation.StatusRunning && e.LeaseToken == f.LeaseToken {
			s.finish(f.ExecutionID, f.DeliveryResult)
		}
	}
	out := make([]automation.DeliveryBegun, len(ds))
	s.Intents = append(s.Intents, ds...)
	for i, d := range ds {
		out[i].IdempotencyKey = d.IdempotencyKey
		e, ok := s.Execs[d.ExecutionID]
		if !ok || e.Status != automation.StatusRunning || e.LeaseToken != d.LeaseToken {
			out[i].State = automation.BeginStale
			continue
		}
		if dl := e.Doc.Execution.DeadlineAt; dl != nil && !s.Now().Before(*dl) {
			out[i].State = automation.BeginExpired // nothing recorded, as in SQL
			continue
		}
		if d.IdempotencyKey == "" || d.Recipient == "" || (d.Channel != automation.ChannelEmail && d.Channel != automation.ChannelSMS) {
			out[i].State = automation.BeginInvalid // nothing recorded, as in SQL
			continue
		}
		l, ok := s.Deliveries[d.IdempotencyKey]
		switch {
		case !ok:
			s.Deliveries[d.IdempotencyKey] = &Ledger{ExecutionID: d.ExecutionID, Delivery: automation.Delivery{
				StepIndex: d.StepIndex, Channel: d.Channel, Recipient: d.Recipient, Provider: d.Provider,
				IdempotencyKey: d.IdempotencyKey, Status: automation.DeliverySending}}
			out[i].State = automation.BeginNew
		case l.Status == automation.DeliverySent:
			out[i].State, out[i].ProviderMessageID = automation.BeginSent, l.ProviderMessageID
		case l.Status == automation.DeliverySending || l.Status == automation.DeliveryUnknown:
			l.Status = automation.DeliveryUnknown
			out[i].State = automation.BeginAmbiguous
		case l.Status == automation.DeliveryFailed && l.Retryable:
			l.Status = automation.DeliverySending
			out[i].State = automation.BeginNew
		default:
			out[i].State = automation.BeginFailed
		}
	}
	return out, nil
}

// finish records a delivery's provider answer as the SQL does: only a
// finished status, only the execution's own row, never over sent.
func (s *Store) finish(exec uuid.UUID, d automation.DeliveryResult) {
	switch d.Status {
	case automation.DeliverySent, automation.DeliveryFailed, automation.DeliveryUnknown:
	default:
		return
	}
	l, ok := s.Deliveries[d.IdempotencyKey]
	if !ok || l.ExecutionID != exec || l.Status == automation.DeliverySent {
		return
	}
	l.Status, l.ProviderMessageID, l.Retryable, l.ErrorCode = d.Status, d.ProviderMessageID, d.Retryable, d.ErrorCode
}

// Report implements automation_report.
func (s *Store) Report(_ context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls["report"]++
	if s.FailReport {
		return nil, errors.New("report: connection reset")
	}
	s.Reports = append(s.Reports, os)
	out := make([]automation.Reported, len(os))
	for i, o := range os {
		out[i].ExecutionID = o.ExecutionID
		e, ok := s.Execs[o.ExecutionID]
		if !ok || e.Status != automation.StatusRunning || e.LeaseToken != o.LeaseToken {
			out[i].Reason = "stale_lease"
			if ok {
				out[i].Status = e.Status
			}
			continue
		}
		for _, d := range o.Deliveries {
			s.finish(o.ExecutionID, d)
		}
		e.ErrorCode, e.LeaseToken = o.ErrorCode, uuid.Nil
		switch o.Status {
		case automation.OutcomeCompleted, automation.OutcomeSkipped, automation.OutcomeFailed:
			e.Status = automation.Status(o.Status) // the execution status of the same name
		case automation.OutcomeRetry:
			s.retry(e, o)
		case automation.OutcomeSnoozed:
			e.Status, e.StepIndex, e.Attempt = automation.StatusPending, o.StepIndex, e.Attempt-1
			if o.SnoozeUntil != nil {
				e.NextAttempt = *o.SnoozeUntil
			}
		}
		out[i].Applied, out[i].Status = true, e.Status
	}
	return out, nil
}

// retry applies a retry outcome as automation_report does (without the
// send window and the jitter): a deferred one gives its attempt back and
// counts a deferral, due after Retry-After, at once for a deadline cut, else
// after 30 s * 2^(n-1) (at most 15 min), failed max_deferrals once deferred
// MaxDeferrals times; a plain one spends its attempt, due after Retry-After
// or 60 s * 4^(attempt-1) (at most 6 h), failed max_attempts when none is
// left. Either fails expired when it would pass the deadline.
func (s *Store) retry(e *Exec, o automation.Outcome) {
	e.Status, e.RetryAfter = automation.StatusPending, o.RetryAfterSecs
	var wait time.Duration
	switch {
	case o.Deferred && e.Deferrals >= s.MaxDeferrals:
		e.Deferrals++
		e.Attempt = max(e.Attempt-1, 0)
		e.Status, e.ErrorCode = automation.StatusFailed, automation.CodeMaxDeferrals
		return
	case !o.Deferred && e.Attempt >= e.Doc.Execution.MaxAttempts:
		e.Status, e.ErrorCode = automation.StatusFailed, automation.CodeMaxAttempts
		return
	case o.RetryAfterSecs > 0:
		wait = time.Duration(o.RetryAfterSecs) * time.Second
	case o.Deferred && o.ErrorCode == "deadline":
	case o.Deferred:
		wait = min(30*time.Second<<min(e.Deferrals, 10), 15*time.Minute)
	default:
		wait = min(time.Minute<<(2*min(max(e.Attempt-1, 0), 10)), 6*time.Hour)
	}
	if o.Deferred {
		e.Deferrals++
		e.Attempt = max(e.Attempt-1, 0)
	}
	e.NextAttempt = s.Now().Add(wait)
	if dl := e.Doc.Execution.DeadlineAt; dl != nil && e.NextAttempt.After(*dl) {
		e.Status, e.ErrorCode = automation.StatusFailed, automation.CodeExpired
	}
}
