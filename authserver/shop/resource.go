package shop

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
)

// PathResourceMetadata is the RFC 9728 well-known prefix: a resource's
// metadata lives at this path followed by the resource's own path.
const PathResourceMetadata = "/.well-known/oauth-protected-resource"

// ResourceMetadata is an RFC 9728 protected-resource metadata document.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// storeScopes are the scopes a store's operations ask of bearer tokens
// (the guard's table).
var storeScopes = []string{guard.ScopePurchase, guard.ScopeCheckoutManage, guard.ScopeCartManage, guard.ScopeOrdersRead, guard.ScopeOrderRead}

// serveResourceMetadata answers for every store (its URL and its MCP
// endpoint) and the cross-store MCP endpoint; unknown stores are 404 so
// the document never vouches for a resource that does not exist.
func (s *Service) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	path := "/" + r.PathValue("path")
	md := ResourceMetadata{Resource: s.cfg.BaseURL + path, AuthorizationServers: []string{s.cfg.BaseURL},
		ScopesSupported: storeScopes, BearerMethodsSupported: []string{"header"}}
	switch {
	case path == "/mcp" || path == "/catalog":
		md.ResourceName = "ucpbridge cross-store catalog"
	case strings.HasPrefix(path, "/s/"):
		slug, rest, _ := strings.Cut(strings.TrimPrefix(path, "/s/"), "/")
		if (rest != "" && rest != "mcp") || !slugRE.MatchString(slug) {
			http.NotFound(w, r)
			return
		}
		sh, err := s.shop(r.Context(), slug)
		if isNotFound(err) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			s.failure(r.Context(), "shop: resource metadata", err)
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		md.ResourceName = sh.Name
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	json.NewEncoder(w).Encode(md)
}
