package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/shared/automation"
)

// The exit statuses of `dueflow status` when it finds a problem (beside
// exitCodes). With several problems the highest applies; --json lists them
// all.
const (
	exitFailed        = 3 // executions or cron job runs failed within --window
	exitExpiredLeases = 4 // running executions whose lease has expired
	exitStuck         = 5 // pending executions due for longer than --stuck-after
)

// statusCodes document those statuses in `dueflow help status`.
var statusCodes = []exitDoc{
	{exitFailed, "problem: more than --max-failed executions failed, or a dueflow cron job run failed, within --window"},
	{exitExpiredLeases, "problem: running executions whose lease has expired (a function stopped without reporting)"},
	{exitStuck, "problem: pending executions due for longer than --stuck-after (nothing dispatches them)"},
}

// StatusSchemaVersion is the version of the --json document (schema_version);
// docs/status.schema.json describes it. Adding a field keeps the version;
// renaming, removing or retyping one makes a new version.
const StatusSchemaVersion = 1

// statusOptions are the parsed flags of `dueflow status`.
type statusOptions struct {
	DB         string
	JSON       bool
	Watch      time.Duration // 0: once
	Window     time.Duration
	StuckAfter time.Duration
	MaxFailed  int
}

// watchFlag is --watch [interval]: a boolean flag that may carry a duration
// (--watch=10s); parseStatusFlags also takes the interval as the next word
// (--watch 10s).
type watchFlag struct{ d *time.Duration }

// defaultWatch is the interval of a bare --watch.
const defaultWatch = 5 * time.Second

func (w watchFlag) String() string {
	if w.d == nil || *w.d == 0 {
		return ""
	}
	return w.d.String()
}

func (w watchFlag) Set(v string) error {
	switch v {
	case "true":
		*w.d = defaultWatch
		return nil
	case "false":
		*w.d = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("not a positive duration: %q", v)
	}
	*w.d = d
	return nil
}

func (w watchFlag) IsBoolFlag() bool { return true }

func statusUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow status [--json] [--watch [INTERVAL]] [--window D] [--stuck-after D] [--max-failed N] [--db URL]

Shows the cron jobs (automation_cron_status), queue health, what the checks
skip, the executions per action, the endpoints and pg_net, then the health
checks, and exits non-zero when one finds a problem: for a cron job or a
monitoring check. --json prints one JSON document instead (schema:
docs/status.schema.json, schema_version 1). --watch redraws every INTERVAL
(default 5s; with --json: one document per line) until Ctrl-C, then exits
with the last status.
`)
}

func parseStatusFlags(args []string, stderr io.Writer) (statusOptions, error) {
	fs := newFlagSet("status", stderr)
	o := statusOptions{}
	db := dbFlag(fs)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON document (docs/status.schema.json) instead of tables")
	fs.Var(watchFlag{&o.Watch}, "watch", "redraw every `interval` until Ctrl-C (bare --watch: 5s)")
	fs.DurationVar(&o.Window, "window", time.Hour, "failures count when they happened within this window")
	fs.DurationVar(&o.StuckAfter, "stuck-after", 10*time.Minute, "a pending execution due for longer than this is stuck (pg_cron dispatches every minute)")
	fs.IntVar(&o.MaxFailed, "max-failed", 0, "failed executions within --window tolerated before exit 3 (default 0)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	rest := fs.Args()
	if o.Watch > 0 && len(rest) > 0 {
		if d, err := time.ParseDuration(rest[0]); err == nil { // --watch 10s
			if d <= 0 {
				return o, usageErrorf("--watch: the interval must be positive")
			}
			o.Watch = d
			if err := parseFlags(fs, rest[1:]); err != nil {
				return o, err
			}
			rest = fs.Args()
		}
	}
	o.DB = *db
	switch {
	case len(rest) > 0:
		return o, usageErrorf("unexpected arguments: %v", rest)
	case o.Window <= 0:
		return o, usageErrorf("--window must be positive")
	case o.StuckAfter <= 0:
		return o, usageErrorf("--stuck-after must be positive")
	case o.MaxFailed < 0:
		return o, usageErrorf("--max-failed must not be negative")
	}
	return o, nil
}

func cmdStatus(ctx context.Context, args []string) error {
	o, err := parseStatusFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.Watch > 0 {
		code := watchStatus(ctx, o, os.Stdout, os.Stderr, o.Watch)
		return exitCodeOrNil(code)
	}
	conn, err := connect(ctx, o.DB)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	code, err := statusOnce(ctx, conn, o, os.Stdout)
	if err != nil {
		return err
	}
	return exitCodeOrNil(code)
}

func exitCodeOrNil(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

// statusOnce prints the status once (tables or JSON) and returns the exit
// status its health checks give.
func statusOnce(ctx context.Context, conn *pgx.Conn, o statusOptions, w io.Writer) (int, error) {
	rep, err := readStatusReport(ctx, conn, o)
	if err != nil {
		return exitFailure, err
	}
	if o.JSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return exitFailure, fmt.Errorf("status: encode: %w", err)
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return exitFailure, err
		}
		return rep.ExitCode, nil
	}
	if err := writeStatus(ctx, conn, w); err != nil {
		return exitFailure, err
	}
	fmt.Fprintln(w)
	rep.writeHealth(w)
	return rep.ExitCode, nil
}

// watchStatus prints the status every interval until ctx ends, clearing the
// terminal before each frame (one JSON document per line with --json). It
// keeps going when the database is unreachable, saying so (on errW with
// --json), and reconnects.
// It returns the exit status of the last frame.
func watchStatus(ctx context.Context, o statusOptions, w, errW io.Writer, interval time.Duration) int {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	code := exitOK
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var frame strings.Builder
		if !o.JSON {
			fmt.Fprintf(&frame, "\033[H\033[2J%s  dueflow status, every %s (Ctrl-C to stop)\n\n", time.Now().UTC().Format(time.RFC3339), interval)
		}
		var err error
		if conn == nil {
			conn, err = connect(ctx, o.DB)
		}
		frameCode := exitFailure
		if err == nil {
			frameCode, err = statusOnce(ctx, conn, o, &frame)
		}
		if ctx.Err() != nil {
			return code // interrupted: the last whole frame's status
		}
		code = frameCode
		if err != nil {
			if conn != nil && conn.IsClosed() {
				conn = nil
			}
			if o.JSON { // stdout carries only documents of the schema
				frame.Reset()
				fmt.Fprintf(errW, "dueflow status: %v (trying again in %s)\n", err, interval)
			} else {
				fmt.Fprintf(&frame, "error: %v (trying again in %s)\n", err, interval)
			}
		}
		_, _ = io.WriteString(w, frame.String())
		select {
		case <-ctx.Done():
			return code
		case <-t.C:
		}
	}
}

// statusReport is the --json document (schema_version 1,
// docs/status.schema.json). Counts are numbers, times RFC 3339 UTC,
// durations whole seconds.
type statusReport struct {
	SchemaVersion     int             `json:"schema_version"`
	GeneratedAt       time.Time       `json:"generated_at"`
	WindowSeconds     int64           `json:"window_seconds"`
	StuckAfterSeconds int64           `json:"stuck_after_seconds"`
	MaxFailed         int             `json:"max_failed"`
	Healthy           bool            `json:"healthy"`
	ExitCode          int             `json:"exit_code"`
	Problems          []statusProblem `json:"problems"`
	Queue             statusQueue     `json:"queue"`
	Window            statusWindow    `json:"window"`
	Actions           []statusAction  `json:"actions"`
	CronJobs          []statusCronJob `json:"cron_jobs"`
	PgNet             *statusPgNet    `json:"pg_net"`
}

// statusProblem is one health check that failed.
type statusProblem struct {
	Check    string `json:"check"` // failed, cron_failed, expired_leases, stuck
	Count    int64  `json:"count"`
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
}

// statusQueue is the state of automation_execution_logs now.
type statusQueue struct {
	Pending             int64 `json:"pending"`
	DueNow              int64 `json:"due_now"`
	Running             int64 `json:"running"`
	ExpiredLeases       int64 `json:"expired_leases"`
	Stuck               int64 `json:"stuck"`
	OldestDueAgeSeconds int64 `json:"oldest_due_age_seconds"`
	Deferred            int64 `json:"deferred"`
	CheckProblems       int64 `json:"check_problems"`
}

// statusWindow counts what finished within the window, and the failed runs
// of dueflow's cron jobs.
type statusWindow struct {
	Completed     int64 `json:"completed"`
	Skipped       int64 `json:"skipped"`
	Failed        int64 `json:"failed"`
	CronRunFailed int64 `json:"cron_runs_failed"`
}

// statusAction is the queue of one action.
type statusAction struct {
	Action        string `json:"action"`
	Pending       int64  `json:"pending"`
	DueNow        int64  `json:"due_now"`
	Running       int64  `json:"running"`
	ExpiredLeases int64  `json:"expired_leases"`
	Completed     int64  `json:"completed"`
	Skipped       int64  `json:"skipped"`
	Failed        int64  `json:"failed"`
}

// statusCronJob is one of dueflow's pg_cron jobs (automation_cron_status).
type statusCronJob struct {
	Name          string     `json:"name"`
	Schedule      string     `json:"schedule"`
	Active        bool       `json:"active"`
	LastRun       *time.Time `json:"last_run"`
	LastRunStatus *string    `json:"last_run_status"`
	TotalRuns     int64      `json:"total_runs"`
	FailedRuns    int64      `json:"failed_runs"`
}

// statusPgNet is pg_net's queue and the responses of the last hour.
type statusPgNet struct {
	Queued          int64 `json:"queued"`
	Responses1h     int64 `json:"responses_1h"`
	OK2xx           int64 `json:"ok_2xx"`
	HTTPErrors      int64 `json:"http_errors"`
	TimedOut        int64 `json:"timed_out"`
	TransportErrors int64 `json:"transport_errors"`
}

// statusQueueSQL reads the queue and the window in one statement; every
// subquery has an index (due_idx, lease_idx: partial on pending, running;
// completed_idx on completed_at).
const statusQueueSQL = `
select
  (select count(*) from automation_execution_logs where status = 'pending'),
  (select count(*) from automation_execution_logs where status = 'pending' and next_attempt_at <= now()),
  (select count(*) from automation_execution_logs where status = 'running'),
  (select count(*) from automation_execution_logs where status = 'running' and lease_expires_at < now()),
  (select count(*) from automation_execution_logs where status = 'pending' and next_attempt_at <= now() - $1::interval),
  coalesce((select extract(epoch from now() - min(next_attempt_at))::bigint
              from automation_execution_logs where status = 'pending' and next_attempt_at <= now()), 0),
  (select count(*) from automation_execution_logs where status = 'pending' and deferrals > 0),
  (select count(*) from automation_check_problems),
  (select count(*) from automation_execution_logs where status = 'completed' and completed_at > now() - $2::interval),
  (select count(*) from automation_execution_logs where status = 'skipped' and completed_at > now() - $2::interval),
  (select count(*) from automation_execution_logs where status = 'failed' and completed_at > now() - $2::interval)`

const statusActionsSQL = `
select a.action,
       (select count(*) from automation_execution_logs l where l.action = a.action and l.status = 'pending'),
       (select count(*) from automation_execution_logs l where l.action = a.action and l.status = 'pending' and l.next_attempt_at <= now()),
       (select count(*) from automation_execution_logs l where l.action = a.action and l.status = 'running'),
       (select count(*) from automation_execution_logs l where l.action = a.action and l.status = 'running' and l.lease_expires_at < now()),
       count(l.id) filter (where l.status = 'completed'),
       count(l.id) filter (where l.status = 'skipped'),
       count(l.id) filter (where l.status = 'failed')
  from unnest($1::text[]) as a(action)
  left join automation_execution_logs l
    on l.action = a.action and l.completed_at > now() - $2::interval
 group by a.action
 order by a.action`

// readStatusReport runs the health checks and reads what --json prints.
func readStatusReport(ctx context.Context, conn *pgx.Conn, o statusOptions) (statusReport, error) {
	r := statusReport{
		SchemaVersion:     StatusSchemaVersion,
		WindowSeconds:     int64(o.Window / time.Second),
		StuckAfterSeconds: int64(o.StuckAfter / time.Second),
		MaxFailed:         o.MaxFailed,
		Problems:          []statusProblem{},
		Actions:           []statusAction{},
		CronJobs:          []statusCronJob{},
	}
	window, stuck := pgInterval(o.Window), pgInterval(o.StuckAfter)
	if err := conn.QueryRow(ctx, `select now()`).Scan(&r.GeneratedAt); err != nil {
		return r, fmt.Errorf("status: read the clock: %w", err)
	}
	r.GeneratedAt = r.GeneratedAt.UTC()
	q := &r.Queue
	err := conn.QueryRow(ctx, statusQueueSQL, stuck, window).Scan(&q.Pending, &q.DueNow, &q.Running, &q.ExpiredLeases, &q.Stuck,
		&q.OldestDueAgeSeconds, &q.Deferred, &q.CheckProblems, &r.Window.Completed, &r.Window.Skipped, &r.Window.Failed)
	if err != nil {
		return r, fmt.Errorf("status: queue health: %w", err)
	}
	rows, err := conn.Query(ctx, statusActionsSQL, automation.Actions, window)
	if err != nil {
		return r, fmt.Errorf("status: executions by action: %w", err)
	}
	r.Actions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (statusAction, error) {
		var a statusAction
		err := row.Scan(&a.Action, &a.Pending, &a.DueNow, &a.Running, &a.ExpiredLeases, &a.Completed, &a.Skipped, &a.Failed)
		return a, err
	})
	if err != nil {
		return r, fmt.Errorf("status: executions by action: %w", err)
	}
	if err := readCronStatus(ctx, conn, window, &r); err != nil {
		return r, err
	}
	if err := readPgNetStatus(ctx, conn, &r); err != nil {
		return r, err
	}
	r.judge(o)
	return r, nil
}

// readCronStatus reads dueflow's pg_cron jobs and their failed runs within
// window; a database without pg_cron has none.
func readCronStatus(ctx context.Context, conn *pgx.Conn, window string, r *statusReport) error {
	rows, err := conn.Query(ctx, `
select job_name, schedule, is_active, last_run, last_run_status, total_runs, failed_runs
  from automation_cron_status
 where schedule is not null
 order by job_name`)
	if err != nil {
		return fmt.Errorf("status: cron jobs: %w", err)
	}
	r.CronJobs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (statusCronJob, error) {
		var j statusCronJob
		err := row.Scan(&j.Name, &j.Schedule, &j.Active, &j.LastRun, &j.LastRunStatus, &j.TotalRuns, &j.FailedRuns)
		if j.LastRun != nil {
			t := j.LastRun.UTC()
			j.LastRun = &t
		}
		return j, err
	})
	if err != nil {
		return fmt.Errorf("status: cron jobs: %w", err)
	}
	if len(r.CronJobs) == 0 {
		return nil
	}
	names := make([]string, len(r.CronJobs))
	for i, j := range r.CronJobs {
		names[i] = j.Name
	}
	err = conn.QueryRow(ctx, `
select count(*)
  from cron.job_run_details d
  join cron.job j on j.jobid = d.jobid
 where j.jobname = any($1) and d.status = 'failed' and d.start_time > now() - $2::interval`, names, window).Scan(&r.Window.CronRunFailed)
	if err != nil {
		return fmt.Errorf("status: failed cron runs: %w", err)
	}
	return nil
}

// readPgNetStatus reads pg_net's queue when the database has pg_net.
func readPgNetStatus(ctx context.Context, conn *pgx.Conn, r *statusReport) error {
	var ok bool
	if err := conn.QueryRow(ctx, `select to_regclass('net.http_request_queue') is not null and to_regclass('net._http_response') is not null`).Scan(&ok); err != nil {
		return fmt.Errorf("status: look up pg_net: %w", err)
	}
	if !ok {
		return nil
	}
	n := &statusPgNet{}
	err := conn.QueryRow(ctx, `
select (select count(*) from net.http_request_queue),
       count(r.id),
       count(r.id) filter (where r.status_code between 200 and 299),
       count(r.id) filter (where r.status_code >= 300),
       count(r.id) filter (where r.timed_out),
       count(r.id) filter (where r.status_code is null and not coalesce(r.timed_out, false))
  from net._http_response r
 where r.created > now() - interval '1 hour'`).Scan(&n.Queued, &n.Responses1h, &n.OK2xx, &n.HTTPErrors, &n.TimedOut, &n.TransportErrors)
	if err != nil {
		return fmt.Errorf("status: pg_net: %w", err)
	}
	r.PgNet = n
	return nil
}

// judge turns the counts into problems and the exit status: the highest
// of the problems' codes, 0 without one.
func (r *statusReport) judge(o statusOptions) {
	win := o.Window.String()
	add := func(check string, n int64, code int, msg string) {
		r.Problems = append(r.Problems, statusProblem{Check: check, Count: n, ExitCode: code, Message: msg})
		r.ExitCode = max(r.ExitCode, code)
	}
	if n := r.Window.Failed; n > int64(o.MaxFailed) {
		add("failed", n, exitFailed, fmt.Sprintf("%d executions failed within %s (--max-failed %d)", n, win, o.MaxFailed))
	}
	if n := r.Window.CronRunFailed; n > 0 {
		add("cron_failed", n, exitFailed, fmt.Sprintf("%d runs of dueflow's cron jobs failed within %s (cron.job_run_details)", n, win))
	}
	if n := r.Queue.ExpiredLeases; n > 0 {
		add("expired_leases", n, exitExpiredLeases, fmt.Sprintf("%d running executions have an expired lease", n))
	}
	if n := r.Queue.Stuck; n > 0 {
		add("stuck", n, exitStuck, fmt.Sprintf("%d pending executions due for longer than %s", n, o.StuckAfter))
	}
	r.Healthy = len(r.Problems) == 0
}

// writeHealth prints the health checks and the verdict, the last section
// of the text status.
func (r statusReport) writeHealth(w io.Writer) {
	fmt.Fprintf(w, "== Health (window %s, stuck after %s)\n", time.Duration(r.WindowSeconds)*time.Second, time.Duration(r.StuckAfterSeconds)*time.Second)
	t := table{Columns: []string{"check", "count", "limit", "exit_code"}}
	row := func(check string, n int64, limit, code int) {
		t.Rows = append(t.Rows, []string{check, fmt.Sprint(n), fmt.Sprint(limit), fmt.Sprint(code)})
	}
	row("failed", r.Window.Failed, r.MaxFailed, exitFailed)
	row("cron_failed", r.Window.CronRunFailed, 0, exitFailed)
	row("expired_leases", r.Queue.ExpiredLeases, 0, exitExpiredLeases)
	row("stuck", r.Queue.Stuck, 0, exitStuck)
	_ = t.write(w)
	if r.Healthy {
		fmt.Fprintln(w, "status: ok (exit 0)")
		return
	}
	msgs := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		msgs[i] = p.Message
	}
	fmt.Fprintf(w, "status: PROBLEM: %s (exit %d)\n", strings.Join(msgs, "; "), r.ExitCode)
}

// pgInterval renders d as a Postgres interval literal (whole microseconds).
func pgInterval(d time.Duration) string {
	return fmt.Sprintf("%d microseconds", d.Microseconds())
}

var _ flag.Value = watchFlag{}
