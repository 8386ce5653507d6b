package oauth

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

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
