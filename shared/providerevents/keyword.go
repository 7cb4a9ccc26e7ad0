package providerevents

import (
	"strings"
	"time"
)

// Keyword is what an inbound SMS asks for.
type Keyword int

// Keywords of an inbound SMS.
const (
	KeywordNone   Keyword = iota // any other text: nothing to do
	KeywordOptOut                // STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT
	KeywordOptIn                 // START, UNSTOP
	KeywordHelp                  // HELP
)

var keywords = map[string]Keyword{
	"STOP": KeywordOptOut, "STOPALL": KeywordOptOut, "UNSUBSCRIBE": KeywordOptOut,
	"CANCEL": KeywordOptOut, "END": KeywordOptOut, "QUIT": KeywordOptOut,
	"START": KeywordOptIn, "UNSTOP": KeywordOptIn,
	"HELP": KeywordHelp,
}

// ParseKeyword reads an inbound SMS's text: a keyword is the whole message,
// any case, surrounding white space ignored ("stop" and " Stop\n" opt out,
// "please stop" does not).
func ParseKeyword(text string) Keyword {
	t := strings.TrimSpace(text)
	if len(t) > 16 {
		return KeywordNone
	}
	return keywords[strings.ToUpper(t)]
}

// DefaultSMSHelpText answers HELP where the provider expects the answer
// from us (Twilio's TwiML). It names no organisation: one number may send
// for several.
const DefaultSMSHelpText = "Automated reminders. Reply STOP to stop them, START to resume. For help, contact the business that sent you the reminder."

// keywordEvent is the Event of an opt-out or opt-in keyword; ok is false for
// other keywords or when from is not an E.164 number.
func keywordEvent(provider, eventID string, k Keyword, from, to string, at time.Time) (Event, bool) {
	var kind string
	switch k {
	case KeywordOptOut:
		kind = KindOptOut
	case KeywordOptIn:
		kind = KindOptIn
	default:
		return Event{}, false
	}
	if !isE164(from) || eventID == "" {
		return Event{}, false
	}
	if !isE164(to) {
		to = "" // a short code or alphanumeric sender: the database resolves by the number alone
	}
	return Event{Kind: kind, Provider: provider, EventID: eventID, Channel: ChannelSMS, Address: from, Sender: to, OccurredAt: at}, true
}

// isE164 reports whether s is "+" and 8 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
