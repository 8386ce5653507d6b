package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// oauthError is an RFC 6749 error. Description goes to the client; the
// cause (if any) only to the log.
type oauthError struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, when set, is sent as Retry-After (whole seconds, rounded
	// up) so a throttled caller knows when to come back.
	RetryAfter time.Duration
	cause      error
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func (e *oauthError) Unwrap() error { return e.cause }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{Code: "invalid_request", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidClient(desc string) *oauthError {
	return &oauthError{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{Code: "invalid_grant", Description: desc, Status: http.StatusBadRequest}
}

func errUnauthorizedClient(desc string) *oauthError {
	return &oauthError{Code: "unauthorized_client", Description: desc, Status: http.StatusBadRequest}
}

func errUnsupportedGrant(desc string) *oauthError {
	return &oauthError{Code: "unsupported_grant_type", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidScope(desc string) *oauthError {
	return &oauthError{Code: "invalid_scope", Description: desc, Status: http.StatusBadRequest}
}

// errSlowDown is a rate limit's refusal: 429, and when to retry.
func errSlowDown(wait time.Duration) *oauthError {
	return &oauthError{Code: "slow_down", Description: fmt.Sprintf("too many requests; retry in %d s", retrySeconds(wait)),
		Status: http.StatusTooManyRequests, RetryAfter: max(wait, time.Nanosecond)}
}

// retrySeconds rounds a wait up to whole seconds, at least one: a
// Retry-After of 0 would invite an immediate retry that is refused again.
func retrySeconds(wait time.Duration) int {
	return int(max(wait, 0)/time.Second) + 1
}

func errServer(cause error) *oauthError {
	return &oauthError{Code: "server_error", Description: "internal error", Status: http.StatusInternalServerError, cause: cause}
}

// writeJSON writes v with the no-store headers every token-bearing
// response needs.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// logError records why a request failed. Only the server's own failures
// are errors; a refusal of the caller's input (a CIMD document that does
// not qualify, say) is the caller's business and goes to debug, so a
// client repeating it cannot flood the error log.
func (s *Server) logError(r *http.Request, msg string, e *oauthError) {
	switch {
	case e.Code == "server_error" && r.Context().Err() == nil && !errors.Is(e.cause, context.Canceled):
		// A caller that hangs up cancels the request's context and so
		// fails the store call in flight: that is not the server failing.
		s.log.ErrorContext(r.Context(), msg, "path", r.URL.Path, "error", e.Code, "cause", e.cause)
	case e.cause != nil || e.Code == "server_error":
		s.log.DebugContext(r.Context(), msg, "path", r.URL.Path, "error", e.Code, "cause", e.cause)
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	s.logError(r, "oauth request failed", e)
	if e.Code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.cfg.Issuer+`", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(e.RetryAfter)))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}
