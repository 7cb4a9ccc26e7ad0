// Package phone validates phone numbers and normalises them to E.164
// ("+15551234567"), reading national numbers in the organisation's country.
// It knows the numbering rules of a small set of countries (table below);
// numbers already written with a "+" or an international prefix are
// accepted for any country code with a plausible length.
package phone

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; every error of ParseE164 wraps ErrInvalid, and a national
// number with an unsupported default country also ErrUnknownCountry.
var (
	ErrInvalid        = errors.New("invalid phone number")
	ErrUnknownCountry = errors.New("unsupported default country")
)

// Country holds the numbering rules used for one country.
type Country struct {
	Code       string // ISO 3166-1 alpha-2
	Calling    string // country calling code, without "+"
	Trunk      string // national trunk prefix dropped in E.164 ("0"), "" when none
	IntlPrefix string // international dialling prefix ("00", "011")
	MinLen     int    // national significant number length range
	MaxLen     int
}

// countries lists the supported default regions.
var countries = map[string]Country{
	"US": {"US", "1", "", "011", 10, 10},
	"CA": {"CA", "1", "", "011", 10, 10},
	"GB": {"GB", "44", "0", "00", 9, 10},
	"IE": {"IE", "353", "0", "00", 7, 9},
	"AU": {"AU", "61", "0", "0011", 9, 9},
	"NZ": {"NZ", "64", "0", "00", 8, 10},
	"DE": {"DE", "49", "0", "00", 6, 13},
	"AT": {"AT", "43", "0", "00", 6, 13},
	"CH": {"CH", "41", "0", "00", 9, 9},
	"FR": {"FR", "33", "0", "00", 9, 9},
	"BE": {"BE", "32", "0", "00", 8, 9},
	"NL": {"NL", "31", "0", "00", 9, 9},
	"ES": {"ES", "34", "", "00", 9, 9},
	"IT": {"IT", "39", "", "00", 6, 11}, // Italian numbers keep their leading 0
	"PT": {"PT", "351", "", "00", 9, 9},
	"SE": {"SE", "46", "0", "00", 7, 9},
	"NO": {"NO", "47", "", "00", 8, 8},
	"DK": {"DK", "45", "", "00", 8, 8},
	"FI": {"FI", "358", "0", "00", 5, 12},
	"PL": {"PL", "48", "", "00", 9, 9},
	"MX": {"MX", "52", "", "00", 10, 10},
	"ZA": {"ZA", "27", "0", "00", 9, 9},
	"IN": {"IN", "91", "0", "00", 10, 10},
	"SG": {"SG", "65", "", "000", 8, 8},
}

// byCalling maps calling codes to one supported country (NANP -> US).
var byCalling = func() map[string]Country {
	m := map[string]Country{}
	for _, c := range countries {
		m[c.Calling] = c
	}
	m["1"] = countries["US"] // US and CA share the rules of calling code 1
	return m
}()

// Lookup returns the rules of a supported country (case-insensitive code).
func Lookup(code string) (Country, bool) {
	c, ok := countries[strings.ToUpper(strings.TrimSpace(code))]
	return c, ok
}

// ParseE164 validates raw and returns it in E.164 form. National numbers
// are read in defaultCountry (ISO alpha-2, e.g. the organisation's
// country_code); numbers starting with "+" or an international prefix
// ("00", "011") carry their own country. Separators " ()-./" are allowed,
// letters and other characters are not; "(0)" after a country code is
// dropped. Placeholders such as "+1234567890" are rejected.
func ParseE164(raw, defaultCountry string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	s = strings.Replace(s, "(0)", "", 1)
	plus := strings.HasPrefix(s, "+")
	if plus {
		s = s[1:]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '/' || r == '\u00a0':
		default:
			return "", fmt.Errorf("%w: unexpected character %q", ErrInvalid, r)
		}
	}
	digits := b.String()
	if len(digits) < 5 {
		return "", fmt.Errorf("%w: too short", ErrInvalid)
	}
	if len(digits) > 17 {
		return "", fmt.Errorf("%w: too long", ErrInvalid)
	}
	if plus {
		return international(digits)
	}
	def, ok := Lookup(defaultCountry)
	if strings.HasPrefix(digits, "00") || (ok && def.IntlPrefix != "" && strings.HasPrefix(digits, def.IntlPrefix)) {
		prefix := "00"
		if ok && strings.HasPrefix(digits, def.IntlPrefix) {
			prefix = def.IntlPrefix
		}
		return international(digits[len(prefix):])
	}
	if !ok {
		return "", fmt.Errorf("%w: %w %q: write the number with its +country code", ErrInvalid, ErrUnknownCountry, defaultCountry)
	}
	return national(digits, def)
}

// international reads digits that start with a country calling code.
func international(digits string) (string, error) {
	for n := 1; n <= 3 && n < len(digits); n++ {
		c, ok := byCalling[digits[:n]]
		if !ok {
			continue
		}
		nsn := digits[n:]
		if c.Trunk != "" && strings.HasPrefix(nsn, c.Trunk) && len(nsn)-len(c.Trunk) >= c.MinLen {
			nsn = nsn[len(c.Trunk):] // "+44 020 ..." written with the trunk 0
		}
		return validate(nsn, c)
	}
	// A country outside the table: E.164 rules only.
	if digits[0] == '0' {
		return "", fmt.Errorf("%w: country code cannot start with 0", ErrInvalid)
	}
	if len(digits) < 8 || len(digits) > 15 {
		return "", fmt.Errorf("%w: %d digits, E.164 allows 8 to 15", ErrInvalid, len(digits))
	}
	if fake(digits) {
		return "", fmt.Errorf("%w: placeholder number", ErrInvalid)
	}
	return "+" + digits, nil
}

// national reads a number written the national way in country c.
func national(digits string, c Country) (string, error) {
	if c.Calling == "1" && len(digits) == 11 && digits[0] == '1' {
		digits = digits[1:]
	} else if c.Trunk != "" && strings.HasPrefix(digits, c.Trunk) {
		digits = digits[len(c.Trunk):]
	}
	return validate(digits, c)
}

// validate checks a national significant number of country c.
func validate(nsn string, c Country) (string, error) {
	if len(nsn) < c.MinLen {
		return "", fmt.Errorf("%w: too short for %s", ErrInvalid, c.Code)
	}
	if len(nsn) > c.MaxLen {
		return "", fmt.Errorf("%w: too long for %s", ErrInvalid, c.Code)
	}
	if c.Calling == "1" {
		// NANP: the area code starts with 2-9 (the exchange rule is not
		// enforced: fictional 555-123-4567 style numbers stay usable).
		if nsn[0] < '2' {
			return "", fmt.Errorf("%w: not a valid North American number", ErrInvalid)
		}
	} else if c.Trunk != "" && strings.HasPrefix(nsn, c.Trunk) {
		return "", fmt.Errorf("%w: unexpected trunk prefix", ErrInvalid)
	}
	if fake(nsn) || fake(c.Calling+nsn) {
		return "", fmt.Errorf("%w: placeholder number", ErrInvalid)
	}
	return "+" + c.Calling + nsn, nil
}

// fake reports placeholder-looking digit strings: all one digit, or a run
// of ascending digits such as 1234567890.
func fake(d string) bool {
	if strings.Count(d, d[:1]) == len(d) {
		return true
	}
	return strings.Contains("0123456789012345678901234567890", d) || strings.Contains("1234567890123456789", d)
}
