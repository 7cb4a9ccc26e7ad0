package providerevents

import (
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/phone"
)

// Keyword is what an inbound SMS asks for.
type Keyword int

// Keywords of an inbound SMS.
const (
	KeywordNone   Keyword = iota // any other text: nothing to do
	KeywordOptOut                // STOP, STOPALL, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE
	KeywordOptIn                 // START, UNSTOP, YES
	KeywordHelp                  // HELP
)

// keywords follow what the providers themselves act on (Twilio's default
// opt-out and opt-in words, Telnyx's "STOP ALL"), so dueflow's record
// matches the carrier's block.
var keywords = map[string]Keyword{
	"STOP": KeywordOptOut, "STOPALL": KeywordOptOut, "STOP ALL": KeywordOptOut, "UNSUBSCRIBE": KeywordOptOut,
	"CANCEL": KeywordOptOut, "END": KeywordOptOut, "QUIT": KeywordOptOut, "OPTOUT": KeywordOptOut, "REVOKE": KeywordOptOut,
	"START": KeywordOptIn, "UNSTOP": KeywordOptIn, "YES": KeywordOptIn,
	"HELP": KeywordHelp,
}

// ParseKeyword reads an inbound SMS's text: a keyword is the whole message,
// any case, white space around and between words ignored ("stop", " Stop\n"
// and "stop  all" opt out, "please stop" does not).
func ParseKeyword(text string) Keyword {
	if len(text) > 32 {
		return KeywordNone
	}
	return keywords[strings.ToUpper(strings.Join(strings.Fields(text), " "))]
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
	if !phone.IsE164(from) || eventID == "" {
		return Event{}, false
	}
	if !phone.IsE164(to) {
		to = "" // a short code or alphanumeric sender: the database resolves by the number alone
	}
	return Event{Kind: kind, Provider: provider, EventID: eventID, Channel: automation.ChannelSMS, Address: from, Sender: to, OccurredAt: at}, true
}
