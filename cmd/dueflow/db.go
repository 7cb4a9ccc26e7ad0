package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/shared/redact"
)

// localDSN is the database of the local stack (`dueflow demo`).
const localDSN = "postgres://postgres@127.0.0.1:54322/dueflow"

// dbFlag registers --db on fs. Its default is empty, never $DATABASE_URL
// itself: a flag's default is printed by -h and by every flag error, and
// DATABASE_URL usually holds a password. connect resolves "" (dsn).
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "", "Postgres connection string (default: $DATABASE_URL when set, else the local stack)")
}

// dsn is the connection string --db names: the flag, else $DATABASE_URL,
// else the local stack.
func dsn(flagValue string) string {
	switch {
	case flagValue != "":
		return flagValue
	case os.Getenv("DATABASE_URL") != "":
		return os.Getenv("DATABASE_URL")
	}
	return localDSN
}

// connect opens one connection to dsn(db) with a bounded connect time and
// UTC session time zone, so printed times read the same everywhere. Its
// errors show the connection string only masked (redact.URL).
func connect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn := dsn(db)
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		// pgx's message may quote the string (a URL it cannot parse is
		// quoted by net/url as is): name it masked instead.
		return nil, fmt.Errorf("--db %s is not a valid Postgres connection string (postgres://user:password@host:port/database)", redact.URL(conn))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5e9 // 5s
	}
	// a connection never takes one of the local stack's fixed ports as its
	// local port: closed, it would keep it in TIME-WAIT from `dueflow demo`
	cfg.DialFunc = localports.DialContext
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["application_name"] = "dueflow-cli"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return c, nil
}

// withConn connects to db (see connect), runs f with the connection and
// closes it.
func withConn(ctx context.Context, db string, f func(*pgx.Conn) error) error {
	conn, err := connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// connectFromArgs parses a command's only flag, --db, refuses positional
// arguments and connects: the start of a command without flags of its own.
func connectFromArgs(ctx context.Context, name string, args []string) (*pgx.Conn, error) {
	fs := newFlagSet(name, os.Stderr)
	db := dbFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	return connect(ctx, *db)
}
