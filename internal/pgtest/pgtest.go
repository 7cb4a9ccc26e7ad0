// Package pgtest is the Postgres test harness: one private PostgreSQL 15 +
// pg_cron cluster per test binary (started lazily, stopped by Main), a
// template database with the Supabase compatibility SQL, the core migrations
// and the reference domain applied, and an isolated clone of it per test
// (CREATE DATABASE ... TEMPLATE); NewCoreDB clones a second template without
// the reference domain, NewEmptyDB has the compatibility SQL only.
// It never skips: without PostgreSQL the test fails with a clear message.
//
// Beside the harness it holds what the database tests share: fixtures
// (CreateOrg, CreateInvoice, OverdueInvoices, ...), one-value queries (Int,
// Text, Exec, JSON) and the RPC calls of the contract (Claim, ClaimDue,
// Report, BeginDeliveries, RecordDeliveries). Use them rather than writing local copies.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/supacompat"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// TemplateDB is the name of the template database (core and reference domain).
const TemplateDB = "dueflow_template"

// CoreTemplateDB is the name of the template database with the core
// migrations only (NewCoreDB); built on first use.
const CoreTemplateDB = "dueflow_core_template"

// binary is the harness state of one test binary. Every field is set once,
// inside its sync.Once (start, stop, core, cron), and only read after it; seq
// and cloneMu are safe for concurrent use. There is no setter: tests cannot
// change it.
type binary struct {
	start   sync.Once
	cluster *pgcluster.Cluster // nil when err is set
	dir     string             // the cluster's temp dir
	err     error              // why the cluster did not start (or stoppedMsg)

	stop    sync.Once
	stopped atomic.Bool

	core onceErr // CoreTemplateDB built
	cron onceErr // the pg_cron database prepared

	seq     atomic.Int64
	cloneMu sync.Mutex // CREATE DATABASE ... TEMPLATE needs the template to be idle
}

// onceErr runs a preparation once and remembers its error.
type onceErr struct {
	once sync.Once
	err  error
}

// do runs prepare on the first call; every call returns its error.
func (o *onceErr) do(prepare func() error) error {
	o.once.Do(func() { o.err = prepare() })
	return o.err
}

// stoppedMsg is why Cluster fails after Shutdown.
const stoppedMsg = "the cluster was stopped (Shutdown)"

// harness is the test binary's harness state (see binary), the package's
// only variable.
var harness binary

// nextName returns a new database name with prefix, unique in the cluster.
func nextName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), harness.seq.Add(1))
}

// Main runs the tests of a package and stops the cluster afterwards. Use it
// from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the cluster (if started) and removes its directory; once
// stopped, Cluster fails the tests that ask for it. Later calls do nothing.
func Shutdown() {
	harness.stop.Do(func() {
		// Marks the start done if it never ran; waits for it if it runs.
		harness.start.Do(func() { harness.err = errors.New(stoppedMsg) })
		harness.stopped.Store(true)
		if harness.cluster != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := harness.cluster.Stop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "pgtest:", err)
			}
		}
		if harness.dir != "" {
			_ = os.RemoveAll(harness.dir)
		}
	})
}

// Cluster returns the shared cluster, starting it and building the template
// database on first use. It fails the test when PostgreSQL cannot start.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	harness.start.Do(func() { harness.cluster, harness.dir, harness.err = startCluster() })
	if harness.stopped.Load() {
		t.Fatal("pgtest: " + stoppedMsg)
	}
	if harness.err != nil {
		t.Fatalf("pgtest: PostgreSQL 15 with pg_cron is required (Debian: apt-get install postgresql-15 postgresql-15-cron): %v", harness.err)
	}
	return harness.cluster
}

// startCluster starts a cluster in a new temp dir and builds TemplateDB in
// it; it returns the cluster and its dir, or removes the dir on failure.
func startCluster() (*pgcluster.Cluster, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reapOrphans(ctx)
	// Under os.TempDir so that the postgres user can reach it when we are root.
	dir, err := os.MkdirTemp("", "dueflow-pgtest-")
	if err != nil {
		return nil, "", fmt.Errorf("temp dir: %w", err)
	}
	c, err := startIn(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	return c, dir, nil
}

// startIn starts the cluster under dir (recording this binary as its owner)
// and builds TemplateDB.
func startIn(ctx context.Context, dir string) (*pgcluster.Cluster, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir + "/data", Fast: true, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := buildTemplate(ctx, c, TemplateDB, Prepare); err != nil {
		_ = c.Stop(ctx)
		return nil, err
	}
	return c, nil
}

// buildTemplate creates the template database name and runs prepare on it.
func buildTemplate(ctx context.Context, c *pgcluster.Cluster, name string, prepare func(context.Context, pgcluster.Beginner) error) error {
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create template database %s: %w", name, err)
	}
	conn, err := c.Connect(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return prepare(ctx, conn)
}

// Prepare applies the compatibility SQL, the core migrations and the
// reference domain to a database.
func Prepare(ctx context.Context, db pgcluster.Beginner) error {
	if err := supacompat.Apply(ctx, db); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return Migrate(ctx, db)
}

// Migrate applies the core migrations, then the reference domain, as the
// template has them (e.g. again, to test an upgrade).
func Migrate(ctx context.Context, db pgcluster.Beginner) error {
	if err := pgcluster.ApplyFS(ctx, db, sqlfiles.FS()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := pgcluster.ApplyFS(ctx, db, sqlfiles.ReferenceFS()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// PrepareCore applies the compatibility SQL and the core migrations (no
// reference domain) to a database.
func PrepareCore(ctx context.Context, db pgcluster.Beginner) error {
	if err := supacompat.Apply(ctx, db); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := pgcluster.ApplyFS(ctx, db, sqlfiles.FS()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// NewDB creates an isolated database for the test, cloned from the template,
// and returns a pool (superuser) and its DSN. Both are dropped at cleanup.
func NewDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	name := nextName("t")
	if err := createClone(ctx, c, name, TemplateDB); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return testDB(t, c, name)
}

// NewCoreDB is NewDB without the reference domain: the compatibility SQL and
// the core migrations only, as an app that adopts dueflow has them before it
// defines its own source views and hooks.
func NewCoreDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	if err := harness.core.do(func() error { return buildTemplate(ctx, c, CoreTemplateDB, PrepareCore) }); err != nil {
		t.Fatalf("pgtest: core template: %v", err)
	}
	name := nextName("c")
	if err := createClone(ctx, c, name, CoreTemplateDB); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return testDB(t, c, name)
}

// NewTemplate creates the database name as a clone of TemplateDB and fills
// it with fill (e.g. generated benchmark data), so that NewDBFrom can clone
// it for each test: the data is made once per binary, not per test. fill's
// pool is closed before NewTemplate returns; the database lives until
// Shutdown stops the cluster.
func NewTemplate(t testing.TB, name string, fill func(context.Context, *pgxpool.Pool) error) {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	if err := createClone(ctx, c, name, TemplateDB); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	pool, err := newPool(ctx, c.DSN(name))
	if err != nil {
		t.Fatalf("pgtest: pool for %s: %v", name, err)
	}
	err = fill(ctx, pool)
	pool.Close()
	if err != nil {
		t.Fatalf("pgtest: fill %s: %v", name, err)
	}
}

// NewDBFrom is NewDB cloned from template (made by NewTemplate) instead of
// TemplateDB.
func NewDBFrom(t testing.TB, template string) (*pgxpool.Pool, string) {
	t.Helper()
	c := Cluster(t)
	name := nextName("t")
	if err := createClone(context.Background(), c, name, template); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return testDB(t, c, name)
}

// testDB opens a pool on the test's database name and returns it with its
// DSN; the pool is closed and the database dropped at cleanup.
func testDB(t testing.TB, c *pgcluster.Cluster, name string) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := c.DSN(name)
	pool, err := newPool(context.Background(), dsn)
	if err != nil {
		dropDB(c, name)
		t.Fatalf("pgtest: pool for %s: %v", name, err)
	}
	t.Cleanup(func() {
		pool.Close()
		dropDB(c, name)
	})
	return pool, dsn
}

// NewEmptyDB creates a database for the test with the Supabase stand-ins
// (internal/supacompat) and nothing of dueflow, e.g. for a fixture of an
// existing install that dueflow is then applied to. It returns a pool
// (superuser) and its DSN; both are dropped at cleanup.
func NewEmptyDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	name := nextName("e")
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	_, err = admin.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize())
	_ = admin.Close(ctx)
	if err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	pool, dsn := testDB(t, c, name)
	if err := supacompat.Apply(ctx, pool); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return pool, dsn
}

func createClone(ctx context.Context, c *pgcluster.Cluster, name, template string) error {
	harness.cloneMu.Lock()
	defer harness.cloneMu.Unlock()
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	var lastErr error
	for i := 0; i < 50; i++ {
		_, lastErr = admin.Exec(ctx, fmt.Sprintf("create database %s template %s strategy file_copy", pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize()))
		if lastErr == nil {
			return nil
		}
		if !strings.Contains(lastErr.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("clone template into %s: %w", name, lastErr)
}

func dropDB(c *pgcluster.Cluster, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	_, _ = admin.Exec(ctx, fmt.Sprintf("drop database if exists %s with (force)", pgx.Identifier{name}.Sanitize()))
}

// CronDB returns a pool on the cluster's pg_cron database (pgcluster.CronDatabase)
// with the compatibility SQL and the migrations applied (so the cron jobs are
// scheduled there). It is shared by every test of the binary: use unique
// data and do not assume it is empty.
func CronDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	err := harness.cron.do(func() error {
		conn, err := c.Connect(ctx, c.CronDatabase())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return Prepare(ctx, conn)
	})
	if err != nil {
		t.Fatalf("pgtest: prepare cron database: %v", err)
	}
	dsn := c.DSN(c.CronDatabase())
	pool, err := newPool(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

// ownerFile records, in each cluster's temp dir, the pid of the test binary
// that started it.
const ownerFile = "owner.pid"

// reapOrphans stops and removes clusters left behind by test binaries that
// died without Shutdown (killed by a timeout, a panic in a test goroutine).
// Only directories this package created, whose owner process is gone.
func reapOrphans(ctx context.Context) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "dueflow-pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if err := pgcluster.StopDir(ctx, filepath.Join(d, "data")); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: orphan cluster:", err)
			continue
		}
		_ = os.RemoveAll(d)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// newPool opens a pool on dsn whose connections never take one of the local
// stack's fixed ports as their local port (localports.DialContext): a test's
// connection left in TIME-WAIT there would keep `dueflow demo` from binding it.
func newPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.DialFunc = localports.DialContext
	return pgxpool.NewWithConfig(ctx, cfg)
}
