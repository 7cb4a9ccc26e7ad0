package workflow_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// corpusCase is one workflow of testdata/corpus.json with the problems both
// validators (Go and SQL) must give. A nil TriggerConfig or Steps is SQL
// NULL (the key is absent from the file).
type corpusCase struct {
	Name          string
	TriggerType   *string
	TriggerConfig json.RawMessage
	Steps         json.RawMessage
	Problems      []string
}

// loadCorpus reads testdata/corpus.json. Inside trigger_config and steps,
// {"$repeat": s, "times": n} stands for s repeated n times,
// {"$concat": [...]} for its parts joined, and {"$number": "1e300"} for that
// JSON literal as written (a float64 would not keep it).
func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	b, err := os.ReadFile("testdata/corpus.json")
	require.NoError(t, err)
	var entries []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &entries))
	out := make([]corpusCase, 0, len(entries))
	for _, e := range entries {
		var c corpusCase
		require.NoError(t, json.Unmarshal(e["name"], &c.Name))
		require.NoError(t, json.Unmarshal(e["trigger_type"], &c.TriggerType), c.Name)
		require.NoError(t, json.Unmarshal(e["problems"], &c.Problems), c.Name)
		if c.Problems == nil {
			c.Problems = []string{}
		}
		c.TriggerConfig = expandRaw(t, e["trigger_config"])
		c.Steps = expandRaw(t, e["steps"])
		out = append(out, c)
	}
	return out
}

func expandRaw(t testing.TB, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	b, err := json.Marshal(expand(t, v))
	require.NoError(t, err)
	return b
}

func expand(t testing.TB, v any) any {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["$repeat"].(string); ok {
			n, err := x["times"].(json.Number).Int64()
			require.NoError(t, err)
			return strings.Repeat(s, int(n))
		}
		if parts, ok := x["$concat"].([]any); ok {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(expand(t, p).(string))
			}
			return b.String()
		}
		if lit, ok := x["$number"].(string); ok {
			return json.RawMessage(lit)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expand(t, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expand(t, e)
		}
		return out
	}
	return v
}

// triggerType is the Go argument for a corpus case's trigger type (NULL: "").
func (c corpusCase) triggerType() string {
	if c.TriggerType == nil {
		return ""
	}
	return *c.TriggerType
}
