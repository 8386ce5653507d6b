package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    int64           `json:"expires_in"`
	RefreshToken string          `json:"refresh_token,omitempty"`
	Scope        string          `json:"scope"`
	Allowance    json.RawMessage `json:"allowance,omitempty"`
}

// handleToken parses and authenticates, then dispatches on grant_type.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.writeError(w, r, errInvalidRequest("the token endpoint takes application/x-www-form-urlencoded"))
		return
	}
	if err := parseForm(r); err != nil {
		s.writeError(w, r, errInvalidRequest("malformed form body"))
		return
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			s.writeError(w, r, errInvalidRequest("parameter "+quoteShort(k)+" is repeated"))
			return
		}
	}
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	grant := r.PostForm.Get("grant_type")
	if (grant == "authorization_code" || grant == "client_credentials" || grant == "refresh_token") && !c.allows(grant) {
		s.writeError(w, r, errUnauthorizedClient("this client may not use "+grant))
		return
	}
	var (
		resp *tokenResponse
		err  *oauthError
	)
	switch grant {
	case "authorization_code":
		resp, err = s.grantCode(r, c)
	case "refresh_token":
		resp, err = s.grantRefresh(r, c)
	case "client_credentials":
		resp, err = s.grantClientCredentials(r, c)
	case "password":
		resp, err = s.grantPassword(r, c)
	case "":
		err = errInvalidRequest("grant_type is required")
	default:
		err = errUnsupportedGrant("grant_type " + quoteShort(grant) + " is not supported")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

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

// mint builds the tokens of one response for grant g. accessScope may be
// narrower than the grant's.
func (s *Server) mint(g *store.Grant, accessScope string, withRefresh bool, now time.Time) (store.Issue, *tokenResponse) {
	at := newToken(prefixAccess)
	iss := store.Issue{Access: &store.AccessToken{Hash: hashToken(at), GrantID: g.ID, ClientID: g.ClientID, BuyerID: g.BuyerID,
		Scope: accessScope, Resource: g.Resource, ExpiresAt: now.Add(s.cfg.AccessTokenTTL)}}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second),
		Scope: accessScope, Allowance: g.Allowance}
	if withRefresh {
		rt := newToken(prefixRefresh)
		iss.Refresh = &store.RefreshToken{Hash: hashToken(rt), GrantID: g.ID, ExpiresAt: g.ExpiresAt}
		resp.RefreshToken = rt
	}
	return iss, resp
}

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
	t := &store.AccessToken{Hash: hashToken(at), ClientID: c.ID, Scope: scope, ExpiresAt: now.Add(s.cfg.AccessTokenTTL)}
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

// grantPassword is the legacy resource-owner password grant, kept for
// script apps used by their own developers, and only when the operator
// enables it.
func (s *Server) grantPassword(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	if !s.cfg.AllowPasswordGrant {
		return nil, errUnsupportedGrant("the password grant is disabled (OAuth 2.1 removed it)")
	}
	if c.Type != store.ClientScript || !c.confidential() {
		return nil, errUnauthorizedClient("the password grant is only for script apps")
	}
	ctx := r.Context()
	// One answer for every failure, and the account throttle applies, so
	// a script app's secret is no oracle for other buyers' passwords.
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	throttle := email + "|" + clientIP(r)
	if blocked, _ := s.loginLim.blocked(throttle); blocked {
		return nil, errInvalidGrant("too many failed attempts; try again later")
	}
	b, err := s.checkBuyer(ctx, email, r.PostForm.Get("password"))
	if err != nil {
		return nil, errServer(err)
	}
	if b == nil || !slices.Contains(c.Developers, b.ID) {
		s.loginLim.fail(throttle)
		return nil, errInvalidGrant("invalid username or password for this app")
	}
	want, oe := parseScope(r.PostForm.Get("scope"))
	if oe != nil {
		return nil, oe
	}
	for _, sc := range want {
		if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, sc) {
			return nil, errInvalidScope("client is not registered for " + quoteShort(sc))
		}
	}
	scope := strings.Join(want, " ")
	now := s.now()
	g := &store.Grant{ID: randomID("gr_"), ClientID: c.ID, BuyerID: b.ID, Scope: scope, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	iss, resp := s.mint(g, scope, hasScope(scope, "offline_access"), now)
	iss.Grant = g
	if err := s.cfg.Store.IssueGrant(ctx, iss); err != nil {
		return nil, errServer(err)
	}
	return resp, nil
}

// dummyPasswordHash is computed on first use, not at init: Argon2 costs
// 64 MiB and tens of milliseconds.
var dummyPasswordHash = sync.OnceValue(func() string { return HashPassword("timing-equaliser") })
