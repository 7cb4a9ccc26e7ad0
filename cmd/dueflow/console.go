package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/shared/redact"
)

// portConsole is the console's port in the local stack (Supabase Studio's).
const portConsole = 54323

// consoleTokenEnv holds the login token when --token is not given.
const consoleTokenEnv = "DUEFLOW_CONSOLE_TOKEN"

// consoleOptions are the parsed flags of `dueflow console`.
type consoleOptions struct {
	DB, Addr, Token, As string
	Actions             bool
}

func consoleUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow console [--addr HOST:PORT] [--actions] [--token T] [--as NAME] [--db URL]

Serves the operator console until interrupted: executions (filters, counts,
paging), one execution's timeline, workflows, cron jobs and queue health,
analytics. Bound to 127.0.0.1 by default; any other address requires a
login token (--token or $`+consoleTokenEnv+`). Read-only unless --actions
(retry, cancel, settle, pause, resume: each recorded in
automation_operator_actions with who did it, and logged).
`)
}

func parseConsoleFlags(args []string, stderr io.Writer) (consoleOptions, error) {
	fs := newFlagSet("console", stderr)
	var o consoleOptions
	db := dbFlag(fs)
	fs.StringVar(&o.Addr, "addr", fmt.Sprintf("127.0.0.1:%d", portConsole), "address to listen on")
	fs.BoolVar(&o.Actions, "actions", false, "enable retry, cancel, settle, pause and resume")
	fs.StringVar(&o.Token, "token", "", "login token (default: $"+consoleTokenEnv+"); required off loopback")
	fs.StringVar(&o.As, "as", "", "who acts without a login (default: the OS user name)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if err := noArgs(fs); err != nil {
		return o, err
	}
	o.DB = *db
	if o.Token == "" {
		o.Token = os.Getenv(consoleTokenEnv)
	}
	if o.As == "" {
		o.As = operatorName()
	}
	if err := console.CheckBind(o.Addr, o.Token); err != nil {
		return o, usageError{err: err}
	}
	return o, nil
}

func cmdConsole(ctx context.Context, args []string) error {
	o, err := parseConsoleFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	pool, err := consolePool(ctx, o.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv, err := console.New(console.Config{DB: pool, Token: o.Token, Actions: o.Actions, Actor: o.As, Logger: logger})
	if err != nil {
		return err
	}
	return console.Serve(ctx, o.Addr, srv, func(a net.Addr) {
		mode := "read-only"
		if o.Actions {
			mode = "actions enabled"
		}
		fmt.Fprintf(os.Stderr, "dueflow console: http://%s (%s)\n", a, mode)
	})
}

// consolePool opens a pool on dsn(db) for the console: UTC, a statement
// timeout, the console's application name.
func consolePool(ctx context.Context, db string) (*pgxpool.Pool, error) {
	conn := dsn(db)
	cfg, err := pgxpool.ParseConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("--db %s is not a valid Postgres connection string", redact.URL(conn))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5e9
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "dueflow-console"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "15000"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// startDemoConsole serves the console of the local stack on 127.0.0.1:port
// (0: any free port) with actions enabled and the stack's outbox, until
// stop is called or ctx ends. It answers the console's URL.
func startDemoConsole(ctx context.Context, stack *devstack.Stack, port int, logger *slog.Logger) (url string, stop func(), err error) {
	srv, err := console.New(console.Config{DB: stack.Pool(), Actions: true, Actor: operatorName(), Outbox: stack, Logger: logger})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- console.Serve(ctx, fmt.Sprintf("127.0.0.1:%d", port), srv, func(a net.Addr) { ready <- "http://" + a.String() })
	}()
	select {
	case url = <-ready:
	case err = <-done:
		cancel()
		return "", nil, fmt.Errorf("start the console: %w", err)
	}
	return url, func() {
		cancel()
		<-done
	}, nil
}
