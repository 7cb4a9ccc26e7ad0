package stacktest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Knobs are the settings of a whole-stack benchmark, read from the
// environment by KnobsFromEnv (the Makefile passes its variables N,
// LATENCY, ... as BENCH_N, BENCH_LATENCY, ...).
type Knobs struct {
	N           int             // BENCH_N: executions (and emails) per drain
	Latencies   []time.Duration // BENCH_LATENCY: provider latency per message, one drain round each ("0,50ms")
	Instances   int             // BENCH_INSTANCES: RIE instances (Lambda environments) of the function
	Concurrency int             // BENCH_CONCURRENCY: DUEFLOW_CONCURRENCY; also the naive dispatcher's workers
	Batch       int             // BENCH_BATCH: ids per function call (automation_endpoints.batch_size, 1-500)
	Case        string          // BENCH_CASE: one case alone (empty: all)
	Rounds      int             // BENCH_ROUNDS: rounds (side-by-side benchmarks)
}

// KnobsFromEnv returns def with what BENCH_N, BENCH_LATENCY,
// BENCH_INSTANCES, BENCH_CONCURRENCY, BENCH_BATCH, BENCH_CASE and
// BENCH_ROUNDS set (an empty variable keeps the default); cases lists the
// values BENCH_CASE may take.
func KnobsFromEnv(def Knobs, cases ...string) (Knobs, error) {
	k := def
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{
		{"BENCH_N", &k.N, 1, 10_000_000},
		{"BENCH_INSTANCES", &k.Instances, 1, 256},
		{"BENCH_CONCURRENCY", &k.Concurrency, 1, 256},
		{"BENCH_BATCH", &k.Batch, 1, 500},
		{"BENCH_ROUNDS", &k.Rounds, 1, 1000},
	}
	for _, v := range ints {
		if err := EnvInt(v.name, v.dst, v.min, v.max); err != nil {
			return k, err
		}
	}
	if raw := strings.TrimSpace(os.Getenv("BENCH_LATENCY")); raw != "" {
		k.Latencies = nil
		for _, part := range strings.Split(raw, ",") {
			part = strings.TrimSpace(part)
			if part == "0" {
				part = "0s"
			}
			d, err := time.ParseDuration(part)
			if err != nil || d < 0 || d > time.Minute {
				return k, fmt.Errorf("BENCH_LATENCY: %q is not a duration between 0 and 1m (e.g. 0,50ms)", part)
			}
			k.Latencies = append(k.Latencies, d)
		}
	}
	if c := strings.TrimSpace(os.Getenv("BENCH_CASE")); c != "" {
		if !slices.Contains(cases, c) {
			return k, fmt.Errorf("BENCH_CASE: %q is none of %s", c, strings.Join(cases, ", "))
		}
		k.Case = c
	}
	return k, nil
}

// Runs reports whether the case c is to run (BENCH_CASE empty or c).
func (k Knobs) Runs(c string) bool { return k.Case == "" || k.Case == c }

// String is the knobs in one line, for the benchmark's report.
func (k Knobs) String() string {
	lat := make([]string, len(k.Latencies))
	for i, d := range k.Latencies {
		lat[i] = d.String()
	}
	c := k.Case
	if c == "" {
		c = "all"
	}
	return fmt.Sprintf("N=%d LATENCY=%s INSTANCES=%d CONCURRENCY=%d BATCH=%d CASE=%s ROUNDS=%d",
		k.N, strings.Join(lat, ","), k.Instances, k.Concurrency, k.Batch, c, k.Rounds)
}

// EnvInt sets *dst from the environment variable name when it is set (and
// not empty): an integer between lo and hi.
func EnvInt(name string, dst *int, lo, hi int) error {
	raw := strings.TrimSpace(os.Getenv(name))
	if raw == "" {
		return nil
	}
	v, err := strconv.Atoi(strings.ReplaceAll(raw, "_", ""))
	if err != nil || v < lo || v > hi {
		return fmt.Errorf("%s: %q is not an integer between %d and %d", name, raw, lo, hi)
	}
	*dst = v
	return nil
}

// EnvDuration sets *dst from the environment variable name when it is set
// (and not empty): a duration (time.ParseDuration) between lo and hi.
func EnvDuration(name string, dst *time.Duration, lo, hi time.Duration) error {
	raw := strings.TrimSpace(os.Getenv(name))
	if raw == "" {
		return nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < lo || d > hi {
		return fmt.Errorf("%s: %q is not a duration between %s and %s", name, raw, lo, hi)
	}
	*dst = d
	return nil
}
