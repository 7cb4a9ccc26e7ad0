package opsdb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Delivery is one message of an execution (automation_deliveries),
// recipient masked.
type Delivery struct {
	ID                                 uuid.UUID
	StepIndex, Attempts                int
	Channel, Provider, Recipient       string
	Status, ProviderMessageID          string
	IdempotencyKey                     string
	ErrorCode, ErrorMessage, SettledBy string
	CreatedAt, UpdatedAt               time.Time
	SentAt, SettledAt                  *time.Time
}

// Settleable says whether an operator may settle it now (its fate unknown).
func (d Delivery) Settleable() bool { return d.Status == "unknown" || d.Status == "sending" }

// Action is one recorded operator action (automation_operator_actions).
type Action struct {
	At       time.Time
	Actor    string
	Action   string
	Applied  bool
	Reason   string
	Delivery *uuid.UUID
}

// Event is one line of an execution's timeline.
type Event struct {
	At     time.Time
	Kind   string // created, dispatched, claimed, delivery, reported, snoozed, lease_expired, status, deferral, operator, final, due, note
	Text   string
	Status string // ok, warn, error or "" (a CSS class)
}

// HistoryEvent is one recorded move of an execution
// (automation_execution_events): an attempt that ended (reported, snoozed,
// lease_expired), with its claim and the dispatch before it, or another
// status move (status).
type HistoryEvent struct {
	At                      time.Time
	Kind                    string // reported, snoozed, lease_expired, status
	Attempt, StepIndex      int
	Status, Outcome         string
	ErrorCode, ErrorMessage string
	ClaimedAt               *time.Time // the attempt's claim (nil: the move did not end an attempt)
	LeaseExpiresAt          *time.Time
	DispatchedAt            *time.Time // the dispatch before the claim, and its number
	DispatchCount           int
	From                    string     // the status before
	FromStep                int        // snoozed: the step that ran
	NextAttemptAt           *time.Time // left pending: due again then
	Deferrals               int        // deferred: the execution's count
}

// HistoryCap is how many of an execution's recorded events its page
// shows: the latest ones (an execution deferred through a long provider
// outage has up to automation_settings.max_deferrals of them).
const HistoryCap = 200

// Detail is one execution with everything its page shows.
type Detail struct {
	Execution
	TriggerData string // JSON, pretty-printed
	Claim       string // the claim document it is sent with, lease token and recipients hidden
	ClaimError  string // why the document could not be built (a source view failing on this row)
	Deliveries  []Delivery
	Actions     []Action
	History     []HistoryEvent // the latest HistoryCap, oldest first
	HistoryCut  int            // earlier events not read
	Timeline    []Event
}

// Open says whether the execution may be cancelled; Finished whether a
// retry may apply (the database decides: past deadline and legacy rows are
// refused there).
func (d Detail) Open() bool { return d.Status == "pending" || d.Status == "running" }

// Finished is true for failed, cancelled and skipped executions, and a
// completed one settled not sent.
func (d Detail) Finished() bool {
	return d.Status == "failed" || d.Status == "cancelled" || d.Status == "skipped" ||
		(d.Status == "completed" && d.ErrorCode == "settled_not_sent")
}

// GetDetail returns one execution with its trigger data, claim document,
// deliveries, recorded operator actions and timeline.
func GetDetail(ctx context.Context, db DB, id uuid.UUID) (Detail, error) {
	x, err := Get(ctx, db, id)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{Execution: x}
	var td []byte
	if err := db.QueryRow(ctx, `select trigger_data from public.automation_execution_logs where id = $1`, id).Scan(&td); err != nil {
		return d, fmt.Errorf("read trigger data of %s: %w", id, err)
	}
	d.TriggerData = rawJSON(td)
	// the document automation_claim_rows would hand over, built by the same
	// SQL function (automation_claim_documents) from the row as it is now,
	// masked by automation_claim_preview. A source view may fail on this row
	// (the claim isolates that too): the page shows why instead of failing.
	var claim *string
	if err := db.QueryRow(ctx, `select jsonb_pretty(public.automation_claim_preview($1))`, id).Scan(&claim); err != nil {
		d.ClaimError = "the claim document could not be built: " + err.Error()
	} else if claim == nil {
		d.ClaimError = "the claim document could not be built: its workflow is not its organisation's"
	} else {
		d.Claim = *claim
	}
	if d.Deliveries, err = readDeliveries(ctx, db, id); err != nil {
		return d, err
	}
	if d.Actions, err = readActions(ctx, db, id); err != nil {
		return d, err
	}
	if err := readHistory(ctx, db, &d); err != nil {
		return d, err
	}
	d.Timeline = timeline(d, time.Now())
	return d, nil
}

// readDeliveries reads the execution's deliveries, recipients masked.
func readDeliveries(ctx context.Context, db DB, id uuid.UUID) ([]Delivery, error) {
	rows, err := db.Query(ctx, `
select id, step_index, attempts, channel, provider, public.automation_mask_recipient(recipient), status,
       coalesce(provider_message_id, ''), idempotency_key, coalesce(error_code, ''), coalesce(error_message, ''),
       coalesce(settled_by, ''), created_at, updated_at, sent_at, settled_at
  from public.automation_deliveries where execution_id = $1
 order by step_index, created_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("read deliveries of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var v Delivery
		if err := rows.Scan(&v.ID, &v.StepIndex, &v.Attempts, &v.Channel, &v.Provider, &v.Recipient, &v.Status,
			&v.ProviderMessageID, &v.IdempotencyKey, &v.ErrorCode, &v.ErrorMessage, &v.SettledBy,
			&v.CreatedAt, &v.UpdatedAt, &v.SentAt, &v.SettledAt); err != nil {
			return nil, fmt.Errorf("read deliveries of %s: %w", id, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deliveries of %s: %w", id, err)
	}
	return out, nil
}

// readActions reads the operator actions on the execution.
func readActions(ctx context.Context, db DB, id uuid.UUID) ([]Action, error) {
	rows, err := db.Query(ctx, `
select at, actor, action, applied, coalesce(answer ->> 'reason', ''), delivery_id
  from public.automation_operator_actions where execution_id = $1 order by at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("read operator actions of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		if err := rows.Scan(&a.At, &a.Actor, &a.Action, &a.Applied, &a.Reason, &a.Delivery); err != nil {
			return nil, fmt.Errorf("read operator actions of %s: %w", id, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read operator actions of %s: %w", id, err)
	}
	return out, nil
}

// readHistory reads the latest HistoryCap recorded events of d, oldest
// first, and how many earlier ones there are.
func readHistory(ctx context.Context, db DB, d *Detail) error {
	rows, err := db.Query(ctx, `
select at, kind, coalesce(attempt, 0), coalesce(step_index, 0), coalesce(status, ''), coalesce(outcome, ''),
       coalesce(error_code, ''), coalesce(error_message, ''), claimed_at, lease_expires_at, dispatched_at,
       coalesce(dispatch_count, 0), coalesce(detail ->> 'from', ''), coalesce((detail ->> 'from_step')::int, 0),
       (detail ->> 'next_attempt_at')::timestamptz, coalesce((detail ->> 'deferrals')::int, 0),
       count(*) over () as total
  from public.automation_execution_events where execution_id = $1
 order by at desc, id desc limit $2`, d.ID, HistoryCap)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", d.ID, err)
	}
	defer rows.Close()
	total := 0
	for rows.Next() {
		var h HistoryEvent
		if err := rows.Scan(&h.At, &h.Kind, &h.Attempt, &h.StepIndex, &h.Status, &h.Outcome, &h.ErrorCode, &h.ErrorMessage,
			&h.ClaimedAt, &h.LeaseExpiresAt, &h.DispatchedAt, &h.DispatchCount, &h.From, &h.FromStep,
			&h.NextAttemptAt, &h.Deferrals, &total); err != nil {
			return fmt.Errorf("read history of %s: %w", d.ID, err)
		}
		d.History = append(d.History, h)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read history of %s: %w", d.ID, err)
	}
	slices.Reverse(d.History)
	d.HistoryCut = total - len(d.History)
	return nil
}

// timeline orders what the row, its recorded history, its deliveries and
// the recorded actions say happened. Each attempt of the history shows
// its dispatch, its claim and its report; the row adds the attempt running
// now (its latest dispatch and claim), and stands for the history where
// there is none (rows from before it was recorded). now marks a running
// claim's lease expired.
//
// Long: the execution page's story in time order: one add per kind of line, sharing the closures that order and count them
func timeline(d Detail, now time.Time) []Event {
	var ev []Event
	add := func(at *time.Time, kind, status, format string, args ...any) {
		if at != nil && !at.IsZero() {
			ev = append(ev, Event{At: *at, Kind: kind, Status: status, Text: fmt.Sprintf(format, args...)})
		}
	}
	created := d.CreatedAt
	add(&created, "created", "", "created by the %s check (%s %s, occurrence %s)", d.TriggerType, d.SubjectType, d.SubjectID, d.OccurrenceKey)
	if d.HistoryCut > 0 && len(d.History) > 0 {
		// before the first line the shown history gives
		h := d.History[0]
		at := h.At
		for _, t := range []*time.Time{h.ClaimedAt, h.DispatchedAt} {
			if t != nil && t.Before(at) {
				at = *t
			}
		}
		add(&at, "note", "warn", "%d earlier events not shown (the latest %d are)", d.HistoryCut, len(d.History))
	}
	// dispatches: each once, with the ones no claim followed counted
	shown := 0
	dispatch := func(at *time.Time, n int, latest string) {
		if at == nil || n <= shown {
			return
		}
		unclaimed := ""
		if shown > 0 && n-shown > 1 {
			unclaimed = fmt.Sprintf("; %d dispatches since the last claim went unclaimed", n-shown-1)
		}
		add(at, "dispatched", "", "dispatched to %s (dispatch %d%s%s)", d.Action, n, unclaimed, latest)
		shown = n
	}
	claim := func(at *time.Time, attempt, step int, lease *time.Time, running bool) {
		until := ""
		if lease != nil {
			until = ", lease until " + lease.UTC().Format(time.RFC3339)
			if running && lease.Before(now) {
				until += " (expired)"
			}
		}
		add(at, "claimed", "", "claimed by the %s function: attempt %d of %d, step %d%s", d.Action, attempt, d.MaxAttempts, step, until)
	}
	final := d.Status != "pending" && d.Status != "running"
	claims, deferred := 0, false
	for i, h := range d.History {
		if h.ClaimedAt != nil {
			dispatch(h.DispatchedAt, h.DispatchCount, "")
			step := h.StepIndex
			if h.Kind == "snoozed" {
				step = h.FromStep
			}
			claim(h.ClaimedAt, h.Attempt, step, h.LeaseExpiresAt, false)
			claims++
		}
		if h.Outcome == "deferred" {
			deferred = true
		}
		if final && i == len(d.History)-1 && h.Status == d.Status {
			// the move to the final status: the row's final line says it, with the counts
			continue
		}
		at := h.At
		if h.Kind == "status" {
			msg := "status " + h.Status
			if h.From != "" {
				msg = fmt.Sprintf("status %s -> %s", h.From, h.Status)
			}
			add(&at, "status", statusClass(h.Status), "%s%s", msg, errorText(h.ErrorCode, h.ErrorMessage))
			continue
		}
		text, st := reportText(h)
		add(&at, h.Kind, st, "%s", text)
	}
	// the row: the attempt running now, a dispatch not claimed yet, or
	// (no history) its latest dispatch and claim
	latest := ""
	if len(d.History) == 0 {
		latest = "; the latest shown"
	}
	dispatch(d.DispatchedAt, d.DispatchCount, latest)
	if d.StartedAt != nil && (d.Status == "running" || claims == 0) {
		if d.Attempt == 0 {
			// started_at outlives a retry, which resets the attempts
			add(d.StartedAt, "claimed", "", "claimed by the %s function (the latest claim before a retry reset the attempts)", d.Action)
		} else {
			claim(d.StartedAt, d.Attempt, d.StepIndex, d.LeaseExpiresAt, d.Status == "running")
		}
	}
	for _, v := range d.Deliveries {
		c := v.CreatedAt
		add(&c, "delivery", "", "step %d %s via %s to %s: begun (idempotency key %s)", v.StepIndex, v.Channel, v.Provider, v.Recipient, v.IdempotencyKey)
		switch v.Status {
		case "sent":
			add(v.SentAt, "delivery", "ok", "step %d %s sent, provider message id %s", v.StepIndex, v.Channel, v.ProviderMessageID)
		case "failed":
			u := v.UpdatedAt
			add(&u, "delivery", "error", "step %d %s failed: %s %s", v.StepIndex, v.Channel, v.ErrorCode, v.ErrorMessage)
		case "unknown":
			u := v.UpdatedAt
			add(&u, "delivery", "warn", "step %d %s unknown: the provider may have accepted it; settle it (sent / not sent)", v.StepIndex, v.Channel)
		case "sending":
			u := v.UpdatedAt
			add(&u, "delivery", "warn", "step %d %s still sending", v.StepIndex, v.Channel)
		}
		if v.SettledAt != nil {
			add(v.SettledAt, "operator", "", "step %d %s settled %s by %s", v.StepIndex, v.Channel, v.Status, v.SettledBy)
		}
	}
	for _, a := range d.Actions {
		at := a.At
		res := "applied"
		if !a.Applied {
			res = "refused: " + a.Reason
		}
		add(&at, "operator", "", "%s by %s: %s", a.Action, a.Actor, res)
	}
	if d.Deferrals > 0 && !deferred {
		u := d.UpdatedAt
		add(&u, "deferral", "warn", "deferred %d times for infrastructure trouble (provider outage, rate limit, deadline cut)", d.Deferrals)
	}
	switch d.Status {
	case "pending":
		n := d.NextAttemptAt
		what := "due"
		if d.Attempt > 0 {
			what = "reported back for a retry or snooze: due again"
		}
		add(&n, "due", "", "%s at this time (step %d, attempt %d of %d so far)", what, d.StepIndex, d.Attempt, d.MaxAttempts)
	case "running":
	default:
		at := d.CompletedAt
		if at == nil {
			u := d.UpdatedAt
			at = &u
		}
		msg := fmt.Sprintf("reported: %s after %d attempts, %d actions", d.Status, d.Attempt, d.ActionsCount)
		if d.ErrorCode != "" {
			msg += fmt.Sprintf(" (%s: %s)", d.ErrorCode, d.ErrorMessage)
		}
		add(at, "final", statusClass(d.Status), "%s", msg)
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At.Before(ev[j].At) })
	return ev
}

// reportText says what one ended attempt of the history did, and its CSS
// class.
func reportText(h HistoryEvent) (string, string) {
	due := ""
	if h.NextAttemptAt != nil && h.Status == "pending" {
		due = ", due again " + h.NextAttemptAt.UTC().Format(time.RFC3339)
	}
	switch {
	case h.Kind == "lease_expired":
		return fmt.Sprintf("lease of attempt %d expired without a report: %s%s", h.Attempt, h.Status, due), statusClass("failed")
	case h.Kind == "snoozed":
		return fmt.Sprintf("snoozed after step %d (attempt %d given back): resumes at step %d%s", h.FromStep, h.Attempt, h.StepIndex, due), ""
	case h.Outcome == "retry":
		return fmt.Sprintf("reported: retry after attempt %d%s%s", h.Attempt, errorText(h.ErrorCode, h.ErrorMessage), due), "warn"
	case h.Outcome == "deferred":
		return fmt.Sprintf("reported: deferred (attempt %d given back, deferral %d)%s%s", h.Attempt, h.Deferrals,
			errorText(h.ErrorCode, h.ErrorMessage), due), "warn"
	}
	return fmt.Sprintf("reported: %s, attempt %d%s", h.Outcome, h.Attempt, errorText(h.ErrorCode, h.ErrorMessage)), statusClass(h.Status)
}

// errorText is " (code: message)", or "" without a code.
func errorText(code, msg string) string {
	switch {
	case code == "":
		return ""
	case msg == "":
		return fmt.Sprintf(" (%s)", code)
	}
	return fmt.Sprintf(" (%s: %s)", code, msg)
}

// statusClass is the CSS class of a status reached.
func statusClass(status string) string {
	return map[string]string{"completed": "ok", "failed": "error", "cancelled": "warn"}[status]
}
