package pgtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/internal/pgcluster"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// ApplyMigration applies the one migration named name (e.g.
// "20261202000500_replaced_jobs_and_views.sql") of the core (sql/) or the
// reference domain (sql/reference/) in its own transaction, as
// pgcluster.ApplyFS applies each file.
func ApplyMigration(ctx context.Context, db pgcluster.Beginner, name string) error {
	core, err := sqlfiles.Files()
	if err != nil {
		return err
	}
	ref, err := sqlfiles.FilesOf(sqlfiles.ReferenceFS())
	if err != nil {
		return err
	}
	for _, f := range append(core, ref...) {
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
	cfg.DialFunc = localports.DialContext
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

// catalogSQL describes every object of the public schema a migration can
// create or change, one line each, "<kind> <relation or -> <detail>":
// relations (kind, RLS flags, options, ACL, comment), columns (type, not
// null, default), view definitions, indexes, constraints, triggers,
// policies, what depends on each relation, functions (definition digest,
// ACL, comment) and extensions.
const catalogSQL = `
with rel as (
  select c.oid, c.relname, c.relkind from pg_class c
  where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'i')
), lines as (
  select format('relation %s kind=%s rls=%s force=%s options=%s acl=%s comment=%s', r.relname, r.relkind,
           c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relacl, obj_description(c.oid, 'pg_class')) as l
  from rel r join pg_class c on c.oid = r.oid
  union all
  select format('column %s.%s %s notnull=%s default=%s acl=%s', r.relname, a.attname, format_type(a.atttypid, a.atttypmod),
           a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl)
  from rel r join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  where r.relkind <> 'i'
  union all
  select format('view %s %s', r.relname, pg_get_viewdef(r.oid)) from rel r where r.relkind in ('v', 'm')
  union all
  select format('index %s %s', t.relname, pg_get_indexdef(i.indexrelid))
  from pg_index i join rel t on t.oid = i.indrelid
  union all
  select format('constraint %s.%s %s', t.relname, k.conname, pg_get_constraintdef(k.oid))
  from pg_constraint k join rel t on t.oid = k.conrelid
  union all
  select format('trigger %s %s enabled=%s', t.relname, pg_get_triggerdef(g.oid), g.tgenabled)
  from pg_trigger g join rel t on t.oid = g.tgrelid where not g.tgisinternal
  union all
  select format('policy %s.%s %s %s %s using=%s check=%s', p.tablename, p.policyname, p.permissive, p.roles, p.cmd, p.qual, p.with_check)
  from pg_policies p where p.schemaname = 'public'
  union all
  select format('dependent %s %s', r.relname, pg_describe_object(d.classid, d.objid, d.objsubid))
  from pg_depend d join rel r on d.refclassid = 'pg_class'::regclass and d.refobjid = r.oid
  where d.deptype in ('n', 'a') and not (d.classid = 'pg_rewrite'::regclass
    and d.objid in (select w.oid from pg_rewrite w where w.ev_class = r.oid))
  union all
  select format('function - %s %s acl=%s comment=%s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)), p.proacl,
           obj_description(p.oid, 'pg_proc'))
  from pg_proc p where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
  union all
  select format('extension - %s %s %s', e.extname, e.extversion, e.extnamespace::regnamespace) from pg_extension e
)
select coalesce(json_agg(l order by l), '[]') from lines`

// Catalog describes the public schema's objects (relations, columns, views,
// indexes, constraints, triggers, policies, dependents of each relation,
// functions, extensions), one sorted line each, "<kind> <relation> <detail>"
// ("-" where no relation): two equal catalogs mean nothing a migration can
// create or change differs.
func Catalog(t testing.TB, db DB) []string {
	t.Helper()
	return JSON[[]string](t, db, catalogSQL)
}

// Digest is a digest of the rows of each table of the public schema
// (row count and md5 of the sorted rows), by table name.
func Digest(t testing.TB, db DB) map[string]string {
	t.Helper()
	tables := JSON[[]string](t, db, `select coalesce(json_agg(format('%I.%I', schemaname, tablename)), '[]')
		from pg_tables where schemaname = 'public'`)
	out := map[string]string{}
	for _, tb := range tables {
		out[tb] = Text(t, db, fmt.Sprintf(`select count(*) || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from %s x`, tb))
	}
	return out
}
