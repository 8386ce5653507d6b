package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The buyer's own page (PathAccount): the agents they authorized, with
// each one's scopes and spend allowance, and forms to lower an allowance
// or revoke an authorization. It shares the consent page's sign-in (and
// throttle), session cookie, CSRF token and security headers. Changes are
// POSTed and answered with a redirect back to the page (post/redirect/
// get), so reloading never submits a change twice.

// accountSessionTTL is how long a sign-in on this page lasts, as on the
// consent page.
const accountSessionTTL = 12 * time.Hour

// accountNotices are the only messages a redirect's done= may show: the
// page never echoes text from its URL.
var accountNotices = map[string]string{
	"lowered":   "Saved. The new limits apply to the agent's next payment.",
	"revoked":   "Revoked. The agent's tokens no longer work and it cannot spend.",
	"signedout": "You are signed out.",
}

// handleAccount shows the sign-in form, or the signed-in buyer's agents.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	buyer, err := s.sessionBuyer(r)
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	s.renderAccount(w, r, buyer, &accountView{Notice: accountNotices[r.URL.Query().Get("done")]})
}

// handleAccountPost runs one action: signin, signout, lower or revoke.
// The CSRF token (and Sec-Fetch-Site) is checked before anything else,
// sign-in included, so another site can neither act as the buyer nor
// sign the browser into an account of its choosing.
func (s *Server) handleAccountPost(w http.ResponseWriter, r *http.Request) {
	buyer, err := s.sessionBuyer(r)
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	if err := parseForm(r); err != nil {
		s.renderAccount(w, r, buyer, &accountView{status: http.StatusBadRequest, Error: "The form could not be read, so nothing was changed."})
		return
	}
	if !s.cookies.checkCSRF(r, r.PostForm.Get("csrf")) {
		s.renderAccount(w, r, buyer, &accountView{status: http.StatusForbidden,
			Error: "This form expired or was not sent from this page, so nothing was changed. Try again below."})
		return
	}
	switch action := r.PostForm.Get("action"); {
	case action == "signout":
		s.clearSession(w)
		s.redirectAccount(w, r, "signedout", "")
	case action == "signin":
		s.accountSignIn(w, r)
	case buyer == nil:
		s.renderAccount(w, r, nil, &accountView{status: http.StatusForbidden,
			Error: "You are not signed in (or your sign-in expired), so nothing was changed. Sign in and try again."})
	case action == "lower":
		s.accountLower(w, r, buyer)
	case action == "revoke":
		s.accountRevoke(w, r, buyer)
	default:
		s.renderAccount(w, r, buyer, &accountView{status: http.StatusBadRequest, Error: "Unknown action, so nothing was changed."})
	}
}

// accountSignIn signs the buyer in with the consent page's sign-in and
// throttle.
func (s *Server) accountSignIn(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	b, err := s.signIn(r, email, r.PostForm.Get("password"), nil)
	var te *throttledError
	switch {
	case errors.As(err, &te):
		secs := retrySeconds(te.Wait)
		s.renderAccount(w, r, nil, &accountView{status: http.StatusTooManyRequests, retryAfter: secs, FormEmail: email,
			Error: fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", secs)})
	case err != nil:
		s.accountFailed(w, r, err)
	case b == nil:
		s.renderAccount(w, r, nil, &accountView{status: http.StatusBadRequest, FormEmail: email, Error: "Wrong email or password."})
	default:
		s.cookies.setSession(w, b.ID, s.now().Add(accountSessionTTL))
		s.redirectAccount(w, r, "", "")
	}
}

// authorizedConsent is the buyer's live consent for the client named in
// the form, or a message for the buyer when there is none.
func (s *Server) authorizedConsent(r *http.Request, buyer *store.Buyer) (*store.Consent, string, error) {
	clientID := r.PostForm.Get("client_id")
	c, err := s.cfg.Store.Consent(r.Context(), buyer.ID, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && c.Scope == ""):
		// An emptied scope is a revoked authorization (RevokeAuthorization).
		return nil, "That agent is not authorized on your account (any more), so nothing was changed.", nil
	case err != nil:
		return nil, "", err
	}
	return c, "", nil
}

// accountLower lowers one agent's allowance: amounts in the allowance's
// currency (major units, as on the consent page) and an expiry in UTC.
// Anything above the current value is refused with ErrNotLower's message.
func (s *Server) accountLower(w http.ResponseWriter, r *http.Request, buyer *store.Buyer) {
	f := r.PostForm
	clientID := f.Get("client_id")
	fail := func(status int, msg string, keepInput bool) {
		v := &accountView{status: status, failedClient: clientID, failedClientErr: msg}
		if keepInput {
			v.failedForm = f
		}
		s.renderAccount(w, r, buyer, v)
	}
	c, msg, err := s.authorizedConsent(r, buyer)
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	if c == nil {
		fail(http.StatusBadRequest, msg, false)
		return
	}
	cur, err := ParseAllowance(c.Allowance)
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	if cur == nil {
		fail(http.StatusBadRequest, "This agent has no spending limit to lower: it cannot spend.", false)
		return
	}
	// The form names the allowance it showed: after a new consent (a new
	// id) its values describe limits that no longer exist. LowerAllowance
	// still compares with the stored allowance under its row lock, so a
	// consent landing between this check and the update can only be
	// lowered, never raised.
	if id := f.Get("allowance_id"); id != cur.ID {
		fail(http.StatusConflict, "These limits changed after the page was shown (the agent was approved again), so nothing was changed. The current limits are shown now.", false)
		return
	}
	to, problem := parseLowerForm(f, cur, s.now())
	if problem != "" {
		fail(http.StatusBadRequest, problem+" Nothing was changed.", true)
		return
	}
	_, err = s.LowerAllowance(r.Context(), buyer.ID, clientID, to)
	switch {
	case errors.Is(err, ErrNotLower):
		fail(http.StatusBadRequest, "Not saved: "+strings.TrimPrefix(ErrNotLower.Error(), "oauth: ")+
			". To allow more, start the agent's sign-in again and approve the new limits there.", true)
	case errors.Is(err, store.ErrNotFound):
		fail(http.StatusBadRequest, "This agent no longer has a spending limit, so nothing was changed.", false)
	case err != nil:
		s.accountFailed(w, r, err)
	default:
		s.redirectAccount(w, r, "lowered", clientID)
	}
}

// parseLowerForm reads the lower-limits form against the current
// allowance. It returns a problem to show the buyer, or the Allowance to
// pass to LowerAllowance (a zero field keeps the current value).
func parseLowerForm(f url.Values, cur *Allowance, now time.Time) (Allowance, string) {
	var to Allowance
	amount := func(field, label string) (int64, string) {
		n, err := ucp.ParseMinor(f.Get(field), cur.Currency)
		var ae *ucp.AmountError
		switch {
		case errors.As(err, &ae):
			return 0, label + ": " + ae.Reason + "."
		case err != nil:
			return 0, label + ": " + err.Error() + "."
		case n == 0:
			// LowerAllowance reads zero as "keep": say so rather than
			// silently keep the old limit.
			return 0, label + ": a limit of 0 would stop all spending; to stop this agent, revoke it instead."
		}
		return n, ""
	}
	var problem string
	if to.MaxPerOrder, problem = amount("max_per_order", "Most per order"); problem != "" {
		return to, problem
	}
	if to.DailyCap, problem = amount("daily_cap", "Most per day"); problem != "" {
		return to, problem
	}
	// The form shows the expiry to the minute: the value it was given back
	// unchanged means "keep", not "the start of that minute" (which would
	// quietly move it by the seconds it lost, or refuse it as later).
	v := strings.TrimSpace(f.Get("expires_at"))
	if v == cur.ExpiresAt.UTC().Format(formTime) {
		return to, ""
	}
	var t time.Time
	var err error
	for _, layout := range []string{formTime, "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err = time.ParseInLocation(layout, v, time.UTC); err == nil {
			break
		}
	}
	switch {
	case err != nil:
		return to, "Expires: enter a date and time in UTC, such as " + now.UTC().Add(24*time.Hour).Format(formTime) + "."
	case !t.After(now):
		return to, "Expires: the new expiry must be in the future; to stop this agent now, revoke it instead."
	}
	to.ExpiresAt = t
	return to, ""
}

// accountRevoke ends one agent's authorization: its allowance and every
// grant and token the buyer gave it (RevokeAuthorization).
func (s *Server) accountRevoke(w http.ResponseWriter, r *http.Request, buyer *store.Buyer) {
	clientID := r.PostForm.Get("client_id")
	c, msg, err := s.authorizedConsent(r, buyer)
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	if c == nil {
		s.renderAccount(w, r, buyer, &accountView{status: http.StatusBadRequest, Error: msg})
		return
	}
	if _, err := s.RevokeAuthorization(r.Context(), buyer.ID, clientID); err != nil {
		s.accountFailed(w, r, err)
		return
	}
	s.redirectAccount(w, r, "revoked", "")
}

// redirectAccount answers a successful POST with a redirect to the page
// (done selects a notice; agent, the agent's section).
func (s *Server) redirectAccount(w http.ResponseWriter, r *http.Request, done, agent string) {
	u := s.cfg.Issuer + PathAccount
	if done != "" {
		u += "?done=" + url.QueryEscape(done)
	}
	if agent != "" {
		u += "#agent-" + url.PathEscape(agent)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// clearSession signs the browser out. Sessions are signed cookies with
// no server-side record, so a copy taken before sign-out stays valid
// until it expires (accountSessionTTL); signing out ends this browser's.
func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: s.cookies.path, MaxAge: -1,
		HttpOnly: true, Secure: s.cookies.secure, SameSite: http.SameSiteLaxMode})
}
