package oauth_test

// Tests for the issue 9 hardening: trusted proxies, the atomic sign-in
// throttle, public clients' buckets charged only after proof, and who may
// introspect what. Each fails without its fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// proxy is the trusted reverse proxy the tests send requests through.
const proxy = "10.0.0.1:4000"

var trustProxy = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

// generous turns rate limits on, high enough that only the limit a test
// sets matters.
var generous = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 1e6, Burst: 1e6}, PerClient: oauth.RateLimit{Rate: 1e6, Burst: 1e6}}

// serve runs r through the server in process, as if from peer with the
// given X-Forwarded-For ("" none).
func (e *env) serve(r *http.Request, peer, xff string) *httptest.ResponseRecorder {
	r.RemoteAddr = peer
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	e.as.ServeHTTP(w, r)
	return w
}

func formRequest(path string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// signInFrom opens the consent page and posts its form with fields, as a
// browser at peer (forwarded as xff) would.
func (e *env) signInFrom(peer, xff string, fields map[string]string) *httptest.ResponseRecorder {
	authURL := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read").
		AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	page := e.serve(httptest.NewRequest(http.MethodGet, authURL, nil), peer, xff)
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page.Body.String(), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	for k, v := range fields {
		form.Set(k, v)
	}
	req := formRequest(oauth.PathAuthorize, form)
	for _, c := range page.Result().Cookies() {
		req.AddCookie(c)
	}
	return e.serve(req, peer, xff)
}

func wrongFor(email string) map[string]string {
	return map[string]string{"email": email, "password": "guess", "action": "approve"}
}

// TestTrustedProxyBuckets: behind a trusted proxy each forwarded client
// has its own per-IP bucket (IPv6 per /64); a peer that is not a trusted
// proxy cannot choose its bucket by writing X-Forwarded-For.
func TestTrustedProxyBuckets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 0.001, Burst: 2}}
		c.TrustedProxies = trustProxy
	})
	token := func(peer, xff string) int {
		return e.serve(formRequest(oauth.PathToken, url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}), peer, xff).Code
	}
	spend := func(label, peer string, xffs ...string) {
		t.Helper()
		for i, xff := range xffs {
			if code := token(peer, xff); code == http.StatusTooManyRequests {
				t.Fatalf("%s: request %d limited", label, i)
			}
		}
	}
	spend("client A", proxy, "198.51.100.1", "198.51.100.1")
	if code := token(proxy, "198.51.100.1"); code != http.StatusTooManyRequests {
		t.Fatalf("client A's third request: %d", code)
	}
	spend("client B, same proxy", proxy, "198.51.100.2")
	// IPv6 clients are grouped by /64: one host usually holds a whole one.
	spend("v6 client", proxy, "2001:db8:1:2::1", "2001:db8:1:2::2")
	if code := token(proxy, "2001:db8:1:2::ffff"); code != http.StatusTooManyRequests {
		t.Fatalf("another address in the same /64: %d", code)
	}
	spend("next /64", proxy, "2001:db8:1:3::1")
	// An untrusted peer's header is ignored: its bucket is its own address.
	spend("untrusted peer", "203.0.113.9:1", "198.51.100.10", "198.51.100.11")
	if code := token("203.0.113.9:1", "198.51.100.12"); code != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer escaped its bucket with X-Forwarded-For: %d", code)
	}
}

// TestConfigRefusesBadProxiesAndResources: New names what is wrong.
func TestConfigRefusesBadProxiesAndResources(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	for name, mod := range map[string]func(*oauth.Config){
		"zero prefix":        func(c *oauth.Config) { c.TrustedProxies = []netip.Prefix{{}} },
		"relative resource":  func(c *oauth.Config) { c.ResourceClients = map[string][]string{"/orders": {merchantID}} },
		"resource fragment":  func(c *oauth.Config) { c.ResourceClients = map[string][]string{"https://api.example/#x": {merchantID}} },
		"empty client id":    func(c *oauth.Config) { c.ResourceClients = map[string][]string{"https://api.example/": {""}} },
		"resource not a URI": func(c *oauth.Config) { c.ResourceClients = map[string][]string{"%zz": {merchantID}} },
	} {
		cfg := oauth.Config{Issuer: "http://127.0.0.1:1", Store: st}
		mod(&cfg)
		if _, err := oauth.New(cfg); err == nil || !strings.Contains(err.Error(), "oauth: Config.") {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := oauth.Config{Issuer: "http://127.0.0.1:1", Store: st, TrustedProxies: trustProxy,
		ResourceClients: map[string][]string{"https://api.example/orders": {merchantID}}}
	if _, err := oauth.New(cfg); err != nil {
		t.Fatal(err)
	}
}

// heldChecks blocks every password check until released, so a test can
// see how many concurrent attempts reached the check.
type heldChecks struct {
	entered chan struct{}
	release chan struct{}
}

func newHeldChecks() *heldChecks {
	return &heldChecks{entered: make(chan struct{}, 256), release: make(chan struct{})}
}

func (h *heldChecks) hook() {
	h.entered <- struct{}{}
	<-h.release
}

// race runs n attempts at once and returns how many reached the password
// check while all were in flight, and each attempt's response.
func (h *heldChecks) race(n int, attempt func() *httptest.ResponseRecorder) (int, []*httptest.ResponseRecorder) {
	out := make([]*httptest.ResponseRecorder, n)
	finished := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i] = attempt()
			finished <- struct{}{}
		})
	}
	checks, done := 0, 0
	for checks+done < n {
		select {
		case <-h.entered:
			checks++
		case <-finished:
			done++
		}
	}
	close(h.release)
	wg.Wait()
	return checks, out
}

// TestSignInThrottleIsAtomic: 40 concurrent wrong passwords for one
// account from one network: only the budget (10) reach the password
// check, on the consent page and in the password grant; the rest are
// refused with Retry-After before any check.
func TestSignInThrottleIsAtomic(t *testing.T) {
	t.Parallel()
	const n, budget = 40, 10 // budget: DefaultRateLimits.SignInPerAccount.Burst
	newHeld := func(t *testing.T) (*env, *heldChecks) {
		h := newHeldChecks()
		e := newEnv(t, func(c *oauth.Config) {
			c.DisableRateLimits = false
			c.RateLimits = generous
			c.AllowPasswordGrant = true
			oauth.OnPasswordCheck(c, h.hook)
		})
		return e, h
	}
	check := func(t *testing.T, checks int, out []*httptest.ResponseRecorder, refused func(*httptest.ResponseRecorder) bool) {
		t.Helper()
		if checks != budget {
			t.Errorf("%d of %d concurrent attempts reached the password check, want %d", checks, n, budget)
		}
		throttled := 0
		for _, w := range out {
			if refused(w) {
				throttled++
			}
		}
		if throttled != n-budget {
			t.Errorf("%d attempts refused by the throttle, want %d", throttled, n-budget)
		}
	}
	t.Run("consent", func(t *testing.T) {
		t.Parallel()
		e, h := newHeld(t)
		b := newBrowser(t)
		_, form, _, _ := b.open(e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read").
			AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		cookies := b.c.Jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(e.srv.URL, "http://"), Path: "/oauth/"})
		form.Set("email", buyerEmail)
		form.Set("password", "guess")
		form.Set("action", "approve")
		checks, out := h.race(n, func() *httptest.ResponseRecorder {
			r := formRequest(oauth.PathAuthorize, form)
			for _, c := range cookies {
				r.AddCookie(c)
			}
			return e.serve(r, "203.0.113.7:4000", "")
		})
		check(t, checks, out, func(w *httptest.ResponseRecorder) bool {
			return w.Code == http.StatusBadRequest && w.Header().Get("Retry-After") != "" && strings.Contains(w.Body.String(), "Too many failed sign-ins")
		})
	})
	t.Run("password grant", func(t *testing.T) {
		t.Parallel()
		e, h := newHeld(t)
		form := url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {"guess"}, "scope": {"orders:read"},
			"client_id": {scriptID}, "client_secret": {e.scriptSecret}}
		checks, out := h.race(n, func() *httptest.ResponseRecorder {
			return e.serve(formRequest(oauth.PathToken, form), "203.0.113.7:4000", "")
		})
		check(t, checks, out, func(w *httptest.ResponseRecorder) bool {
			return w.Code == http.StatusBadRequest && w.Header().Get("Retry-After") != "" && strings.Contains(w.Body.String(), "too many failed attempts")
		})
	})
}

// TestSignInStrangerBehindProxy: behind a trusted proxy, a stranger who
// uses up the failures for Ada's account locks only their own network
// out of it; Ada, forwarded from another network, signs in.
func TestSignInStrangerBehindProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = generous
		c.TrustedProxies = trustProxy
		c.AllowPasswordGrant = true
	})
	const stranger, owner = "203.0.113.7", "198.51.100.9"
	for range 12 {
		e.signInFrom(proxy, stranger, wrongFor(buyerEmail))
	}
	if w := e.signInFrom(proxy, stranger, signIn); w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") == "" {
		t.Fatalf("the stranger's network is not throttled: %d", w.Code)
	}
	if w := e.signInFrom(proxy, owner, signIn); w.Code != http.StatusSeeOther {
		t.Fatalf("the owner is locked out from another network: %d", w.Code)
	}
	// The password grant shares the throttle.
	form := url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {buyerPassword}, "scope": {"orders:read"},
		"client_id": {scriptID}, "client_secret": {e.scriptSecret}}
	if w := e.serve(formRequest(oauth.PathToken, form), proxy, stranger); w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") == "" {
		t.Fatalf("password grant from the stranger's network: %d %s", w.Code, w.Body)
	}
	if w := e.serve(formRequest(oauth.PathToken, form), proxy, owner); w.Code != http.StatusOK {
		t.Fatalf("password grant from the owner's network: %d %s", w.Code, w.Body)
	}
}

// TestSignInSprayIsThrottledPerNetwork: one network failing against many
// accounts uses up the network's budget, so it cannot try a password on
// every account; other networks are unaffected.
func TestSignInSprayIsThrottledPerNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = generous
		c.RateLimits.SignInPerNetwork = oauth.RateLimit{Rate: 0.001, Burst: 5}
	})
	const sprayer = "203.0.113.7:4000"
	for i := range 5 {
		if w := e.signInFrom(sprayer, "", wrongFor(fmt.Sprintf("user%d@example.com", i))); w.Header().Get("Retry-After") != "" {
			t.Fatalf("attempt %d throttled within the network's budget", i)
		}
	}
	if w := e.signInFrom(sprayer, "", signIn); w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a sixth account from the spraying network: %d", w.Code)
	}
	if w := e.signInFrom("198.51.100.9:5000", "", signIn); w.Code != http.StatusSeeOther {
		t.Fatalf("another network: %d", w.Code)
	}
}

// TestSignInSuccessIsFree: only failures count, so an owner who signs in
// more often than the failure budget is never throttled.
func TestSignInSuccessIsFree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = generous
		c.AllowPasswordGrant = true
	})
	form := url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {buyerPassword}, "scope": {"orders:read"},
		"client_id": {scriptID}, "client_secret": {e.scriptSecret}}
	for i := range 15 { // budget: 10
		if s, m, _ := e.tokenPost(form); s != http.StatusOK {
			t.Fatalf("sign-in %d: %d %v", i, s, m)
		}
	}
}

// TestPublicClientBucketNeedsProof: a stranger naming the public
// demo-agent, with bogus codes, a stolen code without its verifier and
// junk refresh tokens, from the agent's own network, never touches the
// agent's bucket; the agent's proven requests do, and one refused by it
// leaves the refresh token usable.
func TestPublicClientBucketNeedsProof(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerClient: oauth.RateLimit{Rate: 0.001, Burst: 3}, PerIP: oauth.RateLimit{Rate: 1e6, Burst: 1e6}}
	})
	const redirect = "http://127.0.0.1:7000/callback"
	code, verifier := e.codeFor(redirect, "orders:read offline_access")
	for i := range 30 {
		var form url.Values
		switch i % 3 {
		case 0:
			form = exchangeForm(fmt.Sprintf("ucpb_ac_bogus%d", i), oauth2.GenerateVerifier(), redirect)
		case 1:
			form = exchangeForm(code, oauth2.GenerateVerifier(), redirect)
		case 2:
			form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fmt.Sprintf("ucpb_rt_junk%d", i)}}
		}
		if s, m, _ := e.tokenPost(withClient(form, agentID)); s == http.StatusTooManyRequests || m["error"] != "invalid_grant" {
			t.Fatalf("stranger's request %d: %d %v", i, s, m)
		}
	}
	s, m, _ := e.tokenPost(withClient(exchangeForm(code, verifier, redirect), agentID))
	if s != http.StatusOK {
		t.Fatalf("the agent's code, after the stranger: %d %v", s, m)
	}
	refresh := func(rt string) (int, map[string]any, http.Header) {
		return e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "client_id": {agentID}, "refresh_token": {rt}})
	}
	rt := m["refresh_token"].(string)
	for i := range 2 {
		s, m, _ := refresh(rt)
		if s != http.StatusOK {
			t.Fatalf("refresh %d: %d %v", i, s, m)
		}
		rt = m["refresh_token"].(string)
	}
	// The code and two refreshes used the burst of 3.
	s, m, h := refresh(rt)
	if s != http.StatusTooManyRequests || m["error"] != "slow_down" || h.Get("Retry-After") == "" {
		t.Fatalf("proven requests past the client's limit: %d %v", s, m)
	}
	e.advance(1001 * time.Second)
	if s, m, _ := refresh(rt); s != http.StatusOK {
		t.Fatalf("the refresh token refused by the limit is spent: %d %v", s, m)
	}
}

// TestIntrospectionIsScoped: a confidential client learns about tokens
// issued to it and tokens for a resource it serves; any other live token
// is {"active":false}, exactly like an unknown one.
func TestIntrospectionIsScoped(t *testing.T) {
	t.Parallel()
	const apiID, resource = "orders-api", "https://api.example/orders"
	e := newEnv(t, func(c *oauth.Config) {
		c.ResourceClients = map[string][]string{resource: {apiID}}
	})
	ctx := context.Background()
	apiSecret, hash := oauth.NewClientSecret()
	if err := e.st.CreateClient(ctx, &store.Client{ID: apiID, Type: store.ClientWeb, Name: "Orders API", SecretHash: hash,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders:read"}, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{merchantID: e.merchantSecret, apiID: apiSecret}
	intro := func(caller, token string) map[string]any {
		res, err := http.PostForm(e.url(oauth.PathIntrospect), url.Values{"token": {token}, "client_id": {caller}, "client_secret": {secrets[caller]}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", caller, res.StatusCode, m)
		}
		return m
	}
	merchantTok, err := (&clientcredentials.Config{ClientID: merchantID, ClientSecret: e.merchantSecret, TokenURL: e.url(oauth.PathToken),
		Scopes: []string{"orders:read"}}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buyerTok := func(opts ...oauth2.AuthCodeOption) string {
		conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read")
		verifier := oauth2.GenerateVerifier()
		q := e.approve(newBrowser(t), conf.AuthCodeURL("st", append(opts, oauth2.S256ChallengeOption(verifier))...), nil)
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	forAPI := buyerTok(oauth2.SetAuthURLParam("resource", resource))
	noResource := buyerTok()
	inactive := func(label string, m map[string]any) {
		t.Helper()
		if m["active"] != false || len(m) != 1 {
			t.Errorf("%s: %v", label, m)
		}
	}
	if m := intro(merchantID, merchantTok.AccessToken); m["active"] != true || m["client_id"] != merchantID {
		t.Errorf("own token: %v", m)
	}
	inactive("another client's app token", intro(apiID, merchantTok.AccessToken))
	if m := intro(apiID, forAPI); m["active"] != true || m["aud"] != resource || m["sub"] != "buyer_ada" || m["client_id"] != agentID {
		t.Errorf("a token for the caller's resource: %v", m)
	}
	inactive("a token for another client's resource", intro(merchantID, forAPI))
	inactive("a buyer token without a resource", intro(apiID, noResource))
	inactive("a buyer token without a resource, to another client", intro(merchantID, noResource))
}
