package sqltest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// maxFunctionLines is the most lines of code (neither blank nor only a
// comment) a SQL function's body may have, unless longFunctions names it.
const maxFunctionLines = 80

// longFunctions are the functions allowed over maxFunctionLines, each with
// the reason. An entry whose function is gone or no longer too long fails
// the test too, so the list only shrinks.
var longFunctions = map[string]string{
	"automation_claim_documents(automation_execution_logs[])":                "hot-path RPC: one set-based statement builds every document of a claim (measured by the RPC benchmarks)",
	"automation_report(jsonb)":                                               "hot-path RPC: one set-based statement per report (measured by the RPC benchmarks)",
	"automation_check_invoices_run(timestamp with time zone,uuid,uuid[])":    "one set-based statement: its CTEs share one snapshot and its plan fences (tick benchmark)",
	"automation_check_maintenance_run(timestamp with time zone,uuid,uuid[])": "one set-based statement: its CTEs share one snapshot and its plan fences (tick benchmark)",
	"automation_check_stale_jobs_run(timestamp with time zone,uuid,uuid[])":  "one set-based statement: its CTEs share one snapshot and its plan fences (tick benchmark)",
	"automation_workflow_rules()":                                            "data, not logic: the JSON document equal to shared/workflow/rules.json",
}

// Every function of the public schema after all migrations (the core and
// the reference domain; extensions' functions aside), in its current
// definition, has at most maxFunctionLines lines of code.
func TestSQLFunctionLength(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	rows, err := pool.Query(bg, `
select p.oid::regprocedure::text, p.prosrc
from pg_proc p
where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
order by 1`)
	require.NoError(t, err)
	defer rows.Close()
	seen := map[string]int{}
	for rows.Next() {
		var name, src string
		require.NoError(t, rows.Scan(&name, &src))
		seen[name] = codeLines(src)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, seen, "process_pending_automations(interval,integer)", "the query found dueflow's functions")
	for name, n := range seen {
		if _, listed := longFunctions[name]; !listed {
			assert.LessOrEqual(t, n, maxFunctionLines, "%s has %d lines of code: cut it where a name explains a part, or list it in longFunctions with a reason", name, n)
		}
	}
	for name := range longFunctions {
		n, ok := seen[name]
		if assert.True(t, ok, "longFunctions lists %s, which does not exist", name) {
			assert.Greater(t, n, maxFunctionLines, "longFunctions lists %s, %d lines of code: take it off the list", name, n)
		}
	}
}

// codeLines counts the lines of a function body that are neither blank nor
// only a -- comment.
func codeLines(src string) int {
	n := 0
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--") {
			n++
		}
	}
	return n
}

func TestCodeLines(t *testing.T) {
	assert.Equal(t, 2, codeLines("\nbegin\n  -- a comment\n\n  return 1; -- trailing\n"))
	assert.Zero(t, codeLines(""))
}

// noOpWhere lists the functions still allowed a `where (select count(*)
// from <cte>) >= 0`, which does nothing (data-modifying CTEs always run to
// completion), with the reason.
var noOpWhere = map[string]string{
	"automation_report(jsonb)": "hot-path RPC, not redefined in this round (measured by the RPC benchmarks)",
}

// No current function definition filters on a count that is always >= 0.
func TestSQLNoOpCountWhere(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	var found []string
	require.NoError(t, pool.QueryRow(bg, `
select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')
from pg_proc p
where p.pronamespace = 'public'::regnamespace
  and p.prosrc ~* '\(\s*select\s+count\(\*\)\s+from\s+\w+\s*\)\s*>=\s*0'`).Scan(&found))
	want := make([]string, 0, len(noOpWhere))
	for name := range noOpWhere {
		want = append(want, name)
	}
	assert.ElementsMatch(t, want, found, "functions with where (select count(*) from ...) >= 0")
}
