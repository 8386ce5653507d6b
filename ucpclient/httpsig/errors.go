package httpsig

import "net/http"

// Code is a UCP signature error code (signatures.md).
type Code string

// UCP signature error codes.
const (
	CodeSignatureMissing     Code = "signature_missing"
	CodeSignatureInvalid     Code = "signature_invalid"
	CodeKeyNotFound          Code = "key_not_found"
	CodeDigestMismatch       Code = "digest_mismatch"
	CodeAlgorithmUnsupported Code = "algorithm_unsupported"
	CodeCoverageInsufficient Code = "coverage_insufficient"
)

// Error is returned for every refused signature. Status is the HTTP status
// UCP assigns to the code.
type Error struct {
	Code   Code
	Reason string
	Err    error
}

// Status returns the HTTP status for the error: 400 for digest_mismatch and
// algorithm_unsupported, 401 otherwise.
func (e *Error) Status() int {
	switch e.Code {
	case CodeDigestMismatch, CodeAlgorithmUnsupported:
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

func (e *Error) Error() string {
	msg := "httpsig: " + string(e.Code)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches a sentinel *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrSignatureMissing     = &Error{Code: CodeSignatureMissing}
	ErrSignatureInvalid     = &Error{Code: CodeSignatureInvalid}
	ErrKeyNotFound          = &Error{Code: CodeKeyNotFound}
	ErrDigestMismatch       = &Error{Code: CodeDigestMismatch}
	ErrAlgorithmUnsupported = &Error{Code: CodeAlgorithmUnsupported}
	ErrCoverageInsufficient = &Error{Code: CodeCoverageInsufficient}
)

// rank orders codes when several signatures fail: the most specific
// failure is reported.
func rank(c Code) int {
	switch c {
	case CodeDigestMismatch:
		return 5
	case CodeSignatureInvalid:
		return 4
	case CodeKeyNotFound:
		return 3
	case CodeAlgorithmUnsupported:
		return 2
	case CodeCoverageInsufficient:
		return 1
	}
	return 0
}
