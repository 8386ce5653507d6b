// Package authservertest boots the whole platform API in process for
// tests in any package (the SDK, the bridge, the examples): authserver.New
// on a random loopback port, the demo fixtures seeded, SQLite in a
// temporary directory, or PostgreSQL in a throwaway schema when
// UCPBRIDGE_TEST_PG is set. It returns the URLs and the seeded credentials,
// and can run the buyer's consent flow to mint a buyer token.
package authservertest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// Options adjusts the platform a test gets. nil means the defaults: dev
// rules (loopback CIMD and platform profiles, own capabilities when a
// profile is unreachable), no rate limits, the backend UCPBRIDGE_TEST_PG
// selects.
type Options struct {
	// SQLiteOnly keeps the test on SQLite even when UCPBRIDGE_TEST_PG is
	// set.
	SQLiteOnly bool
	// Config, when set, changes the configuration before New runs
	// (Issuer, Store and Keys are already filled in).
	Config func(*authserver.Config)
	// DynamicRegistration turns on RFC 7591 dynamic client registration
	// (oauth.Config.DynamicRegistration), as `ucpbridge dev` does.
	DynamicRegistration bool
	// BridgeResources are registered as protected resources of the demo
	// platform (an MCP bridge's endpoint URL) once it is seeded. A bridge
	// that learns its URL only after it listens calls
	// Platform.AddBridgeResource instead.
	BridgeResources []string
}

// Platform is a running platform API and its seeded credentials.
type Platform struct {
	// URL is the API host and OAuth issuer, e.g. http://127.0.0.1:41234.
	URL string
	// Server is the platform; Store its storage; Backend "sqlite" or
	// "postgres".
	Server  *authserver.Server
	Store   authserver.Store
	Backend string

	// OAuth endpoints.
	AuthorizeURL, TokenURL, MetadataURL string

	// The seeded credentials (authserver.Demo*).
	PlatformID, PlatformKey      string // X-API-Key: PlatformKey
	MerchantID, MerchantSecret   string // client_credentials
	AgentClientID, AgentRedirect string // public client, PKCE
	BuyerID, BuyerEmail          string
	BuyerPassword                string
	// Stores are the seeded store slugs.
	Stores []string
}

// Start serves the platform until the test ends.
func Start(t testing.TB, opts *Options) *Platform {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	var st authserver.Store
	backend := "postgres"
	if os.Getenv(sqlstoretest.EnvPG) != "" && !opts.SQLiteOnly {
		st = sqlstoretest.Postgres(t)
	} else {
		st, backend = sqlstoretest.SQLite(t), "sqlite"
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg := authserver.Config{Issuer: base, Store: st, Keys: &shop.MemoryKeys{}, Dev: true, DisableRateLimits: true}
	cfg.OAuth.DynamicRegistration = opts.DynamicRegistration
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	s, err := authserver.New(cfg)
	if err != nil {
		t.Fatalf("authservertest: %v", err)
	}
	if err := authserver.SeedDemo(context.Background(), st, time.Now()); err != nil {
		t.Fatalf("authservertest: %v", err)
	}
	for _, r := range opts.BridgeResources {
		if err := s.OAuth.RegisterResource(context.Background(), authserver.DemoPlatformID, r); err != nil {
			t.Fatalf("authservertest: %v", err)
		}
	}
	srv.Config.Handler = s
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	// Cleanups run last in, first out: stop the workers, then the server,
	// then (registered earlier) the store.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { cancel(); <-done })
	p := &Platform{
		URL: base, Server: s, Store: st, Backend: backend,
		AuthorizeURL: base + oauth.PathAuthorize, TokenURL: base + oauth.PathToken, MetadataURL: base + oauth.PathMetadata,
		PlatformID: authserver.DemoPlatformID, PlatformKey: authserver.DemoPlatformKey,
		MerchantID: authserver.DemoMerchantID, MerchantSecret: authserver.DemoMerchantSecret,
		AgentClientID: authserver.DemoAgentClientID, AgentRedirect: "http://127.0.0.1/callback",
		BuyerID: authserver.DemoBuyerID, BuyerEmail: authserver.DemoBuyerEmail, BuyerPassword: authserver.DemoBuyerPassword,
	}
	for _, sh := range shop.DemoShops() {
		p.Stores = append(p.Stores, sh.Slug)
	}
	return p
}

// AddBridgeResource registers resource (a bridge's MCP endpoint URL) as
// a protected resource of the demo platform: buyers may then authorize
// agents for it, and the demo platform key exchanges their tokens.
func (p *Platform) AddBridgeResource(ctx context.Context, resource string) error {
	return p.Server.OAuth.RegisterResource(ctx, p.PlatformID, resource)
}

// RegisterURL is the RFC 7591 registration endpoint (served with
// Options.DynamicRegistration).
func (p *Platform) RegisterURL() string { return p.URL + oauth.PathRegister }

// StoreURL is a store's base URL (REST; MCP at StoreURL + "/mcp").
func (p *Platform) StoreURL(slug string) string { return p.URL + "/s/" + slug }

// OAuth2Config is the demo agent's x/oauth2 configuration.
func (p *Platform) OAuth2Config(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.AgentClientID, RedirectURL: p.AgentRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
}

// Allowance is what the buyer types into the consent page's spending
// limits, in major units ("50", "120.50").
type Allowance struct {
	MaxPerOrder, DailyCap, Currency string
	Days                            int
}

// DefaultAllowance is 50.00 per order, 120.50 a day, EUR, for 30 days.
var DefaultAllowance = Allowance{MaxPerOrder: "50", DailyCap: "120.50", Currency: "EUR", Days: 30}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// BuyerToken runs the demo buyer through the consent page the way a
// browser would (sign in, set the allowance, allow) for the demo agent and
// exchanges the code with PKCE. scope is space-separated ("" is the
// server's default); al is used when the scope spends (nil means
// DefaultAllowance).
func (p *Platform) BuyerToken(ctx context.Context, scope string, al *Allowance) (*oauth2.Token, error) {
	conf := p.OAuth2Config(strings.Fields(scope)...)
	verifier := oauth2.GenerateVerifier()
	loc, err := p.SignIn(ctx, conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), &Consent{Allowance: al})
	if err != nil {
		return nil, err
	}
	return conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
}

// Consent is what the buyer does on the consent page. The zero value
// signs in the demo buyer and allows DefaultAllowance.
type Consent struct {
	// Email and Password sign in another buyer than the demo buyer.
	Email, Password string
	// Allowance is typed in when the scope spends; nil means
	// DefaultAllowance.
	Allowance *Allowance
}

// SignIn plays the buyer's browser on an authorization URL, whichever
// client built it (an MCP client's discovery flow, a test's own
// oauth2.Config): it opens the consent page, signs the buyer in, sets the
// allowance and allows. It returns where the page sends the browser: the
// client's redirect URI with code, state and iss. c may be nil.
func (p *Platform) SignIn(ctx context.Context, authURL string, c *Consent) (*url.URL, error) {
	if c == nil {
		c = &Consent{}
	}
	al, email, password := c.Allowance, c.Email, c.Password
	if al == nil {
		al = &DefaultAllowance
	}
	if email == "" {
		email, password = p.BuyerEmail, p.BuyerPassword
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	res, err := browser.Do(req)
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("authservertest: consent page: HTTP %d", res.StatusCode)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	form.Set("email", email)
	form.Set("password", password)
	form.Set("action", "approve")
	form.Set("max_per_order", al.MaxPerOrder)
	form.Set("daily_cap", al.DailyCap)
	form.Set("currency", al.Currency)
	form.Set("expires_days", fmt.Sprint(al.Days))
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.AuthorizeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = browser.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || err != nil {
		return nil, fmt.Errorf("authservertest: consent: HTTP %d", res.StatusCode)
	}
	if loc.Query().Get("code") == "" {
		return nil, errors.New("authservertest: consent returned no code: " + loc.Query().Get("error_description"))
	}
	return loc, nil
}
