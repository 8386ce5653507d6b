package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// consentPage needs no JavaScript: a plain form posts back the request,
// the CSRF token, the sign-in fields and the allowance.
var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Connect {{.ClientName}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#111}
.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}.warn{background:#fff4e5}
.err{background:#fde8e8;color:#7a1010}label{display:block;margin:.5rem 0}input{font:inherit}
button{font:inherit;padding:.5rem 1rem;margin-right:.5rem}.host{font-family:monospace}</style></head>
<body>
<h1>Connect <em>{{.ClientName}}</em> to your account</h1>
{{if .SelfRegistered}}<div class="box warn">Unverified, self-registered app: it chose its name itself, so nothing confirms who made it.</div>{{end}}
<p>Client: <span class="host">{{.ClientHost}}</span>{{if .CIMD}} (identified by its metadata document){{end}}{{if .SelfRegistered}} (unverified, self-registered){{end}}<br>
{{if .ResourceOwner}}It connects through <strong>{{.ResourceOwner}}</strong>'s service at <span class="host">{{.Resource}}</span>.<br>{{end}}
After you decide you return to <span class="host">{{.RedirectHost}}</span>.</p>
{{if .LocalOnly}}<div class="box warn">This app runs on your own computer (it returns to a local address). Only continue if you started it yourself.</div>{{end}}
{{if .Error}}<div class="box err" role="alert">{{.Error}}</div>{{end}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<div class="box"><strong>It will be able to:</strong><ul>
{{range .Scopes}}<li>{{.Description}} <small>({{.Name}})</small></li>{{end}}</ul></div>
{{if .Purchase}}<fieldset class="box"><legend>Spending limits for this agent</legend>
{{with .Current}}<p>You already allow it {{.MaxPerOrder}} per order and {{.DailyCap}} a day, {{if .Expired}}but that allowance expired on{{else}}until{{end}} {{.Expires}}.
The limits below start from these: anything you raise here applies only when you press Allow.</p>{{end}}
{{if not .SignedIn}}<p>If you already allowed this agent, the limits you approve here replace the ones you set before.</p>{{end}}
<label>Most per order <input name="max_per_order" value="{{.MaxPerOrder}}" inputmode="decimal" size="10" required></label>
<label>Most per day <input name="daily_cap" value="{{.DailyCap}}" inputmode="decimal" size="10" required>
<small>(a calendar day in UTC, 00:00 to 24:00 UTC)</small></label>
<label>Currency <input name="currency" value="{{.Currency}}" size="3" maxlength="3" required></label>
<label>Valid for <input name="expires_days" value="{{.Days}}" inputmode="numeric" size="4" required> days{{with .Until}}
<small>(until {{.}}, counted from now)</small>{{end}}</label>
<p><small>You can lower these limits or revoke this agent at any time on <a href="{{.AccountURL}}">your account page</a>.</small></p>
</fieldset>{{end}}
{{if .SignedIn}}<p>Signed in as {{.Email}}.</p>{{else}}<fieldset class="box"><legend>Sign in</legend>
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label></fieldset>{{end}}
<button type="submit" name="action" value="approve">Allow</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form></body></html>`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization error</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto">
<h1>This request cannot continue</h1><p><strong>{{.Code}}</strong>: {{.Description}}</p>
<p>Go back to the app and try again. If this keeps happening, the app is misconfigured.</p></body></html>`))

type hiddenField struct{ Name, Value string }

// pageHeaders stop framing (clickjacking), caching and referrer leaks.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// renderConsent shows the consent page; prior holds the buyer's previous
// allowance input when it is re-shown with an error.
func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, a *authRequest, errMsg string, prior url.Values) {
	buyer, err := s.sessionBuyer(r)
	if err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	var hidden []hiddenField
	for k, vs := range a.params() {
		hidden = append(hidden, hiddenField{k, vs[0]})
	}
	rd, _ := url.Parse(a.RedirectURI)
	data := map[string]any{
		"ClientName": a.client.Name, "ClientHost": clientHost(a.client), "CIMD": a.client.CIMD,
		"RedirectHost": rd.Host, "LocalOnly": netguard.IsLoopbackHost(rd.Hostname()), "Error": errMsg,
		"Action": s.cfg.Issuer + PathAuthorize, "Hidden": hidden, "CSRF": s.cookies.issueCSRF(w, r),
		"SignedIn": buyer != nil, "Purchase": false,
		"MaxPerOrder": ucp.FormatMinor(DefaultAllowance.MaxPerOrder, DefaultAllowance.Currency),
		"DailyCap":    ucp.FormatMinor(DefaultAllowance.DailyCap, DefaultAllowance.Currency),
		"Currency":    DefaultAllowance.Currency, "Days": "30",
	}
	if buyer != nil {
		data["Email"] = buyer.Email
	}
	data["SelfRegistered"] = a.client.SelfRegistered
	if a.ResourceOwner != "" {
		// The platform application running the resource (a bridge), by
		// its registered name.
		name := a.ResourceOwner
		if p, err := s.cfg.Store.Client(r.Context(), a.ResourceOwner); err == nil && p.Name != "" {
			name = p.Name
		}
		data["ResourceOwner"], data["Resource"] = name, a.Resource
	}
	var scopes []Scope
	for _, name := range a.Scope {
		sc, _ := scopeByName(name)
		scopes = append(scopes, sc)
		if spends(name) {
			data["Purchase"] = true
		}
	}
	data["Scopes"] = scopes
	if data["Purchase"] == true && buyer != nil {
		if err := s.startFromCurrent(r.Context(), data, buyer.ID, a.client.ID); err != nil {
			s.renderError(w, r, errServer(err))
			return
		}
	}
	for _, k := range []string{"max_per_order", "daily_cap", "currency", "expires_days"} {
		if v := prior.Get(k); v != "" {
			data[map[string]string{"max_per_order": "MaxPerOrder", "daily_cap": "DailyCap", "currency": "Currency", "expires_days": "Days"}[k]] = v
		}
	}
	data["AccountURL"] = s.cfg.Issuer + PathAccount
	if days, err := strconv.Atoi(fmt.Sprint(data["Days"])); err == nil && days >= 1 && days <= 365 {
		data["Until"] = s.now().Add(time.Duration(days) * 24 * time.Hour).UTC().Format(displayTime)
	}
	pageHeaders(w)
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	if err := consentPage.Execute(w, data); err != nil {
		// The template is fixed and its data escaped: a failure here is
		// the connection going away.
		s.log.DebugContext(r.Context(), "consent page", "error", err)
	}
}

// startFromCurrent puts the buyer's current allowance for the client, if
// any, into the consent form as its starting values, and describes it:
// re-consenting must not raise the limits unless the buyer edits them.
// The proposed validity keeps the current expiry's whole days left (at
// least one), so pressing Allow unchanged does not extend it either; a
// minute of slack absorbs the seconds since it was set, so a day-old
// 30-day allowance proposes 29 days, not 28.
func (s *Server) startFromCurrent(ctx context.Context, data map[string]any, buyerID, clientID string) error {
	c, err := s.cfg.Store.Consent(ctx, buyerID, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, err := ParseAllowance(c.Allowance)
	if err != nil || cur == nil || c.Scope == "" {
		return err
	}
	now := s.now()
	money := func(n int64) string { return ucp.FormatMinor(n, cur.Currency) + " " + cur.Currency }
	data["Current"] = map[string]any{"MaxPerOrder": money(cur.MaxPerOrder), "DailyCap": money(cur.DailyCap),
		"Expires": cur.ExpiresAt.UTC().Format(displayTime), "Expired": !now.Before(cur.ExpiresAt)}
	data["MaxPerOrder"], data["DailyCap"] = ucp.FormatMinor(cur.MaxPerOrder, cur.Currency), ucp.FormatMinor(cur.DailyCap, cur.Currency)
	data["Currency"] = cur.Currency
	if left := cur.ExpiresAt.Sub(now); left > 0 {
		data["Days"] = strconv.Itoa(min(max(int((left+time.Minute)/(24*time.Hour)), 1), 365))
	}
	return nil
}

// clientHost is what the buyer should recognise: the CIMD URL's host, or
// the registered client's id.
func clientHost(c *client) string {
	if c.CIMD {
		if u, err := url.Parse(c.ID); err == nil {
			return u.Host
		}
	}
	return c.ID
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	s.logError(r, "authorization request failed", e)
	pageHeaders(w)
	status := e.Status
	if status == 0 || status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	errorPage.Execute(w, e)
}

// spends reports whether a scope lets the client spend the buyer's money,
// so the consent form must ask for a spending limit. Only
// purchase:complete pays (the guard's policy requires it of every
// buyer-bound completion and crypto prepare), so a grant without it can
// never spend, whatever else it holds.
func spends(scope string) bool { return scope == SpendScope }

// SpendScope is the scope a buyer's token needs to pay.
const SpendScope = "purchase:complete"

// DefaultAllowance is what the consent form proposes.
var DefaultAllowance = Allowance{MaxPerOrder: 10000, DailyCap: 25000, Currency: "EUR"}

// maxAllowance bounds an allowance amount, as the stores bound prices
// (10^12 minor units), so no sum of spending can overflow.
const maxAllowance = 1_000_000_000_000

// parseAllowance reads the buyer's edits. Amounts are entered in major
// units with as many decimals as the currency has (ISO 4217: none for JPY,
// three for BHD) and kept as integer minor units; unknown currency codes
// are refused.
func parseAllowance(f url.Values, now time.Time) (*Allowance, error) {
	al := &Allowance{Currency: strings.ToUpper(strings.TrimSpace(f.Get("currency")))}
	if _, ok := ucp.CurrencyExponent(al.Currency); !ok {
		return nil, errors.New("currency must be an ISO 4217 code such as EUR, USD or JPY")
	}
	amount := func(field string) (int64, error) {
		n, err := ucp.ParseMinor(f.Get(field), al.Currency)
		var ae *ucp.AmountError
		switch {
		case errors.As(err, &ae):
			return 0, errors.New(ae.Reason)
		case err != nil:
			return 0, err
		case n > maxAllowance:
			return 0, fmt.Errorf("the most is %s", ucp.FormatMinor(maxAllowance, al.Currency))
		}
		return n, nil
	}
	var err error
	if al.MaxPerOrder, err = amount("max_per_order"); err != nil {
		return nil, fmt.Errorf("per-order maximum: %w", err)
	}
	if al.DailyCap, err = amount("daily_cap"); err != nil {
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
	al.ID = newUUID()
	return al, nil
}

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
	a, pageErr, redirErr := s.parseAuthRequest(r.Context(), s.clientKey(r), r.PostForm)
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
		b, err := s.signIn(r, email, r.PostForm.Get("password"), nil)
		var te *throttledError
		switch {
		case errors.As(err, &te):
			secs := retrySeconds(te.Wait)
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			s.renderConsent(w, r, a, fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", secs), r.PostForm)
			return
		case err != nil:
			s.renderError(w, r, errServer(err))
			return
		case b == nil:
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
	// The consent first: the retention sweep deletes a self-registered
	// client that no buyer consented to (with its codes) once it is
	// UnusedClientRetention old, so a code saved before the consent left
	// a window in which an old registration's first sign-in was swept
	// away under the buyer, its code with it.
	if err := s.cfg.Store.SaveConsent(ctx, &store.Consent{BuyerID: buyer.ID, ClientID: a.client.ID, Scope: scope,
		Allowance: allowance, UpdatedAt: now}); err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	if err := s.cfg.Store.SaveCode(ctx, &store.Code{Hash: hashToken(code), ClientID: a.client.ID, BuyerID: buyer.ID,
		RedirectURI: a.RedirectURI, Scope: scope, Resource: a.Resource, CodeChallenge: a.Challenge,
		Allowance: allowance, ExpiresAt: now.Add(s.cfg.CodeTTL)}); err != nil {
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
	if !s.checkPassword(hash, password) || b == nil {
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
