package authserver_test

import (
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// TestExchangeNeverForPlatformAPITokens (review 12): the platform API's
// own URLs are never a platform application's resource. The store-only
// registration `ucpbridge client add --resource` uses
// (oauth.RegisterResource) cannot tell them, so a platform whose
// operator registered, say, the platform's MCP endpoint or a store's URL
// as "its bridge" must still not be able to exchange the buyer tokens
// other platforms' agents hold for the platform API.
func TestExchangeNeverForPlatformAPITokens(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	ctx := t.Context()
	for _, res := range []string{e.p.URL + "/mcp", e.p.StoreURL("flower-shop"), e.p.StoreURL("flower-shop") + "/mcp"} {
		// What `client add --resource` does: it holds only the store.
		if err := oauth.RegisterResource(ctx, e.p.Store, e.idB, res, time.Now()); err != nil {
			// Refused at registration is a fix too.
			continue
		}
		sub := e.buyerToken(res, "purchase:complete", nil) // the demo agent, platform A's
		e.refused("platform B exchanging a platform API token for "+res, e.exchange(e.keyB, sub.AccessToken, nil), 400, "invalid_grant")
	}
}
