package engine

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/automation"
)

// The fast path of decodeRuns: a readable document with a valid workflow
// is decoded in one pass, and each distinct workflow of the batch (the
// claim repeats the same workflow object in every document of it) is
// checked against the workflow rules and decoded once. Every other document
// (unreadable, without id or lease token, or with a workflow that breaks
// the rules or cannot be decoded) takes the slow path of decodeRuns, which
// says what is wrong with it; the fast path only ever accepts a document
// that the slow path would have accepted, with the same result
// (TestFastDecodeMatchesSlow, FuzzFastDecode).

// claimDoc is a claim document with its workflow kept raw: the outer
// Workflow field hides the embedded Claimed.Workflow from encoding/json,
// so every other member of automation.Claimed (today's and any added later)
// is decoded as it is by decodeClaimed.
type claimDoc struct {
	automation.Claimed
	Workflow json.RawMessage `json:"workflow"`
}

// batchWorkflows holds the workflows of one batch already looked at, by
// their raw JSON.
type batchWorkflows map[string]*batchWorkflow

// batchWorkflow is one distinct workflow of a batch: decoded and valid
// (ok), or not (its documents take the slow path).
type batchWorkflow struct {
	wf automation.Workflow
	ok bool
}

// decodeFast decodes raw in one pass when it is readable, has an execution
// id and a lease token, and its workflow follows the rules and decodes; ok
// false otherwise (nothing is logged: the caller takes the slow path). The
// Workflow of the result shares its steps and trigger config with the other
// documents of the same workflow: read only.
func (b batchWorkflows) decodeFast(raw json.RawMessage) (*automation.Claimed, bool) {
	var d claimDoc
	if json.Unmarshal(raw, &d) != nil || d.Execution.ID == uuid.Nil || d.Execution.LeaseToken == uuid.Nil {
		return nil, false
	}
	w := b[string(d.Workflow)]
	if w == nil {
		w = &batchWorkflow{}
		w.ok = len(workflowProblems(d.Workflow)) == 0 && json.Unmarshal(d.Workflow, &w.wf) == nil
		b[string(d.Workflow)] = w
	}
	if !w.ok {
		return nil, false
	}
	c := d.Claimed
	c.Workflow = w.wf
	return &c, true
}
