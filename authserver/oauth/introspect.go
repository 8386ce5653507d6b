package oauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// TokenInfo is what a resource server learns from a valid access token.
type TokenInfo struct {
	ClientID string
	BuyerID  string // empty: an app-only (client_credentials) token
	Scope    string
	Resource string
	GrantID  string
	// Store binds a merchant's token to its store.
	Store string
	// Platform is the platform application owning ClientID ("" if none).
	Platform  string
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope.
func (t *TokenInfo) HasScope(scope string) bool { return hasScope(t.Scope, scope) }

// ErrInvalidToken is returned by ValidateAccessToken for unknown, expired
// and revoked tokens alike.
var ErrInvalidToken = errors.New("oauth: invalid access token")

// ValidateAccessToken checks an opaque access token in one indexed read:
// resource servers in this process call it directly, with no network hop,
// and a revoked token fails on its next use.
func (s *Server) ValidateAccessToken(ctx context.Context, token string) (*TokenInfo, error) {
	if !strings.HasPrefix(token, prefixAccess) {
		return nil, ErrInvalidToken
	}
	a, err := s.cfg.Store.AccessToken(ctx, hashToken(token), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrRevoked):
		return nil, ErrInvalidToken
	case err != nil:
		return nil, err
	}
	return &TokenInfo{ClientID: a.ClientID, BuyerID: a.BuyerID, Scope: a.Scope, Resource: a.Resource, GrantID: a.GrantID,
		Store: a.Store, Platform: a.Platform, ExpiresAt: a.ExpiresAt}, nil
}

// handleIntrospect implements RFC 7662 for confidential clients (resource
// servers). Inactive tokens, and tokens the caller may not see, get only
// {"active":false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	if !c.confidential() {
		s.writeError(w, r, errInvalidClient("introspection needs client authentication"))
		return
	}
	info, err := s.ValidateAccessToken(r.Context(), r.PostForm.Get("token"))
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		s.writeError(w, r, errServer(err))
		return
	}
	if err != nil || !s.mayIntrospect(c.ID, info) {
		// Another client's token looks exactly like an unknown one, so
		// introspection is no oracle for which tokens exist (RFC 7662
		// §2.2 lets the server answer inactive).
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	resp := map[string]any{"active": true, "client_id": info.ClientID, "scope": info.Scope, "token_type": "Bearer",
		"exp": info.ExpiresAt.Unix(), "iss": s.cfg.Issuer}
	if info.BuyerID != "" {
		resp["sub"] = info.BuyerID
	}
	if info.Resource != "" {
		resp["aud"] = info.Resource
	}
	writeJSON(w, http.StatusOK, resp)
}

// mayIntrospect reports whether clientID may learn about a token: one
// issued to it, or one issued for a resource it serves
// (Config.ResourceClients). Any confidential client may call the
// endpoint, so without this rule every client could read every other
// client's tokens: their buyer, scope and lifetime.
func (s *Server) mayIntrospect(clientID string, info *TokenInfo) bool {
	if info.ClientID == clientID {
		return true
	}
	return info.Resource != "" && slices.Contains(s.resourceClients[info.Resource], clientID)
}
