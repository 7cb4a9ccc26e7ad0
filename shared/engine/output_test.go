package engine

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/render"
	smstext "github.com/dueflow/dueflow/shared/sms"
)

// A message over a limit fails its execution for good (content_too_large),
// before anything is begun in the ledger or handed to a provider; the error
// names the part and the limit, never the content. The rest of the batch is
// sent.
func TestContentTooLargeFailsBeforeLedger(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	// Templates within the workflow rules (shared/workflow: subject 500
	// characters, bodies 64 KB) that repeat a bounded value past a limit.
	secret := strings.Repeat("Confidential-Ada", 10) // cut to 100 bytes per name
	name := strings.Repeat("{{client.full_name}} ", 64<<10/21)
	cases := []struct {
		step automation.Step
		msg  string
	}{
		{automation.Step{Type: automation.StepSendEmail, Subject: strings.Repeat("{{client.full_name}} ", 5), Body: "x"},
			"email subject is 1009 characters, over its limit of 998"},
		{automation.Step{Type: automation.StepSendEmail, Subject: "s", HTML: "<p>" + name + "</p>"},
			"email HTML part is over its limit of 262144 bytes"},
		{automation.Step{Type: automation.StepSendEmail, Subject: "s", Body: name},
			"email text part is over its limit of 262144 bytes"},
		{automation.Step{Type: automation.StepSendSMS, Body: strings.Repeat("ü’", 779) + "x"}, // the 1,559 characters
			"SMS text is 24 segments, over its limit of 10"},
		{automation.Step{Type: automation.StepSendSMS, Body: strings.Repeat("a", 1531)},
			"SMS text is 11 segments, over its limit of 10"},
	}
	var ids []uuid.UUID
	for _, tc := range cases {
		doc := invoiceDoc(tc.step)
		doc.Client.FirstName, doc.Client.LastName = secret, secret
		ids = append(ids, f.store.Add(doc))
	}
	ok := f.store.Add(invoiceDoc(email, sms))
	sum := f.process(t, append(ids, ok)...)
	assert.Equal(t, len(cases), sum.Failed)
	assert.Equal(t, 1, sum.Completed)
	for i, tc := range cases {
		o := f.lastOutcome(t, ids[i])
		assert.Equal(t, automation.OutcomeFailed, o.Status, tc.msg)
		assert.Equal(t, automation.CodeContentTooLarge, o.ErrorCode, tc.msg)
		assert.Equal(t, tc.msg, o.ErrorMessage)
		assert.NotContains(t, o.ErrorMessage, "Confidential")
		assert.Empty(t, o.Deliveries, "nothing begun in the ledger")
		assert.Equal(t, automation.StatusFailed, f.store.Get(ids[i]).Status)
	}
	// Only the good execution's two messages were begun and sent.
	assert.Len(t, f.store.Deliveries, 2)
	require.Equal(t, 1, f.email.count())
	require.Equal(t, 1, f.sms.count())
	assert.Equal(t, "ada@example.org", f.email.sent[0].To)
	assert.Equal(t, "+13125550123", f.sms.sent[0].To)
}

// An email step sent, then an SMS step over its limit: the email stays sent
// (the ledger has it), the execution fails with content_too_large.
func TestContentTooLargeAfterAnEarlierStep(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	id := f.store.Add(invoiceDoc(email, automation.Step{Type: automation.StepSendSMS, Body: strings.Repeat("€", 766)}))
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeFailed, o.Status)
	assert.Equal(t, automation.CodeContentTooLarge, o.ErrorCode)
	assert.Equal(t, 1, o.StepIndex)
	require.Len(t, o.Deliveries, 1)
	assert.Equal(t, automation.DeliverySent, o.Deliveries[0].Status)
	assert.Equal(t, 1, f.email.count())
	assert.Zero(t, f.sms.count())
}

// Values of any size from the client's and the invoice's rows make a
// message of bounded size with the default templates: sent, not refused.
func TestHugeRowValuesSendBoundedMessages(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	huge := strings.Repeat("Lovelace ", 10<<20/9) // 10 MB
	doc.Client.FirstName, doc.Client.LastName = huge, huge
	doc.Invoice.Number = huge
	doc.Organization.Name = huge
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
	require.Equal(t, 1, f.email.count())
	m := f.email.sent[0]
	assert.Less(t, len(m.Subject)+len(m.Text)+len(m.HTML), 4<<10, "a 10 MB name gave a 21 MB email")
	assert.LessOrEqual(t, len([]rune(m.Subject)), render.MaxSubjectChars)
	require.Equal(t, 1, f.sms.count())
	assert.LessOrEqual(t, smstext.Measure(f.sms.sent[0].Text).Segments, 3, "a 10 MB name gave a 10 MB SMS")
}

// The default NormalizePhone is shared/phone's: a national number is read
// in the organisation's country; premium-rate numbers, country codes that
// do not exist and numbers that are no handset are refused (the channel is
// skipped as invalid, nothing is begun or sent).
func TestDefaultPhoneNormalisation(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	good := invoiceDoc(sms)
	good.Client.Phone = "(312) 555-0123"
	gb := invoiceDoc(sms)
	gb.Organization.CountryCode, gb.Client.Phone = "GB", "07400 123456"
	goodID, gbID := f.store.Add(good), f.store.Add(gb)
	var bad []uuid.UUID
	for _, p := range []string{"+1 900 234 5678", "+44 909 123 4567", "+881 6 1234 5678", "+999 1234 5678", "+1 555 123 4567", "0300 123 4567"} {
		doc := invoiceDoc(sms)
		doc.Client.Phone = p
		if strings.HasPrefix(p, "0") {
			doc.Organization.CountryCode = "GB"
		}
		bad = append(bad, f.store.Add(doc))
	}
	f.process(t, append([]uuid.UUID{goodID, gbID}, bad...)...)
	require.Equal(t, 2, f.sms.count())
	assert.ElementsMatch(t, []string{"+13125550123", "+447400123456"}, []string{f.sms.sent[0].To, f.sms.sent[1].To})
	for _, id := range bad {
		o := f.lastOutcome(t, id)
		assert.Equal(t, automation.OutcomeFailed, o.Status)
		assert.Equal(t, automation.CodeInvalidRecipient, o.ErrorCode)
		assert.Empty(t, o.Deliveries)
	}
}

// A portal URL that is not http(s) is left out of the message; the
// reminder itself is sent.
func TestUnsafePortalURLLeftOut(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	doc.Organization.PortalURL = "javascript:alert(document.cookie)"
	doc.Invoice.PortalURL = "data:text/html;base64,PHNjcmlwdD4="
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
	require.Equal(t, 1, f.email.count())
	m := f.email.sent[0]
	assert.Contains(t, m.Text, "INV-7")
	for _, part := range []string{m.Text, m.HTML, f.sms.sent[0].Text} {
		assert.NotContains(t, part, "javascript")
		assert.NotContains(t, part, "data:")
	}
	assert.NotContains(t, m.HTML, `href="j`)
}
