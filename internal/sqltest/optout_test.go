package sqltest_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// providerEvent is one element of automation_record_provider_events'
// p_events (the JSON of shared/providerevents.Event).
type providerEvent struct {
	Kind              string `json:"kind"`
	Provider          string `json:"provider"`
	EventID           string `json:"event_id"`
	OrganizationID    string `json:"organization_id,omitempty"`
	ClientID          string `json:"client_id,omitempty"`
	Channel           string `json:"channel"`
	Address           string `json:"address,omitempty"`
	Sender            string `json:"sender,omitempty"`
	ProviderMessageID string `json:"provider_message_id,omitempty"`
	Status            string `json:"status,omitempty"`
	Permanent         bool   `json:"permanent,omitempty"`
	Reason            string `json:"reason,omitempty"`
	OccurredAt        string `json:"occurred_at,omitempty"`
}

type eventCounts struct {
	Recorded   int `json:"recorded"`
	Duplicates int `json:"duplicates"`
	Unmatched  int `json:"unmatched"`
	Invalid    int `json:"invalid"`
}

func recordEvents(t *testing.T, db pgtest.DB, evs ...any) eventCounts {
	t.Helper()
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	return pgtest.JSON[eventCounts](t, db, `select automation_record_provider_events($1::jsonb)`, string(b))
}

// sentDelivery claims one execution of the action, begins a delivery to
// recipient over channel and finishes it sent with the provider's message id.
func sentDelivery(t *testing.T, db pgtest.DB, exec uuid.UUID, action string, channel automation.Channel, recipient, provider, msgID string, notice bool) {
	t.Helper()
	got := pgtest.ClaimDue(t, db, action, []uuid.UUID{exec}, 60)
	require.Len(t, got, 1)
	in := automation.DeliveryIntent{ExecutionID: exec, LeaseToken: got[0].Execution.LeaseToken, Channel: channel,
		Recipient: recipient, Provider: provider, IdempotencyKey: automation.IdempotencyKey(exec, 0, channel),
		Sender: "+15555550999", OptOutNotice: notice}
	require.Equal(t, "new", string(pgtest.RecordDeliveries(t, db, nil, in)[0].State))
	fin := finishedAs(in, automation.DeliveryResult{Status: "sent", ProviderMessageID: msgID})
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{fin})
	pgtest.Report(t, db, automation.Outcome{ExecutionID: exec, LeaseToken: got[0].Execution.LeaseToken, Status: "completed", ActionsExecuted: 1})
}

// An overdue invoice of a new organisation with its client and execution.
func optoutSetup(t *testing.T, db pgtest.DB, email, phone string) (org, client, wf, exec uuid.UUID) {
	t.Helper()
	org = pgtest.AllDayOrg(t, db)
	client = pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: email, Phone: phone})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3})
	wf = pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`))
	execs := pgtest.ExecutionIDs(t, db, wf)
	require.Len(t, execs, 1)
	return org, client, wf, execs[0]
}

// The unsubscribe link: the token's client of the token's organisation opts
// out (and back in); a repeat is a duplicate; a client of another
// organisation is unmatched and changes nothing.
func TestProviderEventsLinkOptOut(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	orgA, clientA, _, execA := optoutSetup(t, db, "ada@a.test", "+15555550123")
	orgB, clientB, _, _ := optoutSetup(t, db, "bob@b.test", "+15555550124")
	optOuts := func(org uuid.UUID) int {
		return pgtest.Int(t, db, `select count(*)::int from automation_opt_outs where organization_id = $1`, org)
	}
	link := providerEvent{Kind: "opt_out", Provider: "link", EventID: "sha-1", OrganizationID: orgA.String(),
		ClientID: clientA.String(), Channel: "email"}
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, link))
	assert.Equal(t, eventCounts{Duplicates: 1}, recordEvents(t, db, link), "same event id: a duplicate")
	assert.Equal(t, 1, optOuts(orgA))

	// a token naming org A with org B's client: nothing changes anywhere
	cross := providerEvent{Kind: "opt_out", Provider: "link", EventID: "sha-2", OrganizationID: orgA.String(),
		ClientID: clientB.String(), Channel: "email"}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, cross))
	assert.Equal(t, 1, optOuts(orgA))
	assert.Zero(t, optOuts(orgB))

	// the claim carries it, and the class
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{execA}, 60)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Consent)
	assert.Equal(t, []automation.Channel{"email"}, got[0].Consent.OptedOut)
	assert.Equal(t, automation.ClassTransactional, got[0].Workflow.MessageClass)

	in := link
	in.Kind, in.EventID = "opt_in", "sha-3"
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, in))
	assert.Zero(t, optOuts(orgA))
}

// SMS STOP: the number is suppressed for the organisations that texted it
// (not for another organisation that has a client with that number); START
// lifts it.
func TestProviderEventsSMSKeywords(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	const number = "+15555550123"
	orgA, _, _, execA := optoutSetup(t, db, "ada@a.test", number)
	orgB, _, _, execB := optoutSetup(t, db, "ada@b.test", "(555) 555-0123")
	sentDelivery(t, db, execA, automation.ActionInvoiceReminder, "sms", number, "twilio", "SM1", false)
	suppressed := func(org uuid.UUID) int {
		return pgtest.Int(t, db, `select count(*)::int from automation_suppressions
			where organization_id = $1 and channel = 'sms' and reason = 'opted_out'`, org)
	}
	stop := providerEvent{Kind: "opt_out", Provider: "twilio", EventID: "SMstop", Channel: "sms", Address: number, Sender: "+15555550999"}
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, stop))
	assert.Equal(t, 1, suppressed(orgA))
	assert.Zero(t, suppressed(orgB), "org B never texted the number")

	// another sender's STOP does not reach org A (the ledger knows A's sender)
	other := providerEvent{Kind: "opt_out", Provider: "twilio", EventID: "SMother", Channel: "sms", Address: "+15555550177"}
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, other))

	// org B's claim of a client with the same number, written otherwise: a
	// candidate only in B's own suppressions (none)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{execB}, 60)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Consent)
	assert.Empty(t, got[0].Consent.Blocked)

	start := providerEvent{Kind: "opt_in", Provider: "twilio", EventID: "SMstart", Channel: "sms", Address: number, Sender: "+15555550999"}
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, start))
	assert.Zero(t, suppressed(orgA))
}

// Delivery events set the ledger's delivery status (never moved back), are
// counted once per change in analytics, and a hard bounce or a complaint
// suppresses the address for that organisation only; the claim of the
// client's next reminder lists it.
func TestProviderEventsDelivery(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	orgA, clientA, wfA, execA := optoutSetup(t, db, "Ada <Ada@A.test>", "+15555550123")
	orgB, _, _, execB := optoutSetup(t, db, "ada@a.test", "+15555550124")
	sentDelivery(t, db, execA, automation.ActionInvoiceReminder, "email", "Ada@A.test", "mailgun", "m-a", false)
	sentDelivery(t, db, execB, automation.ActionInvoiceReminder, "email", "ada@a.test", "mailgun", "m-b", false)
	status := func(msgID string) string {
		return pgtest.Text(t, db, `select coalesce(delivery_status, '') || '/' || coalesce(delivery_reason, '')
			from automation_deliveries where provider_message_id = $1`, msgID)
	}
	counts := func(wf uuid.UUID) string {
		return pgtest.Text(t, db, `select format('%s %s %s %s %s %s', sum(sent), sum(delivered), sum(bounced), sum(complained),
			sum(unsubscribed), sum(undelivered)) from automation_delivery_analytics where workflow_id = $1`, wf)
	}
	dl := func(id, s string) providerEvent {
		return providerEvent{Kind: "delivery", Provider: "mailgun", EventID: id, Channel: "email", ProviderMessageID: "m-a",
			Address: "ada@a.test", Status: s, OccurredAt: "2026-12-01T10:00:00Z"}
	}

	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, dl("e1", "delivered")))
	assert.Equal(t, "delivered/", status("m-a"))
	assert.Equal(t, "", pgtest.Text(t, db, `select coalesce(delivery_status, '') from automation_deliveries where provider_message_id = 'm-b'`),
		"org B's delivery to the same address is untouched")
	// a late "deferred" does not move it back, and counts nothing
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, dl("e2", "deferred")))
	assert.Equal(t, "delivered/", status("m-a"))
	assert.Equal(t, "1 1 0 0 0 0", counts(wfA))

	// a complaint: suppressed for org A, not for org B
	c := dl("e3", "complained")
	c.Reason = "abuse report"
	assert.Equal(t, eventCounts{Recorded: 1, Duplicates: 1}, recordEvents(t, db, c, c))
	assert.Equal(t, "complained/abuse report", status("m-a"))
	assert.Equal(t, "1 1 0 1 0 0", counts(wfA))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_suppressions where organization_id = $1 and reason = 'complained'`, orgA))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_suppressions where organization_id = $1`, orgB))

	// an event whose recipient is not the ledger's: unmatched, changes nothing
	wrong := dl("e4", "bounced")
	wrong.Address = "someone@else.test"
	assert.Equal(t, eventCounts{Unmatched: 1}, recordEvents(t, db, wrong))
	assert.Equal(t, "complained/abuse report", status("m-a"))
	// unmatched events are not kept: the same id may match later
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from automation_provider_events where event_id = 'e4'`))

	// the next reminder's claim lists the suppression (the candidate by key)
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'pending', next_attempt_at = now() - interval '1 second',
		lease_token = null where id = $1`, execA)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{execA}, 60)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Consent)
	assert.Equal(t, []automation.Blocked{{Channel: "email", Address: "Ada@A.test", Reason: "complained"}}, got[0].Consent.Blocked)
	_ = clientA

	// health per organisation: complaint rate of org A
	assert.Equal(t, "100.000", pgtest.Text(t, db, `select complaint_rate::text from automation_delivery_health where organization_id = $1`, orgA))
}

// Every delivery status: a permanent bounce suppresses, a temporary one does
// not; undelivered counts; unsubscribed opts the message's client out.
func TestProviderEventsEveryDeliveryKind(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@a.test", Phone: "+15555550123"})
	for i := 0; i < 4; i++ {
		pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3})
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	require.Equal(t, 4, pgtest.Int(t, db, `select check_overdue_invoices()`))
	execs := pgtest.ExecutionIDs(t, db, wf)
	sentDelivery(t, db, execs[0], automation.ActionInvoiceReminder, "email", "ada@a.test", "mailgun", "soft", false)
	sentDelivery(t, db, execs[1], automation.ActionInvoiceReminder, "email", "ada@a.test", "mailgun", "hard", false)
	sentDelivery(t, db, execs[2], automation.ActionInvoiceReminder, "sms", "+15555550123", "telnyx", "sms-1", false)
	sentDelivery(t, db, execs[3], automation.ActionInvoiceReminder, "email", "ada@a.test", "mailgun", "unsub", false)
	ev := func(id, provider, channel, msg, status string, perm bool) providerEvent {
		return providerEvent{Kind: "delivery", Provider: provider, EventID: id, Channel: channel, ProviderMessageID: msg,
			Status: status, Permanent: perm}
	}
	n := recordEvents(t, db,
		ev("1", "mailgun", "email", "soft", "bounced", false),
		ev("2", "mailgun", "email", "hard", "bounced", true),
		ev("3", "telnyx", "sms", "sms-1", "undelivered", true),
		ev("4", "mailgun", "email", "unsub", "unsubscribed", false))
	assert.Equal(t, eventCounts{Recorded: 4}, n)
	assert.Equal(t, []string{"email bounced", "sms bounced"}, pgtest.JSON[[]string](t, db,
		`select coalesce(jsonb_agg(channel || ' ' || reason order by channel), '[]') from automation_suppressions where organization_id = $1`, org),
		"two suppressions: the permanent email bounce and the permanent SMS failure")
	assert.Equal(t, "4 0 2 0 1 1", pgtest.Text(t, db, `select format('%s %s %s %s %s %s', sum(sent), sum(delivered), sum(bounced),
		sum(complained), sum(unsubscribed), sum(undelivered)) from automation_delivery_analytics where workflow_id = $1`, wf))
	assert.Equal(t, []string{"email"}, pgtest.JSON[[]string](t, db,
		`select coalesce(jsonb_agg(channel), '[]') from automation_opt_outs where organization_id = $1 and client_id = $2::text`, org, client))
	// the recompute keeps the delivery figures
	pgtest.Int(t, db, `select update_automation_analytics()`)
	assert.Equal(t, 2, pgtest.Int(t, db, `select sum(bounced)::int from automation_analytics where workflow_id = $1`, wf))
}

// A malformed event fails alone: the others of the call are recorded.
func TestProviderEventsMalformedFailsAlone(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, client, _, _ := optoutSetup(t, db, "ada@a.test", "")
	good := providerEvent{Kind: "opt_out", Provider: "link", EventID: "ok", OrganizationID: org.String(), ClientID: client.String(), Channel: "email"}
	n := recordEvents(t, db,
		map[string]any{"kind": "opt_out", "provider": "link", "event_id": "bad-org", "organization_id": "not-a-uuid", "client_id": "x", "channel": "email"},
		good,
		map[string]any{"kind": "delivery", "provider": "mailgun", "event_id": "bad-time", "channel": "email",
			"provider_message_id": "m", "status": "delivered", "occurred_at": "the day before"},
		"not an object",
		map[string]any{"kind": "explode", "provider": "x", "event_id": "y", "channel": "email"},
		map[string]any{"kind": "delivery", "provider": "mailgun", "event_id": "bad-status", "channel": "email",
			"provider_message_id": "m", "status": "opened"},
	)
	assert.Equal(t, eventCounts{Recorded: 1, Invalid: 5}, n)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_opt_outs`))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_provider_events`))

	var code string
	_, err := db.Exec(bg, `select automation_record_provider_events('{}'::jsonb)`)
	require.Error(t, err)
	code = err.Error()
	assert.Contains(t, code, "must be a JSON array")
}

// An SMS sent with the opt-out instruction records its number as told; the
// next claim lists it (told within 30 days); an SMS without it does not.
func TestSMSNoticeRecordedWhenSent(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, wf, exec := optoutSetup(t, db, "", "+15555550123")
	sentDelivery(t, db, exec, automation.ActionInvoiceReminder, "sms", "+15555550123", "twilio", "SM9", true)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_sms_notices where organization_id = $1
		and address = '+15555550123' and told_at > now() - interval '1 minute'`, org))
	assert.Equal(t, "+15555550999", pgtest.Text(t, db, `select sender from automation_deliveries where provider_message_id = 'SM9'`))

	pgtest.Exec(t, db, `update automation_execution_logs set status = 'pending', next_attempt_at = now() - interval '1 second',
		lease_token = null where workflow_id = $1`, wf)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{exec}, 60)
	require.Len(t, got, 1)
	assert.Equal(t, []string{"+15555550123"}, got[0].Consent.SMSTold)

	// older than 30 days: due again
	pgtest.Exec(t, db, `update automation_sms_notices set told_at = now() - interval '31 days'`)
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'pending', next_attempt_at = now() - interval '1 second',
		lease_token = null where workflow_id = $1`, wf)
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{exec}, 60)
	require.Len(t, got, 1)
	assert.Empty(t, got[0].Consent.SMSTold)
}

// The message class: the trigger type's default, or the workflow's
// trigger_config.message_class (validated by the rules).
func TestMessageClass(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	for tt, want := range map[string]string{"invoice_overdue": "transactional", "appointment": "transactional",
		"maintenance_due": "non_transactional", "stale_job": "non_transactional", "scheduled": "non_transactional"} {
		assert.Equal(t, want, pgtest.Text(t, db, `select automation_message_class($1, '{}')`, tt), tt)
		assert.Equal(t, automation.DefaultMessageClass(tt), want, tt)
	}
	assert.Equal(t, "non_transactional", pgtest.Text(t, db,
		`select automation_message_class('invoice_overdue', '{"message_class":"non_transactional"}')`))

	org := pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@a.test"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30],"message_class":"non_transactional"}`})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`))
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, pgtest.ExecutionIDs(t, db, wf), 60)
	require.Len(t, got, 1)
	assert.Equal(t, automation.ClassNonTransactional, got[0].Workflow.MessageClass)

	_, err := db.Exec(bg, `insert into automation_workflows (organization_id, name, trigger_type, trigger_config, steps)
		values ($1, 'x', 'maintenance_due', '{"months_after_service":6,"message_class":"marketing"}', '[]')`, org)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "trigger_config.message_class")
}

// Members read their own organisation's opt-outs and suppressions only;
// they write nothing.
func TestOptOutTablesRLS(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	for _, tbl := range []string{"automation_opt_outs", "automation_suppressions", "automation_sms_notices", "automation_provider_events"} {
		assert.True(t, pgtest.Int(t, db, `select relrowsecurity::int from pg_class where oid = $1::regclass`, tbl) == 1, tbl)
	}
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from information_schema.role_table_grants
		where table_name in ('automation_opt_outs', 'automation_suppressions', 'automation_sms_notices', 'automation_provider_events')
		  and grantee in ('anon', 'authenticated') and privilege_type <> 'SELECT'`))
	assert.Zero(t, pgtest.Int(t, db, `select count(*)::int from information_schema.role_table_grants
		where table_name = 'automation_provider_events' and grantee in ('anon', 'authenticated')`))
	assert.False(t, pgtest.Int(t, db, `select has_function_privilege('authenticated', 'automation_record_provider_events(jsonb)', 'execute')::int`) == 1)
}

// Applied events are remembered 90 days: older ones are dropped by a later
// call, a recent one stays a duplicate.
func TestProviderEventsRetention(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, client, _, _ := optoutSetup(t, db, "ada@a.test", "")
	ev := providerEvent{Kind: "opt_out", Provider: "link", EventID: "old", OrganizationID: org.String(), ClientID: client.String(), Channel: "email"}
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, ev))
	pgtest.Exec(t, db, `update automation_provider_events set received_at = now() - interval '91 days'`)
	ev2 := ev
	ev2.EventID = "new"
	assert.Equal(t, eventCounts{Recorded: 1}, recordEvents(t, db, ev2))
	assert.Equal(t, []string{"new"}, pgtest.JSON[[]string](t, db, `select jsonb_agg(event_id) from automation_provider_events`))
	assert.Equal(t, eventCounts{Duplicates: 1}, recordEvents(t, db, ev2))
}
