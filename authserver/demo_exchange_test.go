package authserver_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// TestSeedDemoAddsTokenExchange: a data directory whose demo platform
// predates token exchange gets the grant type on the next start, and
// keeps what the developer gave it (a CIMD URL, its name); its bridge
// resource survives the upgrade.
func TestSeedDemoAddsTokenExchange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlstoretest.SQLite(t)
	if err := st.CreateClient(ctx, &store.Client{ID: authserver.DemoPlatformID, Type: store.ClientWeb, Name: "My platform",
		Role: store.RolePlatform, Platform: authserver.DemoPlatformID, SecretHash: oauth.HashClientSecret(authserver.DemoPlatformSecret),
		GrantTypes: []string{"client_credentials"}, CIMD: []string{"https://agent.example/client.json"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := authserver.RegisterBridgeResource(ctx, st, authserver.DemoPlatformID, "http://127.0.0.1:9/mcp"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := authserver.SeedDemo(ctx, st, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.Client(ctx, authserver.DemoPlatformID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.GrantTypes, []string{"client_credentials", oauth.GrantTypeTokenExchange}) || c.Name != "My platform" ||
		!slices.Equal(c.CIMD, []string{"https://agent.example/client.json"}) {
		t.Fatalf("upgraded platform %+v", c)
	}
	if owner, err := st.ResourceOwner(ctx, "http://127.0.0.1:9/mcp"); err != nil || owner != authserver.DemoPlatformID {
		t.Fatalf("bridge resource %q %v", owner, err)
	}
	if err := authserver.RegisterBridgeResource(ctx, st, authserver.DemoAgentClientID, "http://127.0.0.1:8/mcp"); err == nil {
		t.Fatal("an app registered a bridge resource")
	}
}
