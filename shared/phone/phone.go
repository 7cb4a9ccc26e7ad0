// Package phone validates phone numbers, normalises them to E.164
// ("+12125550123") and formats them for display, with the numbering plans
// of github.com/nyaruka/phonenumbers (a port of Google's libphonenumber,
// which knows every country's number lengths, ranges and number types).
// National numbers are read in the organisation's country (its ISO 3166-1
// alpha-2 country_code); numbers written with "+" or an international
// dialling prefix carry their own country.
package phone

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/dueflow/dueflow/shared/automation"
)

// Sentinel errors. Every error of ParseE164 and Display wraps ErrInvalid,
// an *automation.Error with code invalid_recipient; a national number read
// with an unsupported default country also wraps ErrUnknownCountry; a
// premium-rate or international-network number also ErrPremium; a number
// of a type that cannot receive an SMS reminder also ErrNotTextable. No
// error message contains the number.
var (
	ErrInvalid        = automation.NewError(automation.CodeInvalidRecipient, "invalid phone number", nil)
	ErrUnknownCountry = errors.New("unsupported default country")
	ErrPremium        = errors.New("premium-rate number")
	ErrNotTextable    = errors.New("number cannot receive an SMS reminder")
)

// maxInput bounds what is given to the parser: a phone number written with
// every separator is far shorter.
const maxInput = 64

// ParseE164 validates raw as the number an SMS reminder goes to and returns
// it in E.164 form. Separators " ()-./" (and a no-break space) are allowed,
// "(0)" after a country code is dropped; letters (vanity numbers,
// extensions) and other characters are refused, as are placeholders such as
// "+1234567890". The number must be valid in its country's numbering plan
// (IsValidNumber: a country code that does not exist, such as +999, or a
// length or range the plan does not have, is refused) and of a type that
// can receive an SMS without costing the sender more than a text:
//
//   - accepted: mobile, fixed line (carriers deliver texts to landlines as
//     voice or refuse them, and in North America the two cannot be told
//     apart), fixed line or mobile, toll-free (North American toll-free
//     numbers take texts, and an organisation's own line is often one) and
//     VoIP numbers;
//   - ErrPremium: premium-rate numbers (+1 900, +44 909), and numbers of the
//     international networks without a country (+870 and +881 satellite,
//     +882 and +883 international networks, +979 international premium
//     rate, +800 and +808 global freephone and shared cost): no client's
//     handset, mostly billed at premium rates, and the usual target of SMS
//     pumping fraud;
//   - ErrNotTextable: shared-cost and universal access numbers (company
//     numbers routed to call centres, often charged: GB 0845, FR 0810, AU
//     1300), personal numbers (GB 070, DE 0700: redirection with
//     premium-like tariffs), voicemail access and pager numbers. None of
//     them is a handset.
func ParseE164(raw, defaultCountry string) (string, error) {
	n, err := parse(raw, defaultCountry)
	if err != nil {
		return "", err
	}
	if phonenumbers.GetRegionCodeForNumber(n) == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
		return "", fmt.Errorf("%w: %w: an international network number (+%d)", ErrInvalid, ErrPremium, n.GetCountryCode())
	}
	switch t := phonenumbers.GetNumberType(n); t {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE,
		phonenumbers.TOLL_FREE, phonenumbers.VOIP:
	case phonenumbers.PREMIUM_RATE:
		return "", fmt.Errorf("%w: %w", ErrInvalid, ErrPremium)
	default:
		return "", fmt.Errorf("%w: %w: a %s number", ErrInvalid, ErrNotTextable, typeName(t))
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// Display formats raw for people to read: in the national format of the
// country ("(212) 555-0123", "020 7946 0958") when the number shares the
// country calling code of country (the organisation's country: it is
// dialled the national way from there, as within North America), in the
// international format ("+44 20 7946 0958") otherwise or when country is
// unknown. Any valid number is accepted (a shared-cost company line too); an
// error (wrapping ErrInvalid) when raw is not a valid number, and the caller
// shows what it has instead.
func Display(raw, country string) (string, error) {
	n, err := parse(raw, country)
	if err != nil {
		return "", err
	}
	if cc := phonenumbers.GetCountryCodeForRegion(region(country)); cc != 0 && int32(cc) == n.GetCountryCode() {
		return phonenumbers.Format(n, phonenumbers.NATIONAL), nil
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL), nil
}

// region normalises an ISO 3166-1 alpha-2 code; "" when the library does
// not know it.
func region(country string) string {
	r := strings.ToUpper(strings.TrimSpace(country))
	if !phonenumbers.GetSupportedRegions()[r] {
		return ""
	}
	return r
}

// parse checks raw's characters and returns the valid number it is.
func parse(raw, defaultCountry string) (*phonenumbers.PhoneNumber, error) {
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	case len(s) > maxInput:
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalid, maxInput)
	}
	s = strings.Replace(s, "(0)", "", 1) // "+44 (0)20 ...": the trunk prefix shown in brackets
	plus := strings.HasPrefix(s, "+")
	var b strings.Builder
	for _, r := range strings.TrimPrefix(s, "+") {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '/' || r == '\u00a0':
		default:
			return nil, fmt.Errorf("%w: unexpected character %q", ErrInvalid, r)
		}
	}
	digits := b.String()
	if len(digits) < 5 {
		return nil, fmt.Errorf("%w: too short", ErrInvalid)
	}
	reg := region(defaultCountry)
	var n *phonenumbers.PhoneNumber
	var err error
	switch {
	case plus:
		n, err = phonenumbers.Parse("+"+digits, "")
	case reg != "":
		// The library reads the country's trunk prefix ("0") and its
		// international prefix ("011", "00", "0011").
		n, err = phonenumbers.Parse(digits, reg)
		if strings.HasPrefix(digits, "00") && (err != nil || !phonenumbers.IsValidNumber(n)) {
			n, err = phonenumbers.Parse("+"+digits[2:], "") // "00" + country code, written anywhere
		}
	case strings.HasPrefix(digits, "00"):
		n, err = phonenumbers.Parse("+"+digits[2:], "")
	default:
		return nil, fmt.Errorf("%w: %w %q: write the number with its +country code", ErrInvalid, ErrUnknownCountry, strings.TrimSpace(defaultCountry))
	}
	if err != nil {
		// The library's messages name no digits ("invalid country code",
		// "the string supplied is too short to be a phone number").
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !phonenumbers.IsValidNumber(n) {
		return nil, fmt.Errorf("%w: not a number of the numbering plan of +%d", ErrInvalid, n.GetCountryCode())
	}
	if fake(n.GetCountryCode(), phonenumbers.GetNationalSignificantNumber(n)) {
		return nil, fmt.Errorf("%w: placeholder number", ErrInvalid)
	}
	return n, nil
}

// fake reports placeholder-looking numbers: the national number all one
// digit, or it or the whole number (country code included) a run of
// ascending or descending digits such as 1234567890.
func fake(cc int32, nsn string) bool {
	if nsn == "" || strings.Count(nsn, nsn[:1]) == len(nsn) {
		return true
	}
	for _, d := range []string{nsn, strconv.Itoa(int(cc)) + nsn} {
		if strings.Contains("01234567890", d) || strings.Contains("09876543210", d) {
			return true
		}
	}
	return false
}

// typeName names a number type in error messages.
func typeName(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.SHARED_COST:
		return "shared-cost"
	case phonenumbers.UAN:
		return "universal access (company)"
	case phonenumbers.PERSONAL_NUMBER:
		return "personal (redirection)"
	case phonenumbers.VOICEMAIL:
		return "voicemail access"
	case phonenumbers.PAGER:
		return "pager"
	}
	return "non-subscriber"
}

// IsE164 reports whether s is written as an E.164 number: "+" and 8 to 15
// digits, the first not 0 (syntax only: ParseE164 checks the number).
func IsE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
