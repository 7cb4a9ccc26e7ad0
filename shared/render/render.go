// Package render fills user-written message templates ({{client.first_name}},
// {{invoice.number}}, ...) from a fixed set of variables. It is plain
// placeholder substitution: user text is never executed as a Go template.
// Its errors are *automation.Error with code template_error or
// content_too_large; the cause (*UnknownVariableError, *SyntaxError,
// *TooLargeError) says what is wrong, never with the rendered content.
package render

import (
	"errors"
	"html"
	"strconv"
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
)

// Vars are the values a template may use, keyed by variable name
// ("client.first_name", "invoice.balance", ...), already formatted.
type Vars map[string]string

// Template is the text of one message: Subject and HTML are for email only.
type Template struct {
	Subject string
	Text    string
	HTML    string
}

// templateError returns a template error as this package returns it: the
// cause of an *automation.Error with code template_error, whose text is
// its text.
func templateError(e error) *automation.Error {
	return automation.NewError(automation.CodeTemplate, "", e)
}

// UnknownVariableError is a placeholder outside the fixed set; it is a
// permanent template_error (the cause of the *automation.Error returned).
type UnknownVariableError struct{ Name string }

var (
	_ error = (*UnknownVariableError)(nil)
	_ error = (*SyntaxError)(nil)
)

// Error names the unknown variable.
func (e *UnknownVariableError) Error() string { return "unknown template variable {{" + e.Name + "}}" }

// SyntaxError is a malformed template (an unterminated "{{"); it is a
// permanent template_error (the cause of the *automation.Error returned).
type SyntaxError struct {
	Offset int // byte offset of the offending "{{"
	Msg    string
}

// Error describes the syntax error and where it is.
func (e *SyntaxError) Error() string {
	return "template syntax error at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Variables is the fixed set of variable names a template may use.
var Variables = []string{
	"client.first_name", "client.last_name", "client.full_name", "client.email", "client.phone",
	"organization.name", "organization.phone", "organization.email", "organization.portal_url",
	"invoice.number", "invoice.total", "invoice.balance", "invoice.due_date", "invoice.days_overdue", "invoice.portal_url",
	"job.title", "job.type", "job.scheduled_start", "job.scheduled_date", "job.address", "job.completed_at",
	VarUnsubscribeURL,
	"organization.address", "organization.locale", "invoice.pay_url",
	"summary.open_invoices", "summary.overdue_invoices", "summary.open_balance", "summary.reminders_sent_yesterday",
}

// VarUnsubscribeURL is the one-click opt-out link of a non-transactional
// message to a client (the engine sets it; empty otherwise).
const VarUnsubscribeURL = "unsubscribe_url"

var known = func() map[string]bool {
	m := make(map[string]bool, len(Variables))
	for _, n := range Variables {
		m[n] = true
	}
	return m
}()

// IsVariable reports whether name belongs to the fixed variable set.
func IsVariable(name string) bool { return known[name] }

// Text renders a plain-text template (email text part, SMS, subject).
func Text(tmpl string, v Vars) (string, error) { return substitute(tmpl, v, false, 0) }

// HTML renders an HTML template, HTML-escaping every substituted value. The
// template's own markup is kept as written. A value that leads a URL
// attribute (`<a href="{{invoice.portal_url}}">`, `src=`, ...; see
// links) is put in only when it is an http(s) link (LinkURL);
// otherwise the attribute stays empty: a value from a tenant's or an
// adopter's row ("javascript:...", "data:...") never becomes a link.
func HTML(tmpl string, v Vars) (string, error) { return substitute(tmpl, v, true, 0) }

// Check reports the first error of a template without rendering it (to
// validate workflow steps when they are saved).
func Check(tmpl string) error {
	_, err := substitute(tmpl, nil, false, 0)
	return err
}

// errOverBudget stops a substitution whose output passed its budget.
var errOverBudget = errors.New("rendered text over its budget")

// substitute replaces every {{ name }} (whitespace around the name allowed).
// A name is known when it is in the fixed set or present in v. Text outside
// placeholders, including a lone "}}", is copied unchanged. With a budget
// above 0, it stops with errOverBudget as soon as the output passes budget
// bytes (a huge template or value costs no more than the budget).
func substitute(tmpl string, v Vars, escape bool, budget int) (string, error) {
	if !strings.Contains(tmpl, "{{") {
		if budget > 0 && len(tmpl) > budget {
			return "", errOverBudget
		}
		return tmpl, nil
	}
	var b strings.Builder
	grow := len(tmpl) + 64
	if budget > 0 {
		grow = min(grow, budget+1)
	}
	b.Grow(grow)
	rest, off := tmpl, 0
	var ls links
	for {
		if budget > 0 && b.Len() > budget {
			return "", errOverBudget
		}
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return "", templateError(&SyntaxError{Offset: off + i, Msg: `unterminated "{{"`})
		}
		raw := rest[i+2 : i+2+j]
		if strings.Contains(raw, "{{") {
			return "", templateError(&SyntaxError{Offset: off + i, Msg: `"{{" inside a placeholder`})
		}
		name := strings.TrimSpace(raw)
		val, ok := v[name]
		if !ok && !known[name] {
			return "", templateError(&UnknownVariableError{Name: name})
		}
		if escape {
			val = html.EscapeString(ls.filter(rest[:i], val))
		}
		b.WriteString(val)
		adv := i + 2 + j + 2
		rest, off = rest[adv:], off+adv
	}
	if budget > 0 && b.Len() > budget {
		return "", errOverBudget
	}
	return b.String(), nil
}

// Message is a rendered email (Subject, Text, HTML) or SMS (Text only).
type Message struct {
	Subject string
	Text    string
	HTML    string
}

// Email renders an email template. The result always has a plain-text part:
// when the template has only HTML, the text is derived from the rendered
// HTML by stripping tags. HTML stays empty when the template has none. A
// part over its limit (MaxSubjectChars, MaxHTMLBytes, MaxTextBytes) is a
// content_too_large error (its cause a *TooLargeError); rendering stops as soon as a part passes its limit.
func Email(t Template, v Vars) (Message, error) {
	var m Message
	var err error
	if m.Subject, err = substitute(t.Subject, v, false, maxSubjectBytes); err != nil {
		return Message{}, tooLarge(err, PartSubject, MaxSubjectChars, "characters")
	}
	// A subject is one line.
	m.Subject = strings.Join(strings.Fields(m.Subject), " ")
	if t.HTML != "" {
		if m.HTML, err = substitute(t.HTML, v, true, MaxHTMLBytes); err != nil {
			return Message{}, tooLarge(err, PartHTML, MaxHTMLBytes, "bytes")
		}
	}
	if t.Text != "" {
		if m.Text, err = substitute(t.Text, v, false, MaxTextBytes); err != nil {
			return Message{}, tooLarge(err, PartText, MaxTextBytes, "bytes")
		}
	} else {
		m.Text = StripTags(m.HTML)
	}
	if err := checkEmail(m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// SMS renders the text of an SMS template (Subject and HTML are ignored).
// A text over MaxSMSSegments segments is a content_too_large error (its
// cause a *TooLargeError).
func SMS(t Template, v Vars) (string, error) {
	s, err := substitute(t.Text, v, false, maxSMSBytes)
	if err != nil {
		return "", tooLarge(err, PartSMS, MaxSMSSegments, "segments")
	}
	s = strings.TrimSpace(s)
	if err := checkSMS(s); err != nil {
		return "", err
	}
	return s, nil
}

// tooLarge turns errOverBudget into the part's TooLargeError; other errors
// (template errors) are returned as they are.
func tooLarge(err error, part string, limit int, unit string) error {
	if errors.Is(err, errOverBudget) {
		return tooLargeError(&TooLargeError{Part: part, Limit: limit, Unit: unit})
	}
	return err
}

// ForStep returns the template of one workflow step: the step's own texts
// where given, the defaults of the execution (DefaultFor) for what is
// missing. When a step gives a text or HTML body, the default body is not
// mixed in (only a missing subject falls back to the default subject).
func ForStep(c *automation.Claimed, step automation.Step) Template {
	channel := automation.ChannelEmail
	if step.Type == automation.StepSendSMS {
		channel = automation.ChannelSMS
	}
	def := DefaultFor(c, channel)
	if channel == automation.ChannelSMS {
		if strings.TrimSpace(step.Body) == "" {
			return def
		}
		return Template{Text: step.Body}
	}
	t := Template{Subject: step.Subject, Text: step.Body, HTML: step.HTML}
	if strings.TrimSpace(t.Text) == "" && strings.TrimSpace(t.HTML) == "" {
		t.Text, t.HTML = def.Text, def.HTML
	}
	if strings.TrimSpace(t.Subject) == "" {
		t.Subject = def.Subject
	}
	return t
}
