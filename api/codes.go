package api

import "fmt"

var codeNames = map[ErrorCode]string{
	ErrorCode_ERROR_CODE_UNSPECIFIED:       "",
	ErrorCode_ERROR_CODE_NOT_FOUND:         "not_found",
	ErrorCode_ERROR_CODE_BAD_INPUT:         "bad_input",
	ErrorCode_ERROR_CODE_LOAD_FAILED:       "load_failed",
	ErrorCode_ERROR_CODE_TOO_LARGE:         "too_large",
	ErrorCode_ERROR_CODE_OVERLOADED:        "overloaded",
	ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED: "deadline_exceeded",
	ErrorCode_ERROR_CODE_INTERNAL:          "internal",
}

// Name is the code's wire name of docs/ARCHITECTURE.md: not_found, bad_input, load_failed,
// too_large, overloaded, deadline_exceeded or internal ("" when unspecified).
func (c ErrorCode) Name() string { return codeNames[c] }

// ParseCode turns a wire name back into an ErrorCode.
func ParseCode(name string) (ErrorCode, error) {
	for c, n := range codeNames {
		if n == name && n != "" {
			return c, nil
		}
	}
	return ErrorCode_ERROR_CODE_UNSPECIFIED, fmt.Errorf("api: unknown error code %q", name)
}

// Codes lists every error code's wire name in a stable order.
func Codes() []string {
	return []string{"not_found", "bad_input", "load_failed", "too_large", "overloaded", "deadline_exceeded", "internal"}
}

// NewError builds an Error.
func NewError(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// HTTPStatus is the HTTP status of an error code (docs/ARCHITECTURE.md §2.3): 200
// for none, 400 bad_input, 404 not_found, 413 too_large, 429 overloaded,
// 504 deadline_exceeded, 502 load_failed, 500 internal.
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case ErrorCode_ERROR_CODE_UNSPECIFIED:
		return 200
	case ErrorCode_ERROR_CODE_BAD_INPUT:
		return 400
	case ErrorCode_ERROR_CODE_NOT_FOUND:
		return 404
	case ErrorCode_ERROR_CODE_TOO_LARGE:
		return 413
	case ErrorCode_ERROR_CODE_OVERLOADED:
		return 429
	case ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:
		return 504
	case ErrorCode_ERROR_CODE_LOAD_FAILED:
		return 502
	default:
		return 500
	}
}
