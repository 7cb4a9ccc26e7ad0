package render_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/render"
	"github.com/dueflow/dueflow/shared/sms"
)

// tooLarge asserts err is the TooLargeError of part, and that its message
// names the part and the limit and none of the content.
func tooLarge(t *testing.T, err error, part string, size, limit int, content string) {
	t.Helper()
	var tl *render.TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, automation.CodeContentTooLarge, automation.ErrorCode(err))
	assert.Equal(t, part, tl.Part)
	assert.Equal(t, size, tl.Size)
	assert.Equal(t, limit, tl.Limit)
	assert.Contains(t, err.Error(), part)
	assert.Contains(t, err.Error(), "limit of")
	assert.NotContains(t, err.Error(), content)
	assert.Less(t, len(err.Error()), 100)
}

func TestSubjectLimit(t *testing.T) {
	for _, ch := range []string{"x", "ж", "😀"} { // counted in characters, whatever their bytes
		m, err := render.Email(render.Template{Subject: strings.Repeat(ch, render.MaxSubjectChars), Text: "t"}, nil)
		require.NoError(t, err, ch)
		assert.Equal(t, render.MaxSubjectChars, len([]rune(m.Subject)))
		_, err = render.Email(render.Template{Subject: strings.Repeat(ch, render.MaxSubjectChars+1), Text: "t"}, nil)
		tooLarge(t, err, render.PartSubject, render.MaxSubjectChars+1, render.MaxSubjectChars, strings.Repeat(ch, 3))
	}
	// Measured after joining into one line: runs of white space count once.
	_, err := render.Email(render.Template{Subject: strings.Repeat("a \n\t ", (render.MaxSubjectChars-1)/2) + "a", Text: "t"}, nil)
	require.NoError(t, err)
	// A value makes it too long.
	v := render.Vars{"client.first_name": strings.Repeat("n", 200)}
	_, err = render.Email(render.Template{Subject: strings.Repeat("s", render.MaxSubjectChars-200) + "{{client.first_name}}", Text: "t"}, v)
	require.NoError(t, err)
	_, err = render.Email(render.Template{Subject: strings.Repeat("s", render.MaxSubjectChars-199) + "{{client.first_name}}", Text: "t"}, v)
	tooLarge(t, err, render.PartSubject, render.MaxSubjectChars+1, render.MaxSubjectChars, "nnn")
}

func TestBodyLimits(t *testing.T) {
	v := render.Vars{"client.first_name": "Ana"}
	fill := func(n int) string { return strings.Repeat("b", n-len("Ana")) + "{{client.first_name}}" } // renders n bytes

	m, err := render.Email(render.Template{Subject: "s", Text: fill(render.MaxTextBytes)}, v)
	require.NoError(t, err)
	assert.Equal(t, render.MaxTextBytes, len(m.Text))
	_, err = render.Email(render.Template{Subject: "s", Text: fill(render.MaxTextBytes + 1)}, v)
	tooLarge(t, err, render.PartText, 0, render.MaxTextBytes, "bbb")

	m, err = render.Email(render.Template{Subject: "s", HTML: fill(render.MaxHTMLBytes), Text: "t"}, v)
	require.NoError(t, err)
	assert.Equal(t, render.MaxHTMLBytes, len(m.HTML))
	_, err = render.Email(render.Template{Subject: "s", HTML: fill(render.MaxHTMLBytes + 1), Text: "t"}, v)
	tooLarge(t, err, render.PartHTML, 0, render.MaxHTMLBytes, "bbb")

	// Without a placeholder the template is measured as it is.
	_, err = render.Email(render.Template{Subject: "s", Text: strings.Repeat("b", render.MaxTextBytes+1)}, v)
	tooLarge(t, err, render.PartText, 0, render.MaxTextBytes, "bbb")

	// The text part derived from an HTML part at its limit fits too.
	m, err = render.Email(render.Template{Subject: "s", HTML: "<p>" + strings.Repeat("b", render.MaxHTMLBytes-7) + "</p>"}, v)
	require.NoError(t, err)
	assert.Equal(t, render.MaxHTMLBytes-7, len(m.Text))
}

// A template that multiplies a bounded value stops at the limit instead of
// building a message of megabytes first.
func TestRenderingStopsAtTheLimit(t *testing.T) {
	v := render.Vars{"job.address": strings.Repeat("a", 300)}
	tmpl := strings.Repeat("{{job.address}}", 64<<10/len("{{job.address}}")) // a 64 KB template, about 1.3 MB rendered
	_, err := render.Email(render.Template{Subject: "s", HTML: tmpl}, v)
	tooLarge(t, err, render.PartHTML, 0, render.MaxHTMLBytes, "aaa")
	assert.Equal(t, "email HTML part is over its limit of 262144 bytes", err.Error())
	_, err = render.SMS(render.Template{Text: tmpl}, v)
	tooLarge(t, err, render.PartSMS, 0, render.MaxSMSSegments, "aaa")
	_, err = render.Email(render.Template{Subject: tmpl, Text: "t"}, v)
	tooLarge(t, err, render.PartSubject, 0, render.MaxSubjectChars, "aaa")
}

func TestSMSLimit(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		parts int
	}{
		{"gsm-7", strings.Repeat("a", 10*sms.GSM7Part), 10},
		{"gsm-7 extension characters count two", strings.Repeat(strings.Repeat("€", 76)+"a", 10), 10},
		{"ucs-2", strings.Repeat("ж", 10*sms.UCS2Part), 10},
		{"one curly apostrophe makes it ucs-2", "’" + strings.Repeat("a", 10*sms.UCS2Part-1), 10},
	}
	for _, tc := range cases {
		s, err := render.SMS(render.Template{Text: tc.text}, nil)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.parts, sms.Measure(s).Segments, tc.name)
		_, err = render.SMS(render.Template{Text: tc.text + "a"}, nil)
		tooLarge(t, err, render.PartSMS, 11, render.MaxSMSSegments, "aaa")
		assert.Equal(t, "SMS text is 11 segments, over its limit of 10", err.Error(), tc.name)
	}
	// The 1,559-character message (24 segments in UCS-2) is refused.
	_, err := render.SMS(render.Template{Text: strings.Repeat("ü’", 779) + "x"}, nil)
	tooLarge(t, err, render.PartSMS, 24, render.MaxSMSSegments, "ü’")
	// White space around the text does not count.
	_, err = render.SMS(render.Template{Text: "  " + strings.Repeat("a", 10*sms.GSM7Part) + "\n"}, nil)
	require.NoError(t, err)
}

// huge is a claimed execution whose every row value is 10 MB.
func huge(name, link string) *automation.Claimed {
	start := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	big := strings.Repeat(name, 10<<20/len(name))
	return &automation.Claimed{
		Execution: automation.Execution{Action: automation.ActionInvoiceReminder},
		Organization: automation.Organization{Name: big, Timezone: "America/New_York", CountryCode: "US",
			Phone: big, SenderEmail: "billing@acme.test", PortalURL: link, Locale: big, Address: big},
		Client:  &automation.Client{FirstName: big, LastName: big, Email: big, Phone: big},
		Invoice: &automation.Invoice{Number: big, DueDate: big, Total: big, Balance: big, Currency: big, PortalURL: link, PayURL: link},
		Job:     &automation.Job{Title: big, JobType: big, Address: big, ScheduledStart: &start, CompletedAt: &start},
		Figures: &automation.OrgFigures{OpenInvoices: 1 << 30, OpenBalances: []automation.Balance{{Currency: big, Amount: big}, {Currency: "USD", Amount: big}}},
	}
}

// Every variable is bounded, so 10 MB values render a reminder of a few
// kilobytes (a 21 MB email and a 10 MB SMS before), and every default
// template stays within the limits.
func TestHugeValuesBounded(t *testing.T) {
	link1k := "https://pay.example.test/" + strings.Repeat("p", 1024-len("https://pay.example.test/"))
	for _, tc := range []struct{ name, value, link string }{
		{"gsm-7 values, 1 KB link", "Nguyen ", link1k},
		{"ucs-2 values, usual link", "Đặng 😀 ", "https://pay.example.test/i/" + strings.Repeat("k", 200)},
	} {
		c := huge(tc.name, tc.link)
		v := render.VarsFor(c)
		for _, name := range append(render.Variables, render.DefaultTemplateVariables...) {
			assert.LessOrEqual(t, len(v[name]), render.VarLimit(name), name)
			assert.LessOrEqual(t, len(v[name]), 1024, name)
		}
		assert.InDelta(t, 98, len(v["client.first_name"]), 2, "cut to 100 bytes, never inside a character")
		assert.True(t, strings.HasSuffix(v["client.first_name"], "..."))
		assert.Equal(t, tc.link, v["invoice.portal_url"], "a link within its bound is kept whole")
		for _, tt := range []string{automation.TriggerInvoiceOverdue, automation.TriggerMaintenanceDue, automation.TriggerAppointment, automation.TriggerStaleJob, automation.TriggerScheduled} {
			c.Execution.TriggerType = tt
			m, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), v)
			require.NoError(t, err, "%s %s", tc.name, tt)
			assert.Less(t, len(m.Subject)+len(m.Text)+len(m.HTML), 8<<10, "%s %s", tc.name, tt)
			s, err := render.SMS(render.DefaultFor(c, automation.ChannelSMS), v)
			require.NoError(t, err, "%s %s", tc.name, tt)
			assert.LessOrEqual(t, sms.Measure(s).Segments, render.MaxSMSSegments)
		}
	}
	// A link over its bound is left out, never cut.
	c := huge("x", "https://pay.example.test/"+strings.Repeat("p", 1024))
	assert.Empty(t, render.VarsFor(c)["invoice.portal_url"])
}

func TestLinkURL(t *testing.T) {
	at := "https://pay.example.test/" + strings.Repeat("p", 1024-len("https://pay.example.test/"))
	for _, ok := range []string{
		"https://pay.example.test/i/INV-1?a=1&b=2#top", "http://portal.example.test", "HTTPS://Portal.Example.Test/x",
		"https://portal.example.test:8443/pay", "https://[2001:db8::1]/pay", " https://portal.example.test/ ", at,
	} {
		got, good := render.LinkURL(ok)
		assert.True(t, good, ok)
		assert.Equal(t, strings.TrimSpace(ok), got)
	}
	for _, bad := range []string{
		"", "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
		"data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox(1)", "mailto:office@example.test", "tel:+12125550100",
		"/pay/INV-1", "pay.example.test/i", "//evil.example.test/x", "https://", "https:///path", "http:evil.example.test",
		"https://bank.example.test@evil.example.test/", "https://user:pw@portal.example.test/",
		"https://portal.example.test/a b", "https://portal.example.test/\x00", "ftp://files.example.test/x", at + "p",
	} {
		got, good := render.LinkURL(bad)
		assert.False(t, good, "%q", bad)
		assert.Empty(t, got, "%q", bad)
	}
}

// A value that is not an http(s) link never lands in an href: the link
// variables are emptied, the rest of the reminder is sent.
func TestUnsafeLinkVariablesLeftOut(t *testing.T) {
	c := fixture(t)
	c.Organization.PortalURL = "javascript:alert(document.cookie)"
	c.Invoice.PortalURL = "data:text/html,<script>alert(1)</script>"
	v := render.VarsFor(c)
	assert.Empty(t, v["organization.portal_url"])
	assert.Empty(t, v["invoice.portal_url"])
	m, err := render.Email(render.DefaultFor(c, automation.ChannelEmail), v)
	require.NoError(t, err)
	for _, part := range []string{m.Subject, m.Text, m.HTML} {
		assert.NotContains(t, strings.ToLower(part), "javascript")
		assert.NotContains(t, part, "data:")
	}
	assert.Contains(t, m.HTML, `<a href="" style="color:#1d4ed8;text-decoration:underline;"></a>`)
	assert.Contains(t, m.Text, "INV-1001", "the reminder itself is rendered")
	s, err := render.SMS(render.DefaultFor(c, automation.ChannelSMS), v)
	require.NoError(t, err)
	assert.NotContains(t, s, "javascript")

	// The invoice's bad link falls back to the organisation's good one.
	c.Organization.PortalURL = "https://acme.test/portal"
	assert.Equal(t, "https://acme.test/portal", render.VarsFor(c)["invoice.portal_url"])
	c.Invoice.PortalURL = "https://pay.test/INV-1001"
	assert.Equal(t, "https://pay.test/INV-1001", render.VarsFor(c)["invoice.portal_url"])
}

// In a tenant's HTML template, any variable that leads a URL attribute is
// put in only when it is an http(s) link.
func TestHTMLLinkAttributes(t *testing.T) {
	js := "javascript:alert(1)"
	v := render.Vars{"client.first_name": js, "client.last_name": "", "job.address": js,
		"organization.portal_url": "https://acme.test/portal", "invoice.number": "INV-7"}
	cases := []struct{ tmpl, want string }{
		{`<a href="{{client.first_name}}">x</a>`, `<a href="">x</a>`},
		{`<a href='{{client.first_name}}'>x</a>`, `<a href=''>x</a>`},
		{`<a href={{client.first_name}}>x</a>`, `<a href=>x</a>`},
		{`<a class="c" HREF = " {{ client.first_name }}">x</a>`, `<a class="c" HREF = " ">x</a>`},
		{`<img src="{{client.first_name}}">`, `<img src="">`},
		{`<form action="{{client.first_name}}">`, `<form action="">`},
		{`<a xlink:href="{{client.first_name}}">`, `<a xlink:href="">`},
		// an empty value first: the next one leads the link
		{`<a href="{{client.last_name}}{{job.address}}">x</a>`, `<a href="">x</a>`},
		// a good link first: what follows is part of its path or query
		{`<a href="{{organization.portal_url}}{{invoice.number}}">x</a>`, `<a href="https://acme.test/portalINV-7">x</a>`},
		{`<a href="{{organization.portal_url}}?n={{invoice.number}}">x</a>`, `<a href="https://acme.test/portal?n=INV-7">x</a>`},
		// the template chose the scheme: the value is escaped text in it
		{`<a href="https://acme.test/{{client.first_name}}">x</a>`, `<a href="https://acme.test/javascript:alert(1)">x</a>`},
		// not a URL attribute, or not in a tag: escaped text
		{`<a title="{{client.first_name}}" href="{{organization.portal_url}}">{{client.first_name}}</a>`,
			`<a title="javascript:alert(1)" href="https://acme.test/portal">javascript:alert(1)</a>`},
		{`<p>href={{client.first_name}}</p>`, `<p>href=javascript:alert(1)</p>`},
		{`<a data-x="{{client.first_name}}">`, `<a data-x="javascript:alert(1)">`},
	}
	for _, tc := range cases {
		got, err := render.HTML(tc.tmpl, v)
		require.NoError(t, err, tc.tmpl)
		assert.Equal(t, tc.want, got, tc.tmpl)
	}
	// 100,000 empty placeholders before the one that decides: each piece of
	// template text is looked at once (quadratic rescans would not finish).
	got, err := render.HTML(`<a href="`+strings.Repeat("{{client.last_name}}", 100_000)+`{{client.first_name}}">x</a>`, v)
	require.NoError(t, err)
	assert.Equal(t, `<a href="">x</a>`, got)

	// Text parts are not HTML: no attribute there.
	got, err = render.Text(`href="{{client.first_name}}"`, v)
	require.NoError(t, err)
	assert.Equal(t, `href="javascript:alert(1)"`, got)
}

// Phone numbers are shown in the organisation's national format when they
// are of its country, international otherwise, and as written when invalid.
func TestPhoneVariablesFormatted(t *testing.T) {
	c := fixture(t)
	c.Organization.CountryCode, c.Organization.Phone = "GB", "+442079460958"
	c.Client.Phone = "+12015550123"
	v := render.VarsFor(c)
	assert.Equal(t, "020 7946 0958", v["organization.phone"])
	assert.Equal(t, "+1 201-555-0123", v["client.phone"])
	c.Organization.CountryCode = "US"
	v = render.VarsFor(c)
	assert.Equal(t, "+44 20 7946 0958", v["organization.phone"])
	assert.Equal(t, "(201) 555-0123", v["client.phone"])
	c.Organization.Phone = "call the office"
	assert.Equal(t, "call the office", render.VarsFor(c)["organization.phone"])
}
