package smtpmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/redact"
)

// stageError is a failed SMTP stage told without personal data: the stage
// and the server's reply or what went wrong, addresses and numbers masked.
type stageError struct {
	stage  string
	detail string
	cause  error // for errors.Is: the context's error or os.ErrDeadlineExceeded on a timeout, else nil
}

var _ error = (*stageError)(nil)

// Error is "<stage>: <detail>".
func (e *stageError) Error() string { return e.stage + ": " + e.detail }

// Unwrap returns the timeout's cause, if any (never the library's error,
// whose text names the recipient).
func (e *stageError) Unwrap() error { return e.cause }

// timeoutError is a stage that got no answer in time: ctx's deadline,
// ctx's cancellation or Config.Timeout; ambiguous when the message may have
// been handed over.
func timeoutError(ctx context.Context, stage string, ambiguous bool) *automation.Error {
	code := notify.CodeTimeout
	var detail *stageError
	err := ctx.Err()
	if d, ok := ctx.Deadline(); err == nil && ok && !time.Now().Before(d) {
		err = context.DeadlineExceeded // the connection's deadline (the same) came first
	}
	switch {
	case errors.Is(err, context.Canceled):
		code = notify.CodeNetwork
		detail = &stageError{stage: stage, detail: "cancelled", cause: err}
	case err != nil:
		detail = &stageError{stage: stage, detail: "no answer before the deadline", cause: err}
	default:
		detail = &stageError{stage: stage, detail: "no answer within the timeout", cause: os.ErrDeadlineExceeded}
	}
	return notify.Fail(code, &notify.Error{Provider: ProviderName, Ambiguous: ambiguous, Err: detail})
}

// setupError classifies a failure before any message command (waiting for a
// connection, connect, TLS, greeting, EHLO, STARTTLS, AUTH): nothing was
// handed over, so it is retryable and never ambiguous. A refusal of the
// credentials (a 5xx reply to AUTH, no usable mechanism) is provider_auth,
// any other reply provider_unavailable, a stall timeout.
func setupError(ctx context.Context, stage string, err error, timedOut bool) *automation.Error {
	var tp *textproto.Error
	switch {
	case errors.As(err, &tp):
		code := notify.CodeUnavailable
		if stage == stageAuth && tp.Code >= 500 {
			code = notify.CodeAuth
		}
		return notify.Fail(code, &notify.Error{Provider: ProviderName, StatusCode: tp.Code,
			Err: &stageError{stage: stage, detail: reply(tp.Code, tp.Msg)}})
	case stage == stageAuth && (errors.Is(err, errNoAuth) || errors.Is(err, smtp.ErrUnencrypted) || errors.Is(err, smtp.ErrWrongHostname)):
		return notify.AuthError(ProviderName, 0, &stageError{stage: stage, detail: err.Error()})
	case timedOut || isTimeout(err):
		return timeoutError(ctx, stage, false)
	}
	return notify.Fail(notify.CodeNetwork, &notify.Error{Provider: ProviderName,
		Err: &stageError{stage: stage, detail: redact.Text(err.Error())}})
}

// sendError classifies go-mail's failure of a message: a 5xx reply to RCPT
// TO that names the mailbox (550, 551, 553) is invalid_recipient, any other
// 5xx provider_rejected (permanent), 4xx provider_unavailable (retryable);
// a failure without a reply (a stall: timedOut, a broken connection) is a
// retryable timeout or network error, Ambiguous only when the end of DATA
// was written and its reply awaited (the server may have the message);
// before that (MAIL FROM, RCPT TO, DATA, the content itself) nothing was
// handed over.
func sendError(ctx context.Context, err error, timedOut bool) *automation.Error {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return notify.TransportError(ProviderName, &stageError{stage: "send", detail: redact.Text(err.Error())})
	}
	stage := sendStage(se.Reason)
	code := se.ErrorCode()
	detail := &stageError{stage: stage, detail: redact.Text(replyText(se))}
	// Only the end of DATA (the final "." and its reply) can hand a message
	// over: a failure while the content is written leaves the relay with
	// an unterminated message, which it discards.
	handedOver := se.Reason == mail.ErrSMTPDataClose || se.Reason == mail.ErrAmbiguous
	switch {
	case code == 530 || code == 535:
		// authentication required or refused (a relay that wants AUTH
		// before MAIL FROM): the account's configuration, not the message
		return notify.AuthError(ProviderName, code, detail)
	case code >= 500 && code < 600:
		if se.Reason == mail.ErrSMTPRcptTo && (code == 550 || code == 551 || code == 553) {
			return notify.InvalidRecipient(ProviderName, code, detail)
		}
		return notify.Permanent(ProviderName, code, detail)
	case code >= 400 && code < 500:
		c := notify.CodeUnavailable
		if throttled(detail.detail) {
			c = notify.CodeRateLimited
		}
		return notify.Fail(c, &notify.Error{Provider: ProviderName, StatusCode: code, Err: detail})
	case se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts:
		return notify.Permanent(ProviderName, 0, detail)
	case timedOut:
		return timeoutError(ctx, stage, handedOver)
	}
	return notify.Fail(notify.CodeNetwork, &notify.Error{Provider: ProviderName, Ambiguous: handedOver, Err: detail})
}

// throttled reports whether a temporary SMTP reply says the sender is going
// too fast (SES "454 Throttling failure: Maximum sending rate exceeded",
// "450 4.7.1 ... rate limited", "421 4.7.0 Too many messages"): recorded
// rate_limited rather than provider_unavailable.
func throttled(reply string) bool {
	r := strings.ToLower(reply)
	for _, w := range []string{"throttl", "rate limit", "rate exceeded", "sending rate", "too many"} {
		if strings.Contains(r, w) {
			return true
		}
	}
	return false
}

// sendStage names the stage of a go-mail failure.
func sendStage(r mail.SendErrReason) string {
	switch r {
	case mail.ErrConnCheck:
		return "connection check"
	case mail.ErrSMTPMailFrom:
		return "MAIL FROM"
	case mail.ErrSMTPRcptTo:
		return "RCPT TO"
	case mail.ErrSMTPData:
		return "DATA"
	case mail.ErrWriteContent:
		return "content"
	case mail.ErrSMTPDataClose:
		return "end of DATA"
	case mail.ErrSMTPReset:
		return "RSET"
	case mail.ErrGetSender:
		return "sender address"
	case mail.ErrGetRcpts:
		return "recipient address"
	case mail.ErrNoUnencoded:
		return "8BITMIME"
	}
	return "send"
}

// replyText is the server's reply or the failure in a go-mail error,
// without the recipients and message id go-mail appends.
func replyText(se *mail.SendError) string {
	s := strings.TrimPrefix(se.Error(), se.Reason.String())
	s = strings.TrimPrefix(s, ":")
	for _, tail := range []string{", affected recipient(s): ", ", affected message ID: "} {
		if i := strings.Index(s, tail); i >= 0 {
			s = s[:i]
		}
	}
	if s = strings.TrimSpace(s); s == "" {
		return "failed"
	}
	return s
}

// reply formats an SMTP reply, masked.
func reply(code int, msg string) string {
	return fmt.Sprintf("%03d %s", code, redact.Text(strings.ReplaceAll(msg, "\n", " ")))
}

// isTimeout reports whether err is a deadline reached.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// notHandedOver reports whether a send failed because the session broke
// before the message content was sent (no SMTP reply, or 421 "closing
// channel", to the connection check, MAIL FROM, RCPT TO or DATA command).
func notHandedOver(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case mail.ErrConnCheck, mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData:
		code := se.ErrorCode()
		return code == 0 || code == 421
	}
	return false
}

// reusable reports whether the server rejected the message with a reply
// that leaves the session open (any 4xx/5xx but 421 to MAIL FROM, RCPT TO,
// DATA or the end of DATA), or the message was refused before any command.
func reusable(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return true
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
		code := se.ErrorCode()
		return code >= 400 && code < 600 && code != 421
	}
	return false
}
