package sqltest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// tenant is an organisation with one due occurrence for every trigger type.
type tenant struct {
	org, serviced, active uuid.UUID // organisation; client with a past service; client with open jobs
	wf                    map[string]uuid.UUID
}

// seedTenant creates an organisation with data for every trigger type; with
// workflows=false it creates the data only.
func seedTenant(t testing.TB, db pgtest.DB, workflows bool) tenant {
	t.Helper()
	tn := tenant{org: pgtest.AllDayOrg(t, db), wf: map[string]uuid.UUID{}}
	tn.serviced = pgtest.CreateClient(t, db, pgtest.Client{Org: tn.org, Email: "serviced@client.test", Phone: "+15555550111"})
	tn.active = pgtest.CreateClient(t, db, pgtest.Client{Org: tn.org, Email: "active@client.test", Phone: "+15555550122"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: tn.org, Client: tn.active, DueInDays: -3})
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, job_type, status, completed_at, updated_at) values
		($1, $2, 'hvac', 'completed', now() - interval '8 months', now() - interval '8 months')`, tn.org, tn.serviced)
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, updated_at) values ($1, $2, 'in_progress', now() - interval '30 days')`, tn.org, tn.active)
	pgtest.Exec(t, db, `insert into jobs (organization_id, client_id, status, scheduled_start) values ($1, $2, 'scheduled', now() + interval '10 hours')`, tn.org, tn.active)
	if workflows {
		tn.wf["invoice_overdue"] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: tn.org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7]}`})
		tn.wf["maintenance_due"] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: tn.org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})
		tn.wf["stale_job"] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: tn.org, Trigger: "stale_job", Config: `{"days_inactive":7,"statuses":["in_progress"]}`})
		tn.wf["appointment"] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: tn.org, Trigger: "appointment", Config: `{"hours_before":24}`})
		tn.wf["scheduled"] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: tn.org, Trigger: "scheduled", Config: `{"frequency":"every_minute","audience":"clients"}`})
	}
	return tn
}

var checkFns = []string{"check_overdue_invoices", "check_maintenance_reminders", "check_automation_triggers"}

// runAllChecks runs every check function at p_now (in the given order).
func runAllChecks(t testing.TB, db pgtest.DB, at time.Time, order []string) int {
	t.Helper()
	total := 0
	for _, fn := range order {
		total += pgtest.Int(t, db, `select `+fn+`($1)`, at)
	}
	return total
}

// perWorkflow counts executions of each of the tenant's workflows.
func perWorkflow(t testing.TB, db pgtest.DB, tn tenant) map[string]int {
	t.Helper()
	out := map[string]int{}
	for tr, wf := range tn.wf {
		out[tr] = pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, wf)
	}
	return out
}

var wantOnce = map[string]int{"invoice_overdue": 1, "maintenance_due": 1, "stale_job": 1, "appointment": 1, "scheduled": 2}

// Bug 3 (trigger + cron for the same event): executions are created by the
// check functions only. No table trigger inserts executions, so changing the
// app's data creates none by itself; every check function run in every order,
// twice, and all of them at once on several connections, yield one execution
// per occurrence.
func TestOneExecutionPerEventWhateverRuns(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from pg_trigger tg join pg_proc p on p.oid = tg.tgfoid
		where not tg.tgisinternal and p.prosrc ~* 'insert\s+into\s+(public\.)?automation_execution_logs'`),
		"a table trigger creates executions")
	tn := seedTenant(t, db, true)
	pgtest.Exec(t, db, `update invoices set updated_at = now(), total = total`)
	pgtest.Exec(t, db, `update jobs set address = 'x' where status = 'completed'`)
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs`), "data changes alone created executions")

	now := time.Now()
	runAllChecks(t, db, now, checkFns) // the scheduled check creates its schedule
	orders := [][]string{
		{"check_overdue_invoices", "check_maintenance_reminders", "check_automation_triggers"},
		{"check_automation_triggers", "check_maintenance_reminders", "check_overdue_invoices"},
		{"check_maintenance_reminders", "check_overdue_invoices", "check_automation_triggers"},
	}
	at := now.Add(90 * time.Second) // the every-minute schedule is due
	for _, o := range orders {
		runAllChecks(t, db, at, o)
		runAllChecks(t, db, at, o)
	}
	// overlapping runs: all checks on four connections at once
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runOnOwnConn(t, dsn, at, orders[i%len(orders)], nil)
		}()
	}
	wg.Wait()
	assert.Equal(t, wantOnce, perWorkflow(t, db, tn), "executions per trigger type (scheduled: one per client)")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from (select workflow_id, subject_id, client_id, trigger_type from automation_execution_logs
		where trigger_type <> 'scheduled' group by 1, 2, 3, 4 having count(*) > 1) d`), "the same subject twice")
}

// Bug 3 (two overlapping runs), for every check: the same check started on
// several connections at the same instant creates each reminder once.
func TestConcurrentRunsOfEveryCheck(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.NewDB(t)
	var tenants []tenant
	for i := 0; i < 3; i++ {
		tenants = append(tenants, seedTenant(t, db, true))
	}
	now := time.Now()
	runAllChecks(t, db, now.Add(-time.Hour), []string{"check_automation_triggers"}) // schedules, and the stale jobs
	// start afresh: no executions, and no watermark of the run above
	pgtest.Exec(t, db, `delete from automation_execution_logs`)
	pgtest.Exec(t, db, `delete from automation_check_state`)
	at := now.Add(90 * time.Second)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, fn := range checkFns {
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runOnOwnConn(t, dsn, at, []string{fn}, start)
			}()
		}
	}
	close(start)
	wg.Wait()
	for _, tn := range tenants {
		assert.Equal(t, wantOnce, perWorkflow(t, db, tn))
	}
}

// Bug 3 (a 24-hour "dedupe" window that drifts): occurrences are keyed by
// what they are about (invoice + due date + reminder day, client + last
// service, job + start, job + last activity, schedule + run time), not by
// "nothing in the last 24 h". Checks at irregular times over ten days
// (23 h 59 min apart, 24 h 01 min apart, every 5 h) never repeat a reminder
// nor skip one.
func TestNoDriftingDedupeWindow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	tn := seedTenant(t, db, true)
	// the appointment starts in 10 days, reminded within 24 h before
	pgtest.Exec(t, db, `update jobs set scheduled_start = now() + interval '10 days' where status = 'scheduled'`)
	pgtest.Exec(t, db, `update automation_workflows set trigger_config = '{"frequency":"daily","hour":9,"minute":0,"audience":"organization"}' where id = $1`, tn.wf["scheduled"])
	pgtest.Exec(t, db, `update organizations set timezone = 'America/New_York' where id = $1`, tn.org)

	t0 := time.Now()
	times := []time.Time{t0, t0.Add(23*time.Hour + 59*time.Minute), t0.Add(48 * time.Hour), t0.Add(72*time.Hour + time.Minute)}
	for at := t0.Add(73 * time.Hour); at.Before(t0.Add(10 * 24 * time.Hour)); at = at.Add(5 * time.Hour) {
		times = append(times, at)
	}
	for _, at := range times {
		runAllChecks(t, db, at, checkFns)
	}
	last := times[len(times)-1]
	got := perWorkflow(t, db, tn)

	assert.Equal(t, 2, got["invoice_overdue"], "reminder days 1 and 7, once each")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1 and occurrence_key like '%:d7'`, tn.wf["invoice_overdue"]))
	assert.Equal(t, 1, got["maintenance_due"], "one maintenance reminder per last service, however often checked")
	assert.Equal(t, 1, got["stale_job"], "one stale-job reminder per period of inactivity")
	assert.Equal(t, 1, got["appointment"], "one appointment reminder")

	// daily 09:00 New York time: exactly one run per local day whose 09:00 passed
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	want := 0
	for d := t0.In(ny); !d.After(last.In(ny).AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		nine := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, ny)
		if nine.After(t0) && !nine.After(last) {
			want++
		}
	}
	assert.Equal(t, want, got["scheduled"], "one run per local day")
	var raw []time.Time
	rows, err := db.Query(bg, `select (trigger_data ->> 'run_at')::timestamptz from automation_execution_logs where workflow_id = $1`, tn.wf["scheduled"])
	require.NoError(t, err)
	raw, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	days := map[string]bool{}
	for _, r := range raw {
		l := r.In(ny)
		assert.Equal(t, 9, l.Hour(), "run at %s", l)
		assert.Zero(t, l.Minute())
		assert.False(t, days[l.Format("2006-01-02")], "two runs on %s", l.Format("2006-01-02"))
		days[l.Format("2006-01-02")] = true
	}
}

// Bug 5: "daily at 9" is 9 o'clock in each organisation's own time zone,
// also across a daylight-saving change (New York leaves DST on 2026-11-01).
func TestDailyNineInEachZoneAcrossDST(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	zones := []string{"America/New_York", "Asia/Tokyo"}
	wfs := map[string]uuid.UUID{}
	for _, z := range zones {
		org := pgtest.CreateOrg(t, db, pgtest.Org{Timezone: z})
		wfs[z] = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "scheduled", Config: `{"frequency":"daily","hour":9,"minute":0}`})
	}
	t0 := time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
	for at := t0; at.Before(t0.Add(4 * 24 * time.Hour)); at = at.Add(20 * time.Minute) {
		pgtest.Int(t, db, `select check_automation_triggers($1)`, at)
	}
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		require.NoError(t, err)
		rows, err := db.Query(bg, `select (trigger_data ->> 'run_at')::timestamptz, created_at from automation_execution_logs where workflow_id = $1 order by 1`, wfs[z])
		require.NoError(t, err)
		type run struct {
			At, Created time.Time
		}
		runs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[run])
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(runs), 3, z)
		for _, r := range runs {
			l := r.At.In(loc)
			assert.Equal(t, "09:00", l.Format("15:04"), "%s: run at %s local (%s UTC)", z, l, r.At.UTC())
		}
		// the reminder is created within one check interval of its local 09:00
		var late int
		require.NoError(t, db.QueryRow(bg, `select count(*) from automation_execution_logs
			where workflow_id = $1 and next_attempt_at - (trigger_data ->> 'run_at')::timestamptz > interval '20 minutes'`, wfs[z]).Scan(&late))
		assert.Zero(t, late, z)
	}
	ny, _ := time.LoadLocation("America/New_York")
	var before, after time.Time
	require.NoError(t, db.QueryRow(bg, `select min(x), max(x) from (select (trigger_data ->> 'run_at')::timestamptz x from automation_execution_logs
		where workflow_id = $1 and (trigger_data ->> 'run_at')::timestamptz between '2026-10-31' and '2026-11-03') q`, wfs["America/New_York"]).Scan(&before, &after))
	assert.Equal(t, 13, before.UTC().Hour(), "09:00 EDT = 13:00 UTC (%s)", before.In(ny))
	assert.Equal(t, 14, after.UTC().Hour(), "09:00 EST = 14:00 UTC (%s)", after.In(ny))
}

// Bug 2, for the trigger types the SQL tests do not cover (stale_job,
// appointment, scheduled with audience clients): a workflow only ever
// creates executions about its own organisation's rows, and a claim never
// returns another organisation's client, invoice or job even for a forged row.
func TestTenancyOfEveryTriggerType(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	a := seedTenant(t, db, true)
	b := seedTenant(t, db, false) // the same kind of data, no workflows
	now := time.Now()
	runAllChecks(t, db, now, checkFns)
	runAllChecks(t, db, now.Add(90*time.Second), checkFns)
	assert.Equal(t, wantOnce, perWorkflow(t, db, a))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where organization_id <> $1`, a.org))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs e
		left join jobs j on e.subject_type = 'job' and j.id::text = e.subject_id
		left join invoices i on e.subject_type = 'invoice' and i.id::text = e.subject_id
		left join clients c on c.id::text = e.client_id
		where coalesce(j.organization_id, i.organization_id, e.organization_id) <> e.organization_id
		   or (e.client_id is not null and c.organization_id <> e.organization_id)`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where client_id in (select id::text from clients where organization_id = $1)`, b.org))

	// a forged execution of A pointing at B's client and invoice: the claim
	// document carries neither (the function then finds no recipient)
	var bInvoice uuid.UUID
	require.NoError(t, db.QueryRow(bg, `select id from invoices where organization_id = $1`, b.org).Scan(&bInvoice))
	var forged uuid.UUID
	require.NoError(t, db.QueryRow(bg, `insert into automation_execution_logs
		(workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, subject_id, client_id, next_attempt_at)
		values ($1, $2, 'invoice-reminder', 'invoice_overdue', 'forged', 'invoice', $3, $4, now() - interval '1 second') returning id`,
		a.wf["invoice_overdue"], a.org, bInvoice, b.active).Scan(&forged))
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, []uuid.UUID{forged}, 10, 60)
	require.Len(t, got, 1)
	assert.Nil(t, got[0].Client, "another organisation's client in a claim")
	assert.Nil(t, got[0].Invoice, "another organisation's invoice in a claim")
	assert.Equal(t, a.org, got[0].Organization.ID)
}

// runOnOwnConn runs the check functions fns (in order, with p_now = at) on a
// connection of its own, once start is closed (nil: at once). For
// goroutines: failures are reported with assert.
func runOnOwnConn(t *testing.T, dsn string, at time.Time, fns []string, start <-chan struct{}) {
	conn, err := pgx.Connect(bg, dsn)
	if !assert.NoError(t, err) {
		return
	}
	defer conn.Close(bg)
	if start != nil {
		<-start
	}
	for _, fn := range fns {
		var n int
		assert.NoError(t, conn.QueryRow(bg, `select `+fn+`($1)`, at).Scan(&n), fn)
	}
}
