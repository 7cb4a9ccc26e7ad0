package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/fakestore"
	"github.com/dueflow/dueflow/shared/automation"
)

// fastDecodeDocs are claim documents of every kind the slow path tells
// apart: readable, unreadable at several places, without id or lease, with
// a workflow that breaks the rules or is not an object, absent or null.
func fastDecodeDocs(t testing.TB) []string {
	c := invoiceDoc(automation.Step{Type: automation.StepSendEmail, Subject: "Hi {{client.first_name}}"})
	c.Workflow.TriggerConfig = json.RawMessage(`{"days_after_due": [1, 7]}`)
	c.Execution.LeaseToken = uuid.New()
	c.Deliveries = []automation.Delivery{{StepIndex: 0, Channel: "email", Status: automation.DeliverySent, IdempotencyKey: "k"}}
	good, err := json.Marshal(c)
	require.NoError(t, err)
	g := string(good)
	id := uuid.NewString()
	lease := uuid.NewString()
	set := func(doc map[string]any) string {
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		return string(b)
	}
	base := func() map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(good, &m))
		ex := m["execution"].(map[string]any)
		ex["id"], ex["lease_token"] = id, lease
		return m
	}
	docs := []string{g, set(base()), `{}`, `null`, `[]`, `{"execution":{"id":"` + id + `","lease_token":"` + lease + `"}}`}
	for _, mangle := range []func(m map[string]any){
		func(m map[string]any) { m["execution"].(map[string]any)["attempt"] = "x" },
		func(m map[string]any) { m["execution"].(map[string]any)["lease_token"] = 42 },
		func(m map[string]any) { delete(m["execution"].(map[string]any), "id") },
		func(m map[string]any) { m["workflow"] = nil },
		func(m map[string]any) { delete(m, "workflow") },
		func(m map[string]any) { m["workflow"] = "an object?" },
		func(m map[string]any) { m["workflow"] = []any{1} },
		func(m map[string]any) {
			m["workflow"].(map[string]any)["steps"] = []any{map[string]any{"type": "delay", "days": "1"}}
		},
		func(m map[string]any) {
			m["workflow"].(map[string]any)["steps"] = []any{map[string]any{"type": "send_email", "subject": 5}}
		},
		func(m map[string]any) { m["workflow"].(map[string]any)["trigger_type"] = 7 },
		func(m map[string]any) { m["workflow"].(map[string]any)["trigger_config"] = "no" },
		func(m map[string]any) { m["workflow"].(map[string]any)["is_active"] = "yes" },
		func(m map[string]any) { m["workflow"].(map[string]any)["id"] = "not-a-uuid" },
		func(m map[string]any) { m["client"] = "someone" },
		func(m map[string]any) { m["deliveries"] = map[string]any{} },
		func(m map[string]any) { m["organization"].(map[string]any)["name"] = 3 },
		func(m map[string]any) { m["workflow"].(map[string]any)["steps"] = nil },
		func(m map[string]any) { m["workflow"].(map[string]any)["steps"] = []any{} },
	} {
		m := base()
		mangle(m)
		docs = append(docs, set(m))
	}
	return append(docs, g[:len(g)/2], strings.Replace(g, `"workflow"`, `"workflow":{},"x"`, 1))
}

// checkFastDecode asserts that the fast path accepts only a document the
// slow path accepts (id and lease token, no workflow problem, decodable)
// and then decodes it to the same Claimed.
func checkFastDecode(t *testing.T, b batchWorkflows, doc string) (accepted bool) {
	raw := json.RawMessage(doc)
	fast, ok := b.decodeFast(raw)
	var h claimHeader
	headerOK := json.Unmarshal(raw, &h) == nil && h.Execution.ID != uuid.Nil && h.Execution.LeaseToken != uuid.Nil
	problems := claimedProblems(raw)
	slow, err := decodeClaimed(raw)
	slowOK := headerOK && len(problems) == 0 && err == nil
	if !ok {
		// Declining is always safe (the slow path decides); it must not
		// decline a good document, or the fast path is pointless.
		assert.False(t, slowOK, "fast path declined a document the slow path accepts: %s", doc)
		return false
	}
	require.True(t, slowOK, "fast path accepted a document the slow path refuses (header %v, problems %v, err %v): %s", headerOK, problems, err, doc)
	assert.Equal(t, slow, fast)
	return true
}

func TestFastDecodeMatchesSlow(t *testing.T) {
	b := batchWorkflows{}
	docs := fastDecodeDocs(t)
	for range 2 { // the second round answers from the batch's workflows
		accepted := 0
		for _, doc := range docs {
			if checkFastDecode(t, b, doc) {
				accepted++
			}
		}
		// the good document, the same with other ids, and with no steps
		// (the action's defaults)
		assert.Equal(t, 3, accepted)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, doc := range fastDecodeDocs(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		checkFastDecode(t, batchWorkflows{}, doc)
	})
}

// BenchmarkDecodeRuns: the claim documents of a batch of 100 invoice
// reminders (one workflow and organisation) to runs, per document.
func BenchmarkDecodeRuns(b *testing.B) {
	docs := make([]json.RawMessage, 100)
	for i := range docs {
		c := invoiceDoc()
		c.Workflow.Steps = []automation.Step{}
		c.Execution.LeaseToken = uuid.New()
		c.Workflow.TriggerConfig = json.RawMessage(`{"days_after_due": [1]}`)
		raw, err := json.Marshal(c)
		require.NoError(b, err)
		docs[i] = raw
	}
	eng, err := New(Options{Action: automation.ActionInvoiceReminder, Store: fakestore.New(),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += len(docs) {
		runs := eng.decodeRuns(context.Background(), docs[:min(len(docs), b.N-done)])
		if runs[0].outcome != nil {
			b.Fatal(runs[0].outcome)
		}
	}
}
