package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// page is one response of the account page, read whole.
type page struct {
	status int
	body   string
	res    *http.Response
}

var (
	csrfInput        = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	allowanceIDInput = regexp.MustCompile(`name="allowance_id" value="([^"]*)"`)
	expiresInput     = regexp.MustCompile(`name="expires_at" value="([^"]*)"`)
)

func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page (%d): %s", p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

func (p page) field(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no %s on the page: %s", re, p.body)
	}
	return html.UnescapeString(m[1])
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return page{res.StatusCode, string(body), res}
}

func (e *env) accountGet(b *browser) page {
	req, _ := http.NewRequest(http.MethodGet, e.url(oauth.PathAccount), nil)
	return b.do(req)
}

// follow GETs a redirect's target.
func (e *env) follow(b *browser, p page) page {
	req, _ := http.NewRequest(http.MethodGet, p.res.Header.Get("Location"), nil)
	return b.do(req)
}

// accountPost posts form to the account page; hdr adds request headers.
func (e *env) accountPost(b *browser, form url.Values, hdr map[string]string) page {
	req, _ := http.NewRequest(http.MethodPost, e.url(oauth.PathAccount), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

// accountSignIn signs b in on the account page and returns the signed-in
// page.
func (e *env) accountSignIn(b *browser) page {
	e.t.Helper()
	p := e.accountPost(b, url.Values{"csrf": {e.accountGet(b).csrf(e.t)}, "action": {"signin"},
		"email": {buyerEmail}, "password": {buyerPassword}}, nil)
	if p.status != http.StatusSeeOther || !strings.HasSuffix(p.res.Header.Get("Location"), oauth.PathAccount) {
		e.t.Fatalf("sign-in: %d %s", p.status, p.body)
	}
	return e.accountGet(b)
}

// grantTokens runs the consent flow for clientID with scopes (and the
// allowance approve fills in: 50.00 / 120.50 EUR, 30 days) and exchanges
// the code.
func (e *env) grantTokens(clientID string, scopes ...string) *oauth2.Token {
	e.t.Helper()
	conf := e.oauth2Config(clientID, "http://127.0.0.1:7000/callback", scopes...)
	verifier := oauth2.GenerateVerifier()
	q := e.approve(newBrowser(e.t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), nil)
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) storedAllowance(clientID string) *oauth.Allowance {
	e.t.Helper()
	c, err := e.st.Consent(context.Background(), "buyer_ada", clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	al, err := oauth.ParseAllowance(c.Allowance)
	if err != nil {
		e.t.Fatal(err)
	}
	return al
}

func wantIn(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q:\n%s", w, body)
		}
	}
}

// notLowerText is ErrNotLower's message as the page shows it.
var notLowerText = strings.TrimPrefix(oauth.ErrNotLower.Error(), "oauth: ")

// TestAccountPageListsAndLowers: a buyer signs in on their own page, sees
// each agent with its scopes in words and its allowance (per order, daily
// cap, spent today, currency, expiry), lowers the limits and the expiry,
// and cannot raise them by editing the form.
func TestAccountPageListsAndLowers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.grantTokens(agentID, "purchase:complete", "offline_access")
	e.grantTokens("other-agent", "orders:read")
	before := e.storedAllowance(agentID)
	// 10.00 EUR in flight today counts as spent.
	spending, ok := e.st.(store.Spending)
	if !ok {
		t.Fatal("the test store keeps no spend holds")
	}
	from, to := oauth.SpendDay(e.clock())
	if err := spending.HoldSpend(ctx, &store.SpendHold{ID: "hold-1", BuyerID: "buyer_ada", ClientID: agentID, Ref: "flower-shop/c1",
		Amount: 1000, Currency: "EUR", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(10 * time.Minute)},
		from, to, e.clock(), func(json.RawMessage, int64) error { return nil }); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	// Signed out: the sign-in form, with the consent page's headers.
	p := e.accountGet(b)
	if p.status != 200 || !strings.Contains(p.body, `name="password"`) || strings.Contains(p.body, "Demo Agent") {
		t.Fatalf("signed out: %d %s", p.status, p.body)
	}
	h := p.res.Header
	if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("X-Frame-Options") != "DENY" || strings.Contains(p.body, "<script") {
		t.Fatalf("security headers: %v", h)
	}
	// A wrong password re-renders the form with a message.
	p = e.accountPost(b, url.Values{"csrf": {p.csrf(t)}, "action": {"signin"}, "email": {buyerEmail}, "password": {"nope"}}, nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Wrong email or password") {
		t.Fatalf("wrong password: %d %s", p.status, p.body)
	}
	for _, c := range p.res.Cookies() {
		if c.Name == "ucpb_session" {
			t.Fatal("a wrong password set a session")
		}
	}

	p = e.accountSignIn(b)
	wantIn(t, p.body, "Demo Agent", "Other", buyerEmail, "Sign out",
		"Buy things for you", "(purchase:complete)", "Stay connected", "See the orders placed for you",
		"50.00 EUR", "120.50 EUR", "10.00 EUR (110.50 EUR left", before.ExpiresAt.UTC().Format("2 Jan 2006, 15:04 UTC"),
		"This agent cannot spend", "calendar day in UTC", "Raising a limit needs a new consent")
	if n := strings.Count(p.body, `value="lower"`); n != 1 {
		t.Fatalf("%d lower forms; only the agent that can spend has one", n)
	}
	expires := p.field(t, expiresInput)
	lower := func(p page, per, daily, exp string) page {
		return e.accountPost(b, url.Values{"csrf": {p.csrf(t)}, "action": {"lower"}, "client_id": {agentID},
			"allowance_id": {p.field(t, allowanceIDInput)}, "max_per_order": {per}, "daily_cap": {daily}, "expires_at": {exp}}, nil)
	}

	// Lower both amounts, expiry unchanged.
	r := lower(p, "20", "100", expires)
	if r.status != http.StatusSeeOther || !strings.Contains(r.res.Header.Get("Location"), "done=lowered") {
		t.Fatalf("lower: %d %s", r.status, r.body)
	}
	got := e.storedAllowance(agentID)
	if got.MaxPerOrder != 2000 || got.DailyCap != 10000 || got.Currency != "EUR" || !got.ExpiresAt.Equal(before.ExpiresAt) || got.ID != before.ID {
		t.Fatalf("after lowering: %+v (was %+v)", got, before)
	}
	p = e.follow(b, r)
	wantIn(t, p.body, "Saved.", "20.00 EUR", "100.00 EUR", "10.00 EUR (90.00 EUR left")

	// Raising by editing the form: refused with ErrNotLower's message, the
	// typed values kept for correction, nothing stored.
	for _, tc := range []struct{ name, per, daily, exp string }{
		{"per order", "20.01", "100", expires},
		{"daily", "20", "250", expires},
		{"expiry", "20", "100", before.ExpiresAt.UTC().Add(48 * time.Hour).Format("2006-01-02T15:04")},
	} {
		r := lower(p, tc.per, tc.daily, tc.exp)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, notLowerText) || !strings.Contains(r.body, `value="`+tc.daily+`"`) {
			t.Errorf("raise %s: %d %s", tc.name, r.status, r.body)
		}
	}
	if al := e.storedAllowance(agentID); al.MaxPerOrder != 2000 || al.DailyCap != 10000 || !al.ExpiresAt.Equal(before.ExpiresAt) {
		t.Fatalf("a refused raise changed the allowance: %+v", al)
	}
	// Bad input: clear messages, nothing stored.
	for _, tc := range []struct{ per, daily, exp, want string }{
		{"0", "100", expires, "a limit of 0 would stop all spending"},
		{"1.234", "100", expires, "at most 2 decimal places"},
		{"ten", "100", expires, "Most per order"},
		{"20", "100", "next week", "enter a date and time in UTC"},
		{"20", "100", e.clock().UTC().Add(-time.Hour).Format("2006-01-02T15:04"), "must be in the future"},
	} {
		if r := lower(p, tc.per, tc.daily, tc.exp); r.status != http.StatusBadRequest || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s %s %s: %d, want %q in %s", tc.per, tc.daily, tc.exp, r.status, tc.want, r.body)
		}
	}
	// An earlier expiry is a lowering; a daily cap below the per-order
	// limit takes the per-order limit down with it.
	sooner := e.clock().UTC().Add(72 * time.Hour).Truncate(time.Minute)
	if r := lower(p, "20", "15", sooner.Format("2006-01-02T15:04")); r.status != http.StatusSeeOther {
		t.Fatalf("earlier expiry: %d %s", r.status, r.body)
	}
	if al := e.storedAllowance(agentID); al.MaxPerOrder != 1500 || al.DailyCap != 1500 || !al.ExpiresAt.Equal(sooner) {
		t.Fatalf("after an earlier expiry: %+v", al)
	}
	// A form shown before the agent was approved again (a new allowance)
	// changes nothing.
	stale := e.accountGet(b)
	e.grantTokens(agentID, "purchase:complete")
	fresh := e.storedAllowance(agentID)
	if r := lower(stale, "1", "2", stale.field(t, expiresInput)); r.status != http.StatusConflict || !strings.Contains(r.body, "changed after the page was shown") {
		t.Fatalf("stale form: %d %s", r.status, r.body)
	}
	if al := e.storedAllowance(agentID); *al != *fresh {
		t.Fatalf("a stale form changed the allowance: %+v", al)
	}
	// Lowering an agent that cannot spend, or one never authorized.
	for _, id := range []string{"other-agent", "nobody"} {
		r := e.accountPost(b, url.Values{"csrf": {p.csrf(t)}, "action": {"lower"}, "client_id": {id},
			"max_per_order": {"1"}, "daily_cap": {"1"}, "expires_at": {expires}}, nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "nothing was changed") && !strings.Contains(r.body, "cannot spend") {
			t.Errorf("lower %s: %d %s", id, r.status, r.body)
		}
	}
}

// TestAccountPageRevokes: revoking an agent ends its access and refresh
// tokens for the buyer and removes its allowance; another agent's tokens
// live on.
func TestAccountPageRevokes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	tok := e.grantTokens(agentID, "purchase:complete", "offline_access")
	other := e.grantTokens("other-agent", "orders:read")
	b := newBrowser(t)
	p := e.accountSignIn(b)
	r := e.accountPost(b, url.Values{"csrf": {p.csrf(t)}, "action": {"revoke"}, "client_id": {agentID}}, nil)
	if r.status != http.StatusSeeOther || !strings.Contains(r.res.Header.Get("Location"), "done=revoked") {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if _, err := e.as.ValidateAccessToken(ctx, tok.AccessToken); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("access token after revoking: %v", err)
	}
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback")
	tok.Expiry = time.Now().Add(-time.Second)
	var re *oauth2.RetrieveError
	if _, err := conf.TokenSource(ctx, tok).Token(); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh token after revoking: %v", err)
	}
	if al := e.storedAllowance(agentID); al != nil {
		t.Fatalf("allowance after revoking: %+v", al)
	}
	if _, err := e.as.ValidateAccessToken(ctx, other.AccessToken); err != nil {
		t.Fatalf("revoking one agent ended another's token: %v", err)
	}
	p = e.follow(b, r)
	if !strings.Contains(p.body, "Revoked.") || strings.Contains(p.body, "Demo Agent") || !strings.Contains(p.body, "Other") {
		t.Fatalf("page after revoking: %s", p.body)
	}
	// Revoking again names the problem.
	r = e.accountPost(b, url.Values{"csrf": {p.csrf(t)}, "action": {"revoke"}, "client_id": {agentID}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "not authorized") {
		t.Fatalf("second revoke: %d %s", r.status, r.body)
	}
}

// TestAccountPageRefusesForgedPosts: without the CSRF token, from another
// site, or signed out, a change is refused and nothing is stored.
func TestAccountPageRefusesForgedPosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	tok := e.grantTokens(agentID, "purchase:complete")
	before := e.storedAllowance(agentID)
	b := newBrowser(t)
	p := e.accountSignIn(b)
	csrf := p.csrf(t)
	lower := url.Values{"csrf": {csrf}, "action": {"lower"}, "client_id": {agentID}, "allowance_id": {before.ID},
		"max_per_order": {"1"}, "daily_cap": {"1"}, "expires_at": {p.field(t, expiresInput)}}
	revoke := url.Values{"csrf": {csrf}, "action": {"revoke"}, "client_id": {agentID}}
	noToken := func(v url.Values) url.Values {
		v = cloneValues(v)
		v.Del("csrf")
		return v
	}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		b    *browser
		want int
		text string
	}{
		{"lower without CSRF", noToken(lower), nil, b, http.StatusForbidden, "nothing was changed"},
		{"revoke without CSRF", noToken(revoke), nil, b, http.StatusForbidden, "nothing was changed"},
		{"lower, wrong CSRF", withField(lower, "csrf", "x"+csrf), nil, b, http.StatusForbidden, "nothing was changed"},
		{"lower cross-site", lower, map[string]string{"Sec-Fetch-Site": "cross-site"}, b, http.StatusForbidden, "nothing was changed"},
		{"revoke cross-site", revoke, map[string]string{"Sec-Fetch-Site": "cross-site"}, b, http.StatusForbidden, "nothing was changed"},
		// A stranger's browser (no session) with its own valid CSRF token.
		{"revoke signed out", nil, nil, nil, http.StatusForbidden, "not signed in"},
	} {
		br, form := tc.b, tc.form
		if br == nil {
			br = newBrowser(t)
			form = withField(revoke, "csrf", e.accountGet(br).csrf(t))
		}
		r := e.accountPost(br, form, tc.hdr)
		if r.status != tc.want || !strings.Contains(r.body, tc.text) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
		if tc.b == nil && !strings.Contains(r.body, `name="password"`) {
			t.Errorf("%s: no sign-in form", tc.name)
		}
	}
	if al := e.storedAllowance(agentID); *al != *before {
		t.Fatalf("a refused post changed the allowance: %+v", al)
	}
	if _, err := e.as.ValidateAccessToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("a refused post revoked the token: %v", err)
	}
	// A cross-site sign-in does not sign the browser in (login CSRF).
	stranger := newBrowser(t)
	r := e.accountPost(stranger, url.Values{"csrf": {e.accountGet(stranger).csrf(t)}, "action": {"signin"},
		"email": {buyerEmail}, "password": {buyerPassword}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if r.status != http.StatusForbidden || strings.Contains(e.accountGet(stranger).body, "Demo Agent") {
		t.Fatalf("cross-site sign-in: %d", r.status)
	}
	// Sign out ends the session: the page asks to sign in again.
	r = e.accountPost(b, url.Values{"csrf": {csrf}, "action": {"signout"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d %s", r.status, r.body)
	}
	if p := e.follow(b, r); !strings.Contains(p.body, `name="password"`) || strings.Contains(p.body, "Demo Agent") || !strings.Contains(p.body, "signed out") {
		t.Fatalf("after sign-out: %s", p.body)
	}
}

// TestAccountPageSignInThrottle: the page's sign-in is the consent page's,
// throttle included.
func TestAccountPageSignInThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits.SignInPerAccount = oauth.RateLimit{Rate: 1.0 / 3600, Burst: 2}
	})
	b := newBrowser(t)
	var p page
	for range 3 {
		p = e.accountPost(b, url.Values{"csrf": {e.accountGet(b).csrf(t)}, "action": {"signin"},
			"email": {buyerEmail}, "password": {"wrong"}}, nil)
	}
	if p.status != http.StatusTooManyRequests || p.res.Header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("third wrong password: %d %s", p.status, p.body)
	}
	// The attempt is refused before the password is checked: the right
	// one is refused too, until the bucket refills.
	p = e.accountPost(b, url.Values{"csrf": {e.accountGet(b).csrf(t)}, "action": {"signin"},
		"email": {buyerEmail}, "password": {buyerPassword}}, nil)
	if p.status != http.StatusTooManyRequests {
		t.Fatalf("throttled account signed in: %d", p.status)
	}
	// The bucket is the consent page's: it is throttled there as well.
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read")
	_, form, _, _ := b.open(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if res := b.submit(e.url(oauth.PathAuthorize), form, signIn); res.StatusCode != http.StatusBadRequest || res.Header.Get("Retry-After") == "" {
		t.Fatalf("consent page after the account page's failures: %d", res.StatusCode)
	}
}

// TestAccountPageWithoutSpendingStore: a store that keeps no spend holds
// still lists the allowance, and says spent-today is not available.
func TestAccountPageWithoutSpendingStore(t *testing.T) {
	t.Parallel()
	e := newEnvWithStore(t, oauthOnlyStore{sqlstoretest.SQLite(t)}, nil)
	e.grantTokens(agentID, "purchase:complete")
	p := e.accountSignIn(newBrowser(t))
	wantIn(t, p.body, "50.00 EUR", "120.50 EUR", "not available here")
}

// oauthOnlyStore hides everything but store.Store (no Spent).
type oauthOnlyStore struct{ store.Store }

// TestConsentReadOnlyStoresNoAllowance: a grant whose scopes cannot spend
// stores no allowance, even when the posted form carries limits, and
// replaces an earlier grant's allowance, so the client can no longer pay.
func TestConsentReadOnlyStoresNoAllowance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, client := range []string{agentID, "other-agent"} {
		if client == agentID {
			e.grantTokens(agentID, "purchase:complete") // an allowance first
		}
		conf := e.oauth2Config(client, "http://127.0.0.1:7000/callback", "orders:read", "offline_access", "dev.ucp.shopping.checkout:manage")
		verifier := oauth2.GenerateVerifier()
		b := newBrowser(t)
		_, form, body, _ := b.open(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		if strings.Contains(body, `name="max_per_order"`) {
			t.Fatalf("%s: the consent page asks for a spending limit for read scopes", client)
		}
		res := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "approve",
			"max_per_order": "50", "daily_cap": "100", "currency": "EUR", "expires_days": "30"})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: consent %d", client, res.StatusCode)
		}
		loc, _ := url.Parse(res.Header.Get("Location"))
		tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("allowance") != nil {
			t.Errorf("%s: token response carries an allowance: %v", client, tok.Extra("allowance"))
		}
		c, err := e.st.Consent(ctx, "buyer_ada", client)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Allowance) != 0 || c.Scope != "orders:read offline_access dev.ucp.shopping.checkout:manage" {
			t.Errorf("%s: stored consent %q with allowance %s", client, c.Scope, c.Allowance)
		}
	}
}

// TestConsentStartsFromCurrentAllowance: a signed-in buyer who already
// allowed the agent sees the current limits (and their expiry) as the
// form's starting values, so raising them is an explicit edit; the page
// says the daily cap is a calendar day in UTC and when the new allowance
// would end.
func TestConsentStartsFromCurrentAllowance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "purchase:complete")
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t)
	e.approve(b, authURL, map[string]string{"max_per_order": "7", "daily_cap": "2000", "currency": "JPY", "expires_days": "10"})
	cur := e.storedAllowance(agentID)
	e.advance(36 * time.Hour) // 8.5 days left
	e.accountSignIn(b)        // the consent page's session lasted 12 h

	_, _, body, _ := b.open(authURL)
	wantIn(t, body, `name="max_per_order" value="7"`, `name="daily_cap" value="2000"`, `name="currency" value="JPY"`,
		`name="expires_days" value="8"`, "You already allow it 7 JPY per order and 2000 JPY a day, until "+cur.ExpiresAt.UTC().Format("2 Jan 2006, 15:04 UTC"),
		"calendar day in UTC", "until "+e.clock().UTC().Add(8*24*time.Hour).Format("2 Jan 2006, 15:04 UTC"), oauth.PathAccount)
	// Signed out, the page proposes the defaults and says they replace
	// any earlier limits.
	_, _, body, _ = newBrowser(t).open(authURL)
	wantIn(t, body, `name="max_per_order" value="100.00"`, `name="expires_days" value="30"`, "replace the ones you set before", "calendar day in UTC")
	// Expired, the old amounts are still the starting point, with 30 days.
	e.advance(9 * 24 * time.Hour)
	e.accountSignIn(b)
	_, _, body, _ = b.open(authURL)
	wantIn(t, body, `name="max_per_order" value="7"`, `name="expires_days" value="30"`, "but that allowance expired on")
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func withField(v url.Values, k, val string) url.Values {
	out := cloneValues(v)
	out.Set(k, val)
	return out
}
