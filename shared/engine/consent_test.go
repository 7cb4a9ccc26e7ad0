package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
)

// maintenanceDoc is a claimable maintenance reminder (non-transactional by
// default) to a client.
func maintenanceDoc(steps ...automation.Step) automation.Claimed {
	doc := invoiceDoc(steps...)
	doc.Execution.Action, doc.Execution.TriggerType = automation.ActionSendReminder, automation.TriggerMaintenanceDue
	doc.Execution.SubjectType, doc.Execution.SubjectID = "client", doc.Client.ID
	doc.Execution.ClientID = doc.Client.ID
	doc.Workflow.TriggerType = automation.TriggerMaintenanceDue
	doc.Invoice = nil
	return doc
}

func withUnsubscribe(f *fixture) {
	f.eng.o.Unsubscribe = func(org uuid.UUID, client, channel string) (string, error) {
		return "https://events.acme.test/unsubscribe?t=" + org.String() + "." + client + "." + channel, nil
	}
	f.eng.o.SMSFrom = "+15550009999"
}

// A non-transactional email carries the client's one-click link (header and
// opt-out line); a transactional one carries neither.
func TestUnsubscribeLinkOnNonTransactionalEmail(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	withUnsubscribe(f)
	doc := maintenanceDoc(email)
	id := f.store.Add(doc)
	f.process(t, id)
	require.Equal(t, 1, f.email.count())
	m := f.email.sent[0]
	want := "https://events.acme.test/unsubscribe?t=" + doc.Execution.OrganizationID.String() + "." + doc.Client.ID + ".email"
	assert.Equal(t, want, m.UnsubscribeURL)
	assert.Contains(t, m.Text, want)
	assert.Contains(t, m.HTML, want)
	assert.Equal(t, "billing@acme.test", f.store.Intents[0].Sender)

	// the workflow says transactional: no link
	doc = maintenanceDoc(email)
	doc.Workflow.MessageClass = automation.ClassTransactional
	id = f.store.Add(doc)
	f.process(t, id)
	require.Equal(t, 2, f.email.count())
	assert.Empty(t, f.email.sent[1].UnsubscribeURL)
	assert.NotContains(t, f.email.sent[1].Text, "unsubscribe")

	// an invoice reminder (transactional by default): no link
	f2 := newFixture(t, automation.ActionInvoiceReminder)
	withUnsubscribe(f2)
	f2.process(t, f2.store.Add(invoiceDoc(email)))
	require.Equal(t, 1, f2.email.count())
	assert.Empty(t, f2.email.sent[0].UnsubscribeURL)

	// no keys configured, or a signing error: sent without the link
	f3 := newFixture(t, automation.ActionSendReminder)
	f3.eng.o.Unsubscribe = func(uuid.UUID, string, string) (string, error) { return "", errors.New("no key") }
	f3.process(t, f3.store.Add(maintenanceDoc(email)))
	require.Equal(t, 1, f3.email.count())
	assert.Empty(t, f3.email.sent[0].UnsubscribeURL)
}

// The client's opt-out (dueflow's table) stops non-transactional messages
// of that channel only; transactional ones still go.
func TestOptedOutInDueflowTable(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	withUnsubscribe(f)
	doc := maintenanceDoc(email, sms)
	doc.Consent = &automation.Consent{OptedOut: []automation.Channel{"email"}}
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Zero(t, f.email.count())
	assert.Equal(t, 1, f.sms.count(), "the SMS channel was not opted out")
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)

	doc = maintenanceDoc(email)
	doc.Consent = &automation.Consent{OptedOut: []automation.Channel{"email"}}
	id = f.store.Add(doc)
	f.process(t, id)
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeOptedOut, o.ErrorCode)

	// an invoice reminder to the same client still goes
	f2 := newFixture(t, automation.ActionInvoiceReminder)
	inv := invoiceDoc(email)
	inv.Consent = &automation.Consent{OptedOut: []automation.Channel{"email", "sms"}}
	f2.process(t, f2.store.Add(inv))
	assert.Equal(t, 1, f2.email.count())
}

// Suppressed addresses (hard bounce, complaint) and SMS STOPs stop messages
// of every class, matched on the exact address the message goes to.
func TestSuppressedAndStopped(t *testing.T) {
	f := newFixture(t, automation.ActionInvoiceReminder)
	doc := invoiceDoc(email, sms)
	doc.Client.Email = "Ada <ADA@example.org>"
	doc.Client.Phone = "(312) 555-0123"
	doc.Consent = &automation.Consent{Blocked: []automation.Blocked{
		{Channel: "email", Address: "ada@example.org", Reason: automation.BlockedBounced},
		{Channel: "sms", Address: "+13125550123", Reason: automation.BlockedOptedOut},
	}}
	id := f.store.Add(doc)
	f.process(t, id)
	assert.Zero(t, f.email.count()+f.sms.count())
	o := f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeOptedOut, o.ErrorCode, "one channel opted out, the other suppressed: opted_out named first")

	doc = invoiceDoc(email)
	doc.Consent = &automation.Consent{Blocked: []automation.Blocked{{Channel: "email", Address: "ada@example.org", Reason: automation.BlockedComplained}}}
	id = f.store.Add(doc)
	f.process(t, id)
	o = f.lastOutcome(t, id)
	assert.Equal(t, automation.OutcomeSkipped, o.Status)
	assert.Equal(t, automation.CodeSuppressed, o.ErrorCode)

	// a candidate that is another number (same last digits) does not block
	doc = invoiceDoc(sms)
	doc.Consent = &automation.Consent{Blocked: []automation.Blocked{{Channel: "sms", Address: "+443125550123", Reason: automation.BlockedOptedOut}}}
	id = f.store.Add(doc)
	f.process(t, id)
	assert.Equal(t, 1, f.sms.count())
	assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
}

// A non-transactional SMS ends with the opt-out instruction unless the
// number was told in the last 30 days; the ledger intent says so. A
// transactional SMS never carries it.
func TestSMSOptOutInstruction(t *testing.T) {
	f := newFixture(t, automation.ActionSendReminder)
	withUnsubscribe(f)
	f.process(t, f.store.Add(maintenanceDoc(sms)))
	require.Equal(t, 1, f.sms.count())
	assert.True(t, strings.HasSuffix(f.sms.sent[0].Text, "Reply STOP to opt out."), f.sms.sent[0].Text)
	require.Len(t, f.store.Intents, 1)
	assert.True(t, f.store.Intents[0].OptOutNotice)
	assert.Equal(t, "+15550009999", f.store.Intents[0].Sender)

	told := maintenanceDoc(sms)
	told.Consent = &automation.Consent{SMSTold: []string{"+13125550123"}}
	f.process(t, f.store.Add(told))
	require.Equal(t, 2, f.sms.count())
	assert.NotContains(t, f.sms.sent[1].Text, "STOP")
	assert.False(t, f.store.Intents[1].OptOutNotice)

	f2 := newFixture(t, automation.ActionInvoiceReminder)
	f2.process(t, f2.store.Add(invoiceDoc(sms)))
	require.Equal(t, 1, f2.sms.count())
	assert.NotContains(t, f2.sms.sent[0].Text, "STOP")
	assert.False(t, f2.store.Intents[0].OptOutNotice)
}
