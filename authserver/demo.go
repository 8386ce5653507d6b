package authserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Demo fixtures, seeded by `ucpbridge dev` and the test harness
// (authservertest). They are documented in README.md and are for local use
// only: the secrets and the password are public.
const (
	DemoBuyerID        = "buyer_ada"
	DemoBuyerEmail     = "ada@example.com"
	DemoBuyerPassword  = "ucpbridge-demo"
	DemoAgentClientID  = "demo-agent"
	DemoMerchantID     = "demo-merchant"
	DemoMerchantSecret = "ucpb_cs_demo-merchant-secret-for-local-development-only"
	DemoPlatformID     = "demo-platform"
	DemoPlatformSecret = "ucpb_cs_demo-platform-key-for-local-development-only"
	// DemoPlatformKey is the demo platform's API key (X-API-Key):
	// "<client_id>.<secret>".
	DemoPlatformKey = DemoPlatformID + "." + DemoPlatformSecret
)

// DemoAgentRedirects are the demo agent's registered redirect URIs; any
// port is accepted on these loopback hosts.
var DemoAgentRedirects = []string{"http://127.0.0.1/callback", "http://localhost/callback"}

// SeedDemo creates the demo buyer, clients and stores once; later calls
// find them and keep what is there (a restarted dev server keeps its stock
// and orders).
func SeedDemo(ctx context.Context, st Store, now time.Time) error {
	for _, err := range []error{
		st.CreateBuyer(ctx, &store.Buyer{ID: DemoBuyerID, Email: DemoBuyerEmail, PasswordHash: oauth.HashPassword(DemoBuyerPassword), CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DemoAgentClientID, Type: store.ClientInstalled, Name: "Demo agent",
			RedirectURIs: DemoAgentRedirects, GrantTypes: []string{"authorization_code", "refresh_token"}, CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DemoMerchantID, Type: store.ClientWeb, Name: "Demo merchant",
			SecretHash: oauth.HashClientSecret(DemoMerchantSecret), GrantTypes: []string{"client_credentials"},
			Scopes: []string{"orders:read", "dev.ucp.shopping.catalog.search:read", "dev.ucp.shopping.catalog.lookup:read"}, CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DemoPlatformID, Type: store.ClientWeb, Name: "Demo platform",
			SecretHash: oauth.HashClientSecret(DemoPlatformSecret), GrantTypes: []string{"client_credentials"}, CreatedAt: now}),
	} {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return shop.Seed(ctx, st, shop.DemoShops(), now)
}
