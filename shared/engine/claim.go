package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/text"
	"github.com/dueflow/dueflow/shared/workflow"
)

// maxProblemsMessage bounds the error message of an invalid workflow.
const maxProblemsMessage = 2000

// claimHeader is the least of a claim document the engine needs to report
// on it: which execution, under which lease.
type claimHeader struct {
	Execution struct {
		ID         uuid.UUID `json:"id"`
		LeaseToken uuid.UUID `json:"lease_token"`
	} `json:"execution"`
}

// claimLogIDs are the ids logged with an execution, read on a best-effort
// basis (a field of the wrong type is left out).
type claimLogIDs struct {
	Execution struct {
		WorkflowID     string `json:"workflow_id"`
		OrganizationID string `json:"organization_id"`
	} `json:"execution"`
}

// claimWorkflow is what the workflow rules are checked on, as the claim
// answer's workflow member has it.
type claimWorkflow struct {
	TriggerType   json.RawMessage `json:"trigger_type"`
	TriggerConfig json.RawMessage `json:"trigger_config"`
	Steps         json.RawMessage `json:"steps"`
}

// decodeRuns turns the claim answer into runs, one document at a time: a
// document that cannot be read, or whose workflow breaks the rules, becomes
// a run that is already failed (invalid_execution, invalid_workflow) under
// the id and lease token it still has; one without a readable id and lease
// token is logged (its position only) and left to its lease expiry. The
// rest of the batch is unaffected.
func (e *Engine) decodeRuns(ctx context.Context, docs []json.RawMessage) []*run {
	runs := make([]*run, 0, len(docs))
	wfs := batchWorkflows{}
	for i, raw := range docs {
		if c, ok := wfs.decodeFast(raw); ok {
			runs = append(runs, e.newRun(ctx, c))
			continue
		}
		var h claimHeader
		if err := json.Unmarshal(raw, &h); err != nil || h.Execution.ID == uuid.Nil || h.Execution.LeaseToken == uuid.Nil {
			e.o.Logger.ErrorContext(ctx, "claimed document without a readable execution id and lease token; left to its lease expiry",
				"action", e.o.Action, "index", i, "claimed", len(docs))
			continue
		}
		var ids claimLogIDs
		_ = json.Unmarshal(raw, &ids) // for the log only
		log := e.o.Logger.With("execution_id", h.Execution.ID, "workflow_id", ids.Execution.WorkflowID,
			"organization_id", ids.Execution.OrganizationID, "action", e.o.Action)
		failed := func(code automation.Code, msg string) *run {
			r := &run{c: &automation.Claimed{Execution: automation.Execution{ID: h.Execution.ID, LeaseToken: h.Execution.LeaseToken}},
				log: log, skips: map[string]int{}}
			r.finish(automation.OutcomeFailed, code, msg)
			return r
		}

		if problems := claimedProblems(raw); len(problems) > 0 {
			log.WarnContext(ctx, "claimed workflow breaks the workflow rules; execution failed",
				"error_code", automation.CodeInvalidWorkflow, "problems", len(problems))
			runs = append(runs, failed(automation.CodeInvalidWorkflow, text.Truncate(strings.Join(problems, "; "), maxProblemsMessage)))
			continue
		}
		c, err := decodeClaimed(raw)
		if err != nil {
			log.ErrorContext(ctx, "claimed document unreadable; execution failed",
				"error_code", automation.CodeInvalidExecution, "error", err.Error())
			runs = append(runs, failed(automation.CodeInvalidExecution, err.Error()))
			continue
		}
		runs = append(runs, e.newRun(ctx, c))
	}
	return runs
}

// claimedProblems validates the document's workflow against the workflow
// rules (shared/workflow), as the database did when it was written.
func claimedProblems(raw json.RawMessage) []string {
	var doc struct {
		Workflow json.RawMessage `json:"workflow"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []string{"workflow: must be an object"}
	}
	return workflowProblems(doc.Workflow)
}

// workflowProblems validates a claim document's workflow member (raw JSON;
// empty when the member is absent, as null).
func workflowProblems(raw json.RawMessage) []string {
	var w claimWorkflow
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &w); err != nil {
			return []string{"workflow: must be an object"}
		}
	}
	var triggerType string
	_ = json.Unmarshal(w.TriggerType, &triggerType) // not a string: "" (reported)
	return workflow.Validate(triggerType, nullIsAbsent(w.TriggerConfig), nullIsAbsent(w.Steps))
}

// nullIsAbsent maps JSON null to nil (SQL NULL) for workflow.Validate.
func nullIsAbsent(raw json.RawMessage) json.RawMessage {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return raw
}

// decodeClaimed decodes one claim document. Its error names the field path
// that cannot be read and the type expected there, never the value.
func decodeClaimed(raw json.RawMessage) (*automation.Claimed, error) {
	var c automation.Claimed
	err := json.Unmarshal(raw, &c)
	if err == nil {
		return &c, nil
	}
	return nil, errors.New("claimed document unreadable at " + unreadablePath(raw, err))
}

// unreadablePath locates a decode error: the full path of a type error, or
// else the top-level member that fails to decode alone.
func unreadablePath(raw json.RawMessage, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " (want " + te.Type.String() + ")"
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil {
		return "the document (want an object)"
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		one, _ := json.Marshal(map[string]json.RawMessage{k: members[k]})
		var probe automation.Claimed
		if json.Unmarshal(one, &probe) != nil {
			return text.Truncate(k, 64)
		}
	}
	return "the document"
}
