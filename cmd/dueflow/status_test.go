package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// sections splits status output into its "== title" sections (lines).
func sections(out string) map[string][]string {
	m := map[string][]string{}
	var cur string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if t, ok := strings.CutPrefix(l, "== "); ok {
			cur = t
			continue
		}
		if l != "" {
			m[cur] = append(m[cur], l)
		}
	}
	return m
}

// assertAligned checks that every row of a tabwriter table starts its
// columns where the header's columns start.
func assertAligned(t *testing.T, lines []string) {
	t.Helper()
	require.NotEmpty(t, lines)
	header := lines[0]
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || header[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	for _, l := range lines[1:] {
		if l == "(none)" || strings.HasPrefix(l, "note: ") {
			continue
		}
		for _, s := range starts[1:] {
			require.Greater(t, len(l), s, "row %q shorter than the header %q", l, header)
			assert.Equal(t, byte(' '), l[s-1], "row %q: column at %d not aligned with %q", l, s, header)
			assert.NotEqual(t, byte(' '), l[s], "row %q: column at %d not aligned with %q", l, s, header)
		}
	}
}

func TestStatusOnAClone(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	now := time.Now()
	require.NoError(t, demodata.Seed(ctx, pool, now))
	// a workflow written before validation, with a bad configuration: skipped and listed
	var org uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `select id from organizations order by name limit 1`).Scan(&org))
	badWf := pgtest.CreateUnvalidatedWorkflow(t, pool, pgtest.Workflow{Org: org, Trigger: "appointment", Config: `{"hours_before":"24h"}`})
	for _, q := range []string{"select check_automation_triggers()", "select check_overdue_invoices()", "select check_maintenance_reminders()"} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err)
	}
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var b bytes.Buffer
	require.NoError(t, writeStatus(ctx, conn, &b))
	sec := sections(b.String())
	for title, lines := range sec {
		if len(lines) > 1 {
			assertAligned(t, lines)
		}
		_ = title
	}
	cron := sec["Cron jobs (automation_cron_status)"]
	require.Len(t, cron, 2, b.String())
	assert.Regexp(t, `^job_name\s+schedule\s+is_active\s+last_run\s+last_run_status\s+total_runs\s+successful_runs\s+failed_runs\s+success_rate$`, cron[0])
	assert.Regexp(t, `^\(pg_cron not installed in this database\)\s+-\s+f\s+-\s+-\s+0\s+0\s+0\s+-$`, cron[1])

	health := sec["Queue health (automation_queue_health)"]
	require.Len(t, health, 2)
	assert.Regexp(t, `^pending\s+due_now\s+running\s+expired_leases\s+failed_last_hour\s+oldest_due_age_seconds\s+check_problems\s+deferred$`, health[0])
	assert.Regexp(t, `^15\s+15\s+0\s+0\s+0\s+\d+\s+1\s+0$`, health[1])

	problems := sec["Check problems (automation_check_problems: what the checks skip)"]
	require.Len(t, problems, 2, b.String())
	assert.Regexp(t, `^check_name\s+trigger_type\s+organization_id\s+workflow_id\s+code\s+count\s+first_seen\s+last_seen\s+message$`, problems[0])
	assert.Regexp(t, `^check_maintenance_reminders\s+appointment\s+`+org.String()+`\s+`+badWf.String()+`\s+invalid_config\s+1\s+.*trigger_config.hours_before: must be a whole number`, problems[1])

	settings := sec["Settings (automation_settings)"]
	require.Len(t, settings, 2, b.String())
	assert.Regexp(t, `^workflow_validation$`, settings[0])
	assert.Regexp(t, `^refuse$`, settings[1])

	byAction := sec["Executions by action (pending now; finished in the last 24 hours)"]
	require.Len(t, byAction, 4, b.String())
	assert.Regexp(t, `^action\s+pending\s+due\s+undispatched\s+running\s+expired_leases\s+completed_24h\s+skipped_24h\s+failed_24h\s+oldest_due$`, byAction[0])
	// demodata: 7 invoice reminders, 1 scheduled run, 7 send-reminder executions
	assert.Regexp(t, `^invoice-reminder\s+7\s+7\s+7\s+0\s+0\s+0\s+0\s+0\s+\d\d:\d\d:\d\d$`, byAction[1])
	assert.Regexp(t, `^run-workflow\s+1\s+1\s+1\s+0\s+0\s+0\s+0\s+0\s+`, byAction[2])
	assert.Regexp(t, `^send-reminder\s+7\s+7\s+7\s+0\s+0\s+0\s+0\s+0\s+`, byAction[3])

	system := sec["System health (automation_system_health)"]
	require.Len(t, system, 2, b.String())
	assert.Regexp(t, `^pending_count\s+running_count\s+completed_last_hour\s+failed_last_hour\s+last_success\s+last_failure\s+active_workflows$`, system[0])
	assert.Regexp(t, `^15\s+0\s+0\s+0\s+-\s+-\s+\d+$`, system[1])

	assert.Contains(t, sec, "Endpoints (automation_endpoints)")
	assert.Contains(t, sec, "pg_net (requests queued; responses in the last hour)")
}

// In the pg_cron database: dueflow's jobs under their stable names; a job an
// operator paused is listed with how to resume it. Not parallel: it pauses a
// job of the shared pg_cron database (active again at cleanup).
func TestStatusOnTheCronDatabase(t *testing.T) {
	ctx := context.Background()
	db, dsn := pgtest.CronDB(t)
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	status := func() []string {
		var b bytes.Buffer
		require.NoError(t, writeStatus(ctx, conn, &b))
		assert.Contains(t, b.String(), "* * * * *")
		return sections(b.String())["Cron jobs (automation_cron_status)"]
	}
	cron := status()
	assertAligned(t, cron)
	var jobs []string
	for _, l := range cron[1:] {
		jobs = append(jobs, strings.Fields(l)[0])
	}
	assert.Equal(t, []string{"check-automation-triggers", "check-maintenance-reminders", "check-overdue-invoices",
		"cleanup-automation-logs", "process-automations", "update-automation-analytics"}, jobs)
	assert.Regexp(t, `^process-automations\s+\* \* \* \* \*\s+t\s`, cron[5])

	t.Cleanup(func() {
		pgtest.Exec(t, db, `select cron.alter_job(jobid, active := true) from cron.job where jobname = 'update-automation-analytics'`)
	})
	pgtest.Exec(t, db, `select cron.alter_job(jobid, active := false) from cron.job where jobname = 'update-automation-analytics'`)
	cron = status()
	assertAligned(t, cron)
	assert.Regexp(t, `^update-automation-analytics\s+7 \* \* \* \*\s+f\s`, cron[6])
	assert.Equal(t, []string{
		"note: paused (is_active false): update-automation-analytics",
		"note: a pause survives re-running the migrations (pg_cron keeps is_active); resume a job with",
		"note:   select cron.alter_job(jobid, active := true) from cron.job where jobname = '<job_name>';",
	}, cron[7:])
}

func TestStatusWithoutDatabase(t *testing.T) {
	err := cmdStatus(t.Context(), []string{"--db", "postgres://postgres@127.0.0.1:1/nothing?connect_timeout=2"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to 127.0.0.1:1/nothing")
	require.ErrorContains(t, cmdStatus(t.Context(), []string{"extra"}), "unexpected arguments")
}

// Bounce and complaint rates per organisation over 30 days, the worst
// first, with a note when one is over what mailbox providers accept.
func TestStatusDeliveryHealth(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	bad, good := pgtest.AllDayOrg(t, pool), pgtest.AllDayOrg(t, pool)
	for _, o := range []struct {
		org                       uuid.UUID
		sent, bounced, complained int
	}{{bad, 200, 6, 1}, {good, 100, 0, 0}} {
		wf := pgtest.CreateWorkflow(t, pool, pgtest.Workflow{Org: o.org, Trigger: "maintenance_due", Config: `{"months_after_service":6}`})
		pgtest.Exec(t, pool, `insert into automation_analytics (organization_id, workflow_id, date, emails_sent, delivered, bounced, complained)
			values ($1, $2, (now() at time zone 'UTC')::date, $3::int, $3::int - $4::int, $4::int, $5::int)`, o.org, wf, o.sent, o.bounced, o.complained)
	}
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var b bytes.Buffer
	require.NoError(t, writeStatus(ctx, conn, &b))
	lines := sections(b.String())["Delivery health per organisation, last 30 days (automation_delivery_health)"]
	require.Len(t, lines, 4, b.String())
	assertAligned(t, lines[:3])
	assert.Regexp(t, `^organization_id\s+sent_30d\s+delivered_30d\s+bounced_30d\s+complained_30d\s+bounce_rate_pct\s+complaint_rate_pct\s+suppressed\s+opted_out$`, lines[0])
	assert.Regexp(t, `^`+bad.String()+`\s+200\s+194\s+6\s+1\s+3.00\s+0.500\s+0\s+0$`, lines[1])
	assert.Regexp(t, `^`+good.String()+`\s+100\s+100\s+0\s+0\s+0.00\s+0.000\s+0\s+0$`, lines[2])
	assert.Equal(t, "note: bounce rate over 2 % or complaint rate over 0.1 %: 1 organisation(s); mailbox providers throttle or block such senders", lines[3])
}
