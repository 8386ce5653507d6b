package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// grantRefresh rotates a refresh token. A retry inside the grace window
// gets the first rotation's pair back; any other reuse revokes the grant.
func (s *Server) grantRefresh(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		return nil, errInvalidRequest("refresh_token is required")
	}
	hash := hashToken(raw)
	now := s.now()
	_, g, err := s.cfg.Store.RefreshToken(ctx, hash, now)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrRevoked):
		return nil, errInvalidGrant("refresh token is invalid, expired or revoked")
	case err != nil:
		return nil, errServer(err)
	}
	if g.ClientID != c.ID {
		return nil, errInvalidGrant("the refresh token was issued to another client")
	}
	if !c.confidential() {
		// A live refresh token of this client proves the caller acts for
		// it (chargeClient); a stranger's guesses never got this far.
		if oe := s.chargeClient(c); oe != nil {
			return nil, oe
		}
	}
	scope := g.Scope
	if req := r.PostForm.Get("scope"); req != "" {
		want, oe := parseScope(req)
		if oe != nil {
			return nil, oe
		}
		for _, sc := range want {
			if !hasScope(g.Scope, sc) {
				return nil, errInvalidScope("scope " + quoteShort(sc) + " was not granted")
			}
		}
		scope = strings.Join(want, " ")
	}
	next, resp := s.mint(g, scope, true, now)
	plain, _ := json.Marshal(resp)
	next.Sealed = s.sealer.seal(plain, hash)
	rot, err := s.cfg.Store.Rotate(ctx, hash, next, now, s.cfg.RefreshGrace)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.log.WarnContext(ctx, "refresh token reused; grant revoked", "client_id", c.ID, "grant_id", g.ID)
		return nil, errInvalidGrant("refresh token was already used; the grant is revoked")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrRevoked):
		return nil, errInvalidGrant("refresh token is invalid, expired or revoked")
	case err != nil:
		return nil, errServer(err)
	}
	if rot.Replayed {
		plain, err := s.sealer.open(rot.Sealed, hash)
		if err != nil {
			return nil, errServer(err)
		}
		var first tokenResponse
		if err := json.Unmarshal(plain, &first); err != nil {
			return nil, errServer(err)
		}
		return &first, nil
	}
	return resp, nil
}
