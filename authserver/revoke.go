package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// handleRevoke implements RFC 7009: 200 whether or not the token existed;
// revoking a refresh token ends its whole grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		s.writeError(w, r, errInvalidRequest("token is required"))
		return
	}
	ctx := r.Context()
	hash := hashToken(tok)
	// A client may only revoke its own tokens; for anyone else's the
	// answer is the same 200, and nothing happens.
	if owner, err := s.tokenOwner(ctx, hash); err == nil && owner == c.ID {
		if err := s.cfg.Store.RevokeToken(ctx, hash, s.now()); err != nil {
			s.writeError(w, r, errServer(err))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) tokenOwner(ctx context.Context, hash []byte) (string, error) {
	now := s.now()
	if _, g, err := s.cfg.Store.RefreshToken(ctx, hash, now); err == nil {
		return g.ClientID, nil
	}
	a, err := s.cfg.Store.AccessToken(ctx, hash, now)
	if err != nil {
		return "", err
	}
	return a.ClientID, nil
}

// TokenInfo is what a resource server learns from a valid access token.
type TokenInfo struct {
	ClientID  string
	BuyerID   string // empty: an app-only (client_credentials) token
	Scope     string
	Resource  string
	GrantID   string
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope.
func (t *TokenInfo) HasScope(scope string) bool { return hasScope(t.Scope, scope) }

// ErrInvalidToken is returned by ValidateAccessToken for unknown, expired
// and revoked tokens alike.
var ErrInvalidToken = errors.New("authserver: invalid access token")

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
	return &TokenInfo{ClientID: a.ClientID, BuyerID: a.BuyerID, Scope: a.Scope, Resource: a.Resource, GrantID: a.GrantID, ExpiresAt: a.ExpiresAt}, nil
}

// handleIntrospect implements RFC 7662 for confidential clients (resource
// servers). Inactive tokens get only {"active":false}.
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
	if errors.Is(err, ErrInvalidToken) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	if err != nil {
		s.writeError(w, r, errServer(err))
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
