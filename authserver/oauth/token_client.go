package oauth

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// grantClientCredentials issues an app-only token to a confidential
// client. It never carries buyer authority or a refresh token.
func (s *Server) grantClientCredentials(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	if !c.confidential() {
		return nil, errUnauthorizedClient("client_credentials is for confidential clients")
	}
	scope, oe := s.appScope(r.PostForm.Get("scope"), c)
	if oe != nil {
		return nil, oe
	}
	now := s.now()
	at := newToken(prefixAccess)
	// A merchant's token is bound to its store here, once: the store
	// travels with the token, so a later change of registration cannot
	// widen a token already out.
	t := &store.AccessToken{Hash: hashToken(at), ClientID: c.ID, Scope: scope, Store: c.Store, ExpiresAt: now.Add(s.cfg.AccessTokenTTL)}
	if c.Role == store.RoleMerchant && c.Store == "" {
		return nil, errUnauthorizedClient("this merchant client is bound to no store")
	}
	if err := s.cfg.Store.SaveAccessToken(r.Context(), t); err != nil {
		return nil, errServer(err)
	}
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second), Scope: scope}, nil
}

// appScope checks a client_credentials scope request: known scopes the
// client is registered for, and none that carry buyer authority. Without
// a request, the client's non-buyer scopes are granted.
func (s *Server) appScope(req string, c *client) (string, *oauthError) {
	var want []string
	if req == "" {
		for _, name := range c.Scopes {
			if sc, ok := scopeByName(name); ok && !sc.Buyer {
				want = append(want, name)
			}
		}
		return strings.Join(want, " "), nil
	}
	want, oe := parseScope(req)
	if oe != nil {
		return "", oe
	}
	for _, name := range want {
		sc, _ := scopeByName(name)
		if sc.Buyer {
			return "", errInvalidScope("scope " + quoteShort(name) + " needs a buyer's consent")
		}
		if !slices.Contains(c.Scopes, name) {
			return "", errInvalidScope("client is not registered for " + quoteShort(name))
		}
	}
	return strings.Join(want, " "), nil
}
