package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
)

// localDSN is the database of the local stack (`dueflow demo`).
const localDSN = "postgres://postgres@127.0.0.1:54322/dueflow"

// dbFlag registers --db on fs: default DATABASE_URL, else the local stack.
func dbFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("DATABASE_URL")
	if def == "" {
		def = localDSN
	}
	return fs.String("db", def, "Postgres connection string ($DATABASE_URL when set, else the local stack)")
}

// connect opens one connection with a bounded connect time and UTC session
// time zone, so printed times read the same everywhere.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse --db: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5e9 // 5s
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["application_name"] = "dueflow-cli"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return conn, nil
}

// connectFromArgs parses a command's only flag, --db, refuses positional
// arguments and connects: the common start of status and tick.
func connectFromArgs(ctx context.Context, name string, args []string) (*pgx.Conn, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	db := dbFlag(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return connect(ctx, *db)
}
