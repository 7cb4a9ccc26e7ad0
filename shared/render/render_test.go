package render_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/render"
)

func TestTextSubstitution(t *testing.T) {
	v := render.Vars{"client.first_name": "Ana", "invoice.number": "INV-7"}
	got, err := render.Text("Hi {{client.first_name}}, {{  invoice.number }} {{\tclient.first_name\n}}!", v)
	require.NoError(t, err)
	assert.Equal(t, "Hi Ana, INV-7 Ana!", got)

	got, err = render.Text("no placeholders }} here", v)
	require.NoError(t, err)
	assert.Equal(t, "no placeholders }} here", got)

	got, err = render.Text("{{job.title}}|{{client.last_name}}", v)
	require.NoError(t, err, "known variables absent from Vars render empty")
	assert.Equal(t, "|", got)
}

func TestNoGoTemplateExecution(t *testing.T) {
	v := render.Vars{"client.first_name": "{{invoice.number}}"}
	for _, tmpl := range []string{`{{printf "%s" "x"}}`, `{{.}}`, `{{ template "x" }}`, `{{client.first_name | html}}`, `{{}}`} {
		_, err := render.Text(tmpl, v)
		var uv *render.UnknownVariableError
		require.ErrorAs(t, err, &uv, tmpl)
		assert.Equal(t, automation.CodeTemplate, automation.ErrorCode(err))
	}
	// A value that looks like a placeholder is not substituted again.
	got, err := render.Text("{{client.first_name}}", v)
	require.NoError(t, err)
	assert.Equal(t, "{{invoice.number}}", got)
}

func TestUnknownAndSyntaxErrors(t *testing.T) {
	_, err := render.Text("Hi {{client.nickname}}", nil)
	var uv *render.UnknownVariableError
	require.ErrorAs(t, err, &uv)
	assert.Equal(t, "client.nickname", uv.Name)
	assert.Equal(t, automation.CodeTemplate, automation.ErrorCode(err))
	assert.Equal(t, "unknown template variable {{client.nickname}}", err.Error(), "the cause's text")

	for _, tmpl := range []string{"Hi {{client.first_name", "{{", "a {{ b {{client.first_name}}"} {
		_, err = render.Text(tmpl, nil)
		var se *render.SyntaxError
		require.ErrorAs(t, err, &se, tmpl)
		assert.Equal(t, automation.CodeTemplate, automation.ErrorCode(err))
		_, err = render.HTML(tmpl, nil)
		assert.ErrorAs(t, err, &se)
		assert.Equal(t, automation.CodeTemplate, automation.ErrorCode(render.Check(tmpl)))
	}
	assert.NoError(t, render.Check("{{ invoice.balance }}"))
}

func TestHTMLEscapesValuesNotMarkup(t *testing.T) {
	v := render.Vars{"client.first_name": `<script>alert("x")</script> & Co`}
	got, err := render.HTML(`<p class="x">Hi {{client.first_name}}</p>`, v)
	require.NoError(t, err)
	assert.Equal(t, `<p class="x">Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</p>`, got)
	txt, err := render.Text(`Hi {{client.first_name}}`, v)
	require.NoError(t, err)
	assert.Equal(t, `Hi <script>alert("x")</script> & Co`, txt, "text parts are not escaped")
}

func TestEmailDerivesText(t *testing.T) {
	v := render.Vars{"client.first_name": "Bo & Al", "invoice.portal_url": "https://pay.example/i?a=1&b=2"}
	m, err := render.Email(render.Template{
		Subject: "Hello\n{{client.first_name}}",
		HTML:    `<html><head><style>p{}</style></head><body><p>Hi {{client.first_name}},</p><p>Pay <a href="{{invoice.portal_url}}">here</a><br>thanks</p><ul><li>one</li><li>two</li></ul></body></html>`,
	}, v)
	require.NoError(t, err)
	assert.Equal(t, "Hello Bo & Al", m.Subject)
	assert.Contains(t, m.HTML, `href="https://pay.example/i?a=1&amp;b=2"`)
	assert.Equal(t, "Hi Bo & Al,\n\nPay here (https://pay.example/i?a=1&b=2)\nthanks\n\n- one\n- two", m.Text)

	m, err = render.Email(render.Template{Subject: "s", Text: "plain {{client.first_name}}"}, v)
	require.NoError(t, err)
	assert.Equal(t, "plain Bo & Al", m.Text)
	assert.Empty(t, m.HTML)

	_, err = render.Email(render.Template{Subject: "{{nope}}", Text: "x"}, v)
	assert.Equal(t, automation.CodeTemplate, automation.ErrorCode(err))
}

func fixture(t *testing.T) *automation.Claimed {
	t.Helper()
	start := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC) // 9:00 AM EST
	done := time.Date(2026, 5, 3, 15, 0, 0, 0, time.UTC)
	return &automation.Claimed{
		Execution: automation.Execution{ID: uuid.New(), Action: automation.ActionInvoiceReminder, TriggerType: automation.TriggerInvoiceOverdue},
		Organization: automation.Organization{
			Name: "Acme HVAC", Timezone: "America/New_York", CountryCode: "US", Phone: "+1 212 555 0100",
			SenderEmail: "billing@acme.test", ReplyToEmail: "office@acme.test", PortalURL: "https://acme.test/portal",
		},
		Client:  &automation.Client{FirstName: " Ana ", LastName: "Lima", Email: "ana@client.test", Phone: "+442079460958"},
		Invoice: &automation.Invoice{Number: "INV-1001", DueDate: "2026-11-03", Total: "1250.00", Balance: "80.5", Currency: "USD"},
		Job:     &automation.Job{Title: "Furnace tune-up", JobType: "maintenance", ScheduledStart: &start, CompletedAt: &done, Address: "1 Main St"},
	}
}

func TestVarsFor(t *testing.T) {
	c := fixture(t)
	now := time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC) // Nov 9 in New York
	v := render.VarsAt(c, now)
	want := map[string]string{
		"client.first_name": "Ana", "client.last_name": "Lima", "client.full_name": "Ana Lima",
		"client.email": "ana@client.test", "client.phone": "+44 20 7946 0958",
		"organization.name": "Acme HVAC", "organization.phone": "(212) 555-0100",
		"organization.email": "office@acme.test", "organization.portal_url": "https://acme.test/portal",
		"invoice.number": "INV-1001", "invoice.total": "$1,250.00", "invoice.balance": "$80.50",
		"invoice.due_date": "Nov 3, 2026", "invoice.days_overdue": "6",
		"invoice.portal_url": "https://acme.test/portal",
		"job.title":          "Furnace tune-up", "job.type": "maintenance", "job.address": "1 Main St",
		"job.scheduled_start": "Monday, November 30, 2026, 9:00 am EST", "job.scheduled_date": "Monday, November 30, 2026",
		"job.completed_at": "May 3, 2026",
		// beyond Variables (DefaultTemplateVariables)
		"organization.locale": "en-US", "organization.address": "", "invoice.pay_url": "https://acme.test/portal",
		"unsubscribe_url": "", "footer.unsubscribe_text": "", "footer.unsubscribe_label": "",
		"summary.open_invoices": "", "summary.overdue_invoices": "", "summary.open_balance": "",
		"summary.reminders_sent_yesterday": "",
	}
	assert.Equal(t, render.Vars(want), v)
	assert.Len(t, v, len(render.Variables)+len(render.DefaultTemplateVariables))

	// Absent subjects: every variable still known, empty.
	empty := render.VarsFor(&automation.Claimed{Organization: automation.Organization{Name: "Solo", Timezone: "Not/AZone"}})
	assert.Len(t, empty, len(render.Variables)+len(render.DefaultTemplateVariables))
	assert.Equal(t, "", empty["invoice.balance"])
	assert.Equal(t, "Solo", empty["organization.name"])
	out, err := render.Text("{{client.first_name}}{{job.scheduled_start}}{{invoice.days_overdue}}", empty)
	require.NoError(t, err)
	assert.Empty(t, out)

	c.Invoice.PortalURL = "https://pay.test/INV-1001"
	c.Invoice.DueDate = "2026-12-01"
	v = render.VarsAt(c, now)
	assert.Equal(t, "https://pay.test/INV-1001", v["invoice.portal_url"])
	assert.Equal(t, "0", v["invoice.days_overdue"], "not yet due is 0, never negative")
}

func TestFormatMoney(t *testing.T) {
	cases := []struct{ amount, cur, want string }{
		{"1250.00", "USD", "$1,250.00"},
		{"80", "EUR", "€80.00"},
		{"12.5", "gbp", "£12.50"},
		{"1234567.899", "USD", "$1,234,567.90"},
		{"999.995", "USD", "$1,000.00"},
		{"0.00", "USD", "$0.00"},
		{"-5.25", "USD", "-$5.25"},
		{"1250.00", "XYZ", "1,250.00 XYZ"},
		{"1250.00", "", "$1,250.00"},
		{"1500.40", "JPY", "¥1,500"},
		{"100.00", "CAD", "CA$100.00"},
		{"abc", "USD", "abc"},
		{"1.2.3", "USD", "1.2.3"},
		{".5", "USD", "$0.50"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, render.FormatMoney(tc.amount, tc.cur), tc.amount+" "+tc.cur)
	}
}

func TestDefaultsRender(t *testing.T) {
	c := fixture(t)
	for _, tt := range []string{automation.TriggerInvoiceOverdue, automation.TriggerMaintenanceDue, automation.TriggerAppointment, automation.TriggerStaleJob, automation.TriggerScheduled, ""} {
		c.Execution.TriggerType = tt
		for _, ch := range []automation.Channel{automation.ChannelEmail, automation.ChannelSMS} {
			for _, claimed := range []*automation.Claimed{c, {Execution: c.Execution, Organization: c.Organization}} {
				tmpl := render.DefaultFor(claimed, ch)
				v := render.VarsFor(claimed)
				if ch == automation.ChannelSMS {
					s, err := render.SMS(tmpl, v)
					require.NoError(t, err, tt)
					assert.False(t, strings.Contains(s, "STOP"), "the engine adds the opt-out instruction where due (WithSMSOptOut)")
					assert.Less(t, len(s), 320, "short: at most two segments with full data")
					continue
				}
				m, err := render.Email(tmpl, v)
				require.NoError(t, err, tt)
				assert.NotEmpty(t, m.Subject)
				assert.NotEmpty(t, m.Text)
				assert.NotEmpty(t, m.HTML)
				assert.NotContains(t, m.Text+m.HTML+m.Subject, "{{")
			}
		}
	}
	c.Execution.TriggerType = automation.TriggerAppointment
	m, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), render.VarsFor(c))
	require.NoError(t, err)
	assert.Equal(t, "Reminder: Furnace tune-up on Monday, November 30, 2026, 9:00 am EST", m.Subject)
	c.Execution.TriggerType = automation.TriggerInvoiceOverdue
	m, err = render.Email(render.DefaultFor(c, automation.ChannelEmail), render.VarsFor(c))
	require.NoError(t, err)
	assert.Contains(t, m.Text, "$80.50")
	assert.Contains(t, m.HTML, `<a href="https://acme.test/portal" style=`)

	for _, a := range automation.Actions {
		for _, ch := range []automation.Channel{automation.ChannelEmail, automation.ChannelSMS} {
			tm := render.Default(a, ch)
			require.NoError(t, render.Check(tm.Subject+tm.Text+tm.HTML))
			assert.NotEmpty(t, tm.Text)
		}
	}
	assert.Equal(t, render.Default(automation.ActionInvoiceReminder, "email"), render.DefaultFor(&automation.Claimed{Execution: automation.Execution{Action: automation.ActionInvoiceReminder}}, "email"))
}

func TestDefaultSteps(t *testing.T) {
	assert.Equal(t, []automation.Step{{Type: "send_email"}}, render.DefaultSteps(automation.ActionInvoiceReminder))
	assert.Equal(t, []automation.Step{{Type: "send_email"}, {Type: "send_sms"}}, render.DefaultSteps(automation.ActionSendReminder))
	assert.Equal(t, []automation.Step{{Type: "send_email"}}, render.DefaultSteps(automation.ActionRunWorkflow))
	assert.Nil(t, render.DefaultSteps("nope"))
}

func TestForStep(t *testing.T) {
	c := fixture(t)
	def := render.DefaultFor(c, automation.ChannelEmail)
	assert.Equal(t, def, render.ForStep(c, automation.Step{Type: automation.StepSendEmail}))
	got := render.ForStep(c, automation.Step{Type: automation.StepSendEmail, Body: "custom"})
	assert.Equal(t, render.Template{Subject: def.Subject, Text: "custom"}, got, "a custom body is not mixed with the default HTML")
	got = render.ForStep(c, automation.Step{Type: automation.StepSendEmail, Subject: "S", HTML: "<b>x</b>"})
	assert.Equal(t, render.Template{Subject: "S", HTML: "<b>x</b>"}, got)
	assert.Equal(t, render.DefaultFor(c, automation.ChannelSMS), render.ForStep(c, automation.Step{Type: automation.StepSendSMS}))
	assert.Equal(t, render.Template{Text: "hi"}, render.ForStep(c, automation.Step{Type: automation.StepSendSMS, Body: "hi"}))
}

func BenchmarkEmail(b *testing.B) {
	start := time.Now()
	c := &automation.Claimed{
		Execution:    automation.Execution{TriggerType: automation.TriggerInvoiceOverdue},
		Organization: automation.Organization{Name: "Acme", Timezone: "America/New_York"},
		Client:       &automation.Client{FirstName: "Ana"},
		Invoice:      &automation.Invoice{Number: "1", DueDate: "2026-01-01", Total: "1.00", Balance: "1.00", Currency: "USD"},
		Job:          &automation.Job{ScheduledStart: &start},
	}
	tmpl := render.DefaultFor(c, automation.ChannelEmail)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := render.Email(tmpl, render.VarsFor(c)); err != nil {
			b.Fatal(err)
		}
	}
}

// The default opt-out line: added to both parts once, kept out when the
// template shows the link itself, and never past a part's limit.
func TestWithOptOut(t *testing.T) {
	const u = "https://events.acme.test/unsubscribe?t=v1.a&b"
	m, err := render.WithOptOut(render.Message{Subject: "s", Text: "Hello\n", HTML: "<html><body><p>Hello</p></body></html>"}, u)
	require.NoError(t, err)
	assert.Equal(t, "Hello\n\nTo stop receiving these emails, open:\n"+u+"\n", m.Text)
	assert.Contains(t, m.HTML, `<a href="https://events.acme.test/unsubscribe?t=v1.a&amp;b">unsubscribe</a>.</p>`+"\n</body>")

	own := render.Message{Subject: "s", Text: "Bye: " + u, HTML: `<a href="https://events.acme.test/unsubscribe?t=v1.a&amp;b">x</a>`}
	m, err = render.WithOptOut(own, u)
	require.NoError(t, err)
	assert.Equal(t, own, m, "a template that shows the link keeps its own wording")

	m, err = render.WithOptOut(own, "")
	require.NoError(t, err)
	assert.Equal(t, own, m)

	_, err = render.WithOptOut(render.Message{Text: strings.Repeat("x", render.MaxTextBytes-10)}, u)
	assert.Equal(t, automation.CodeContentTooLarge, automation.ErrorCode(err))

	s, err := render.WithSMSOptOut("Acme: time for your service. ")
	require.NoError(t, err)
	assert.Equal(t, "Acme: time for your service. Reply STOP to opt out.", s)
	s, err = render.WithSMSOptOut("Acme: text STOP to end")
	require.NoError(t, err)
	assert.Equal(t, "Acme: text STOP to end", s)
}

// A template may show the unsubscribe link ({{unsubscribe_url}}).
func TestUnsubscribeVariable(t *testing.T) {
	assert.True(t, render.IsVariable(render.VarUnsubscribeURL))
	v := render.VarsFor(fixture(t))
	assert.Equal(t, "", v[render.VarUnsubscribeURL], "set by the engine only")
	v[render.VarUnsubscribeURL] = "https://events.acme.test/unsubscribe?t=x"
	h, err := render.HTML(`<a href="{{unsubscribe_url}}">unsubscribe</a>`, v)
	require.NoError(t, err)
	assert.Equal(t, `<a href="https://events.acme.test/unsubscribe?t=x">unsubscribe</a>`, h)
}
