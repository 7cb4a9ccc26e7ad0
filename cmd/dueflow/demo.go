package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/jackc/pgx/v5"
)

func init() {
	addCommand("demo", "run the whole pipeline locally with demo data (--once: one cycle, then exit)", cmdDemo)
}

// Fixed ports of the local stack (Supabase CLI's numbering).
const (
	portGateway     = 54321
	portPostgres    = 54322
	portMailpitUI   = 54324
	portMailpitSMTP = 54325
)

// demoStack is what the demo needs from the local stack; stack_devstack.go
// adapts internal/devstack to it.
type demoStack interface {
	DSN() string
	GatewayURL() string
	// Tick runs one cycle (the cron jobs' SQL) and waits until the pg_net
	// stand-in has delivered what it queued; it describes what happened.
	Tick(ctx context.Context) (string, error)
	// EmailCount is the number of emails the inbox (Mailpit) holds.
	EmailCount(ctx context.Context) (int, error)
	// SMSCount is the number of SMS the Telnyx-compatible sink recorded.
	SMSCount() int
	// LogDir is where every process of the stack writes its log.
	LogDir() string
	Close(ctx context.Context) error
}

// demoOptions are the parsed flags of `dueflow demo`.
type demoOptions struct {
	Once     bool
	StateDir string
	Timeout  time.Duration
}

func parseDemoFlags(args []string, stderr io.Writer) (demoOptions, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demoOptions
	fs.BoolVar(&o.Once, "once", false, "run one cycle (and the follow-ups it needs), print the summary and exit: 0 only when every due demo execution reached a final status")
	fs.StringVar(&o.StateDir, "state-dir", "", "data directory of the local stack (default <repo>/.dueflow/demo)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "with --once: give up when executions are still open after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.Timeout <= 0 {
		return o, errors.New("--timeout must be positive")
	}
	return o, nil
}

// demoStackConfig is what cmdDemo asks the local stack for.
type demoStackConfig struct {
	Root, StateDir string
	Logger         *slog.Logger
	Progress       func(string)
}

// startDemoStack starts the local stack; set by stack_devstack.go.
var startDemoStack func(ctx context.Context, cfg demoStackConfig) (demoStack, error)

func cmdDemo(ctx context.Context, args []string) error {
	opts, err := parseDemoFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(root, ".dueflow", "demo")
	}
	return runDemo(ctx, root, opts, os.Stdout)
}

func runDemo(ctx context.Context, root string, opts demoOptions, out io.Writer) (err error) {
	began := time.Now()
	progress := func(msg string) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(began).Seconds(), msg)
	}
	if err := ensureInstalled(ctx, root, progress, out); err != nil {
		return err
	}
	if startDemoStack == nil {
		return errors.New("this build has no local stack (internal/devstack)")
	}
	logDir := filepath.Join(opts.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, "dueflow-demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, nil))

	progress("starting the local stack (Postgres + pg_cron, PostgREST stand-in, pg_net worker, functions under the Lambda RIE, Mailpit)")
	stack, err := startDemoStack(ctx, demoStackConfig{Root: root, StateDir: opts.StateDir, Logger: logger, Progress: progress})
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer func() {
		progress("stopping the local stack")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := stack.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the local stack: %w", cerr))
			return
		}
		progress("stopped: no process of the demo is left running")
	}()

	conn, err := connect(ctx, stack.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	progress("seeding the demo data (3 organisations: New York, London, Sydney; the demo organisations are reset first)")
	if err := demodata.Seed(ctx, conn, time.Now()); err != nil {
		return err
	}
	progress("running the first cycle now (the SQL the pg_cron jobs run, then the functions)")
	desc, err := stack.Tick(ctx)
	if err != nil {
		return fmt.Errorf("first cycle: %w", err)
	}
	progress("cycle done: " + desc)

	if opts.Once {
		if err := finishOpen(ctx, conn, stack, time.Now().Add(opts.Timeout), progress); err != nil {
			return err
		}
	}
	sum, err := readSummary(ctx, conn)
	if err != nil {
		return err
	}
	inbox, err := stack.EmailCount(ctx)
	if err != nil {
		return fmt.Errorf("read the inbox: %w", err)
	}
	mailpit := fmt.Sprintf("http://127.0.0.1:%d", portMailpitUI)
	fmt.Fprintln(out)
	if err := sum.writeTable(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nemails:   %s (Mailpit; %d messages in the inbox)\n", mailpit, inbox)
	fmt.Fprintf(out, "sms:      %d recorded by the Telnyx-compatible sink\n", stack.SMSCount())
	fmt.Fprintf(out, "database: %s (try: go run ./cmd/dueflow status)\n", stack.DSN())
	fmt.Fprintf(out, "gateway:  %s/functions/v1/<function>\n", stack.GatewayURL())
	fmt.Fprintf(out, "logs:     %s\n", stack.LogDir())

	if opts.Once {
		open := sum.Open()
		// The last line is fixed; scripts read it.
		fmt.Fprintln(out, sum.Line())
		if open > 0 {
			return fmt.Errorf("%d demo executions did not reach a final status", open)
		}
		return nil
	}

	fmt.Fprintf(out, "\npg_cron now runs a cycle every minute; logs are in %s.\nPress Ctrl-C to stop every process the demo started.\n", stack.LogDir())
	fmt.Fprintln(out, sum.Line())
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	last := sum.Line()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return nil
		case <-tick.C:
			s, err := readSummary(ctx, conn)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if l := s.Line(); l != last {
				progress(l)
				last = l
			}
		}
	}
}

// finishOpen ticks again while demo executions are still open and their next
// attempt falls before deadline: a delay step (snoozed) or a retry comes back
// as pending with a later next_attempt_at.
func finishOpen(ctx context.Context, conn *pgx.Conn, stack demoStack, deadline time.Time, progress func(string)) error {
	for {
		var open int
		var next *time.Time
		err := conn.QueryRow(ctx, `
select count(*), min(next_attempt_at) filter (where status = 'pending')
  from automation_execution_logs
 where organization_id = any($1) and status in ('pending', 'running')`, demodata.OrgIDs).Scan(&open, &next)
		if err != nil {
			return fmt.Errorf("read open executions: %w", err)
		}
		if open == 0 {
			return nil
		}
		wake := time.Now().Add(2 * time.Second) // running: wait for the report or the lease
		if next != nil && next.After(wake) {
			wake = *next
		}
		if wake.After(deadline) {
			progress(fmt.Sprintf("%d executions still open; the next is due at %s, after the --timeout", open, wake.Format(time.TimeOnly)))
			return nil
		}
		if d := time.Until(wake); d > 5*time.Second {
			progress(fmt.Sprintf("%d executions open (e.g. a delay step); next cycle at %s (in %s)", open, wake.Format(time.TimeOnly), d.Round(time.Second)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(wake) + 500*time.Millisecond):
		}
		desc, err := stack.Tick(ctx)
		if err != nil {
			return fmt.Errorf("follow-up cycle: %w", err)
		}
		progress("cycle done: " + desc)
	}
}
