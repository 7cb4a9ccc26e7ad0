package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestDemoSummary(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	require.NoError(t, demodata.Seed(ctx, pool, time.Now()))
	for _, q := range cycleJobs[:3] {
		_, err := pool.Exec(ctx, q.SQL)
		require.NoError(t, err)
	}
	// Rows of another organisation are not counted.
	_, err := pool.Exec(ctx, `
insert into organizations (id, name, timezone) values ('00000000-0000-4000-8000-000000000001', 'Other', 'UTC');
insert into automation_workflows (id, organization_id, name, trigger_type) values
  ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'x', 'scheduled');
insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, status)
values ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'run-workflow', 'scheduled', 'k', 'organization', 'completed')`)
	require.NoError(t, err)
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)

	s, err := readSummary(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, 15, s.Executions)
	assert.Equal(t, 15, s.Open())
	assert.Equal(t, "demo: 15 executions: 0 completed, 0 skipped, 0 failed; 0 emails, 0 sms sent", s.Line())
	assert.Len(t, s.Rows, len(demodata.Data().Workflows), "one row per demo workflow, with or without executions")

	// Finish the invoice reminders: two completed with an email and an SMS
	// sent, one skipped, the rest failed.
	_, err = pool.Exec(ctx, `
with inv as (
  select id, row_number() over (order by occurrence_key) as n
    from automation_execution_logs where action = 'invoice-reminder')
update automation_execution_logs l
   set status = case when inv.n <= 2 then 'completed' when inv.n = 3 then 'skipped' else 'failed' end,
       completed_at = now()
  from inv where inv.id = l.id`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
insert into automation_deliveries (execution_id, organization_id, channel, recipient, idempotency_key, status, sent_at)
select l.id, l.organization_id, c.channel, 'r', l.id || ':' || c.step || ':' || c.channel, c.status, now()
  from automation_execution_logs l
 cross join (values (0, 'email', 'sent'), (2, 'sms', 'sent'), (3, 'sms', 'failed')) c(step, channel, status)
 where l.status = 'completed'`)
	require.NoError(t, err)

	s, err = readSummary(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, "demo: 15 executions: 2 completed, 1 skipped, 4 failed; 2 emails, 2 sms sent", s.Line())
	assert.Equal(t, 8, s.Open())

	var b bytes.Buffer
	require.NoError(t, s.writeTable(&b))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	assertAligned(t, lines)
	assert.Regexp(t, `^ORGANISATION\s+WORKFLOW\s+TRIGGER\s+EXECUTIONS\s+COMPLETED\s+SKIPPED\s+FAILED\s+OPEN\s+EMAILS\s+SMS$`, lines[0])
	assert.Regexp(t, `^Brightside Plumbing\s+Overdue invoice: email, then SMS a minute later\s+invoice_overdue\s+4\s+`, lines[2])
}

// The opt-out line counts the demo organisations' link opt-outs, STOPped
// numbers and bounced addresses, and nothing of another organisation.
func TestDemoOptOuts(t *testing.T) {
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	conn, err := connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	o, err := readOptOuts(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, "opt-outs: 0 unsubscribe, 0 STOP, 0 bounce suppressed", o.Line())

	demo, other := demodata.OrgIDs[0], "00000000-0000-4000-8000-000000000001"
	_, err = pool.Exec(ctx, `
insert into automation_opt_outs (organization_id, client_id, channel, source) values
  ($1, 'c1', 'email', 'link'), ($1, 'c2', 'email', 'mailgun'), ($2, 'c1', 'email', 'link')`, demo, other)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
insert into automation_suppressions (organization_id, channel, address, reason, provider) values
  ($1, 'sms', '+12125550101', 'opted_out', 'telnyx'), ($1, 'sms', '+12125550102', 'bounced', 'telnyx'),
  ($1, 'email', 'a@example.com', 'bounced', 'mailgun'), ($1, 'email', 'b@example.com', 'complained', 'mailgun'),
  ($2, 'sms', '+12125550103', 'opted_out', 'telnyx')`, demo, other)
	require.NoError(t, err)
	o, err = readOptOuts(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, "opt-outs: 1 unsubscribe, 1 STOP, 2 bounce suppressed", o.Line())
}
