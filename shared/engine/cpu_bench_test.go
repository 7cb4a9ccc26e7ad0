package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// BenchmarkProcess measures the engine's own CPU per execution, without a
// database: a store that answers canned claim documents (the shape and
// size automation_claim answers for the invoice reminders of
// BenchmarkPipeline: one workflow and organisation, default templates) and
// accepts every ledger call and report at once. "count" sends nothing;
// "smtp" sends every message through the real smtpmail sender to the
// in-process SMTP sink (its CPU included).
//
//	go test -run '^$' -bench Process -benchmem ./shared/engine
func BenchmarkProcess(b *testing.B) {
	b.Run("count", func(b *testing.B) { benchProcess(b, false) })
	b.Run("smtp", func(b *testing.B) { benchProcess(b, true) })
}

func benchProcess(b *testing.B, smtp bool) {
	const batch = 100
	store := newCannedStore(batch)
	var sender notify.Sender = &countingSender{}
	var sink *discardSink
	if smtp {
		sink = startDiscardSink(b)
		ss, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: sink.port, TLS: smtpmail.TLSNone,
			From: "noreply@dueflow.test", Timeout: 10 * time.Second, MaxConnections: 8})
		require.NoError(b, err)
		b.Cleanup(func() { _ = ss.Close() })
		sender = ss
	}
	eng, err := engine.New(engine.Options{Action: automation.ActionInvoiceReminder, Store: store, Email: sender,
		Concurrency: 8, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		sum, err := eng.Process(context.Background(), automation.Request{Action: automation.ActionInvoiceReminder,
			ExecutionIDs: store.ids[:n]})
		if err != nil || sum.Completed != n {
			b.Fatalf("summary %+v, %v", sum, err)
		}
	}
	// CPU time is what a shared machine's load does not inflate.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/exec")
}

// cannedStore answers automation_claim with fixed documents and accepts
// every ledger call and report.
type cannedStore struct {
	ids  []uuid.UUID
	docs []json.RawMessage
}

// cannedDoc is a claim document as automation_claim builds it (jsonb text,
// keys in jsonb order) for an invoice reminder.
const cannedDoc = `{"job": null, "client": {"id": "%[2]s", "email": "client%[3]d@bench.test", "phone": "", "last_name": "Client", "first_name": "Ada", "sms_opt_out": false, "email_opt_out": false}, "invoice": {"id": "%[4]s", "total": "99.95", "number": "INV-%[3]d", "status": "overdue", "balance": "99.95", "currency": "USD", "due_date": "2026-11-22", "portal_url": "https://portal.test/inv"}, "workflow": {"id": "528373be-cf7b-46cb-84a3-51a0f276f10f", "name": "invoice_overdue workflow", "steps": [], "is_active": true, "trigger_type": "invoice_overdue", "trigger_config": {"days_after_due": [1]}}, "execution": {"id": "%[1]s", "action": "invoice-reminder", "attempt": 1, "client_id": "%[2]s", "step_index": 0, "subject_id": "%[4]s", "deadline_at": null, "lease_token": "%%[1]s", "workflow_id": "528373be-cf7b-46cb-84a3-51a0f276f10f", "max_attempts": 5, "subject_type": "invoice", "trigger_data": {}, "trigger_type": "invoice_overdue", "occurrence_key": "bench:%[4]s", "organization_id": "04e5df95-ef2a-4bc5-a96b-bb3c88e56059", "lease_expires_at": "%%[2]s"}, "deliveries": [], "organization": {"id": "04e5df95-ef2a-4bc5-a96b-bb3c88e56059", "name": "Org 387c4505", "phone": "+15555550100", "timezone": "America/New_York", "portal_url": "https://portal.test/org", "sender_name": "Org 387c4505", "country_code": "US", "sender_email": "office@35bd2bac.test", "reply_to_email": "", "send_window_end": "23:59:59.999999", "send_window_start": "00:00:00"}}`

func newCannedStore(n int) *cannedStore {
	s := &cannedStore{}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	for i := range n {
		id := uuid.New()
		s.ids = append(s.ids, id)
		doc := fmt.Sprintf(cannedDoc, id, uuid.New(), i, uuid.New())
		s.docs = append(s.docs, json.RawMessage(fmt.Sprintf(doc, uuid.New(), exp)))
	}
	return s
}

func (s *cannedStore) Claim(_ context.Context, r automation.ClaimRequest) ([]json.RawMessage, error) {
	return s.docs[:len(r.IDs)], nil
}

func (s *cannedStore) RecordDeliveries(_ context.Context, _ []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	out := make([]automation.DeliveryBegun, len(ds))
	for i, d := range ds {
		out[i] = automation.DeliveryBegun{IdempotencyKey: d.IdempotencyKey, State: automation.BeginNew}
	}
	return out, nil
}

func (s *cannedStore) Report(_ context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	out := make([]automation.Reported, len(os))
	for i, o := range os {
		out[i] = automation.Reported{ExecutionID: o.ExecutionID, Applied: true, Status: automation.Status(strings.ToLower(string(o.Status)))}
	}
	return out, nil
}
