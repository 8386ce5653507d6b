package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
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

// parseAuthRequest validates in the order OAuth requires: problems with
// the client or redirect URI are shown on the page (a redirect could go to
// an attacker); everything after that is redirected to the client.
func (s *Server) parseAuthRequest(ctx context.Context, q url.Values) (*authRequest, *oauthError, *oauthError) {
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge", "code_challenge_method", "resource"} {
		if len(q[k]) > 1 {
			return nil, errInvalidRequest("parameter " + quoteShort(k) + " is repeated"), nil
		}
	}
	c, err := s.resolveClient(ctx, q.Get("client_id"))
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return nil, oe, nil
		}
		return nil, errServer(err), nil
	}
	a := &authRequest{client: c, RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Resource: q.Get("resource")}
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
		if u, err := url.Parse(a.Resource); err != nil || !u.IsAbs() || u.Fragment != "" {
			return a, nil, &oauthError{Code: "invalid_target", Description: "resource must be an absolute URI without fragment", Status: http.StatusBadRequest}
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
	a, pageErr, redirErr := s.parseAuthRequest(r.Context(), r.URL.Query())
	switch {
	case pageErr != nil:
		s.renderError(w, r, pageErr)
	case redirErr != nil:
		s.redirectError(w, r, a, redirErr)
	default:
		s.renderConsent(w, r, a, "", nil)
	}
}

// Allowance is the agent spend allowance a buyer grants with
// purchase:complete. Amounts are minor units of Currency.
type Allowance struct {
	MaxPerOrder int64     `json:"max_per_order"`
	DailyCap    int64     `json:"daily_cap"`
	Currency    string    `json:"currency"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// spends reports whether a scope lets the client spend the buyer's money,
// so the consent form must ask for a spending limit.
func spends(scope string) bool {
	return scope == "purchase:complete" || scope == "dev.ucp.shopping.checkout:manage"
}

// DefaultAllowance is what the consent form proposes.
var DefaultAllowance = Allowance{MaxPerOrder: 10000, DailyCap: 25000, Currency: "EUR"}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// parseAllowance reads the buyer's edits. Amounts are entered in major
// units with at most two decimals and kept as integer minor units.
func parseAllowance(f url.Values, now time.Time) (*Allowance, error) {
	al := &Allowance{Currency: strings.ToUpper(strings.TrimSpace(f.Get("currency")))}
	if !currencyPattern.MatchString(al.Currency) {
		return nil, errors.New("currency must be a three-letter ISO 4217 code")
	}
	var err error
	if al.MaxPerOrder, err = minorUnits(f.Get("max_per_order")); err != nil {
		return nil, fmt.Errorf("per-order maximum: %w", err)
	}
	if al.DailyCap, err = minorUnits(f.Get("daily_cap")); err != nil {
		return nil, fmt.Errorf("daily cap: %w", err)
	}
	if al.MaxPerOrder > al.DailyCap {
		return nil, errors.New("the per-order maximum cannot exceed the daily cap")
	}
	days, err := strconv.Atoi(f.Get("expires_days"))
	if err != nil || days < 1 || days > 365 {
		return nil, errors.New("the allowance must last 1 to 365 days")
	}
	al.ExpiresAt = now.Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)
	return al, nil
}

// minorUnits parses "125", "125.5" or "125.50" into 12550 without floats.
func minorUnits(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 2 || whole == "" {
		return 0, errors.New("enter an amount like 125 or 125.50")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || n < 0 || n > 1e12 {
		return 0, errors.New("enter an amount like 125 or 125.50")
	}
	return n, nil
}

func formatMinor(n int64) string { return fmt.Sprintf("%d.%02d", n/100, n%100) }

// handleAuthorizePost signs the buyer in if needed and records the
// decision. The form is checked for CSRF before anything else.
func (s *Server) handleAuthorizePost(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		s.renderError(w, r, errInvalidRequest("malformed form"))
		return
	}
	if !s.cookies.checkCSRF(r, r.PostForm.Get("csrf")) {
		s.renderError(w, r, errInvalidRequest("the form expired or was not sent from this site; go back and try again"))
		return
	}
	a, pageErr, redirErr := s.parseAuthRequest(r.Context(), r.PostForm)
	switch {
	case pageErr != nil:
		s.renderError(w, r, pageErr)
		return
	case redirErr != nil:
		s.redirectError(w, r, a, redirErr)
		return
	}
	ctx := r.Context()
	buyer, err := s.sessionBuyer(r)
	if err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	if buyer == nil {
		email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
		throttle := email + "|" + clientIP(r)
		if blocked, wait := s.loginLim.blocked(throttle); blocked {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			s.renderConsent(w, r, a, fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", secs), r.PostForm)
			return
		}
		b, err := s.checkBuyer(ctx, email, r.PostForm.Get("password"))
		if err != nil {
			s.renderError(w, r, errServer(err))
			return
		}
		if b == nil {
			s.loginLim.fail(throttle)
			s.renderConsent(w, r, a, "Wrong email or password.", nil)
			return
		}
		buyer = b
		s.cookies.setSession(w, b.ID, s.now().Add(12*time.Hour))
	}
	if r.PostForm.Get("action") != "approve" {
		s.redirectError(w, r, a, &oauthError{Code: "access_denied", Description: "the buyer declined"})
		return
	}
	now := s.now()
	var allowance json.RawMessage
	if slices.ContainsFunc(a.Scope, spends) {
		al, err := parseAllowance(r.PostForm, now)
		if err != nil {
			s.renderConsent(w, r, a, "Spending limit: "+err.Error(), r.PostForm)
			return
		}
		allowance, _ = json.Marshal(al)
	}
	code := newToken(prefixCode)
	scope := strings.Join(a.Scope, " ")
	if err := s.cfg.Store.SaveCode(ctx, &store.Code{Hash: hashToken(code), ClientID: a.client.ID, BuyerID: buyer.ID,
		RedirectURI: a.RedirectURI, Scope: scope, Resource: a.Resource, CodeChallenge: a.Challenge,
		Allowance: allowance, ExpiresAt: now.Add(s.cfg.CodeTTL)}); err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	if err := s.cfg.Store.SaveConsent(ctx, &store.Consent{BuyerID: buyer.ID, ClientID: a.client.ID, Scope: scope,
		Allowance: allowance, UpdatedAt: now}); err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	s.redirectBack(w, r, a, url.Values{"code": {code}})
}

// checkBuyer returns the buyer whose email and password these are, or
// nil. Unknown emails cost the same hash as known ones.
func (s *Server) checkBuyer(ctx context.Context, email, password string) (*store.Buyer, error) {
	b, err := s.cfg.Store.BuyerByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	hash := dummyPasswordHash()
	if b != nil {
		hash = b.PasswordHash
	}
	if !CheckPassword(hash, password) || b == nil {
		return nil, nil
	}
	return b, nil
}

func (s *Server) sessionBuyer(r *http.Request) (*store.Buyer, error) {
	id, ok := s.cookies.session(r, s.now())
	if !ok {
		return nil, nil
	}
	b, err := s.cfg.Store.Buyer(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return b, err
}
