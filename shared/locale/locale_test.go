package locale

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/number"
)

func TestResolve(t *testing.T) {
	for _, c := range []struct {
		tag, country, want string
		fellBack           bool
	}{
		{"en-GB", "US", "en-GB", false},
		{"EN-gb", "", "en-GB", false},
		{"en_AU", "", "en-AU", false}, // underscore form is accepted by BCP 47 parsing
		{"fr-CA", "CA", "fr-CA", false},
		{"en-SG", "", "en-GB", false}, // closest supported English
		{"", "CA", "en-CA", false},    // country default: CLDR likely language
		{"", "BE", "nl-BE", false},
		{"", "au", "en-AU", false},
		{"", "", Fallback, false},
		{"", "ZZ", Fallback, false},
		{"xx-YY", "GB", "en-GB", true},     // unknown language: the country's default
		{"garbage!!", "AU", "en-AU", true}, // malformed
		{"ja-JP", "FR", "fr-FR", true},     // a language without data here
		{strings.Repeat("en-", 1000), "GB", "en-GB", true},
		{"en-GB", "GBR", "en-GB", false},
	} {
		r := Resolve(c.tag, c.country)
		if r.Formatter.Tag() != c.want || r.FellBack != c.fellBack {
			t.Errorf("Resolve(%q, %q) = %s fellBack=%v, want %s %v", c.tag, c.country, r.Formatter.Tag(), r.FellBack, c.want, c.fellBack)
		}
	}
}

func TestFormats(t *testing.T) {
	aedt := time.FixedZone("AEDT", 11*3600)
	at := time.Date(2026, 12, 3, 17, 1, 0, 0, aedt)
	morning := time.Date(2026, 12, 3, 9, 5, 0, 0, aedt)
	midnight := time.Date(2026, 12, 3, 0, 5, 0, 0, aedt)
	for _, c := range []struct {
		tag, date, long, tm, morning, midnight, usd, local, localCode string
	}{
		{"en-US", "Dec 3, 2026", "Thursday, December 3, 2026", "5:01 pm", "9:05 am", "12:05 am", "$1,250.50", "$1,250.50", "USD"},
		{"en-GB", "3 Dec 2026", "Thursday, 3 December 2026", "17:01", "09:05", "00:05", "US$1,250.50", "£1,250.50", "GBP"},
		// en_AU's generated data lacks the period; CLDR inherits en's
		{"en-AU", "3 Dec 2026", "Thursday, 3 December 2026", "5:01 pm", "9:05 am", "12:05 am", "USD 1,250.50", "$1,250.50", "AUD"},
		{"fr-CA", "3 déc. 2026", "jeudi 3 décembre 2026", "17 h 01", "09 h 05", "00 h 05", "1 250,50 $ US", "1 250,50 $", "CAD"},
	} {
		f := Resolve(c.tag, "").Formatter
		usd, ok1 := f.Money("1250.50", "USD", 2)
		local, ok2 := f.Money("1250.50", c.localCode, 2)
		got := []string{f.Date(at), f.LongDate(at), f.Time(at), f.Time(morning), f.Time(midnight), usd, local}
		want := []string{c.date, c.long, c.tm, c.morning, c.midnight, c.usd, c.local}
		if !ok1 || !ok2 {
			t.Errorf("%s: Money refused a valid amount", c.tag)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: part %d = %q, want %q", c.tag, i, got[i], want[i])
			}
		}
	}
}

func TestMoney(t *testing.T) {
	f := Resolve("en-US", "").Formatter
	for _, c := range []struct {
		amount, code string
		scale        int
		want         string
		ok           bool
	}{
		{"-80.00", "EUR", 2, "-€80.00", true},
		{"0.00", "USD", 2, "$0.00", true},
		{"-0.00", "USD", 2, "$0.00", true},
		{"1234567", "JPY", 0, "¥1,234,567", true},
		{"999999999999.99", "USD", 2, "$999,999,999,999.99", true},
		{"12.50", "XYZ", 2, "", false},
		{"12.50", "usd", 2, "$12.50", true},
		{"1e5", "USD", 2, "", false},
		{"NaN", "USD", 2, "", false},
		{"", "USD", 2, "", false},
		{"12345678901234567.00", "USD", 2, "", false},
	} {
		got, ok := f.Money(c.amount, c.code, c.scale)
		if got != c.want || ok != c.ok {
			t.Errorf("Money(%q, %q) = %q %v, want %q %v", c.amount, c.code, got, ok, c.want, c.ok)
		}
	}
	if Scale("JPY") != 0 || Scale("USD") != 2 || Scale("nope") != 2 {
		t.Errorf("Scale: JPY %d USD %d unknown %d", Scale("JPY"), Scale("USD"), Scale("nope"))
	}
}

// BenchmarkMoney measures one amount in a cached locale (the render hot path).
func BenchmarkMoney(b *testing.B) {
	f := Resolve("fr-CA", "CA").Formatter
	b.ReportAllocs()
	for b.Loop() {
		f.Money("1250.50", "CAD", 2)
	}
}

// BenchmarkResolve measures a cached lookup.
func BenchmarkResolve(b *testing.B) {
	for b.Loop() {
		Resolve("en-GB", "GB")
	}
}

// BenchmarkDateTime measures a moment's long date and short time.
func BenchmarkDateTime(b *testing.B) {
	f := Resolve("en-GB", "GB").Formatter
	t := time.Date(2026, 12, 3, 17, 1, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		f.DateTime(t)
	}
}

// Amounts written with the learnt separators equal x/text's own output in
// every supported locale (en-IN's 2-digit groups, es-ES's ungrouped 4-digit
// amounts included), and the fast path is on for them.
func TestNumbersMatchXText(t *testing.T) {
	for _, name := range supportedTags {
		f := formatter(name)
		if !f.num.direct {
			t.Errorf("%s: number format not learnt", name)
			continue
		}
		for _, a := range []string{"0.00", "0.05", "7.00", "999.99", "1000.00", "1250.50", "10000.00", "123456.78", "1234567.89", "98765432109.99"} {
			v, _ := strconv.ParseFloat(a, 64)
			want := spaces(f.printer.Sprint(number.Decimal(v, number.Scale(2))))
			if got := f.num.write(a); got != want {
				t.Errorf("%s: %s written %q, x/text %q", name, a, got, want)
			}
		}
	}
	inr := formatter("en-IN")
	if got := inr.num.write("1234567.89"); got != "12,34,567.89" {
		t.Errorf("en-IN: %q", got)
	}
}
