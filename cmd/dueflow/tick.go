package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// cycleJob is one pg_cron job of the automation cycle.
type cycleJob struct {
	Job string // pg_cron job name
	SQL string // what it runs
}

// cycleJobs are the every-minute jobs in the order one cycle runs them: the
// three checks create executions, then process-automations dispatches them.
// When the database has these jobs in cron.job, their commands are run
// verbatim instead (see cycleSQL).
var cycleJobs = []cycleJob{
	{"check-automation-triggers", "select public.check_automation_triggers()"},
	{"check-overdue-invoices", "select public.check_overdue_invoices()"},
	{"check-maintenance-reminders", "select public.check_maintenance_reminders()"},
	{"process-automations", "select public.process_pending_automations()"},
}

// cycleSQL returns the cycle's jobs with the commands pg_cron has for them in
// this database, falling back to cycleJobs where cron.job has none (pg_cron
// lives in one database per cluster; clones have no cron schema).
func cycleSQL(ctx context.Context, conn *pgx.Conn) ([]cycleJob, error) {
	jobs := append([]cycleJob(nil), cycleJobs...)
	var hasCron bool
	if err := conn.QueryRow(ctx, `select to_regclass('cron.job') is not null`).Scan(&hasCron); err != nil {
		return nil, fmt.Errorf("look up cron.job: %w", err)
	}
	if !hasCron {
		return jobs, nil
	}
	rows, err := conn.Query(ctx, `select jobname, command from cron.job where database = current_database() and active`)
	if err != nil {
		return nil, fmt.Errorf("read cron.job: %w", err)
	}
	cmds := map[string]string{}
	for rows.Next() {
		var name, cmd string
		if err := rows.Scan(&name, &cmd); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read cron.job: %w", err)
		}
		cmds[name] = cmd
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cron.job: %w", err)
	}
	for i, j := range jobs {
		if c, ok := cmds[j.Job]; ok {
			jobs[i].SQL = c
		}
	}
	return jobs, nil
}

// tickReport is what one cycle did, read back from automation_execution_logs.
type tickReport struct {
	Created    table // executions created by the checks, per action and trigger type
	Dispatched table // executions dispatched (dispatched_at set) by process-automations, per action
}

// runCycle runs one cycle's SQL, one job per transaction as pg_cron does,
// printing each job's result to w, and reports what the cycle created and
// dispatched.
func runCycle(ctx context.Context, conn *pgx.Conn, w io.Writer) (tickReport, error) {
	jobs, err := cycleSQL(ctx, conn)
	if err != nil {
		return tickReport{}, err
	}
	var start time.Time
	if err := conn.QueryRow(ctx, `select clock_timestamp()`).Scan(&start); err != nil {
		return tickReport{}, fmt.Errorf("read clock: %w", err)
	}
	for _, j := range jobs {
		t, err := queryTable(ctx, conn, j.SQL)
		if err != nil {
			return tickReport{}, fmt.Errorf("%s (%s): %w", j.Job, j.SQL, err)
		}
		fmt.Fprintf(w, "%-28s %s\n", j.Job, resultText(t))
	}
	var rep tickReport
	rep.Created, err = queryTable(ctx, conn, `
select action, trigger_type, status, count(*) as executions
  from automation_execution_logs
 where created_at >= $1
 group by 1, 2, 3
 order by 1, 2, 3`, start)
	if err != nil {
		return tickReport{}, fmt.Errorf("read created executions: %w", err)
	}
	rep.Dispatched, err = queryTable(ctx, conn, `
select action, count(*) as executions
  from automation_execution_logs
 where dispatched_at >= $1
 group by 1
 order by 1`, start)
	if err != nil {
		return tickReport{}, fmt.Errorf("read dispatched executions: %w", err)
	}
	return rep, nil
}

// resultText renders a job's result compactly: a single value as is, a
// void result as "done", anything else as "col=value" pairs.
func resultText(t table) string {
	switch {
	case len(t.Rows) == 0:
		return "done (no rows)"
	case len(t.Rows) == 1 && len(t.Columns) == 1:
		if t.Rows[0][0] == `""` {
			return "done"
		}
		return t.Rows[0][0]
	}
	s := ""
	for i, r := range t.Rows {
		if i > 0 {
			s += "; "
		}
		for j, c := range t.Columns {
			if j > 0 {
				s += " "
			}
			s += c + "=" + r[j]
		}
	}
	return s
}

func tickUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow tick [--db URL]

Runs one automation cycle now, one job per transaction as pg_cron does: the
three checks create executions, then process-automations dispatches them
(pg_net requests). The commands pg_cron has for these jobs in the database
are run verbatim when it has them. Prints each job's result, then what the
cycle created and dispatched.
`)
}

func cmdTick(ctx context.Context, args []string) error {
	conn, err := connectFromArgs(ctx, "tick", args)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := runCycle(ctx, conn, os.Stdout)
	if err != nil {
		return err
	}
	return rep.write(os.Stdout)
}

func (r tickReport) write(w io.Writer) error {
	fmt.Fprintln(w, "\n== Created by this cycle")
	if err := r.Created.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n== Dispatched by this cycle (pg_net requests queued)")
	return r.Dispatched.write(w)
}
