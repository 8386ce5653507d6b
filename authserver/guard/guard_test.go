package guard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

const (
	merchantID = "flower-shop-keys"
	platformID = "acme-platform"
	scriptID   = "ada-script"
)

// newGuard serves an OAuth server with a platform application, a
// merchant client bound to flower-shop, a script app and a public agent
// app of the platform, and returns a guard over it, the token URL and
// the shared secret of the confidential clients.
func newGuard(t *testing.T) (*guard.Guard, string, string) {
	t.Helper()
	st := sqlstoretest.SQLite(t)
	srv := httptest.NewUnstartedServer(nil)
	as, err := oauth.New(oauth.Config{Issuer: "http://" + srv.Listener.Addr().String(), Store: st, DisableRateLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as
	srv.Start()
	t.Cleanup(srv.Close)
	secret, hash := oauth.NewClientSecret()
	ctx := context.Background()
	for _, c := range []*store.Client{
		{ID: merchantID, Type: store.ClientWeb, Name: "Flower shop", SecretHash: hash, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"orders:read"}, Role: store.RoleMerchant, Store: "flower-shop", CreatedAt: time.Now()},
		{ID: platformID, Type: store.ClientWeb, Name: "Acme", SecretHash: hash, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"dev.ucp.shopping.catalog.search:read"}, Role: store.RolePlatform, Platform: platformID, CreatedAt: time.Now()},
		{ID: scriptID, Type: store.ClientScript, Name: "Script", SecretHash: hash, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"dev.ucp.shopping.catalog.search:read"}, CreatedAt: time.Now()},
		{ID: "demo-agent", Type: store.ClientInstalled, Name: "Agent", RedirectURIs: []string{"http://127.0.0.1/cb"}, Platform: platformID, CreatedAt: time.Now()},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	g, err := guard.New(guard.Config{Credentials: as, Realm: "https://api.example"})
	if err != nil {
		t.Fatal(err)
	}
	return g, srv.URL + oauth.PathToken, secret
}

// TestIdentify: a platform application's API key (<client_id>.<secret>)
// and bearer tokens identify the caller; a merchant's or a script app's
// secret is no API key; no credential is the anonymous principal;
// anything wrong is a 401.
func TestIdentify(t *testing.T) {
	t.Parallel()
	g, tokenURL, secret := newGuard(t)
	token := func(id, scope string) string {
		cc := &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{scope}}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	merchant, platform, script := token(merchantID, "orders:read"), token(platformID, "dev.ucp.shopping.catalog.search:read"),
		token(scriptID, "dev.ucp.shopping.catalog.search:read")
	key := platformID + "." + secret
	for _, tc := range []struct {
		name         string
		apiKey, auth string
		want         guard.Principal
		refused      error // the cause; nil when allowed
	}{
		{"none", "", "", guard.Principal{Kind: guard.KindAnonymous, Tier: guard.TierAnonymous}, nil},
		{"platform key", key, "", guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: platformID, Platform: platformID}, nil},
		{"merchant secret is no API key", merchantID + "." + secret, "", guard.Principal{}, oauth.ErrNotPlatformKey},
		{"script secret is no API key", scriptID + "." + secret, "", guard.Principal{}, oauth.ErrNotPlatformKey},
		{"key with a bogus bearer", key, "Bearer ucpb_at_bogus", guard.Principal{}, oauth.ErrInvalidToken},
		{"key with an app-only bearer", key, "Bearer " + platform, guard.Principal{}, nil /* checked below */},
		{"merchant bearer", "", "Bearer " + merchant, guard.Principal{Kind: guard.KindMerchant, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: merchantID, Store: "flower-shop", Scopes: []string{"orders:read"}}, nil},
		{"bearer scheme is case-insensitive", "", "bearer " + merchant, guard.Principal{Kind: guard.KindMerchant, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: merchantID, Store: "flower-shop", Scopes: []string{"orders:read"}}, nil},
		{"platform app-only bearer", "", "Bearer " + platform, guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: platformID, Platform: platformID, Scopes: []string{"dev.ucp.shopping.catalog.search:read"}}, nil},
		{"script app-only bearer", "", "Bearer " + script, guard.Principal{Kind: guard.KindApp, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: scriptID, Scopes: []string{"dev.ucp.shopping.catalog.search:read"}}, nil},
		{"wrong secret", platformID + ".ucpb_cs_wrong", "", guard.Principal{}, oauth.ErrInvalidAPIKey},
		{"unknown client", "nobody." + secret, "", guard.Principal{}, oauth.ErrInvalidAPIKey},
		{"public client has no secret", "demo-agent.x", "", guard.Principal{}, oauth.ErrInvalidAPIKey},
		{"no separator", secret, "", guard.Principal{}, oauth.ErrInvalidAPIKey},
		{"empty secret", platformID + ".", "", guard.Principal{}, oauth.ErrInvalidAPIKey},
		{"secret as bearer", "", "Bearer " + secret, guard.Principal{}, oauth.ErrInvalidToken},
		{"basic scheme", "", "Basic eDp5", guard.Principal{}, oauth.ErrInvalidToken},
		{"empty bearer", "", "Bearer  ", guard.Principal{}, oauth.ErrInvalidToken},
		{"unknown token", "", "Bearer ucpb_at_nope", guard.Principal{}, oauth.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/s/x/orders/1", nil)
			if tc.apiKey != "" {
				r.Header.Set("X-API-Key", tc.apiKey)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			p, err := g.Identify(r)
			if tc.name == "key with an app-only bearer" {
				// The bearer with a key must name a buyer of the same
				// platform.
				var ge *guard.Error
				if !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized || ge.Code != "credential_conflict" {
					t.Fatalf("err %v, want credential_conflict", err)
				}
				return
			}
			if tc.refused != nil {
				var ge *guard.Error
				if !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized || !errors.Is(err, tc.refused) {
					t.Fatalf("err %v, want a 401 *guard.Error caused by %v", err, tc.refused)
				}
				if ch := ge.Challenge("https://api.example", "https://api.example/.well-known/oauth-protected-resource/s/x"); !strings.Contains(ch, `error="invalid_token"`) ||
					!strings.Contains(ch, `realm="https://api.example"`) || !strings.Contains(ch, `resource_metadata="https://api.example/.well-known/oauth-protected-resource/s/x"`) {
					t.Fatalf("challenge %q", ch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.want.Kind || p.Tier != tc.want.Tier || p.Credential != tc.want.Credential || p.ClientID != tc.want.ClientID ||
				strings.Join(p.Scopes, " ") != strings.Join(tc.want.Scopes, " ") || p.BuyerID != "" || p.Store != tc.want.Store ||
				p.Platform != tc.want.Platform || p.Dual {
				t.Fatalf("principal %+v, want %+v", p, tc.want)
			}
		})
	}
}

// failingCredentials stands for a credential store that is down.
type failingCredentials struct{}

func (failingCredentials) ValidateAPIKey(context.Context, string) (string, error) {
	return "", errors.New("database is down")
}
func (failingCredentials) ValidateAccessToken(context.Context, string) (*oauth.TokenInfo, error) {
	return nil, errors.New("database is down")
}

// TestIdentifyUnavailable: a failing credential check is a 503, never a
// 401 (the caller's credential may be fine) and never anonymous.
func TestIdentifyUnavailable(t *testing.T) {
	t.Parallel()
	g, err := guard.New(guard.Config{Credentials: failingCredentials{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][2]string{{"X-API-Key", "a.b"}, {"Authorization", "Bearer ucpb_at_x"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(h[0], h[1])
		p, err := g.Identify(r)
		var ge *guard.Error
		if p != nil || !errors.As(err, &ge) || ge.Status != http.StatusServiceUnavailable || ge.RetryAfter == 0 {
			t.Fatalf("%s: %+v %v", h[0], p, err)
		}
	}
}

// tokenInfo is a fixed token for the buyer case.
type buyerCredentials struct{ failingCredentials }

func (buyerCredentials) ValidateAccessToken(context.Context, string) (*oauth.TokenInfo, error) {
	return &oauth.TokenInfo{ClientID: "agent", BuyerID: "buyer_ada", Scope: "purchase:complete dev.ucp.shopping.order:read",
		Resource: "https://api.example/s/flower-shop", GrantID: "gr_1"}, nil
}

func TestIdentifyBuyer(t *testing.T) {
	t.Parallel()
	g, _ := guard.New(guard.Config{Credentials: buyerCredentials{}})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer ucpb_at_x")
	p, err := g.Identify(r)
	if err != nil {
		t.Fatal(err)
	}
	want := guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "agent",
		BuyerID: "buyer_ada", Resource: "https://api.example/s/flower-shop", GrantID: "gr_1"}
	if p.Kind != want.Kind || p.Tier != want.Tier || p.ClientID != want.ClientID || p.BuyerID != want.BuyerID ||
		p.Resource != want.Resource || p.GrantID != want.GrantID || !p.HasScope("purchase:complete") || p.HasScope("orders:read") {
		t.Fatalf("%+v", p)
	}
}

// TestCheckResource: a token bound to a resource (RFC 8707) is good
// there and at the API root it names, nowhere else.
func TestCheckResource(t *testing.T) {
	t.Parallel()
	const api = "https://api.example"
	p := &guard.Principal{Kind: guard.KindBuyer, Credential: guard.CredentialBearer, Resource: api + "/s/flower-shop"}
	if err := p.CheckResource(api+"/s/flower-shop", api+"/s/flower-shop/mcp", api); err != nil {
		t.Fatal(err)
	}
	var ge *guard.Error
	if err := p.CheckResource(api+"/s/kyoto-tea", api+"/s/kyoto-tea/mcp", api); !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized {
		t.Fatalf("other store: %v", err)
	}
	p.Resource = api + "/"
	if err := p.CheckResource(api+"/s/kyoto-tea", api+"/s/kyoto-tea/mcp", api); err != nil {
		t.Fatalf("API-wide token: %v", err)
	}
	p.Resource = ""
	if err := p.CheckResource(api+"/account/mcp", api); err != nil {
		t.Fatalf("unbound token: %v", err)
	}
	// The key with a bearer: the bearer's binding still holds.
	dual := &guard.Principal{Kind: guard.KindPlatform, Credential: guard.CredentialAPIKey, Dual: true, BuyerID: "ada", Resource: api + "/account/mcp"}
	if err := dual.CheckResource(api+"/s/kyoto-tea", api+"/s/kyoto-tea/mcp", api); !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized {
		t.Fatalf("key with a bearer bound elsewhere: %v", err)
	}
}
