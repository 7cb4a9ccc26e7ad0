package opsdb

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Workflow is one workflow with its counters and its last check problems.
type Workflow struct {
	ID, OrgID                              uuid.UUID
	Org, Name, TriggerType                 string
	Active                                 bool
	TriggerConfig, Steps                   string // JSON, pretty-printed
	Problems                               []string
	Executions, Succeeded, Failed, Skipped int   // the workflow's counters
	Pending, Running                       Count // capped and within a time budget
	LastTriggeredAt                        *time.Time
	CheckErrors                            []CheckProblem
}

// CheckProblem is one row of automation_check_problems: what a check
// skipped and why.
type CheckProblem struct {
	Check, Code, Message string
	Count                int
	LastSeen             time.Time
}

// Workflows lists every workflow (organisation, name), its counters, open
// executions and check problems. The counters (executions, completed,
// failed, skipped) are the workflow row's own; its pending and running
// executions are counted, each capped at lim.Cap, all within lim.Budget
// ("?" past it; zero limits: CountCap, CountBudget).
func Workflows(ctx context.Context, db DB, lim CountLimits) ([]Workflow, error) {
	rows, err := db.Query(ctx, `
select w.id, w.organization_id, coalesce(o.name, ''), coalesce(w.name, ''), coalesce(w.trigger_type, ''),
       coalesce(w.is_active, false), jsonb_pretty(coalesce(w.trigger_config, '{}')), jsonb_pretty(coalesce(w.steps, '[]')),
       coalesce(w.problems, '{}'), coalesce(w.execution_count, 0), coalesce(w.success_count, 0), w.failure_count, w.skipped_count,
       w.last_triggered_at
  from public.automation_workflows w
  left join public.automation_src_organizations o on o.id = w.organization_id
 order by o.name nulls last, w.name, w.id`)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Workflow, error) {
		var w Workflow
		err := r.Scan(&w.ID, &w.OrgID, &w.Org, &w.Name, &w.TriggerType, &w.Active, &w.TriggerConfig, &w.Steps,
			&w.Problems, &w.Executions, &w.Succeeded, &w.Failed, &w.Skipped, &w.LastTriggeredAt)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	byID := map[uuid.UUID]int{}
	for i, w := range out {
		byID[w.ID] = i
	}
	if err := openCounts(ctx, db, out, byID, lim.withDefaults()); err != nil {
		return nil, err
	}
	rows, err = db.Query(ctx, `
select workflow_id, check_name, code, coalesce(message, ''), count, last_seen_at
  from public.automation_check_problems where workflow_id is not null
 order by last_seen_at desc`)
	if err != nil {
		return nil, fmt.Errorf("list check problems: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var p CheckProblem
		if err := rows.Scan(&id, &p.Check, &p.Code, &p.Message, &p.Count, &p.LastSeen); err != nil {
			return nil, fmt.Errorf("list check problems: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].CheckErrors = append(out[i].CheckErrors, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list check problems: %w", err)
	}
	return out, nil
}

// openCounts sets each workflow's pending and running executions: pending
// ones per workflow on automation_execution_logs_pending_subject_idx, at
// most lim.Cap+1 rows each; running ones (few: leases of claimed batches)
// in one pass over automation_execution_logs_lease_idx, grouped by
// workflow. Past lim.Budget every count is "?".
func openCounts(ctx context.Context, db DB, ws []Workflow, byID map[uuid.UUID]int, lim CountLimits) error {
	type open struct {
		id               uuid.UUID
		pending, running int
	}
	var got []open
	ok, err := withinBudget(ctx, db, lim.Budget, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
select w.id,
       (select count(*) from (select 1 from public.automation_execution_logs e
                               where e.workflow_id = w.id and e.status = 'pending' limit $1) x),
       coalesce(r.n, 0)
  from public.automation_workflows w
  left join (select e.workflow_id, count(*) as n from public.automation_execution_logs e
              where e.status = 'running' group by e.workflow_id) r on r.workflow_id = w.id`, lim.Cap+1)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (open, error) {
			var o open
			return o, r.Scan(&o.id, &o.pending, &o.running)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("count open executions per workflow: %w", err)
	}
	for i := range ws {
		ws[i].Pending = Count{State: "pending", Unknown: !ok}
		ws[i].Running = Count{State: "running", Unknown: !ok}
	}
	for _, o := range got {
		if i, found := byID[o.id]; found && ok {
			ws[i].Pending = capped("pending", o.pending, lim.Cap)
			ws[i].Running = capped("running", o.running, lim.Cap)
		}
	}
	return nil
}

// CronJob is one pg_cron job with its recent runs.
type CronJob struct {
	ID                      int64
	Name, Schedule, Command string
	Active                  bool
	Next                    *time.Time // next run by the schedule (nil: inactive or not understood)
	Runs                    []CronRun
}

// CronRun is one row of cron.job_run_details.
type CronRun struct {
	ID                    int64
	Status, ReturnMessage string
	Start                 time.Time
	Duration              *time.Duration
}

// CronJobs lists every pg_cron job of this database with its last runs
// (at most runs each); nil without pg_cron.
func CronJobs(ctx context.Context, db DB, runs int, now time.Time) ([]CronJob, error) {
	var ok bool
	if err := db.QueryRow(ctx, `select to_regclass('cron.job') is not null`).Scan(&ok); err != nil {
		return nil, fmt.Errorf("look up pg_cron: %w", err)
	}
	if !ok {
		return nil, nil
	}
	rows, err := db.Query(ctx, `
select j.jobid, coalesce(j.jobname, ''), j.schedule, j.command, j.active, r.runid, r.status, r.return_message, r.start_time, r.end_time
  from cron.job j
  left join lateral (
        select d.runid, coalesce(d.status, '') as status, coalesce(d.return_message, '') as return_message,
               d.start_time, d.end_time
          from cron.job_run_details d where d.jobid = j.jobid
         order by d.runid desc limit $1) r on true
 where j.database = current_database()
 order by j.jobname, j.jobid, r.runid desc`, runs)
	if err != nil {
		return nil, fmt.Errorf("list cron jobs: %w", err)
	}
	defer rows.Close()
	var out []CronJob
	for rows.Next() {
		var j CronJob
		var runID *int64
		var status, msg *string
		var start, end *time.Time
		if err := rows.Scan(&j.ID, &j.Name, &j.Schedule, &j.Command, &j.Active, &runID, &status, &msg, &start, &end); err != nil {
			return nil, fmt.Errorf("list cron jobs: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != j.ID {
			if j.Active {
				if t, ok := NextRun(j.Schedule, now); ok {
					j.Next = &t
				}
			}
			out = append(out, j)
		}
		if runID != nil {
			r := CronRun{ID: *runID, Status: *status, ReturnMessage: *msg}
			if start != nil {
				r.Start = *start
				if end != nil {
					d := end.Sub(*start)
					r.Duration = &d
				}
			}
			last := &out[len(out)-1]
			last.Runs = append(last.Runs, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list cron jobs: %w", err)
	}
	return out, nil
}

// QueueHealth is automation_queue_health.
type QueueHealth struct {
	Pending, DueNow, Running, ExpiredLeases, FailedLastHour int64
	OldestDueAgeSeconds, CheckProblems, Deferred            int64
}

// Health reads automation_queue_health.
func Health(ctx context.Context, db DB) (QueueHealth, error) {
	var h QueueHealth
	err := db.QueryRow(ctx, `select pending, due_now, running, expired_leases, failed_last_hour, oldest_due_age_seconds,
       check_problems, deferred from public.automation_queue_health`).Scan(&h.Pending, &h.DueNow, &h.Running,
		&h.ExpiredLeases, &h.FailedLastHour, &h.OldestDueAgeSeconds, &h.CheckProblems, &h.Deferred)
	if err != nil {
		return h, fmt.Errorf("read queue health: %w", err)
	}
	return h, nil
}

// DayCount is one day of one workflow in automation_analytics.
type DayCount struct {
	Day                   time.Time
	WorkflowID            uuid.UUID
	Workflow              string
	Sent, Skipped, Failed int
}

// Analytics returns the last days of automation_analytics per day and
// workflow, oldest first: messages sent (emails and SMS), executions skipped
// and failed.
func Analytics(ctx context.Context, db DB, days int) ([]DayCount, error) {
	rows, err := db.Query(ctx, `
select a.date::timestamptz, a.workflow_id, coalesce(w.name, a.workflow_id::text),
       coalesce(a.emails_sent, 0) + coalesce(a.sms_sent, 0), coalesce(a.skipped, 0), coalesce(a.failure_count, 0)
  from public.automation_analytics a
  left join public.automation_workflows w on w.id = a.workflow_id
 where a.date > current_date - $1::int
 order by a.date, w.name, a.workflow_id`, days)
	if err != nil {
		return nil, fmt.Errorf("read analytics: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayCount, error) {
		var d DayCount
		err := r.Scan(&d.Day, &d.WorkflowID, &d.Workflow, &d.Sent, &d.Skipped, &d.Failed)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("read analytics: %w", err)
	}
	return out, nil
}
