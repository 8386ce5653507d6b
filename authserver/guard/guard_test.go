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

const merchantID = "flower-shop-keys"

// newGuard serves an OAuth server with one confidential client and
// returns a guard over it, the token URL and the client's secret.
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
			Scopes: []string{"orders:read"}, CreatedAt: time.Now()},
		{ID: "demo-agent", Type: store.ClientInstalled, Name: "Agent", RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()},
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

// TestIdentify: the platform API key (<client_id>.<secret>) and bearer
// tokens identify the caller; the key wins over a bearer; no credential is
// the anonymous principal; anything wrong is a 401 with a challenge.
func TestIdentify(t *testing.T) {
	t.Parallel()
	g, tokenURL, secret := newGuard(t)
	cc := &clientcredentials.Config{ClientID: merchantID, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{"orders:read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key := merchantID + "." + secret
	for _, tc := range []struct {
		name         string
		apiKey, auth string
		want         guard.Principal
		refused      bool
	}{
		{"none", "", "", guard.Principal{Kind: guard.KindAnonymous, Tier: guard.TierAnonymous}, false},
		{"api key", key, "", guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: merchantID}, false},
		{"api key wins over bearer", key, "Bearer ucpb_at_bogus", guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: merchantID}, false},
		{"bearer", "", "Bearer " + tok.AccessToken, guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: merchantID, Scopes: []string{"orders:read"}}, false},
		{"bearer scheme is case-insensitive", "", "bearer " + tok.AccessToken, guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: merchantID, Scopes: []string{"orders:read"}}, false},
		{"wrong secret", merchantID + ".ucpb_cs_wrong", "", guard.Principal{}, true},
		{"unknown client", "nobody." + secret, "", guard.Principal{}, true},
		{"public client has no secret", "demo-agent.x", "", guard.Principal{}, true},
		{"no separator", secret, "", guard.Principal{}, true},
		{"empty secret", merchantID + ".", "", guard.Principal{}, true},
		{"secret as bearer", "", "Bearer " + secret, guard.Principal{}, true},
		{"basic scheme", "", "Basic eDp5", guard.Principal{}, true},
		{"empty bearer", "", "Bearer  ", guard.Principal{}, true},
		{"unknown token", "", "Bearer ucpb_at_nope", guard.Principal{}, true},
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
			if tc.refused {
				var ge *guard.Error
				if !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized || !strings.Contains(ge.Challenge, `error="invalid_token"`) ||
					!strings.Contains(ge.Challenge, `realm="https://api.example"`) {
					t.Fatalf("err %v, want a 401 *guard.Error with a challenge", err)
				}
				if !errors.Is(err, oauth.ErrInvalidAPIKey) && !errors.Is(err, oauth.ErrInvalidToken) {
					t.Fatalf("cause lost: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.want.Kind || p.Tier != tc.want.Tier || p.Credential != tc.want.Credential || p.ClientID != tc.want.ClientID ||
				strings.Join(p.Scopes, " ") != strings.Join(tc.want.Scopes, " ") || p.BuyerID != "" {
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

// TestPolicyEveryRow: every operation has a rule, and today's table lets
// every kind of caller run every operation (objects are guarded by Owner
// and MayReadOrder). An operation without a rule is refused.
func TestPolicyEveryRow(t *testing.T) {
	t.Parallel()
	ops := guard.Operations()
	if len(ops) != 13 {
		t.Fatalf("%d operations in the table: %v", len(ops), ops)
	}
	callers := []*guard.Principal{
		nil,
		guard.Anonymous(),
		{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "platform"},
		{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "merchant", Scopes: []string{"orders:read"}},
		{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "agent", BuyerID: "b"},
	}
	for _, op := range ops {
		for _, p := range callers {
			if err := guard.Authorize(p, op); err != nil {
				t.Errorf("%s by %+v: %v", op, p, err)
			}
		}
	}
	var ge *guard.Error
	if err := guard.Authorize(guard.Anonymous(), "refund_everything"); !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Fatalf("operation without a rule: %v", err)
	}
}

func TestOwner(t *testing.T) {
	t.Parallel()
	const prof = "https://agent.example/.well-known/ucp"
	for _, tc := range []struct {
		p    *guard.Principal
		want string
	}{
		{nil, "profile:" + prof},
		{guard.Anonymous(), "profile:" + prof},
		{&guard.Principal{Kind: guard.KindPlatform, ClientID: "p"}, "client:p"},
		{&guard.Principal{Kind: guard.KindBuyer, ClientID: "agent", BuyerID: "b1"}, "client:agent|buyer:b1"},
	} {
		if got := tc.p.Owner(prof); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestMayReadOrder(t *testing.T) {
	t.Parallel()
	const prof = "https://agent.example/.well-known/ucp"
	placedByBuyer := guard.OrderParty{Owner: "client:agent|buyer:b1", ClientID: "agent", BuyerID: "b1"}
	placedAnon := guard.OrderParty{Owner: "profile:" + prof}
	for _, tc := range []struct {
		name string
		p    *guard.Principal
		o    guard.OrderParty
		want bool
	}{
		{"the session owner", &guard.Principal{Kind: guard.KindBuyer, ClientID: "agent", BuyerID: "b1"}, placedByBuyer, true},
		{"its platform, app-wide", &guard.Principal{Kind: guard.KindPlatform, ClientID: "agent"}, placedByBuyer, true},
		{"another platform", &guard.Principal{Kind: guard.KindPlatform, ClientID: "other"}, placedByBuyer, false},
		{"the buyer through another app, with order read", &guard.Principal{Kind: guard.KindBuyer, ClientID: "app2", BuyerID: "b1",
			Scopes: []string{"dev.ucp.shopping.order:read"}}, placedByBuyer, true},
		{"the buyer through another app, orders:read", &guard.Principal{Kind: guard.KindBuyer, ClientID: "app2", BuyerID: "b1",
			Scopes: []string{"orders:read"}}, placedByBuyer, true},
		{"the buyer through another app, no read scope", &guard.Principal{Kind: guard.KindBuyer, ClientID: "app2", BuyerID: "b1",
			Scopes: []string{"purchase:complete"}}, placedByBuyer, false},
		{"another buyer with read scope", &guard.Principal{Kind: guard.KindBuyer, ClientID: "agent", BuyerID: "b2",
			Scopes: []string{"orders:read"}}, placedByBuyer, false},
		{"anonymous", guard.Anonymous(), placedByBuyer, false},
		{"anonymous, same profile", guard.Anonymous(), placedAnon, true},
		{"anonymous, other profile", guard.Anonymous(), guard.OrderParty{Owner: "profile:https://x.example/p"}, false},
		{"a platform, anonymous order", &guard.Principal{Kind: guard.KindPlatform, ClientID: "p"}, placedAnon, false},
	} {
		if got := tc.p.MayReadOrder(prof, tc.o); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
