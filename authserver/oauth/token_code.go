package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

var verifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// grantCode redeems an authorization code. Every check that a stolen code
// would fail (client, redirect, verifier) runs before the code is touched,
// so a forged replay cannot revoke the real client's tokens.
func (s *Server) grantCode(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	raw := r.PostForm.Get("code")
	if raw == "" {
		return nil, errInvalidRequest("code is required")
	}
	hash := hashToken(raw)
	code, err := s.cfg.Store.Code(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("unknown authorization code")
	}
	if err != nil {
		return nil, errServer(err)
	}
	now := s.now()
	if code.ClientID != c.ID {
		return nil, errInvalidGrant("the code was issued to another client")
	}
	if ru := r.PostForm.Get("redirect_uri"); ru != "" && ru != code.RedirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	verifier := r.PostForm.Get("code_verifier")
	if verifier == "" {
		return nil, errInvalidGrant("code_verifier is required (PKCE)")
	}
	if !verifierPattern.MatchString(verifier) {
		return nil, errInvalidGrant("code_verifier must be 43-128 unreserved characters")
	}
	if !equalHash([]byte(s256(verifier)), []byte(code.CodeChallenge)) {
		return nil, errInvalidGrant("code_verifier does not match the code_challenge")
	}
	if !c.confidential() {
		// The caller holds the code and its verifier: it acts for the
		// client, and from here on the client's bucket is its.
		if oe := s.chargeClient(c); oe != nil {
			return nil, oe
		}
	}
	g := &store.Grant{ID: randomID("gr_"), ClientID: c.ID, BuyerID: code.BuyerID, Scope: code.Scope, Resource: code.Resource,
		Allowance: code.Allowance, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	iss, resp := s.mint(g, code.Scope, hasScope(code.Scope, "offline_access"), now)
	iss.Grant = g
	switch err := s.cfg.Store.RedeemCode(ctx, hash, iss, now); {
	case errors.Is(err, store.ErrCodeUsed):
		s.log.WarnContext(ctx, "authorization code replayed; its grant is revoked", "client_id", c.ID)
		return nil, errInvalidGrant("authorization code already used")
	case errors.Is(err, store.ErrExpired):
		return nil, errInvalidGrant("authorization code expired")
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidGrant("unknown authorization code")
	case err != nil:
		return nil, errServer(err)
	}
	return resp, nil
}
