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
// which both the text and the HTML part are built, and why the client
// receives it, for the footer) and an SMS. Its templates are built once.
type flavour struct {
	subject    string
	paragraphs []string
	why        string
	sms        string

	email, text Template // built by build
}

var (
	invoiceFlavour = build(flavour{
		subject: "Reminder: invoice {{invoice.number}} from {{organization.name}} is past due",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a friendly reminder that invoice {{invoice.number}} for {{invoice.total}} was due on {{invoice.due_date}}. The outstanding balance is {{invoice.balance}}.",
			"You can view and pay it here:\n{{invoice.pay_url}}",
			"If you have already paid, thank you, and please disregard this message.",
			"{{organization.name}}\n{{organization.phone}}",
		},
		why: "You are receiving this email because {{organization.name}} sent you invoice {{invoice.number}}.",
		sms: "{{organization.name}}: invoice {{invoice.number}} ({{invoice.balance}}) was due {{invoice.due_date}}. Pay: {{invoice.pay_url}}",
	})
	maintenanceFlavour = build(flavour{
		subject: "Time to schedule your next service with {{organization.name}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"Our records show your last service, {{job.title}}, was completed on {{job.completed_at}}. Regular maintenance keeps everything running well, so it's time to book your next visit.",
			"Schedule online:\n{{organization.portal_url}}",
			"Or call us at {{organization.phone}}.",
			"{{organization.name}}",
		},
		why: "You are receiving this email because you are a client of {{organization.name}}.",
		sms: "{{organization.name}}: it's time for your next service. Book: {{organization.portal_url}} or call {{organization.phone}}",
	})
	appointmentFlavour = build(flavour{
		subject: "Reminder: {{job.title}} on {{job.scheduled_start}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a reminder of your appointment with {{organization.name}}: {{job.title}}, {{job.scheduled_start}}, at {{job.address}}.",
			"Need to reschedule? Call us at {{organization.phone}} or visit:\n{{organization.portal_url}}",
			"{{organization.name}}",
		},
		why: "You are receiving this email because you have an appointment with {{organization.name}}.",
		sms: "{{organization.name}}: reminder of {{job.title}} {{job.scheduled_start}}. To reschedule call {{organization.phone}}",
	})
	staleJobFlavour = build(flavour{
		subject: "An update on {{job.title}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"We wanted to follow up on {{job.title}}. If you have any questions or would like to move forward, just reply to this email or call us at {{organization.phone}}.",
			"{{organization.portal_url}}",
			"{{organization.name}}",
		},
		why: "You are receiving this email because you are a client of {{organization.name}}.",
		sms: "{{organization.name}}: following up on {{job.title}}. Questions? Call {{organization.phone}}",
	})
	reminderFlavour = build(flavour{
		subject: "A reminder from {{organization.name}}",
		paragraphs: []string{
			"Hi {{client.first_name}},",
			"This is a reminder from {{organization.name}}. If you have any questions, reply to this email or call us at {{organization.phone}}.",
			"{{organization.portal_url}}",
			"{{organization.name}}",
		},
		why: "You are receiving this email because you are a client of {{organization.name}}.",
		sms: "{{organization.name}}: a reminder from us. Questions? Call {{organization.phone}}",
	})
	// scheduledFlavour is the scheduled summary: the organisation's figures
	// at claim time (automation.OrgFigures).
	scheduledFlavour = build(flavour{
		subject: "Your summary from {{organization.name}}",
		paragraphs: []string{
			"Hello,",
			"Here is where {{organization.name}} stands today:",
			"Open invoices: {{summary.open_invoices}} ({{summary.overdue_invoices}} overdue)\nOutstanding balance: {{summary.open_balance}}\nReminders sent yesterday: {{summary.reminders_sent_yesterday}}",
			"{{organization.portal_url}}",
			"{{organization.name}}\n{{organization.phone}}",
		},
		why: "You are receiving this scheduled summary because it is set up for {{organization.name}}.",
		sms: "{{organization.name}}: {{summary.open_invoices}} open invoices ({{summary.overdue_invoices}} overdue), {{summary.open_balance}} outstanding; {{summary.reminders_sent_yesterday}} reminders sent yesterday.",
	})
)

// Styles of the default HTML document: inline (mail clients drop <style>
// and external sheets), tables for the layout (Outlook's renderer).
const (
	fontStyle   = "font-family:Arial,Helvetica,sans-serif;"
	bodyStyle   = fontStyle + "font-size:15px;line-height:1.5;color:#222222;"
	footerStyle = fontStyle + "font-size:12px;line-height:1.5;color:#6b7280;"
	pStyle      = "margin:0 0 16px 0;"
	linkStyle   = "color:#1d4ed8;text-decoration:underline;"
)

// build makes the email's text and HTML templates of a flavour.
func build(f flavour) flavour {
	var hb strings.Builder
	hb.WriteString("<!DOCTYPE html>\n")
	// The template texts are English (only values follow the locale).
	hb.WriteString(`<html lang="en">` + "\n<head>\n" +
		`<meta charset="utf-8">` + "\n" +
		`<meta name="viewport" content="width=device-width, initial-scale=1">` + "\n" +
		"<title>" + html.EscapeString(f.subject) + "</title>\n</head>\n")
	hb.WriteString(`<body style="margin:0;padding:0;background-color:#f4f4f5;">` + "\n")
	hb.WriteString(`<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f4f5;"><tr><td align="center" style="padding:24px 12px;">` + "\n")
	hb.WriteString(`<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;background-color:#ffffff;border:1px solid #e4e4e7;">` + "\n")
	hb.WriteString(`<tr><td style="padding:20px 28px;border-bottom:1px solid #e4e4e7;` + fontStyle + `font-size:18px;font-weight:bold;color:#111827;">{{organization.name}}</td></tr>` + "\n")
	hb.WriteString(`<tr><td style="padding:24px 28px 8px 28px;` + bodyStyle + `">` + "\n")
	for _, p := range f.paragraphs {
		hb.WriteString(`<p style="` + pStyle + `">` + htmlLines(p) + "</p>\n")
	}
	hb.WriteString("</td></tr>\n")
	hb.WriteString(`<tr><td style="padding:16px 28px 20px 28px;border-top:1px solid #e4e4e7;` + footerStyle + `">` + "\n")
	hb.WriteString(`<p style="margin:0;font-weight:bold;">{{organization.name}}</p>` + "\n")
	hb.WriteString(`<p style="margin:0 0 8px 0;">{{organization.address}}</p>` + "\n")
	hb.WriteString(`<p style="margin:0 0 8px 0;">` + html.EscapeString(f.why) + "</p>\n")
	hb.WriteString(`<p style="margin:0;">{{footer.unsubscribe_text}}<a href="{{unsubscribe_url}}" style="color:#6b7280;text-decoration:underline;">{{footer.unsubscribe_label}}</a></p>` + "\n")
	hb.WriteString("</td></tr>\n</table>\n</td></tr></table>\n</body>\n</html>\n")

	text := strings.Join(f.paragraphs, "\n\n") + "\n\n--\n{{organization.name}}\n{{organization.address}}\n" +
		f.why + "\n{{footer.unsubscribe_text}}{{unsubscribe_url}}\n"
	f.email = Template{Subject: f.subject, Text: text, HTML: hb.String()}
	f.text = Template{Text: f.sms}
	return f
}

// htmlLines writes a paragraph's lines as HTML: the template text is ours,
// escaped as markup; a line that is a link placeholder becomes a link.
func htmlLines(p string) string {
	lines := strings.Split(p, "\n")
	for i, l := range lines {
		esc := html.EscapeString(l)
		if strings.HasPrefix(l, "{{") && strings.HasSuffix(l, "_url}}") {
			esc = `<a href="` + esc + `" style="` + linkStyle + `">` + esc + `</a>`
		}
		lines[i] = esc
	}
	return strings.Join(lines, "<br>\n")
}

func (f flavour) template(channel automation.Channel) Template {
	if channel == automation.ChannelSMS {
		return f.text
	}
	return f.email
}

// Default returns the default template of an action for a channel
// (automation.ChannelEmail or ChannelSMS): invoice-reminder an overdue
// invoice reminder, send-reminder a generic reminder, run-workflow a
// scheduled message. Unknown actions get the generic reminder.
func Default(action string, channel automation.Channel) Template {
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
func DefaultFor(c *automation.Claimed, channel automation.Channel) Template {
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
