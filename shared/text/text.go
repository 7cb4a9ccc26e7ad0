// Package text provides the small string helpers shared by the functions'
// packages (cutting a value for a log line or an error message, picking the
// first configured value).
package text

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis ends a string cut by Truncate.
const Ellipsis = "..."

// Truncate returns s when it is at most n bytes long; otherwise s cut to at
// most n bytes in all, Ellipsis included, without splitting a UTF-8
// character (for n smaller than the ellipsis, just the cut prefix).
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	suffix := Ellipsis
	if n <= len(suffix) {
		suffix = ""
	}
	cut := n - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// FirstNonEmpty returns the first of vals that is not blank, with
// surrounding white space trimmed; "" when all are blank.
func FirstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
