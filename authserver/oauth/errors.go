package oauth

import (
	"encoding/json"
	"net/http"
)

// oauthError is an RFC 6749 error. Description goes to the client; the
// cause (if any) only to the log.
type oauthError struct {
	Code        string
	Description string
	Status      int
	cause       error
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

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.cause != nil {
		s.log.ErrorContext(r.Context(), "oauth request failed", "path", r.URL.Path, "error", e.Code, "cause", e.cause)
	}
	if e.Code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.cfg.Issuer+`", charset="UTF-8"`)
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}
