package oauth

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// RFC 8693 identifiers.
const (
	// GrantTypeTokenExchange is the token exchange grant type.
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the only token type exchanged and issued.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// grantTokenExchange implements RFC 8693 for a platform application that
// runs a protected resource (its MCP bridge): it trades a buyer's access
// token issued for that resource for a token for the platform API.
//
// The new token speaks for the same buyer within the same grant (so the
// same allowance: spend is counted per buyer and agent client), acts for
// the requesting platform (its checkouts are that platform's), carries
// the subject's scope or a narrower one, never outlives the subject, and
// is refused as soon as the subject is (store: AccessToken checks the
// subject in the same read). It gets no refresh token, and cannot itself
// be exchanged.
//
// Who may exchange what is decided by resource ownership: only the
// platform that registered the subject's resource may exchange it, so a
// token the buyer gave one platform's bridge is useless to any other
// client, and a token for the platform API (or for no resource) is not
// exchangeable at all.
func (s *Server) grantTokenExchange(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	if !c.confidential() || c.Role != store.RolePlatform {
		return nil, errInvalidClient("token exchange is for platform applications authenticating with their secret")
	}
	if !c.allows(GrantTypeTokenExchange) {
		return nil, errUnauthorizedClient("this platform application may not use token exchange")
	}
	resp, oe := s.exchangeSubject(r, c)
	if oe != nil && oe.Code == "invalid_grant" {
		// The subject is whatever bearer someone sent the platform's
		// bridge, which exchanges every bearer it has not seen: were
		// refusals charged, anyone could spend the bridge's per-IP and
		// per-client buckets with made-up tokens (a hundred of them took
		// every buyer's exchange down to slow_down, the bridge to 503).
		// The platform proved its secret, and a refusal costs one lookup
		// of a hash, so a refused subject gives its tokens back: only
		// exchanges of real buyer tokens count.
		s.ipLim.give(s.clientKey(r))
		s.cliLim.give(c.ID)
	}
	return resp, oe
}

// exchangeSubject is grantTokenExchange once the client may exchange:
// the request's checks and the new token.
func (s *Server) exchangeSubject(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	f := r.PostForm
	raw, typ := f.Get("subject_token"), f.Get("subject_token_type")
	switch {
	case raw == "":
		return nil, errInvalidRequest("subject_token is required")
	case typ == "":
		return nil, errInvalidRequest("subject_token_type is required")
	case typ != TokenTypeAccessToken:
		return nil, errInvalidRequest("subject_token_type must be " + TokenTypeAccessToken)
	case f.Has("actor_token") || f.Has("actor_token_type"):
		return nil, errInvalidRequest("actor tokens (delegation) are not supported")
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, errInvalidRequest("requested_token_type must be " + TokenTypeAccessToken)
	}
	// The only target is the platform API: its root, the issuer.
	target := func(desc string) *oauthError {
		return &oauthError{Code: "invalid_target", Description: desc, Status: http.StatusBadRequest}
	}
	if res := f.Get("resource"); res != "" && strings.TrimSuffix(res, "/") != s.cfg.Issuer {
		return nil, target("resource must be this platform API, " + s.cfg.Issuer)
	}
	if aud := f.Get("audience"); aud != "" && strings.TrimSuffix(aud, "/") != s.cfg.Issuer {
		return nil, target("audience must be this platform API, " + s.cfg.Issuer)
	}

	// The subject: a live buyer token for a resource this platform runs.
	dead := errInvalidGrant("subject_token is invalid, expired or revoked")
	if !strings.HasPrefix(raw, prefixAccess) {
		return nil, dead
	}
	now := s.now()
	sub, err := s.cfg.Store.AccessToken(ctx, hashToken(raw), now)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrRevoked):
		return nil, dead
	case err != nil:
		return nil, errServer(err)
	}
	switch {
	case sub.BuyerID == "" || sub.GrantID == "":
		return nil, errInvalidGrant("subject_token is not a buyer's token")
	case sub.Exchanged():
		return nil, errInvalidGrant("subject_token was issued by token exchange; exchange the original token")
	case sub.Resource == "":
		return nil, errInvalidGrant("subject_token was issued for no resource; only tokens for this client's own resource may be exchanged")
	case s.platformAPIResource(sub.Resource):
		// A token for the platform API itself is never a bridge's, even
		// if a store-only registration (client add --resource) recorded
		// one of its URLs for a platform.
		return nil, errInvalidGrant("subject_token was issued for the platform API, not for a resource this client runs")
	}
	owner, err := s.cfg.Store.ResourceOwner(ctx, sub.Resource)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && owner != c.ID):
		return nil, errInvalidGrant("subject_token was issued for a resource this client does not run")
	case err != nil:
		return nil, errServer(err)
	}
	g, err := s.cfg.Store.Grant(ctx, sub.GrantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, dead
	case err != nil:
		return nil, errServer(err)
	case !g.RevokedAt.IsZero() || !now.Before(g.ExpiresAt):
		return nil, dead
	}

	scope := sub.Scope
	if req := strings.TrimSpace(f.Get("scope")); req != "" {
		want, oe := parseScope(req)
		if oe != nil {
			return nil, oe
		}
		for _, sc := range want {
			if !hasScope(sub.Scope, sc) {
				return nil, errInvalidScope("scope " + quoteShort(sc) + " is not in the subject token's scope")
			}
		}
		scope = strings.Join(want, " ")
	}
	expires := now.Add(s.cfg.AccessTokenTTL)
	if sub.ExpiresAt.Before(expires) {
		expires = sub.ExpiresAt
	}
	if expires.Sub(now) < time.Second {
		return nil, dead // about to expire: nothing worth issuing
	}
	at := newToken(prefixAccess)
	if err := s.cfg.Store.SaveAccessToken(ctx, &store.AccessToken{Hash: hashToken(at), GrantID: sub.GrantID, ClientID: sub.ClientID,
		BuyerID: sub.BuyerID, Scope: scope, Resource: s.cfg.Issuer, ActingPlatform: c.ID, Subject: sub.Hash, ExpiresAt: expires}); err != nil {
		return nil, errServer(err)
	}
	s.log.InfoContext(ctx, "token exchanged", "platform", c.ID, "client_id", sub.ClientID, "grant_id", sub.GrantID)
	return &tokenResponse{AccessToken: at, IssuedTokenType: TokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(expires.Sub(now) / time.Second), Scope: scope, Allowance: g.Allowance}, nil
}
