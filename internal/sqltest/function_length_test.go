package sqltest_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// maxFunctionLines is the most lines of code (neither blank nor only a
// comment) a SQL function's body may have, unless its comment gives the
// reason (longReason).
const maxFunctionLines = 80

// longReason marks the reason a function stays over maxFunctionLines: its
// COMMENT ON FUNCTION ends with "Long: <one-line reason>." (the reason
// beside the function, in the migration that defines or comments it).
const longReason = "Long: "

// Every function of the public schema after all migrations (the core and
// the reference domain; extensions' functions aside), in its current
// definition, has at most maxFunctionLines lines of code, or its comment
// says why not (longReason); a function within the limit has no such
// reason (cut a function, drop its reason).
func TestSQLFunctionLength(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	rows, err := pool.Query(bg, `
select p.oid::regprocedure::text, p.prosrc, coalesce(obj_description(p.oid, 'pg_proc'), '')
from pg_proc p
where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
order by 1`)
	require.NoError(t, err)
	defer rows.Close()
	seen, long := map[string]bool{}, 0
	for rows.Next() {
		var name, src, comment string
		require.NoError(t, rows.Scan(&name, &src, &comment))
		seen[name] = true
		n, reason := codeLines(src), longReasonOf(comment)
		if n > maxFunctionLines {
			long++
			assert.NotEmpty(t, reason, "%s has %d lines of code: cut it where a name explains a part, or end its comment with %q and a one-line reason", name, n, longReason+"...")
			assert.NotContains(t, reason, "\n", "%s: the reason to be long is one line", name)
		} else {
			assert.Empty(t, reason, "%s has %d lines of code, yet its comment gives a reason to be long: drop it", name, n)
		}
	}
	require.NoError(t, rows.Err())
	require.Contains(t, seen, "process_pending_automations(interval,integer)", "the query found dueflow's functions")
	require.Positive(t, long, "the query found the long functions (automation_claim_rows)")
}

// longReasonOf returns the reason a function's comment gives for its length
// (the text after longReason), or "" when it gives none.
func longReasonOf(comment string) string {
	_, reason, ok := strings.Cut(comment, longReason)
	if !ok {
		return ""
	}
	return strings.TrimSpace(reason)
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

func TestLongReasonOf(t *testing.T) {
	assert.Equal(t, "hot path, one statement.", longReasonOf("Claims executions. Long: hot path, one statement."))
	assert.Empty(t, longReasonOf("Claims executions, however long."))
	assert.Empty(t, longReasonOf(""))
}

// A filter on a count that is always >= 0 (`where (select count(*) from
// <cte>) >= 0`) filters nothing, and a data-modifying CTE runs to
// completion read or not; what it changes is when the CTE runs. Any current
// function that keeps one says why in a comment on the lines just above it
// (automation_report: measured faster, BenchmarkReportBodies).
func TestSQLCountFilterHasItsReason(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	rows, err := pool.Query(bg, `
select p.oid::regprocedure::text, p.prosrc from pg_proc p
where p.pronamespace = 'public'::regnamespace and p.prosrc ~* '\(\s*select\s+count\(\*\)\s+from\s+\w+\s*\)\s*>=\s*0'`)
	require.NoError(t, err)
	defer rows.Close()
	filter := regexp.MustCompile(`(?i)\(\s*select\s+count\(\*\)\s+from\s+\w+\s*\)\s*>=\s*0`)
	var names []string
	for rows.Next() {
		var name, src string
		require.NoError(t, rows.Scan(&name, &src))
		names = append(names, name)
		lines := strings.Split(src, "\n")
		for i, l := range lines {
			if !filter.MatchString(l) {
				continue
			}
			above := ""
			if i > 0 {
				above = strings.TrimSpace(lines[i-1])
			}
			assert.True(t, strings.HasPrefix(above, "--"), "%s: %q without its reason in a comment on the line above", name, strings.TrimSpace(l))
		}
	}
	require.NoError(t, rows.Err())
	// the query sees the one kept today, so a reason removed there fails
	assert.Contains(t, names, "automation_report(jsonb)")
}
