package api

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors, one per error code. Every layer of Manta wraps these (with
// %w and context), and the SDK re-exports them, so callers check with
// errors.Is(err, api.ErrNotFound) or errors.Is(err, manta.ErrNotFound).
var (
	ErrNotFound         = errors.New("manta: not_found")
	ErrBadInput         = errors.New("manta: bad_input")
	ErrLoadFailed       = errors.New("manta: load_failed")
	ErrTooLarge         = errors.New("manta: too_large")
	ErrOverloaded       = errors.New("manta: overloaded")
	ErrDeadlineExceeded = errors.New("manta: deadline_exceeded")
	ErrInternal         = errors.New("manta: internal")
)

var sentinels = map[ErrorCode]error{
	ErrorCode_ERROR_CODE_NOT_FOUND:         ErrNotFound,
	ErrorCode_ERROR_CODE_BAD_INPUT:         ErrBadInput,
	ErrorCode_ERROR_CODE_LOAD_FAILED:       ErrLoadFailed,
	ErrorCode_ERROR_CODE_TOO_LARGE:         ErrTooLarge,
	ErrorCode_ERROR_CODE_OVERLOADED:        ErrOverloaded,
	ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED: ErrDeadlineExceeded,
	ErrorCode_ERROR_CODE_INTERNAL:          ErrInternal,
}

// Sentinel returns the sentinel error of a code (ErrInternal for unspecified).
func (c ErrorCode) Sentinel() error {
	if e, ok := sentinels[c]; ok {
		return e
	}
	return ErrInternal
}

// precedence is the order in which CodeOf looks for the sentinels: most
// specific first, so an error that wraps two of them gets one code, always
// the same. An oversized model or payload is too_large whatever wraps it; a
// wrong payload, id or manifest is bad_input even when the layer above
// called it not_found or load_failed; a load that failed because an
// artifact is missing is load_failed (the model exists); overloaded and
// deadline_exceeded describe the moment, internal is what is left.
var precedence = [...]ErrorCode{
	ErrorCode_ERROR_CODE_TOO_LARGE,
	ErrorCode_ERROR_CODE_BAD_INPUT,
	ErrorCode_ERROR_CODE_LOAD_FAILED,
	ErrorCode_ERROR_CODE_NOT_FOUND,
	ErrorCode_ERROR_CODE_OVERLOADED,
	ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
	ErrorCode_ERROR_CODE_INTERNAL,
}

// CodeOf classifies any error into the closed set: the sentinel it wraps
// (the first of precedence when it wraps several), a context deadline as
// deadline_exceeded, anything else as internal. nil is
// ERROR_CODE_UNSPECIFIED.
func CodeOf(err error) ErrorCode {
	if err == nil {
		return ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	for _, c := range precedence {
		if errors.Is(err, sentinels[c]) {
			return c
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED
	}
	return ErrorCode_ERROR_CODE_INTERNAL
}

// ErrorFrom turns a Go error into the wire Error (nil for nil).
func ErrorFrom(err error) *Error {
	if err == nil {
		return nil
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}

// Err turns a wire Error back into a Go error that wraps the code's sentinel
// (nil for nil). The message is kept as sent.
func (e *Error) Err() error {
	if e == nil || e.Code == ErrorCode_ERROR_CODE_UNSPECIFIED {
		return nil
	}
	return &RemoteError{Code: e.Code, Message: e.Message}
}

// RemoteError is an error that came over the wire. It unwraps to the code's
// sentinel, so errors.Is works across processes.
type RemoteError struct {
	Code    ErrorCode
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return e.Code.Sentinel().Error()
	}
	return e.Message
}

// Unwrap returns the sentinel of the code.
func (e *RemoteError) Unwrap() error { return e.Code.Sentinel() }

// Errorf builds an error wrapping the sentinel of code with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) error {
	return fmt.Errorf("%w: %s", code.Sentinel(), fmt.Sprintf(format, args...))
}
