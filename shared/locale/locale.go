// Package locale formats dates, times and money amounts the way an
// organisation's readers write them (BCP 47 locales such as en-US, en-GB,
// en-AU, fr-CA), from CLDR data: dates, times and the currency symbol's side
// from github.com/go-playground/locales (generated from CLDR), numbers and
// currency symbols from golang.org/x/text. Formatters are built once per
// locale and cached; every method is safe for concurrent use.
package locale

import (
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-playground/locales"
	gcur "github.com/go-playground/locales/currency"
	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// Fallback is the locale used when neither the organisation's locale nor its
// country gives a usable one.
const Fallback = "en-US"

// Formatter writes dates, times and amounts in one locale.
type Formatter struct {
	name    string
	tr      locales.Translator
	printer *message.Printer
	// The short time as the locale writes it, taken apart once from the
	// CLDR data: a 12-hour clock, and the text around hour and minute.
	hour12     bool
	padHour    bool   // CLDR's "HH": 09:05
	timeLayout string // "{h}", "{m}" and "{a}" (the period) stand for the parts
	am, pm     string
	// symbolAfter: the locale writes the currency symbol after the amount.
	symbolAfter bool
	// The locale's number symbols, taken from x/text once (num): amounts
	// are written with them directly, without x/text's per-call work.
	num     numberFormat
	symbols sync.Map // ISO code -> symbol in this locale
}

// Resolution is the outcome of Resolve: the locale used and why.
type Resolution struct {
	Formatter *Formatter
	// Requested is the locale asked for, trimmed ("" = none given).
	Requested string
	// FellBack is true when Requested was given but is malformed or names
	// a language dueflow has no data for: the country's default is used.
	FellBack bool
}

// maxTag bounds a usable tag (BCP 47 allows long ones; none dueflow has
// data for is longer).
const maxTag = 35

// cache holds each (tag, country) seen: one per organisation's setting.
var cache sync.Map // tag|country -> resolved

// Resolve returns the formatter of an organisation: its locale when it is a
// well-formed BCP 47 tag of a language dueflow has data for (matched to the
// closest supported locale: en-NZ, en-IE, fr-BE, ...), else the default of
// its country (ISO 3166-1 alpha-2; the country's most used language by CLDR's
// likely subtags, in that country), else Fallback. It never fails.
func Resolve(tag, country string) Resolution {
	tag = strings.TrimSpace(tag)
	country = strings.ToUpper(strings.TrimSpace(country))
	if len(country) != 2 {
		country = "" // not an ISO 3166-1 alpha-2 code
	}
	if len(tag) > maxTag {
		// Not a locale dueflow has data for (values from tenants' rows
		// may be of any size): resolved without filling the cache.
		return Resolution{Formatter: forCountry(country), Requested: tag, FellBack: true}
	}
	key := tag + "|" + country
	if f, ok := cache.Load(key); ok {
		r := f.(resolved)
		return Resolution{Formatter: r.f, Requested: tag, FellBack: r.fellBack}
	}
	var r resolved
	if tag != "" {
		if f := match(tag); f != nil {
			r.f = f
		} else {
			r.fellBack = true
		}
	}
	if r.f == nil {
		r.f = forCountry(country)
	}
	cache.Store(key, r)
	return Resolution{Formatter: r.f, Requested: tag, FellBack: r.fellBack}
}

type resolved struct {
	f        *Formatter
	fellBack bool
}

// ForCountry returns the formatter of a country's default locale (Resolve
// with no locale).
func ForCountry(country string) *Formatter { return Resolve("", country).Formatter }

// forCountry: the likely language of the region, in the region.
func forCountry(country string) *Formatter {
	if reg, err := language.ParseRegion(country); err == nil && len(country) == 2 && reg.IsCountry() {
		if und, err := language.Compose(language.Und, reg); err == nil {
			if base, conf := und.Base(); conf != language.No {
				if t, err := language.Compose(base, reg); err == nil {
					if f := match(t.String()); f != nil {
						return f
					}
				}
			}
		}
	}
	return formatter(Fallback)
}

// match returns the formatter of the supported locale closest to tag, nil
// when tag is malformed or its language is not supported.
func match(tag string) *Formatter {
	t, err := language.Parse(tag)
	if err != nil || t == language.Und {
		return nil
	}
	_, idx, conf := matcher.Match(t)
	if conf < language.High {
		return nil
	}
	return formatter(supportedTags[idx])
}

var formatters sync.Map // supported tag -> *Formatter

func formatter(name string) *Formatter {
	if f, ok := formatters.Load(name); ok {
		return f.(*Formatter)
	}
	f := newFormatter(name)
	got, _ := formatters.LoadOrStore(name, f)
	return got.(*Formatter)
}

func newFormatter(name string) *Formatter {
	tr := supported[name]()
	tag := language.MustParse(name)
	f := &Formatter{name: name, tr: tr, printer: message.NewPrinter(tag)}
	// The short time at 13:07 shows the clock and the parts' places.
	probe := tr.FmtTimeShort(time.Date(2001, 1, 1, 13, 7, 0, 0, time.UTC))
	f.hour12 = !strings.Contains(probe, "13")
	f.padHour = strings.Contains(tr.FmtTimeShort(time.Date(2001, 1, 1, 1, 7, 0, 0, time.UTC)), "01")
	layout := strings.Replace(probe, "07", "{m}", 1)
	if f.hour12 {
		am, pm := period(tr, 1), period(tr, 13)
		layout = strings.Replace(layout, "1", "{h}", 1)
		if pm != "" {
			layout = strings.Replace(layout, pm, "{a}", 1)
		} else if p := parent(name); p != nil {
			// The generated code left the period out (an empty
			// abbreviated form, e.g. en_AU): CLDR inherits it from the
			// language (en), and so does its place after the time.
			am, pm = period(p, 1), period(p, 13)
			layout = strings.TrimSpace(layout) + " {a}"
		}
		f.am, f.pm = am, pm
	} else {
		layout = strings.Replace(layout, "13", "{h}", 1)
	}
	f.timeLayout = layout
	// The side of the currency symbol: CLDR's currency pattern starts
	// with the number or with the symbol.
	c := strings.TrimLeft(tr.FmtCurrency(1, 0, gcur.USD), "-\u200e\u200f")
	f.symbolAfter = c != "" && c[0] >= '0' && c[0] <= '9'
	f.num = learnNumbers(f.printer)
	return f
}

// numberFormat is how a locale writes a decimal number: decimal separator,
// group separator, primary and secondary group sizes (3 and 3; 3 and 2 in
// en-IN), and whether a 4-digit integer part stays ungrouped (CLDR's
// minimum grouping digits 2, as in es-ES). ok is false when the probes
// could not be read or the result differs from x/text's for any sample:
// amounts then go through x/text on every call.
type numberFormat struct {
	decimal, group       string
	primary, secondary   int
	minGrouping2, direct bool
}

// learnNumbers reads a locale's number format from x/text's output for
// probe values and keeps it only when it reproduces x/text's output for
// a set of samples.
func learnNumbers(p *message.Printer) numberFormat {
	xt := func(v float64, scale int) string { return spaces(p.Sprint(number.Decimal(v, number.Scale(scale)))) }
	probe := xt(1234567.25, 2)
	i := strings.LastIndex(probe, "7")
	if i < 0 || !strings.HasSuffix(probe, "25") {
		return numberFormat{}
	}
	nf := numberFormat{decimal: probe[i+1 : len(probe)-2], primary: 3, secondary: 3}
	var runs []string
	var seps []string
	cur, sep := "", ""
	for _, r := range probe[:i+1] {
		if r >= '0' && r <= '9' {
			if sep != "" {
				seps, sep = append(seps, sep), ""
			}
			cur += string(r)
			continue
		}
		if cur != "" {
			runs, cur = append(runs, cur), ""
		}
		sep += string(r)
	}
	runs = append(runs, cur)
	switch {
	case len(runs) == 1:
		nf.primary = 0 // no grouping
	case len(seps) > 0:
		nf.group = seps[0]
		nf.primary = len(runs[len(runs)-1])
		nf.secondary = nf.primary
		if len(runs) >= 3 {
			nf.secondary = len(runs[len(runs)-2])
		}
	}
	nf.minGrouping2 = strings.Contains(xt(1234, 0), "1234")
	nf.direct = true
	for _, v := range []struct {
		f     float64
		s     string
		scale int
	}{{1234567.25, "1234567.25", 2}, {1234.5, "1234.50", 2}, {12345.5, "12345.50", 2}, {12.5, "12.50", 2},
		{0.5, "0.50", 2}, {999, "999", 0}, {1234, "1234", 0}, {123456789012.99, "123456789012.99", 2}, {1000000, "1000000", 0}} {
		if got, want := nf.write(v.s), xt(v.f, v.scale); got != want {
			return numberFormat{}
		}
	}
	return nf
}

// write writes an unsigned decimal ("1234567.25") with the locale's
// separators and grouping.
func (nf numberFormat) write(s string) string {
	ip, fp, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	b.Grow(len(s) + 8)
	n := len(ip)
	group := nf.primary > 0 && !(nf.minGrouping2 && n <= 4)
	for i := 0; i < n; i++ {
		b.WriteByte(ip[i])
		left := n - 1 - i // digits still to write
		if !group || left == 0 {
			continue
		}
		if left == nf.primary || (left > nf.primary && (left-nf.primary)%nf.secondary == 0) {
			b.WriteString(nf.group)
		}
	}
	if hasFrac {
		b.WriteString(nf.decimal)
		b.WriteString(fp)
	}
	return b.String()
}

// period returns the period marker ("am", "pm") of a short time at hour:07
// (1 or 13) in a 12-hour locale: what is left of it without the digits.
func period(tr locales.Translator, hour int) string {
	s := tr.FmtTimeShort(time.Date(2001, 1, 1, hour, 7, 0, 0, time.UTC))
	s = strings.Replace(s, "07", "", 1)
	s = strings.Replace(s, "1", "", 1)
	return strings.Trim(s, " :\u00a0\u202f")
}

// Tag returns the BCP 47 tag of the locale ("en-GB").
func (f *Formatter) Tag() string { return f.name }

// Hour12 reports whether the locale writes times on a 12-hour clock.
func (f *Formatter) Hour12() bool { return f.hour12 }

// Date writes a date in the locale's medium form: "Dec 3, 2026" (en-US),
// "3 Dec 2026" (en-GB, en-AU), "3 déc. 2026" (fr-CA).
func (f *Formatter) Date(t time.Time) string { return spaces(f.tr.FmtDateMedium(t)) }

// LongDate writes a date with its weekday in the locale's full form:
// "Thursday, December 3, 2026" (en-US), "jeudi 3 décembre 2026" (fr-CA).
func (f *Formatter) LongDate(t time.Time) string { return spaces(f.tr.FmtDateFull(t)) }

// Time writes a time of day in the locale's short form: "5:01 pm" (en-US),
// "17:01" (en-GB), "17 h 01" (fr-CA); midnight is "12:05 am" on a 12-hour
// clock.
func (f *Formatter) Time(t time.Time) string {
	h := t.Hour()
	period := f.am
	if f.hour12 {
		if h >= 12 {
			period = f.pm
		}
		h %= 12
		if h == 0 {
			h = 12
		}
	}
	hs := strconv.Itoa(h)
	if f.padHour && h < 10 {
		hs = "0" + hs
	}
	ms := strconv.Itoa(t.Minute())
	if len(ms) == 1 {
		ms = "0" + ms
	}
	r := strings.NewReplacer("{h}", hs, "{m}", ms, "{a}", period)
	return spaces(r.Replace(f.timeLayout))
}

// DateTime writes a moment as its long date and short time with the zone's
// abbreviation: "Thursday, 3 December 2026, 17:01 AEDT".
func (f *Formatter) DateTime(t time.Time) string {
	return f.LongDate(t) + ", " + f.Time(t) + " " + t.Format("MST")
}

// Symbol returns how the locale writes a currency (ISO 4217): "$" for USD
// in en-US, "US$" in en-GB, "$" for CAD in fr-CA; the code itself when
// the currency is unknown.
func (f *Formatter) Symbol(code string) string {
	code = strings.ToUpper(strings.TrimSpace(code))
	if s, ok := f.symbols.Load(code); ok {
		return s.(string)
	}
	u, err := currency.ParseISO(code)
	if err != nil {
		return code // not cached: any text a row holds
	}
	sym := strings.TrimSpace(spaces(f.printer.Sprint(currency.Symbol(u))))
	f.symbols.Store(code, sym)
	return sym
}

// Scale returns the number of decimals a currency's amounts are written
// with (2 for USD, 0 for JPY; 2 when the currency is unknown).
func Scale(code string) int {
	u, err := currency.ParseISO(strings.ToUpper(strings.TrimSpace(code)))
	if err != nil {
		return 2
	}
	s, _ := currency.Standard.Rounding(u)
	return s
}

// Money writes an amount, already rounded to the currency's scale (digits
// and at most one "." with exactly scale decimals, optionally signed), in
// the locale: "$1,250.50" (en-US), "1 250,50 $" (CAD in fr-CA), "US$1,250.50"
// (USD in en-GB). ok is false when the amount is not such a number, has
// more digits than are written exactly (15), or code is not an ISO 4217
// currency.
func (f *Formatter) Money(amount, code string, scale int) (string, bool) {
	neg := strings.HasPrefix(amount, "-")
	abs := strings.TrimLeft(amount, "+-")
	if len(strings.ReplaceAll(abs, ".", "")) > 15 {
		return "", false
	}
	v, err := strconv.ParseFloat(abs, 64)
	if err != nil || abs == "" || strings.ContainsAny(abs, "eEinfINFxX_") {
		return "", false
	}
	if _, err := currency.ParseISO(code); err != nil {
		return "", false
	}
	var num string
	if f.num.direct && scaleOf(abs) == scale {
		num = f.num.write(strings.TrimLeft(abs, "0"))
		if strings.HasPrefix(num, f.num.decimal) || num == "" {
			num = "0" + num
		}
	} else {
		num = spaces(f.printer.Sprint(number.Decimal(v, number.Scale(scale))))
	}
	sym := f.Symbol(code)
	var out string
	switch {
	case f.symbolAfter:
		out = num + " " + sym
	case sym != "" && unicode.IsLetter(lastRune(sym)):
		// CLDR's currency spacing: a space between letters and digits
		out = sym + " " + num
	default:
		out = sym + num
	}
	if neg && v != 0 {
		out = "-" + out
	}
	return out, true
}

// scaleOf is the number of decimals of a decimal string.
func scaleOf(s string) int {
	if _, fp, ok := strings.Cut(s, "."); ok {
		return len(fp)
	}
	return 0
}

func lastRune(s string) rune {
	r := []rune(s)
	return r[len(r)-1]
}

// spaces writes the no-break spaces CLDR puts in numbers, dates and times
// ("1 250,50", "17 h 01") as plain spaces: they are outside GSM-7 and would
// turn a whole SMS into UCS-2 (70 characters a segment instead of 160).
func spaces(s string) string {
	if !strings.ContainsAny(s, "\u00a0\u202f\u2009") {
		return s
	}
	return strings.NewReplacer("\u00a0", " ", "\u202f", " ", "\u2009", " ").Replace(s)
}

// CountryCurrency returns the currency of a country (ISO 3166-1 alpha-2)
// by CLDR ("GBP" for GB), "" when unknown.
func CountryCurrency(country string) string {
	reg, err := language.ParseRegion(strings.TrimSpace(country))
	if err != nil {
		return ""
	}
	u, ok := currency.FromRegion(reg)
	if !ok {
		return ""
	}
	return u.String()
}
