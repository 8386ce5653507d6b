package oauth

import (
	"context"
	"net/http"
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
