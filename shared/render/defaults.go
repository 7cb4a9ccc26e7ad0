package render

import (
	"html"
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
)

// SMSOptOutHint ends a non-transactional SMS whose number has not been told
// how to opt out in the last 30 days (WithSMSOptOut; the engine decides).
const SMSOptOutHint = "Reply STOP to opt out."

// flavour is one default message: an email (subject + paragraphs, from
// which both the text and the HTML part are built) and an SMS.
type flavour struct {
	subject    string
	paragraphs []string
	sms        string
}

var (
	invoiceFlavour = flavour{
		subject: "Reminder: invoice {{invoice.number}} from {{organization.name}} is past due",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a friendly reminder that invoice {{invoice.number}} for {{invoice.total}} was due on {{invoice.due_date}}. The outstanding balance is {{invoice.balance}}.",
			"You can view and pay it here:\n{{invoice.portal_url}}",
			"If you have already paid, thank you, and please disregard this message.",
			"{{organization.name}}\n{{organization.phone}}",
		},
		sms: "{{organization.name}}: invoice {{invoice.number}} ({{invoice.balance}}) was due {{invoice.due_date}}. Pay: {{invoice.portal_url}}",
	}
	maintenanceFlavour = flavour{
		subject: "Time to schedule your next service with {{organization.name}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"Our records show your last service, {{job.title}}, was completed on {{job.completed_at}}. Regular maintenance keeps everything running well, so it's time to book your next visit.",
			"Schedule online:\n{{organization.portal_url}}",
			"Or call us at {{organization.phone}}.",
			"{{organization.name}}",
		},
		sms: "{{organization.name}}: it's time for your next service. Book: {{organization.portal_url}} or call {{organization.phone}}",
	}
	appointmentFlavour = flavour{
		subject: "Reminder: {{job.title}} on {{job.scheduled_start}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a reminder of your appointment with {{organization.name}}: {{job.title}}, {{job.scheduled_start}}, at {{job.address}}.",
			"Need to reschedule? Call us at {{organization.phone}} or visit:\n{{organization.portal_url}}",
			"{{organization.name}}",
		},
		sms: "{{organization.name}}: reminder of {{job.title}} {{job.scheduled_start}}. To reschedule call {{organization.phone}}",
	}
	staleJobFlavour = flavour{
		subject: "An update on {{job.title}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"We wanted to follow up on {{job.title}}. If you have any questions or would like to move forward, just reply to this email or call us at {{organization.phone}}.",
			"{{organization.portal_url}}",
			"{{organization.name}}",
		},
		sms: "{{organization.name}}: following up on {{job.title}}. Questions? Call {{organization.phone}}",
	}
	reminderFlavour = flavour{
		subject: "A reminder from {{organization.name}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a reminder from {{organization.name}}. If you have any questions, reply to this email or call us at {{organization.phone}}.",
			"{{organization.portal_url}}",
			"{{organization.name}}",
		},
		sms: "{{organization.name}}: a reminder from us. Questions? Call {{organization.phone}}",
	}
	scheduledFlavour = flavour{
		subject: "An update from {{organization.name}}",
		paragraphs: []string{
			"Hello,",
			"This is a scheduled message from {{organization.name}}.",
			"{{organization.portal_url}}",
			"{{organization.name}}\n{{organization.phone}}",
		},
		sms: "{{organization.name}}: scheduled update. {{organization.portal_url}}",
	}
)

// builtFlavours are the templates of this package's flavours, built once
// (an email's HTML is assembled from its paragraphs).
var builtFlavours = func() map[*flavour]map[string]Template {
	m := map[*flavour]map[string]Template{}
	for _, f := range []*flavour{&invoiceFlavour, &maintenanceFlavour, &appointmentFlavour, &staleJobFlavour,
		&reminderFlavour, &scheduledFlavour} {
		m[f] = map[string]Template{
			automation.ChannelEmail: f.build(automation.ChannelEmail),
			automation.ChannelSMS:   f.build(automation.ChannelSMS),
		}
	}
	return m
}()

// template is the flavour's template for a channel (email for any channel
// but SMS): built once for the package's flavours.
func (f *flavour) template(channel string) Template {
	if t, ok := builtFlavours[f][channel]; ok {
		return t
	}
	return f.build(channel)
}

// build assembles the flavour's template for a channel.
func (f *flavour) build(channel string) Template {
	if channel == automation.ChannelSMS {
		return Template{Text: f.sms}
	}
	var hb strings.Builder
	hb.WriteString(`<div style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#222">` + "\n")
	for _, p := range f.paragraphs {
		lines := strings.Split(p, "\n")
		for i, l := range lines {
			// The template text is ours; escape it as markup, keep the
			// placeholders (they contain no special characters).
			esc := html.EscapeString(l)
			if strings.HasPrefix(l, "{{") && strings.HasSuffix(l, "_url}}") {
				esc = `<a href="` + esc + `">` + esc + `</a>`
			}
			lines[i] = esc
		}
		hb.WriteString("<p>" + strings.Join(lines, "<br>\n") + "</p>\n")
	}
	hb.WriteString("</div>")
	return Template{
		Subject: f.subject,
		Text:    strings.Join(f.paragraphs, "\n\n") + "\n",
		HTML:    hb.String(),
	}
}

// Default returns the default template of an action for a channel
// (automation.ChannelEmail or ChannelSMS): invoice-reminder an overdue
// invoice reminder, send-reminder a generic reminder, run-workflow a
// scheduled message. Unknown actions get the generic reminder.
func Default(action, channel string) Template {
	switch action {
	case automation.ActionInvoiceReminder:
		return invoiceFlavour.template(channel)
	case automation.ActionRunWorkflow:
		return scheduledFlavour.template(channel)
	default:
		return reminderFlavour.template(channel)
	}
}

// DefaultFor returns the default template of one claimed execution, chosen
// by its trigger type (maintenance, appointment, stale job, overdue invoice,
// scheduled), falling back to Default of its action.
func DefaultFor(c *automation.Claimed, channel string) Template {
	if c == nil {
		return reminderFlavour.template(channel)
	}
	tt := c.Execution.TriggerType
	if tt == "" {
		tt = c.Workflow.TriggerType
	}
	switch tt {
	case automation.TriggerInvoiceOverdue:
		return invoiceFlavour.template(channel)
	case automation.TriggerMaintenanceDue:
		return maintenanceFlavour.template(channel)
	case automation.TriggerAppointment:
		return appointmentFlavour.template(channel)
	case automation.TriggerStaleJob:
		return staleJobFlavour.template(channel)
	case automation.TriggerScheduled:
		return scheduledFlavour.template(channel)
	}
	return Default(c.Execution.Action, channel)
}

// DefaultSteps returns the steps used when a workflow has none:
// invoice-reminder and run-workflow send an email, send-reminder an email
// and an SMS. Unknown actions have none.
func DefaultSteps(action string) []automation.Step {
	switch action {
	case automation.ActionInvoiceReminder, automation.ActionRunWorkflow:
		return []automation.Step{{Type: automation.StepSendEmail}}
	case automation.ActionSendReminder:
		return []automation.Step{{Type: automation.StepSendEmail}, {Type: automation.StepSendSMS}}
	}
	return nil
}
