package phone_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/phone"
)

// Numbers an SMS reminder may go to: mobile, fixed line, toll-free and VoIP
// numbers of several countries, written the national or the international
// way.
func TestParseE164Valid(t *testing.T) {
	cases := []struct{ raw, country, want string }{
		// United States and Canada (one numbering plan: +1).
		{"(201) 555-0123", "US", "+12015550123"},
		{"201.555.0123", "us", "+12015550123"},
		{"1 201 555 0123", "US", "+12015550123"},
		{"(800) 234-5678", "US", "+18002345678"}, // toll-free: takes texts
		{"+1 (416) 555-0199", "GB", "+14165550199"},
		{"416-555-0199", "CA", "+14165550199"},
		{"(506) 234-5678", "CA", "+15062345678"},
		{"011 44 20 7946 0958", "US", "+442079460958"},
		// United Kingdom.
		{"07400 123456", "GB", "+447400123456"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"0800 123 4567", "GB", "+448001234567"},
		{"056 1234 5678", "GB", "+445612345678"}, // VoIP
		{"+44 20 7946 0958", "US", "+442079460958"},
		{"+44 (0)20 7946 0958", "US", "+442079460958"},
		{"0044 20 7946 0958", "DE", "+442079460958"},
		{"0044 20 7946 0958", "US", "+442079460958"},
		{"0044 20 7946 0958", "", "+442079460958"},
		// Germany.
		{"0151 23456789", "DE", "+4915123456789"},
		{"030 901820", "DE", "+4930901820"},
		{"0800 1234567890", "DE", "+498001234567890"},
		{"+49 30 901820", "", "+4930901820"},
		// France.
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"01 42 68 53 00", "FR", "+33142685300"},
		{"09 12 34 56 78", "FR", "+33912345678"}, // VoIP
		// Australia.
		{"0412 345 678", "AU", "+61412345678"},
		{"(02) 9123 4567", "AU", "+61291234567"},
		{"1800 123 456", "AU", "+611800123456"},
		{"0011 1 201 555 0123", "AU", "+12015550123"},
		// India.
		{"81234 56789", "IN", "+918123456789"},
		{"011 2345 6789", "IN", "+911123456789"},
		// Brazil.
		{"(11) 91234-5678", "BR", "+5511912345678"},
		{"(11) 3456-7890", "BR", "+551134567890"},
		{"0800 123 4567", "BR", "+558001234567"},
		// Japan.
		{"090-1234-5678", "JP", "+819012345678"},
		{"03-1234-5678", "JP", "+81312345678"},
		{"0120-123-456", "JP", "+81120123456"},
		{"+81 3-1234-5678", "US", "+81312345678"},
		// South Africa.
		{"082 123 4567", "ZA", "+27821234567"},
		{"021 123 4567", "ZA", "+27211234567"},
		{"080 123 4567", "ZA", "+27801234567"},
		// Italy keeps the leading 0 of its numbers.
		{"06 9876 5432", "IT", "+390698765432"},
		{"+39 06 9876 5432", "", "+390698765432"},
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		require.NoError(t, err, "%s (%s)", tc.raw, tc.country)
		assert.Equal(t, tc.want, got, "%s (%s)", tc.raw, tc.country)
	}
}

// Premium-rate numbers and the international networks: ErrPremium.
func TestParseE164Premium(t *testing.T) {
	cases := []struct{ raw, country string }{
		{"(900) 234-5678", "US"},
		{"+1 900 555 1234", "GB"},
		{"(900) 212-3456", "CA"},
		{"0909 123 4567", "GB"},
		{"+44 909 123 4567", "US"},
		{"0845 464 0000", "GB"}, // GB service numbers the plan lists as premium
		{"0900 1 234567", "DE"},
		{"08 99 12 34 56", "FR"},
		{"1900 123 456", "AU"},
		{"1861 123 456 789", "IN"},
		{"0900 123 4567", "BR"},
		{"0990-123-456", "JP"},
		{"0900 123 456", "ZA"},
		{"+881 6 1234 5678", "US"}, // satellite (Iridium)
		{"+870 773 111 632", "US"}, // Inmarsat
		{"+979 1 3579 2468", "US"}, // international premium rate
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		assert.ErrorIs(t, err, phone.ErrPremium, "%s (%s) -> %q", tc.raw, tc.country, got)
		assert.ErrorIs(t, err, phone.ErrInvalid, "%s (%s)", tc.raw, tc.country)
		assert.Empty(t, got)
	}
}

// Valid numbers that are no handset: ErrNotTextable.
func TestParseE164NotTextable(t *testing.T) {
	cases := []struct{ raw, country string }{
		{"0300 123 4567", "GB"},    // universal access (company)
		{"070 1234 5678", "GB"},    // personal (redirection)
		{"076 4012 3456", "GB"},    // pager
		{"0180 1234567", "DE"},     // shared cost
		{"0700 1234 5678", "DE"},   // personal
		{"0177 99 1234567", "DE"},  // voicemail access
		{"08 10 12 34 56", "FR"},   // shared cost
		{"1300 123 456", "AU"},     // shared cost
		{"1860 345 1234", "IN"},    // shared cost
		{"0300 123 4567", "BR"},    // shared cost
		{"0570-123-456", "JP"},     // universal access
		{"020-1234-5678", "JP"},    // pager
		{"0860 123 456", "ZA"},     // shared cost
		{"+44 300 123 4567", "US"}, // written internationally
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		assert.ErrorIs(t, err, phone.ErrNotTextable, "%s (%s) -> %q", tc.raw, tc.country, got)
		assert.ErrorIs(t, err, phone.ErrInvalid, "%s (%s)", tc.raw, tc.country)
		assert.NotErrorIs(t, err, phone.ErrPremium, "%s (%s)", tc.raw, tc.country)
	}
}

func TestParseE164Invalid(t *testing.T) {
	cases := []struct{ raw, country string }{
		{"", "US"},
		{"   ", "US"},
		// placeholders
		{"+1234567890", "US"},
		{"1234567890", "US"},
		{"123-456-7890", "US"},
		{"0000000000", "US"},
		{"(987) 654-3210", "US"},
		{"+44 7777 777777", "US"},
		// not in the numbering plan: wrong length, range or area code
		{"555-1234", "US"},
		{"(201) 555-012", "US"},
		{"(201) 555-01234", "US"},
		{"+1 555 123 4567", "US"}, // no area code 555
		{"(416) 123-4567", "CA"},  // no exchange starting with 1
		{"020 7946 09", "GB"},
		{"020 7946 0958 12", "GB"},
		{"07700 900123", "GB"}, // Ofcom's drama range: never allocated
		{"+44 1234", "US"},
		{"0151 234", "DE"},
		{"06 12 34 56", "FR"},
		{"06 12 34 56 78 9", "FR"},
		{"0412 345 67", "AU"},
		{"(0412) 345", "AU"},
		{"98765 4321", "IN"},
		{"(11) 1234-567", "BR"},
		{"090-1234-567", "JP"},
		{"082 123 45678", "ZA"},
		// country codes that do not exist
		{"+999 1234 5678", "US"},
		{"+28 1234 5678", "US"},
		{"+0 123456789", "US"},
		{"00999 1234 5678", "GB"},
		{"+12345678901234567", "US"},
		// letters, extensions, other characters
		{"555 CALL NOW", "US"},
		{"1-800-FLOWERS", "US"},
		{"+1 201 555 0123 ext 9", "US"},
		{"+1 201 555 0123 x9", "US"},
		{"2015550123;drop", "US"},
		{"+1 201 555 0123#", "US"},
		{"++1 201 555 0123", "US"},
		{"201 555 0123 +1", "US"},
		{"201" + strings.Repeat("-", 70) + "5550123", "US"},
		{"+1 " + strings.Repeat("0", 80), "US"},
		// a national number needs a known default country
		{"020 7946 0958", "XX"},
		{"020 7946 0958", ""},
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		assert.ErrorIs(t, err, phone.ErrInvalid, "%q (%s) -> %q", tc.raw, tc.country, got)
		assert.NotErrorIs(t, err, phone.ErrPremium, "%q (%s)", tc.raw, tc.country)
	}
	_, err := phone.ParseE164("020 7946 0958", "XX")
	assert.ErrorIs(t, err, phone.ErrUnknownCountry)
}

// No error names the number (error_message columns and logs carry them).
func TestErrorsNameNoDigits(t *testing.T) {
	for _, raw := range []string{"+1 555 987 6543", "(900) 987-6543", "+999 8765 4321", "0300 987 6543", "987"} {
		_, err := phone.ParseE164(raw, "GB")
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "876", raw)
		_, err = phone.Display(raw, "US")
		if err != nil {
			assert.NotContains(t, err.Error(), "876", raw)
		}
	}
}

func TestDisplay(t *testing.T) {
	cases := []struct{ raw, country, want string }{
		// In the organisation's country: national format.
		{"+12015550123", "US", "(201) 555-0123"},
		{"201-555-0123", "US", "(201) 555-0123"},
		{"+14165550199", "CA", "(416) 555-0199"},
		{"+442079460958", "GB", "020 7946 0958"},
		{"+447400123456", "gb", "07400 123456"},
		{"+4930901820", "DE", "030 901820"},
		{"+33142685300", "FR", "01 42 68 53 00"},
		{"+61291234567", "AU", "(02) 9123 4567"},
		{"+61412345678", "AU", "0412 345 678"},
		{"+918123456789", "IN", "081234 56789"},
		{"+5511912345678", "BR", "(11) 91234-5678"},
		{"+81312345678", "JP", "03-1234-5678"},
		{"+27821234567", "ZA", "082 123 4567"},
		// A company line that takes no SMS is still shown.
		{"0300 123 4567", "GB", "0300 123 4567"},
		{"(800) 234-5678", "US", "(800) 234-5678"},
		// Same calling code: dialled the national way (North America).
		{"+12015550123", "CA", "(201) 555-0123"},
		// Elsewhere, or the organisation's country unknown: international.
		{"+12015550123", "GB", "+1 201-555-0123"},
		{"+442079460958", "US", "+44 20 7946 0958"},
		{"+4930901820", "FR", "+49 30 901820"},
		{"+33612345678", "DE", "+33 6 12 34 56 78"},
		{"+61412345678", "NZ", "+61 412 345 678"},
		{"+918123456789", "GB", "+91 81234 56789"},
		{"+5511912345678", "US", "+55 11 91234-5678"},
		{"+819012345678", "US", "+81 90-1234-5678"},
		{"+27211234567", "GB", "+27 21 123 4567"},
		{"+442079460958", "", "+44 20 7946 0958"},
		{"+442079460958", "XX", "+44 20 7946 0958"},
	}
	for _, tc := range cases {
		got, err := phone.Display(tc.raw, tc.country)
		require.NoError(t, err, "%s (%s)", tc.raw, tc.country)
		assert.Equal(t, tc.want, got, "%s (%s)", tc.raw, tc.country)
	}
	for _, raw := range []string{"", "+1 555 123 4567", "+999 1234 5678", "call us", "020 7946"} {
		_, err := phone.Display(raw, "GB")
		assert.ErrorIs(t, err, phone.ErrInvalid, raw)
	}
}
