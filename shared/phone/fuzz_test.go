package phone_test

import (
	"strings"
	"testing"

	"github.com/dueflow/dueflow/shared/phone"
)

// FuzzParseE164: no panic; every accepted number is "+" and at most 15
// digits (E.164), parsing it again (in any default country) gives it back
// unchanged, and it can be displayed.
func FuzzParseE164(f *testing.F) {
	for _, s := range []string{"(555) 123-4567", "+44 (0)20 7946 0958", "0044 20 7946 0958", "011 44 20 7946 0958", "0412 345 678", "+1234567890", "", "+", "00", "0", "++1", "+0 123", "(0)", "+881 6 1234 5678", "0300 123 4567", "090-1234-5678"} {
		f.Add(s, "US")
		f.Add(s, "GB")
		f.Add(s, "AU")
	}
	f.Fuzz(func(t *testing.T, raw, country string) {
		got, err := phone.ParseE164(raw, country)
		if err != nil {
			return
		}
		digits := strings.TrimPrefix(got, "+")
		if !strings.HasPrefix(got, "+") || len(digits) < 5 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("ParseE164(%q, %q) = %q: not E.164", raw, country, got)
		}
		again, err := phone.ParseE164(got, "DE")
		if err != nil || again != got {
			t.Fatalf("ParseE164(%q) = %q, %v: not stable", got, again, err)
		}
		if _, err := phone.Display(got, country); err != nil {
			t.Fatalf("Display(%q, %q): %v", got, country, err)
		}
	})
}
