package sqltest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// checkProblem is one row of automation_check_problems.
type checkProblem struct {
	Check    string     `json:"check_name"`
	Type     string     `json:"trigger_type"`
	Org      *uuid.UUID `json:"organization_id"`
	Workflow *uuid.UUID `json:"workflow_id"`
	Code     string     `json:"code"`
	Message  string     `json:"message"`
	Count    int        `json:"count"`
}

// checkProblems returns the rows of automation_check_problems.
func checkProblems(t testing.TB, db pgtest.DB) []checkProblem {
	t.Helper()
	return pgtest.JSON[[]checkProblem](t, db, `select coalesce(jsonb_agg(to_jsonb(p) order by check_name, trigger_type, code, organization_id nulls first, workflow_id nulls first), '[]')
		from automation_check_problems p`)
}

// orgProblems returns the problems recorded for one organisation, by code.
func orgProblems(all []checkProblem, org uuid.UUID) map[string][]checkProblem {
	out := map[string][]checkProblem{}
	for _, p := range all {
		if p.Org != nil && *p.Org == org {
			out[p.Code] = append(out[p.Code], p)
		}
	}
	return out
}

// twoRuns runs every check at now (the scheduled check creates its
// schedules) and 90 s later (the every-minute schedules are due); both runs
// must return normally.
func twoRuns(t testing.TB, db pgtest.DB, now time.Time) {
	t.Helper()
	runAllChecks(t, db, now, checkFns)
	runAllChecks(t, db, now.Add(90*time.Second), checkFns)
}

var subChecks = []string{"appointment", "invoice_overdue", "maintenance_due", "scheduled", "stale_job"}

// Issue 8: a workflow whose trigger_config or steps break the rules, written
// before validation (or with its trigger disabled), is skipped alone and
// recorded; every other workflow, of its organisation too, gets its reminders
// in the same run, and every check returns normally.
func TestBadWorkflowSkippedAlone(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	good := seedTenant(t, db, true)
	bad := seedTenant(t, db, true)
	cases := []struct{ trigger, config, steps, problem string }{
		{"scheduled", `{"frequency":"daily","hour":"nine"}`, "", "trigger_config.hour: must be a whole number from 0 to 23"},
		{"scheduled", `{"frequency":"daily","hour":9.5}`, "", "trigger_config.hour: must be a whole number from 0 to 23"},
		{"scheduled", `{"frequency":"daily","hour":1e10}`, "", "trigger_config.hour: must be a whole number from 0 to 23"},
		{"scheduled", `{"frequency":"daily","hour":25}`, "", "trigger_config.hour: must be a whole number from 0 to 23"},
		{"scheduled", `{"frequency":"weekly","day_of_week":"monday"}`, "", "trigger_config.day_of_week: must be a whole number from 0 to 6"},
		{"scheduled", `{"frequency":"monthly","day_of_month":"last"}`, "", "trigger_config.day_of_month: must be a whole number from 1 to 31"},
		{"scheduled", `{"frequency":"daily","minute":1e300}`, "", "trigger_config.minute: must be a whole number from 0 to 59"},
		{"scheduled", `{"frequency":"fortnightly"}`, "", "trigger_config.frequency: must be one of"},
		{"stale_job", `{"days_inactive":"a week"}`, "", "trigger_config.days_inactive: must be a whole number from 1 to 365"},
		{"stale_job", `{"days_inactive":1e300}`, "", "trigger_config.days_inactive: must be a whole number from 1 to 365"},
		{"stale_job", `{"days_inactive":"seven"}`, "", "trigger_config.days_inactive: must be a whole number from 1 to 365"},
		{"maintenance_due", `{"months_after_service":"six"}`, "", "trigger_config.months_after_service: must be a whole number from 1 to 120"},
		{"maintenance_due", `{"months_after_service":1e300}`, "", "trigger_config.months_after_service: must be a whole number from 1 to 120"},
		{"appointment", `{"hours_before":"24h"}`, "", "trigger_config.hours_before: must be a whole number from 1 to 720"},
		{"appointment", `{"hours_before":1e300}`, "", "trigger_config.hours_before: must be a whole number from 1 to 720"},
		{"invoice_overdue", `{"days_after_due":"seven"}`, "", "trigger_config.days_after_due: must be a list of 1 to 20 whole numbers from 0 to 365"},
		{"invoice_overdue", "", `[{"type":"delay","days":"1"}]`, "steps[0].days: must be a whole number from 0 to 365"},
		{"invoice_overdue", "", `[{"type":"delay","hours":1.5}]`, "steps[0].hours: must be a whole number from 0 to 8760"},
		{"invoice_overdue", "", `[{"type":"send_email","subject":5}]`, "steps[0].subject: must be text of at most 500 characters"},
		{"invoice_overdue", "", `[1]`, "steps[0]: must be an object"},
		{"invoice_overdue", "", `[{"type":"delay","minutes":1e20}]`, "steps[0].minutes: must be a whole number from 0 to 525600"},
		{"invoice_overdue", `{"days_after_due":[1],"client@example.test":1}`, "", "trigger_config.…: unknown key"},
	}
	badWf := make([]uuid.UUID, len(cases))
	for i, c := range cases {
		badWf[i] = pgtest.CreateUnvalidatedWorkflow(t, db, pgtest.Workflow{Org: bad.org, Trigger: c.trigger, Config: c.config, Steps: c.steps})
	}
	// a valid workflow written without validation runs, and is marked valid
	unchecked := pgtest.CreateUnvalidatedWorkflow(t, db, pgtest.Workflow{Org: good.org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7]}`})

	twoRuns(t, db, time.Now())
	assert.Equal(t, wantOnce, perWorkflow(t, db, good), "another organisation's reminders, in the same runs")
	assert.Equal(t, wantOnce, perWorkflow(t, db, bad), "the organisation's valid workflows still run")
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, unchecked))
	assert.Equal(t, "{}", pgtest.Text(t, db, `select problems::text from automation_workflows where id = $1`, unchecked))

	all := checkProblems(t, db)
	byWorkflow := map[uuid.UUID]checkProblem{}
	for _, p := range all {
		require.Equal(t, "invalid_config", p.Code, "%+v", p)
		require.NotNil(t, p.Workflow)
		byWorkflow[*p.Workflow] = p
	}
	require.Len(t, all, len(cases))
	for i, c := range cases {
		assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, badWf[i]), "%s %s %s", c.trigger, c.config, c.steps)
		p, ok := byWorkflow[badWf[i]]
		if assert.True(t, ok, "no problem recorded for %s %s %s", c.trigger, c.config, c.steps) {
			assert.Equal(t, c.trigger, p.Type)
			assert.Equal(t, bad.org, *p.Org)
			assert.Contains(t, p.Message, c.problem)
			assert.Equal(t, 2, p.Count, "seen by both runs")
		}
	}
	for _, p := range all {
		for _, leak := range []string{"nine", "monday", "last", "a week", "six", "24h", "client@example.test"} {
			assert.NotContains(t, p.Message, leak, "a recorded message echoes the tenant's value")
		}
	}
	assert.Equal(t, len(cases), pgtest.Int(t, db, `select check_problems from automation_queue_health`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_schedule_state where workflow_id = any ($1)`, badWf))

	// the tenant fixes a workflow: it runs, and its record is gone
	fixed := badWf[13] // appointment "24h"
	pgtest.Exec(t, db, `update automation_workflows set trigger_config = '{"hours_before":24}' where id = $1`, fixed)
	runAllChecks(t, db, time.Now().Add(2*time.Minute), checkFns)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_execution_logs where workflow_id = $1`, fixed))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_check_problems where workflow_id = $1`, fixed))
	assert.Equal(t, len(cases)-1, pgtest.Int(t, db, `select check_problems from automation_queue_health`))
}

// Issue 8: an organisation whose zone (from an adopter's view) is not a zone
// name is skipped and recorded; one whose zone is NULL runs in UTC and says
// so. The others get their reminders in the same run, the overdue marking
// hook goes on for them, and an existing execution of such an organisation
// snaps its retry in UTC rather than failing the report's batch.
func TestUnusableZoneSkipsOnlyItsOrganisation(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	good := seedTenant(t, db, true)
	mars := seedTenant(t, db, true)
	none := seedTenant(t, db, true)
	// what an adopter's view can deliver
	pgtest.Exec(t, db, `alter table organizations drop constraint organizations_timezone_check, alter column timezone drop not null`)
	pgtest.Exec(t, db, `update organizations set timezone = 'Mars/Phobos' where id = $1`, mars.org)
	pgtest.Exec(t, db, `update organizations set timezone = null where id = $1`, none.org)

	twoRuns(t, db, time.Now())
	assert.Equal(t, wantOnce, perWorkflow(t, db, good))
	assert.Equal(t, wantOnce, perWorkflow(t, db, none), "a NULL zone runs in UTC")
	for tr, n := range perWorkflow(t, db, mars) {
		assert.Zero(t, n, "%s: an organisation with an unknown zone is skipped", tr)
	}
	invoiceStatus := func(org uuid.UUID) string {
		return pgtest.Text(t, db, `select status from invoices where organization_id = $1`, org)
	}
	assert.Equal(t, "overdue", invoiceStatus(good.org), "the marking hook went on")
	assert.Equal(t, "overdue", invoiceStatus(none.org))
	assert.Equal(t, "sent", invoiceStatus(mars.org))

	all := checkProblems(t, db)
	byCode := orgProblems(all, mars.org)
	require.Len(t, byCode["invalid_timezone"], len(subChecks), "%+v", all)
	var types []string
	for _, p := range byCode["invalid_timezone"] {
		types = append(types, p.Type)
		assert.Nil(t, p.Workflow)
		assert.NotContains(t, p.Message, "Mars")
	}
	assert.ElementsMatch(t, subChecks, types)
	assert.Len(t, orgProblems(all, none.org)["timezone_defaulted"], len(subChecks))
	assert.Len(t, all, 2*len(subChecks), "nothing else: no check_error, no hook_error: %+v", all)
	assert.Equal(t, 2*len(subChecks), pgtest.Int(t, db, `select check_problems from automation_queue_health`))

	// the zone is fixed: the organisation's reminders are created, its records go
	pgtest.Exec(t, db, `update organizations set timezone = 'Europe/Paris' where id = $1`, mars.org)
	runAllChecks(t, db, time.Now().Add(3*time.Minute), checkFns)
	got := perWorkflow(t, db, mars)
	for _, tr := range []string{"invoice_overdue", "maintenance_due", "stale_job", "appointment"} {
		assert.Equal(t, 1, got[tr], tr)
	}
	assert.Empty(t, orgProblems(checkProblems(t, db), mars.org))

	// existing executions meet an unusable zone at report time: a retry
	// snaps in UTC, and the rest of the batch is applied
	inv := pgtest.ExecutionIDs(t, db, good.wf["invoice_overdue"])
	invNone := pgtest.ExecutionIDs(t, db, none.wf["invoice_overdue"])
	ids := append(inv, invNone...)
	claimed := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, ids, 60)
	pgtest.Exec(t, db, `update organizations set timezone = 'Mars/Phobos' where id = $1`, good.org)
	var outcomes []automation.Outcome
	for _, c := range claimed {
		outcomes = append(outcomes, automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken,
			Status: automation.OutcomeRetry, ErrorCode: "provider_unavailable", RetryAfterSecs: 120})
	}
	for _, r := range pgtest.Report(t, db, outcomes...) {
		assert.True(t, r.Applied, "%+v", r)
		assert.Equal(t, "pending", string(r.Status))
	}
	assert.Equal(t, 2, pgtest.Int(t, db, `select count(*) from automation_execution_logs
		where id = any ($1) and status = 'pending' and next_attempt_at > now() + interval '100 seconds'`, ids))
}

// Issue 8: an unforeseen error (an adopter's view row whose value cannot be
// cast) fails the set-based run; the check re-runs per organisation, so only
// that organisation fails, recorded without the offending value, and the
// others get their reminders in the same run. Later runs keep the others on
// the set-based path and retry the faulty one alone until it succeeds.
func TestUnforeseenErrorFailsOneOrganisation(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	good := seedTenant(t, db, true)
	other := seedTenant(t, db, true)
	faulty := seedTenant(t, db, true)
	pgtest.Exec(t, db, fmt.Sprintf(`create or replace view automation_src_invoices with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status,
		       (case when organization_id = '%s' then 'not a date' else due_date::text end)::date as due_date,
		       total, balance, currency, portal_url, updated_at
		from invoices`, faulty.org))

	now := time.Now()
	require.Equal(t, 2, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now), "the two healthy organisations' reminders")
	for _, tn := range []tenant{good, other} {
		assert.Equal(t, 1, perWorkflow(t, db, tn)["invoice_overdue"])
	}
	assert.Zero(t, perWorkflow(t, db, faulty)["invoice_overdue"])
	errs := checkProblems(t, db)
	require.Len(t, errs, 2, "%+v", errs)
	assert.Nil(t, errs[0].Org, "the set-based run's failure")
	require.NotNil(t, errs[1].Org)
	assert.Equal(t, faulty.org, *errs[1].Org)
	for _, p := range errs {
		assert.Equal(t, "check_error", p.Code)
		assert.Equal(t, "check_overdue_invoices", p.Check)
		assert.Contains(t, p.Message, `invalid input syntax for type date: "…"`)
		assert.NotContains(t, p.Message, "not a date")
	}
	// the other checks do not read invoices: not concerned
	assert.Equal(t, 6, pgtest.Int(t, db, `select check_maintenance_reminders($1)`, now), "maintenance and appointment, three organisations")
	assert.Len(t, checkProblems(t, db), 2)

	// next run: the healthy organisations stay on the set-based path (a new
	// invoice is reminded), the faulty one is tried alone and fails again
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: good.org, Client: good.active, DueInDays: -2})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(time.Minute)))
	errs = checkProblems(t, db)
	require.Len(t, errs, 1, "the set-based run succeeded: %+v", errs)
	assert.Equal(t, faulty.org, *errs[0].Org)
	assert.Equal(t, 2, errs[0].Count)

	// the view is repaired: the organisation is reminded, its record is gone
	pgtest.Exec(t, db, `create or replace view automation_src_invoices with (security_invoker = true) as
		select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date,
		       total, balance, currency, portal_url, updated_at
		from invoices`)
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices($1)`, now.Add(2*time.Minute)))
	assert.Equal(t, 1, perWorkflow(t, db, faulty)["invoice_overdue"])
	assert.Empty(t, checkProblems(t, db))
}
