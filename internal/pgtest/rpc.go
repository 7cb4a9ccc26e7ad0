package pgtest

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/automation"
)

// IDStrings renders ids for a uuid[] parameter; nil stays nil (SQL NULL).
func IDStrings(ids []uuid.UUID) []string {
	if ids == nil {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// Claim calls automation_claim(action, only, limit, leaseSeconds) and decodes
// the claim documents (only nil = any due execution of the action).
func Claim(t testing.TB, db DB, action string, only []uuid.UUID, limit, leaseSeconds int) []automation.Claimed {
	t.Helper()
	return JSON[[]automation.Claimed](t, db, `select coalesce(jsonb_agg(c), '[]') from automation_claim($1, $2::uuid[], $3, $4) c`,
		action, IDStrings(only), limit, leaseSeconds)
}

// Report calls automation_report with the outcomes and returns one result
// per outcome.
func Report(t testing.TB, db DB, outcomes ...automation.Outcome) []automation.Reported {
	t.Helper()
	out := JSON[[]automation.Reported](t, db, `select automation_report($1::jsonb)`, mustJSON(t, outcomes))
	if len(out) != len(outcomes) {
		t.Fatalf("pgtest: automation_report: %d results for %d outcomes", len(out), len(outcomes))
	}
	return out
}

// BeginDeliveries calls automation_begin_deliveries with the intents and
// returns one result per intent.
func BeginDeliveries(t testing.TB, db DB, intents ...automation.DeliveryIntent) []automation.DeliveryBegun {
	t.Helper()
	out := JSON[[]automation.DeliveryBegun](t, db, `select automation_begin_deliveries($1::jsonb)`, mustJSON(t, intents))
	if len(out) != len(intents) {
		t.Fatalf("pgtest: automation_begin_deliveries: %d results for %d intents", len(out), len(intents))
	}
	return out
}

// RecordDeliveries calls automation_record_deliveries: finishes the
// finished deliveries, begins the intents and returns one result per intent.
func RecordDeliveries(t testing.TB, db DB, finished []automation.DeliveryFinished, intents ...automation.DeliveryIntent) []automation.DeliveryBegun {
	t.Helper()
	if finished == nil {
		finished = []automation.DeliveryFinished{}
	}
	if intents == nil {
		intents = []automation.DeliveryIntent{}
	}
	out := JSON[[]automation.DeliveryBegun](t, db, `select automation_record_deliveries($1::jsonb, $2::jsonb)`,
		mustJSON(t, finished), mustJSON(t, intents))
	if len(out) != len(intents) {
		t.Fatalf("pgtest: automation_record_deliveries: %d results for %d intents", len(out), len(intents))
	}
	return out
}

// MakeDue moves every pending execution's next attempt into the past, so
// it can be claimed and dispatched now.
func MakeDue(t testing.TB, db DB) {
	t.Helper()
	Exec(t, db, `update automation_execution_logs set next_attempt_at = now() - interval '1 second' where status = 'pending'`)
}

// ExecutionIDs returns the ids of a workflow's executions in creation order
// (by id within one statement).
func ExecutionIDs(t testing.TB, db DB, workflow uuid.UUID) []uuid.UUID {
	t.Helper()
	return JSON[[]uuid.UUID](t, db, `select coalesce(jsonb_agg(id order by created_at, id), '[]') from automation_execution_logs where workflow_id = $1`, workflow)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("pgtest: encode: %v", err)
	}
	return string(b)
}

// ClaimDue makes every pending execution due, then claims ids for action
// with a lease of leaseSeconds, failing the test unless each of them was
// claimed.
func ClaimDue(t testing.TB, db DB, action string, ids []uuid.UUID, leaseSeconds int) []automation.Claimed {
	t.Helper()
	if len(ids) == 0 {
		t.Fatalf("pgtest: ClaimDue needs the ids to claim")
	}
	MakeDue(t, db)
	got := Claim(t, db, action, ids, len(ids), leaseSeconds)
	if len(got) != len(ids) {
		t.Fatalf("pgtest: claimed %d of %d executions", len(got), len(ids))
	}
	return got
}
