package pgtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dueflow/dueflow/internal/pgcluster"
	migrations "github.com/dueflow/dueflow/sql"
)

// ApplyMigration applies the one migration of sql/ named name (e.g.
// "20261202000500_replaced_jobs_and_views.sql") in its own transaction, as
// migrations.Apply applies each file.
func ApplyMigration(ctx context.Context, db pgcluster.Beginner, name string) error {
	fl, err := migrations.Files()
	if err != nil {
		return err
	}
	for _, f := range fl {
		if f.Name == name {
			return pgcluster.ApplySQL(ctx, db, f.Name, f.SQL)
		}
	}
	return fmt.Errorf("pgtest: no migration named %s", name)
}

// NoticeConn opens a connection to dsn (closed at cleanup) that records the
// messages (NOTICE, WARNING) the server sends; notices returns those received
// so far.
func NoticeConn(t testing.TB, dsn string) (conn *pgx.Conn, notices func() []string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", dsn, err)
	}
	var mu sync.Mutex
	var got []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n.Message)
	}
	conn, err = pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// CronJobs lists the pg_cron jobs of the cluster (db must be the pg_cron
// database), one line per job ordered by name and id:
// "jobid|jobname|schedule|active|username|database|command".
func CronJobs(t testing.TB, db DB) []string {
	t.Helper()
	return JSON[[]string](t, db, `select coalesce(json_agg(concat_ws('|', jobid, jobname, schedule, active, username, database, command)
		order by jobname, jobid), '[]') from cron.job`)
}

// Columns lists a relation's columns as "name type" (format_type) in their
// order, e.g. "job_name name".
func Columns(t testing.TB, db DB, relation string) []string {
	t.Helper()
	return JSON[[]string](t, db, `select coalesce(json_agg(attname || ' ' || format_type(atttypid, atttypmod) order by attnum), '[]')
		from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped`, relation)
}

// AsUser runs fn in a transaction as an app's signed-in user, the way
// PostgREST does (role authenticated, JWT claims with sub = user), and
// commits it when fn returns; an error fails the test.
func AsUser(t testing.TB, db pgcluster.Beginner, user string, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatalf("pgtest: begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `select set_config('request.jwt.claims', json_build_object('sub', $1::text, 'role', 'authenticated')::text, true)`, user); err != nil {
		t.Fatalf("pgtest: claims: %v", err)
	}
	if _, err := tx.Exec(ctx, `set local role authenticated`); err != nil {
		t.Fatalf("pgtest: set role: %v", err)
	}
	fn(tx)
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("pgtest: commit as %s: %v", user, err)
	}
}
