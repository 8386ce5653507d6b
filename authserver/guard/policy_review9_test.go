package guard_test

import (
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
)

// TestReview9AccountToolsNeedNoScope: the account tools (/account/mcp)
// are "buyer bearer only" with no scope at all, so any token a buyer ever
// granted any agent, whatever the consent page told the buyer it was
// for, reads the buyer's profile, addresses and every order on every
// store and platform, and revokes or lowers the buyer's other agents. A
// buyer who approved "Search store catalogues" (the only line the
// consent page shows for dev.ucp.shopping.catalog.search:read) did not
// agree to any of that. Each account tool should need a scope the
// consent page names (e.g. an account read scope for the reads and
// purchase:complete or an account manage scope for revoke and
// update_spending_limits).
func TestReview9AccountToolsNeedNoScope(t *testing.T) {
	t.Parallel()
	catalogOnly := &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer,
		ClientID: "some-agent", Platform: "plat", BuyerID: "ada", Scopes: []string{"dev.ucp.shopping.catalog.search:read"}}
	for _, op := range []guard.Operation{guard.OpGetBuyerContext, guard.OpListMyAddresses, guard.OpListMyOrders, guard.OpGetMyOrder,
		guard.OpRevokeAgentAuthorization, guard.OpUpdateSpendingLimits} {
		if err := guard.Authorize(catalogOnly, op, ""); err == nil {
			t.Errorf("a buyer token granted only dev.ucp.shopping.catalog.search:read may %s", op)
		}
	}
}
