package stacktest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
)

// Profile modes (BENCH_PROFILE): what pg_stat_statements tracks during a
// drain. "top": each statement the clients sent (one per RPC through the
// PostgREST stand-in); "all": also the statements inside the functions;
// "explain": as all, and auto_explain writes the plan (analyze, buffers) of
// every statement, nested ones too, that ran 5 ms or more into the
// cluster's log (its path is printed).
const (
	ProfileTop     = "top"
	ProfileAll     = "all"
	ProfileExplain = "explain"
)

// ProfileMode is BENCH_PROFILE ("", ProfileTop or ProfileAll); any other
// value is an error.
func ProfileMode() (string, error) {
	switch m := strings.TrimSpace(os.Getenv("BENCH_PROFILE")); m {
	case "", ProfileTop, ProfileAll, ProfileExplain:
		return m, nil
	default:
		return "", fmt.Errorf("BENCH_PROFILE: %q is none of top, all, explain", m)
	}
}

// profile is a database profile of one drain: pg_stat_statements turned on
// (mode) and reset before it, read and turned off after it.
type profile struct {
	mode   string
	s      *devstack.Stack
	log    string // the cluster's log (explain)
	offset int64  // its size when the drain began
}

// startProfile turns pg_stat_statements on for the whole cluster (every
// backend, at its next statement) and empties it; nil when mode is "".
func startProfile(tb testing.TB, s *devstack.Stack, mode string) *profile {
	tb.Helper()
	if mode == "" {
		return nil
	}
	db := s.Pool()
	pgtest.Exec(tb, db, `create extension if not exists pg_stat_statements`)
	track := mode
	if mode == ProfileExplain {
		track = ProfileAll
		for _, set := range []string{"log_min_duration = '5ms'", "log_analyze = on", "log_buffers = on",
			"log_nested_statements = on", "log_timing = on"} {
			pgtest.Exec(tb, db, `alter system set auto_explain.`+set)
		}
	}
	pgtest.Exec(tb, db, `alter system set pg_stat_statements.track = '`+track+`'`)
	pgtest.Exec(tb, db, `alter system set pg_stat_statements.track_planning = on`)
	pgtest.Exec(tb, db, `select pg_reload_conf()`)
	time.Sleep(200 * time.Millisecond) // every backend reads the new setting at its next statement
	pgtest.Exec(tb, db, `select pg_stat_statements_reset()`)
	p := &profile{mode: mode, s: s}
	if mode == ProfileExplain {
		// pgcluster's log: <data directory>/postgresql.log
		var dir string
		if err := db.QueryRow(context.Background(), `select current_setting('data_directory')`).Scan(&dir); err != nil {
			tb.Fatalf("stacktest: profile: %v", err)
		}
		p.log = filepath.Join(dir, "postgresql.log")
		if fi, err := os.Stat(p.log); err == nil {
			p.offset = fi.Size()
		}
	}
	return p
}

// rpcName picks the function a PostgREST stand-in statement calls.
var rpcName = regexp.MustCompile(`"public"\."(\w+)"\(`)

// report reads the statements of the drain (n executions) and turns
// tracking off again: per statement calls, rows, mean execution and
// planning time, shared buffers per call, and the share of each per
// execution; then the Postgres backends' CPU per execution by
// application (pg_stat_activity joined with /proc), from cpu0.
//
// Long: one report of the profile, section by section, as the doc comment lists them
func (p *profile) report(tb testing.TB, n int, cpu0 map[int]time.Duration) string {
	tb.Helper()
	ctx := context.Background()
	db := p.s.Pool()
	var b strings.Builder
	fmt.Fprintf(&b, "database profile (pg_stat_statements.track = %s), %d executions:\n", p.mode, n)
	fmt.Fprintf(&b, "  %-44s %7s %8s %9s %9s %9s %10s %9s\n", "statement", "calls", "rows", "exec ms", "plan ms", "buf/call", "µs/exec", "calls/exec")
	rows, err := db.Query(ctx, `select query, toplevel, calls, rows, mean_exec_time, mean_plan_time,
			(shared_blks_hit + shared_blks_read)::float8 / greatest(calls, 1), total_exec_time + total_plan_time
		from pg_stat_statements
		where dbid = (select oid from pg_database where datname = current_database())
		order by total_exec_time + total_plan_time desc limit 25`)
	if err != nil {
		tb.Fatalf("stacktest: profile: %v", err)
	}
	var total float64
	for rows.Next() {
		var (
			q               string
			top             bool
			calls, nrows    int64
			exec, plan, buf float64
			tot             float64
		)
		if err := rows.Scan(&q, &top, &calls, &nrows, &exec, &plan, &buf, &tot); err != nil {
			tb.Fatalf("stacktest: profile: %v", err)
		}
		name := strings.Join(strings.Fields(q), " ")
		if m := rpcName.FindStringSubmatch(q); m != nil && top {
			name = "rpc " + m[1]
		}
		if !top {
			name = "  " + name // inside a function
		} else {
			total += tot
		}
		if len(name) > 44 {
			name = name[:43] + "…"
		}
		fmt.Fprintf(&b, "  %-44s %7d %8d %9.3f %9.3f %9.1f %10.1f %9.3f\n", name, calls, nrows, exec, plan, buf,
			tot*1000/float64(max(n, 1)), float64(calls)/float64(max(n, 1)))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("stacktest: profile: %v", err)
	}
	rows.Close()
	fmt.Fprintf(&b, "  top-level statements listed: %.1f µs of execution and planning per execution\n", total*1000/float64(max(n, 1)))

	// Backend CPU by application: the pids pg_stat_activity names now (the
	// stack's connections are long-lived), the rest of the cluster apart.
	apps := map[int]string{}
	arows, err := db.Query(ctx, `select pid, coalesce(nullif(application_name, ''), backend_type) from pg_stat_activity`)
	if err != nil {
		tb.Fatalf("stacktest: profile: %v", err)
	}
	for arows.Next() {
		var pid int
		var app string
		if err := arows.Scan(&pid, &app); err != nil {
			tb.Fatalf("stacktest: profile: %v", err)
		}
		apps[pid] = app
	}
	arows.Close()
	cpu := map[string]time.Duration{}
	var all time.Duration
	for _, pid := range p.s.Processes()["postgres"] {
		d, err := devstack.ReadProcCPU(pid)
		if err != nil {
			continue
		}
		app, ok := apps[pid]
		if !ok {
			app = "(postmaster, exited or unnamed)"
		}
		cpu[app] += d - cpu0[pid]
		all += d - cpu0[pid]
	}
	names := make([]string, 0, len(cpu))
	for a := range cpu {
		names = append(names, a)
	}
	sort.Slice(names, func(i, j int) bool { return cpu[names[i]] > cpu[names[j]] })
	fmt.Fprintf(&b, "  Postgres CPU per execution: %.0f µs (/proc, every process of the cluster)\n", float64(all.Microseconds())/float64(max(n, 1)))
	for _, a := range names {
		fmt.Fprintf(&b, "    %-40s %8.0f µs\n", a, float64(cpu[a].Microseconds())/float64(max(n, 1)))
	}

	if p.mode == ProfileExplain {
		fmt.Fprintf(&b, "  plans of statements of 5 ms or more (auto_explain): %s\n", p.savePlans(tb))
		for _, set := range []string{"log_min_duration", "log_analyze", "log_buffers", "log_nested_statements", "log_timing"} {
			pgtest.Exec(tb, db, `alter system reset auto_explain.`+set)
		}
	}
	pgtest.Exec(tb, db, `alter system reset pg_stat_statements.track`)
	pgtest.Exec(tb, db, `alter system reset pg_stat_statements.track_planning`)
	pgtest.Exec(tb, db, `select pg_reload_conf()`)
	return b.String()
}

// savePlans copies what the cluster logged during the drain (the plans)
// into a file of its own that outlives the stack, and returns its path.
func (p *profile) savePlans(tb testing.TB) string {
	tb.Helper()
	in, err := os.Open(p.log)
	if err != nil {
		return fmt.Sprintf("(not read: %v)", err)
	}
	defer in.Close()
	if _, err := in.Seek(p.offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(not read: %v)", err)
	}
	out, err := os.CreateTemp("", "dueflow-plans-*.log")
	if err != nil {
		return fmt.Sprintf("(not saved: %v)", err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Sprintf("(not saved: %v)", err)
	}
	return out.Name()
}
