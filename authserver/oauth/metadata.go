package oauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	names := make([]string, len(Scopes))
	for i, sc := range Scopes {
		names[i] = sc.Name
	}
	grants := []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeTokenExchange}
	if s.cfg.AllowPasswordGrant {
		grants = append(grants, "password")
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	md := map[string]any{
		"issuer":                                         s.cfg.Issuer,
		"authorization_endpoint":                         s.cfg.Issuer + PathAuthorize,
		"token_endpoint":                                 s.cfg.Issuer + PathToken,
		"revocation_endpoint":                            s.cfg.Issuer + PathRevoke,
		"introspection_endpoint":                         s.cfg.Issuer + PathIntrospect,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grants,
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"none", "client_secret_post", "client_secret_basic"},
		"revocation_endpoint_auth_methods_supported":     []string{"none", "client_secret_post", "client_secret_basic"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_post", "client_secret_basic"},
		"scopes_supported":                               names,
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          s.cfg.CIMD != nil,
	}
	if s.cfg.DynamicRegistration {
		md["registration_endpoint"] = s.cfg.Issuer + PathRegister
	}
	writeBody(w, md)
}

// handleScopes lists the scope catalogue, optionally filtered by a comma-
// or space-separated list of names.
func (s *Server) handleScopes(w http.ResponseWriter, r *http.Request) {
	filter := strings.FieldsFunc(r.URL.Query().Get("scopes"), func(c rune) bool { return c == ',' || c == ' ' })
	out := []Scope{}
	for _, sc := range Scopes {
		if len(filter) == 0 || slices.Contains(filter, sc.Name) {
			out = append(out, sc)
		}
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, map[string]any{"scopes": out})
}

func writeBody(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}
