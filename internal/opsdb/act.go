package opsdb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// Actions an operator may take (automation_operator_act's p_action).
const (
	Retry         = "retry"
	Cancel        = "cancel"
	SettleSent    = "settle_sent"
	SettleNotSent = "settle_not_sent"
	Pause         = "pause"
	Resume        = "resume"
)

// Answer is what automation_operator_act answered.
type Answer struct {
	Applied     bool   `json:"applied"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	ExecutionID string `json:"execution_id"`
}

// Reasons explains the refusals of the operator functions.
var Reasons = map[string]string{
	"not_found":         "no row has this id",
	"not_finished":      "it has not finished: only failed, cancelled or skipped executions (or completed ones settled not sent) can be retried",
	"not_open":          "it has finished: only pending or running executions can be cancelled",
	"legacy":            "a row of the replaced system: dueflow's checks create what is still due",
	"past_deadline":     "its deadline has passed: it would only expire again",
	"not_unknown":       "its fate is known (sent or failed): nothing to settle",
	"already_settled":   "it was settled before",
	"execution_running": "its execution is running: its function may still record the answer; try again once it has ended",
	"missing_by":        "who did it is required",
	"unchanged":         "it already is",
	"unknown_action":    "unknown action",
}

// Why is the reason of a refusal in words.
func (a Answer) Why() string {
	if s, ok := Reasons[a.Reason]; ok {
		return s
	}
	return a.Reason
}

// Act applies action to id (an execution, a delivery for settle, a workflow
// for pause and resume) as by, recorded in automation_operator_actions.
func Act(ctx context.Context, db DB, action string, id uuid.UUID, by, reason string) (Answer, error) {
	var raw []byte
	var r *string
	if reason != "" {
		r = &reason
	}
	if err := db.QueryRow(ctx, `select public.automation_operator_act($1, $2, $3, $4)`, action, id, by, r).Scan(&raw); err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", action, id, err)
	}
	var a Answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return Answer{}, fmt.Errorf("%s %s: read the answer: %w", action, id, err)
	}
	return a, nil
}
