// Package opsdb is what an operator reads and does on a dueflow database:
// the executions list (filters, counts per state, keyset pages), one
// execution with its timeline, workflows, cron jobs and their runs, queue
// health, daily analytics, and the actions (retry, cancel, settle, pause,
// resume) through automation_operator_act, which records who did them.
// `dueflow console` and the CLI's executions, execution, retry and cancel
// share it. Recipients are masked (automation_mask_recipient) and the lease
// token is never read.
package opsdb

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dueflow/dueflow/shared/automation"
)

// DB is a connection or a pool.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Actions are the actions (automation.Actions) in the order pages show
// them: by name.
func Actions() []string { return slices.Sorted(slices.Values(automation.Actions)) }

// States are the execution states, in the order pages show them.
var States = []string{"pending", "running", "completed", "failed", "skipped", "cancelled"}

// CountCap is where counts per state stop counting: "10000+" (an exact
// count of a million rows would cost every page view a full scan).
const CountCap = 10000

// Filter selects executions; zero fields select everything.
type Filter struct {
	State, Action, TriggerType, ErrorCode string
	Org, Workflow                         uuid.UUID
	Since, Until                          time.Time // created_at in [Since, Until)
	After                                 string    // cursor of the last row of the previous page
	Limit                                 int       // default 50, at most 500
}

// Execution is one row of the executions list.
type Execution struct {
	ID, WorkflowID, OrgID                      uuid.UUID
	Workflow, Action, TriggerType, Status      string
	SubjectType, SubjectID                     string
	Attempt, MaxAttempts, StepIndex, Deferrals int
	ErrorCode, ErrorMessage                    string
	CreatedAt, UpdatedAt, NextAttemptAt        time.Time
	StartedAt, CompletedAt, DispatchedAt       *time.Time
	DeadlineAt, LeaseExpiresAt                 *time.Time
	DispatchCount, ActionsCount                int
	OccurrenceKey                              string
	cursorCreated                              time.Time
}

// Page is one page of executions, newest first; Next is the cursor of the
// following page ("" on the last).
type Page struct {
	Rows []Execution
	Next string
}

// CountBudget bounds the counts per state: a filter no index serves (a
// workflow's rows of a state it has none of, say) gives "?" instead of a
// slow page. 60 ms leaves the page's own query and rendering room inside
// the console's 100 ms target.
const CountBudget = 60 * time.Millisecond

// CountLimits bound a page's counts: each stops at Cap (shown "Cap+"), and
// all of them together get Budget (past it they show "?"). Zero fields are
// CountCap and CountBudget; a Budget under a millisecond is one (the
// database's statement_timeout counts in milliseconds).
type CountLimits struct {
	Cap    int
	Budget time.Duration
}

func (l CountLimits) withDefaults() CountLimits {
	if l.Cap <= 0 {
		l.Cap = CountCap
	}
	if l.Budget <= 0 {
		l.Budget = CountBudget
	}
	l.Budget = max(l.Budget, time.Millisecond)
	return l
}

// capped is a count read with a limit of cap+1 rows.
func capped(state string, n, cap int) Count {
	return Count{State: state, N: min(n, cap), More: n > cap}
}

// withinBudget runs read in a transaction whose statements may take budget
// together at most; it reports false when they did not finish in time (the
// request's own context still live).
func withinBudget(ctx context.Context, db DB, budget time.Duration, read func(pgx.Tx) error) (bool, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("set local statement_timeout = %d", budget.Milliseconds())); err != nil {
		return false, err
	}
	err = read(tx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" && ctx.Err() == nil { // query_canceled: the budget
		return false, nil
	}
	return err == nil, err
}

// Count is the number of executions in one state, capped at CountCap
// (More: there are more; Unknown: not counted within CountBudget).
type Count struct {
	State   string
	N       int
	More    bool
	Unknown bool
}

// String is "12", "10000+" or "?".
func (c Count) String() string {
	if c.Unknown {
		return "?"
	}
	if c.More {
		return fmt.Sprintf("%d+", c.N)
	}
	return fmt.Sprint(c.N)
}

const execColumns = `e.id, e.workflow_id, e.organization_id, coalesce(w.name, ''), e.action, e.trigger_type, e.status,
       e.subject_type, coalesce(e.subject_id, ''), e.attempt, e.max_attempts, e.step_index, e.deferrals,
       coalesce(e.error_code, ''), coalesce(e.error_message, ''), e.created_at, e.updated_at, e.next_attempt_at,
       e.started_at, e.completed_at, e.dispatched_at, e.deadline_at, e.lease_expires_at, e.dispatch_count,
       coalesce(e.actions_count, 0), e.occurrence_key`

func scanExecution(r pgx.Row) (Execution, error) {
	var x Execution
	err := r.Scan(&x.ID, &x.WorkflowID, &x.OrgID, &x.Workflow, &x.Action, &x.TriggerType, &x.Status,
		&x.SubjectType, &x.SubjectID, &x.Attempt, &x.MaxAttempts, &x.StepIndex, &x.Deferrals,
		&x.ErrorCode, &x.ErrorMessage, &x.CreatedAt, &x.UpdatedAt, &x.NextAttemptAt,
		&x.StartedAt, &x.CompletedAt, &x.DispatchedAt, &x.DeadlineAt, &x.LeaseExpiresAt, &x.DispatchCount,
		&x.ActionsCount, &x.OccurrenceKey)
	x.cursorCreated = x.CreatedAt
	return x, err
}

// where builds the filter's predicate (state excluded when noState) and its
// arguments, numbered from len(args)+1.
func (f Filter) where(args []any, noState bool) (string, []any) {
	var conds []string
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.State != "" && !noState {
		add("e.status = ?", f.State)
	}
	if f.Action != "" {
		add("e.action = ?", f.Action)
	}
	if f.TriggerType != "" {
		add("e.trigger_type = ?", f.TriggerType)
	}
	if f.ErrorCode != "" {
		add("e.error_code = ?", f.ErrorCode)
	}
	if f.Org != uuid.Nil {
		add("e.organization_id = ?", f.Org)
	}
	if f.Workflow != uuid.Nil {
		add("e.workflow_id = ?", f.Workflow)
	}
	if !f.Since.IsZero() {
		add("e.created_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("e.created_at < ?", f.Until)
	}
	if len(conds) == 0 {
		return "true", args
	}
	return strings.Join(conds, " and "), args
}

// Validate refuses a state, action or cursor that cannot be right.
func (f Filter) Validate() error {
	if f.State != "" && !slices.Contains(States, f.State) {
		return fmt.Errorf("state %q: one of %s", f.State, strings.Join(States, ", "))
	}
	if f.Action != "" && !automation.IsAction(f.Action) {
		return fmt.Errorf("action %q: one of %s", f.Action, strings.Join(Actions(), ", "))
	}
	if f.After != "" {
		if _, _, err := decodeCursor(f.After); err != nil {
			return err
		}
	}
	if f.Limit < 0 {
		return errors.New("limit must be positive")
	}
	return nil
}

// cursor: base64 of "created_at(unix ns)/id".
func encodeCursor(t time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d/%s", t.UnixNano(), id)))
}

func decodeCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		var ns int64
		var id string
		if _, err = fmt.Sscanf(string(b), "%d/%s", &ns, &id); err == nil {
			u, err := uuid.Parse(id)
			if err == nil {
				return time.Unix(0, ns).UTC(), u, nil
			}
		}
	}
	return time.Time{}, uuid.Nil, errors.New("invalid page cursor")
}

// List returns one page of executions matching f, newest first (keyset on
// created_at, id: automation_execution_logs_created_idx and
// automation_execution_logs_status_created_idx).
func List(ctx context.Context, db DB, f Filter) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	limit = min(limit, 500)
	where, args := f.where(nil, false)
	if f.After != "" {
		t, id, _ := decodeCursor(f.After)
		args = append(args, t, id)
		where += fmt.Sprintf(" and (e.created_at, e.id) < ($%d, $%d)", len(args)-1, len(args))
	}
	args = append(args, limit+1)
	rows, err := db.Query(ctx, `
select `+execColumns+`
  from (select * from public.automation_execution_logs e
         where `+where+`
         order by e.created_at desc, e.id desc
         limit $`+fmt.Sprint(len(args))+`) e
  left join public.automation_workflows w on w.id = e.workflow_id
 order by e.created_at desc, e.id desc`, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list executions: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		x, err := scanExecution(rows)
		if err != nil {
			return Page{}, fmt.Errorf("list executions: %w", err)
		}
		p.Rows = append(p.Rows, x)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list executions: %w", err)
	}
	if len(p.Rows) > limit {
		p.Rows = p.Rows[:limit]
		last := p.Rows[limit-1]
		p.Next = encodeCursor(last.cursorCreated, last.ID)
	}
	return p, nil
}

// Counts counts the executions matching f (its state aside) per state, each
// capped at lim.Cap, all within lim.Budget (zero limits: CountCap,
// CountBudget).
func Counts(ctx context.Context, db DB, f Filter, lim CountLimits) ([]Count, error) {
	lim = lim.withDefaults()
	where, args := f.where(nil, true)
	args = append(args, lim.Cap+1)
	capArg := fmt.Sprintf("$%d", len(args))
	var parts []string
	for _, s := range States {
		// one index range per state (automation_execution_logs_status_created_idx)
		parts = append(parts, fmt.Sprintf(`(select count(*) from (select 1 from public.automation_execution_logs e
			where e.status = '%s' and %s limit %s) x)`, s, where, capArg))
	}
	ns := make([]int, len(States))
	dst := make([]any, len(States))
	for i := range ns {
		dst[i] = &ns[i]
	}
	ok, err := withinBudget(ctx, db, lim.Budget, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "select "+strings.Join(parts, ", "), args...).Scan(dst...)
	})
	if err != nil {
		return nil, fmt.Errorf("count executions: %w", err)
	}
	out := make([]Count, len(States))
	for i, s := range States {
		out[i] = capped(s, ns[i], lim.Cap)
		out[i].Unknown = !ok
	}
	return out, nil
}

// ErrNotFound is returned for an id no row has.
var ErrNotFound = errors.New("not found")

// Get returns one execution.
func Get(ctx context.Context, db DB, id uuid.UUID) (Execution, error) {
	x, err := scanExecution(db.QueryRow(ctx, `select `+execColumns+`
  from public.automation_execution_logs e
  left join public.automation_workflows w on w.id = e.workflow_id
 where e.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return x, fmt.Errorf("execution %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("read execution %s: %w", id, err)
	}
	return x, nil
}

// rawJSON pretty-prints a JSON document.
func rawJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(b)
	}
	return string(out)
}

// ParseTime reads a time as forms and flags give it, in UTC:
// 2006-01-02T15:04, RFC 3339, "2006-01-02 15:04" or a date.
func ParseTime(v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", time.RFC3339, "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02T15:04, UTC)", v)
}
