package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/jackc/pgx/v5"
)

// Fixed ports of the local stack (Supabase CLI's numbering).
const (
	portGateway     = 54321
	portPostgres    = 54322
	portMailpitUI   = 54324
	portMailpitSMTP = 54325
)

// portWaitMax bounds the wait for a fixed port held by a leftover
// connection (Linux keeps a TIME-WAIT for 60 s).
const portWaitMax = 65 * time.Second

// demoOptions are the parsed flags of `dueflow demo`.
type demoOptions struct {
	Once     bool
	StateDir string
	Timeout  time.Duration
	Ports    demoPorts
}

// demoPorts are the local stack's listening ports.
type demoPorts struct{ Postgres, Gateway, MailpitSMTP, MailpitUI, Console int }

// list returns the ports in the order the stack binds them; the demo checks
// each before it starts (a new fixed port goes here too).
func (p demoPorts) list() []int {
	var out []int
	for _, port := range []int{p.Postgres, p.MailpitSMTP, p.MailpitUI, p.Gateway, p.Console} {
		if port != 0 { // 0: any free port (tests)
			out = append(out, port)
		}
	}
	return out
}

// fixedPorts are the demo's documented ports (Supabase CLI's numbering).
var fixedPorts = demoPorts{Postgres: portPostgres, Gateway: portGateway, MailpitSMTP: portMailpitSMTP, MailpitUI: portMailpitUI, Console: portConsole}

func demoUsage(w io.Writer) {
	fmt.Fprintf(w, `usage: dueflow demo [--once] [--timeout D] [--state-dir DIR]

Starts the local stack (Postgres 15 + pg_cron, the PostgREST stand-in, the
pg_net stand-in, the functions under the Lambda RIE, Mailpit, the SMS sink),
seeds the demo data and runs a cycle; then pg_cron runs one every minute
until Ctrl-C. Its fixed ports: %d (gateway), %d (Postgres), %d (console),
%d (Mailpit web), %d (Mailpit SMTP). A port held by a listener is named with its process and
the demo stops; a port held by a leftover connection (TIME-WAIT) is waited
out, at most %s.
`, portGateway, portPostgres, portConsole, portMailpitUI, portMailpitSMTP, portWaitMax)
}

func parseDemoFlags(args []string, stderr io.Writer) (demoOptions, error) {
	fs := newFlagSet("demo", stderr)
	o := demoOptions{Ports: fixedPorts}
	fs.BoolVar(&o.Once, "once", false, "run one cycle (and the follow-ups it needs), print the summary and exit: 0 only when every due demo execution reached a final status")
	fs.StringVar(&o.StateDir, "state-dir", "", "data directory of the local stack (default <repo>/.dueflow/demo)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "with --once: give up when executions are still open after this long")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if err := noArgs(fs); err != nil {
		return o, err
	}
	if o.Timeout <= 0 {
		return o, usageErrorf("--timeout must be positive")
	}
	return o, nil
}

func cmdDemo(ctx context.Context, args []string) error {
	opts, err := parseDemoFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	root, err := rootAndStateDir(&opts.StateDir)
	if err != nil {
		return err
	}
	line, err := runDemo(ctx, root, opts, os.Stdout)
	if line == "" {
		return err
	}
	// The summary line comes last, after the stack has stopped: scripts
	// read it (tail -n 1).
	if err != nil {
		fmt.Fprintf(os.Stderr, "dueflow demo: %v\n", err)
	}
	fmt.Println(line)
	if err != nil {
		return exitCode(1)
	}
	return nil
}

// runDemo runs the demo and returns its summary line ("" when it failed
// before there was anything to count), to be printed after everything has
// stopped.
//
// Long: the demo's script, one narrated sequence of steps read top to bottom; its parts are already named functions
func runDemo(ctx context.Context, root string, opts demoOptions, out io.Writer) (line string, err error) {
	began := time.Now()
	progress := func(msg string) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(began).Seconds(), msg)
	}
	logDir := filepath.Join(opts.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return "", fmt.Errorf("log dir: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, "dueflow-demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, nil))

	if err := stopLeftoverPostgres(ctx, filepath.Join(opts.StateDir, "pg"), progress); err != nil {
		return "", err
	}
	// A fixed port may be held: by a server (named, the demo stops) or by a
	// leftover connection that was given it as its ephemeral port (waited out).
	if err := localports.WaitFree(ctx, opts.Ports.list(), portWaitMax, progress); err != nil {
		return "", err
	}
	if err := ensureInstalled(ctx, root, progress, out); err != nil {
		return "", err
	}
	progress("starting the local stack: Postgres + pg_cron, PostgREST stand-in, pg_net worker, functions under the Lambda RIE (provider-events too), Mailpit")
	// The stack gets its own context: Ctrl-C during start-up cancels it, but
	// once it runs the demo stops it itself (after the last summary).
	stackCtx, cancelStack := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStack()
	stopWatch := context.AfterFunc(ctx, cancelStack)
	stack, err := devstack.Start(stackCtx, devstack.Config{
		Root:          root,
		StateDir:      opts.StateDir,
		PGPort:        opts.Ports.Postgres,
		GatewayPort:   opts.Ports.Gateway,
		SMTPPort:      opts.Ports.MailpitSMTP,
		MailpitUIPort: opts.Ports.MailpitUI,
		UseMailpit:    true,
		SMSProvider:   "telnyx",
		Functions:     append(append([]string(nil), automation.Actions...), devstack.ProviderEventsFunction),
		Logger:        logger,
		Progress:      func(msg string) { progress("  " + msg) },
	})
	stopWatch()
	if err != nil {
		return "", fmt.Errorf("start the local stack: %w", err)
	}
	envFile := functionEnvFile(opts.StateDir)
	defer func() {
		_ = os.Remove(envFile)
		progress("stopping the local stack")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := stack.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the local stack: %w", cerr))
			return
		}
		progress("stopped: every process the demo started has exited")
	}()
	if err := writeEnvFile(envFile, stack.FunctionEnvironment()); err != nil {
		return "", err
	}

	conn, err := connect(ctx, stack.DSN())
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	consoleURL, stopConsole, err := startDemoConsole(stackCtx, stack, opts.Ports.Console, logger)
	if err != nil {
		return "", err
	}
	defer stopConsole()

	progress("seeding the demo data (3 organisations: New York, London, Sydney; the demo organisations are reset first)")
	if err := demodata.Seed(ctx, conn, time.Now()); err != nil {
		return "", err
	}
	progress("running the first cycle now (the SQL the pg_cron jobs run, then the functions)")
	res, err := stack.Tick(ctx)
	if err != nil {
		return "", fmt.Errorf("first cycle: %w", err)
	}
	progress("cycle done: " + res.String())

	if opts.Once {
		if err := finishOpen(ctx, conn, stack, time.Now().Add(opts.Timeout), progress); err != nil {
			return "", err
		}
	}
	if err := playProviders(ctx, stack, progress); err != nil {
		return "", err
	}
	sum, err := readSummary(ctx, conn)
	if err != nil {
		return "", err
	}
	optOuts, err := readOptOuts(ctx, conn)
	if err != nil {
		return "", err
	}
	inbox, err := stack.EmailCount(ctx)
	if err != nil {
		return "", fmt.Errorf("read the inbox: %w", err)
	}
	fmt.Fprintln(out)
	if err := sum.writeTable(out); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "\nconsole:  %s (executions, timelines, retry/cancel, cron runs; the outbox: every email and SMS)\n", consoleURL)
	fmt.Fprintf(out, "emails:   http://127.0.0.1:%d (Mailpit's API; %d messages in the inbox)\n", opts.Ports.MailpitUI, inbox)
	fmt.Fprintf(out, "sms:      %d recorded by the Telnyx-compatible sink\n", len(stack.SMS()))
	fmt.Fprintf(out, "%s (provider-events: %s)\n", optOuts.Line(), stack.ProviderEventsURL())
	fmt.Fprintf(out, "database: %s (go run ./cmd/dueflow status)\n", stack.DSN())
	fmt.Fprintf(out, "gateway:  %s/functions/v1/<function>\n", stack.GatewayURL())
	fmt.Fprintf(out, "logs:     %s\n", stack.LogDir())
	if opts.Once {
		if open := sum.Open(); open > 0 {
			return sum.Line(), fmt.Errorf("%d demo executions did not reach a final status (see the OPEN column and the logs)", open)
		}
		return sum.Line(), nil
	}

	fmt.Fprintf(out, "\n%s\npg_cron now runs a cycle every minute (jobs in the dueflow database); logs are in %s.\n"+
		"Try in another terminal: go run ./cmd/dueflow status | make invoke FN=send-reminder\n"+
		"Press Ctrl-C to stop every process the demo started.\n", sum.Line(), stack.LogDir())
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	last := sum.Line()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			s, err := readSummary(context.WithoutCancel(ctx), conn)
			if err != nil {
				return last, nil
			}
			return s.Line(), nil
		case <-tick.C:
			s, err := readSummary(ctx, conn)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				return last, err
			}
			if l := s.Line(); l != last {
				progress(l)
				last = l
			}
		}
	}
}

// finishOpen waits while demo executions are still open, running a cycle
// whenever one of them can move: a pending row is dispatched when due (a
// delay step or a retry comes back as pending with a later next_attempt_at),
// and rung again redispatchAfter after its last dispatch; a running row
// finishes when its function reports. It gives up at deadline.
func finishOpen(ctx context.Context, conn *pgx.Conn, stack *devstack.Stack, deadline time.Time, progress func(string)) error {
	const poll = 3 * time.Second
	lastKey := ""
	for {
		var open, running int
		var next *time.Time
		err := conn.QueryRow(ctx, `
select count(*), count(*) filter (where status = 'running'),
       min(greatest(next_attempt_at, coalesce(dispatched_at + interval '2 minutes', next_attempt_at)))
         filter (where status = 'pending')
  from automation_execution_logs
 where organization_id = any($1) and status in ('pending', 'running')`, demodata.OrgIDs).Scan(&open, &running, &next)
		if err != nil {
			return fmt.Errorf("read open executions: %w", err)
		}
		if open == 0 {
			return nil
		}
		now := time.Now()
		if next != nil && !next.After(now) {
			res, err := stack.Tick(ctx)
			if err != nil {
				return fmt.Errorf("follow-up cycle: %w", err)
			}
			progress("cycle done: " + res.String())
			continue
		}
		if now.After(deadline) {
			progress(fmt.Sprintf("giving up: %d executions still open after --timeout", open))
			return nil
		}
		key := fmt.Sprintf("%d/%d/%v", open, running, next)
		if key != lastKey && (next == nil || next.Sub(now) > poll) {
			msg := fmt.Sprintf("%d executions open (%d running)", open, running)
			if next != nil {
				msg += fmt.Sprintf("; waiting for their next step at %s (in %s: e.g. a delay step)",
					next.Local().Format(time.TimeOnly), next.Sub(now).Round(time.Second))
			}
			progress(msg)
			lastKey = key
		}
		wait := poll
		if next != nil && next.Sub(now) < wait {
			wait = next.Sub(now) + 100*time.Millisecond
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while %d executions were open: %w", open, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// playProviders plays the recipients' and the carrier's side once, through
// provider-events as the providers call it: the first email with a
// one-click link is unsubscribed from (the POST a mail client sends), the
// number of the first SMS replies STOP, every SMS to the next number fails
// for good (Telnyx 40001, not routable: a hard bounce) and every other SMS
// is reported delivered.
//
// Long: the demo's scripted provider answers, one case per provider, as the doc comment lists them
func playProviders(ctx context.Context, stack *devstack.Stack, progress func(string)) error {
	emails, err := stack.Emails(ctx)
	if err != nil {
		return fmt.Errorf("read the inbox: %w", err)
	}
	for _, e := range emails {
		link := devstack.UnsubscribeLink(e.Text, stack.ProviderEventsURL())
		if link == "" {
			continue
		}
		status, err := devstack.PostOneClick(ctx, link)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("one-click unsubscribe: provider-events answered HTTP %d", status)
		}
		progress("a recipient unsubscribed with the one-click link of a non-transactional email")
		break
	}
	var numbers []string // in order of the first SMS to each
	firsts := map[string]devstack.SMS{}
	sms := stack.SMS()
	for _, m := range sms {
		if _, ok := firsts[m.To]; !ok {
			firsts[m.To] = m
			numbers = append(numbers, m.To)
		}
	}
	post := func(what string, status int, err error) error {
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: provider-events answered HTTP %d", what, status)
		}
		return nil
	}
	if len(numbers) > 0 {
		m := firsts[numbers[0]]
		status, err := stack.Telnyx().PostInbound(ctx, m.To, m.From, "STOP")
		if err := post("inbound STOP", status, err); err != nil {
			return err
		}
		progress("an SMS recipient replied STOP")
	}
	bounced, delivered := 0, 0
	for _, m := range sms {
		report, code := "delivered", ""
		if len(numbers) > 1 && m.To == numbers[1] {
			report, code = "delivery_failed", "40001"
			bounced++
		} else {
			delivered++
		}
		status, err := stack.Telnyx().PostDeliveryReport(ctx, m, report, code)
		if err := post("delivery report", status, err); err != nil {
			return err
		}
	}
	if len(sms) > 0 {
		progress(fmt.Sprintf("the SMS sink reported %d SMS delivered, %d failed for good (not routable)", delivered, bounced))
	}
	return nil
}
