package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/internal/opsdb"
)

// executionsOptions are the parsed flags of `dueflow executions`.
type executionsOptions struct {
	DB     string
	Filter opsdb.Filter
	JSON   bool
}

func executionsUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow executions [filters] [--limit N] [--after CURSOR] [--json] [--db URL]

Lists executions, newest first, with the counts per state (capped at
10000) of the same filters. A full page ends with the cursor of the next
one (--after). Times are UTC (2006-01-02T15:04 or RFC 3339). Filters:
--state --action --org --workflow --trigger --error --since --until.
`)
}

func parseExecutionsFlags(args []string, stderr io.Writer) (executionsOptions, error) {
	fs := newFlagSet("executions", stderr)
	var o executionsOptions
	f := &o.Filter
	db := dbFlag(fs)
	fs.StringVar(&f.State, "state", "", "status: "+strings.Join(opsdb.States, ", "))
	fs.StringVar(&f.Action, "action", "", "function: invoice-reminder, run-workflow, send-reminder")
	org := fs.String("org", "", "organisation id")
	wf := fs.String("workflow", "", "workflow id")
	fs.StringVar(&f.TriggerType, "trigger", "", "trigger type (invoice_overdue, maintenance_due, appointment, stale_job, scheduled)")
	fs.StringVar(&f.ErrorCode, "error", "", "error code")
	since := fs.String("since", "", "created at or after")
	until := fs.String("until", "", "created before")
	fs.IntVar(&f.Limit, "limit", 50, "at most this many (500 at most)")
	fs.StringVar(&f.After, "after", "", "the cursor a previous page ended with")
	fs.BoolVar(&o.JSON, "json", false, "print JSON ({counts, executions, next})")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if err := noArgs(fs); err != nil {
		return o, err
	}
	o.DB = *db
	var errs []error
	for _, p := range []struct {
		name, v string
		dst     *uuid.UUID
	}{{"--org", *org, &f.Org}, {"--workflow", *wf, &f.Workflow}} {
		if p.v != "" {
			id, err := uuid.Parse(p.v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: not a uuid", p.name, p.v))
			}
			*p.dst = id
		}
	}
	for _, p := range []struct {
		name, v string
		dst     *time.Time
	}{{"--since", *since, &f.Since}, {"--until", *until, &f.Until}} {
		if p.v != "" {
			t, err := opsdb.ParseTime(p.v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			}
			*p.dst = t
		}
	}
	if f.Limit <= 0 {
		errs = append(errs, errors.New("--limit must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, usageError{err: err}
	}
	if err := f.Validate(); err != nil {
		return o, usageError{err: err}
	}
	return o, nil
}

func cmdExecutions(ctx context.Context, args []string) error {
	o, err := parseExecutionsFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	return withConn(ctx, o.DB, func(conn *pgx.Conn) error { return writeExecutions(ctx, conn, o, os.Stdout) })
}

// executionJSON is one execution in --json output.
type executionJSON struct {
	ID            uuid.UUID  `json:"id"`
	CreatedAt     time.Time  `json:"created_at"`
	Status        string     `json:"status"`
	OrgID         uuid.UUID  `json:"organization_id"`
	WorkflowID    uuid.UUID  `json:"workflow_id"`
	Workflow      string     `json:"workflow"`
	Action        string     `json:"action"`
	TriggerType   string     `json:"trigger_type"`
	SubjectType   string     `json:"subject_type"`
	SubjectID     string     `json:"subject_id"`
	Attempt       int        `json:"attempt"`
	MaxAttempts   int        `json:"max_attempts"`
	StepIndex     int        `json:"step_index"`
	ErrorCode     string     `json:"error_code,omitempty"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
}

func writeExecutions(ctx context.Context, db opsdb.DB, o executionsOptions, w io.Writer) error {
	page, err := opsdb.List(ctx, db, o.Filter)
	if err != nil {
		return err
	}
	counts, err := opsdb.Counts(ctx, db, o.Filter, opsdb.CountLimits{})
	if err != nil {
		return err
	}
	if o.JSON {
		out := struct {
			Counts     map[string]string `json:"counts"`
			Executions []executionJSON   `json:"executions"`
			Next       string            `json:"next,omitempty"`
		}{Counts: map[string]string{}, Executions: []executionJSON{}, Next: page.Next}
		for _, c := range counts {
			out.Counts[c.State] = c.String()
		}
		for _, x := range page.Rows {
			out.Executions = append(out.Executions, executionJSON{ID: x.ID, CreatedAt: x.CreatedAt.UTC(), Status: x.Status,
				OrgID: x.OrgID, WorkflowID: x.WorkflowID, Workflow: x.Workflow, Action: x.Action, TriggerType: x.TriggerType,
				SubjectType: x.SubjectType, SubjectID: x.SubjectID, Attempt: x.Attempt, MaxAttempts: x.MaxAttempts,
				StepIndex: x.StepIndex, ErrorCode: x.ErrorCode, NextAttemptAt: x.NextAttemptAt.UTC(), CompletedAt: x.CompletedAt})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var cs []string
	for _, c := range counts {
		cs = append(cs, c.State+" "+c.String())
	}
	fmt.Fprintf(w, "counts: %s\n", strings.Join(cs, ", "))
	t := table{Columns: []string{"id", "created_at", "status", "workflow", "action", "trigger", "subject", "attempt", "step", "error"}}
	for _, x := range page.Rows {
		t.Rows = append(t.Rows, []string{x.ID.String(), x.CreatedAt.UTC().Format(time.DateTime), x.Status, cleanCell(x.Workflow),
			x.Action, x.TriggerType, cleanCell(x.SubjectType + " " + x.SubjectID), fmt.Sprintf("%d/%d", x.Attempt, x.MaxAttempts),
			fmt.Sprint(x.StepIndex), dash(x.ErrorCode)})
	}
	if err := t.write(w); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(w, "next page: --after %s\n", page.Next)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// idArg parses a command whose only positional argument is an id, before
// or after its flags (a missing, extra or malformed id is a usage error).
func idArg(fs *flag.FlagSet, args []string, what string) (uuid.UUID, error) {
	if err := parseFlags(fs, args); err != nil {
		return uuid.Nil, err
	}
	rest := fs.Args()
	if len(rest) > 0 {
		id := rest[0]
		if err := parseFlags(fs, rest[1:]); err != nil {
			return uuid.Nil, err
		}
		rest = append([]string{id}, fs.Args()...)
	}
	switch {
	case len(rest) == 0:
		return uuid.Nil, usageErrorf("the %s id is required (dueflow executions lists them)", what)
	case len(rest) > 1:
		return uuid.Nil, usageErrorf("unexpected arguments: %v", rest[1:])
	}
	id, err := uuid.Parse(rest[0])
	if err != nil {
		return uuid.Nil, usageErrorf("%s id %q: not a uuid", what, rest[0])
	}
	return id, nil
}

func executionUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow execution <execution-id> [--db URL]

Prints one execution as the console shows it: its facts, its timeline, its
deliveries (recipients masked) and its trigger data. "dueflow executions"
lists the ids.
`)
}

func cmdExecution(ctx context.Context, args []string) error {
	fs := newFlagSet("execution", os.Stderr)
	db := dbFlag(fs)
	id, err := idArg(fs, args, "execution")
	if err != nil {
		return err
	}
	conn, err := connect(ctx, *db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	d, err := opsdb.GetDetail(ctx, conn, id)
	if err != nil {
		return err
	}
	return writeExecution(d, os.Stdout)
}

// writeExecution prints one execution as text: the console's page.
func writeExecution(d opsdb.Detail, w io.Writer) error {
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "execution %s: %s\n", d.ID, d.Status)
	fmt.Fprintf(w, "workflow:  %s (%s) %s, %s\n", d.Workflow, d.WorkflowID, d.TriggerType, d.Action)
	fmt.Fprintf(w, "org:       %s\n", d.OrgID)
	fmt.Fprintf(w, "subject:   %s %s\n", d.SubjectType, d.SubjectID)
	fmt.Fprintf(w, "attempt:   %d of %d, step %d, %d deferrals, %d dispatches\n", d.Attempt, d.MaxAttempts, d.StepIndex, d.Deferrals, d.DispatchCount)
	fmt.Fprintf(w, "next:      %s  deadline: %s\n", d.NextAttemptAt.UTC().Format(time.RFC3339), ts(d.DeadlineAt))
	if d.ErrorCode != "" {
		fmt.Fprintf(w, "error:     %s: %s\n", d.ErrorCode, d.ErrorMessage)
	}
	fmt.Fprintln(w, "\ntimeline:")
	for _, e := range d.Timeline {
		fmt.Fprintf(w, "  %s  %-10s %s\n", e.At.UTC().Format(time.RFC3339), e.Kind, e.Text)
	}
	fmt.Fprintln(w, "\ndeliveries:")
	t := table{Columns: []string{"id", "step", "channel", "provider", "recipient", "status", "provider_message_id", "sent_at", "error"}}
	for _, v := range d.Deliveries {
		t.Rows = append(t.Rows, []string{v.ID.String(), fmt.Sprint(v.StepIndex), v.Channel, v.Provider, v.Recipient, v.Status,
			dash(v.ProviderMessageID), ts(v.SentAt), dash(v.ErrorCode)})
	}
	if err := t.write(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntrigger data:\n%s\n", d.TriggerData)
	return nil
}

func retryUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow retry <execution-id> [--by NAME] [--db URL]

Re-runs a failed, skipped or cancelled execution at once, or a completed one
settled not sent (automation_retry_execution), with its attempts and
deferrals reset; sent deliveries are never sent again. Who (--by) and when
are recorded in automation_operator_actions. A refusal (not found, not
finished, a row of the replaced system, past its deadline) is printed with
its reason and exits 1.
`)
}

func cancelUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow cancel <execution-id> [--by NAME] [--reason TEXT] [--db URL]

Cancels a pending or running execution (automation_cancel_execution); a
running function's later deliveries and report are then refused as stale.
Who (--by), when and why (--reason) are recorded in
automation_operator_actions. A refusal (not found, already finished) is
printed with its reason and exits 1.
`)
}

// refusalCodes document the refusal of retry, cancel and settle.
var refusalCodes = []exitDoc{{exitFailure, "not applied: the execution was refused; the reason is printed on stdout"}}

func cmdRetry(ctx context.Context, args []string) error {
	return runAction(ctx, "retry", opsdb.Retry, args, os.Stdout)
}

func cmdCancel(ctx context.Context, args []string) error {
	return runAction(ctx, "cancel", opsdb.Cancel, args, os.Stdout)
}

// runAction is retry and cancel: one execution id, --by, --reason (cancel).
func runAction(ctx context.Context, name, action string, args []string, w io.Writer) error {
	fs := newFlagSet(name, os.Stderr)
	db := dbFlag(fs)
	by := fs.String("by", "", "who does it, recorded in automation_operator_actions (default: the OS user name)")
	var reason *string
	if action == opsdb.Cancel {
		reason = fs.String("reason", "", "why, stored as the execution's error message (default: cancelled by an operator); no personal data")
	}
	id, err := idArg(fs, args, "execution")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*by) == "" {
		*by = operatorName()
	}
	conn, err := connect(ctx, *db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r := ""
	if reason != nil {
		r = *reason
	}
	return runActionWith(ctx, conn, name, action, id, strings.TrimSpace(*by), r, w)
}

// runActionWith applies action to the execution id as by and prints the
// outcome; a refusal prints its reason and exits 1.
func runActionWith(ctx context.Context, db opsdb.DB, name, action string, id uuid.UUID, by, reason string, w io.Writer) error {
	a, err := opsdb.Act(ctx, db, action, id, by, reason)
	if err != nil {
		return err
	}
	if !a.Applied {
		fmt.Fprintf(w, "not applied: %s %s (status %s): %s\n", name, id, dash(a.Status), a.Why())
		return exitCode(exitFailure)
	}
	fmt.Fprintf(w, "%s %s: applied by %s, now %s\n", name, id, by, a.Status)
	return nil
}
