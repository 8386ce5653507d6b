package mandate

import "errors"

// Code is a UCP error code (dev.ucp.shopping.ap2_mandate) that a store puts
// in a checkout response's messages when a mandate or a merchant
// authorization is refused.
type Code string

// The UCP AP2 error codes.
const (
	CodeMandateRequired              Code = "mandate_required"
	CodeAgentMissingKey              Code = "agent_missing_key"
	CodeMandateInvalidSignature      Code = "mandate_invalid_signature"
	CodeMandateExpired               Code = "mandate_expired"
	CodeMandateScopeMismatch         Code = "mandate_scope_mismatch"
	CodeMerchantAuthorizationInvalid Code = "merchant_authorization_invalid"
	CodeMerchantAuthorizationMissing Code = "merchant_authorization_missing"
)

// Error is the error returned for every refused mandate or merchant
// authorization. Code is what goes on the wire; Reason is for humans and
// logs and never contains key material or the token.
//
// Match a class of failure with errors.Is against the sentinels below (they
// compare by Code), or read the Code with errors.As.
type Error struct {
	Code   Code
	Reason string
	Err    error // underlying cause, if any
}

func (e *Error) Error() string {
	msg := "mandate: " + string(e.Code)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a sentinel *Error with the same Code, so
// errors.Is(err, ErrMandateExpired) matches every expiry failure whatever
// its reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels, one per UCP code, for errors.Is.
var (
	ErrMandateRequired              = &Error{Code: CodeMandateRequired}
	ErrAgentMissingKey              = &Error{Code: CodeAgentMissingKey}
	ErrMandateInvalidSignature      = &Error{Code: CodeMandateInvalidSignature}
	ErrMandateExpired               = &Error{Code: CodeMandateExpired}
	ErrMandateScopeMismatch         = &Error{Code: CodeMandateScopeMismatch}
	ErrMerchantAuthorizationInvalid = &Error{Code: CodeMerchantAuthorizationInvalid}
	ErrMerchantAuthorizationMissing = &Error{Code: CodeMerchantAuthorizationMissing}
)

// ErrReplayed is the cause (inside an *Error with CodeMandateExpired) when a
// mandate's jti was already used. A consumed mandate is treated as no longer
// live: the client's remedy is the same as for expiry, mint a fresh one.
var ErrReplayed = errors.New("mandate already used")

// ErrKeyNotFound is returned by KeySet.Key when no usable key has the kid.
var ErrKeyNotFound = errors.New("key not found")

func fail(code Code, reason string, err error) *Error {
	return &Error{Code: code, Reason: reason, Err: err}
}
