package config

import (
	"regexp"
	"strings"
)

// masked replaces a URL's user info and a connection string's password.
const masked = "***"

var (
	urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	// kvPassword is a password in a libpq key=value connection string.
	kvPassword = regexp.MustCompile(`(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)
)

// RedactURL returns raw fit for a message: a URL becomes
// scheme://host[:port]/path, with its user info (if any) replaced by *** and
// its query and fragment (which may carry keys) dropped; in a libpq
// key=value connection string ("host=... password=...") the password
// becomes ***. It works on the text, without parsing the URL, so that a URL
// net/url refuses (a password holding "/", "?", "#" or "@") is masked too:
// everything up to the last "@" after the scheme counts as user info.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !urlScheme.MatchString(scheme) {
		return kvPassword.ReplaceAllString(raw, "password="+masked)
	}
	out := scheme + "://"
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		out += masked + "@"
		rest = rest[i+1:]
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	return out + rest
}
