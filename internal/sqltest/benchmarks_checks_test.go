package sqltest_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// Benchmarks of the job checks (maintenance, appointment, stale job) on
// generated data: 1,000 organisations (five time zones), 100 clients each,
// DUEFLOW_BENCH_JOBS completed jobs per organisation (default 1,000: one
// million in all) spread over three years, 20 upcoming visits and 10 jobs in
// progress per organisation, one workflow of each of the three types per
// organisation; the reminders the first checks create are sent, but one
// per workflow, still pending. Each benchmark times the check body as it was before
// 20261202001300_check_watermarks.sql ("old", loaded from
// 20261202000800_workflow_spec_wiring.sql into schema bench_old) and the
// current one ("new") alternately at the same p_now, so that both see the
// same load; it fails when the old body finds a reminder the new one missed.
// Run with:
//
//	go test -run '^$' -bench 'MaintenanceCheck|AppointmentCheck|StaleJobCheck' -timeout 30m ./internal/sqltest/
var (
	benchJobsOnce sync.Once
	benchJobsPool *pgxpool.Pool
)

// benchJobsPerOrg is DUEFLOW_BENCH_JOBS (completed jobs per organisation).
func benchJobsPerOrg(b *testing.B) int {
	v := os.Getenv("DUEFLOW_BENCH_JOBS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 {
		b.Fatalf("DUEFLOW_BENCH_JOBS=%q: want a whole number of at least 100 (completed jobs per organisation)", v)
	}
	return n
}

func benchJobsDB(b *testing.B) *pgxpool.Pool {
	b.Helper()
	benchJobsOnce.Do(func() {
		pool, _ := pgtest.NewDB(&heldTB{B: b}) // never released: the database lives for the whole binary
		perOrg := benchJobsPerOrg(b)
		start := time.Now()
		conn, err := pool.Acquire(bg)
		if err != nil {
			b.Fatalf("bench data: %v", err)
		}
		defer conn.Release()
		for _, q := range []string{
			// bulk load: skip the per-row foreign key triggers (the generator keeps them true)
			`set session_replication_role = replica`,
			`select setseed(0.42)`,
			`insert into organizations (name, timezone)
			 select 'Org ' || g, (array['America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'UTC', 'America/Los_Angeles'])[1 + g % 5]
			 from generate_series(1, 1000) g`,
			`insert into clients (organization_id, first_name, email)
			 select o.id, 'Client ' || g, 'client' || g || '@example.test' from organizations o cross join generate_series(1, 100) g`,
			// completed services over the last three years
			fmt.Sprintf(`insert into jobs (organization_id, client_id, job_type, status, completed_at, updated_at, created_at)
			 select c.organization_id, c.id, x.job_type, 'completed', x.t, x.t + interval '1 hour', x.t - interval '1 day'
			 from clients c cross join generate_series(1, %d) g
			 cross join lateral (select now() - random() * interval '1095 days' as t,
			                            case when random() < 0.5 then 'hvac' else 'plumbing' end as job_type
			                     where g > 0 and c.id is not null) x`, perOrg/100),
			// upcoming visits (the next 30 days) of clients 1-3, jobs in
			// progress of clients 4-6 (last activity within 60 days); these
			// clients are booked, the other 94 are not
			`insert into jobs (organization_id, client_id, status, scheduled_start, updated_at)
			 select c.organization_id, c.id, 'scheduled', now() + random() * interval '30 days', now() - interval '2 days'
			 from clients c cross join generate_series(1, 7) g
			 where c.first_name in ('Client 1', 'Client 2', 'Client 3') and g > 0`,
			`insert into jobs (organization_id, client_id, status, updated_at)
			 select c.organization_id, c.id, 'in_progress', x.t
			 from clients c cross join generate_series(1, 3) g
			 cross join lateral (select now() - random() * interval '60 days' as t where g > 0 and c.id is not null) x
			 where c.first_name in ('Client 4', 'Client 5', 'Client 6')`,
			`set session_replication_role = origin`,
			`insert into automation_workflows (organization_id, name, trigger_type, trigger_config)
			 select o.id, t.name, t.type, t.config::jsonb from organizations o
			 cross join (values ('Maintenance', 'maintenance_due', '{"months_after_service":6}'),
			                    ('Appointment', 'appointment', '{"hours_before":24}'),
			                    ('Stale jobs', 'stale_job', '{"days_inactive":7}')) t(name, type, config)`,
			`analyze`,
		} {
			if _, err := conn.Exec(bg, q); err != nil {
				b.Fatalf("bench data: %v", err)
			}
		}
		loadOldCheckBodies(b, pool)
		var jobs, completed int
		require.NoError(b, pool.QueryRow(bg, `select count(*), count(*) filter (where status = 'completed') from jobs`).Scan(&jobs, &completed))
		// the first run of each check (full scans; creates the reminders due now)
		var made int
		require.NoError(b, pool.QueryRow(bg, `select check_maintenance_reminders() + check_automation_triggers()`).Scan(&made))
		// they went out, but one per workflow, waiting for its send window
		// (the checks read the subjects of pending reminders again each run)
		pgtest.Exec(b, pool, `update automation_execution_logs set status = 'completed', attempt = 1, completed_at = now()
			where id not in (select distinct on (workflow_id) id from automation_execution_logs order by workflow_id, id)`)
		pgtest.Exec(b, pool, `vacuum analyze`)
		b.Logf("generated %d jobs (%d completed) in %s; first checks created %d executions",
			jobs, completed, time.Since(start).Round(time.Millisecond), made)
		benchJobsPool = pool
	})
	if benchJobsPool == nil {
		b.Fatal("bench data unavailable")
	}
	return benchJobsPool
}

// loadOldCheckBodies defines the check bodies as
// 20261202000800_workflow_spec_wiring.sql has them (before the watermarks)
// in schema bench_old.
func loadOldCheckBodies(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	files, err := sqlfiles.Files()
	require.NoError(b, err)
	var src string
	for _, f := range files {
		if f.Name == "20261202000800_workflow_spec_wiring.sql" {
			src = f.SQL
		}
	}
	require.NotEmpty(b, src)
	pgtest.Exec(b, pool, `create schema if not exists bench_old`)
	for _, fn := range []string{"automation_check_maintenance_run", "automation_check_appointments_run", "automation_check_stale_jobs_run"} {
		body := regexp.MustCompile(`(?s)create or replace function public\.` + fn + `\(.*?\n\$\$;`).FindString(src)
		require.NotEmpty(b, body, fn)
		pgtest.Exec(b, pool, strings.Replace(body, "public."+fn+"(", "bench_old."+fn+"(", 1))
	}
}

// benchOldNew times the old and the new body of one check alternately at the
// same p_now, with nothing new to remind, and reports both (ms per run).
func benchOldNew(b *testing.B, fn string) {
	pool := benchJobsDB(b)
	// one run of each first: what became due since the data was generated
	now := time.Now()
	pgtest.Int(b, pool, `select public.`+fn+`($1, null, '{}')`, now)
	pgtest.Int(b, pool, `select bench_old.`+fn+`($1, null, '{}')`, now)
	var oldT, newT time.Duration
	created := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := time.Now()
		var made int
		t0 := time.Now()
		require.NoError(b, pool.QueryRow(bg, `select public.`+fn+`($1, null, '{}')`, at).Scan(&made))
		newT += time.Since(t0)
		created += made
		t1 := time.Now()
		require.NoError(b, pool.QueryRow(bg, `select bench_old.`+fn+`($1, null, '{}')`, at).Scan(&made))
		oldT += time.Since(t1)
		if made != 0 {
			b.Fatalf("%s: the old body created %d executions the new one missed at %s", fn, made, at)
		}
	}
	b.ReportMetric(float64(newT.Microseconds())/1000/float64(b.N), "new-ms/run")
	b.ReportMetric(float64(oldT.Microseconds())/1000/float64(b.N), "old-ms/run")
	b.ReportMetric(float64(created)/float64(b.N), "created/run")
}

// BenchmarkMaintenanceCheckSteady: the maintenance check with nothing new
// (target < 50 ms at 1,000 organisations x 1,000 completed jobs).
func BenchmarkMaintenanceCheckSteady(b *testing.B) {
	benchOldNew(b, "automation_check_maintenance_run")
}

// BenchmarkAppointmentCheckSteady: the appointment check with nothing new.
func BenchmarkAppointmentCheckSteady(b *testing.B) {
	benchOldNew(b, "automation_check_appointments_run")
}

// BenchmarkStaleJobCheckSteady: the stale-job check with nothing new.
func BenchmarkStaleJobCheckSteady(b *testing.B) {
	benchOldNew(b, "automation_check_stale_jobs_run")
}

// BenchmarkMaintenanceCheckDayStart: the first maintenance check of an
// organisation-local day, which reads every client of every workflow (here
// all 1,000 organisations at once; in production each time zone's share at
// its local midnight), with every reminder already created.
func BenchmarkMaintenanceCheckDayStart(b *testing.B) {
	pool := benchJobsDB(b)
	pgtest.Int(b, pool, `select automation_check_maintenance_run(now(), null, '{}')`)
	created := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pgtest.Exec(b, pool, `update automation_check_state s set checked_at = s.checked_at - interval '1 day'
			from automation_workflows w where w.id = s.workflow_id and w.trigger_type = 'maintenance_due'`)
		b.StartTimer()
		var made int
		require.NoError(b, pool.QueryRow(bg, `select automation_check_maintenance_run(now(), null, '{}')`).Scan(&made))
		created += made
	}
	// (what fell due in real time between the runs: about one service a
	// minute with a million)
	b.ReportMetric(float64(created)/float64(b.N), "created/run")
}

// BenchmarkMaintenanceCheckPublic: check_maintenance_reminders() (the
// maintenance and appointment checks, bookkeeping included) with nothing new.
func BenchmarkMaintenanceCheckPublic(b *testing.B) {
	benchPublic(b, "check_maintenance_reminders")
}

// BenchmarkStaleJobCheckPublic: check_automation_triggers() (the scheduled
// and stale-job checks, bookkeeping included) with nothing new.
func BenchmarkStaleJobCheckPublic(b *testing.B) {
	benchPublic(b, "check_automation_triggers")
}

func benchPublic(b *testing.B, fn string) {
	pool := benchJobsDB(b)
	pgtest.Int(b, pool, `select `+fn+`()`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pgtest.Int(b, pool, `select `+fn+`()`)
	}
}
