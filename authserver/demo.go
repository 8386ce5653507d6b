package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
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

// DemoMerchantStore is the store the demo merchant's client is bound to.
const DemoMerchantStore = "flower-shop"

// DemoBuyerAccount is Ada's account: a default address, a saved sandbox
// card (success_token), which a buyer-bound card payment charges when the
// agent sends no card, and an Artos coupon.
var DemoBuyerAccount = store.AccountDoc{
	Name: "Ada Lovelace", Phone: "+33 1 23 45 67 89",
	Addresses: []store.SavedAddress{
		{Label: "home", Default: true, Address: json.RawMessage(`{"full_name":"Ada Lovelace","street_address":"12 rue des Fleurs","address_locality":"Paris","postal_code":"75011","address_country":"FR"}`)},
		{Label: "office", Address: json.RawMessage(`{"full_name":"Ada Lovelace","street_address":"3 Keizersgracht","address_locality":"Amsterdam","postal_code":"1015 CJ","address_country":"NL"}`)},
	},
	Card: &store.SavedCard{Token: "success_token", Brand: "visa", Last4: "4242"},
	// 15.00 USD of Artos credit on orders from 30.00 USD (energy-sport).
	Coupons: []store.SavedCoupon{{ID: "cpn_welcome", Title: "Welcome credit", Balance: 1500, Currency: "USD", MinSubtotal: 3000,
		ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}},
}

// DemoAgentRedirects are the demo agent's registered redirect URIs; any
// port is accepted on these loopback hosts.
var DemoAgentRedirects = []string{"http://127.0.0.1/callback", "http://localhost/callback"}

// SeedDemo creates the demo buyer, clients and stores once; later calls
// find them and keep what is there (a restarted dev server keeps its stock
// and orders).
func SeedDemo(ctx context.Context, st Store, now time.Time) error {
	account, err := json.Marshal(DemoBuyerAccount)
	if err != nil {
		return err
	}
	// The password hash (Argon2id, 64 MiB) is made only when the buyer
	// does not exist yet: hashing on every start is what kept a restarted
	// dev server's heap, and its RSS, at ~90 MB. The memory it took is
	// handed back to the OS right away instead of at the next scavenge.
	_, err = st.Buyer(ctx, DemoBuyerID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		b := &store.Buyer{ID: DemoBuyerID, Email: DemoBuyerEmail, PasswordHash: oauth.HashPassword(DemoBuyerPassword), Account: account, CreatedAt: now}
		debug.FreeOSMemory()
		if err := st.CreateBuyer(ctx, b); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("seed: %w", err)
		}
	case err != nil:
		return fmt.Errorf("seed: %w", err)
	}
	for _, c := range []*store.Client{
		{ID: DemoPlatformID, Type: store.ClientWeb, Name: "Demo platform", Role: store.RolePlatform,
			Platform: DemoPlatformID, SecretHash: oauth.HashClientSecret(DemoPlatformSecret), GrantTypes: []string{"client_credentials", oauth.GrantTypeTokenExchange}, CreatedAt: now},
		{ID: DemoAgentClientID, Type: store.ClientInstalled, Name: "Demo agent", Platform: DemoPlatformID,
			RedirectURIs: DemoAgentRedirects, GrantTypes: []string{"authorization_code", "refresh_token"}, CreatedAt: now},
		{ID: DemoMerchantID, Type: store.ClientWeb, Name: "Demo merchant", Role: store.RoleMerchant,
			Store: DemoMerchantStore, SecretHash: oauth.HashClientSecret(DemoMerchantSecret), GrantTypes: []string{"client_credentials"},
			Scopes: []string{"orders:read", "purchase:complete", "dev.ucp.shopping.catalog.search:read", "dev.ucp.shopping.catalog.lookup:read"}, CreatedAt: now},
	} {
		if err := seedClient(ctx, st, c); err != nil {
			return err
		}
	}
	return shop.Seed(ctx, st, shop.DemoShops(), now)
}

// seedClient creates a demo client, or brings one a data directory of an
// earlier build holds up to date (a demo client from before client roles
// would otherwise lose its platform key or its store binding).
func seedClient(ctx context.Context, st Store, c *store.Client) error {
	err := st.CreateClient(ctx, c)
	if !errors.Is(err, store.ErrConflict) {
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		return nil
	}
	old, err := st.Client(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if old.Role != c.Role || old.Platform != c.Platform || old.Store != c.Store {
		if err := st.UpdateClient(ctx, c); err != nil {
			return fmt.Errorf("seed: update %s: %w", c.ID, err)
		}
		return nil
	}
	// A grant type added since (the platform's token exchange) is added
	// to what is there; the rest stays as seeded, or as the developer
	// changed it since.
	missing := false
	for _, g := range c.GrantTypes {
		if !slices.Contains(old.GrantTypes, g) {
			old.GrantTypes, missing = append(old.GrantTypes, g), true
		}
	}
	if !missing {
		return nil
	}
	if err := st.UpdateClient(ctx, old); err != nil {
		return fmt.Errorf("seed: update %s: %w", c.ID, err)
	}
	return nil
}
