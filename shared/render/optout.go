package render

import (
	"html"
	"strings"
)

// Default opt-out lines of a non-transactional message, used when its
// template does not show the unsubscribe link itself.
const (
	optOutText = "To stop receiving these emails, open:\n"
	optOutHTML = `<p style="font-size:12px;color:#666">To stop receiving these emails, <a href="%s">unsubscribe</a>.</p>`
)

// WithOptOut adds the default opt-out line to a rendered email whose parts
// do not already carry unsubscribeURL (a template or footer that shows
// {{unsubscribe_url}} keeps its own wording): a line with the link at the
// end of the text part and a small paragraph before </body> (or at the end)
// of the HTML part. The limits are checked again. An empty URL changes
// nothing.
func WithOptOut(m Message, unsubscribeURL string) (Message, error) {
	if unsubscribeURL == "" {
		return m, nil
	}
	if !strings.Contains(m.Text, unsubscribeURL) {
		m.Text = strings.TrimRight(m.Text, "\n") + "\n\n" + optOutText + unsubscribeURL + "\n"
	}
	escaped := html.EscapeString(unsubscribeURL)
	if m.HTML != "" && !strings.Contains(m.HTML, escaped) {
		p := strings.Replace(optOutHTML, "%s", escaped, 1)
		if i := strings.LastIndex(strings.ToLower(m.HTML), "</body>"); i >= 0 {
			m.HTML = m.HTML[:i] + p + "\n" + m.HTML[i:]
		} else {
			m.HTML += "\n" + p
		}
	}
	if err := checkEmail(m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// WithSMSOptOut ends a rendered SMS with SMSOptOutHint unless it already
// mentions STOP, and checks the segment limit again.
func WithSMSOptOut(s string) (string, error) {
	if !strings.Contains(strings.ToUpper(s), "STOP") {
		s = strings.TrimRight(s, " \n") + " " + SMSOptOutHint
	}
	if err := checkSMS(s); err != nil {
		return "", err
	}
	return s, nil
}
