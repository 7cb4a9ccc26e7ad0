// Package notify defines the one small interface every message provider
// implements (email by SMTP or Mailgun, SMS by Twilio or Telnyx) and the
// classification of provider errors into retryable and permanent.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
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
	// Send hands the message to the provider. Errors should be *Error so
	// that callers can tell retryable from permanent failures.
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

// Error is a classified provider failure: the error shape of
// automation.Error (a Code, the wrapped cause) with what the engine needs
// to map it to a report outcome (Retryable, Ambiguous, RetryAfter) and what
// the operator needs to read it (Provider, StatusCode).
type Error struct {
	Provider   string
	Code       automation.Code
	Retryable  bool
	StatusCode int // HTTP or SMTP status, 0 when unknown
	RetryAfter int // seconds, from a Retry-After hint, 0 when none
	// Ambiguous is set when the failure happened after the message was
	// handed over (a connection lost while waiting for the answer): the
	// provider may have accepted it, so a re-send could duplicate it.
	Ambiguous bool
	Err       error
}

// Error describes the failure: provider, code, status and cause, with
// e-mail addresses and phone numbers in the cause masked (redact.Text: a
// provider's text may name the recipient). This is what callers log and
// store.
func (e *Error) Error() string {
	cause := "<nil>"
	if e.Err != nil {
		cause = redact.Text(e.Err.Error())
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s: %s (status %d): %s", e.Provider, e.Code, e.StatusCode, cause)
	}
	return fmt.Sprintf("%s: %s: %s", e.Provider, e.Code, cause)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// IsAmbiguous reports whether the provider may have accepted the message
// despite err: an *Error with Ambiguous set. The classifiers set it for a
// failure after the hand-over, timeouts included (TransportError); a timeout
// known to have happened before it (a dial timeout, a 408 answer, waiting
// for a connection) is not ambiguous: nothing was sent, so it is retried.
func IsAmbiguous(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Ambiguous
	}
	return false
}

// IsRetryable reports whether err is worth another attempt. Errors that are
// not *Error (unclassified) are treated as retryable: losing a reminder to an
// unexpected hiccup is worse than one more attempt, and the delivery ledger
// prevents a double send.
func IsRetryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable
	}
	return err != nil
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
