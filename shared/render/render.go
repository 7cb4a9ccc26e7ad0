// Package render fills user-written message templates ({{client.first_name}},
// {{invoice.number}}, ...) from a fixed set of variables. It is plain
// placeholder substitution: user text is never executed as a Go template.
package render

import (
	"errors"

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

// UnknownVariableError is returned for a placeholder outside the fixed set;
// it is a permanent template_error.
type UnknownVariableError struct{ Name string }

func (e *UnknownVariableError) Error() string { return "unknown template variable {{" + e.Name + "}}" }

// ErrNotImplemented is a placeholder until the package is complete.
var ErrNotImplemented = errors.New("render: not implemented")

// VarsFor builds the variables of one claimed execution: money formatted in
// the invoice currency, times in the organisation's time zone.
func VarsFor(c *automation.Claimed) Vars { return Vars{} }

// Text renders a plain-text template (email text part, SMS, subject).
func Text(tmpl string, v Vars) (string, error) { return "", ErrNotImplemented }

// HTML renders an HTML template, HTML-escaping every substituted value.
func HTML(tmpl string, v Vars) (string, error) { return "", ErrNotImplemented }

// Default returns the default template of an action for a channel
// (automation.ChannelEmail or ChannelSMS).
func Default(action, channel string) Template { return Template{} }

// DefaultSteps returns the steps used when a workflow has none.
func DefaultSteps(action string) []automation.Step { return nil }
