package render

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	// The Lambda runtime (provided.al2023) ships no zoneinfo: embed it, or
	// location would render every organisation's times in UTC.
	_ "time/tzdata"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/locale"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/text"
	"github.com/nyaruka/phonenumbers"
)

// Bounds of the variables, in bytes. Values come from rows an organisation
// or an adopter's view delivers and may be of any size; each is cut to its
// bound (text.Truncate, "..." at the end), so a 10 MB client name renders
// as 100 bytes. With every value at its bound, every default email stays
// within MaxSubjectChars, MaxHTMLBytes and MaxTextBytes, and every default
// SMS within MaxSMSSegments in GSM-7 (in UCS-2 too while its link is under
// about 400 bytes). Links are never cut (a cut link is a broken one): a
// link over 1,024 bytes is left out, as is one that is not http(s)
// (LinkURL).
const defaultVarBytes = 100

var varBytes = map[string]int{
	"client.first_name": 100, "client.last_name": 100, "client.full_name": 201,
	"client.email": 254, "client.phone": 64,
	"organization.name": 100, "organization.phone": 64, "organization.email": 254,
	"invoice.number": 64, "invoice.total": 64, "invoice.balance": 64, "invoice.due_date": 64,
	"job.title": 150, "job.type": 100, "job.address": 300,
	"organization.address": 300, "summary.open_balance": 200,
}

// DefaultTemplateVariables are the variables VarsFor sets beyond Variables,
// for the default templates' footer: the sentence around the opt-out link
// (VarUnsubscribeURL; empty when the message needs none;
// Vars.SetUnsubscribe). A workflow's own text may use them too, but the
// workflow rules do not list them.
var DefaultTemplateVariables = []string{
	"footer.unsubscribe_text", "footer.unsubscribe_label",
}

// VarLimit returns the bound, in bytes, of a variable's value.
func VarLimit(name string) int {
	if strings.HasSuffix(name, "_url") {
		return maxURLBytes
	}
	if n, ok := varBytes[name]; ok {
		return n
	}
	return defaultVarBytes
}

// VarsFor builds the variables of one claimed execution: money formatted in
// the invoice currency, times in the organisation's time zone, phone
// numbers for display (national format in the organisation's country,
// international otherwise; as written when not a valid number), links only
// when they are http(s) (LinkURL; an invoice without a usable link of its
// own takes the organisation's), every value within its bound (VarLimit).
// Variables of an absent client, invoice or job are empty strings (still
// known).
func VarsFor(c *automation.Claimed) Vars { return VarsAt(c, time.Now()) }

// VarsAt is VarsFor with an explicit current time (for invoice.days_overdue).
func VarsAt(c *automation.Claimed, now time.Time) Vars {
	v := make(Vars, len(Variables)+len(DefaultTemplateVariables))
	for _, n := range Variables {
		v[n] = ""
	}
	for _, n := range DefaultTemplateVariables {
		v[n] = ""
	}
	if c == nil {
		return v
	}
	loc := location(c.Organization.Timezone)
	org := c.Organization
	lf := Locale(org)
	v["organization.name"] = org.Name
	v["organization.locale"] = lf.Tag()
	v["organization.address"] = oneLine(org.Address)
	orgLink, _ := LinkURL(org.PortalURL)
	v["organization.phone"] = orgPhones.display(org.Phone, org.CountryCode)
	v["organization.email"] = text.FirstNonEmpty(org.ReplyToEmail, org.SenderEmail)
	v["organization.portal_url"] = orgLink

	if c.Client != nil {
		v.setClient(c.Client, org.CountryCode)
	}
	if c.Invoice != nil {
		v.setInvoice(c.Invoice, lf, loc, now, orgLink)
	}
	if c.Job != nil {
		v.setJob(c.Job, lf, loc)
	}
	if c.Figures != nil {
		v.setFigures(c.Figures, lf, org)
	}
	for name, val := range v {
		v[name] = text.Truncate(val, VarLimit(name)) // links are within it already
	}
	return v
}

// setClient sets the client.* variables.
func (v Vars) setClient(cl *automation.Client, country string) {
	first := text.Truncate(strings.TrimSpace(cl.FirstName), VarLimit("client.first_name"))
	last := text.Truncate(strings.TrimSpace(cl.LastName), VarLimit("client.last_name"))
	v["client.first_name"] = first
	v["client.last_name"] = last
	v["client.full_name"] = strings.TrimSpace(first + " " + last)
	v["client.email"] = cl.Email
	v["client.phone"] = displayPhone(cl.Phone, country)
}

// setInvoice sets the invoice.* variables: money in the invoice's
// currency, dates in loc, its own links or else the organisation's.
func (v Vars) setInvoice(inv *automation.Invoice, lf *locale.Formatter, loc *time.Location, now time.Time, orgLink string) {
	v["invoice.number"] = inv.Number
	v["invoice.total"] = FormatMoneyIn(lf, inv.Total, inv.Currency)
	v["invoice.balance"] = FormatMoneyIn(lf, inv.Balance, inv.Currency)
	if link, ok := LinkURL(inv.PortalURL); ok {
		v["invoice.portal_url"] = link
	} else {
		v["invoice.portal_url"] = orgLink
	}
	if link, ok := LinkURL(inv.PayURL); ok {
		v["invoice.pay_url"] = link
	} else {
		v["invoice.pay_url"] = v["invoice.portal_url"]
	}
	if due, err := time.ParseInLocation(time.DateOnly, inv.DueDate, loc); err == nil {
		v["invoice.due_date"] = lf.Date(due)
		v["invoice.days_overdue"] = strconv.Itoa(daysOverdue(due, now.In(loc)))
	} else {
		v["invoice.due_date"] = inv.DueDate
	}
}

// setJob sets the job.* variables, times in loc.
func (v Vars) setJob(j *automation.Job, lf *locale.Formatter, loc *time.Location) {
	v["job.title"] = j.Title
	v["job.type"] = j.JobType
	v["job.address"] = j.Address
	if j.ScheduledStart != nil {
		t := j.ScheduledStart.In(loc)
		v["job.scheduled_start"] = lf.DateTime(t)
		v["job.scheduled_date"] = lf.LongDate(t)
	}
	if j.CompletedAt != nil {
		v["job.completed_at"] = lf.Date(j.CompletedAt.In(loc))
	}
}

// setFigures sets the summary.* variables of a scheduled summary.
func (v Vars) setFigures(fg *automation.OrgFigures, lf *locale.Formatter, org automation.Organization) {
	v["summary.open_invoices"] = strconv.Itoa(fg.OpenInvoices)
	v["summary.overdue_invoices"] = strconv.Itoa(fg.OverdueInvoices)
	amounts := make([]string, 0, len(fg.OpenBalances))
	for _, b := range fg.OpenBalances {
		amounts = append(amounts, FormatMoneyIn(lf, b.Amount, b.Currency))
	}
	if len(amounts) == 0 {
		amounts = append(amounts, FormatMoneyIn(lf, "0", text.FirstNonEmpty(currencyOf(org), "USD")))
	}
	v["summary.open_balance"] = strings.Join(amounts, " + ")
	v["summary.reminders_sent_yesterday"] = strconv.Itoa(fg.RemindersSentYesterday)
}

// SetUnsubscribe sets the opt-out link of a message and the footer's
// sentence around it ("" = the message needs none: both stay empty). The
// link is kept only when it is http(s) (LinkURL).
func (v Vars) SetUnsubscribe(link string) {
	link, ok := LinkURL(link)
	if !ok || link == "" {
		v[VarUnsubscribeURL], v["footer.unsubscribe_text"], v["footer.unsubscribe_label"] = "", "", ""
		return
	}
	v[VarUnsubscribeURL] = link
	v["footer.unsubscribe_text"] = "Don't want these messages? "
	v["footer.unsubscribe_label"] = "Unsubscribe"
}

// warned remembers the unusable locales already logged, per organisation.
var warned sync.Map // org id + "|" + locale -> true

// Locale returns the formatter of an organisation (locale.Resolve of its
// locale and country). An unusable locale falls back to the country's
// default and is logged once per organisation and value (never fails).
func Locale(org automation.Organization) *locale.Formatter {
	r := locale.Resolve(org.Locale, org.CountryCode)
	if r.FellBack {
		req := text.Truncate(r.Requested, 35)
		if _, seen := warned.LoadOrStore(org.ID.String()+"|"+req, true); !seen {
			slog.Warn("organisation locale unusable, using its country's default",
				"organization_id", org.ID, "locale", req, "used", r.Formatter.Tag())
		}
	}
	return r.Formatter
}

// currencyOf is the local currency of an organisation's country (CLDR),
// "" when unknown.
func currencyOf(org automation.Organization) string { return locale.CountryCurrency(org.CountryCode) }

// oneLine writes a multi-line postal address on one line ("12 High St,
// London"), blank lines dropped.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return strings.TrimSpace(s)
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(strings.TrimRight(l, ",")); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ", ")
}

// displayPhone formats a stored number for people to read (phone.Display),
// or gives it back as written when it is not a valid number.
func displayPhone(raw, country string) string {
	if s, err := phone.Display(raw, country); err == nil {
		return s
	}
	// A number of a range the metadata does not list as assigned (UK's
	// 07700 900xxx drama range, new ranges) but of a possible length is
	// still written the country's way, when it is in international form.
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "+") && len(raw) <= 32 {
		if n, err := phonenumbers.Parse(raw, ""); err == nil && phonenumbers.IsPossibleNumber(n) {
			format := phonenumbers.INTERNATIONAL
			if phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode())) == strings.ToUpper(strings.TrimSpace(country)) {
				format = phonenumbers.NATIONAL
			}
			return phonenumbers.Format(n, format)
		}
	}
	return raw
}

// orgPhones remembers how organisations' phone numbers display: every
// execution of an organisation shows the same number, and parsing one
// (phone.Display) costs tens of microseconds. Clients' numbers are not
// kept (each is shown about once per batch, and is personal data).
var orgPhones = phoneCache{max: 1024}

// phoneCache is a bounded memo of displayPhone; emptied when full.
type phoneCache struct {
	mu  sync.Mutex
	m   map[[2]string]string // {raw, country} -> display
	max int
}

// display is displayPhone(raw, country), remembered.
func (p *phoneCache) display(raw, country string) string {
	if raw == "" {
		return ""
	}
	k := [2]string{raw, country}
	p.mu.Lock()
	s, ok := p.m[k]
	p.mu.Unlock()
	if ok {
		return s
	}
	s = displayPhone(raw, country)
	p.mu.Lock()
	if p.m == nil || len(p.m) >= p.max {
		p.m = make(map[[2]string]string)
	}
	p.m[k] = s
	p.mu.Unlock()
	return s
}

// daysOverdue counts calendar days from due to today (both local), never negative.
func daysOverdue(due, now time.Time) int {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	d := time.Date(due.Year(), due.Month(), due.Day(), 0, 0, 0, 0, time.UTC)
	n := int(today.Sub(d).Hours() / 24)
	if n < 0 {
		return 0
	}
	return n
}

// zones caches loaded time zones (time.LoadLocation reads the zone file).
var zones sync.Map // name -> *time.Location

// location loads an IANA zone, UTC when empty or unknown.
func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	zones.Store(name, loc)
	return loc
}

// currency describes how an ISO 4217 currency is written.
type currency struct {
	symbol   string
	decimals int
}

var currencies = map[string]currency{
	"USD": {"$", 2}, "EUR": {"€", 2}, "GBP": {"£", 2}, "JPY": {"¥", 0},
	"CAD": {"CA$", 2}, "AUD": {"A$", 2}, "NZD": {"NZ$", 2}, "CHF": {"CHF ", 2},
	"INR": {"₹", 2}, "MXN": {"MX$", 2}, "ZAR": {"R", 2}, "SEK": {"SEK ", 2},
	"NOK": {"NOK ", 2}, "DKK": {"DKK ", 2}, "SGD": {"S$", 2}, "IEP": {"£", 2},
}

// FormatMoney formats a decimal amount ("1250.00") in a currency:
// "$1,250.00", "€80.00", "£12.50"; a currency without a known symbol is
// written after the amount ("1,250.00 XYZ"). An amount that is not a
// decimal number is returned unchanged.
func FormatMoney(amount, currencyCode string) string {
	amount = strings.TrimSpace(amount)
	code := strings.ToUpper(strings.TrimSpace(currencyCode))
	if code == "" {
		code = "USD"
	}
	cur, known := currencies[code]
	decimals := 2
	if known {
		decimals = cur.decimals
	}
	num, ok := formatDecimal(amount, decimals)
	if !ok {
		return amount
	}
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(num, "-")
	sign := ""
	if neg {
		sign = "-"
	}
	if !known {
		return sign + num + " " + code
	}
	return sign + cur.symbol + num
}

// FormatMoneyIn formats a decimal amount in a currency the way a locale
// writes it: "$1,250.00" (en-US), "1 250,00 $" (CAD in fr-CA), "US$80.00"
// (USD in en-GB); rounded half away from zero to the currency's decimals,
// without going through float64 for the rounding. An amount that is not a
// decimal number is returned unchanged.
func FormatMoneyIn(f *locale.Formatter, amount, currencyCode string) string {
	amount = strings.TrimSpace(amount)
	code := strings.ToUpper(strings.TrimSpace(currencyCode))
	if code == "" {
		code = "USD"
	}
	scale := locale.Scale(code)
	num, ok := formatDecimal(amount, scale)
	if !ok {
		return amount
	}
	if s, ok := f.Money(strings.ReplaceAll(num, ",", ""), code, scale); ok {
		return s
	}
	return FormatMoney(amount, code)
}

// formatDecimal rounds a decimal string half away from zero to the given
// number of decimals and groups the integer part by thousands, without
// going through float64.
func formatDecimal(s string, decimals int) (string, bool) {
	if s == "" {
		return "", false
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" {
		intPart = "0"
	}
	if !allDigits(intPart) || (frac != "" && !allDigits(frac)) || strings.Count(s, ".") > 1 {
		return "", false
	}
	// Pad and round.
	for len(frac) < decimals+1 {
		frac += "0"
	}
	digits := []byte(strings.TrimLeft(intPart, "0") + frac[:decimals])
	if len(digits) == 0 {
		digits = []byte("0")
	}
	if frac[decimals] >= '5' {
		digits = roundUp(digits)
	}
	for len(digits) < decimals+1 {
		digits = append([]byte{'0'}, digits...)
	}
	ip := string(digits[:len(digits)-decimals])
	fp := string(digits[len(digits)-decimals:])
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	out := groupThousands(ip)
	if decimals > 0 {
		out += "." + fp
	}
	if neg && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return out, true
}

// roundUp adds one to the decimal number of digits (ASCII), carrying.
func roundUp(digits []byte) []byte {
	i := len(digits) - 1
	for ; i >= 0; i-- {
		if digits[i] == '9' {
			digits[i] = '0'
			continue
		}
		digits[i]++
		break
	}
	if i < 0 {
		digits = append([]byte{'1'}, digits...)
	}
	return digits
}

// groupThousands writes the digits of ip in groups of three, with commas.
func groupThousands(ip string) string {
	var b strings.Builder
	for i, r := range ip {
		if i > 0 && (len(ip)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func init() {
	for _, n := range DefaultTemplateVariables {
		known[n] = true
	}
}
