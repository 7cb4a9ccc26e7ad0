package pgtest

import (
	"context"
	"encoding/json"
	"testing"
)

// Int runs a query returning one integer (a count, a check's result) and
// fails the test on error.
func Int(t testing.TB, db DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("pgtest: %s: %v", q, err)
	}
	return n
}

// Text runs a query returning one text value and fails the test on error.
func Text(t testing.TB, db DB, q string, args ...any) string {
	t.Helper()
	var s string
	if err := db.QueryRow(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("pgtest: %s: %v", q, err)
	}
	return s
}

// Exec runs a statement and fails the test on error.
func Exec(t testing.TB, db DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", q, err)
	}
}

// JSON runs a query returning one json/jsonb value and decodes it into a T.
func JSON[T any](t testing.TB, db DB, q string, args ...any) T {
	t.Helper()
	var raw []byte
	if err := db.QueryRow(context.Background(), q, args...).Scan(&raw); err != nil {
		t.Fatalf("pgtest: %s: %v", q, err)
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("pgtest: decode %s: %v", raw, err)
	}
	return out
}
