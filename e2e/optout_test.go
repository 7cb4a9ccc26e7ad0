package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
)

const (
	clientAlice = "c0000000-0000-4000-8000-0000000000a1" // Acme: email + SMS +12125550101
	clientCarol = "c0000000-0000-4000-8000-0000000000a3" // Acme: SMS +12125550103 only
	clientErin  = "c0000000-0000-4000-8000-0000000000b2" // Brixton: erin@example.co.uk
)

// TestOptOutsAndDeliveryEvents is issue 12's proof in the local stack: the
// action functions and provider-events under the RIE, the SMTP capture and
// the Telnyx sink playing the provider's side.
//
//   - Erin's maintenance reminder (non-transactional) carries a one-click
//     List-Unsubscribe URL; a mail client's POST to it opts her out: her next
//     maintenance reminder is skipped (opted_out), her next invoice reminder
//     (transactional) is sent, without the header.
//   - Alice texts STOP to the organisation's number: her next SMS from Acme is
//     not sent (the reminder's email still is).
//   - A delivery report "delivery_failed" with a permanent code (40001, not
//     routable) for Carol's SMS suppresses her number: her next reminder is
//     skipped (suppressed); a "delivered" report for Dan's SMS is counted.
//   - automation_delivery_analytics counts the delivered and the bounced.
func TestOptOutsAndDeliveryEvents(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, stackOptions{})
	db := s.Pool()
	seedScenario(t, db, false)
	// Brixton's invoice workflow sends an email (the scenario's has no step)
	mustExec(t, db, `update automation_workflows set steps = '[{"type":"send_email","subject":"Invoice {{invoice.number}} is overdue","body":"Please pay {{invoice.balance}}."}]'
		where id = 'f0000000-0000-4000-8000-0000000000b1'`)

	res, err := s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("first cycle: %s", res)
	for _, r := range res.Responses {
		require.Equal(t, 200, r.StatusCode, "%s: %s %s", r.URL, r.ErrorMsg, r.Content)
	}

	// The maintenance reminder carries the one-click header (RFC 8058) and
	// the link in its text; the transactional invoice reminder does not.
	emails, err := s.Emails(ctx)
	require.NoError(t, err)
	erin := emailTo(t, emails, "erin@example.co.uk")
	require.Len(t, erin, 1)
	list := erin[0].Headers.Get("List-Unsubscribe")
	require.NotEmpty(t, list, "a non-transactional email has List-Unsubscribe")
	assert.Equal(t, "List-Unsubscribe=One-Click", erin[0].Headers.Get("List-Unsubscribe-Post"))
	require.True(t, strings.HasPrefix(list, "<") && strings.HasSuffix(list, ">"), list)
	unsubURL := strings.TrimSuffix(strings.TrimPrefix(list, "<"), ">")
	require.True(t, strings.HasPrefix(unsubURL, s.ProviderEventsURL()+"/unsubscribe?"), "the local provider-events function: %s", unsubURL)
	assert.Equal(t, unsubURL, devstack.UnsubscribeLink(erin[0].Text, s.ProviderEventsURL()), "the opt-out link in the text part")
	alice := emailTo(t, emails, "alice@example.com")
	require.Len(t, alice, 1)
	assert.Empty(t, alice[0].Headers.Get("List-Unsubscribe"), "an invoice reminder is transactional")

	// A mail client's one-click POST (RFC 8058): form-encoded, no cookies.
	status, err := devstack.PostOneClick(ctx, unsubURL)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, countWhere(t, db, "automation_opt_outs",
		"organization_id = '"+orgB+"' and client_id = '"+clientErin+"' and channel = 'email' and source = 'link'"))

	// Alice replies STOP to Acme's number; the sink signs it like Telnyx.
	sms := s.SMS()
	aliceSMS := smsTo(sms, "+12125550101")
	require.Len(t, aliceSMS, 1)
	status, err = s.Telnyx().PostInbound(ctx, "+12125550101", aliceSMS[0].From, "STOP")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, countWhere(t, db, "automation_suppressions",
		"organization_id = '"+orgA+"' and channel = 'sms' and address = '+12125550101' and reason = 'opted_out'"))

	// Delivery reports: Carol's SMS failed for good, Dan's was delivered.
	carolSMS := smsTo(sms, "+12125550103")
	require.Len(t, carolSMS, 1)
	status, err = s.Telnyx().PostDeliveryReport(ctx, carolSMS[0], "delivery_failed", "40001")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	danSMS := smsTo(sms, "+447400123456")
	require.Len(t, danSMS, 1)
	status, err = s.Telnyx().PostDeliveryReport(ctx, danSMS[0], "delivered", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, countWhere(t, db, "automation_suppressions",
		"organization_id = '"+orgA+"' and channel = 'sms' and address = '+12125550103' and reason = 'bounced' and provider = 'telnyx'"))
	assert.Equal(t, 1, countWhere(t, db, "automation_deliveries", "recipient = '+12125550103' and delivery_status = 'bounced'"))
	assert.Equal(t, 1, countWhere(t, db, "automation_deliveries", "recipient = '+447400123456' and delivery_status = 'delivered'"))

	var before time.Time
	require.NoError(t, db.QueryRow(ctx, `select clock_timestamp()`).Scan(&before))
	// The next reminders: a newer service for Erin, recorded now (a new
	// maintenance occurrence), an overdue invoice each for Erin, Alice and
	// Carol.
	mustExec(t, db, `insert into jobs (organization_id, client_id, title, job_type, status, completed_at) values
		($1, $2, 'Boiler repair', 'boiler', 'completed', now() - interval '6 months 10 days')`, orgB, clientErin)
	mustExec(t, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance, currency) values
		($1, $2, 'INV-2002', 'sent', (now() at time zone 'Europe/London')::date - 1, 70.00, 70.00, 'GBP'),
		($3, $4, 'INV-1005', 'sent', (now() at time zone 'America/New_York')::date - 2, 30.00, 30.00, 'USD'),
		($3, $5, 'INV-1006', 'sent', (now() at time zone 'America/New_York')::date - 2, 40.00, 40.00, 'USD')`,
		orgB, clientErin, orgA, clientAlice, clientCarol)
	res, err = s.Tick(ctx)
	require.NoError(t, err)
	t.Logf("second cycle: %s", res)
	for _, r := range res.Responses {
		require.Equal(t, 200, r.StatusCode, "%s: %s %s", r.URL, r.ErrorMsg, r.Content)
	}

	assert.Equal(t, map[string]string{
		"INV-2002":        "completed ",           // Erin's invoice reminder: transactional, sent
		"INV-1005":        "completed ",           // Alice's: the email went, the SMS did not
		"INV-1006":        "skipped no_recipient", // no email address, and her number bounced (the log below)
		"maintenance_due": "skipped opted_out",    // Erin unsubscribed
	}, remindersSince(t, s, before))

	emails, err = s.Emails(ctx)
	require.NoError(t, err)
	erin = emailTo(t, emails, "erin@example.co.uk")
	require.Len(t, erin, 2, "the invoice reminder, no second maintenance reminder")
	assert.Equal(t, "Invoice INV-2002 is overdue", erin[1].Subject)
	assert.Empty(t, erin[1].Headers.Get("List-Unsubscribe"))
	assert.Len(t, emailTo(t, emails, "alice@example.com"), 2, "Alice's invoice email still goes")
	sms = s.SMS()
	assert.Len(t, smsTo(sms, "+12125550101"), 1, "no SMS after STOP")
	assert.Len(t, smsTo(sms, "+12125550103"), 1, "no SMS to the bounced number")
	assert.True(t, functionLogsContain(t, s, `"reason":"suppressed"`), "the SMS channel skipped as suppressed")

	// Analytics know delivery: Dan's SMS delivered, Carol's bounced.
	var delivered, bounced, sent int
	require.NoError(t, db.QueryRow(ctx, `select coalesce(sum(delivered), 0), coalesce(sum(bounced), 0), coalesce(sum(sent), 0)
		from automation_delivery_analytics`).Scan(&delivered, &bounced, &sent))
	assert.Equal(t, 1, delivered)
	assert.Equal(t, 1, bounced)
	assert.Equal(t, len(emails)+len(sms), sent, "sent counts every message handed over")
	var orgBounced int
	require.NoError(t, db.QueryRow(ctx, `select bounced_30d from automation_delivery_health where organization_id = $1`, orgA).Scan(&orgBounced))
	assert.Equal(t, 1, orgBounced)

	checkInvariants(t, s, invariantOpts{})
}

// emailTo is the emails to addr, oldest first.
func emailTo(t *testing.T, emails []devstack.Email, addr string) []devstack.Email {
	t.Helper()
	var out []devstack.Email
	for _, e := range emails {
		for _, to := range e.EnvelopeTo {
			if to == addr {
				out = append(out, e)
			}
		}
	}
	return out
}

// smsTo is the SMS to number, oldest first.
func smsTo(sms []devstack.SMS, number string) []devstack.SMS {
	var out []devstack.SMS
	for _, m := range sms {
		if m.To == number {
			out = append(out, m)
		}
	}
	return out
}

// remindersSince maps the executions created since since (the invoice
// number, or the trigger type) to "status error_code".
func remindersSince(t *testing.T, s *devstack.Stack, since time.Time) map[string]string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `
		select coalesce(i.number, e.trigger_type), e.status, coalesce(e.error_code, '')
		from automation_execution_logs e
		left join automation_src_invoices i on e.subject_type = 'invoice' and i.id = e.subject_id
		where e.created_at >= $1`, since)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, st, code string
		require.NoError(t, rows.Scan(&k, &st, &code))
		out[k] = st + " " + code
	}
	require.NoError(t, rows.Err())
	return out
}
