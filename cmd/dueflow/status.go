package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// statusSections are the parts of `dueflow status`, in order. A section
// whose relation is absent (need) is left out with a note, so status works
// on a database without pg_net's queue, for instance.
var statusSections = []struct {
	title string
	need  string // relation that must exist, "" = always
	sql   string
	note  string // query of one text printed under the table when it returns a row, "" = none
}{
	{
		title: "Cron jobs (automation_cron_status)",
		sql: `
select job_name, schedule, is_active, date_trunc('second', last_run) as last_run,
       last_run_status, total_runs, successful_runs, failed_runs, success_rate
  from automation_cron_status
 order by job_name`,
		// pg_cron keeps a job's active flag when the migrations schedule it again
		note: `
select 'note: paused (is_active false): ' || string_agg(job_name, ', ' order by job_name)
       || E'\nnote: a pause survives re-running the migrations (pg_cron keeps is_active); resume a job with'
       || E'\nnote:   select cron.alter_job(jobid, active := true) from cron.job where jobname = ''<job_name>'';'
  from automation_cron_status
 where not is_active and schedule is not null
having count(*) > 0`,
	},
	{
		title: "Queue health (automation_queue_health)",
		sql:   `select * from automation_queue_health`,
	},
	{
		title: "System health (automation_system_health)",
		sql:   `select * from automation_system_health`,
	},
	{
		title: "Check problems (automation_check_problems: what the checks skip)",
		need:  "public.automation_check_problems",
		sql: `
select check_name, trigger_type, organization_id, workflow_id, code, count,
       date_trunc('second', first_seen_at) as first_seen, date_trunc('second', last_seen_at) as last_seen, message
  from automation_check_problems
 order by check_name, trigger_type, code, organization_id nulls first, workflow_id nulls first`,
	},
	{
		title: "Delivery health per organisation, last 30 days (automation_delivery_health)",
		need:  "public.automation_delivery_health",
		sql: `
select organization_id, sent_30d, delivered_30d, bounced_30d, complained_30d,
       coalesce(bounce_rate::text, '-') as bounce_rate_pct, coalesce(complaint_rate::text, '-') as complaint_rate_pct,
       suppressed, opted_out
  from automation_delivery_health
 order by bounce_rate desc nulls last, complaint_rate desc nulls last, organization_id`,
		note: `
select 'note: bounce rate over 2 % or complaint rate over 0.1 %: ' || count(*) || ' organisation(s); mailbox providers throttle or block such senders'
  from automation_delivery_health
 where bounce_rate > 2 or complaint_rate > 0.1
having count(*) > 0`,
	},
	{
		title: "Settings (automation_settings)",
		need:  "public.automation_settings",
		sql:   `select workflow_validation from automation_settings`,
		note: `
select 'note: mark: a workflow dueflow cannot run is stored with its problems and skipped (Check problems: invalid_config)'
  from automation_settings
 where workflow_validation = 'mark'`,
	},
	{
		title: "Executions by action (pending now; finished in the last 24 hours)",
		sql: `
select a.action,
       count(l.id) filter (where l.status = 'pending')                                   as pending,
       count(l.id) filter (where l.status = 'pending' and l.next_attempt_at <= now())    as due,
       count(l.id) filter (where l.status = 'pending' and l.next_attempt_at <= now()
                             and l.dispatched_at is null)                                as undispatched,
       count(l.id) filter (where l.status = 'running')                                   as running,
       count(l.id) filter (where l.status = 'running' and l.lease_expires_at < now())    as expired_leases,
       count(l.id) filter (where l.status = 'completed' and l.updated_at > now() - interval '24 hours') as completed_24h,
       count(l.id) filter (where l.status = 'skipped'   and l.updated_at > now() - interval '24 hours') as skipped_24h,
       count(l.id) filter (where l.status = 'failed'    and l.updated_at > now() - interval '24 hours') as failed_24h,
       coalesce(date_trunc('second', max(now() - l.next_attempt_at)
                filter (where l.status = 'pending' and l.next_attempt_at <= now()))::text, '-') as oldest_due
  from automation_actions a
  left join automation_execution_logs l on l.action = a.action
 group by a.action
 order by a.action`,
	},
	{
		title: "Endpoints (automation_endpoints)",
		sql:   `select action, url, enabled, batch_size, timeout_ms from automation_endpoints order by action`,
	},
	{
		title: "pg_net (requests queued; responses in the last hour)",
		need:  "net.http_request_queue",
		sql: `
select (select count(*) from net.http_request_queue)                                  as queued,
       count(r.id)                                                                     as responses_1h,
       count(r.id) filter (where r.status_code between 200 and 299)                    as ok_2xx,
       count(r.id) filter (where r.status_code >= 300)                                 as http_errors,
       count(r.id) filter (where r.timed_out)                                          as timed_out,
       count(r.id) filter (where r.status_code is null and not coalesce(r.timed_out, false)) as transport_errors
  from net._http_response r
 where r.created > now() - interval '1 hour'`,
	},
}

// writeStatus prints every status section as an aligned table.
func writeStatus(ctx context.Context, conn *pgx.Conn, w io.Writer) error {
	for i, s := range statusSections {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "== %s\n", s.title)
		if s.need != "" {
			var ok bool
			if err := conn.QueryRow(ctx, `select to_regclass($1) is not null`, s.need).Scan(&ok); err != nil {
				return fmt.Errorf("status: look up %s: %w", s.need, err)
			}
			if !ok {
				fmt.Fprintf(w, "(%s does not exist in this database)\n", s.need)
				continue
			}
		}
		t, err := queryTable(ctx, conn, s.sql)
		if err != nil {
			return fmt.Errorf("status: %s: %w", s.title, err)
		}
		if err := t.write(w); err != nil {
			return err
		}
		if s.note == "" {
			continue
		}
		var note string
		err = conn.QueryRow(ctx, s.note).Scan(&note)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("status: %s: note: %w", s.title, err)
		default:
			fmt.Fprintln(w, note)
		}
	}
	return nil
}
