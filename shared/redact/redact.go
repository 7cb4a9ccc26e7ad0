// Package redact masks personal data and secrets in text that is about to
// be logged or stored (a provider's error message, a URL): e-mail addresses
// and phone numbers keep just enough to tell two apart ("a***@c***.test",
// "+1******2671"); identifiers an operator needs (UUIDs, hex request ids,
// dates and times, SMTP and HTTP status codes, IP addresses) stay readable.
//
// The database masks its own messages with automation_mask_error, whose
// rules are stricter and simpler: it replaces every quoted value by "…" and
// every e-mail-like word by "…@…", and does not look for phone numbers.
// Text keeps quoted text (providers quote field names: "The 'To' number …")
// and masks what it recognises instead.
package redact

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// mask replaces what a masked value no longer shows.
const mask = "***"

// emailRE finds e-mail addresses, also URL-encoded ("%40"). The local part
// leaves out slashes and "=" so that query strings around an address are
// not taken for part of it, and quotes except an apostrophe inside it
// ("o'brien@…", not "'bob@…'"), or is a quoted string of its own
// ("\"john smith\"@…").
var emailRE = regexp.MustCompile(`(?:"[^"\r\n]{1,64}"|[\p{L}\p{N}._+\-]+(?:'[\p{L}\p{N}._+\-]+)*)(?:@|%40)[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*`)

// keepRE finds what must stay readable although it is made of digits and
// phone separators: UUIDs, ISO dates and times (RFC 3339), times of day,
// dd.mm.yyyy dates, IPv4 addresses, SMTP enhanced status codes (5.1.1) and
// Unix times in seconds or milliseconds from 2017 to 2033 (no phone number
// is written as 10 or 13 digits starting with 15 to 19).
var keepRE = regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}` +
	`|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?` +
	`|\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:\d{2})?` +
	`|\d{1,2}[./]\d{1,2}[./]\d{4}` +
	`|\d{1,3}(?:\.\d{1,3}){3}` +
	`|[245]\.\d{1,3}\.\d{1,3}` +
	`|1[5-9]\d{8}(?:\d{3})?`)

// phoneRE finds phone-number-like runs: digits with up to three separators
// (space, no-break space, ".", "-", parentheses) between them, "+" (also
// URL-encoded, "%2B") or "(" in front. Whether a run is a phone number is
// decided by isPhone.
var phoneRE = regexp.MustCompile(`(?:[+(]|%2[Bb])*\d(?:[ .\-()\x{00A0}]{0,3}\d)*`)

// Text returns s with every e-mail address and every phone-number-like run
// of at least 7 digits masked (see Email and Phone). A run of digits glued
// to letters (an id such as "SM0123456789abcdef"), a bare run of more than
// 15 digits and the identifiers listed in the package comment are left as
// they are.
func Text(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range emailRE.FindAllStringIndex(s, -1) {
		b.WriteString(maskPhones(s, last, m[0]))
		b.WriteString(Email(s[m[0]:m[1]]))
		last = m[1]
	}
	b.WriteString(maskPhones(s, last, len(s)))
	return b.String()
}

// maskPhones returns s[from:to] with its phone numbers masked, leaving the
// spans keepRE finds as they are. Neighbours are judged in the whole s.
func maskPhones(s string, from, to int) string {
	seg := s[from:to]
	var b strings.Builder
	last := 0
	for _, k := range keepRE.FindAllStringIndex(seg, -1) {
		if !boundary(s, from+k[0], from+k[1]) {
			continue
		}
		b.WriteString(maskPhoneRuns(s, from+last, from+k[0]))
		b.WriteString(seg[k[0]:k[1]])
		last = k[1]
	}
	b.WriteString(maskPhoneRuns(s, from+last, to))
	return b.String()
}

// maskPhoneRuns masks the phone numbers of s[from:to], which holds none of
// the identifiers kept.
func maskPhoneRuns(s string, from, to int) string {
	seg := s[from:to]
	var b strings.Builder
	last := 0
	for _, m := range phoneRE.FindAllStringIndex(seg, -1) {
		run := seg[m[0]:m[1]]
		// a URL-encoded "+" stays encoded; its "2" is no digit of the number
		enc, num := "", run
		if len(run) >= 3 && strings.EqualFold(run[:3], "%2B") {
			enc, num = run[:3], run[3:]
		}
		if !isPhone(num) || !boundary(s, from+m[0], from+m[1]) {
			continue
		}
		b.WriteString(seg[last:m[0]])
		b.WriteString(enc + Phone(num))
		last = m[1]
	}
	b.WriteString(seg[last:])
	return b.String()
}

// isPhone reports whether a run phoneRE found is a phone number: 7 to 15
// digits, or more when written with separators (two numbers side by side).
func isPhone(run string) bool {
	n := countDigits(run)
	if n < 7 {
		return false
	}
	bare := n == len(run)
	if bare && n > 15 {
		return false
	}
	return true
}

// boundary reports whether s[i:j] stands alone: not glued to a letter,
// digit or "_" on either side, nor continuing a token through "." or "-"
// ("req-1234567", "1234567.abc").
func boundary(s string, i, j int) bool {
	if i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if isWord(r) {
			return false
		}
		if (r == '.' || r == '-') && i-size > 0 {
			if p, _ := utf8.DecodeLastRuneInString(s[:i-size]); isWord(p) {
				return false
			}
		}
	}
	if j < len(s) {
		r, size := utf8.DecodeRuneInString(s[j:])
		if isWord(r) {
			return false
		}
		if (r == '.' || r == '-') && j+size < len(s) {
			if n, _ := utf8.DecodeRuneInString(s[j+size:]); isWord(n) {
				return false
			}
		}
	}
	return true
}

func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// Email masks one e-mail address: the first character of the local part
// (inside its quotes, for a quoted one) and of the domain's first label,
// and the top-level domain, are kept ("alice@mail.client.test" →
// "a***@m***.test"; "%40" is kept as written). A value without "@" keeps
// only its first character.
func Email(s string) string {
	if s == "" {
		return s
	}
	at, sep := strings.LastIndexByte(s, '@'), "@"
	if i := strings.LastIndex(strings.ToLower(s), "%40"); i > at {
		at, sep = i, s[i:i+3]
	}
	if at < 0 {
		return firstRune(s) + mask
	}
	local, domain := strings.TrimLeft(s[:at], `"`), s[at+len(sep):]
	out := firstRune(local) + mask + sep
	labels := strings.Split(domain, ".")
	out += firstRune(labels[0]) + mask
	if len(labels) > 1 {
		out += "." + labels[len(labels)-1]
	}
	return out
}

// Phone masks one phone number, written in any format: "+" and the first
// digit (the country code's, or the national number's), then one "*" per
// digit, then the last 4 digits ("+1 (212) 555-2671" → "+1******2671").
// Separators are dropped. A value of fewer than 7 digits is all "*".
func Phone(s string) string {
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	n := len(digits)
	if n < 7 {
		return strings.Repeat("*", n)
	}
	var b strings.Builder
	if strings.HasPrefix(strings.TrimLeft(strings.TrimSpace(s), "("), "+") {
		b.WriteByte('+')
	}
	b.WriteByte(digits[0])
	b.WriteString(strings.Repeat("*", n-5))
	b.Write(digits[n-4:])
	return b.String()
}

func firstRune(s string) string {
	if s == "" {
		return ""
	}
	_, size := utf8.DecodeRuneInString(s)
	return s[:size]
}

// secretKeyRE matches query keys whose values are secrets.
var secretKeyRE = regexp.MustCompile(`(?i)key|token|secret|pass|pwd|sig|auth|credential|session|code`)

// Redacted replaces a secret's value in a URL.
const Redacted = "redacted"

// urlSchemeRE is a URL scheme (what comes before "://").
var urlSchemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// kvPasswordRE is the password of a libpq key=value connection string
// ("host=db user=app password=…"), quoted or not.
var kvPasswordRE = regexp.MustCompile(`(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// URL returns raw with the userinfo password removed (a user name that is
// an e-mail address masked), a user name without a password removed too
// (it may be a token: https://sk_live_…@host), the values of secret-looking query parameters
// (key, token, secret, password, signature, auth, credential, session,
// code) replaced by "redacted", and personal data in the path and the other
// query values masked as by Text. The query keeps its order. A key=value
// connection string gets its password replaced by "***". A scheme://…
// value that does not parse as a URL, or whose password net/url would read
// as part of the path (one holding "/"), is cut to scheme://***@host/path:
// everything up to the last "@" counts as user info, the query and fragment
// are dropped. Any other value that does not parse is masked as by Text.
func URL(raw string) string {
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	hasScheme = hasScheme && urlSchemeRE.MatchString(scheme)
	if !hasScheme && kvPasswordRE.MatchString(raw) {
		return Text(kvPasswordRE.ReplaceAllString(raw, "password="+mask))
	}
	u, err := url.Parse(raw)
	if hasScheme && (err != nil || u.User == nil && hiddenUserinfo(rest)) {
		return maskAuthority(scheme, rest)
	}
	if err != nil {
		return Text(raw)
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.User(Text(u.User.Username()))
		} else {
			u.User = nil
		}
	}
	if u.RawPath != "" || u.Path != "" {
		if p := Text(u.Path); p != u.Path {
			u.Path, u.RawPath = p, ""
		}
	}
	if u.Opaque != "" {
		u.Opaque = Text(u.Opaque)
	}
	u.RawQuery = redactQuery(u.RawQuery)
	u.Fragment, u.RawFragment = Text(u.Fragment), ""
	return u.String()
}

// hiddenUserinfo reports whether the part of a URL after "scheme://" has
// "user:…@" that net/url did not take for user info (a password with "/"
// in it ends the authority early).
func hiddenUserinfo(rest string) bool {
	head, _, _ := strings.Cut(rest, "?")
	head, _, _ = strings.Cut(head, "#")
	i := strings.LastIndex(head, "@")
	return i >= 0 && strings.Contains(head[:i], ":")
}

// maskAuthority writes scheme://***@host/path from the text after
// "scheme://" without parsing it: everything up to the last "@" (a
// password may hold "/", "?", "#" or "@") is user info; the query and
// fragment are dropped; the rest is masked as by Text.
func maskAuthority(scheme, rest string) string {
	out := scheme + "://"
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		out += mask + "@"
		rest = rest[i+1:]
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	return out + Text(rest)
}

// redactQuery redacts a raw query string part by part, keeping its order
// and the encoding of what it does not change.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, hasValue := strings.Cut(p, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		if !hasValue {
			if t := Text(key); t != key {
				parts[i] = url.QueryEscape(t)
			}
			continue
		}
		if secretKeyRE.MatchString(key) {
			parts[i] = k + "=" + Redacted
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		if t := Text(val); t != val {
			parts[i] = k + "=" + url.QueryEscape(t)
		}
	}
	return strings.Join(parts, "&")
}
