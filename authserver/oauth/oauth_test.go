package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/oauth/cimd"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

const (
	buyerEmail    = "ada@example.com"
	buyerPassword = "correct horse battery staple"
	agentID       = "demo-agent"       // public, loopback redirect
	merchantID    = "flower-shop-keys" // confidential
	scriptID      = "ada-script"       // script app, Ada is its developer
)

type env struct {
	t              testing.TB
	srv            *httptest.Server
	as             *oauth.Server
	st             store.Store
	merchantSecret string
	scriptSecret   string
	now            time.Time
	mu             sync.Mutex
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// buyerPasswordHash is Ada's password hash, computed once: each Argon2id
// run takes 64 MiB and about 0.3 s under the race detector, and every env
// seeds Ada.
var buyerPasswordHash = sync.OnceValue(func() string { return oauth.HashPassword(buyerPassword) })

// newEnv serves an authorization server on a random loopback port with a
// seeded SQLite store. mod may adjust the config.
func newEnv(t *testing.T, mod func(c *oauth.Config)) *env {
	t.Helper()
	return newEnvWithStore(t, sqlstoretest.SQLite(t), mod)
}

// newEnvWithStore is newEnv on a given (empty) store, which the caller
// closes.
func newEnvWithStore(t testing.TB, st store.Store, mod func(c *oauth.Config)) *env {
	t.Helper()
	ctx := context.Background()
	var err error
	e := &env{t: t, st: st, now: time.Now()}
	e.srv = httptest.NewUnstartedServer(nil)
	cfg := oauth.Config{
		Issuer: "http://" + e.srv.Listener.Addr().String(), Store: st, Now: e.clock,
		CIMD:              cimd.NewFetcher(&cimd.Options{AllowLoopback: true}),
		DisableRateLimits: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.as, err = oauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = e.as
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateBuyer(ctx, &store.Buyer{ID: "buyer_ada", Email: buyerEmail, PasswordHash: buyerPasswordHash(), CreatedAt: e.now}))
	must(st.CreateClient(ctx, &store.Client{ID: agentID, Type: store.ClientInstalled, Name: "Demo Agent",
		RedirectURIs: []string{"http://127.0.0.1/callback", "https://agent.example/cb"}, CreatedAt: e.now}))
	must(st.CreateClient(ctx, &store.Client{ID: "other-agent", Type: store.ClientInstalled, Name: "Other",
		RedirectURIs: []string{"http://127.0.0.1/callback"}, CreatedAt: e.now}))
	var hash []byte
	e.merchantSecret, hash = oauth.NewClientSecret()
	must(st.CreateClient(ctx, &store.Client{ID: merchantID, Type: store.ClientWeb, Name: "Flower shop", SecretHash: hash,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"dev.ucp.shopping.catalog.search:read", "orders:read"}, CreatedAt: e.now}))
	e.scriptSecret, hash = oauth.NewClientSecret()
	must(st.CreateClient(ctx, &store.Client{ID: scriptID, Type: store.ClientScript, Name: "Ada's script", SecretHash: hash,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"orders:read", "offline_access"},
		Developers: []string{"buyer_ada"}, CreatedAt: e.now}))
	return e
}

func (e *env) url(path string) string { return e.srv.URL + path }

func (e *env) oauth2Config(clientID, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.url(oauth.PathAuthorize), TokenURL: e.url(oauth.PathToken), AuthStyle: oauth2.AuthStyleInParams}}
}

// browser is a cookie-keeping HTTP client that does not follow redirects
// and runs no JavaScript: it reads the consent form and posts it.
type browser struct {
	t testing.TB
	c *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// open GETs an authorization URL and returns the status, the form fields
// and the page body.
func (b *browser) open(u string) (int, url.Values, string, *http.Response) {
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return res.StatusCode, form, string(body), res
}

// submit posts the consent form with extra fields and returns the response.
func (b *browser) submit(action string, form url.Values, extra map[string]string) *http.Response {
	for k, v := range extra {
		form.Set(k, v)
	}
	res, err := b.c.PostForm(action, form)
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

var signIn = map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "approve"}

// approve runs the whole buyer side and returns the redirect's query.
func (e *env) approve(b *browser, authURL string, extra map[string]string) url.Values {
	e.t.Helper()
	status, form, body, _ := b.open(authURL)
	if status != 200 || form.Get("csrf") == "" {
		e.t.Fatalf("consent page %d: %s", status, body)
	}
	fields := map[string]string{}
	for k, v := range signIn {
		fields[k] = v
	}
	for k, v := range extra {
		fields[k] = v
	}
	if strings.Contains(body, `name="max_per_order"`) {
		for k, v := range map[string]string{"max_per_order": "50", "daily_cap": "120.50", "currency": "EUR", "expires_days": "30"} {
			if _, ok := fields[k]; !ok {
				fields[k] = v
			}
		}
	}
	res := b.submit(e.url(oauth.PathAuthorize), form, fields)
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("consent POST: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	return loc.Query()
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := http.Get(e.url("/.well-known/oauth-authorization-server"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	if m["issuer"] != e.srv.URL {
		t.Fatalf("issuer %v must equal %s byte for byte", m["issuer"], e.srv.URL)
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint", "scopes_supported"} {
		if m[k] == nil {
			t.Errorf("missing %s", k)
		}
	}
	if m["code_challenge_methods_supported"].([]any)[0] != "S256" || len(m["code_challenge_methods_supported"].([]any)) != 1 ||
		m["authorization_response_iss_parameter_supported"] != true || m["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata %v", m)
	}
	if g := m["grant_types_supported"].([]any); len(g) != 4 || g[3] != oauth.GrantTypeTokenExchange {
		t.Fatalf("password grant advertised while off: %v", g)
	}
	// The scopes listing takes a comma- or space-separated filter.
	res2, _ := http.Get(e.url(oauth.PathScopes + "?scopes=offline_access,orders:read"))
	var sc struct{ Scopes []oauth.Scope }
	json.NewDecoder(res2.Body).Decode(&sc)
	res2.Body.Close()
	if len(sc.Scopes) != 2 || sc.Scopes[0].Name != "orders:read" {
		t.Fatalf("scopes %+v", sc)
	}
}

// TestCodeFlowWithXOAuth2: authorization code + PKCE, refresh rotation and
// token validation, with golang.org/x/oauth2 as the client.
func TestCodeFlowWithXOAuth2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	// A loopback redirect with a port the client never registered.
	conf := e.oauth2Config(agentID, "http://127.0.0.1:49152/callback", "purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	q := e.approve(newBrowser(t), conf.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier)), nil)
	if q.Get("state") != "st-123" || q.Get("iss") != e.srv.URL || q.Get("code") == "" {
		t.Fatalf("redirect %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.Extra("scope") != "purchase:complete offline_access" {
		t.Fatalf("token %+v", tok)
	}
	if exp := time.Until(tok.Expiry); exp < 59*time.Minute || exp > 61*time.Minute {
		t.Fatalf("expires_in: %v", exp)
	}
	var allowance oauth.Allowance
	b, _ := json.Marshal(tok.Extra("allowance"))
	json.Unmarshal(b, &allowance)
	if allowance.MaxPerOrder != 5000 || allowance.DailyCap != 12050 || allowance.Currency != "EUR" {
		t.Fatalf("allowance %+v", allowance)
	}
	info, err := e.as.ValidateAccessToken(ctx, tok.AccessToken)
	if err != nil || info.BuyerID != "buyer_ada" || !info.HasScope("purchase:complete") || info.ClientID != agentID {
		t.Fatalf("validate: %+v %v", info, err)
	}
	// Refresh through x/oauth2's TokenSource: a new pair, the old access
	// token still valid until it expires, the new one valid now.
	old := *tok
	tok.Expiry = time.Now().Add(-time.Second)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == old.RefreshToken || fresh.AccessToken == old.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	for _, at := range []string{fresh.AccessToken, old.AccessToken} {
		if _, err := e.as.ValidateAccessToken(ctx, at); err != nil {
			t.Fatalf("access token after refresh: %v", err)
		}
	}
	// Revocation of the refresh token ends the family at once.
	res, _ := http.PostForm(e.url(oauth.PathRevoke), url.Values{"token": {fresh.RefreshToken}, "client_id": {agentID}})
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	for _, at := range []string{old.AccessToken, fresh.AccessToken} {
		if _, err := e.as.ValidateAccessToken(ctx, at); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Fatalf("access token alive after revoking its family: %v", err)
		}
	}
}

func TestClientCredentialsWithXOAuth2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		cc := &clientcredentials.Config{ClientID: merchantID, ClientSecret: e.merchantSecret, TokenURL: e.url(oauth.PathToken),
			Scopes: []string{"orders:read"}, AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.RefreshToken != "" {
			t.Fatal("client_credentials issued a refresh token")
		}
		info, err := e.as.ValidateAccessToken(ctx, tok.AccessToken)
		if err != nil || info.BuyerID != "" || info.Scope != "orders:read" {
			t.Fatalf("%+v %v", info, err)
		}
	}
	bad := &clientcredentials.Config{ClientID: merchantID, ClientSecret: "wrong", TokenURL: e.url(oauth.PathToken)}
	_, err := bad.Token(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 || re.Response.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong secret: %v", err)
	}
	buyerScope := &clientcredentials.Config{ClientID: merchantID, ClientSecret: e.merchantSecret, TokenURL: e.url(oauth.PathToken), Scopes: []string{"purchase:complete"}}
	if _, err := buyerScope.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_scope" {
		t.Fatalf("app token with buyer authority: %v", err)
	}
	public := &clientcredentials.Config{ClientID: agentID, TokenURL: e.url(oauth.PathToken)}
	if _, err := public.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "unauthorized_client" {
		t.Fatalf("public client_credentials: %v", err)
	}
}

// tokenPost posts a raw token request and decodes the answer.
func (e *env) tokenPost(form url.Values) (int, map[string]any, http.Header) {
	res, err := http.PostForm(e.url(oauth.PathToken), form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	if res.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("token response without Cache-Control: no-store")
	}
	return res.StatusCode, m, res.Header
}

// codeFor runs the buyer side with a fresh verifier.
func (e *env) codeFor(redirect string, scope string) (code, verifier string) {
	verifier = oauth2.GenerateVerifier()
	conf := e.oauth2Config(agentID, redirect, strings.Fields(scope)...)
	q := e.approve(newBrowser(e.t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), nil)
	return q.Get("code"), verifier
}

func exchangeForm(code, verifier, redirect string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "client_id": {agentID}, "redirect_uri": {redirect}}
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const redirect = "http://127.0.0.1:8000/callback"

	code, verifier := e.codeFor(redirect, "orders:read offline_access")
	for name, c := range map[string]struct {
		form url.Values
		err  string
	}{
		"wrong verifier":          {exchangeForm(code, oauth2.GenerateVerifier(), redirect), "invalid_grant"},
		"missing verifier":        {exchangeForm(code, "", redirect), "invalid_grant"},
		"short verifier":          {exchangeForm(code, "abc", redirect), "invalid_grant"},
		"redirect mismatch":       {exchangeForm(code, verifier, "http://127.0.0.1:8001/callback"), "invalid_grant"},
		"unknown code":            {exchangeForm("ucpb_ac_nope", verifier, redirect), "invalid_grant"},
		"unsupported grant":       {url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {agentID}}, "unsupported_grant_type"},
		"no grant type":           {url.Values{"client_id": {agentID}}, "invalid_request"},
		"password grant off":      {url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {buyerPassword}, "client_id": {scriptID}, "client_secret": {e.scriptSecret}}, "unsupported_grant_type"},
		"unknown client":          {url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}, "invalid_client"},
		"repeated parameter":      {url.Values{"grant_type": {"authorization_code", "authorization_code"}, "client_id": {agentID}}, "invalid_request"},
		"public with secret":      {url.Values{"grant_type": {"authorization_code"}, "client_id": {agentID}, "client_secret": {"x"}}, "invalid_client"},
		"confidential, no secret": {url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}}, "invalid_client"},
		"code of another client":  {withClient(exchangeForm(code, verifier, redirect), "other-agent"), "invalid_grant"},
		"grant not allowed":       {url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}}, "unauthorized_client"},
		"unregistered app scope":  {url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}, "scope": {"dev.ucp.shopping.catalog.lookup:read"}}, "invalid_scope"},
	} {
		status, m, _ := e.tokenPost(c.form)
		if m["error"] != c.err || status < 400 {
			t.Errorf("%s: %d %v, want %s", name, status, m, c.err)
		}
	}
	// None of those failed attempts burned the code: the real client
	// still redeems it once. A replay then revokes what it issued.
	status, m, _ := e.tokenPost(exchangeForm(code, verifier, redirect))
	if status != 200 {
		t.Fatalf("redeem after failed attempts: %d %v", status, m)
	}
	status, m2, _ := e.tokenPost(exchangeForm(code, verifier, redirect))
	if status != 400 || m2["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", status, m2)
	}
	if _, err := e.as.ValidateAccessToken(context.Background(), m["access_token"].(string)); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatal("code replay did not revoke the tokens it issued")
	}
	// Expired code.
	code, verifier = e.codeFor(redirect, "orders:read")
	e.advance(61 * time.Second)
	if _, m, _ := e.tokenPost(exchangeForm(code, verifier, redirect)); m["error"] != "invalid_grant" {
		t.Fatalf("expired code: %v", m)
	}
	// A verifier that hashes to its challenge but breaks RFC 7636's
	// length and charset rules is refused too.
	bad := "too-short-verifier"
	q := e.approve(newBrowser(t), e.oauth2Config(agentID, redirect, "orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(bad)), nil)
	if _, m, _ := e.tokenPost(exchangeForm(q.Get("code"), bad, redirect)); m["error"] != "invalid_grant" {
		t.Fatalf("malformed verifier: %v", m)
	}
	// Form body required.
	res, _ := http.Post(e.url(oauth.PathToken), "application/json", strings.NewReader(`{}`))
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("JSON body: %d", res.StatusCode)
	}
}

func TestRefreshReuseAndGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const redirect = "http://127.0.0.1/callback"
	code, verifier := e.codeFor(redirect, "purchase:complete offline_access")
	_, first, _ := e.tokenPost(exchangeForm(code, verifier, redirect))
	refresh := func(rt string) (int, map[string]any) {
		s, m, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {agentID}})
		return s, m
	}
	rt0 := first["refresh_token"].(string)
	s1, r1 := refresh(rt0)
	if s1 != 200 {
		t.Fatalf("refresh: %v", r1)
	}
	// A retry inside the grace window (the first response was lost) gets
	// the same pair, so the client is not logged out.
	e.advance(5 * time.Second)
	s2, r2 := refresh(rt0)
	if s2 != 200 || r2["refresh_token"] != r1["refresh_token"] || r2["access_token"] != r1["access_token"] {
		t.Fatalf("grace retry gave another pair: %v vs %v", r2, r1)
	}
	// Narrowing the scope on refresh is allowed; widening is not.
	_, r3, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1["refresh_token"].(string)}, "client_id": {agentID}, "scope": {"purchase:complete"}})
	if r3["scope"] != "purchase:complete" {
		t.Fatalf("narrowed refresh: %v", r3)
	}
	if _, m, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r3["refresh_token"].(string)}, "client_id": {agentID},
		"scope": {"purchase:complete orders:read"}}); m["error"] != "invalid_scope" {
		t.Fatalf("widened refresh: %v", m)
	}
	// Reusing rt0 now, still inside its grace window but after its
	// successor was used, revokes the family.
	s4, r4 := refresh(rt0)
	if s4 != 400 || r4["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", s4, r4)
	}
	if s, _ := refresh(r3["refresh_token"].(string)); s != 400 {
		t.Fatal("newest refresh token survived the reuse")
	}
	if _, err := e.as.ValidateAccessToken(context.Background(), r3["access_token"].(string)); err == nil {
		t.Fatal("access token survived the reuse")
	}
	// Another client cannot use the token.
	code, verifier = e.codeFor(redirect, "orders:read offline_access")
	_, t2, _ := e.tokenPost(exchangeForm(code, verifier, redirect))
	s5, m5, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t2["refresh_token"].(string)}, "client_id": {"other-agent"}})
	if s5 != 400 || m5["error"] != "invalid_grant" {
		t.Fatalf("refresh by another client: %v", m5)
	}
	// A client not registered for refresh_token cannot use one at all.
	if _, m, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t2["refresh_token"].(string)},
		"client_id": {merchantID}, "client_secret": {e.merchantSecret}}); m["error"] != "unauthorized_client" {
		t.Fatalf("refresh by a client_credentials-only client: %v", m)
	}
	// No offline_access, no refresh token.
	code, verifier = e.codeFor(redirect, "orders:read")
	if _, m, _ := e.tokenPost(exchangeForm(code, verifier, redirect)); m["refresh_token"] != nil {
		t.Fatalf("refresh token without offline_access: %v", m)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := newBrowser(t)
	base := func(mod func(q url.Values)) string {
		q := url.Values{"response_type": {"code"}, "client_id": {agentID}, "redirect_uri": {"http://127.0.0.1:5000/callback"},
			"state": {"xyz"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		mod(q)
		return e.url(oauth.PathAuthorize) + "?" + q.Encode()
	}
	// Shown on the page, never redirected: the redirect target is not
	// trusted yet.
	for name, mod := range map[string]func(url.Values){
		"unknown client":      func(q url.Values) { q.Set("client_id", "nobody") },
		"unregistered uri":    func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"localhost vs 127":    func(q url.Values) { q.Set("redirect_uri", "http://localhost:5000/callback") },
		"other loopback path": func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:5000/other") },
		"https port variance": func(q url.Values) { q.Set("redirect_uri", "https://agent.example:8443/cb") },
		"https on loopback":   func(q url.Values) { q.Set("redirect_uri", "https://127.0.0.1:5000/callback") },
		"repeated redirect":   func(q url.Values) { q.Add("redirect_uri", "http://127.0.0.1:5000/callback") },
	} {
		status, _, body, res := b.open(base(mod))
		if status != 400 || res.Header.Get("Location") != "" || !strings.Contains(body, "cannot continue") {
			t.Errorf("%s: %d %q", name, status, res.Header.Get("Location"))
		}
	}
	// Redirected back with an error, state and iss.
	for name, c := range map[string]struct {
		mod  func(url.Values)
		code string
	}{
		"implicit flow": {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		"no PKCE":       {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		"plain PKCE":    {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		"absent method": {func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		"bad challenge": {func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
		"unknown scope": {func(q url.Values) { q.Set("scope", "purchase:complete admin") }, "invalid_scope"},
	} {
		status, _, _, res := b.open(base(c.mod))
		loc, _ := url.Parse(res.Header.Get("Location"))
		if status != http.StatusSeeOther || loc.Query().Get("error") != c.code || loc.Query().Get("state") != "xyz" || loc.Query().Get("iss") != e.srv.URL {
			t.Errorf("%s: %d %s", name, status, res.Header.Get("Location"))
		}
	}
}

func TestConsentPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "purchase:complete", "offline_access")
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t)
	status, form, body, res := b.open(authURL)
	if status != 200 {
		t.Fatal(status)
	}
	for _, want := range []string{"Demo Agent", "Buy things for you", "Spending limits", "Stay connected", "127.0.0.1:7000", "runs on your own computer", `name="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("consent page uses scripts")
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("clickjacking headers: %v", res.Header)
	}
	// A cross-site post (no CSRF cookie) is refused.
	stranger := newBrowser(t)
	complete := map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "approve",
		"max_per_order": "1", "daily_cap": "2", "currency": "EUR", "expires_days": "1"}
	if r := stranger.submit(e.url(oauth.PathAuthorize), form, complete); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("CSRF: %d", r.StatusCode)
	}
	// A wrong password re-renders the page; no code.
	if r := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"email": buyerEmail, "password": "nope", "action": "approve",
		"max_per_order": "1", "daily_cap": "2", "currency": "EUR", "expires_days": "1"}); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("wrong password: %d", r.StatusCode)
	}
	// An impossible allowance re-renders the page; no code.
	if r := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "approve",
		"max_per_order": "300", "daily_cap": "200", "currency": "EUR", "expires_days": "30"}); r.StatusCode != 400 {
		t.Fatalf("per-order above daily cap: %d", r.StatusCode)
	}
	// Deny: access_denied with state and iss. (The buyer is signed in by now.)
	r := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"action": "deny"})
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" || loc.Query().Get("iss") != e.srv.URL {
		t.Fatalf("deny: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// Tampered hidden fields are validated again: a swapped redirect URI
	// is refused on the page.
	form.Set("redirect_uri", "https://evil.example/cb")
	if r := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"action": "approve"}); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("tampered redirect: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestCIMDClient: a client id that is the URL of its metadata document,
// served from loopback (allowed by the dev setting).
func TestCIMDClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var docURL string
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "Local Claude",
			"redirect_uris": []string{"http://127.0.0.1/oauth/callback"}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}})
	}))
	defer doc.Close()
	docURL = doc.URL + "/oauth-client.json"
	conf := e.oauth2Config(docURL, "http://127.0.0.1:33418/oauth/callback", "purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	_, _, body, _ := b.open(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if !strings.Contains(body, "Local Claude") || !strings.Contains(body, "metadata document") {
		t.Fatalf("consent page for a CIMD client: %s", body)
	}
	q := e.approve(b, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), nil)
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("CIMD exchange: %v", err)
	}
	// A public CIMD client gets no app token even if its document claims
	// the grant.
	status, m, _ := e.tokenPost(url.Values{"grant_type": {"client_credentials"}, "client_id": {docURL}})
	if status != 400 || m["error"] != "unauthorized_client" {
		t.Fatalf("CIMD client_credentials: %d %v", status, m)
	}
	// A redirect URI the document does not list.
	status, _, page, _ := b.open(e.oauth2Config(docURL, "http://127.0.0.1:1/elsewhere").AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if status != 400 || !strings.Contains(page, "redirect_uri is not registered") {
		t.Fatalf("unlisted redirect: %d", status)
	}
}

// TestCIMDPrivateAddressRefused: without the dev setting, a client id
// pointing at a loopback or private address is refused at the consent
// page, and the document server is never contacted.
func TestCIMDPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) { c.CIMD = cimd.NewFetcher(nil) })
	// Count TCP connections, not requests: the guard must stop the dial
	// itself, not rely on TLS or HTTP failing afterwards.
	var mu sync.Mutex
	hits := 0
	doc := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	doc.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			hits++
			mu.Unlock()
		}
	}
	doc.StartTLS()
	defer doc.Close()
	id := doc.URL + "/client.json" // https://127.0.0.1:port/client.json
	status, _, body, _ := newBrowser(t).open(e.oauth2Config(id, "http://127.0.0.1/cb").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	mu.Lock()
	defer mu.Unlock()
	if status != 400 || !strings.Contains(body, "invalid_client") || hits != 0 {
		t.Fatalf("private CIMD: %d hits=%d %s", status, hits, body)
	}
}

func TestPasswordGrantWhenEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) { c.AllowPasswordGrant = true })
	form := url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {buyerPassword}, "scope": {"orders:read"},
		"client_id": {scriptID}, "client_secret": {e.scriptSecret}}
	if s, m, _ := e.tokenPost(form); s != 200 || m["access_token"] == nil {
		t.Fatalf("script developer: %d %v", s, m)
	}
	form.Set("scope", "purchase:complete")
	if _, m, _ := e.tokenPost(form); m["error"] != "invalid_scope" {
		t.Fatalf("scope the script app is not registered for: %v", m)
	}
	form.Set("scope", "orders:read")
	form.Set("password", "wrong")
	if _, m, _ := e.tokenPost(form); m["error"] != "invalid_grant" {
		t.Fatalf("wrong password: %v", m)
	}
	// A registered buyer who is not the app's developer.
	e.st.CreateBuyer(context.Background(), &store.Buyer{ID: "buyer_bob", Email: "bob@example.com", PasswordHash: oauth.HashPassword("pw-bob-123"), CreatedAt: time.Now()})
	form.Set("username", "bob@example.com")
	form.Set("password", "pw-bob-123")
	_, nonDev, _ := e.tokenPost(form)
	if nonDev["error"] != "invalid_grant" {
		t.Fatalf("non-developer: %v", nonDev)
	}
	// Same answer as a wrong password: the app's secret is no oracle for
	// other buyers' passwords.
	form.Set("password", "not-bobs")
	if _, wrong, _ := e.tokenPost(form); wrong["error_description"] != nonDev["error_description"] {
		t.Fatalf("distinguishable failures: %v vs %v", wrong, nonDev)
	}
	form.Set("password", "pw-bob-123")
	// Not a script app.
	if _, m, _ := e.tokenPost(url.Values{"grant_type": {"password"}, "username": {buyerEmail}, "password": {buyerPassword},
		"client_id": {merchantID}, "client_secret": {e.merchantSecret}}); m["error"] != "unauthorized_client" {
		t.Fatalf("web app password grant: %v", m)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 1, Burst: 3}, PerClient: oauth.RateLimit{Rate: 100, Burst: 100}}
	})
	var last *http.Response
	for range 4 {
		res, err := http.PostForm(e.url(oauth.PathToken), url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		last = res
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d Retry-After=%q", last.StatusCode, last.Header.Get("Retry-After"))
	}
	// The clock refills the bucket.
	e.advance(2 * time.Second)
	res, _ := http.PostForm(e.url(oauth.PathToken), url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}})
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("after refill: %d", res.StatusCode)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	cc := &clientcredentials.Config{ClientID: merchantID, ClientSecret: e.merchantSecret, TokenURL: e.url(oauth.PathToken), Scopes: []string{"orders:read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	intro := func(token string, auth bool) (int, map[string]any) {
		form := url.Values{"token": {token}, "client_id": {merchantID}}
		if auth {
			form.Set("client_secret", e.merchantSecret)
		}
		res, err := http.PostForm(e.url(oauth.PathIntrospect), form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	if s, m := intro(tok.AccessToken, true); s != 200 || m["active"] != true || m["scope"] != "orders:read" || m["client_id"] != merchantID {
		t.Fatalf("active: %v", m)
	}
	if _, m := intro("ucpb_at_unknown", true); m["active"] != false || len(m) != 1 {
		t.Fatalf("inactive: %v", m)
	}
	if s, _ := intro(tok.AccessToken, false); s != 401 {
		t.Fatalf("unauthenticated introspection: %d", s)
	}
	// A public client cannot introspect.
	res, _ := http.PostForm(e.url(oauth.PathIntrospect), url.Values{"token": {tok.AccessToken}, "client_id": {agentID}})
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("public introspection: %d", res.StatusCode)
	}
	// Revoking someone else's token is a silent no-op.
	res, _ = http.PostForm(e.url(oauth.PathRevoke), url.Values{"token": {tok.AccessToken}, "client_id": {agentID}})
	res.Body.Close()
	if _, err := e.as.ValidateAccessToken(ctx, tok.AccessToken); err != nil || res.StatusCode != 200 {
		t.Fatalf("cross-client revoke: %d %v", res.StatusCode, err)
	}
}

func withClient(f url.Values, id string) url.Values {
	f.Set("client_id", id)
	return f
}

// TestSignInThrottle: an account's password cannot be guessed quickly,
// even when per-IP limits are generous.
func TestSignInThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 1000, Burst: 1000}, PerClient: oauth.RateLimit{Rate: 1000, Burst: 1000}}
	})
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read")
	b := newBrowser(t)
	_, form, _, _ := b.open(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	wrong := map[string]string{"email": buyerEmail, "password": "guess", "action": "approve"}
	for i := range 10 {
		if r := b.submit(e.url(oauth.PathAuthorize), form, wrong); r.StatusCode != 400 || r.Header.Get("Retry-After") != "" {
			t.Fatalf("attempt %d: %d", i, r.StatusCode)
		}
	}
	// The right password is refused too while the account is throttled.
	r := b.submit(e.url(oauth.PathAuthorize), form, signIn)
	if r.StatusCode != 400 || r.Header.Get("Retry-After") == "" || r.Header.Get("Location") != "" {
		t.Fatalf("11th attempt: %d %v", r.StatusCode, r.Header)
	}
	e.advance(time.Minute)
	if r := b.submit(e.url(oauth.PathAuthorize), form, signIn); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the throttle: %d", r.StatusCode)
	}
}

// TestSignInThrottleIsPerNetwork: failures from one network do not lock
// the account's owner out on another. Requests go straight to the handler
// so they can come from different addresses.
func TestSignInThrottleIsPerNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 1000, Burst: 1000}, PerClient: oauth.RateLimit{Rate: 1000, Burst: 1000}}
	})
	authURL := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "orders:read").AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	post := func(from string, fields map[string]string) *httptest.ResponseRecorder {
		get := httptest.NewRequest(http.MethodGet, authURL, nil)
		get.RemoteAddr = from
		page := httptest.NewRecorder()
		e.as.ServeHTTP(page, get)
		form := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(page.Body.String(), -1) {
			form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		for k, v := range fields {
			form.Set(k, v)
		}
		req := httptest.NewRequest(http.MethodPost, e.url(oauth.PathAuthorize), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = from
		for _, c := range page.Result().Cookies() {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		e.as.ServeHTTP(w, req)
		return w
	}
	for range 12 {
		post("203.0.113.7:4000", map[string]string{"email": buyerEmail, "password": "guess", "action": "approve"})
	}
	if w := post("203.0.113.7:4001", signIn); w.Code != 400 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("the guessing network is not throttled: %d", w.Code)
	}
	if w := post("198.51.100.9:5000", signIn); w.Code != http.StatusSeeOther {
		t.Fatalf("the owner is locked out from another network: %d %s", w.Code, w.Body)
	}
}

// TestClientBucketNotSpoofable: requests that only claim a client id do
// not use up that client's rate limit.
func TestClientBucketNotSpoofable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerIP: oauth.RateLimit{Rate: 1000, Burst: 1000}, PerClient: oauth.RateLimit{Rate: 0.1, Burst: 3}}
	})
	for range 10 {
		e.tokenPost(url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {"wrong"}})
	}
	if s, m, _ := e.tokenPost(url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}}); s != 200 {
		t.Fatalf("real client throttled by impostors: %d %v", s, m)
	}
	// Its own requests do count.
	var last int
	for range 3 {
		last, _, _ = e.tokenPost(url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}})
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("per-client limit not applied: %d", last)
	}
}

func TestMalformedInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, body := range map[string]string{
		"bad escape": "grant_type=client_credentials&client_id=" + merchantID + "&%zz=1",
		"NUL byte":   "grant_type=client_credentials&client_id=demo%00agent",
		"bad UTF-8":  "grant_type=client_credentials&client_id=%ff%fe",
	} {
		res, err := http.Post(e.url(oauth.PathToken), "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		if res.StatusCode != 400 || m["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", name, res.StatusCode, m)
		}
	}
	status, _, _, _ := newBrowser(t).open(e.url(oauth.PathAuthorize) + "?client_id=%00")
	if status != 400 {
		t.Errorf("NUL in the authorization request: %d", status)
	}
}

// TestCIMDDocumentRules: a document that declares private_key_jwt is
// refused (it would otherwise be treated as public), and a document's
// scope bounds what the client may ask for.
func TestCIMDDocumentRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	docs := map[string]map[string]any{
		"/jwt.json":    {"token_endpoint_auth_method": "private_key_jwt"},
		"/scoped.json": {"scope": "orders:read"},
		"/js.json":     {"redirect_uris": []string{"http://127.0.0.1/cb", "javascript:alert(1)"}},
	}
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := map[string]any{"client_id": base + r.URL.Path, "client_name": "Doc", "redirect_uris": []string{"http://127.0.0.1/cb"}}
		for k, v := range docs[r.URL.Path] {
			d[k] = v
		}
		json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()
	base = srv.URL
	challenge := oauth2.S256ChallengeOption(oauth2.GenerateVerifier())
	status, _, body, _ := newBrowser(t).open(e.oauth2Config(base+"/jwt.json", "http://127.0.0.1:1/cb", "orders:read").AuthCodeURL("s", challenge))
	if status != 400 || !strings.Contains(body, "private_key_jwt") {
		t.Fatalf("private_key_jwt document: %d", status)
	}
	if status, _, body, _ := newBrowser(t).open(e.oauth2Config(base+"/js.json", "http://127.0.0.1:1/cb", "orders:read").AuthCodeURL("s", challenge)); status != 400 || !strings.Contains(body, "reverse-DNS") {
		t.Fatalf("javascript: redirect URI in a document: %d", status)
	}
	// Shown on the page: a CIMD client's redirect URIs are not trusted
	// before the buyer has interacted (TestCIMDNoOpenRedirect).
	status, _, body, res := newBrowser(t).open(e.oauth2Config(base+"/scoped.json", "http://127.0.0.1:1/cb", "purchase:complete").AuthCodeURL("s", challenge))
	if status != 400 || res.Header.Get("Location") != "" || !strings.Contains(body, "invalid_scope") {
		t.Fatalf("scope outside the document: %d %s", status, res.Header.Get("Location"))
	}
}

func TestConsentHardening(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// checkout:manage cannot pay (only purchase:complete can), so the
	// page asks for no spending limit, and the grant carries none; with
	// purchase:complete it always asks.
	b := newBrowser(t)
	_, _, body, _ := b.open(e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "dev.ucp.shopping.checkout:manage").
		AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if strings.Contains(body, `name="max_per_order"`) {
		t.Fatal("a spending limit asked for a scope that cannot spend")
	}
	_, form, body, _ := b.open(e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "purchase:complete dev.ucp.shopping.checkout:manage").
		AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if !strings.Contains(body, `name="max_per_order"`) {
		t.Fatal("purchase:complete without a spending limit")
	}
	// A post the browser marks cross-site is refused even with the right
	// cookie and token.
	form.Set("email", buyerEmail)
	form.Set("password", buyerPassword)
	form.Set("action", "approve")
	req, _ := http.NewRequest(http.MethodPost, e.url(oauth.PathAuthorize), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 || res.Header.Get("Location") != "" {
		t.Fatalf("cross-site post: %d", res.StatusCode)
	}
}
