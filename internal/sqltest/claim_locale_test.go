package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The organisations view's locale and address and an invoices view's
// pay_url reach the claim document; views without them still claim (”).
func TestClaimCarriesLocaleAddressPayURL(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, inv, execs := overdueSetup(t, db, 20, "1250.5")
	_, err := db.Exec(bg, `update organizations set locale = 'en-GB', address = '1 High St, London' where id = $1`, org)
	require.NoError(t, err)
	// an adopter's invoices view with the optional pay_url column
	_, err = db.Exec(bg, `select automation_replace_view('public', 'automation_src_invoices',
		  'select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date, total, balance, currency, portal_url, updated_at,
		          case when id = ''`+inv.String()+`''::uuid then ''https://pay.test/i/1'' end as pay_url from public.invoices')`)
	require.NoError(t, err)
	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, got, 1)
	assert.Equal(t, "en-GB", got[0].Organization.Locale)
	assert.Equal(t, "1 High St, London", got[0].Organization.Address)
	require.NotNil(t, got[0].Invoice)
	assert.Equal(t, "https://pay.test/i/1", got[0].Invoice.PayURL)
	assert.Nil(t, got[0].Figures, "figures only for scheduled executions")

	// An adopter's views without the optional columns: the claim works, ''.
	_, err = db.Exec(bg, `
		select automation_replace_view('public', 'automation_src_organizations',
		  'select id, name, timezone, country_code, send_window_start, send_window_end, sender_name, sender_email, reply_to_email, phone, portal_url from public.organizations');
		select automation_replace_view('public', 'automation_src_invoices',
		  'select id::text as id, organization_id, client_id::text as client_id, job_id::text as job_id, number, status, due_date, total, balance, currency, portal_url, updated_at from public.invoices')`)
	require.NoError(t, err)
	_, err = db.Exec(bg, `update automation_execution_logs set status = 'pending', next_attempt_at = now() - interval '1 minute', lease_token = null where id = $1`, execs[0])
	require.NoError(t, err)
	got = pgtest.Claim(t, db, automation.ActionInvoiceReminder, execs, 10, 60)
	require.Len(t, got, 1)
	assert.Equal(t, "", got[0].Organization.Locale)
	assert.Equal(t, "", got[0].Organization.Address)
	assert.Equal(t, "", got[0].Invoice.PayURL)
}

// A scheduled execution's document carries the organisation's figures:
// open invoices, overdue ones, balance per currency, reminders sent on the
// previous local day (not today's, not another organisation's).
func TestClaimScheduledFigures(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org, _, _, execs := overdueSetup(t, db, 20, "1250.5") // overdue, 1,250.50 USD
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "b@client.test", Phone: "+15555550124"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: 5, Amount: "100"})                   // open, not due
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, Status: "paid", DueInDays: -5, Amount: "999"})  // not open
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, Status: "draft", DueInDays: -5, Amount: "999"}) // not open
	other := pgtest.AllDayOrg(t, db)
	otherClient := pgtest.CreateClient(t, db, pgtest.Client{Org: other, Email: "c@client.test", Phone: "+15555550125"})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: other, Client: otherClient, DueInDays: -3, Amount: "77"})
	_, err := db.Exec(bg, `
		insert into automation_deliveries (execution_id, organization_id, channel, recipient, idempotency_key, status, created_at, sent_at)
		select $1, $2, 'email', 'x@x.test', k, s, c, c from (values
		  ('y1', 'sent', date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '2 hours'),
		  ('y2', 'sent', date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '20 hours'),
		  ('y3', 'failed', date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '3 hours'),
		  ('t1', 'sent', date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 minute'),
		  ('o1', 'sent', date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '30 hours')) v(k, s, c)`, execs[0], org)
	require.NoError(t, err)
	_, err = db.Exec(bg, `update automation_execution_logs set trigger_type = 'scheduled', action = 'run-workflow' where id = $1`, execs[0])
	require.NoError(t, err)
	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionRunWorkflow, execs, 10, 60)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Figures)
	assert.Equal(t, automation.OrgFigures{OpenInvoices: 2, OverdueInvoices: 1, RemindersSentYesterday: 2,
		OpenBalances: []automation.Balance{{Currency: "USD", Amount: "1350.50"}}}, *got[0].Figures)
}
