// Package riverbench is the side-by-side benchmark of dueflow against River
// (github.com/riverqueue/river, a Postgres job queue for Go): both drain the
// same N invoice reminder emails, rendered by dueflow's shared/render and
// sent by dueflow's SMTP sender to the same SMTP sink, on the same Postgres
// build. It is its own Go module, so that River stays out of dueflow's
// go.mod; it imports dueflow's internal/ packages, which Go allows because
// its module path lies under github.com/dueflow/dueflow/.
//
//	make bench-river N=10000 ROUNDS=3
package riverbench

import (
	"context"
	"fmt"
	"net/mail"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/text"
)

// ReminderArgs is one River job: the invoice reminder of one execution of
// dueflow's database (its organisation, client, invoice and workflow step
// are read by the worker, as dueflow's claim reads them).
type ReminderArgs struct {
	ExecutionID uuid.UUID `json:"execution_id"`
}

// Kind is the River job kind.
func (ReminderArgs) Kind() string { return "invoice_reminder" }

// ReminderWorker sends one invoice reminder email: one SELECT through the
// source views, rendered with the workflow's step as dueflow's engine
// renders it, one send through sender. River itself records the job's
// completion (at least once: no delivery ledger).
type ReminderWorker struct {
	river.WorkerDefaults[ReminderArgs]
	DB            *pgxpool.Pool
	Sender        notify.Sender
	EmailFrom     string // EMAIL_FROM, when the organisation has no sender
	EmailFromName string // EMAIL_FROM_NAME
}

// Work loads, renders and sends the reminder of job.Args.ExecutionID.
func (w *ReminderWorker) Work(ctx context.Context, job *river.Job[ReminderArgs]) error {
	c, step, err := loadReminder(ctx, w.DB, job.Args.ExecutionID)
	if err != nil {
		return err
	}
	msg, err := w.message(c, step)
	if err != nil {
		return err
	}
	if _, err := w.Sender.Send(ctx, msg); err != nil {
		return fmt.Errorf("send reminder %s: %w", job.Args.ExecutionID, err)
	}
	return nil
}

// loadReminder reads what dueflow's claim document holds for an invoice
// reminder: the execution's organisation, client and invoice (source
// views) and its workflow's first step.
func loadReminder(ctx context.Context, db *pgxpool.Pool, id uuid.UUID) (*automation.Claimed, automation.Step, error) {
	c := &automation.Claimed{Client: &automation.Client{}, Invoice: &automation.Invoice{}}
	var step automation.Step
	o, cl, inv := &c.Organization, c.Client, c.Invoice
	err := db.QueryRow(ctx, `
		select e.id, e.workflow_id, e.organization_id,
		       o.name, coalesce(o.timezone, ''), coalesce(o.country_code, ''), coalesce(o.sender_name, ''),
		       coalesce(o.sender_email, ''), coalesce(o.reply_to_email, ''), coalesce(o.phone, ''), coalesce(o.portal_url, ''),
		       cl.id, coalesce(cl.first_name, ''), coalesce(cl.last_name, ''), coalesce(cl.email, ''), cl.email_opt_out,
		       i.id, i.number, i.status, i.due_date::text, i.total::text, i.balance::text, coalesce(i.currency, ''),
		       coalesce(i.portal_url, ''), w.steps -> 0
		from automation_execution_logs e
		join automation_src_organizations o on o.id = e.organization_id
		join automation_src_clients cl on cl.id = e.client_id
		join automation_src_invoices i on i.id = e.subject_id
		join automation_workflows w on w.id = e.workflow_id
		where e.id = $1`, id).Scan(
		&c.Execution.ID, &c.Execution.WorkflowID, &c.Execution.OrganizationID,
		&o.Name, &o.Timezone, &o.CountryCode, &o.SenderName, &o.SenderEmail, &o.ReplyToEmail, &o.Phone, &o.PortalURL,
		&cl.ID, &cl.FirstName, &cl.LastName, &cl.Email, &cl.EmailOptOut,
		&inv.ID, &inv.Number, &inv.Status, &inv.DueDate, &inv.Total, &inv.Balance, &inv.Currency, &inv.PortalURL, &step)
	if err != nil {
		return nil, step, fmt.Errorf("load reminder %s: %w", id, err)
	}
	c.Organization.ID = c.Execution.OrganizationID
	return c, step, nil
}

// message is the email dueflow's engine sends for this step (render.ForStep,
// render.VarsFor, render.Email; sender, reply-to, idempotency key and tags
// as the engine sets them).
func (w *ReminderWorker) message(c *automation.Claimed, step automation.Step) (notify.Message, error) {
	if c.Client.EmailOptOut {
		return notify.Message{}, river.JobCancel(fmt.Errorf("client opted out"))
	}
	addr, err := mail.ParseAddress(c.Client.Email)
	if err != nil {
		return notify.Message{}, river.JobCancel(fmt.Errorf("invalid recipient: %w", err))
	}
	m, err := render.Email(render.ForStep(c, step), render.VarsFor(c))
	if err != nil {
		return notify.Message{}, river.JobCancel(fmt.Errorf("render: %w", err))
	}
	ex, org := c.Execution, c.Organization
	return notify.Message{
		Channel:        automation.ChannelEmail,
		To:             addr.Address,
		Subject:        m.Subject,
		Text:           m.Text,
		HTML:           m.HTML,
		From:           text.FirstNonEmpty(org.SenderEmail, w.EmailFrom),
		FromName:       text.FirstNonEmpty(org.SenderName, org.Name, w.EmailFromName),
		ReplyTo:        text.FirstNonEmpty(org.ReplyToEmail, org.SenderEmail),
		IdempotencyKey: automation.IdempotencyKey(ex.ID, 0, automation.ChannelEmail),
	}, nil
}
