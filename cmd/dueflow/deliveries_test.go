package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

func TestDeliveriesFlags(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseDeliveriesFlags(nil, &stderr)
	require.ErrorContains(t, err, "--unknown")
	o, err := parseDeliveriesFlags([]string{"--unknown", "--limit", "5"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, 5, o.Limit)
	_, err = parseDeliveriesFlags([]string{"--unknown", "--limit", "0"}, &stderr)
	require.ErrorContains(t, err, "--limit must be positive")
	_, err = parseDeliveriesFlags([]string{"--unknown", "x"}, &stderr)
	require.ErrorContains(t, err, "unexpected arguments")
}

func TestSettleFlags(t *testing.T) {
	var stderr bytes.Buffer
	id := uuid.New()
	for _, args := range [][]string{
		{id.String(), "--sent", "--by", "ops"},
		{"--sent", "--by", "ops", id.String()},
		{"--by", "ops", id.String(), "--sent"},
	} {
		o, err := parseSettleFlags(args, &stderr)
		require.NoError(t, err, args)
		assert.Equal(t, settleOptions{DB: o.DB, Delivery: id, Sent: true, By: "ops"}, o, args)
	}
	o, err := parseSettleFlags([]string{id.String(), "--not-sent"}, &stderr)
	require.NoError(t, err)
	assert.False(t, o.Sent)
	assert.Empty(t, o.By, "the OS user is filled in at run time")

	for args, want := range map[string][]string{
		"the delivery id is required":  {"--sent"},
		"--sent or --not-sent":         {id.String()},
		"say what happened":            {id.String(), "--sent", "--not-sent"},
		"not a uuid":                   {"abc", "--sent"},
		"unexpected arguments: [extra": {id.String(), "extra", "--sent"},
	} {
		_, err := parseSettleFlags(want, &stderr)
		require.ErrorContains(t, err, args, want)
	}
	assert.NotEmpty(t, operatorName())
}

// The list shows an unknown delivery masked; settle records it sent once
// and refuses a second time with the reason (exit status 1).
func TestDeliveriesAndSettle(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, pool, 1)
	got := pgtest.ClaimDue(t, pool, automation.ActionInvoiceReminder, execs, 60)
	intent := automation.DeliveryIntent{ExecutionID: execs[0], LeaseToken: got[0].Execution.LeaseToken, Channel: "email",
		Recipient: "ada@client.test", Provider: "smtp", IdempotencyKey: automation.IdempotencyKey(execs[0], 0, "email")}
	pgtest.RecordDeliveries(t, pool, nil, intent)
	require.True(t, pgtest.Report(t, pool, automation.Outcome{ExecutionID: execs[0], LeaseToken: intent.LeaseToken,
		Status: automation.OutcomeCompleted, ErrorCode: automation.CodeDeliveryUnknown,
		Deliveries: []automation.DeliveryResult{{IdempotencyKey: intent.IdempotencyKey, Status: "unknown"}}})[0].Applied)
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var b bytes.Buffer
	require.NoError(t, writeUnknownDeliveries(ctx, conn, 10, &b))
	out := b.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	assert.Len(t, strings.Fields(lines[1]), len(strings.Fields(lines[0]))+1, "one value a column (created_at is two words)")
	assert.Contains(t, lines[0], "recipient")
	assert.Contains(t, lines[1], "a…@c….test")
	assert.Contains(t, lines[1], intent.IdempotencyKey)
	assert.NotContains(t, out, "ada@client.test")
	assert.Contains(t, lines[2], "dueflow settle <id>")
	id := uuid.MustParse(strings.Fields(lines[1])[0])

	b.Reset()
	require.NoError(t, settleDelivery(ctx, conn, settleOptions{Delivery: id, Sent: true, By: "ops"}, &b))
	assert.Equal(t, "settled "+id.String()+" as sent by ops (execution "+execs[0].String()+")\n", b.String())
	assert.Equal(t, "sent ops", pgtest.Text(t, pool, `select status || ' ' || settled_by from automation_deliveries where id = $1`, id))

	b.Reset()
	err = settleDelivery(ctx, conn, settleOptions{Delivery: id, Sent: false, By: "ops"}, &b)
	assert.Equal(t, exitCode(1), err)
	assert.Equal(t, "not settled: "+id.String()+" (status sent): it was settled before\n", b.String())
	// both recorded with who did it, as the console's buttons are
	assert.Equal(t, "settle_sent ops true, settle_not_sent ops false", pgtest.Text(t, pool,
		`select string_agg(action || ' ' || actor || ' ' || applied, ', ' order by id) from automation_operator_actions where delivery_id = $1`, id))

	b.Reset()
	require.NoError(t, writeUnknownDeliveries(ctx, conn, 10, &b))
	assert.Equal(t, "(none)", strings.Split(strings.TrimRight(b.String(), "\n"), "\n")[1])
}
