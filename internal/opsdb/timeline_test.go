package opsdb

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func lines(ev []Event) string {
	var b strings.Builder
	for _, e := range ev {
		b.WriteString(e.Kind + "|" + e.Status + "|" + e.Text + "\n")
	}
	return b.String()
}

func at(t0 time.Time, s int) *time.Time {
	v := t0.Add(time.Duration(s) * time.Second)
	return &v
}

// With a recorded history, every attempt shows its dispatch, claim and
// report, the first attempt's error too; the row's latest claim is not
// shown again and the move to the final status is said once.
func TestTimelineFromHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	d := Detail{Execution: Execution{Action: "invoice-reminder", TriggerType: "invoice_overdue", Status: "completed",
		Attempt: 2, MaxAttempts: 5, ActionsCount: 1, CreatedAt: t0, UpdatedAt: *at(t0, 400),
		DispatchedAt: at(t0, 300), DispatchCount: 4, StartedAt: at(t0, 301), CompletedAt: at(t0, 302)}}
	d.History = []HistoryEvent{
		{At: *at(t0, 3), Kind: "reported", Attempt: 1, Status: "pending", Outcome: "retry", From: "running",
			ErrorCode: "provider_retryable", ErrorMessage: "503 from provider", NextAttemptAt: at(t0, 63),
			ClaimedAt: at(t0, 2), LeaseExpiresAt: at(t0, 62), DispatchedAt: at(t0, 1), DispatchCount: 1},
		{At: *at(t0, 302), Kind: "reported", Attempt: 2, Status: "completed", Outcome: "completed", From: "running",
			ClaimedAt: at(t0, 301), LeaseExpiresAt: at(t0, 361), DispatchedAt: at(t0, 300), DispatchCount: 4},
	}
	got := lines(timeline(d, *at(t0, 1000)))
	assert.Equal(t, `created||created by the invoice_overdue check ( , occurrence )
dispatched||dispatched to invoice-reminder (dispatch 1)
claimed||claimed by the invoice-reminder function: attempt 1 of 5, step 0, lease until 2026-12-02T10:01:02Z
reported|warn|reported: retry after attempt 1 (provider_retryable: 503 from provider), due again 2026-12-02T10:01:03Z
dispatched||dispatched to invoice-reminder (dispatch 4; 2 dispatches since the last claim went unclaimed)
claimed||claimed by the invoice-reminder function: attempt 2 of 5, step 0, lease until 2026-12-02T10:06:01Z
final|ok|reported: completed after 2 attempts, 1 actions
`, got)
}

// Without a history (rows from before it was recorded), the row's latest
// dispatch and claim show, as before.
func TestTimelineWithoutHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	d := Detail{Execution: Execution{Action: "send-reminder", TriggerType: "stale_job", Status: "running",
		Attempt: 3, MaxAttempts: 5, StepIndex: 1, CreatedAt: t0, DispatchedAt: at(t0, 10), DispatchCount: 4,
		StartedAt: at(t0, 11), LeaseExpiresAt: at(t0, 71)}}
	got := lines(timeline(d, *at(t0, 100)))
	assert.Equal(t, `created||created by the stale_job check ( , occurrence )
dispatched||dispatched to send-reminder (dispatch 4; the latest shown)
claimed||claimed by the send-reminder function: attempt 3 of 5, step 1, lease until 2026-12-02T10:01:11Z (expired)
`, got)
}

// A cut history says so; snoozes, deferrals, lease expiries and other
// moves each read as what happened; the attempt running now comes from
// the row, its lease marked expired.
func TestTimelineKindsAndCut(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	d := Detail{Execution: Execution{Action: "send-reminder", TriggerType: "appointment", Status: "running",
		Attempt: 1, MaxAttempts: 3, Deferrals: 1, StepIndex: 1, CreatedAt: t0, StartedAt: at(t0, 50), LeaseExpiresAt: at(t0, 60)}}
	d.HistoryCut = 7
	d.History = []HistoryEvent{
		{At: *at(t0, 10), Kind: "snoozed", Attempt: 1, FromStep: 0, StepIndex: 1, Status: "pending", Outcome: "snoozed",
			NextAttemptAt: at(t0, 3600), ClaimedAt: at(t0, 9)},
		{At: *at(t0, 20), Kind: "reported", Attempt: 1, StepIndex: 1, Status: "pending", Outcome: "deferred", Deferrals: 1,
			ErrorCode: "provider_retryable", ClaimedAt: at(t0, 19)},
		{At: *at(t0, 30), Kind: "lease_expired", Attempt: 1, StepIndex: 1, Status: "pending", ErrorCode: "lease_expired", ClaimedAt: at(t0, 29)},
		{At: *at(t0, 40), Kind: "status", Status: "cancelled", From: "pending", ErrorCode: "cancelled"},
		{At: *at(t0, 45), Kind: "status", Status: "pending", From: "cancelled"},
	}
	got := lines(timeline(d, *at(t0, 100)))
	assert.Equal(t, `created||created by the appointment check ( , occurrence )
note|warn|7 earlier events not shown (the latest 5 are)
claimed||claimed by the send-reminder function: attempt 1 of 3, step 0
snoozed||snoozed after step 0 (attempt 1 given back): resumes at step 1, due again 2026-12-02T11:00:00Z
claimed||claimed by the send-reminder function: attempt 1 of 3, step 1
reported|warn|reported: deferred (attempt 1 given back, deferral 1) (provider_retryable)
claimed||claimed by the send-reminder function: attempt 1 of 3, step 1
lease_expired|error|lease of attempt 1 expired without a report: pending
status|warn|status pending -> cancelled (cancelled)
status||status cancelled -> pending
claimed||claimed by the send-reminder function: attempt 1 of 3, step 1, lease until 2026-12-02T10:01:00Z (expired)
`, got, "no deferral summary: the history shows each")
}
