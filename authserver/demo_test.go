package authserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// TestSeedDemoUpgradesOldClients: a data directory from before client
// roles holds role-less demo clients; seeding again gives them their
// roles, so the demo platform key and merchant keep working. Seeding a
// third time changes nothing.
func TestSeedDemoUpgradesOldClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlstoretest.SQLite(t)
	for _, c := range []*store.Client{
		{ID: authserver.DemoPlatformID, Type: store.ClientWeb, Name: "Demo platform", SecretHash: oauth.HashClientSecret(authserver.DemoPlatformSecret),
			GrantTypes: []string{"client_credentials"}, CreatedAt: time.Now()},
		{ID: authserver.DemoMerchantID, Type: store.ClientWeb, Name: "Demo merchant", SecretHash: oauth.HashClientSecret(authserver.DemoMerchantSecret),
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders:read"}, CreatedAt: time.Now()},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := authserver.SeedDemo(ctx, st, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := st.Client(ctx, authserver.DemoPlatformID); err != nil || c.Role != store.RolePlatform {
		t.Fatalf("demo platform %+v %v", c, err)
	}
	if c, err := st.Client(ctx, authserver.DemoMerchantID); err != nil || c.Role != store.RoleMerchant || c.Store != authserver.DemoMerchantStore {
		t.Fatalf("demo merchant %+v %v", c, err)
	}
	if p, _ := st.ClientPlatform(ctx, authserver.DemoAgentClientID); p != authserver.DemoPlatformID {
		t.Fatalf("demo agent's platform %q", p)
	}
}
