// Package notify defines the one small interface every message provider
// implements (email by SMTP or Mailgun, SMS by Twilio or Telnyx) and the
// classification of provider errors: an *automation.Error whose code says
// retryable or permanent, with the provider's detail (*Error) as its cause.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strconv"
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/redact"
)

// Message is one email or SMS to send. For SMS only To, From and Text are used.
type Message struct {
	Channel        automation.Channel
	To             string // email address, or E.164 phone number
	FromName       string
	From           string // sender address or phone number; empty = the provider's configured default
	ReplyTo        string
	Subject        string
	Text           string // plain-text body (email text part, or the SMS text)
	HTML           string // optional HTML part of an email
	IdempotencyKey string // stable across retries; sent where the provider honours one
	// UnsubscribeURL is the one-click opt-out URL of a non-transactional
	// email (RFC 8058): an email provider writes it as List-Unsubscribe
	// with List-Unsubscribe-Post (ListUnsubscribe). "" = none.
	UnsubscribeURL string
}

// ListUnsubscribe returns the List-Unsubscribe and List-Unsubscribe-Post
// header values (RFC 2369, RFC 8058) for a one-click unsubscribe URL, or ok
// false when u is empty or is not an absolute http(s) URL that fits in a
// header (no spaces, control characters, '<' or '>', at most 2,048 bytes):
// then the message goes without them rather than with a broken header.
func ListUnsubscribe(u string) (list, post string, ok bool) {
	if u == "" || len(u) > 2048 || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
		return "", "", false
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r > 0x7e {
			return "", "", false
		}
	}
	return "<" + u + ">", "List-Unsubscribe=One-Click", true
}

// Result is what a provider returns for an accepted message.
type Result struct {
	Provider  string
	MessageID string
}

// Sender sends messages of one channel through one provider.
type Sender interface {
	// Name is the provider's name, recorded in the delivery ledger.
	Name() string
	// Send hands the message to the provider. A failure should be a
	// provider failure (Fail: an *automation.Error with a provider code and
	// an *Error detail) so that callers can tell retryable from permanent
	// failures and what may have been handed over.
	Send(ctx context.Context, m Message) (Result, error)
}

// Error codes of provider failures: the automation codes a provider
// failure is stored with.
const (
	CodeInvalidRecipient = automation.CodeInvalidRecipient // permanent
	CodeRejected         = automation.CodeProviderRejected // permanent (other 4xx, bad request)
	// CodeAuth is retryable: the provider refused our credentials or sender
	// configuration (401/403, a from-number not valid for the account). It
	// is an operator's mistake (a rotated key), fixed without touching the
	// reminders, so they back off and retry (the database caps attempts).
	CodeAuth        = automation.CodeProviderAuth
	CodeRateLimited = automation.CodeRateLimited       // retryable (429)
	CodeUnavailable = automation.CodeProviderRetryable // retryable (5xx)
	CodeNetwork     = automation.CodeNetwork           // retryable
	CodeTimeout     = automation.CodeTimeout           // retryable
)

// Error is the detail of a provider failure. A Sender's failure is an
// *automation.Error (Fail) with the provider code (CodeRejected, ...) and a
// masked message; this *Error is its cause (errors.As reaches it) and holds
// what the code cannot say: which provider, its status, its Retry-After
// hint, and whether the message may have been handed over (Ambiguous).
// Whether a failure is worth another attempt follows from the code alone
// (Retryable), so it is not a field: a field could disagree with the code.
type Error struct {
	Provider   string
	StatusCode int // HTTP or SMTP status, 0 when unknown
	RetryAfter int // seconds, from a Retry-After hint, 0 when none
	// Ambiguous is set when the failure happened after the message was
	// handed over (a connection lost while waiting for the answer): the
	// provider may have accepted it, so a re-send could duplicate it.
	Ambiguous bool
	Err       error
}

var _ error = (*Error)(nil)

// Error describes the detail: provider, status and cause, with e-mail
// addresses and phone numbers in the cause masked (redact.Text: a
// provider's text may name the recipient).
func (e *Error) Error() string { return e.Provider + e.status() + ": " + e.cause() }

// status is " (status <StatusCode>)", or "" when the status is unknown.
func (e *Error) status() string {
	if e.StatusCode == 0 {
		return ""
	}
	return " (status " + strconv.Itoa(e.StatusCode) + ")"
}

// cause is the cause's text, masked.
func (e *Error) cause() string {
	if e.Err == nil {
		return "<nil>"
	}
	return redact.Text(e.Err.Error())
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Fail returns a provider failure: an *automation.Error with code, the
// detail d as its cause, and the message "<provider>: <code> (status
// <status>): <cause>" (without the status when it is 0), the cause's
// addresses and numbers masked. That message is what callers log and store.
func Fail(code automation.Code, d *Error) *automation.Error {
	return automation.NewError(code, d.Provider+": "+string(code)+d.status()+": "+d.cause(), d)
}

// Retryable reports whether a provider failure with code is worth another
// attempt: every code but CodeInvalidRecipient and CodeRejected (permanent).
// A code no provider gives (automation.CodeInternal: unclassified) is
// retryable: losing a reminder to an unexpected hiccup is worse than one
// more attempt, and the delivery ledger prevents a double send.
func Retryable(code automation.Code) bool {
	return code != CodeInvalidRecipient && code != CodeRejected
}

// IsRetryable reports whether err is worth another attempt: Retryable of
// its code (automation.ErrorCode); false for nil.
func IsRetryable(err error) bool {
	return err != nil && Retryable(automation.ErrorCode(err))
}

// IsAmbiguous reports whether the provider may have accepted the message
// despite err: its detail (*Error) has Ambiguous set. The classifiers set it
// for a failure after the hand-over, timeouts included (TransportError); a
// timeout known to have happened before it (a dial timeout, a 408 answer,
// waiting for a connection) is not ambiguous: nothing was sent, so it is
// retried.
func IsAmbiguous(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Ambiguous
}

// RetryAfter returns the provider's Retry-After hint of err in seconds (its
// detail's RetryAfter); 0 when there is none.
func RetryAfter(err error) int {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.RetryAfter
	}
	return 0
}

// MessageID derives a stable RFC 5322 Message-ID (without angle brackets)
// from a delivery's idempotency key and the sender address, so that a
// receiving system can recognise a re-sent message:
// "<hash>@<sender domain>", the hash being the first 20 bytes of the key's
// SHA-256 in lower-case base32 (32 characters). It reveals neither the key
// (the execution's id) nor the software that sent it. It returns "" for an
// empty key.
func MessageID(idempotencyKey, from string) string {
	if idempotencyKey == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(idempotencyKey))
	left := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20]))
	domain := "invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		d := strings.Trim(strings.TrimSpace(from[i+1:]), ">")
		if d != "" && !strings.ContainsAny(d, " <>()[]\\,;:\"@") {
			domain = strings.ToLower(d)
		}
	}
	return left + "@" + domain
}
