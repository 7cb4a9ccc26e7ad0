package engine

import (
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/text"
)

// What a client accepts (issue 12). The claim document carries the
// workflow's message class and the client's consent from dueflow's own
// tables; the app's own email_opt_out / sms_opt_out columns are honoured
// before (prepare).

// messageClass is the execution's class: the claim's, or the trigger
// type's default when the database does not send one.
func messageClass(c *automation.Claimed) string {
	switch c.Workflow.MessageClass {
	case automation.ClassTransactional, automation.ClassNonTransactional:
		return c.Workflow.MessageClass
	}
	tt := c.Execution.TriggerType
	if tt == "" {
		tt = c.Workflow.TriggerType
	}
	return automation.DefaultMessageClass(tt)
}

// refused says why a message to the exact address to (an email address or
// an E.164 number) must not go: skipSuppressed for a hard bounce or a
// complaint, skipOptedOut for an SMS STOP (any class) or the client's
// opt-out of the channel (non-transactional only); "" when it may.
func refused(c *automation.Claimed, channel automation.Channel, to string) string {
	cs := c.Consent
	if cs == nil || c.Client == nil {
		return ""
	}
	for _, b := range cs.Blocked {
		if b.Channel != channel || !sameAddress(channel, b.Address, to) {
			continue
		}
		if b.Reason == automation.BlockedOptedOut {
			return skipOptedOut
		}
		return skipSuppressed
	}
	if messageClass(c) == automation.ClassNonTransactional {
		for _, ch := range cs.OptedOut {
			if ch == channel {
				return skipOptedOut
			}
		}
	}
	return ""
}

// told reports whether the number was told how to opt out in the last 30
// days (the claim lists those numbers).
func told(c *automation.Claimed, to string) bool {
	if c.Consent == nil {
		return false
	}
	for _, n := range c.Consent.SMSTold {
		if sameAddress(automation.ChannelSMS, n, to) {
			return true
		}
	}
	return false
}

// sameAddress compares a stored address with the one a message goes to:
// email addresses without regard to case, numbers as E.164 strings.
func sameAddress(channel automation.Channel, stored, to string) bool {
	stored = strings.TrimSpace(stored)
	if channel == automation.ChannelEmail {
		return strings.EqualFold(stored, to)
	}
	return stored == to
}

// unsubscribeURL returns the client's one-click opt-out URL for the
// channel, or "" (logged) when none can be made.
func (e *Engine) unsubscribeURL(r *run, channel automation.Channel) string {
	if e.o.Unsubscribe == nil {
		r.log.Warn("non-transactional message without an unsubscribe link: DUEFLOW_UNSUBSCRIBE_KEYS and DUEFLOW_PUBLIC_URL are not set",
			"step_index", r.step, "channel", channel)
		return ""
	}
	u, err := e.o.Unsubscribe(r.c.Execution.OrganizationID, text.FirstNonEmpty(r.c.Execution.ClientID, r.c.Client.ID), string(channel))
	if err != nil {
		r.log.Warn("non-transactional message without an unsubscribe link", "step_index", r.step, "channel", channel,
			"error", err.Error())
		return ""
	}
	return u
}
