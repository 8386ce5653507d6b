package discovery

import "net/http"

// UCP negotiation and discovery error codes (overview.md, "Error Codes").
const (
	CodeInvalidProfileURL        = "invalid_profile_url"
	CodeProfileUnreachable       = "profile_unreachable"
	CodeProfileMalformed         = "profile_malformed"
	CodeVersionUnsupported       = "version_unsupported"
	CodeCapabilitiesIncompatible = "capabilities_incompatible"
)

// Error is a discovery or negotiation failure. Content is written for the
// remote party and may go into a UCP error body; Err is detail for logs only
// (it may name internal addresses).
type Error struct {
	Code    string
	Content string
	Err     error
}

func (e *Error) Error() string {
	msg := "ucp discovery: " + e.Code
	if e.Content != "" {
		msg += ": " + e.Content
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the REST status UCP assigns to the code. A negotiation failure
// (capabilities_incompatible) is a business outcome, answered with 200 and
// a UCP error envelope, not a transport error. Unknown codes are 500.
func (e *Error) Status() int {
	switch e.Code {
	case CodeInvalidProfileURL:
		return http.StatusBadRequest
	case CodeProfileUnreachable:
		return http.StatusFailedDependency
	case CodeProfileMalformed, CodeVersionUnsupported:
		return http.StatusUnprocessableEntity
	case CodeCapabilitiesIncompatible:
		return http.StatusOK
	}
	return http.StatusInternalServerError
}
