// Package upgrade_test upgrades the replaced system's database
// (internal/replaced) in place with dueflow's core migrations and the
// replaced_system adapter set, file by file as a user applies them (issue 9,
// item 3): rows kept, the old open rows closed unsent and uncounted, the
// app's writes still working, a second run changing nothing, a failed file
// changing nothing. A package of its own: the end-to-end test uses its
// cluster's pg_cron database.
package upgrade_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

// upgradeFiles are the files a user applies, in order: dueflow's core, then
// the adapter set over the app's tables.
func upgradeFiles(t testing.TB) []sqlfiles.File {
	t.Helper()
	core, err := sqlfiles.Files()
	require.NoError(t, err)
	adapter, err := sqlfiles.FilesOf(sqlfiles.ReplacedSystemFS())
	require.NoError(t, err)
	return append(core, adapter...)
}

// upgrade applies every file, each in its own transaction, on a connection
// that records the server's notices, and returns them.
func upgrade(t testing.TB, dsn string) []string {
	t.Helper()
	conn, notices := pgtest.NoticeConn(t, dsn)
	for _, f := range upgradeFiles(t) {
		require.NoError(t, pgcluster.ApplySQL(bg, conn, f.Name, f.SQL))
	}
	return notices()
}

// fixture is a database of the replaced system (no dueflow).
func fixture(t testing.TB, o replaced.Options) (*pgxpool.Pool, string) {
	t.Helper()
	db, dsn := pgtest.NewEmptyDB(t)
	require.NoError(t, replaced.Apply(bg, db, o))
	return db, dsn
}

func containsNotice(notices []string, s string) bool {
	for _, n := range notices {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// appTables are the replaced system's tables and the columns it had.
var appTables = []string{"auth.users", "public.id_counters", "public.profiles", "public.clients", "public.jobs",
	"public.estimates", "public.invoices", "public.automation_workflows", "public.automation_execution_logs",
	"public.automation_schedules", "public.automation_analytics"}

// appColumns lists each app table's columns as the replaced system has them.
func appColumns(t testing.TB, db pgtest.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range appTables {
		out[tb] = pgtest.JSON[[]string](t, db, `select json_agg(attname order by attnum) from pg_attribute
			where attrelid = $1::regclass and attnum > 0 and not attisdropped`, tb)
	}
	// dueflow's bookkeeping of the workflows (their problems and spec) fires
	// the app's own trigger, which stamps updated_at on every update
	out["public.automation_workflows"] = slices.DeleteFunc(out["public.automation_workflows"], func(c string) bool { return c == "updated_at" })
	return out
}

// rowsOf returns the rows of table (only cols, "where" filtering), one text
// line each, sorted.
func rowsOf(t testing.TB, db pgtest.DB, table string, cols []string, where string) []string {
	t.Helper()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	if where == "" {
		where = "true"
	}
	return pgtest.JSON[[]string](t, db, fmt.Sprintf(`select coalesce(json_agg(x order by x), '[]') from
		(select row(%s)::text as x from %s where %s) r`, strings.Join(quoted, ", "), table, where))
}

// The old system's open execution rows (months-old pending ones in both
// trigger_data shapes, a running one without lease, processing, delayed, and
// the pending row its row trigger logged for J-1003).
const openLogs = `status not in ('completed', 'failed')`

// Every row survives with its own columns unchanged; the open execution rows
// alone are closed, unsent (cancelled, legacy_not_sent, a message saying
// why), and counted nowhere: workflow counters and analytics are as the app
// left them, no execution is due or pending, and the replaced system's other
// rows keep every column.
func TestUpgradeKeepsRows(t *testing.T) {
	t.Parallel()
	for _, o := range []replaced.Options{{}, {OlderInstall: true}} {
		t.Run(fmt.Sprintf("older=%v", o.OlderInstall), func(t *testing.T) {
			t.Parallel()
			db, dsn := fixture(t, o)
			cols := appColumns(t, db)
			before := map[string][]string{}
			for _, tb := range appTables {
				before[tb] = rowsOf(t, db, tb, cols[tb], "")
			}
			logCols := cols["public.automation_execution_logs"]
			history := rowsOf(t, db, "automation_execution_logs", logCols, "not ("+openLogs+")")
			var kept []string // what closing leaves as it was
			for _, c := range logCols {
				if c != "status" && c != "completed_at" && c != "error_message" && c != "workflow_id" && c != "organization_id" {
					kept = append(kept, c)
				}
			}
			openKept := rowsOf(t, db, "automation_execution_logs", kept, openLogs)
			open := pgtest.JSON[[]string](t, db, `select json_agg(id::text || ':' || status order by id) from automation_execution_logs where `+openLogs)
			require.Len(t, open, 11)

			notices := upgrade(t, dsn)
			assert.True(t, containsNotice(notices, "18 execution rows of the replaced system kept as history; 11 left open by it closed without sending"), "%v", notices)

			for _, tb := range appTables {
				if tb == "public.automation_execution_logs" {
					continue
				}
				assert.Equal(t, before[tb], rowsOf(t, db, tb, cols[tb], ""), "%s: every row, every column of the app", tb)
			}
			// history untouched; the open rows closed, their other columns kept
			assert.Equal(t, history, rowsOf(t, db, "automation_execution_logs", logCols, "error_code is distinct from 'legacy_not_sent'"))
			assert.Equal(t, openKept, rowsOf(t, db, "automation_execution_logs", kept, "error_code = 'legacy_not_sent'"))
			closed := pgtest.JSON[[]string](t, db, `select json_agg(id::text || ':' || split_part(split_part(error_message, 'left ', 2), ' ', 1)
				order by id) from automation_execution_logs where status = 'cancelled' and error_code = 'legacy_not_sent'
				and completed_at is not null and lease_token is null and occurrence_key = 'legacy:' || id`)
			assert.Equal(t, open, closed, "exactly the open rows, the message naming the old status")
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status in ('pending', 'running')`))
			assert.Zero(t, pgtest.Int(t, db, `select pending_count + running_count from automation_system_health`))
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where occurrence_key not like 'legacy:%'`))

			// workflows and organisations from the workflow (automation_id too)
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs e
				left join automation_workflows w on w.id = e.workflow_id
				where w.id is null or e.organization_id is distinct from w.organization_id`))
			assert.Equal(t, replaced.WorkflowJobStatusChanged+" "+replaced.OrgA, pgtest.Text(t, db,
				`select workflow_id || ' ' || organization_id from automation_execution_logs where id = $1`, replaced.LogPendingNoWorkflow60d))
			// counted nowhere
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_workflows where failure_count <> 0 or skipped_count <> 0`))
			assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_analytics where organization_id is null`),
				"the app's analytics rows carry their workflow's organisation")
			// the hourly recompute counts the history, never the rows closed unsent
			pgtest.Exec(t, db, `select update_automation_analytics()`)
			utcToday := `(now() at time zone 'UTC')::date`
			assert.Equal(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs
				where (completed_at at time zone 'UTC')::date = `+utcToday+` and error_code is distinct from 'legacy_not_sent'`),
				pgtest.Int(t, db, `select coalesce(sum(execution_count), 0) from automation_analytics where date = `+utcToday))
			assert.Equal(t, 11, pgtest.Int(t, db, `select count(*) from automation_execution_logs
				where (completed_at at time zone 'UTC')::date = `+utcToday+` and error_code = 'legacy_not_sent'`))
		})
	}
}

// applyFile applies one file of the upgrade again, in its own transaction.
func applyFile(t testing.TB, db pgcluster.Beginner, name string) {
	t.Helper()
	for _, f := range upgradeFiles(t) {
		if f.Name == name {
			require.NoError(t, pgcluster.ApplySQL(bg, db, f.Name, f.SQL))
			return
		}
	}
	t.Fatalf("no file %s", name)
}

// The replaced system's rows are history: its executor (an Edge Function
// that may still be deployed) cannot reopen one, and an operator's retry is
// refused, so none is ever sent or counted by dueflow.
func TestLegacyRowsStayClosed(t *testing.T) {
	t.Parallel()
	db, dsn := fixture(t, replaced.Options{})
	upgrade(t, dsn)
	_, err := db.Exec(bg, `update automation_execution_logs set status = 'pending', error_code = null, completed_at = null where id = $1`,
		replaced.LogPendingInvoice2h)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "23514", pgErr.Code, pgErr.Message)
	for _, id := range []string{replaced.LogPendingInvoice2h, "50000000-0000-4000-8000-000000000008"} { // closed unsent, failed history
		assert.Equal(t, `{"reason": "legacy", "applied": false}`, pgtest.Text(t, db,
			`select automation_retry_execution($1) - 'execution_id' - 'status'`, id))
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where status = 'pending'`))
}

// The replaced system's row trigger stays on its four tables and creates
// nothing; the functions its retired cron jobs called are gone, and so are
// its zero-argument versions of dueflow's checks.
func TestOldTriggersAndFunctions(t *testing.T) {
	t.Parallel()
	db, dsn := fixture(t, replaced.Options{})
	notices := upgrade(t, dsn)
	assert.Equal(t, "clients,estimates,invoices,jobs", pgtest.Text(t, db, `select string_agg(c.relname::text, ',' order by c.relname)
		from pg_trigger g join pg_class c on c.oid = g.tgrelid
		where g.tgfoid = 'public.handle_universal_automation_triggers'::regproc`))
	logs := pgtest.Int(t, db, `select count(*) from automation_execution_logs`)
	counts := pgtest.Text(t, db, `select string_agg(execution_count::text, ',' order by id) from automation_workflows`)
	// what used to log pending rows (and count them): a completed job, an
	// invoice updated past due, a new client
	// (the old body would still try, fail on dueflow's NOT NULL columns and
	// swallow the error with a WARNING)
	conn, warnings := pgtest.NoticeConn(t, dsn)
	pgtest.Exec(t, conn, `update jobs set status = 'completed' where id = 'J-1001'`)
	pgtest.Exec(t, conn, `update invoices set due_date = current_date - 4, status = 'sent' where id = '30000000-0000-4000-8000-0000000000b2'`)
	pgtest.Exec(t, conn, `insert into clients (user_id, name) values ($1, 'Walk-in')`, replaced.UserB1)
	assert.Empty(t, warnings(), "the row trigger does nothing")
	assert.Equal(t, logs, pgtest.Int(t, db, `select count(*) from automation_execution_logs`), "no execution from the row trigger")
	assert.Equal(t, counts, pgtest.Text(t, db, `select string_agg(execution_count::text, ',' order by id) from automation_workflows`))
	assert.True(t, containsNotice(notices, "handle_universal_automation_triggers() no longer creates executions"))

	for _, f := range []string{"check_appointment_reminders", "seasonal_maintenance_reminders", "cleanup_automation_logs",
		"check_automation_triggers", "check_overdue_invoices", "check_maintenance_reminders", "process_pending_automations",
		"update_automation_analytics"} {
		assert.Empty(t, pgtest.Text(t, db, `select coalesce(to_regprocedure($1)::text, '')`, "public."+f+"()"), f)
	}
	assert.True(t, containsNotice(notices, "dropped the replaced system's function cleanup_automation_logs() (no pg_cron job calls it any more"))
}

// Applying every file again changes nothing: the catalog (tables, columns,
// constraints and their validation, indexes, triggers, policies, grants,
// functions, views) and every row.
func TestUpgradeTwice(t *testing.T) {
	t.Parallel()
	db, dsn := fixture(t, replaced.Options{})
	upgrade(t, dsn)
	catalog, rows := pgtest.Catalog(t, db), pgtest.Digest(t, db)
	notices := upgrade(t, dsn)
	assert.Equal(t, catalog, pgtest.Catalog(t, db))
	assert.Equal(t, rows, pgtest.Digest(t, db))
	for _, n := range notices {
		assert.NotContains(t, n, "closed without sending")
		if n == "dueflow: automation_src_organizations had other columns; dropped and created again" {
			// the adapter's 20261202000900 (released, fixed columns) re-run
			// over the columns 20261202001802 appends; 001802 appends them
			// again (same catalog, checked above)
			continue
		}
		assert.NotContains(t, n, "dropped")
	}
}

// A file that fails on the install (here: the app has a table of its own
// named like dueflow's ledger) leaves the database as it was before that
// file: the replaced system's open rows are still open, its tables without
// dueflow's columns.
func TestFailedFileChangesNothing(t *testing.T) {
	t.Parallel()
	db, dsn := fixture(t, replaced.Options{})
	pgtest.Exec(t, db, `create table public.automation_deliveries (id bigint primary key, note text)`)
	conn, _ := pgtest.NoticeConn(t, dsn)
	var failed string
	for _, f := range upgradeFiles(t) {
		catalog, rows := pgtest.Catalog(t, db), pgtest.Digest(t, db)
		if err := pgcluster.ApplySQL(bg, conn, f.Name, f.SQL); err != nil {
			failed = f.Name
			assert.Equal(t, catalog, pgtest.Catalog(t, db))
			assert.Equal(t, rows, pgtest.Digest(t, db))
			break
		}
	}
	assert.Equal(t, "20261129000200_automation_tables.sql", failed)
	assert.Equal(t, 11, pgtest.Int(t, db, `select count(*) from automation_execution_logs where `+openLogs))
	assert.NotContains(t, pgtest.Columns(t, db, "automation_execution_logs"), "occurrence_key text")
}

// After the upgrade the app keeps working as its signed-in users: it writes
// workflows in its own shapes through its own policy (never refused: mark
// mode; what dueflow cannot run is marked with the reason), and its clients,
// jobs and invoices; its users read their organisation's executions and no
// one else's (dueflow's member policy replaced `for all using (true)`), and
// cannot write them; anon reads nothing.
func TestAppKeepsWorking(t *testing.T) {
	t.Parallel()
	db, dsn := fixture(t, replaced.Options{})
	notices := upgrade(t, dsn)
	assert.Equal(t, "mark", pgtest.Text(t, db, `select workflow_validation from automation_settings`))
	assert.True(t, containsNotice(notices, `dropped policy "Allow all operations on automation_execution_logs"`))

	var runnable, event, client, job string
	pgtest.AsUser(t, db, replaced.UserA2, func(tx pgx.Tx) {
		require.NoError(t, tx.QueryRow(bg, `insert into automation_workflows (user_id, organization_id, name, status, is_active, enabled,
				trigger_type, trigger_config, steps, created_by)
			values ($1, $2, 'Second reminder', 'active', true, true, 'invoice_overdue', '{"triggerType":"invoice_overdue","daysOverdue":10,"conditions":[]}',
				'[{"id":"step-1","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Invoice {{invoice.number}}","message":"Dear {{client.firstName}}"}}]',
				$1) returning id::text`, replaced.UserA2, replaced.OrgA).Scan(&runnable))
		require.NoError(t, tx.QueryRow(bg, `insert into automation_workflows (user_id, organization_id, name, status, is_active, enabled,
				trigger_type, trigger_config, steps)
			values ($1, $2, 'On hold again', 'active', true, true, 'job_status_changed', '{"triggerType":"job_status_changed","conditions":[]}',
				'[{"type":"action","config":{"actionType":"sms","message":"Hi {{client.firstName}}"}}]') returning id::text`,
			replaced.UserA2, replaced.OrgA).Scan(&event))
		// the app edits and deletes its rows its way
		_, err := tx.Exec(bg, `update automation_workflows set status = 'paused', is_active = false where id = $1`, replaced.WorkflowMaintenance)
		require.NoError(t, err)
		_, err = tx.Exec(bg, `update automation_workflows set steps = '[{"type":"action","config":{"actionType":"ai_generate_message","prompt":"x"}}]'
			where id = $1`, replaced.WorkflowInvoiceBuilder)
		require.NoError(t, err)
		tag, err := tx.Exec(bg, `delete from automation_workflows where id = $1`, replaced.WorkflowDraft)
		require.NoError(t, err)
		assert.EqualValues(t, 1, tag.RowsAffected())
		// and writes its other tables (the emptied row trigger fires)
		require.NoError(t, tx.QueryRow(bg, `insert into clients (user_id, organization_id, name, first_name) values ($1, $2, 'New Client', 'New')
			returning id`, replaced.UserA2, replaced.OrgA).Scan(&client))
		require.NoError(t, tx.QueryRow(bg, `insert into jobs (user_id, client_id, title, status) values ($1, $2, 'Tap repair', 'scheduled')
			returning id`, replaced.UserA2, client).Scan(&job))
		_, err = tx.Exec(bg, `update jobs set status = 'completed' where id = $1`, job)
		require.NoError(t, err)
	})
	assert.Equal(t, "C-2008 J-1011", client+" "+job)
	judged := func(id string) string {
		return pgtest.Text(t, db, `select concat_ws(' ', spec ->> 'runnable', spec ->> 'active', nullif(array_to_string(problems, '; '), ''))
			from automation_workflows where id = $1`, id)
	}
	assert.Equal(t, "true true", judged(runnable), "the builder's shape runs")
	assert.Equal(t, "false true trigger type job_status_changed is an event trigger dueflow does not run", judged(event))
	assert.Equal(t, "true false", judged(replaced.WorkflowMaintenance), "paused by the app")
	assert.Contains(t, judged(replaced.WorkflowInvoiceBuilder), "false true steps[0]: action ai_generate_message is not one dueflow has")

	visible := func(user string) (own, other int) {
		pgtest.AsUser(t, db, user, func(tx pgx.Tx) {
			own = pgtest.Int(t, tx, `select count(*) from automation_execution_logs where organization_id = (select organization_id from profiles where id = $1)`, user)
			other = pgtest.Int(t, tx, `select count(*) from automation_execution_logs where organization_id <> (select organization_id from profiles where id = $1)`, user)
		})
		return own, other
	}
	ownA, otherA := visible(replaced.UserA2)
	assert.Equal(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where organization_id = $1`, replaced.OrgA), ownA)
	assert.Positive(t, ownA)
	assert.Zero(t, otherA, "another organisation's executions")
	ownB, otherB := visible(replaced.UserB1)
	assert.Positive(t, ownB)
	assert.Zero(t, otherB)

	for _, role := range []string{"authenticated", "anon"} {
		tx, err := db.Begin(bg)
		require.NoError(t, err)
		_, err = tx.Exec(bg, `select set_config('request.jwt.claims', json_build_object('sub', $1::text, 'role', $2::text)::text, true)`,
			replaced.UserA2, role)
		require.NoError(t, err)
		_, err = tx.Exec(bg, "set local role "+role)
		require.NoError(t, err)
		q := `update automation_execution_logs set status = 'pending'`
		if role == "anon" {
			q = `select count(*) from automation_execution_logs`
		}
		_, err = tx.Exec(bg, q)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, role)
		assert.Equal(t, "42501", pgErr.Code, "%s: %s", role, q)
		require.NoError(t, tx.Rollback(bg))
	}
}
