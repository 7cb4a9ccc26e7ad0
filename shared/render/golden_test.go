package render_test

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/render"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenOrg is one organisation per locale: its zone, country, phone and
// currency as a business there has them.
type goldenOrg struct {
	locale, country, zone, phone, clientPhone, currency, address string
}

var goldenOrgs = []goldenOrg{
	{"en-US", "US", "America/New_York", "+12125550100", "+12125550199", "USD", "12 Main St, Springfield, IL 62701"},
	{"en-GB", "GB", "Europe/London", "+442079460958", "+447700900100", "GBP", "221B Baker Street, London NW1 6XE"},
	{"en-AU", "AU", "Australia/Sydney", "+61291234567", "+61412345678", "AUD", "1 George St, Sydney NSW 2000"},
	{"fr-CA", "CA", "America/Toronto", "+15145550100", "+15145550199", "CAD", "1000 rue Sherbrooke O, Montréal QC H3A 3G4"},
}

// goldenClaim: invoice INV-1001 due 2026-11-03 (1,250.00, balance 980.5),
// an appointment at 17:01 UTC on 3 December 2026 and midnight-adjacent
// completion, figures for the summary.
func goldenClaim(o goldenOrg, trigger string) *automation.Claimed {
	start := time.Date(2026, 12, 3, 17, 1, 0, 0, time.UTC)
	done := time.Date(2026, 5, 3, 23, 30, 0, 0, time.UTC)
	return &automation.Claimed{
		Execution: automation.Execution{ID: uuid.MustParse("00000000-0000-0000-0000-000000000001"), Action: automation.ActionSendReminder, TriggerType: trigger},
		Organization: automation.Organization{
			ID:   uuid.MustParse("00000000-0000-0000-0000-0000000000aa"),
			Name: "Acme & Sons", Timezone: o.zone, CountryCode: o.country, Phone: o.phone, Locale: o.locale,
			Address: o.address, SenderEmail: "billing@acme.test", PortalURL: "https://acme.test/portal",
		},
		Client:  &automation.Client{FirstName: "Ana", LastName: "Lima", Email: "ana@client.test", Phone: o.clientPhone},
		Invoice: &automation.Invoice{Number: "INV-1001", DueDate: "2026-11-03", Total: "1250.00", Balance: "980.5", Currency: o.currency, PayURL: "https://pay.acme.test/i/INV-1001"},
		Job:     &automation.Job{Title: "Furnace tune-up", JobType: "maintenance", ScheduledStart: &start, CompletedAt: &done, Address: "1 Main St"},
		Figures: &automation.OrgFigures{OpenInvoices: 12, OverdueInvoices: 3, RemindersSentYesterday: 7,
			OpenBalances: []automation.Balance{{Currency: o.currency, Amount: "15234.5"}}},
	}
}

var goldenTriggers = []string{automation.TriggerInvoiceOverdue, automation.TriggerMaintenanceDue,
	automation.TriggerAppointment, automation.TriggerStaleJob, automation.TriggerScheduled}

// Every default template, email (subject, text, HTML) and SMS, in each
// locale: dates, 12/24 h times, amounts and phone numbers as written there.
// go test ./shared/render -run Golden -update rewrites the files.
func TestGoldenDefaults(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	for _, o := range goldenOrgs {
		for _, tr := range goldenTriggers {
			c := goldenClaim(o, tr)
			v := render.VarsAt(c, now)
			if tr == automation.TriggerMaintenanceDue || tr == automation.TriggerScheduled {
				v.SetUnsubscribe("https://acme.test/u/opaque-token")
			}
			m, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), v)
			require.NoError(t, err)
			sms, err := render.SMS(render.DefaultFor(c, automation.ChannelSMS), v)
			require.NoError(t, err)
			base := filepath.Join("testdata", "golden", o.locale+"_"+tr)
			golden(t, base+".email.txt", "Subject: "+m.Subject+"\n\n"+m.Text)
			golden(t, base+".email.html", m.HTML)
			golden(t, base+".sms.txt", sms+"\n")
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file (go test ./shared/render -run Golden -update)")
	assert.Equal(t, string(want), got, path)
}

// The locale's conventions reach the variables (a guard on the golden files'
// content, so an -update cannot silently bless US formats everywhere).
func TestLocaleFormats(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	want := map[string][5]string{ // due date, scheduled start, balance, organisation phone, client phone
		"en-US": {"Nov 3, 2026", "Thursday, December 3, 2026, 12:01 pm EST", "$980.50", "(212) 555-0100", "(212) 555-0199"},
		"en-GB": {"3 Nov 2026", "Thursday, 3 December 2026, 17:01 GMT", "£980.50", "020 7946 0958", "07700 900100"},
		"en-AU": {"3 Nov 2026", "Friday, 4 December 2026, 4:01 am AEDT", "$980.50", "(02) 9123 4567", "0412 345 678"},
		"fr-CA": {"3 nov. 2026", "jeudi 3 décembre 2026, 12 h 01 EST", "980,50 $", "(514) 555-0100", "(514) 555-0199"},
	}
	for _, o := range goldenOrgs {
		v := render.VarsAt(goldenClaim(o, automation.TriggerAppointment), now)
		got := [5]string{v["invoice.due_date"], v["job.scheduled_start"], v["invoice.balance"], v["organization.phone"], v["client.phone"]}
		assert.Equal(t, want[o.locale], got, o.locale)
		assert.Equal(t, o.locale, v["organization.locale"])
	}
}

// An unknown or malformed locale falls back to the country's default; the
// message is still rendered.
func TestBadLocaleFallsBack(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	for _, bad := range []string{"xx-YY", "not a locale", "en-GB;drop table", strings.Repeat("a", 500)} {
		c := goldenClaim(goldenOrgs[1], automation.TriggerInvoiceOverdue) // GB
		c.Organization.Locale = bad
		v := render.VarsFor(c)
		assert.Equal(t, "en-GB", v["organization.locale"], bad)
		assert.Equal(t, "3 Nov 2026", v["invoice.due_date"])
		_, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), v)
		require.NoError(t, err)
	}
	// Visible: logged once per organisation and value, with what was used.
	assert.Equal(t, 4, strings.Count(logs.String(), "organisation locale unusable"), logs.String())
	assert.Contains(t, logs.String(), `"locale":"xx-YY","used":"en-GB"`)
	assert.NotContains(t, logs.String(), "ana@client.test")
	render.VarsFor(goldenClaimWithLocale("xx-YY"))
	assert.Equal(t, 4, strings.Count(logs.String(), "organisation locale unusable"), "not logged again")

	c := goldenClaim(goldenOrgs[0], automation.TriggerInvoiceOverdue)
	c.Organization.Locale, c.Organization.CountryCode = "", ""
	assert.Equal(t, "en-US", render.VarsFor(c)["organization.locale"], "no locale, no country: en-US")
}

func goldenClaimWithLocale(l string) *automation.Claimed {
	c := goldenClaim(goldenOrgs[1], automation.TriggerInvoiceOverdue)
	c.Organization.Locale = l
	return c
}

// Without a postal address or an opt-out link the footer has no stray
// separators or empty links' text; the invoice's pay link falls back to
// its portal link, then the organisation's.
func TestFooterWithoutAddress(t *testing.T) {
	c := goldenClaim(goldenOrgs[0], automation.TriggerInvoiceOverdue)
	c.Organization.Address = "  "
	c.Invoice.PayURL = "javascript:alert(1)"
	v := render.VarsFor(c)
	m, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), v)
	require.NoError(t, err)
	assert.NotContains(t, m.Text, "Unsubscribe")
	assert.NotContains(t, m.HTML, "Unsubscribe")
	assert.NotContains(t, m.Text, "\n\n\n")
	assert.Contains(t, m.Text, "--\nAcme & Sons\n\nYou are receiving this email because Acme & Sons sent you invoice INV-1001.\n")
	assert.Contains(t, m.HTML, "Acme &amp; Sons")
	assert.Contains(t, m.Text, "https://acme.test/portal")
	assert.NotContains(t, m.Text+m.HTML, "javascript")

	// A multi-line address is written on one line.
	c.Organization.Address = "12 Main St,\n\nSpringfield, IL\r\n"
	assert.Equal(t, "12 Main St, Springfield, IL", render.VarsFor(c)["organization.address"])
}

// BenchmarkVarsAt measures the variables of one execution with its
// locale's formatters cached (dates, times, two amounts, two phone numbers).
func BenchmarkVarsAt(b *testing.B) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	for _, o := range goldenOrgs {
		c := goldenClaim(o, automation.TriggerAppointment)
		b.Run(o.locale, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				render.VarsAt(c, now)
			}
		})
	}
}
