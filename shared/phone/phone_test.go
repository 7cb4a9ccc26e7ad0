package phone_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/phone"
)

func TestParseE164Valid(t *testing.T) {
	cases := []struct{ raw, country, want string }{
		{"(555) 123-4567", "US", "+15551234567"},
		{"555.123.4567", "us", "+15551234567"},
		{"1 555 123 4567", "US", "+15551234567"},
		{"+1 (416) 555-0199", "GB", "+14165550199"},
		{"416-555-0199", "CA", "+14165550199"},
		{"+44 20 7946 0958", "US", "+442079460958"},
		{"+44 (0)20 7946 0958", "US", "+442079460958"},
		{"0044 20 7946 0958", "DE", "+442079460958"},
		{"011 44 20 7946 0958", "US", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"07700 900123", "GB", "+447700900123"},
		{"0412 345 678", "AU", "+61412345678"},
		{"0011 1 555 123 4567", "AU", "+15551234567"},
		{"030 901820", "DE", "+4930901820"},
		{"0151 23456789", "DE", "+4915123456789"},
		{"01 42 68 53 00", "FR", "+33142685300"},
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"087 123 4567", "IE", "+353871234567"},
		{"021 123 4567", "NZ", "+64211234567"},
		{"06 9876 5432", "IT", "+390698765432"},
		{"+49 30 901820", "", "+4930901820"},
		{"+81 3-1234-5678", "US", "+81312345678"},
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		require.NoError(t, err, "%s (%s)", tc.raw, tc.country)
		assert.Equal(t, tc.want, got, "%s (%s)", tc.raw, tc.country)
	}
}

func TestParseE164Invalid(t *testing.T) {
	cases := []struct{ raw, country string }{
		{"", "US"},
		{"   ", "US"},
		{"+1234567890", "US"},
		{"1234567890", "US"},
		{"123-456-7890", "US"},
		{"0000000000", "US"},
		{"555-1234", "US"},
		{"(555) 123-45678", "US"},
		{"555 CALL NOW", "US"},
		{"+1 555 123 4567 ext 9", "US"},
		{"5551234567;drop", "US"},
		{"020 7946 09", "GB"},
		{"020 7946 0958 12", "GB"},
		{"+44 1234", "US"},
		{"+999 12", "US"},
		{"+0 123456789", "US"},
		{"+12345678901234567", "US"},
		{"+99 9999 99999", "US"},
		{"(0412) 345", "AU"},
		{"020 7946 0958", "XX"},
		{"020 7946 0958", ""},
	}
	for _, tc := range cases {
		got, err := phone.ParseE164(tc.raw, tc.country)
		assert.ErrorIs(t, err, phone.ErrInvalid, "%q (%s) -> %q", tc.raw, tc.country, got)
	}
	_, err := phone.ParseE164("020 7946 0958", "XX")
	assert.ErrorIs(t, err, phone.ErrUnknownCountry)
}

func TestLookup(t *testing.T) {
	c, ok := phone.Lookup("gb")
	require.True(t, ok)
	assert.Equal(t, "44", c.Calling)
	_, ok = phone.Lookup("ZZ")
	assert.False(t, ok)
}
