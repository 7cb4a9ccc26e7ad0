// Package engine runs a batch of automation executions: it claims them,
// checks that each is still wanted, renders and sends its messages through
// the delivery ledger, and reports every outcome back. It is the
// lambdaurl.Processor of every action's function.
//
// Round trips per batch: one claim, one report, and one ledger call
// (automation_record_deliveries) per chunk of at most LedgerChunk messages
// (default Concurrency: a batch of 100 one-message executions at
// concurrency 8 makes 13 calls). A chunk is begun just before its sends
// (at most Concurrency at once), and the same call finishes the previous
// chunk (its provider answers: sent, failed, unknown), so a crash or a
// failed report leaves at most one chunk (LedgerChunk deliveries) begun and
// not finished; the report finishes the last chunk (and lists every
// delivery again: idempotent).
//
// Delivery is at most once. Every message is recorded in the ledger before
// the provider is called, under a key that is stable across attempts
// (execution, step, channel). If the function dies between the provider
// call and the recording of its answer, the ledger row stays "sending";
// when the execution is claimed again the ledger answers "ambiguous" and
// the message is not sent again (it is recorded "unknown"). Those are the
// deliveries of the one chunk in flight: no more than LedgerChunk
// recipients can miss a message in a crash, each of them has an "unknown"
// delivery, and its execution ends with error code delivery_unknown
// (operators settle it: automation_settle_delivery).
// A provider failure after the hand-over (notify.IsAmbiguous: a timeout or a
// connection lost while waiting for the answer) is treated the same way,
// because the provider may have accepted the message. A delivery recorded "sent" is never sent again.
// Losing one reminder in such a crash is preferred to sending it twice.
//
// The claim answer is decoded one document at a time (claim.go): a document
// whose workflow breaks the workflow rules (shared/workflow) fails alone
// with invalid_workflow, one that cannot be read fails alone with
// invalid_execution, and the rest of the batch is sent.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/text"
)

// Store is the database side: the three RPCs (shared/supabase.Client).
// Claim answers one undecoded document per claimed execution (an
// automation.Claimed): the engine decodes each alone, so that one it cannot
// read fails alone. RecordDeliveries finishes the deliveries whose provider
// answer is known and begins the next ones in one call, answering one
// DeliveryBegun per intent in order.
type Store interface {
	Claim(ctx context.Context, req automation.ClaimRequest) ([]json.RawMessage, error)
	RecordDeliveries(ctx context.Context, finished []automation.DeliveryFinished, begin []automation.DeliveryIntent) ([]automation.DeliveryBegun, error)
	Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error)
}

// Defaults of Options.
const (
	DefaultConcurrency  = 8
	DefaultLeaseSeconds = 300
	DefaultMargin       = 5 * time.Second
	DefaultBatch        = 100
)

// deferrable are the error codes of a retry caused by infrastructure
// trouble rather than by the message: reported Deferred, so the database
// gives the attempt back (bounded by the deadline and max_deferrals). A
// retry with any other code (an unclassified provider failure,
// provider_error) spends an attempt.
var deferrable = map[automation.Code]bool{
	automation.CodeDeadline: true, // cut by the function's deadline
	automation.CodeInternal: true, // the ledger or the database failed
	notify.CodeRateLimited:  true, // 429
	notify.CodeUnavailable:  true, // 5xx, SMTP 4xx
	notify.CodeNetwork:      true, // no answer (or lost after the hand-over: recorded unknown, never re-sent)
	notify.CodeTimeout:      true, // likewise, or a 408
	notify.CodeAuth:         true, // credentials or sender refused: an operator's fix
}

// Options configure an Engine.
type Options struct {
	Action        string        // the function's action (automation.Action*)
	Store         Store         // the RPCs
	Email         notify.Sender // nil: email steps cannot be sent
	SMS           notify.Sender // nil: SMS steps cannot be sent
	EmailFrom     string        // sender address when the organisation has none
	EmailFromName string        // sender name when the organisation has none
	Concurrency   int           // sends at once (DefaultConcurrency)
	// LedgerChunk is how many deliveries one ledger call begins, and so
	// what a crash can leave unknown (Concurrency, also when lower). A
	// multiple of Concurrency makes fewer calls per batch (a batch's size:
	// one call per step wave) for a larger crash bound.
	LedgerChunk  int
	LeaseSeconds int // lease of a claim (DefaultLeaseSeconds)
	// Batch is the claim limit when a request names no ids (DefaultBatch),
	// lowered to what the providers' observed pace can send before the
	// cutoff (claimLimit).
	Batch int
	// Margin: no send starts later than the context's deadline (or a lease's
	// expiry) minus Margin; the rest is reported "retry", deferred
	// (automation.CodeDeadline; DefaultMargin).
	// A send still running at the context's deadline minus Margin/2 is
	// abandoned (its delivery recorded unknown) so that the batch can still
	// be reported before the function is stopped.
	Margin time.Duration
	// NormalizePhone turns a stored phone number into the E.164 number an
	// SMS goes to, with the organisation's country as default region; an
	// error skips the channel as invalid. nil: shared/phone.ParseE164.
	NormalizePhone func(raw, defaultCountry string) (string, error)
	// Unsubscribe returns the one-click opt-out URL of a client of an
	// organisation for a channel (UnsubscribeURL). nil: non-transactional
	// email goes without List-Unsubscribe and without the opt-out link (a
	// warning is logged per message).
	Unsubscribe func(organizationID uuid.UUID, clientID, channel string) (string, error)
	// SMSFrom is the number SMS go from, recorded in the ledger (an SMS STOP
	// finds the organisations that texted the number from it); "" = unknown.
	SMSFrom string
	Logger  *slog.Logger
	Now     func() time.Time // clock (time.Now)
}

// Engine processes batches of one action. It is safe for concurrent use.
// It learns its providers' pace (pace.go) to size claims without ids.
type Engine struct {
	o    Options
	pace *pace
}

// New returns an Engine; Action and Store are required.
func New(o Options) (*Engine, error) {
	if !automation.IsAction(o.Action) {
		return nil, fmt.Errorf("engine: unknown action %q", o.Action)
	}
	if o.Store == nil {
		return nil, errors.New("engine: a store is required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.LedgerChunk < o.Concurrency {
		o.LedgerChunk = o.Concurrency
	}
	if o.LeaseSeconds <= 0 {
		o.LeaseSeconds = DefaultLeaseSeconds
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.NormalizePhone == nil {
		o.NormalizePhone = phone.ParseE164
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Engine{o: o, pace: newPace()}, nil
}

// Reasons a channel of a step was not sent.
const (
	skipMissing    = "missing"
	skipOptedOut   = "opted_out"
	skipSuppressed = "suppressed"
	skipInvalid    = "invalid"
	skipNoProvider = "no_provider"
)

// run is the state of one claimed execution during a batch. Only one
// goroutine touches a run at a time.
type run struct {
	c       *automation.Claimed
	log     *slog.Logger
	steps   []automation.Step
	step    int
	vars    render.Vars
	sent    int                        // messages of this execution known sent (earlier attempts too)
	calls   map[automation.Channel]int // provider calls of this attempt per channel (pace)
	actions int                        // actions executed in this attempt
	unknown bool
	skips   map[string]int
	results []automation.DeliveryResult
	outcome *automation.Outcome
	stale   bool

	// the message of the current wave
	intent *automation.DeliveryIntent
	msg    notify.Message
	sender notify.Sender
}

// finish gives r its outcome at the current step.
func (r *run) finish(status automation.OutcomeStatus, code automation.Code, msg string) {
	r.outcome = &automation.Outcome{Status: status, ErrorCode: code, ErrorMessage: msg, StepIndex: r.step}
}

// end gives r the outcome of an early end.
func (r *run) end(v ending) { r.finish(v.status, v.code, v.msg) }

// Process claims the request's executions, runs them and reports their
// outcomes. An error means the batch could not be claimed or reported; the
// executions then come back when their leases expire.
func (e *Engine) Process(ctx context.Context, req automation.Request) (automation.Summary, error) {
	sum := automation.Summary{Action: e.o.Action, Requested: len(req.ExecutionIDs)}
	if req.Action != e.o.Action {
		return sum, fmt.Errorf("engine: request for action %q sent to %q", req.Action, e.o.Action)
	}
	claimed, err := e.claim(ctx, req)
	if err != nil {
		return sum, err
	}
	sum.Claimed = len(claimed)
	if len(claimed) == 0 {
		return sum, nil
	}
	runs := e.decodeRuns(ctx, claimed)
	e.runWaves(ctx, runs)
	e.observeBatch(runs)

	outcomes, byID := e.outcomes(ctx, runs, &sum)
	if len(outcomes) == 0 {
		return sum, nil
	}
	reported, err := e.report(ctx, outcomes)
	if err != nil {
		return sum, err
	}
	tally(ctx, &sum, outcomes, byID, reported)
	return sum, nil
}

// claim claims the request's executions. No more is claimed than the
// providers' observed pace lets the function send before its cutoff. Named
// ids (the dispatcher's batch) beyond that stay pending, unclaimed: the
// dispatcher rings them again (its redispatch delay), and nothing of theirs
// is spent. What the deadline still cuts is deferred without cost.
func (e *Engine) claim(ctx context.Context, req automation.Request) ([]json.RawMessage, error) {
	limit := e.claimLimit(ctx)
	if n := len(req.ExecutionIDs); n > 0 {
		limit = min(n, limit)
	}
	return e.o.Store.Claim(ctx, automation.ClaimRequest{
		Action: e.o.Action, IDs: req.ExecutionIDs, Limit: limit, LeaseSeconds: e.o.LeaseSeconds,
	})
}

// runWaves works the runs step wave by step wave (one message per run and
// wave) until every run has an outcome or the cutoff stops the rest
// (retry, deadline).
func (e *Engine) runWaves(ctx context.Context, runs []*run) {
	var finished []automation.DeliveryFinished // provider answers not yet in the ledger
	for {
		cutoff := e.cutoff(ctx, runs)
		var wave []*run
		for _, r := range runs {
			if r.outcome != nil || r.stale {
				continue
			}
			e.plan(r)
			if r.intent != nil {
				wave = append(wave, r)
			}
		}
		if len(wave) == 0 {
			return
		}
		if !e.o.Now().Before(cutoff) {
			for _, r := range wave {
				r.intent = nil
				r.finish(automation.OutcomeRetry, automation.CodeDeadline, "stopped before the function's deadline")
			}
			return
		}
		e.wave(ctx, wave, cutoff, &finished)
	}
}

// outcomes are the runs' outcomes to report, with the runs by execution
// id; a stale run (its lease lost) is counted in sum and left out.
func (e *Engine) outcomes(ctx context.Context, runs []*run, sum *automation.Summary) ([]automation.Outcome, map[string]*run) {
	outcomes := make([]automation.Outcome, 0, len(runs))
	byID := make(map[string]*run, len(runs))
	for _, r := range runs {
		if r.stale {
			sum.Stale++
			r.log.WarnContext(ctx, "lease lost; execution left to its new holder")
			continue
		}
		o := *r.outcome
		flagUnknown(&o, r)
		o.ExecutionID = r.c.Execution.ID
		o.LeaseToken = r.c.Execution.LeaseToken
		o.ActionsExecuted = r.actions
		o.Deliveries = r.results
		o.Deferred = o.Status == automation.OutcomeRetry && deferrable[o.ErrorCode]
		outcomes = append(outcomes, o)
		byID[o.ExecutionID.String()] = r
	}
	return outcomes, byID
}

// tally counts the reported outcomes in sum by the report's answer: an
// outcome the answer does not mention, or did not apply, is stale.
func tally(ctx context.Context, sum *automation.Summary, outcomes []automation.Outcome, byID map[string]*run, reported []automation.Reported) {
	applied := make(map[string]automation.Reported, len(reported))
	for _, rep := range reported {
		applied[rep.ExecutionID.String()] = rep
	}
	for _, o := range outcomes {
		r := byID[o.ExecutionID.String()]
		rep, ok := applied[o.ExecutionID.String()]
		if !ok {
			// The report's answer does not mention it: whether it was
			// applied is unknown, so it is not counted as done.
			sum.Stale++
			r.log.WarnContext(ctx, "outcome missing from the report's answer; not counted as applied", "status", o.Status)
			continue
		}
		if !rep.Applied {
			sum.Stale++
			r.log.WarnContext(ctx, "outcome not applied", "status", o.Status, "reason", rep.Reason)
			continue
		}
		count(sum, o)
		r.log.InfoContext(ctx, "execution reported", "status", o.Status, "error_code", o.ErrorCode, "deferred", o.Deferred,
			"step_index", o.StepIndex, "actions_executed", o.ActionsExecuted, "deliveries", len(o.Deliveries),
			"db_status", rep.Status)
	}
}

// count adds an applied outcome to sum.
func count(sum *automation.Summary, o automation.Outcome) {
	switch o.Status {
	case automation.OutcomeCompleted:
		sum.Completed++
	case automation.OutcomeSkipped:
		sum.Skipped++
	case automation.OutcomeRetry:
		if o.Deferred {
			sum.Deferred++
		} else {
			sum.Retried++
		}
	case automation.OutcomeFailed:
		sum.Failed++
	case automation.OutcomeSnoozed:
		sum.Snoozed++
	}
}

// claimLimit is the claim limit of a request without ids: Batch, or fewer
// when the providers' observed pace would not send that many before the
// cutoff (the context's deadline or the new leases' expiry, minus Margin).
func (e *Engine) claimLimit(ctx context.Context) int {
	now := e.o.Now()
	end := now.Add(time.Duration(e.o.LeaseSeconds) * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	limit := e.pace.claimLimit(end.Add(-e.o.Margin).Sub(now), e.o.Batch, e.o.Concurrency)
	if limit < e.o.Batch {
		e.o.Logger.InfoContext(ctx, "claim limited to what the providers' pace can send before the deadline",
			"action", e.o.Action, "limit", limit, "batch", e.o.Batch,
			"seconds_per_execution", e.pace.perExecution(), "seconds_left", end.Sub(now).Seconds())
	}
	return limit
}

// observeBatch feeds the pace with the provider calls per execution of the
// runs that were worked to an end (a run cut by the deadline made fewer
// calls than it needs; a stale one is not ours).
func (e *Engine) observeBatch(runs []*run) {
	sends, n := map[automation.Channel]int{}, 0
	for _, r := range runs {
		if r.stale || (r.outcome != nil && r.outcome.Status == automation.OutcomeRetry && r.outcome.ErrorCode == automation.CodeDeadline) {
			continue
		}
		n++
		for ch, c := range r.calls {
			sends[ch] += c
		}
	}
	e.pace.observeBatch(sends, n)
}

// reportAttempts bounds how often a batch's report is tried. Repeating it
// is safe: automation_report is fenced by lease tokens, so a repeat of a
// report that did apply (its answer was lost) changes nothing
// (stale_lease). Without the repeat, one transient RPC failure leaves every
// message of the batch "sending" (later "unknown") and its executions
// running until their leases expire.
const reportAttempts = 3

// reportPause is the pause before the n-th repeat of a report (n * pause).
var reportPause = 250 * time.Millisecond

// report sends the outcomes, repeating the call after a failure while the
// request's deadline leaves time. The report must not be lost to a
// cancelled request context; the adapter bounds each call in time.
func (e *Engine) report(ctx context.Context, outcomes []automation.Outcome) ([]automation.Reported, error) {
	var err error
	for n := range reportAttempts {
		if n > 0 {
			pause := time.Duration(n) * reportPause
			if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*pause {
				break
			}
			e.o.Logger.WarnContext(ctx, "report failed; trying again", "action", e.o.Action,
				"outcomes", len(outcomes), "attempt", n, "error", redact.Text(err.Error()))
			pauseFor(ctx, pause)
		}
		var rep []automation.Reported
		if rep, err = e.o.Store.Report(context.WithoutCancel(ctx), outcomes); err == nil {
			return rep, nil
		}
	}
	return nil, err
}

// pauseFor waits d, or less when ctx ends first: a short back-off between
// two RPC calls of one invocation, never a workflow delay (those are durable
// snoozes in the database).
func pauseFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (e *Engine) newRun(ctx context.Context, c *automation.Claimed) *run {
	ex := c.Execution
	r := &run{
		c: c,
		log: e.o.Logger.With("execution_id", ex.ID, "workflow_id", ex.WorkflowID,
			"organization_id", ex.OrganizationID, "action", e.o.Action, "attempt", ex.Attempt),
		steps: c.Workflow.Steps,
		step:  ex.StepIndex,
		skips: map[string]int{},
	}
	if len(r.steps) == 0 {
		r.steps = render.DefaultSteps(ex.Action)
	}
	for _, d := range c.Deliveries {
		if d.Status == automation.DeliverySent && d.StepIndex < r.step {
			r.sent++
		}
	}
	r.log.DebugContext(ctx, "execution claimed", "step_index", r.step, "steps", len(r.steps))
	if v, stop := e.precheck(c); stop {
		r.end(v)
		return r
	}
	r.vars = render.VarsAt(c, e.o.Now())
	return r
}

// cutoff is when no new send may start: the earliest of the context's
// deadline and the leases' expiry, minus the margin.
func (e *Engine) cutoff(ctx context.Context, runs []*run) time.Time {
	end := e.o.Now().Add(100 * 365 * 24 * time.Hour)
	if d, ok := ctx.Deadline(); ok {
		end = d
	}
	for _, r := range runs {
		if exp := r.c.Execution.LeaseExpiresAt; !exp.IsZero() && exp.Before(end) {
			end = exp
		}
	}
	return end.Add(-e.o.Margin)
}

// plan advances r through its steps until it has a message to send in this
// wave (r.intent) or an outcome.
func (e *Engine) plan(r *run) {
	r.intent, r.sender = nil, nil
	for r.outcome == nil {
		if r.step >= len(r.steps) {
			e.complete(r)
			return
		}
		st := r.steps[r.step]
		switch st.Type {
		case automation.StepDelay:
			d := st.Delay()
			if d <= 0 {
				r.step++
				continue
			}
			until := e.o.Now().Add(d).UTC()
			r.step++
			r.finish(automation.OutcomeSnoozed, "", "")
			r.outcome.SnoozeUntil = &until
			return
		case automation.StepSendEmail, automation.StepSendSMS:
			e.prepare(r, st)
			if r.intent != nil || r.outcome != nil {
				return
			}
			r.step++ // channel skipped
		default:
			r.finish(automation.OutcomeFailed, automation.CodeConfig, "unknown step type "+strconv.Quote(st.Type))
			return
		}
	}
}

// complete ends a run whose steps are all done. Any delivery of the
// execution whose fate is unknown (this attempt's or an earlier one's)
// flags it delivery_unknown, whatever else was sent.
func (e *Engine) complete(r *run) {
	switch {
	case r.unknown || earlierUnknown(r.c.Deliveries):
		r.finish(automation.OutcomeCompleted, automation.CodeDeliveryUnknown,
			"a message's delivery is unknown (an attempt stopped after handing it over); not sent again")
	case r.sent > 0:
		r.finish(automation.OutcomeCompleted, "", "")
	case len(r.skips) == 0:
		r.finish(automation.OutcomeCompleted, "", "")
	case r.skips[skipInvalid] > 0:
		r.finish(automation.OutcomeFailed, automation.CodeInvalidRecipient, "recipient address or phone number is invalid")
	case r.skips[skipMissing] > 0:
		r.finish(automation.OutcomeSkipped, automation.CodeNoRecipient, "no email address or phone number to send to")
	case r.skips[skipOptedOut] > 0:
		r.finish(automation.OutcomeSkipped, automation.CodeOptedOut, "recipient opted out")
	case r.skips[skipSuppressed] > 0:
		r.finish(automation.OutcomeSkipped, automation.CodeSuppressed, "recipient address suppressed (a hard bounce or a complaint)")
	default:
		r.finish(automation.OutcomeSkipped, automation.CodeConfig, "no provider configured for the workflow's channels")
	}
}

// flagUnknown marks a skipped or failed outcome of an execution with an
// unknown delivery (this attempt's or an earlier one's) delivery_unknown,
// keeping the reason in the message: an unknown delivery always flags its
// execution, whatever else happened to it (complete flags the completed).
func flagUnknown(o *automation.Outcome, r *run) {
	if o.Status != automation.OutcomeSkipped && o.Status != automation.OutcomeFailed {
		return
	}
	if o.ErrorCode == automation.CodeDeliveryUnknown || !(r.unknown || earlierUnknown(r.c.Deliveries)) {
		return
	}
	o.ErrorMessage = text.Truncate(string(o.ErrorCode)+": "+o.ErrorMessage+"; and a message's delivery is unknown (not sent again)", 500)
	o.ErrorCode = automation.CodeDeliveryUnknown
}

// earlierUnknown reports whether the claim found a delivery of the execution
// unknown or still sending: an earlier attempt handed it over (maybe) and
// never learnt the answer. (Nothing of this attempt is begun at claim time.)
func earlierUnknown(ds []automation.Delivery) bool {
	for _, d := range ds {
		if d.Status == automation.DeliveryUnknown || d.Status == automation.DeliverySending {
			return true
		}
	}
	return false
}

// prepare renders the message of a send step and sets r.intent, or records
// why the channel is skipped, or ends the run on a template error.
func (e *Engine) prepare(r *run, st automation.Step) {
	c := r.c
	channel, sender := automation.ChannelEmail, e.o.Email
	if st.Type == automation.StepSendSMS {
		channel, sender = automation.ChannelSMS, e.o.SMS
	}
	raw, optedOut := recipient(c, channel)
	skip := func(reason string) {
		r.skips[reason]++
		r.log.Info("channel skipped", "step_index", r.step, "channel", channel, "reason", reason)
	}
	switch {
	case optedOut:
		skip(skipOptedOut)
		return
	case raw == "":
		skip(skipMissing)
		return
	case sender == nil:
		skip(skipNoProvider)
		return
	}
	to, err := e.address(c, channel, raw)
	if err != nil {
		skip(skipInvalid)
		return
	}
	if reason := refused(c, channel, to); reason != "" {
		skip(reason)
		return
	}
	msg, notice, ok := e.compose(r, st, channel, to)
	if !ok {
		return
	}
	ex := c.Execution
	msg.IdempotencyKey = automation.IdempotencyKey(ex.ID, r.step, channel)
	r.msg, r.sender = msg, sender
	r.intent = &automation.DeliveryIntent{
		ExecutionID: ex.ID, LeaseToken: ex.LeaseToken, StepIndex: r.step, Channel: channel,
		Recipient: to, Provider: sender.Name(), IdempotencyKey: msg.IdempotencyKey,
		Sender: msg.From, OptOutNotice: notice,
	}
	if channel == automation.ChannelSMS {
		// the number an SMS STOP is sent back to; a messaging service id
		// (Twilio MG…) is no number: unknown, so a STOP to any of its
		// numbers reaches the organisations that texted the client
		r.intent.Sender = ""
		if phone.IsE164(e.o.SMSFrom) {
			r.intent.Sender = e.o.SMSFrom
		}
	}
}

// recipient is the stored address a message of the channel goes to (the
// organisation's own for an organisation subject, else the client's,
// trimmed; "" = none) and whether the client opted out of the channel in
// the app's own columns.
func recipient(c *automation.Claimed, channel automation.Channel) (raw string, optedOut bool) {
	orgSubject := c.Execution.SubjectType == "organization"
	switch {
	case orgSubject && channel == automation.ChannelEmail:
		raw = c.Organization.SenderEmail
	case orgSubject:
		raw = c.Organization.Phone
	case c.Client == nil:
	case channel == automation.ChannelEmail:
		raw, optedOut = c.Client.Email, c.Client.EmailOptOut
	default:
		raw, optedOut = c.Client.Phone, c.Client.SMSOptOut
	}
	return strings.TrimSpace(raw), optedOut
}

// address is the exact address a message goes to: the email address of
// raw, or its E.164 number (NormalizePhone, the organisation's country as
// default region).
func (e *Engine) address(c *automation.Claimed, channel automation.Channel, raw string) (string, error) {
	if channel == automation.ChannelEmail {
		addr, err := mail.ParseAddress(raw)
		if err != nil {
			return "", err
		}
		return addr.Address, nil
	}
	return e.o.NormalizePhone(raw, c.Organization.CountryCode)
}

// compose renders the message of a send step to to, checked against the
// limits of shared/render, before anything is begun in the ledger: a
// message that may not be sent (template error, a part over its limit)
// fails the execution for good (ok false). notice: the SMS carries the
// opt-out instruction.
func (e *Engine) compose(r *run, st automation.Step, channel automation.Channel, to string) (msg notify.Message, notice, ok bool) {
	c := r.c
	nonTransactional := c.Client != nil && messageClass(c) == automation.ClassNonTransactional
	unsubscribeURL := ""
	if nonTransactional && channel == automation.ChannelEmail {
		unsubscribeURL = e.unsubscribeURL(r, channel)
	}
	r.vars.SetUnsubscribe(unsubscribeURL)
	tmpl := render.ForStep(c, st)
	msg = notify.Message{Channel: channel, To: to}
	var err error
	if channel == automation.ChannelEmail {
		err = e.composeEmail(c, &msg, tmpl, r.vars, unsubscribeURL)
	} else {
		msg.Text, err = render.SMS(tmpl, r.vars)
		if err == nil && nonTransactional && !told(c, to) {
			msg.Text, err = render.WithSMSOptOut(msg.Text)
			notice = true
		}
	}
	if err != nil {
		e.renderFailed(r, channel, err)
		return msg, false, false
	}
	return msg, notice, true
}

// composeEmail renders an email into msg, with the opt-out link when
// unsubscribeURL is set, from the organisation's sender identity (or the
// function's).
func (e *Engine) composeEmail(c *automation.Claimed, msg *notify.Message, tmpl render.Template, vars render.Vars, unsubscribeURL string) error {
	m, err := render.Email(tmpl, vars)
	if err != nil {
		return err
	}
	if m, err = render.WithOptOut(m, unsubscribeURL); err != nil {
		return err
	}
	msg.Subject, msg.Text, msg.HTML = m.Subject, m.Text, m.HTML
	msg.UnsubscribeURL = unsubscribeURL
	msg.From = text.FirstNonEmpty(c.Organization.SenderEmail, e.o.EmailFrom)
	msg.FromName = text.FirstNonEmpty(c.Organization.SenderName, c.Organization.Name, e.o.EmailFromName)
	msg.ReplyTo = text.FirstNonEmpty(c.Organization.ReplyToEmail, c.Organization.SenderEmail)
	return nil
}

// renderFailed ends a run whose message could not be rendered, with the
// error's code (shared/render: content_too_large for a part over its
// limit, template_error for the template; both permanent). The error names
// the part and the limit (or the template problem), never the content.
func (e *Engine) renderFailed(r *run, channel automation.Channel, err error) {
	code := automation.ErrorCode(err)
	r.finish(automation.OutcomeFailed, code, err.Error())
	r.log.Warn("message not rendered", "step_index", r.step, "channel", channel, "error_code", code, "error", err.Error())
}

// wave sends every run's current message (one per run, a step wave). The
// messages are recorded in the ledger and sent in chunks of at most
// LedgerChunk: each chunk is begun with one automation_record_deliveries
// call just before its sends, and the next chunk is begun once they have all
// returned, by the call that also finishes them (finished carries their
// answers from one chunk, or wave, to the next). A crash therefore leaves at
// most one chunk (LedgerChunk deliveries) begun and not finished (ambiguous on the next attempt,
// never re-sent), instead of every delivery of the batch.
func (e *Engine) wave(ctx context.Context, rs []*run, cutoff time.Time, finished *[]automation.DeliveryFinished) {
	for i := 0; i < len(rs); i += e.o.LedgerChunk {
		chunk := rs[i:min(i+e.o.LedgerChunk, len(rs))]
		var code automation.Code
		msg := ""
		switch {
		case !e.o.Now().Before(cutoff):
			code, msg = automation.CodeDeadline, "stopped before the function's deadline"
		case !e.chunk(ctx, chunk, cutoff, finished):
			code, msg = automation.CodeInternal, "not begun: the ledger failed for an earlier chunk"
			i += len(chunk) // that chunk has its outcome
		}
		if code != "" {
			// Nothing of the rest was begun: tried again on the next attempt.
			for _, r := range rs[i:] {
				r.finish(automation.OutcomeRetry, code, msg)
				r.intent = nil
			}
			return
		}
	}
}

// chunk records the runs' current messages in the ledger with one call that
// also finishes the previous chunk's deliveries (*finished), then sends the
// new ones, at most Concurrency at once (len(rs) <= LedgerChunk), and leaves their answers in
// *finished for the next call. It answers false when the ledger call failed
// (every run then has a retry outcome; *finished is kept: the next call or
// the report records it).
func (e *Engine) chunk(ctx context.Context, rs []*run, cutoff time.Time, finished *[]automation.DeliveryFinished) bool {
	begun, ok := e.begin(ctx, rs, *finished)
	if !ok {
		return false
	}
	*finished = nil
	// results[:mark] were finished before this chunk
	marks := make([]int, len(rs))
	for i, r := range rs {
		marks[i] = len(r.results)
	}
	// Sends end before the request's deadline, leaving time for the report.
	sendCtx, cancel := e.beforeDeadline(ctx)
	defer cancel()
	var wg sync.WaitGroup
	slots := make(chan struct{}, e.o.Concurrency)
	for i, r := range rs {
		b := begun[i]
		if b.IdempotencyKey != r.intent.IdempotencyKey {
			r.finish(automation.OutcomeRetry, automation.CodeInternal, "begin deliveries answered out of order")
			continue
		}
		if b.State != automation.BeginNew {
			e.begunBefore(ctx, r, b)
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			e.send(sendCtx, r, cutoff)
		}()
	}
	wg.Wait()
	for i, r := range rs {
		ex := r.c.Execution
		for _, res := range r.results[marks[i]:] {
			*finished = append(*finished, automation.DeliveryFinished{ExecutionID: ex.ID, LeaseToken: ex.LeaseToken, DeliveryResult: res})
		}
		r.intent = nil
	}
	return true
}

// beforeDeadline bounds ctx by the request's deadline minus Margin/2: the
// ledger calls and the sends end then, leaving time for the report.
func (e *Engine) beforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-e.o.Margin/2))
	}
	return ctx, func() {}
}

// begin records the runs' current messages in the ledger with one call
// that also finishes the previous chunk's deliveries, answering one
// DeliveryBegun per run in order; ok false when the call failed (every run
// then has a retry outcome).
func (e *Engine) begin(ctx context.Context, rs []*run, finished []automation.DeliveryFinished) (begun []automation.DeliveryBegun, ok bool) {
	intents := make([]automation.DeliveryIntent, len(rs))
	for i, r := range rs {
		intents[i] = *r.intent
	}
	// A slow database must not eat the report's time.
	ledgerCtx, cancel := e.beforeDeadline(ctx)
	defer cancel()
	begun, err := e.o.Store.RecordDeliveries(ledgerCtx, finished, intents)
	if err == nil && len(begun) != len(intents) {
		err = fmt.Errorf("%d answers for %d deliveries", len(begun), len(intents))
	}
	if err == nil {
		return begun, true
	}
	// A database error's details may quote a row (its recipient): masked.
	emsg := redact.Text(err.Error())
	e.o.Logger.ErrorContext(ctx, "record deliveries failed", "action", e.o.Action, "deliveries", len(intents),
		"finished", len(finished), "error", emsg)
	for _, r := range rs {
		// The provider was not called, and nothing is reported for these
		// deliveries: their ledger rows may be an earlier attempt's
		// (unknown, sending), which a "failed, retryable" result would
		// re-arm and so send twice. Should this call have committed after
		// all, its rows stay "sending" and the next attempt records them
		// unknown (at most once: lost, flagged, never sent twice).
		r.finish(automation.OutcomeRetry, automation.CodeInternal, "ledger: "+text.Truncate(emsg, 300))
		r.intent = nil
	}
	return nil, false
}

// begunBefore handles a delivery the ledger did not begin as new: sent
// before (the step is done), ambiguous (recorded unknown, never re-sent),
// failed, invalid or expired (the run ends), stale (the lease is lost).
func (e *Engine) begunBefore(ctx context.Context, r *run, b automation.DeliveryBegun) {
	switch b.State {
	case automation.BeginSent:
		r.sent++
		r.step++
		r.log.InfoContext(ctx, "already sent; not sending again", "channel", r.intent.Channel, "step_index", r.intent.StepIndex)
	case automation.BeginAmbiguous:
		r.unknown = true
		r.results = append(r.results, automation.DeliveryResult{IdempotencyKey: b.IdempotencyKey,
			Status: automation.DeliveryUnknown, Provider: r.intent.Provider, ErrorCode: automation.CodeDeliveryUnknown,
			ErrorMessage: "an earlier attempt began this delivery and never finished it; not sent again"})
		r.step++
		r.log.WarnContext(ctx, "delivery ambiguous; not sending again", "channel", r.intent.Channel, "step_index", r.intent.StepIndex)
	case automation.BeginFailed:
		r.finish(automation.OutcomeFailed, automation.CodeProviderRejected, "delivery failed permanently on an earlier attempt")
	case automation.BeginInvalid:
		r.finish(automation.OutcomeFailed, automation.CodeInternal, "the ledger refused the delivery as invalid; not sent")
	case automation.BeginExpired:
		r.finish(automation.OutcomeFailed, automation.CodeExpired, "deadline passed before the message could be sent")
	case automation.BeginStale:
		r.stale = true
	default:
		r.finish(automation.OutcomeRetry, automation.CodeInternal, "unexpected ledger state "+strconv.Quote(string(b.State)))
	}
}

// send hands one message to its provider and records the result.
func (e *Engine) send(ctx context.Context, r *run, cutoff time.Time) {
	in := r.intent
	res := automation.DeliveryResult{IdempotencyKey: in.IdempotencyKey, Provider: in.Provider}
	if !e.o.Now().Before(cutoff) {
		res.Status, res.Retryable = automation.DeliveryFailed, true
		res.ErrorCode, res.ErrorMessage = automation.CodeDeadline, "not sent: function deadline"
		r.results = append(r.results, res)
		r.finish(automation.OutcomeRetry, automation.CodeDeadline, "stopped before the function's deadline")
		return
	}
	start := e.o.Now()
	out, err := r.sender.Send(ctx, r.msg)
	took := e.o.Now().Sub(start)
	e.pace.observeSend(in.Channel, took)
	if r.calls == nil {
		r.calls = map[automation.Channel]int{}
	}
	r.calls[in.Channel]++
	if err != nil {
		log := r.log.With("channel", in.Channel, "step_index", in.StepIndex, "provider", in.Provider, "ms", took.Milliseconds())
		sendFailed(ctx, r, res, err, log)
		return
	}
	res.Status, res.ProviderMessageID = automation.DeliverySent, out.MessageID
	if out.Provider != "" {
		res.Provider = out.Provider
	}
	r.results = append(r.results, res)
	r.sent++
	r.actions++
	r.step++
	// The same record as log in sendFailed gives, without building a
	// logger per message.
	r.log.InfoContext(ctx, "message sent", "channel", in.Channel, "step_index", in.StepIndex, "provider", in.Provider,
		"ms", took.Milliseconds(), "provider_message_id", out.MessageID)
}

// sendFailure is what a failed send is reported as: the delivery's status
// and retryability, the outcome's status, the code of both, and the
// provider's Retry-After hint.
type sendFailure struct {
	delivery   automation.DeliveryStatus
	retryable  bool
	outcome    automation.OutcomeStatus
	code       automation.Code
	retryAfter int
}

// classifySend maps a provider's error to its report (the engine's edge of
// the error codes) by its code (automation.ErrorCode): a failure after the
// hand-over (notify.IsAmbiguous), or one without a code (nobody classified
// it) that timed out, is a delivery unknown and a retry (timeout); a
// permanent code (invalid_recipient, provider_rejected) fails for good; a
// retryable one is kept (rate_limited, provider_unavailable, network,
// timeout, provider_auth: deferred, see deferrable) with the provider's
// Retry-After hint; an error without a code is provider_error and spends
// an attempt. ctx is the send's context.
func classifySend(ctx context.Context, err error) sendFailure {
	code := automation.ErrorCode(err)
	unclassified := code == automation.CodeInternal
	switch {
	case notify.IsAmbiguous(err) || (unclassified && (errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil)):
		// The provider may have accepted it. At most once: recorded
		// unknown, never re-sent. A classified error says itself whether
		// the message was handed over (a dial timeout was not: retried).
		// Deferred (timeout): the next attempt only finishes the steps left.
		return sendFailure{delivery: automation.DeliveryUnknown, outcome: automation.OutcomeRetry, code: notify.CodeTimeout}
	case !notify.Retryable(code):
		return sendFailure{delivery: automation.DeliveryFailed, outcome: automation.OutcomeFailed, code: code}
	case unclassified:
		code = automation.CodeProviderError
	}
	return sendFailure{delivery: automation.DeliveryFailed, retryable: true, outcome: automation.OutcomeRetry, code: code,
		retryAfter: notify.RetryAfter(err)}
}

// sendFailed records a failed send (classifySend) in r: its delivery
// result, its outcome, and the log line.
func sendFailed(ctx context.Context, r *run, res automation.DeliveryResult, err error, log *slog.Logger) {
	f := classifySend(ctx, err)
	// What is logged and stored: a provider failure (notify.Fail) masks its
	// provider's text itself; any other error is masked here (redact.Text).
	msg := text.Truncate(redact.Text(err.Error()), 500)
	res.Status, res.Retryable, res.ErrorCode, res.ErrorMessage = f.delivery, f.retryable, f.code, msg
	r.results = append(r.results, res)
	r.finish(f.outcome, f.code, msg)
	r.outcome.RetryAfterSecs = f.retryAfter
	switch {
	case f.delivery == automation.DeliveryUnknown:
		log.WarnContext(ctx, "send timed out; delivery unknown", "error", msg)
	case f.outcome == automation.OutcomeFailed:
		log.WarnContext(ctx, "send failed permanently", "error", msg)
	case f.code == notify.CodeAuth:
		// Credentials or sender configuration refused: every send of this
		// provider fails until an operator fixes it. Deferred (bounded by
		// the deadline and max_deferrals) and logged at error level.
		var pe *notify.Error
		if !errors.As(err, &pe) {
			pe = &notify.Error{} // provider_auth without a provider's detail
		}
		log.ErrorContext(ctx, "provider refused credentials or sender configuration; will retry", "provider", pe.Provider, "status_code", pe.StatusCode, "error", msg)
	default:
		log.WarnContext(ctx, "send failed; will retry", "error_code", f.code, "retry_after_seconds", f.retryAfter, "error", msg)
	}
}
