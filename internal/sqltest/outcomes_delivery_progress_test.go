package sqltest_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// deliveryState is a ledger row as the tests compare it.
type deliveryState struct {
	Status, MessageID, ErrorCode string
	Retryable, SentAt            bool
}

func delivery(t testing.TB, db pgtest.DB, key string) deliveryState {
	t.Helper()
	var d deliveryState
	require.NoError(t, db.QueryRow(bg, `select status, coalesce(provider_message_id, ''), coalesce(error_code, ''), retryable, sent_at is not null
		from automation_deliveries where idempotency_key = $1`, key).Scan(&d.Status, &d.MessageID, &d.ErrorCode, &d.Retryable, &d.SentAt))
	return d
}

func finishedAs(intent automation.DeliveryIntent, res automation.DeliveryResult) automation.DeliveryFinished {
	res.IdempotencyKey = intent.IdempotencyKey
	return automation.DeliveryFinished{ExecutionID: intent.ExecutionID, LeaseToken: intent.LeaseToken, DeliveryResult: res}
}

// automation_record_deliveries finishes the chunk before (fenced by the
// lease like the report, never downgrading sent, each sent counted once)
// and begins the next, in one call.
func TestRecordDeliveries(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 2)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := map[uuid.UUID]uuid.UUID{}
	for _, c := range got {
		tok[c.Execution.ID] = c.Execution.LeaseToken
	}
	a, b := execs[0], execs[1]
	emailA, emailB := deliveryFor(a, tok[a]), deliveryFor(b, tok[b])
	smsA := automation.DeliveryIntent{ExecutionID: a, LeaseToken: tok[a], StepIndex: 1, Channel: "sms", Recipient: "+15555550123",
		Provider: "telnyx", IdempotencyKey: automation.IdempotencyKey(a, 1, "sms")}
	emailsSent := func() int {
		return pgtest.Int(t, db, `select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`, wf)
	}

	// the first chunk: nothing to finish
	bg1 := pgtest.RecordDeliveries(t, db, nil, emailA, emailB)
	assert.Equal(t, []automation.BeginState{"new", "new"}, []automation.BeginState{bg1[0].State, bg1[1].State})

	// the next chunk finishes it: A sent, B failed (retryable)
	bg2 := pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(emailA, automation.DeliveryResult{Status: "sent", Provider: "smtp", ProviderMessageID: "m-a"}),
		finishedAs(emailB, automation.DeliveryResult{Status: "failed", ErrorCode: "provider_unavailable", ErrorMessage: "503", Retryable: true}),
	}, smsA)
	assert.Equal(t, automation.BeginNew, bg2[0].State)
	assert.Equal(t, deliveryState{Status: "sent", MessageID: "m-a", SentAt: true}, delivery(t, db, emailA.IdempotencyKey))
	assert.Equal(t, deliveryState{Status: "failed", ErrorCode: "provider_unavailable", Retryable: true}, delivery(t, db, emailB.IdempotencyKey))
	assert.Equal(t, 1, emailsSent(), "counted when it became sent")

	// never downgraded, counted once: a later finish, and the report
	// listing every delivery again
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(emailA, automation.DeliveryResult{Status: "unknown", ErrorCode: "timeout"}),
		finishedAs(emailA, automation.DeliveryResult{Status: "sent", ProviderMessageID: "m-other"}),
	})
	assert.Equal(t, deliveryState{Status: "sent", MessageID: "m-a", SentAt: true}, delivery(t, db, emailA.IdempotencyKey))
	r := pgtest.Report(t, db, automation.Outcome{ExecutionID: a, LeaseToken: tok[a], Status: automation.OutcomeRetry,
		ErrorCode: "provider_unavailable", Deliveries: []automation.DeliveryResult{
			{IdempotencyKey: emailA.IdempotencyKey, Status: "sent", ProviderMessageID: "m-a"},
			{IdempotencyKey: smsA.IdempotencyKey, Status: "failed", ErrorCode: "provider_unavailable", Retryable: true},
		}})
	require.True(t, r[0].Applied)
	assert.Equal(t, 1, emailsSent())

	// fenced: A's lease is released (a stale finish changes nothing), and
	// a delivery is only finished under its own execution's lease
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{
		finishedAs(smsA, automation.DeliveryResult{Status: "sent", ProviderMessageID: "late"}),
	})
	assert.Equal(t, "failed", delivery(t, db, smsA.IdempotencyKey).Status, "finished after the lease was released")
	foreign := finishedAs(smsA, automation.DeliveryResult{Status: "sent"})
	foreign.ExecutionID, foreign.LeaseToken = b, tok[b]
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{foreign})
	assert.Equal(t, "failed", delivery(t, db, smsA.IdempotencyKey).Status, "finished under another execution's lease")
	wrongToken := finishedAs(emailB, automation.DeliveryResult{Status: "sent"})
	wrongToken.LeaseToken = uuid.New()
	pgtest.RecordDeliveries(t, db, []automation.DeliveryFinished{wrongToken})
	assert.Equal(t, "failed", delivery(t, db, emailB.IdempotencyKey).Status, "finished with a token that is not the lease")
	assert.Equal(t, 1, emailsSent())
	assert.Zero(t, pgtest.Int(t, db, `select update_automation_analytics()`), "analytics already match the ledger")
}

// Wrong shapes: elements the finish cannot use are ignored and the begin
// answers as automation_begin_deliveries does (invalid intents answered,
// not raised); NULL is empty; only a parameter that is not an array raises,
// as the old function did.
func TestRecordDeliveriesWrongShapes(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, db, 1)
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	ok := deliveryFor(execs[0], got[0].Execution.LeaseToken)
	noRecipient := ok
	noRecipient.Recipient, noRecipient.IdempotencyKey = "", automation.IdempotencyKey(execs[0], 1, "email")
	b := pgtest.RecordDeliveries(t, db, nil, ok, noRecipient)
	assert.Equal(t, []automation.BeginState{"new", "invalid"}, []automation.BeginState{b[0].State, b[1].State})

	odd := `[1, "x", null, [], {"status": "sent"},
		{"execution_id": "nope", "lease_token": "nope", "idempotency_key": "` + ok.IdempotencyKey + `", "status": "sent"},
		{"execution_id": "` + execs[0].String() + `", "lease_token": "` + ok.LeaseToken.String() + `", "idempotency_key": "` + ok.IdempotencyKey + `", "status": "sending"},
		{"execution_id": "` + execs[0].String() + `", "lease_token": "` + ok.LeaseToken.String() + `", "idempotency_key": "` + ok.IdempotencyKey + `", "status": "bogus", "retryable": "yes"}]`
	ans := pgtest.JSON[[]automation.DeliveryBegun](t, db, `select automation_record_deliveries($1::jsonb, '[]')`, odd)
	assert.Empty(t, ans)
	assert.Equal(t, "sending", delivery(t, db, ok.IdempotencyKey).Status, "nothing usable to finish")
	assert.Equal(t, "[]", pgtest.Text(t, db, `select automation_record_deliveries(null, null)::text`))
	assert.Equal(t, "[]", pgtest.Text(t, db, `select automation_record_deliveries()::text`))
	// a non-boolean retryable is false, not an error
	pgtest.JSON[[]automation.DeliveryBegun](t, db, `select automation_record_deliveries($1::jsonb)`,
		`[{"execution_id": "`+execs[0].String()+`", "lease_token": "`+ok.LeaseToken.String()+`", "idempotency_key": "`+ok.IdempotencyKey+`", "status": "failed", "retryable": "yes"}]`)
	assert.Equal(t, deliveryState{Status: "failed"}, delivery(t, db, ok.IdempotencyKey))

	for _, q := range []string{
		`select automation_record_deliveries('{}', '[]')`,
		`select automation_record_deliveries('[]', '"x"')`,
	} {
		_, err := db.Exec(bg, q)
		require.Error(t, err, q)
		assert.Contains(t, err.Error(), "must be a JSON array")
	}
}

// unknownDeliveries reads automation_unknown_deliveries.
func unknownDeliveries(t testing.TB, db *pgxpool.Pool) []map[string]any {
	t.Helper()
	rows, err := db.Query(bg, `select * from automation_unknown_deliveries order by created_at, id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToMap)
	require.NoError(t, err)
	return out
}

// settle calls automation_settle_delivery.
func settle(t testing.TB, db pgtest.DB, id uuid.UUID, sent *bool, by string) map[string]any {
	t.Helper()
	return pgtest.JSON[map[string]any](t, db, `select automation_settle_delivery($1, $2, $3)`, id, sent, by)
}

func deliveryID(t testing.TB, db pgtest.DB, key string) uuid.UUID {
	t.Helper()
	return pgtest.JSON[uuid.UUID](t, db, `select to_jsonb(id) from automation_deliveries where idempotency_key = $1`, key)
}

// Operators list the deliveries whose fate is unknown (recipient masked)
// and settle them: sent (counted once), or not sent (re-armed for an
// execution still pending); who and when are recorded; a completed
// execution flagged only for them loses delivery_unknown once none is
// left. Anything else is refused with a reason.
func TestSettleDelivery(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 5)
	two, one, pending, running, cancelled := execs[0], execs[1], execs[2], execs[3], execs[4]
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := map[uuid.UUID]uuid.UUID{}
	for _, c := range got {
		tok[c.Execution.ID] = c.Execution.LeaseToken
	}
	email := func(id uuid.UUID) automation.DeliveryIntent {
		d := deliveryFor(id, tok[id])
		d.Recipient = "ada@client.test"
		return d
	}
	smsTwo := automation.DeliveryIntent{ExecutionID: two, LeaseToken: tok[two], StepIndex: 1, Channel: "sms", Recipient: "+15555550123",
		Provider: "telnyx", IdempotencyKey: automation.IdempotencyKey(two, 1, "sms")}
	pgtest.RecordDeliveries(t, db, nil, email(two), smsTwo, email(one), email(pending), email(running), email(cancelled))
	unknown := func(d automation.DeliveryIntent) automation.DeliveryResult {
		return automation.DeliveryResult{IdempotencyKey: d.IdempotencyKey, Status: "unknown", ErrorCode: "timeout"}
	}
	rep := pgtest.Report(t, db,
		automation.Outcome{ExecutionID: two, LeaseToken: tok[two], Status: automation.OutcomeCompleted, ErrorCode: automation.CodeDeliveryUnknown,
			Deliveries: []automation.DeliveryResult{unknown(email(two)), unknown(smsTwo)}},
		automation.Outcome{ExecutionID: one, LeaseToken: tok[one], Status: automation.OutcomeCompleted, ErrorCode: automation.CodeDeliveryUnknown,
			Deliveries: []automation.DeliveryResult{unknown(email(one))}},
		automation.Outcome{ExecutionID: pending, LeaseToken: tok[pending], Status: automation.OutcomeRetry, ErrorCode: "timeout",
			Deliveries: []automation.DeliveryResult{unknown(email(pending))}})
	for _, r := range rep {
		require.True(t, r.Applied)
	}
	require.True(t, operate(t, db, `select automation_cancel_execution($1)`, cancelled).Applied) // its delivery stays sending

	// the list: unknown ones, and the one left sending by a cancelled
	// execution; not the one its running function may still finish
	list := unknownDeliveries(t, db)
	require.Len(t, list, 5)
	byExec := map[uuid.UUID]int{}
	for _, row := range list {
		byExec[uuid.UUID(row["execution_id"].([16]byte))]++
		assert.Equal(t, wfBytes(wf), row["workflow_id"])
		for col, v := range row {
			s, isText := v.(string)
			assert.False(t, isText && (strings.Contains(s, "ada@") || strings.Contains(s, "client.test") || strings.Contains(s, "5550123")),
				"%s shows the recipient: %q", col, s)
		}
		assert.Contains(t, []string{"a…@c….test", "…23"}, row["recipient"])
		assert.NotNil(t, row["age"])
		assert.NotNil(t, row["organization_id"])
	}
	assert.Equal(t, map[uuid.UUID]int{two: 2, one: 1, pending: 1, cancelled: 1}, byExec)
	for _, row := range list {
		if uuid.UUID(row["execution_id"].([16]byte)) == cancelled {
			assert.Equal(t, "sending", row["status"])
			assert.Equal(t, "cancelled", row["execution_status"])
		}
	}

	yes, no := true, false
	reason := func(m map[string]any) any { return m["reason"] }
	// refused: a delivery its running function may still finish, no
	// decision, nobody named, unknown id
	assert.Equal(t, "execution_running", reason(settle(t, db, deliveryID(t, db, email(running).IdempotencyKey), &yes, "ops")))
	assert.Equal(t, "missing_decision", reason(settle(t, db, deliveryID(t, db, email(one).IdempotencyKey), nil, "ops")))
	assert.Equal(t, "missing_by", reason(settle(t, db, deliveryID(t, db, email(one).IdempotencyKey), &yes, "  ")))
	assert.Equal(t, "not_found", reason(settle(t, db, uuid.New(), &yes, "ops")))
	assert.Equal(t, string(automation.CodeDeliveryUnknown), *execution(t, db, one).ErrorCode, "a refusal changes nothing")

	// sent: counted once, who and when recorded, the execution's flag cleared
	countBefore := pgtest.Int(t, db, `select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`, wf)
	id := deliveryID(t, db, email(one).IdempotencyKey)
	ans := settle(t, db, id, &yes, " ops on call ")
	assert.Equal(t, map[string]any{"delivery_id": id.String(), "execution_id": one.String(), "applied": true, "status": "sent"}, ans)
	assert.Equal(t, deliveryState{Status: "sent", SentAt: true}, delivery(t, db, email(one).IdempotencyKey))
	assert.Equal(t, "ops on call", pgtest.Text(t, db, `select settled_by from automation_deliveries where id = $1`, id))
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*) from automation_deliveries where id = $1 and settled_at > now() - interval '1 minute'`, id))
	assert.Equal(t, countBefore+1, pgtest.Int(t, db, `select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`, wf))
	row := execution(t, db, one)
	assert.Equal(t, "completed", row.Status)
	assert.Nil(t, row.ErrorCode, "its only problem was settled sent")
	assert.Equal(t, "already_settled", reason(settle(t, db, id, &yes, "ops")))
	assert.Equal(t, "already_settled", reason(settle(t, db, id, &no, "ops")), "settled once")
	assert.Equal(t, countBefore+1, pgtest.Int(t, db, `select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`, wf))

	// two unknown deliveries: flagged until both are settled; one not sent
	assert.True(t, settle(t, db, deliveryID(t, db, email(two).IdempotencyKey), &yes, "ops")["applied"].(bool))
	assert.Equal(t, string(automation.CodeDeliveryUnknown), *execution(t, db, two).ErrorCode, "one still unknown")
	assert.True(t, settle(t, db, deliveryID(t, db, smsTwo.IdempotencyKey), &no, "ops")["applied"].(bool))
	assert.Equal(t, deliveryState{Status: "failed", ErrorCode: string(automation.CodeSettledNotSent)}, delivery(t, db, smsTwo.IdempotencyKey),
		"not re-armed: its execution is finished")
	row = execution(t, db, two)
	assert.Equal(t, "completed", row.Status)
	assert.Equal(t, string(automation.CodeSettledNotSent), *row.ErrorCode)

	// not sent, execution still pending: re-armed, sent by its next attempt
	assert.True(t, settle(t, db, deliveryID(t, db, email(pending).IdempotencyKey), &no, "ops")["applied"].(bool))
	assert.Equal(t, deliveryState{Status: "failed", ErrorCode: string(automation.CodeSettledNotSent), Retryable: true}, delivery(t, db, email(pending).IdempotencyKey))
	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{pending}, 60)
	again := email(pending)
	again.LeaseToken = got[0].Execution.LeaseToken
	assert.Equal(t, automation.BeginNew, pgtest.RecordDeliveries(t, db, nil, again)[0].State)

	// left sending by a cancelled execution: settled; the execution keeps its code
	assert.True(t, settle(t, db, deliveryID(t, db, email(cancelled).IdempotencyKey), &yes, "ops")["applied"].(bool))
	assert.Equal(t, "cancelled", *execution(t, db, cancelled).ErrorCode)

	assert.Equal(t, "execution_running", reason(settle(t, db, deliveryID(t, db, again.IdempotencyKey), &yes, "ops")))
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: pending, LeaseToken: again.LeaseToken, Status: automation.OutcomeCompleted,
		Deliveries: []automation.DeliveryResult{{IdempotencyKey: again.IdempotencyKey, Status: "sent", ProviderMessageID: "m-p"}}})[0].Applied)
	assert.Equal(t, "sent", delivery(t, db, again.IdempotencyKey).Status)
	// a delivery whose fate is known is not settled
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: running, LeaseToken: tok[running], Status: automation.OutcomeCompleted,
		Deliveries: []automation.DeliveryResult{{IdempotencyKey: email(running).IdempotencyKey, Status: "sent"}}})[0].Applied)
	assert.Equal(t, "not_unknown", reason(settle(t, db, deliveryID(t, db, email(running).IdempotencyKey), &no, "ops")))
	assert.Equal(t, "sent", delivery(t, db, email(running).IdempotencyKey).Status)
	assert.Empty(t, unknownDeliveries(t, db))
	assert.Zero(t, pgtest.Int(t, db, `select update_automation_analytics()`), "analytics already match the ledger")
}

func TestMaskRecipient(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	for in, want := range map[string]string{
		"ada@client.test":         "a…@c….test",
		"x@localhost":             "x…@l…",
		"Ada.Lovelace@mail.co.uk": "A…@m….uk",
		"+15555550123":            "…23",
		"":                        "",
	} {
		assert.Equal(t, want, pgtest.Text(t, db, `select automation_mask_recipient($1)`, in), in)
	}
	assert.Equal(t, "", pgtest.Text(t, db, `select automation_mask_recipient(null)`))
}

// A completed execution whose delivery was settled not sent is retried from
// that step: the settled delivery is sent again, a later step already sent
// is not (the ledger answers sent), and the execution is counted once.
// One still flagged delivery_unknown (not settled yet) is refused.
func TestRetrySettledNotSent(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 2)
	id, unsettled := execs[0], execs[1]
	got := pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, execs, 60)
	tok := map[uuid.UUID]uuid.UUID{}
	for _, c := range got {
		tok[c.Execution.ID] = c.Execution.LeaseToken
	}
	step := func(exec uuid.UUID, i int, channel automation.Channel, recipient string) automation.DeliveryIntent {
		return automation.DeliveryIntent{ExecutionID: exec, LeaseToken: tok[exec], StepIndex: i, Channel: channel, Recipient: recipient,
			Provider: "p", IdempotencyKey: automation.IdempotencyKey(exec, i, channel)}
	}
	first, sms, last := step(id, 0, "email", "ada@client.test"), step(id, 1, "sms", "+15555550123"), step(id, 2, "email", "ada@client.test")
	other := step(unsettled, 0, "email", "bob@client.test")
	pgtest.RecordDeliveries(t, db, nil, first, sms, last, other)
	rep := pgtest.Report(t, db,
		automation.Outcome{ExecutionID: id, LeaseToken: tok[id], Status: automation.OutcomeCompleted, ErrorCode: automation.CodeDeliveryUnknown,
			Deliveries: []automation.DeliveryResult{
				{IdempotencyKey: first.IdempotencyKey, Status: "sent"},
				{IdempotencyKey: sms.IdempotencyKey, Status: "unknown", ErrorCode: "timeout"},
				{IdempotencyKey: last.IdempotencyKey, Status: "sent"}}},
		automation.Outcome{ExecutionID: unsettled, LeaseToken: tok[unsettled], Status: automation.OutcomeCompleted, ErrorCode: automation.CodeDeliveryUnknown,
			Deliveries: []automation.DeliveryResult{{IdempotencyKey: other.IdempotencyKey, Status: "unknown", ErrorCode: "timeout"}}})
	require.True(t, rep[0].Applied && rep[1].Applied)
	counts := func() [4]int {
		return [4]int{
			pgtest.Int(t, db, `select execution_count from automation_workflows where id = $1`, wf),
			pgtest.Int(t, db, `select success_count from automation_workflows where id = $1`, wf),
			pgtest.Int(t, db, `select coalesce(sum(execution_count), 0) from automation_analytics where workflow_id = $1`, wf),
			pgtest.Int(t, db, `select coalesce(sum(success_count), 0) from automation_analytics where workflow_id = $1`, wf),
		}
	}
	require.Equal(t, [4]int{2, 2, 2, 2}, counts())

	// refused while a delivery is still unknown: settle it first
	assert.Equal(t, "not_finished", operate(t, db, `select automation_retry_execution($1)`, unsettled).Reason)
	assert.Equal(t, "not_finished", operate(t, db, `select automation_retry_execution($1)`, id).Reason)

	no := false
	require.True(t, settle(t, db, deliveryID(t, db, sms.IdempotencyKey), &no, "ops")["applied"].(bool))
	require.Equal(t, string(automation.CodeSettledNotSent), *execution(t, db, id).ErrorCode)
	pgtest.Exec(t, db, `update automation_execution_logs set deferrals = 3 where id = $1`, id)

	assert.Equal(t, automation.Reported{ExecutionID: id, Applied: true, Status: "pending"},
		operate(t, db, `select automation_retry_execution($1)`, id))
	row := execution(t, db, id)
	assert.Equal(t, "pending", row.Status)
	assert.Equal(t, 1, row.StepIndex, "from the step settled not sent")
	assert.Zero(t, row.Attempt)
	assert.Nil(t, row.ErrorCode)
	assert.Zero(t, pgtest.Int(t, db, `select deferrals from automation_execution_logs where id = $1`, id))
	assert.Equal(t, [4]int{1, 1, 1, 1}, counts(), "its outcome taken back")
	assert.Equal(t, deliveryState{Status: "failed", ErrorCode: string(automation.CodeSettledNotSent), Retryable: true}, delivery(t, db, sms.IdempotencyKey))
	assert.Equal(t, deliveryState{Status: "sent", SentAt: true}, delivery(t, db, first.IdempotencyKey))
	assert.Equal(t, deliveryState{Status: "sent", SentAt: true}, delivery(t, db, last.IdempotencyKey))

	got = pgtest.ClaimDue(t, db, automation.ActionInvoiceReminder, []uuid.UUID{id}, 60)
	require.Len(t, got, 1)
	assert.Equal(t, 1, got[0].Execution.StepIndex)
	assert.Equal(t, 1, got[0].Execution.Attempt)
	tok[id] = got[0].Execution.LeaseToken
	first, sms, last = step(id, 0, "email", "ada@client.test"), step(id, 1, "sms", "+15555550123"), step(id, 2, "email", "ada@client.test")
	b := pgtest.RecordDeliveries(t, db, nil, sms, last, first)
	assert.Equal(t, []automation.BeginState{automation.BeginNew, automation.BeginSent, automation.BeginSent}, []automation.BeginState{b[0].State, b[1].State, b[2].State},
		"the settled step is sent again, the sent ones never")
	require.True(t, pgtest.Report(t, db, automation.Outcome{ExecutionID: id, LeaseToken: tok[id], Status: automation.OutcomeCompleted,
		Deliveries: []automation.DeliveryResult{{IdempotencyKey: sms.IdempotencyKey, Status: "sent"}}})[0].Applied)
	assert.Equal(t, [4]int{2, 2, 2, 2}, counts(), "counted once overall")
	assert.Equal(t, 1, pgtest.Int(t, db, `select coalesce(sum(sms_sent), 0) from automation_analytics where workflow_id = $1`, wf))
	assert.Equal(t, 2, pgtest.Int(t, db, `select coalesce(sum(emails_sent), 0) from automation_analytics where workflow_id = $1`, wf))
	row = execution(t, db, id)
	assert.Equal(t, "completed", row.Status)
	assert.Nil(t, row.ErrorCode)
	assert.Equal(t, "not_finished", operate(t, db, `select automation_retry_execution($1)`, id).Reason, "a clean completion is final")
	assert.Zero(t, pgtest.Int(t, db, `select update_automation_analytics()`), "analytics already match the rows")
}
