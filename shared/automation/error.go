package automation

import "errors"

var _ error = (*Error)(nil)

// Error is the one error shape of dueflow: a Code a caller can act on, a
// Message safe to show to whoever receives it (no personal data, no
// secrets), and the wrapped cause (errors.Is/As reach it; its text is not
// part of Error() when there is a Message). A failure a package of shared/
// returns is, or wraps, an *Error with the code callers act on (one
// without is internal: ErrorCode); what the package knows beyond the code
// is a detail type of its own as the cause (notify.Error: provider,
// status, Retry-After, hand-over; supabase.RPCError; config.Error;
// render.TooLargeError, ...). Codes are mapped to their meaning at the
// edges only: to an HTTP status in shared/lambdaurl and
// shared/providerevents, to a report outcome in the engine.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the message, or else the cause's text, or else the code.
func (e *Error) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	}
	return string(e.Code)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error with code, message and cause (which may be nil).
func NewError(code Code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain: "" for
// nil, CodeInternal for an error that carries no code.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
