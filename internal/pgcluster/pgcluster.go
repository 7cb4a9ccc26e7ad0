// Package pgcluster starts and stops a private PostgreSQL 15 cluster with
// pg_cron preloaded, for local development and tests. When the process runs
// as root, initdb and the server run as the `postgres` user (runuser), since
// PostgreSQL refuses to run as root.
package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dueflow/dueflow/internal/localports"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// CronDatabase is the default database pg_cron lives in (cron.database_name);
// the pg_cron extension is created there when the cluster starts.
const CronDatabase = "postgres"

// Superuser is the cluster's superuser (trust authentication on loopback).
const Superuser = "postgres"

// Options configure Start.
type Options struct {
	// Dir is the data directory. An existing cluster in it is reused.
	Dir string
	// Port to listen on (127.0.0.1 only); 0 picks a free port.
	Port int
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
	// Fast disables durability (fsync, full_page_writes, synchronous_commit):
	// for throw-away test clusters only.
	Fast bool
	// CronDatabase is cron.database_name, the one database pg_cron runs its
	// jobs in; it is created when missing. Empty means CronDatabase
	// ("postgres"). The local stack sets it to its application database so
	// that the migrations schedule the jobs there.
	CronDatabase string
}

// Cluster is a running private PostgreSQL cluster.
type Cluster struct {
	dir    string
	port   int
	bin    string
	runAs  string // "" or the user initdb/pg_ctl run as
	cronDB string
	logger *slog.Logger
}

// BinDir returns the directory of the PostgreSQL 15 server binaries: $PG_BINDIR,
// else /usr/lib/postgresql/15/bin, else `pg_config --bindir`.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err == nil {
		return "/usr/lib/postgresql/15/bin", nil
	}
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL 15 server binaries not found (install postgresql-15 and postgresql-15-cron, or set PG_BINDIR)")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// is not one of the local stack's fixed ports (localports.FreePort).
func FreePort() (int, error) { return localports.FreePort() }

// Start initialises Dir when it holds no cluster yet, starts the server and
// creates the pg_cron extension in CronDatabase.
//
// Long: initdb, configuration, start and pg_cron setup in the order Postgres needs them
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is required")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: data dir: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, logger: logger, cronDB: o.CronDatabase}
	if c.cronDB == "" {
		c.cronDB = CronDatabase
	}
	if os.Geteuid() == 0 {
		c.runAs = Superuser
	}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := c.initdb(ctx, o.Fast); err != nil {
			return nil, err
		}
	} else {
		logger.Info("pgcluster: reusing data directory", "dir", dir)
		if err := c.writeConf(o.Fast); err != nil {
			return nil, err
		}
	}
	tries := 1
	if o.Port == 0 {
		tries = 4
	}
	for i := 0; i < tries; i++ {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		c.port = port
		if err = c.start(ctx); err == nil {
			break
		}
		logger.Warn("pgcluster: start failed", "port", port, "error", err)
	}
	if err != nil {
		return nil, err
	}
	if err := c.ensureCron(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	logger.Info("pgcluster: started", "dir", dir, "port", c.port)
	return c, nil
}

// Dir returns the data directory.
func (c *Cluster) Dir() string { return c.dir }

// Port returns the TCP port the server listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

// DSN returns a connection string for the superuser to dbname.
func (c *Cluster) DSN(dbname string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.port, dbname)
}

// Connect opens a superuser connection to dbname.
func (c *Cluster) Connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.DSN(dbname))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: connect %s: %w", dbname, err)
	}
	cfg.DialFunc = localports.DialContext // no TIME-WAIT left on the stack's ports
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: connect %s: %w", dbname, err)
	}
	return conn, nil
}

// Stop shuts the server down (fast mode) and waits until it has exited.
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.run(ctx, c.bin+"/pg_ctl", "stop", "-D", c.dir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pgcluster: stop: %w", err)
	}
	c.logger.Info("pgcluster: stopped", "dir", c.dir)
	return nil
}

// CronDatabase returns the database pg_cron runs its jobs in.
func (c *Cluster) CronDatabase() string { return c.cronDB }

// LogFile returns the path of the server log.
func (c *Cluster) LogFile() string { return filepath.Join(c.dir, "postgresql.log") }

func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: create data dir: %w", err)
	}
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return fmt.Errorf("pgcluster: running as root needs the %q user: %w", c.runAs, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(c.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("pgcluster: chown data dir to %s: %w", c.runAs, err)
	}
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: chmod data dir: %w", err)
	}
	// The postgres user must be able to reach the directory.
	if err := c.run(context.Background(), "test", "-w", c.dir); err != nil {
		return fmt.Errorf("pgcluster: %s cannot access %s (every parent directory must be searchable by %s; use a directory under /tmp): %w", c.runAs, c.dir, c.runAs, err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context, fast bool) error {
	c.logger.Info("pgcluster: initdb", "dir", c.dir)
	args := []string{"-D", c.dir, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
	if fast {
		args = append(args, "--no-sync")
	}
	if err := c.run(ctx, c.bin+"/initdb", args...); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: postgresql.conf: %w", err)
	}
	_, err = f.WriteString("\ninclude_if_exists = 'dueflow.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: postgresql.conf: %w", err)
	}
	return c.writeConf(fast)
}

// writeConf writes dueflow.conf, included by postgresql.conf.
func (c *Cluster) writeConf(fast bool) error {
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = ''",
		// pg_stat_statements and auto_explain are loaded for profiles
		// (internal/stacktest's BENCH_PROFILE) but do nothing until a
		// superuser turns pg_stat_statements.track or
		// auto_explain.log_min_duration on: no cost to other work.
		"shared_preload_libraries = 'pg_cron,pg_stat_statements,auto_explain'",
		"pg_stat_statements.track = 'none'",
		"auto_explain.log_min_duration = -1",
		"cron.database_name = '" + c.cronDB + "'",
		"cron.use_background_workers = on",
		"max_worker_processes = 32",
		"max_connections = 200",
		"timezone = 'UTC'",
		"log_timezone = 'UTC'",
		"logging_collector = off",
	}
	if fast {
		conf = append(conf,
			"fsync = off",
			"synchronous_commit = off",
			"full_page_writes = off",
			"shared_buffers = '512MB'",
			"checkpoint_timeout = '30min'",
			"max_wal_size = '2GB'",
		)
	}
	p := filepath.Join(c.dir, "dueflow.conf")
	if err := os.WriteFile(p, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgcluster: write dueflow.conf: %w", err)
	}
	if c.runAs != "" {
		if u, err := user.Lookup(c.runAs); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = os.Chown(p, uid, gid)
		}
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	err := c.run(ctx, c.bin+"/pg_ctl", "start", "-D", c.dir, "-w", "-t", "60",
		"-l", c.LogFile(), "-o", fmt.Sprintf("-p %d", c.port))
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start (log %s): %w%s", c.LogFile(), err, c.logTail())
	}
	return nil
}

func (c *Cluster) ensureCron(ctx context.Context) error {
	if c.cronDB != "postgres" {
		admin, err := c.Connect(ctx, "postgres")
		if err != nil {
			return err
		}
		var exists bool
		err = admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", c.cronDB).Scan(&exists)
		if err == nil && !exists {
			_, err = admin.Exec(ctx, "create database "+pgx.Identifier{c.cronDB}.Sanitize())
		}
		admin.Close(ctx)
		if err != nil {
			return fmt.Errorf("pgcluster: create cron database %s: %w", c.cronDB, err)
		}
	}
	conn, err := c.Connect(ctx, c.cronDB)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "create extension if not exists pg_cron"); err != nil {
		return fmt.Errorf("pgcluster: create extension pg_cron: %w", err)
	}
	return nil
}

func (c *Cluster) logTail() string {
	f, err := os.Open(c.LogFile())
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return "\n" + strings.Join(lines, "\n")
}

// run executes a command, as c.runAs when set.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Beginner is what ApplySQL needs: *pgx.Conn, *pgxpool.Pool and pgx.Tx have it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ApplySQL runs one SQL script (several statements) in one transaction,
// serialised against concurrent appliers by an advisory lock.
func ApplySQL(ctx context.Context, db Beginner, name, script string) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("apply %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock(7243100001)"); err != nil {
		return fmt.Errorf("apply %s: lock: %w", name, err)
	}
	if _, err := tx.Conn().PgConn().Exec(ctx, script).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("apply %s: %s (line %d, position %d, where %s): %w", name, pgErr.Message, pgErr.Line, pgErr.Position, pgErr.Where, err)
		}
		return fmt.Errorf("apply %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("apply %s: commit: %w", name, err)
	}
	return nil
}

// ApplyFS runs the *.sql files at the top of fsys (sqlfiles.FilesOf: the
// core's sqlfiles.FS(), sqlfiles.ReferenceFS() or ReplacedSystemFS()) in lexical
// order, each in its own transaction (ApplySQL). The migrations are
// idempotent, so applying them again is safe.
func ApplyFS(ctx context.Context, db Beginner, fsys fs.FS) error {
	fl, err := sqlfiles.FilesOf(fsys)
	if err != nil {
		return err
	}
	for _, f := range fl {
		if err := ApplySQL(ctx, db, f.Name, f.SQL); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
	}
	return nil
}

// WaitReady waits until the server accepts connections to dbname.
func (c *Cluster) WaitReady(ctx context.Context, dbname string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.DSN(dbname))
		if err == nil {
			return conn.Close(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgcluster: not ready: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StopDir stops a server running on data directory dir (immediate mode), for
// cleaning up after a process that died without calling Stop. It is a no-op
// when no server runs there.
func StopDir(ctx context.Context, dir string) error {
	bin, err := BinDir()
	if err != nil {
		return err
	}
	c := &Cluster{dir: dir, bin: bin, logger: slog.New(slog.DiscardHandler)}
	if os.Geteuid() == 0 {
		c.runAs = Superuser
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		return nil
	}
	if err := c.run(ctx, c.bin+"/pg_ctl", "stop", "-D", dir, "-m", "immediate", "-w", "-t", "30"); err != nil {
		return fmt.Errorf("pgcluster: stop %s: %w", dir, err)
	}
	return nil
}
