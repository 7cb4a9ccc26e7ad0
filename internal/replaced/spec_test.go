package replaced_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/replaced"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// automation_workflow_spec is tested on the fixture's own automation_workflows
// (the replaced system's columns, its rows in every shape): only the two
// migrations it needs are applied, the workflow rules and the spec itself
// (the rest of the upgrade is not this function's business).
var specMigrations = []string{"20261202000100_workflow_rules.sql", "20261202000700_workflow_spec.sql"}

// specDB is the fixture with specMigrations applied.
func specDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db := fixtureDB(t, replaced.Options{})
	fl, err := sqlfiles.Files()
	require.NoError(t, err)
	applied := 0
	for _, f := range fl {
		for _, want := range specMigrations {
			if f.Name == want {
				require.NoError(t, pgcluster.ApplySQL(bg, db, f.Name, f.SQL))
				applied++
			}
		}
	}
	require.Equal(t, len(specMigrations), applied)
	return db
}

// specOf is the spec of a fixture workflow, with override (a JSON object of
// column values, "" for none) applied to the row first; the row in the table
// is not changed.
func specOf(t *testing.T, db pgtest.DB, workflow, override string) map[string]any {
	t.Helper()
	if override == "" {
		override = "{}"
	}
	return pgtest.JSON[map[string]any](t, db, `select automation_workflow_spec(jsonb_populate_record(w, $2::jsonb))
		from automation_workflows w where w.id = $1`, workflow, override)
}

// jsonOf is v as JSON text.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// Every workflow of the fixture gets what dueflow runs for it, or the
// reason it cannot; the rows themselves are not changed.
func TestWorkflowSpecOfFixture(t *testing.T) {
	t.Parallel()
	db := specDB(t)
	before := snapshot(t, db)

	notRunnable := func(reason, trigger, config, steps string, active bool) string {
		return fmt.Sprintf(`{"runnable":false,"reason":%q,"trigger_type":%s,"trigger_config":%s,"steps":%s,"active":%t}`,
			reason, trigger, config, steps, active)
	}
	runnable := func(trigger, config, steps string, active bool) string {
		return fmt.Sprintf(`{"runnable":true,"reason":null,"trigger_type":%q,"trigger_config":%s,"steps":%s,"active":%t}`,
			trigger, config, steps, active)
	}
	for _, c := range []struct{ name, id, want string }{
		{"builder invoice reminder", replaced.WorkflowInvoiceBuilder, runnable("invoice_overdue", `{"days_after_due":[3]}`,
			`[{"type":"send_email","subject":"Invoice {{invoice.number}} is overdue",
			   "body":"Dear {{client.first_name}}, invoice {{invoice.number}} for {{invoice.total}} is overdue. {{organization.name}}"}]`, true)},
		{"maintenance with its delay in template_config", replaced.WorkflowMaintenance, runnable("maintenance_due", `{"months_after_service":6}`,
			`[{"type":"send_email","subject":"Time for your service, {{client.first_name}}",
			   "body":"Hi {{client.full_name}}, it has been a while since your last service with {{organization.name}}."},
			  {"type":"delay","hours":24},
			  {"type":"send_sms","body":"{{organization.name}}: book your next service, {{client.first_name}}"}]`, true)},
		{"job_completed", replaced.WorkflowJobCompleted, notRunnable("trigger type job_completed is an event trigger dueflow does not run",
			`"job_completed"`, `{"triggerType":"job_completed","conditions":[]}`,
			`[{"type":"send_email","subject":"Job Completed - {{job.title}}","body":"Dear {{client.first_name}}, thank you for choosing {{organization.name}}."}]`, true)},
		{"job_status_changed", replaced.WorkflowJobStatusChanged, notRunnable("trigger type job_status_changed is an event trigger dueflow does not run",
			`"job_status_changed"`, `{"triggerType":"job_status_changed","conditions":[{"field":"status","operator":"equals","value":"on-hold"}]}`,
			`[{"type":"send_sms","body":"Hi {{client.first_name}}, your job {{job.title}} is on hold."}]`, true)},
		{"scheduled weekly", replaced.WorkflowScheduled, runnable("scheduled", `{"frequency":"weekly","hour":9,"minute":0,"day_of_week":1}`,
			`[{"type":"send_email","subject":"Your week with {{organization.name}}","body":"Hello {{client.first_name}}"}]`, true)},
		{"older step_type steps and flat variables", replaced.WorkflowInvoiceLegacy, runnable("invoice_overdue", `{"days_after_due":[7]}`,
			`[{"type":"send_email","subject":"Invoice {{invoice.number}} overdue","body":"Dear {{client.full_name}}, please pay invoice {{invoice.number}}."},
			  {"type":"delay","days":3},
			  {"type":"send_sms","body":"{{client.full_name}}, invoice {{invoice.number}} is overdue."}]`, true)},
		{"schedule_time", replaced.WorkflowScheduleTime, runnable("scheduled", `{"frequency":"daily","hour":8,"minute":30}`,
			`[{"type":"send_email","subject":"Today at {{organization.name}}","body":"Good morning {{client.first_name}}"}]`, true)},
		{"job_scheduled is an appointment", replaced.WorkflowAppointment, runnable("appointment", `{"hours_before":24}`,
			`[{"type":"send_sms","body":"Reminder: {{job.title}} tomorrow. {{organization.name}}"}]`, true)},
		{"draft", replaced.WorkflowDraft, notRunnable("trigger type is not set", `null`, `null`, `null`, false)},
		{"paused and disabled", replaced.WorkflowPaused, runnable("maintenance_due", `{"months_after_service":12}`,
			`[{"type":"send_email","subject":"Yearly service","body":"Dear {{client.full_name}}"}]`, false)},
		{"status inactive, is_active true", replaced.WorkflowFlagsDisagree, runnable("invoice_overdue", `{"days_after_due":[5]}`,
			`[{"type":"send_email","subject":"Overdue: {{invoice.number}}","body":"Dear {{client.first_name}}, {{invoice.total}} is overdue."}]`, false)},
		{"action_type only", replaced.WorkflowSingleAction, notRunnable("trigger type job_completed is an event trigger dueflow does not run",
			`"job_completed"`, `{}`,
			`[{"type":"send_email","subject":"How did we do?","body":"Hi {{client.full_name}}, please review {{organization.name}}."}]`, true)},
		{"ai_generate_message", replaced.WorkflowAIAction, notRunnable(
			"trigger type job_completed is an event trigger dueflow does not run; steps[0]: action ai_generate_message is not one dueflow has",
			`"job_completed"`, `{"triggerType":"job_completed","conditions":[]}`,
			`[{"id":"step-1700000000013-op12qr","type":"action","name":"AI Message","config":{"actionType":"ai_generate_message",
			   "prompt":"Write a thank-you note for {{job.title}}","channel":"email"}}]`, true)},
		{"seasonal", replaced.WorkflowSeasonal, notRunnable("trigger_config.seasonal: seasonal reminders are not something dueflow runs",
			`"maintenance_due"`, `{}`,
			`[{"type":"send_email","subject":"Seasonal safety check","body":"Hi {{client.first_name}}, book your seasonal check with {{organization.name}}."}]`, true)},
	} {
		assert.JSONEq(t, c.want, jsonOf(t, specOf(t, db, c.id, "")), c.name)
	}
	assert.Equal(t, 14, pgtest.Int(t, db, `select count(*) from automation_workflows`), "a fixture workflow without a case here")

	// a runnable spec is valid by the rules, and reading every row wrote nothing
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from automation_workflows w, automation_workflow_spec(w) s
		where (s ->> 'runnable')::boolean
		  and automation_workflow_problems(s ->> 'trigger_type', s -> 'trigger_config', s -> 'steps') <> '{}'`))
	assert.Equal(t, before, snapshot(t, db))
}

// The conventions of the app's rows, one at a time, on fixture rows with one
// or two columns changed.
func TestWorkflowSpecConventions(t *testing.T) {
	t.Parallel()
	db := specDB(t)
	type want struct {
		reason string // "" = runnable
		config string // "" = not checked
		steps  string
	}
	builderEmail := `{"type":"action","config":{"actionType":"email","subject":"S","message":"M"}}`
	builderSMS := `{"type":"action","config":{"actionType":"sms","message":"T"}}`
	for _, c := range []struct {
		name, id, override string
		want               want
	}{
		// trigger_config
		{"scheduled: plain digit strings are numbers", replaced.WorkflowScheduled,
			`{"trigger_config":{"frequency":"monthly","hour":"9","minute":"05","day_of_month":"31","day_of_week":null}}`,
			want{config: `{"frequency":"monthly","hour":9,"minute":5,"day_of_month":31}`}},
		{"scheduled: a fraction is not a whole number", replaced.WorkflowScheduled, `{"trigger_config":{"frequency":"daily","hour":"9.5"}}`,
			want{reason: "trigger_config.hour: must be a whole number from 0 to 23"}},
		{"scheduled: digits with spaces are not plain", replaced.WorkflowScheduled, `{"trigger_config":{"frequency":"daily","minute":" 5"}}`,
			want{reason: "trigger_config.minute: must be a whole number from 0 to 59"}},
		{"scheduled: out of range", replaced.WorkflowScheduled, `{"trigger_config":{"hour":"24","frequency":"fortnightly"}}`,
			want{reason: "trigger_config.frequency: must be one of every_minute, hourly, daily, weekly, monthly; trigger_config.hour: must be a whole number from 0 to 23"}},
		// the app kept the times in automation_schedules.cron_expression: never
		// guessed as dueflow's default (daily at 09:00)
		{"schedule_time: no frequency is not run", replaced.WorkflowScheduleTime, `{"trigger_config":null}`,
			want{reason: "trigger_config.frequency: not set (the app's automation_schedules.cron_expression is not read by dueflow; set frequency, hour and minute)"}},
		{"a trigger_config that is not an object", replaced.WorkflowScheduleTime, `{"trigger_config":"daily"}`,
			want{reason: "trigger_config: must be an object"}},
		{"invoice: days_overdue as a string", replaced.WorkflowInvoiceBuilder, `{"trigger_config":{"days_overdue":"10"}}`,
			want{config: `{"days_after_due":[10]}`}},
		{"invoice: days_after_due wins over daysOverdue", replaced.WorkflowInvoiceBuilder,
			`{"trigger_config":{"days_after_due":[1,"2"],"daysOverdue":3}}`, want{config: `{"days_after_due":[1,2]}`}},
		{"invoice: a days_overdue that is not a number", replaced.WorkflowInvoiceBuilder, `{"trigger_config":{"daysOverdue":"three"}}`,
			want{reason: "trigger_config.days_after_due: must be a list of 1 to 20 whole numbers from 0 to 365"}},
		{"invoice: builder UI keys dropped", replaced.WorkflowInvoiceBuilder,
			`{"trigger_config":{"triggerType":"invoice_overdue","daysOverdue":3,"conditions":[],"label":"Overdue","ui":{"x":1}}}`,
			want{config: `{"days_after_due":[3]}`}},
		{"invoice: builder conditions are refused", replaced.WorkflowInvoiceBuilder,
			`{"trigger_config":{"daysOverdue":3,"conditions":[{"field":"total","operator":"greater_than","value":"500"}]}}`,
			want{reason: "trigger_config.conditions: the builder's conditions are not something dueflow runs"}},
		{"maintenance: months in trigger_config, as a string", replaced.WorkflowMaintenance,
			`{"trigger_config":{"months_after_last_service":"12"},"trigger_conditions":{"months_after_last_service":6}}`,
			want{config: `{"months_after_service":12}`}},
		{"maintenance: no months anywhere", replaced.WorkflowMaintenance, `{"trigger_conditions":null}`, want{config: `{}`}},
		{"maintenance: seasonal false is dropped", replaced.WorkflowSeasonal, `{"trigger_config":{"seasonal":false}}`, want{config: `{}`}},
		{"appointment: hours_before as a string", replaced.WorkflowAppointment, `{"trigger_config":{"hours_before":"48"}}`,
			want{config: `{"hours_before":48}`}},
		{"stale_job is dueflow's own", replaced.WorkflowInvoiceBuilder,
			`{"trigger_type":"stale_job","trigger_config":{"days_inactive":"7","statuses":["scheduled"]}}`,
			want{config: `{"days_inactive":7,"statuses":["scheduled"]}`}},
		{"another event trigger", replaced.WorkflowInvoiceBuilder, `{"trigger_type":"client_created"}`,
			want{reason: "trigger type client_created is an event trigger dueflow does not run"}},
		{"a trigger type that is not a name is not repeated", replaced.WorkflowInvoiceBuilder, `{"trigger_type":"call maria@example.test"}`,
			want{reason: "trigger type is not one dueflow runs"}},

		// steps
		{"ai_generate_message on a trigger dueflow runs", replaced.WorkflowInvoiceBuilder,
			`{"steps":[` + builderEmail + `,{"type":"action","config":{"actionType":"ai_generate_message","prompt":"P"}}]}`,
			want{reason: "steps[1]: action ai_generate_message is not one dueflow has"}},
		{"an action without actionType", replaced.WorkflowInvoiceBuilder, `{"steps":[{"type":"action","config":{"message":"M"}}]}`,
			want{reason: "steps[0]: an action without actionType"}},
		{"a builder step type dueflow does not have", replaced.WorkflowInvoiceBuilder,
			`{"steps":[` + builderEmail + `,{"type":"condition","config":{"field":"status"}}]}`,
			want{reason: "steps[1]: step type condition is not one dueflow has"}},
		{"older step_type dueflow does not have", replaced.WorkflowInvoiceLegacy, `{"steps":[{"step_type":"webhook","config":{"url":"U"}}]}`,
			want{reason: "steps[0]: step type webhook is not one dueflow has"}},
		{"an actionType that is not a name is not repeated", replaced.WorkflowInvoiceLegacy,
			`{"steps":[{"type":"action","config":{"actionType":"Dear Maria, ..."}}]}`,
			want{reason: "steps[0]: a step type dueflow does not have"}},
		{"older delays in every unit", replaced.WorkflowInvoiceLegacy,
			`{"steps":[{"step_type":"delay","config":{"duration":"90 minutes"}},{"step_type":"delay","config":{"duration":"1 Hour"}},
			   {"step_type":"delay","config":{"duration":"2 weeks"}},{"step_type":"send_sms","config":{"body":"B","message":"M"}}]}`,
			want{steps: `[{"type":"delay","minutes":90},{"type":"delay","hours":1},{"type":"delay","days":14},{"type":"send_sms","body":"B"}]`}},
		{"an older delay dueflow cannot read", replaced.WorkflowInvoiceLegacy, `{"steps":[{"step_type":"delay","config":{"duration":"a while"}}]}`,
			want{reason: "steps[0]: a delay needs a duration such as 3 days, or a delayType (minutes, hours, days, weeks) and a delayValue"}},
		{"a delay over the rules' bound", replaced.WorkflowInvoiceLegacy, `{"steps":[{"step_type":"delay","config":{"duration":"400 days"}}]}`,
			want{reason: "steps[0].days: must be a whole number from 0 to 365"}},
		{"a delay of too many weeks", replaced.WorkflowInvoiceLegacy, `{"steps":[{"step_type":"delay","config":{"duration":"53 weeks"}}]}`,
			want{reason: "steps[0]: a delay in weeks must be a whole number from 0 to 52"}},
		{"steps NULL on a trigger dueflow runs", replaced.WorkflowInvoiceBuilder, `{"steps":null}`,
			want{reason: "steps: must be a list"}},
		{"steps [] is dueflow's default steps", replaced.WorkflowInvoiceBuilder, `{"steps":[]}`, want{steps: `[]`}},
		{"steps [] with action_type send_sms", replaced.WorkflowInvoiceBuilder,
			`{"steps":[],"action_type":"send_sms","action_config":{"message":"Hi {{client_first_name}}"}}`,
			want{steps: `[{"type":"send_sms","body":"Hi {{client.first_name}}"}]`}},
		{"action_type dueflow does not have", replaced.WorkflowInvoiceBuilder, `{"steps":null,"action_type":"send_webhook"}`,
			want{reason: "action_type: step type send_webhook is not one dueflow has"}},
		{"an item of steps that is not an object", replaced.WorkflowInvoiceBuilder, `{"steps":["email"]}`,
			want{reason: "steps[0]: must be an object"}},

		// template_config.steps
		{"template_config.steps: builder delays in every unit", replaced.WorkflowMaintenance,
			`{"steps":[` + builderEmail + `,` + builderSMS + `,` + builderEmail + `],"template_config":{"steps":[
			   {"type":"delay","config":{"delayType":"minutes","delayValue":"30"}},{"type":"action","config":{"actionType":"email"}},
			   {"type":"delay","config":{"delayType":"days","delayValue":2}},{"type":"action","config":{"actionType":"sms"}},
			   {"type":"delay","config":{"delayType":"weeks","delayValue":1}},{"type":"action","config":{}}]}}`,
			want{steps: `[{"type":"delay","minutes":30},{"type":"send_email","subject":"S","body":"M"},{"type":"delay","days":2},
			   {"type":"send_sms","body":"T"},{"type":"delay","days":7},{"type":"send_email","subject":"S","body":"M"}]`}},
		{"template_config.steps without delays changes nothing", replaced.WorkflowMaintenance,
			`{"steps":[` + builderSMS + `],"template_config":{"steps":[{"type":"action","config":{"actionType":"sms"}}]}}`,
			want{steps: `[{"type":"send_sms","body":"T"}]`}},
		{"template_config.steps with another number of actions", replaced.WorkflowMaintenance,
			`{"steps":[` + builderEmail + `]}`,
			want{reason: "template_config.steps: 2 actions where the workflow has 1, so dueflow cannot tell where its delays go"}},
		{"template_config.steps with other actions", replaced.WorkflowMaintenance,
			`{"template_config":{"steps":[{"type":"action","config":{"actionType":"sms"}},{"type":"delay","config":{"delayType":"hours","delayValue":1}},
			   {"type":"action","config":{"actionType":"email"}}]}}`,
			want{reason: "template_config.steps[0]: action sms where steps[0] is email; template_config.steps[2]: action email where steps[1] is sms"}},
		{"a template_config delay dueflow cannot read", replaced.WorkflowMaintenance,
			`{"template_config":{"steps":[{"type":"action","config":{"actionType":"email"}},{"type":"delay","config":{"delayType":"fortnights","delayValue":1}},
			   {"type":"action","config":{"actionType":"sms"}}]}}`,
			want{reason: "template_config.steps[1]: a delay needs a duration such as 3 days, or a delayType (minutes, hours, days, weeks) and a delayValue"}},
		{"template_config.steps items without a type count as actions", replaced.WorkflowMaintenance,
			`{"steps":[` + builderEmail + `,` + builderSMS + `],"template_config":{"steps":[{},{"type":"delay","config":{"delayType":"hours","delayValue":1}},{"type":5}]}}`,
			want{steps: `[{"type":"send_email","subject":"S","body":"M"},{"type":"delay","hours":1},{"type":"send_sms","body":"T"}]`}},
		{"steps with their own delay: template_config.steps is not used", replaced.WorkflowMaintenance,
			`{"steps":[` + builderEmail + `,{"type":"delay","config":{"delayType":"hours","delayValue":2}},` + builderSMS + `]}`,
			want{steps: `[{"type":"send_email","subject":"S","body":"M"},{"type":"delay","hours":2},{"type":"send_sms","body":"T"}]`}},

		// variables
		{"a variable dueflow has no equivalent for", replaced.WorkflowInvoiceBuilder,
			`{"steps":[{"type":"action","config":{"actionType":"email","subject":"{{company.website}}","message":"{{ client.firstName }} {{client.nickname}}"}}]}`,
			want{reason: "steps[0].subject: unknown variable {{company.website}}; steps[0].body: unknown variable {{client.nickname}}"}},
		{"variables renamed, every other byte kept", replaced.WorkflowInvoiceBuilder,
			`{"steps":[{"type":"action","config":{"actionType":"email","subject":"}} {{ {{company.name}}x{{ invoice.dueDate\t}}{{due_date}}}","message":"a {{x"}}]}`,
			want{reason: "steps[0].subject: unclosed {{; steps[0].body: unclosed {{",
				steps: `[{"type":"send_email","subject":"}} {{ {{organization.name}}x{{invoice.due_date}}{{invoice.due_date}}}","body":"a {{x"}]`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := specOf(t, db, c.id, c.override)
			if c.want.reason == "" {
				assert.Equal(t, true, s["runnable"], "%v", s["reason"])
				assert.Nil(t, s["reason"])
			} else {
				assert.Equal(t, false, s["runnable"])
				assert.Equal(t, c.want.reason, s["reason"])
			}
			if c.want.config != "" {
				assert.JSONEq(t, c.want.config, jsonOf(t, s["trigger_config"]))
			}
			if c.want.steps != "" {
				assert.JSONEq(t, c.want.steps, jsonOf(t, s["steps"]))
			}
		})
	}
}

// active: the replaced system ran a workflow when is_active and status =
// 'active'; enabled = false keeps it off as well.
func TestWorkflowSpecActive(t *testing.T) {
	t.Parallel()
	db := specDB(t)
	for _, c := range []struct {
		override string
		active   bool
	}{
		{`{}`, true},
		{`{"enabled":null}`, true},
		{`{"enabled":false}`, false},
		{`{"status":"paused"}`, false},
		{`{"status":"draft"}`, false},
		{`{"status":null}`, false},
		{`{"is_active":false}`, false},
		{`{"is_active":null}`, false},
	} {
		assert.Equal(t, c.active, specOf(t, db, replaced.WorkflowInvoiceBuilder, c.override)["active"], c.override)
	}
}

// Whatever the app's columns hold, the spec never raises, is runnable only
// when the rules accept what it returns, gives a reason otherwise, and never
// repeats a value (a message, a subject, a condition's value) in it.
func TestWorkflowSpecGarbage(t *testing.T) {
	t.Parallel()
	db := specDB(t)
	r := rand.New(rand.NewPCG(9, 3))
	const secret = "SECRET maria@example.test"
	scalars := []string{`null`, `true`, `0`, `-1`, `3`, `9.5`, `1e300`, `"9"`, `"09"`, `"9.0"`, `"1e3"`, `"-3"`,
		`"99999999999"`, `""`, `"daily"`, `"weekly"`, `"hours"`, `"weeks"`, `"3 days"`, `"53 weeks"`, `"999999999 minutes"`,
		`"` + secret + `"`, `"{{client.firstName}} ` + secret + `"`, `"{{"`, `"}}"`, `"{{ {{x}}"`, `"{{client_name"`,
		`"` + strings.Repeat("é", 700) + `"`, `[]`, `{}`, `[null]`, `["` + secret + `"]`}
	keys := []string{"type", "step_type", "config", "actionType", "subject", "message", "body", "html", "delayType",
		"delayValue", "duration", "steps", "conditions", "field", "value", "frequency", "hour", "minute", "day_of_week",
		"day_of_month", "days_overdue", "daysOverdue", "days_after_due", "months_after_last_service", "hours_before",
		"seasonal", "triggerType", "audience", ""}
	names := []string{`"action"`, `"delay"`, `"email"`, `"sms"`, `"send_email"`, `"send_sms"`, `"ai_generate_message"`,
		`"condition"`, `null`, `5`, `["delay"]`}
	var value func(depth int) string
	value = func(depth int) string {
		if depth > 3 || r.IntN(3) == 0 {
			return scalars[r.IntN(len(scalars))]
		}
		switch r.IntN(4) {
		case 0: // an array
			parts := []string{}
			for range r.IntN(4) {
				parts = append(parts, value(depth+1))
			}
			return "[" + strings.Join(parts, ",") + "]"
		case 1: // a step the way the app writes one
			k := "type"
			if r.IntN(2) == 0 {
				k = "step_type"
			}
			return fmt.Sprintf(`{%q:%s,"config":{"actionType":%s,%q:%s,%q:%s}}`, k, names[r.IntN(len(names))],
				names[r.IntN(len(names))], keys[r.IntN(len(keys))], value(depth+1), keys[r.IntN(len(keys))], value(depth+1))
		default: // any object
			parts := []string{}
			for range r.IntN(5) {
				parts = append(parts, fmt.Sprintf("%q:%s", keys[r.IntN(len(keys))], value(depth+1)))
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
	}
	text := []string{`null`, `""`, `"scheduled"`, `"schedule_time"`, `"invoice_overdue"`, `"maintenance_due"`, `"job_scheduled"`,
		`"stale_job"`, `"appointment"`, `"job_completed"`, `"send_email"`, `"sms"`, `"active"`, `"` + strings.Repeat("x", 300) + `"`}
	boolean := []string{`null`, `true`, `false`}
	ids := []string{replaced.WorkflowInvoiceBuilder, replaced.WorkflowMaintenance, replaced.WorkflowDraft, replaced.WorkflowInvoiceLegacy}
	for i := range 600 {
		override := fmt.Sprintf(`{"trigger_type":%s,"trigger_config":%s,"trigger_conditions":%s,"steps":%s,"template_config":%s,
			"action_type":%s,"action_config":%s,"status":%s,"is_active":%s,"enabled":%s}`,
			text[r.IntN(len(text))], value(0), value(0), value(0), value(0), text[r.IntN(len(text))], value(0),
			text[r.IntN(len(text))], boolean[r.IntN(3)], boolean[r.IntN(3)])
		if r.IntN(3) == 0 { // a list of steps, most of the time
			override = strings.Replace(override, `"steps":`, `"steps":[`+value(1)+`,`+value(1)+`],"x":`, 1)
		}
		var spec []byte
		var rulesOK bool
		err := db.QueryRow(bg, `select s, not (s ->> 'runnable')::boolean
				or automation_workflow_problems(s ->> 'trigger_type', s -> 'trigger_config', s -> 'steps') = '{}'
			from automation_workflows w, automation_workflow_spec(jsonb_populate_record(w, $2::jsonb)) s
			where w.id = $1`, ids[r.IntN(len(ids))], override).Scan(&spec, &rulesOK)
		require.NoError(t, err, "case %d: %s", i, override)
		var s struct {
			Runnable *bool
			Reason   *string
			Active   *bool
		}
		require.NoError(t, json.Unmarshal(spec, &s), "case %d", i)
		require.NotNil(t, s.Runnable, "case %d: %s", i, spec)
		require.NotNil(t, s.Active, "case %d: %s", i, spec)
		assert.True(t, rulesOK, "case %d: runnable but the rules refuse it: %s", i, spec)
		assert.Equal(t, *s.Runnable, s.Reason == nil, "case %d: %s", i, spec)
		if s.Reason != nil {
			assert.NotContains(t, *s.Reason, "SECRET", "case %d: %s", i, override)
		}
	}
	// a NULL row too
	assert.JSONEq(t, `{"runnable":false,"reason":"trigger type is not set","trigger_type":null,"trigger_config":null,"steps":null,"active":false}`,
		pgtest.Text(t, db, `select automation_workflow_spec(null::automation_workflows)::text`))
}
