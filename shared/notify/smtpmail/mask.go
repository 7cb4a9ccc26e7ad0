package smtpmail

import "regexp"

// PLACEHOLDER until shared/redact lands on main: then mask is redact.Text.
var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+`)
	phoneRe = regexp.MustCompile(`\+?[0-9][0-9 ().\-]{6,}[0-9]`)
)

// mask hides email addresses and phone numbers in s.
func mask(s string) string {
	s = emailRe.ReplaceAllString(s, "***@***")
	return phoneRe.ReplaceAllString(s, "***")
}
