package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// DefaultBuyerScope is what a client gets when it asks for no scope (the
// Artos SDK's default).
const DefaultBuyerScope = "purchase:complete offline_access"

// authRequest is a validated authorization request.
type authRequest struct {
	client      *client
	RedirectURI string
	State       string
	Scope       []string
	Challenge   string
	Resource    string
	// ResourceOwner is the platform application running Resource, when
	// one registered it (a bridge); "" for the platform API's own.
	ResourceOwner string
}

// params returns the request as the hidden fields the consent form posts
// back; they are validated again on POST.
func (a *authRequest) params() url.Values {
	v := url.Values{}
	v.Set("response_type", "code")
	v.Set("client_id", a.client.ID)
	v.Set("redirect_uri", a.RedirectURI)
	v.Set("state", a.State)
	v.Set("scope", strings.Join(a.Scope, " "))
	v.Set("code_challenge", a.Challenge)
	v.Set("code_challenge_method", "S256")
	if a.Resource != "" {
		v.Set("resource", a.Resource)
	}
	return v
}

var challengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// maxParamLen bounds the free-form authorization parameters.
const maxParamLen = 2048

// parseAuthRequest validates in the order OAuth requires: problems with
// the client or redirect URI are shown on the page (a redirect could go to
// an attacker); everything after that is redirected to the client.
func (s *Server) parseAuthRequest(ctx context.Context, ip string, q url.Values) (*authRequest, *oauthError, *oauthError) {
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge", "code_challenge_method", "resource"} {
		if len(q[k]) > 1 {
			return nil, errInvalidRequest("parameter " + quoteShort(k) + " is repeated"), nil
		}
	}
	c, err := s.resolveClient(ctx, ip, q.Get("client_id"))
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return nil, oe, nil
		}
		return nil, errServer(err), nil
	}
	a := &authRequest{client: c, RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Resource: q.Get("resource")}
	// state and resource come back in the page and the redirect: bound
	// them so a request cannot blow either up.
	if len(a.State) > maxParamLen || len(a.Resource) > maxParamLen {
		return nil, errInvalidRequest(fmt.Sprintf("state and resource are limited to %d bytes", maxParamLen)), nil
	}
	if a.RedirectURI == "" {
		if len(c.RedirectURIs) != 1 {
			return nil, errInvalidRequest("redirect_uri is required"), nil
		}
		a.RedirectURI = c.RedirectURIs[0]
	}
	if !redirectAllowed(c.RedirectURIs, a.RedirectURI) {
		return nil, errInvalidRequest("redirect_uri is not registered"), nil
	}
	// From here on, errors go back to the client.
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "token", "id_token token", "token id_token":
		return a, nil, &oauthError{Code: "unsupported_response_type", Description: "the implicit flow is not supported (OAuth 2.1); use response_type=code with PKCE", Status: http.StatusBadRequest}
	default:
		return a, nil, &oauthError{Code: "unsupported_response_type", Description: "response_type must be code", Status: http.StatusBadRequest}
	}
	if !c.allows("authorization_code") {
		return a, nil, errUnauthorizedClient("this client may not use the authorization code flow")
	}
	a.Challenge = q.Get("code_challenge")
	if a.Challenge == "" {
		return a, nil, errInvalidRequest("code_challenge is required (PKCE)")
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		return a, nil, errInvalidRequest("code_challenge_method must be S256")
	}
	if !challengePattern.MatchString(a.Challenge) {
		return a, nil, errInvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)")
	}
	scope := q.Get("scope")
	if strings.TrimSpace(scope) == "" {
		scope = DefaultBuyerScope
	}
	want, oe := parseScope(scope)
	if oe != nil {
		return a, nil, oe
	}
	if len(c.Scopes) > 0 {
		for _, sc := range want {
			if !slices.Contains(c.Scopes, sc) {
				return a, nil, errInvalidScope("client is not registered for " + quoteShort(sc))
			}
		}
	}
	a.Scope = want
	if a.Resource != "" {
		if a.ResourceOwner, oe = s.resourceOwner(ctx, a.Resource); oe != nil {
			return a, nil, oe
		}
	}
	return a, nil, nil
}

// redirectError sends an authorization error back to the client.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, a *authRequest, e *oauthError) {
	v := url.Values{"error": {e.Code}, "error_description": {e.Description}}
	s.redirectBack(w, r, a, v)
}

// redirectBack redirects to the client with state and the RFC 9207 iss.
func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, a *authRequest, v url.Values) {
	if a.State != "" {
		v.Set("state", a.State)
	}
	v.Set("iss", s.cfg.Issuer)
	u, _ := url.Parse(a.RedirectURI)
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := cleanValues(r.URL.Query()); err != nil {
		s.renderError(w, r, errInvalidRequest(err.Error()))
		return
	}
	a, pageErr, redirErr := s.parseAuthRequest(r.Context(), s.clientKey(r), r.URL.Query())
	switch {
	case pageErr != nil:
		s.renderError(w, r, pageErr)
	case redirErr != nil && a.client.CIMD:
		// Whoever hosts a metadata document chooses its redirect URIs.
		// Bouncing an error there before the buyer has even seen our page
		// would make this endpoint an open redirector for any URL a
		// document lists, so the error is shown here instead.
		s.renderError(w, r, redirErr)
	case redirErr != nil:
		s.redirectError(w, r, a, redirErr)
	default:
		s.renderConsent(w, r, a, "", nil)
	}
}

// redirectAllowed matches redirect_uri against the client's list exactly,
// except that for loopback hosts (127.0.0.1, [::1], localhost) the port is
// ignored, as OAuth 2.1 requires for native apps. localhost and 127.0.0.1
// never match each other. A loopback URI whose port is not a real one (0,
// above 65535, empty after the colon, leading zeros) or that carries a
// fragment matches nothing: RFC 6749 §3.1.2 forbids fragments, and such
// a URI only shows the request was not made by the app.
func redirectAllowed(registered []string, uri string) bool {
	if slices.Contains(registered, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || !netguard.IsLoopbackHost(u.Hostname()) || strings.Contains(uri, "#") || !loopbackPort(u) {
		return false
	}
	for _, reg := range registered {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || !netguard.IsLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == u.Hostname() && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery && ru.User == nil && u.User == nil {
			return true
		}
	}
	return false
}

// loopbackPort accepts no port at all, or a canonical port 1-65535.
func loopbackPort(u *url.URL) bool {
	if !strings.Contains(strings.TrimPrefix(u.Host, "["+u.Hostname()+"]"), ":") {
		return true // no port
	}
	p := u.Port()
	if p == "" || p[0] == '0' || len(p) > 5 {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
