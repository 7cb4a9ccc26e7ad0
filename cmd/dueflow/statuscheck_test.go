package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// seedExecutions seeds the demo data and runs the checks: 15 pending
// executions, all due now.
func seedExecutions(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, demodata.Seed(ctx, pool, time.Now()))
	for _, q := range []string{"select check_automation_triggers()", "select check_overdue_invoices()", "select check_maintenance_reminders()"} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err)
	}
}

// statusSchema compiles docs/status.schema.json.
func statusSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat = true
	f, err := os.Open(filepath.Join("..", "..", "docs", "status.schema.json"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, c.AddResource("status.schema.json", f))
	s, err := c.Compile("status.schema.json")
	require.NoError(t, err)
	return s
}

// statusJSON runs status --json with o on dsn: the document, checked
// against the schema, and the exit status.
func statusJSON(t *testing.T, dsn string, o statusOptions) (map[string]any, int) {
	t.Helper()
	ctx := t.Context()
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	o.JSON = true
	var b bytes.Buffer
	code, err := statusOnce(ctx, conn, o, &b)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(b.String(), "\n"), "one line")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &doc))
	require.NoError(t, statusSchema(t).Validate(doc), b.String())
	assert.EqualValues(t, code, doc["exit_code"])
	return doc, code
}

func defaultStatusOptions() statusOptions {
	return statusOptions{Window: time.Hour, StuckAfter: 10 * time.Minute}
}

// On demo data: valid against the schema, healthy, every action listed.
func TestStatusJSONOnDemoData(t *testing.T) {
	pool, dsn := pgtest.NewDB(t)
	seedExecutions(t, pool)
	doc, code := statusJSON(t, dsn, defaultStatusOptions())
	assert.Equal(t, exitOK, code)
	assert.EqualValues(t, 1, doc["schema_version"])
	assert.Equal(t, true, doc["healthy"])
	assert.Empty(t, doc["problems"])
	q := doc["queue"].(map[string]any)
	assert.EqualValues(t, 15, q["pending"])
	assert.EqualValues(t, 15, q["due_now"])
	assert.EqualValues(t, 0, q["stuck"])
	var actions []string
	for _, a := range doc["actions"].([]any) {
		actions = append(actions, a.(map[string]any)["action"].(string))
	}
	want := append([]string(nil), automation.Actions...)
	assert.ElementsMatch(t, want, actions)
	assert.EqualValues(t, 3600, doc["window_seconds"])
	gen, err := time.Parse(time.RFC3339Nano, doc["generated_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), gen, time.Minute)
	assert.True(t, strings.HasSuffix(doc["generated_at"].(string), "Z"), "UTC")
}

// In the pg_cron database: the cron jobs and pg_net are filled in, and the
// document still validates (every optional object present).
func TestStatusJSONOnTheCronDatabase(t *testing.T) {
	_, dsn := pgtest.CronDB(t)
	o := defaultStatusOptions()
	o.MaxFailed = 1 << 30 // the shared database may hold other tests' failures
	doc, _ := statusJSON(t, dsn, o)
	jobs := doc["cron_jobs"].([]any)
	require.Len(t, jobs, 6)
	first := jobs[0].(map[string]any)
	assert.Equal(t, "check-automation-triggers", first["name"])
	assert.Equal(t, true, first["active"])
	assert.NotNil(t, doc["pg_net"])
}

// The exit status: 0 healthy; 3 failures within the window (beyond
// --max-failed); 4 expired leases; 5 stuck rows; the highest wins, and
// every problem is listed.
func TestStatusExitCodes(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	seedExecutions(t, pool)
	sqlExec := func(sql string) {
		t.Helper()
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err)
	}
	checks := func(doc map[string]any) []string {
		var out []string
		for _, p := range doc["problems"].([]any) {
			out = append(out, p.(map[string]any)["check"].(string))
		}
		return out
	}
	o := defaultStatusOptions()
	_, code := statusJSON(t, dsn, o)
	require.Equal(t, exitOK, code)

	// a failure two hours ago is outside the 1h window
	sqlExec(`update automation_execution_logs set status = 'failed', error_message = 'x', completed_at = now() - interval '2 hours'
	       where id = (select id from automation_execution_logs where action = 'invoice-reminder' order by id limit 1)`)
	_, code = statusJSON(t, dsn, o)
	assert.Equal(t, exitOK, code)
	o3 := o
	o3.Window = 3 * time.Hour
	doc, code := statusJSON(t, dsn, o3)
	assert.Equal(t, exitFailed, code)
	assert.Equal(t, []string{"failed"}, checks(doc))
	o3.MaxFailed = 1
	_, code = statusJSON(t, dsn, o3)
	assert.Equal(t, exitOK, code, "--max-failed 1 tolerates one")

	sqlExec(`update automation_execution_logs set status = 'failed', error_message = 'x', completed_at = now()
	       where id = (select id from automation_execution_logs where action = 'invoice-reminder' and status = 'pending' order by id limit 1)`)
	doc, code = statusJSON(t, dsn, o)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, doc["problems"].([]any)[0].(map[string]any)["message"], "1 executions failed within 1h0m0s")

	sqlExec(`update automation_execution_logs set status = 'running', lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 minute'
	       where id = (select id from automation_execution_logs where action = 'send-reminder' and status = 'pending' order by id limit 1)`)
	doc, code = statusJSON(t, dsn, o)
	assert.Equal(t, exitExpiredLeases, code)
	assert.Equal(t, []string{"failed", "expired_leases"}, checks(doc))

	// the demo rows are due now: none is stuck until it has been due for --stuck-after
	sqlExec(`update automation_execution_logs set next_attempt_at = now() - interval '11 minutes'
	       where id = (select id from automation_execution_logs where action = 'run-workflow' and status = 'pending' order by id limit 1)`)
	doc, code = statusJSON(t, dsn, o)
	assert.Equal(t, exitStuck, code)
	assert.Equal(t, []string{"failed", "expired_leases", "stuck"}, checks(doc))
	assert.EqualValues(t, 1, doc["queue"].(map[string]any)["stuck"])
	o.StuckAfter = 20 * time.Minute
	_, code = statusJSON(t, dsn, o)
	assert.Equal(t, exitExpiredLeases, code)

	// the real binary exits with these codes, in text mode too
	bin := buildDueflow(t)
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"status", "--db", dsn}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		require.NoError(t, err)
		return 0, out.String()
	}
	code, out := run()
	assert.Equal(t, exitStuck, code, out)
	assert.Contains(t, out, "== Health (window 1h0m0s, stuck after 10m0s)")
	assert.Regexp(t, `(?m)^stuck\s+1\s+0\s+5$`, out)
	assert.Contains(t, out, "status: PROBLEM: 1 executions failed within 1h0m0s (--max-failed 0); 1 running executions have an expired lease; 1 pending executions due for longer than 10m0s (exit 5)")
	code, out = run("--json", "--stuck-after", "1h")
	assert.Equal(t, exitExpiredLeases, code, out)
	sqlExec(`update automation_execution_logs set status = 'pending', lease_token = null, lease_expires_at = null, next_attempt_at = now() where status in ('running', 'failed')`)
	sqlExec(`update automation_execution_logs set next_attempt_at = now() where status = 'pending'`)
	code, out = run()
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "status: ok (exit 0)")
}

// --watch redraws until the context ends, and keeps going (saying so) when
// the database cannot be reached.
func TestStatusWatch(t *testing.T) {
	_, dsn := pgtest.NewDB(t)
	o := defaultStatusOptions()
	o.DB = dsn
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var b bytes.Buffer
	start := time.Now()
	code := watchStatus(ctx, o, &b, &b, 300*time.Millisecond)
	assert.Less(t, time.Since(start), 5*time.Second, "stops with its context")
	assert.Equal(t, exitOK, code)
	frames := strings.Count(b.String(), "\033[H\033[2J")
	assert.GreaterOrEqual(t, frames, 3, b.String())
	assert.Equal(t, frames, strings.Count(b.String(), "status: ok (exit 0)"), "every frame is whole")

	o.JSON = true
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.Reset()
	var errB bytes.Buffer
	watchStatus(ctx, o, &b, &errB, 300*time.Millisecond)
	assert.Empty(t, errB.String())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	s := statusSchema(t)
	for _, l := range lines {
		var doc any
		require.NoError(t, json.Unmarshal([]byte(l), &doc))
		require.NoError(t, s.Validate(doc))
	}

	o.JSON = false
	o.DB = "postgres://postgres@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/x?connect_timeout=1"
	ctx, cancel = context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	b.Reset()
	code = watchStatus(ctx, o, &b, &b, 200*time.Millisecond)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, b.String(), "error: connect to 127.0.0.1:")
	assert.Contains(t, b.String(), "(trying again in 200ms)")

	o.JSON = true
	ctx, cancel = context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	b.Reset()
	errB.Reset()
	code = watchStatus(ctx, o, &b, &errB, 200*time.Millisecond)
	assert.Equal(t, exitFailure, code)
	assert.Empty(t, b.String(), "no document without a database")
	assert.Contains(t, errB.String(), "dueflow status: connect to 127.0.0.1:")
}

func TestStatusFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseStatusFlags(nil, &stderr)
	require.NoError(t, err)
	assert.Equal(t, statusOptions{Window: time.Hour, StuckAfter: 10 * time.Minute}, o)
	for args, want := range map[string]time.Duration{"--watch": 5 * time.Second, "--watch 2s": 2 * time.Second, "--watch=3s": 3 * time.Second, "--watch 2s --json": 2 * time.Second} {
		o, err := parseStatusFlags(strings.Fields(args), &stderr)
		require.NoError(t, err, args)
		assert.Equal(t, want, o.Watch, args)
	}
	o, err = parseStatusFlags([]string{"--watch", "1s", "--json", "--window", "24h", "--max-failed", "3"}, &stderr)
	require.NoError(t, err)
	assert.True(t, o.JSON)
	assert.Equal(t, 24*time.Hour, o.Window)
	assert.Equal(t, 3, o.MaxFailed)
	for _, args := range []string{"extra", "--watch 0s", "--watch=0s", "--window 0s", "--stuck-after -1m", "--max-failed -1", "--json extra"} {
		_, err := parseStatusFlags(strings.Fields(args), &stderr)
		var u usageError
		require.ErrorAs(t, err, &u, args)
	}
}
