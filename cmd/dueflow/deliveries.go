package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/internal/opsdb"
)

// unknownView lists the deliveries to settle (sql/20261202001100_delivery_progress.sql).
const unknownView = "public.automation_unknown_deliveries"

// deliveriesOptions are the parsed flags of `dueflow deliveries`.
type deliveriesOptions struct {
	DB    string
	Limit int
}

func deliveriesUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow deliveries --unknown [--limit N] [--db URL]

Lists the deliveries whose fate nobody knows (automation_unknown_deliveries):
"unknown" ones (a provider call that may have been accepted: a timeout after
the hand-over, or a function that stopped before recording the answer), and
"sending" ones whose execution no longer runs. Recipients are masked. Check
the provider's log by provider and idempotency_key, then settle each with
  dueflow settle <id> --sent | --not-sent
`)
}

func cmdDeliveries(ctx context.Context, args []string) error {
	o, err := parseDeliveriesFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	return withConn(ctx, o.DB, func(conn *pgx.Conn) error { return writeUnknownDeliveries(ctx, conn, o.Limit, os.Stdout) })
}

func parseDeliveriesFlags(args []string, stderr io.Writer) (deliveriesOptions, error) {
	fs := newFlagSet("deliveries", stderr)
	var o deliveriesOptions
	db := dbFlag(fs)
	unknown := fs.Bool("unknown", false, "list the deliveries whose fate is unknown (the only listing so far)")
	fs.IntVar(&o.Limit, "limit", 100, "at most this many, oldest first")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	o.DB = *db
	switch {
	case fs.NArg() > 0:
		return o, usageErrorf("unexpected arguments: %v", fs.Args())
	case !*unknown:
		return o, usageErrorf("say which deliveries: --unknown")
	case o.Limit <= 0:
		return o, usageErrorf("--limit must be positive")
	}
	return o, nil
}

// writeUnknownDeliveries prints the deliveries to settle, oldest first.
func writeUnknownDeliveries(ctx context.Context, conn *pgx.Conn, limit int, w io.Writer) error {
	var ok bool
	if err := conn.QueryRow(ctx, `select to_regclass($1) is not null`, unknownView).Scan(&ok); err != nil {
		return fmt.Errorf("look up %s: %w", unknownView, err)
	}
	if !ok {
		return fmt.Errorf("%s does not exist: apply the migrations of sql/ (20261202001100_delivery_progress.sql)", unknownView)
	}
	var total int
	if err := conn.QueryRow(ctx, `select count(*) from automation_unknown_deliveries`).Scan(&total); err != nil {
		return fmt.Errorf("count unknown deliveries: %w", err)
	}
	t, err := queryTable(ctx, conn, `
select id, execution_id, organization_id, workflow_id, step_index as step, channel, provider, recipient,
       status, execution_status, idempotency_key, date_trunc('second', created_at) as created_at,
       date_trunc('second', age) as age
  from automation_unknown_deliveries
 order by created_at, id
 limit $1`, limit)
	if err != nil {
		return fmt.Errorf("list unknown deliveries: %w", err)
	}
	if err := t.write(w); err != nil {
		return err
	}
	if total > len(t.Rows) {
		fmt.Fprintf(w, "note: %d of %d shown (--limit)\n", len(t.Rows), total)
	}
	if total > 0 {
		fmt.Fprintln(w, "note: settle each with: dueflow settle <id> --sent | --not-sent [--by NAME]")
	}
	return nil
}

// settleOptions are the parsed arguments of `dueflow settle`.
type settleOptions struct {
	DB       string
	Delivery uuid.UUID
	Sent     bool
	By       string
}

func settleUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow settle <delivery-id> (--sent | --not-sent) [--by NAME] [--db URL]

Settles a delivery listed by "dueflow deliveries --unknown" once you know its
fate from the provider's log:
  --sent      it arrived: recorded sent (counted once in the analytics)
  --not-sent  it did not: recorded failed (settled_not_sent); an execution
              still pending sends it on its next attempt; a finished one
              after: select automation_retry_execution('<execution id>')
Who (--by) and when are recorded (automation_operator_actions). A completed execution flagged only for
its unknown deliveries loses delivery_unknown once none is left (or becomes
settled_not_sent: the retry then resumes at that step; sent steps are never
sent again). A refusal (not found, already settled, still running) is
printed with its reason and exits 1.
`)
}

func cmdSettle(ctx context.Context, args []string) error {
	o, err := parseSettleFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.By == "" {
		o.By = operatorName()
	}
	return withConn(ctx, o.DB, func(conn *pgx.Conn) error { return settleDelivery(ctx, conn, o, os.Stdout) })
}

// operatorName is who settles when --by is not given: the OS user.
func operatorName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "dueflow-cli"
}

func parseSettleFlags(args []string, stderr io.Writer) (settleOptions, error) {
	fs := newFlagSet("settle", stderr)
	var o settleOptions
	db := dbFlag(fs)
	sent := fs.Bool("sent", false, "the message arrived")
	notSent := fs.Bool("not-sent", false, "the message did not arrive")
	fs.StringVar(&o.By, "by", "", "who settles it (default: the OS user name)")
	// the delivery id may come before or after the flags
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	rest := fs.Args()
	if len(rest) > 0 {
		id := rest[0]
		if err := parseFlags(fs, rest[1:]); err != nil {
			return o, err
		}
		rest = append([]string{id}, fs.Args()...)
	}
	o.DB = *db
	switch {
	case len(rest) == 0:
		return o, usageErrorf("the delivery id is required (dueflow deliveries --unknown lists them)")
	case len(rest) > 1:
		return o, usageErrorf("unexpected arguments: %v", rest[1:])
	case *sent == *notSent:
		return o, usageErrorf("say what happened: --sent or --not-sent")
	}
	id, err := uuid.Parse(rest[0])
	if err != nil {
		return o, usageErrorf("delivery id %q: not a uuid", rest[0])
	}
	o.Delivery, o.Sent, o.By = id, *sent, strings.TrimSpace(o.By)
	return o, nil
}

// settleDelivery settles through automation_operator_act (recorded in
// automation_operator_actions with who did it, as the console's buttons) and
// prints the result; a refusal is printed with its reason and exits 1.
func settleDelivery(ctx context.Context, conn *pgx.Conn, o settleOptions, w io.Writer) error {
	action := opsdb.SettleNotSent
	if o.Sent {
		action = opsdb.SettleSent
	}
	a, err := opsdb.Act(ctx, conn, action, o.Delivery, o.By, "")
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if !a.Applied {
		status := ""
		if a.Status != "" {
			status = " (status " + a.Status + ")"
		}
		fmt.Fprintf(w, "not settled: %s%s: %s\n", o.Delivery, status, a.Why())
		return exitCode(1)
	}
	fmt.Fprintf(w, "settled %s as %s by %s (execution %s)\n", o.Delivery, map[bool]string{true: "sent", false: "not sent"}[o.Sent], o.By, a.ExecutionID)
	return nil
}
