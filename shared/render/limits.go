package render

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/sms"
)

// Limits of a rendered message. A message over one of them is not sent:
// Email and SMS answer a content_too_large error (its cause a
// *TooLargeError), which the engine records as a permanent failure before
// anything is begun in the ledger.
//
//   - MaxSubjectChars: the subject after rendering and joining it into one
//     line, in characters: 998, the line length of RFC 5322. Mail clients
//     show about 60; the workflow rules (shared/workflow) allow a subject
//     template of 500 characters, and this leaves room for its variables
//     (each within VarLimit) while a template that repeats them is caught.
//   - MaxHTMLBytes, MaxTextBytes: each email part, in bytes. Gmail already
//     clips a body over about 100 KB; 256 KiB is far above any reminder
//     and far below a provider's message size limit (10 MB and more).
//   - MaxSMSSegments: the SMS text, in segments of GSM-7 (160 characters,
//     153 per segment once split) or UCS-2 (70, 67 per segment), as
//     shared/sms counts them. Providers take up to about 10 segments
//     (Twilio 1,600 characters); each segment is billed as one message.
const (
	MaxSubjectChars = 998
	MaxHTMLBytes    = 256 << 10
	MaxTextBytes    = 256 << 10
	MaxSMSSegments  = 10
)

// maxSMSBytes stops substitution of an SMS early: 10 segments are at most
// 1,530 GSM-7 characters of up to 3 bytes or 670 UCS-2 units of up to 4
// bytes, so any text this long is over MaxSMSSegments.
const maxSMSBytes = 8 << 10

// maxSubjectBytes stops substitution of a subject early; what it cuts is
// over MaxSubjectChars unless most of it is white space.
const maxSubjectBytes = 16 << 10

// Parts of a message named in a TooLargeError.
const (
	PartSubject = "email subject"
	PartHTML    = "email HTML part"
	PartText    = "email text part"
	PartSMS     = "SMS text"
)

// TooLargeError says which part of a rendered message is over its limit:
// the cause of a content_too_large *automation.Error (tooLargeError). Its
// message names the part, the size and the limit, never the content.
type TooLargeError struct {
	Part  string // Part* constants
	Size  int    // measured size in Unit; 0 when rendering stopped early
	Limit int
	Unit  string // "characters", "bytes" or "segments"
}

// Error describes the part, its size and its limit.
func (e *TooLargeError) Error() string {
	if e.Size == 0 {
		return fmt.Sprintf("%s is over its limit of %d %s", e.Part, e.Limit, e.Unit)
	}
	return fmt.Sprintf("%s is %d %s, over its limit of %d", e.Part, e.Size, e.Unit, e.Limit)
}

var _ error = (*TooLargeError)(nil)

// tooLargeError returns e as this package returns it: the cause of an
// *automation.Error with code content_too_large, whose text is e's text.
func tooLargeError(e *TooLargeError) *automation.Error {
	return automation.NewError(automation.CodeContentTooLarge, "", e)
}

// checkEmail applies the limits to a rendered email.
func checkEmail(m Message) error {
	if n := utf8.RuneCountInString(m.Subject); n > MaxSubjectChars {
		return tooLargeError(&TooLargeError{Part: PartSubject, Size: n, Limit: MaxSubjectChars, Unit: "characters"})
	}
	if len(m.HTML) > MaxHTMLBytes {
		return tooLargeError(&TooLargeError{Part: PartHTML, Size: len(m.HTML), Limit: MaxHTMLBytes, Unit: "bytes"})
	}
	if len(m.Text) > MaxTextBytes {
		return tooLargeError(&TooLargeError{Part: PartText, Size: len(m.Text), Limit: MaxTextBytes, Unit: "bytes"})
	}
	return nil
}

// checkSMS applies the segment limit to a rendered SMS text.
func checkSMS(s string) error {
	if l := sms.Measure(s); l.Segments > MaxSMSSegments {
		return tooLargeError(&TooLargeError{Part: PartSMS, Size: l.Segments, Limit: MaxSMSSegments, Unit: "segments"})
	}
	return nil
}

// maxURLBytes bounds a link. A longer one is not shortened (that would
// break it) but left out, like a link that is not http(s).
const maxURLBytes = 1024

// LinkURL returns raw (trimmed) when it may be put into an href: an absolute
// http or https URL with a host, no user name or password (a phishing
// disguise: https://bank.example@evil.example), no white space or control
// character, at most 1,024 bytes. Anything else ("javascript:", "data:",
// "mailto:", a relative or protocol-relative URL) answers false.
func LinkURL(raw string) (string, bool) {
	s := strings.TrimSpace(raw)
	if s == "" || len(s) > maxURLBytes {
		return "", false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Host == "" || u.Hostname() == "" {
		return "", false
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return "", false
	}
	return s, true
}

// urlAttributes are the HTML attributes whose value is followed as a link
// or fetched.
var urlAttributes = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "background": true,
	"cite": true, "poster": true, "longdesc": true, "data": true, "ping": true,
	"srcset": true, "xlink:href": true, "lowsrc": true, "dynsrc": true,
}

// links follows an HTML template placeholder by placeholder, to tell which
// placeholders lead the value of a URL attribute: `href="{{...}}"`,
// `<img src={{...}}>`, or after other placeholders only
// (`href="{{a}}{{b}}"`: when a renders empty, b decides the scheme). Such a
// value is put in only when it is a LinkURL. A placeholder that follows text
// the template wrote (`href="https://x.example/{{...}}"`: the template chose
// the scheme) or that is not in a URL attribute is left alone. Each piece of
// template text is looked at once: the cost is linear in the template.
type links struct {
	inTag bool // the template text so far ends inside a tag
	lead  bool // the previous placeholder led a URL attribute value
	set   bool // ... and a link was put into that value
}

// filter takes the template text since the previous placeholder and the
// value of the next placeholder, and returns the value to put in.
func (l *links) filter(literal, val string) string {
	lt, gt := strings.LastIndexByte(literal, '<'), strings.LastIndexByte(literal, '>')
	switch {
	case lt > gt:
		l.inTag = true
	case gt > lt:
		l.inTag = false
	}
	switch {
	case !l.inTag:
		l.lead = false
	case l.lead && strings.TrimLeft(literal, spaces) == "":
		// another placeholder of the same value
	default:
		l.lead, l.set = leadsURLValue(literal[max(lt, 0):]), false
	}
	if !l.lead || l.set {
		return val
	}
	val, _ = LinkURL(val)
	l.set = val != ""
	return val
}

// spaces are HTML's white space characters.
const spaces = " \t\r\n\f"

// leadsURLValue reports whether tag text ends where the value of a URL
// attribute begins: `href=`, `src = "`, `action='`.
func leadsURLValue(s string) bool {
	s = strings.TrimRight(s, spaces)
	if strings.HasSuffix(s, `"`) || strings.HasSuffix(s, `'`) {
		s = strings.TrimRight(s[:len(s)-1], spaces)
	}
	if !strings.HasSuffix(s, "=") {
		return false
	}
	s = strings.TrimRight(s[:len(s)-1], spaces)
	j := len(s)
	for j > 0 && isAttrNameByte(s[j-1]) {
		j--
	}
	return urlAttributes[strings.ToLower(s[j:])]
}

func isAttrNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':'
}
