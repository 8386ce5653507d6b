package oauth

import (
	"errors"
	"fmt"
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
	// A buyer who is not the app's developer is a failed attempt like a
	// wrong password: it counts against the throttle and gets its answer.
	b, err := s.signIn(r, email, r.PostForm.Get("password"), func(b *store.Buyer) bool { return slices.Contains(c.Developers, b.ID) })
	var te *throttledError
	switch {
	case errors.As(err, &te):
		oe := errInvalidGrant(fmt.Sprintf("too many failed attempts; try again in %d s", retrySeconds(te.Wait)))
		oe.RetryAfter = te.Wait
		return nil, oe
	case err != nil:
		return nil, errServer(err)
	case b == nil:
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
