package sqltest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/stacktest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The per-minute tick (everything the pg_cron jobs run each minute) on
// generated data: BENCH_ORGS organisations (default 1,000; five time
// zones), 10 clients each, BENCH_TICK_INVOICES invoices (default 100) and
// BENCH_TICK_JOBS completed jobs (default 100) per organisation over the
// last three years, an upcoming visit of clients 1 and 2 and a job in
// progress of client 3, and one workflow of each of the five trigger types per
// organisation (invoice_overdue, maintenance_due, appointment, stale_job,
// scheduled daily), endpoints for the three actions. The first checks
// (full scans) run in the generation and their reminders are marked done,
// so a timed tick finds nothing new: what it costs is the work that grows
// with the number of organisations. Generated once per binary into a
// template database (not timed). Run with:
//
//	make bench-tick ORGS=10000
//	BENCH_ORGS=10000 go test ./internal/sqltest/ -run '^$' -bench Tick -benchtime 10x -timeout 60m
var (
	tickOnce  sync.Once
	tickReady bool
	tickCur   struct {
		pool *pgxpool.Pool
		tb   *heldTB
	}
)

// tickTemplateDB is the template database of the tick benchmark.
const tickTemplateDB = "dueflow_tick_template"

func tickDB(b *testing.B) *pgxpool.Pool {
	b.Helper()
	tickOnce.Do(func() {
		orgs, invoices, jobs := 1000, 100, 100
		for _, k := range []struct {
			name string
			dst  *int
		}{{"BENCH_ORGS", &orgs}, {"BENCH_TICK_INVOICES", &invoices}, {"BENCH_TICK_JOBS", &jobs}} {
			if err := stacktest.EnvInt(k.name, k.dst, 1, 1_000_000); err != nil {
				b.Fatal(err)
			}
		}
		pgtest.NewTemplate(b, tickTemplateDB, func(ctx context.Context, pool *pgxpool.Pool) error {
			return generateTickData(ctx, b, pool, orgs, invoices, jobs)
		})
		tickReady = true
	})
	if !tickReady {
		b.Fatal("tick data unavailable")
	}
	if tickCur.pool == nil {
		tb := &heldTB{B: b}
		pool, _ := pgtest.NewDBFrom(tb, tickTemplateDB)
		tickCur.pool, tickCur.tb = pool, tb
	}
	return tickCur.pool
}

func generateTickData(ctx context.Context, b *testing.B, pool *pgxpool.Pool, orgs, invoices, jobs int) error {
	start := time.Now()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("tick data: %w", err)
	}
	defer conn.Release()
	perClientInv := max(1, invoices/10)
	perClientJobs := max(1, jobs/10)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`set session_replication_role = replica`, nil},
		{`select setseed(0.42)`, nil},
		{`insert into organizations (name, timezone)
		  select 'Org ' || g, (array['America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'UTC', 'America/Los_Angeles'])[1 + g % 5]
		  from generate_series(1, $1::int) g`, []any{orgs}},
		{`insert into clients (organization_id, first_name, email)
		  select o.id, 'Client ' || g, 'client' || g || '@example.test' from organizations o cross join generate_series(1, 10) g`, nil},
		// invoices: 75 % paid, the others due within +-60 days
		{`insert into invoices (organization_id, client_id, number, status, due_date, total, balance, created_at, updated_at)
		  select c.organization_id, c.id, 'INV-' || g, s.status,
		         case when s.status = 'paid' then current_date - (s.r * 365)::int else current_date - 60 + (s.r * 120)::int end,
		         100, case when s.status = 'paid' then 0 else 100 end,
		         now() - interval '400 days', now() - interval '1 day' * (1 + (s.r * 300)::int)
		  from clients c cross join generate_series(1, $1::int) g
		  cross join lateral (select case when random() < 0.75 then 'paid' else 'sent' end as status, random() as r
		                      where g > 0 and c.id is not null) s`, []any{perClientInv}},
		{`insert into jobs (organization_id, client_id, job_type, status, completed_at, updated_at, created_at)
		  select c.organization_id, c.id, 'hvac', 'completed', x.t, x.t + interval '1 hour', x.t - interval '1 day'
		  from clients c cross join generate_series(1, $1::int) g
		  cross join lateral (select now() - random() * interval '1095 days' as t where g > 0 and c.id is not null) x`, []any{perClientJobs}},
		// upcoming visits (clients 1 and 2) and jobs in progress (client 3)
		{`insert into jobs (organization_id, client_id, status, scheduled_start, updated_at)
		  select c.organization_id, c.id, 'scheduled', now() + random() * interval '30 days', now() - interval '2 days'
		  from clients c where c.first_name in ('Client 1', 'Client 2')`, nil},
		{`insert into jobs (organization_id, client_id, status, updated_at)
		  select c.organization_id, c.id, 'in_progress', now() - random() * interval '60 days'
		  from clients c where c.first_name = 'Client 3'`, nil},
		{`set session_replication_role = origin`, nil},
		{`insert into automation_workflows (organization_id, name, trigger_type, trigger_config)
		  select o.id, t.name, t.type, t.config::jsonb from organizations o
		  cross join (values ('Overdue', 'invoice_overdue', '{"days_after_due":[1,7,14,30]}'),
		                     ('Maintenance', 'maintenance_due', '{"months_after_service":6}'),
		                     ('Appointment', 'appointment', '{"hours_before":24}'),
		                     ('Stale jobs', 'stale_job', '{"days_inactive":7}'),
		                     ('Weekly news', 'scheduled', '{"frequency":"weekly","day_of_week":1,"hour":9}')) t(name, type, config)`, nil},
		{`insert into vault.secrets (name, secret) values ('dueflow_webhook_secret', '` + testSecret + `')`, nil},
		{`insert into automation_endpoints (action, url, batch_size)
		  select a, 'http://127.0.0.1:9/functions/v1/' || a, 100 from unnest($1::text[]) a`,
			[]any{[]string{automation.ActionInvoiceReminder, automation.ActionSendReminder, automation.ActionRunWorkflow}}},
		{`analyze`, nil},
		// the first checks (full scans); their reminders went out
		{`select check_overdue_invoices(), check_maintenance_reminders(), check_automation_triggers()`, nil},
		{`update automation_execution_logs set status = 'completed', attempt = 1, completed_at = now()`, nil},
		{`vacuum (freeze, analyze)`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("tick data: %w", err)
		}
	}
	var n [4]int
	if err := conn.QueryRow(ctx, `select (select count(*) from organizations), (select count(*) from invoices),
		(select count(*) from jobs), (select count(*) from automation_execution_logs)`).Scan(&n[0], &n[1], &n[2], &n[3]); err != nil {
		return fmt.Errorf("tick data: %w", err)
	}
	b.Logf("tick data: %d organisations, %d invoices, %d jobs, %d executions from the first checks, in %s (not timed)",
		n[0], n[1], n[2], n[3], time.Since(start).Round(time.Millisecond))
	return nil
}

// BenchmarkTick: one per-minute tick with nothing new: the three checks
// pg_cron runs every minute and process_pending_automations, each timed
// (wall ms per tick, and the serving backend's CPU ms, which a loaded
// machine inflates less), plus their sums. BENCH_TICK_EXPLAIN=file writes
// the plans of the statements inside the functions that took over 1 ms
// (auto_explain) in one untimed tick to file.
func BenchmarkTick(b *testing.B) {
	pool := tickDB(b)
	conn, err := pool.Acquire(bg)
	require.NoError(b, err)
	defer conn.Release()
	steps := []string{
		`select check_overdue_invoices()`,
		`select check_maintenance_reminders()`,
		`select check_automation_triggers()`,
		`select process_pending_automations()`,
	}
	names := []string{"invoices", "maintenance", "triggers", "dispatch"}
	// one untimed tick: what fell due since the data was generated
	for _, s := range steps {
		pgtest.Int(b, conn, s)
	}
	if out := os.Getenv("BENCH_TICK_EXPLAIN"); out != "" {
		explainTick(b, pool, steps, out)
	}
	pid := pgtest.Int(b, conn, `select pg_backend_pid()`)
	var took, cpu [4]time.Duration
	made := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, s := range steps {
			var n int
			c0 := backendCPU(b, pid)
			t0 := time.Now()
			require.NoError(b, conn.QueryRow(bg, s).Scan(&n))
			took[k] += time.Since(t0)
			cpu[k] += backendCPU(b, pid) - c0
			made += n
		}
	}
	var sum, sumCPU time.Duration
	for k := range took {
		b.ReportMetric(float64(took[k].Microseconds())/1000/float64(b.N), names[k]+"-ms")
		b.ReportMetric(float64(cpu[k].Microseconds())/1000/float64(b.N), names[k]+"-cpu-ms")
		sum += took[k]
		sumCPU += cpu[k]
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(b.N), "tick-ms")
	b.ReportMetric(float64(sumCPU.Microseconds())/1000/float64(b.N), "tick-cpu-ms")
	b.ReportMetric(float64(made)/float64(b.N), "made/tick")
}

// backendCPU is the CPU time (user + system) the server process pid has
// used, from /proc (10 ms resolution).
func backendCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	// the fields after the command name, which is in parentheses
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	require.NoError(b, errors.Join(err1, err2))
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// explainTick runs each step once with auto_explain at NOTICE level and
// writes the plans of the statements inside the functions to file out.
func explainTick(b *testing.B, pool *pgxpool.Pool, steps []string, out string) {
	b.Helper()
	cfg := pool.Config().ConnConfig.Copy()
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { plans = append(plans, n.Message) }
	conn, err := pgx.ConnectConfig(bg, cfg)
	require.NoError(b, err)
	defer conn.Close(bg)
	for _, q := range []string{`load 'auto_explain'`, `set auto_explain.log_min_duration = '1ms'`,
		`set auto_explain.log_analyze = on`, `set auto_explain.log_buffers = on`,
		`set auto_explain.log_nested_statements = on`, `set auto_explain.log_level = notice`} {
		_, err := conn.Exec(bg, q)
		require.NoError(b, err)
	}
	var all strings.Builder
	for _, s := range steps {
		plans = nil
		_, err := conn.Exec(bg, s)
		require.NoError(b, err)
		fmt.Fprintf(&all, "==== %s: %d statements over 1 ms\n%s\n", s, len(plans), strings.Join(plans, "\n----\n"))
	}
	require.NoError(b, os.WriteFile(out, []byte(all.String()), 0o644))
}
