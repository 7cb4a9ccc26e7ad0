package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/jackc/pgx/v5"
)

// demoSummary counts the demo organisations' executions and deliveries.
type demoSummary struct {
	Rows []summaryRow
	// Totals over Rows.
	Executions, Completed, Skipped, Failed, Cancelled, Pending, Running int
	Emails, SMS                                                         int // deliveries recorded sent
}

// summaryRow is one workflow's line in the demo summary.
type summaryRow struct {
	Org, Workflow, Trigger                                    string
	Executions, Completed, Skipped, Failed, Open, Emails, SMS int
}

// Open is the number of executions not in a final status.
func (s demoSummary) Open() int { return s.Pending + s.Running }

// Line is the demo's last line: "demo: N executions: C completed, S skipped,
// F failed; E emails, M sms sent".
func (s demoSummary) Line() string {
	return fmt.Sprintf("demo: %d executions: %d completed, %d skipped, %d failed; %d emails, %d sms sent",
		s.Executions, s.Completed, s.Skipped, s.Failed, s.Emails, s.SMS)
}

func readSummary(ctx context.Context, conn *pgx.Conn) (demoSummary, error) {
	rows, err := conn.Query(ctx, `
select o.name, w.name, w.trigger_type,
       count(l.id),
       count(l.id) filter (where l.status = 'completed'),
       count(l.id) filter (where l.status = 'skipped'),
       count(l.id) filter (where l.status = 'failed'),
       count(l.id) filter (where l.status = 'cancelled'),
       count(l.id) filter (where l.status = 'pending'),
       count(l.id) filter (where l.status = 'running'),
       coalesce(sum(d.emails), 0), coalesce(sum(d.sms), 0)
  from automation_workflows w
  join organizations o on o.id = w.organization_id
  left join automation_execution_logs l on l.workflow_id = w.id
  left join lateral (
        select count(*) filter (where x.channel = 'email') as emails,
               count(*) filter (where x.channel = 'sms')   as sms
          from automation_deliveries x
         where x.execution_id = l.id and x.status = 'sent') d on true
 where w.organization_id = any($1)
 group by o.name, w.name, w.trigger_type, w.id
 order by o.name, w.trigger_type, w.name`, demodata.OrgIDs)
	if err != nil {
		return demoSummary{}, fmt.Errorf("read the demo summary: %w", err)
	}
	defer rows.Close()
	var s demoSummary
	for rows.Next() {
		var r summaryRow
		var cancelled, pending, running int
		if err := rows.Scan(&r.Org, &r.Workflow, &r.Trigger, &r.Executions, &r.Completed, &r.Skipped, &r.Failed,
			&cancelled, &pending, &running, &r.Emails, &r.SMS); err != nil {
			return demoSummary{}, fmt.Errorf("read the demo summary: %w", err)
		}
		r.Open = pending + running
		s.Rows = append(s.Rows, r)
		s.Executions += r.Executions
		s.Completed += r.Completed
		s.Skipped += r.Skipped
		s.Failed += r.Failed
		s.Cancelled += cancelled
		s.Pending += pending
		s.Running += running
		s.Emails += r.Emails
		s.SMS += r.SMS
	}
	if err := rows.Err(); err != nil {
		return demoSummary{}, fmt.Errorf("read the demo summary: %w", err)
	}
	return s, nil
}

// writeTable prints one line per demo workflow.
func (s demoSummary) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORGANISATION\tWORKFLOW\tTRIGGER\tEXECUTIONS\tCOMPLETED\tSKIPPED\tFAILED\tOPEN\tEMAILS\tSMS")
	for _, r := range s.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Org, r.Workflow, r.Trigger,
			r.Executions, r.Completed, r.Skipped, r.Failed, r.Open, r.Emails, r.SMS)
	}
	return tw.Flush()
}

// optOutSummary counts what the providers' events left for the demo
// organisations: clients unsubscribed by a one-click link, numbers that
// replied STOP, addresses suppressed by a hard bounce.
type optOutSummary struct{ Unsubscribes, Stops, Bounces int }

// Line is "opt-outs: U unsubscribe, S STOP, B bounce suppressed".
func (o optOutSummary) Line() string {
	return fmt.Sprintf("opt-outs: %d unsubscribe, %d STOP, %d bounce suppressed", o.Unsubscribes, o.Stops, o.Bounces)
}

func readOptOuts(ctx context.Context, conn *pgx.Conn) (optOutSummary, error) {
	var o optOutSummary
	err := conn.QueryRow(ctx, `
select (select count(*) from automation_opt_outs where organization_id = any($1) and source = 'link'),
       (select count(distinct address) from automation_suppressions
         where organization_id = any($1) and channel = 'sms' and reason = 'opted_out'),
       (select count(distinct (channel, address)) from automation_suppressions
         where organization_id = any($1) and reason = 'bounced')`, demodata.OrgIDs).Scan(&o.Unsubscribes, &o.Stops, &o.Bounces)
	if err != nil {
		return o, fmt.Errorf("read the demo's opt-outs: %w", err)
	}
	return o, nil
}
