package guard_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
)

// The caller classes of the operations matrix (README).
var (
	anon        = guard.Anonymous()
	platformKey = &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "plat", Platform: "plat"}
	signedOnly  = &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierSigned, Credential: guard.CredentialSignature, Profile: "https://p.example/.well-known/ucp"}
	dual        = &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "plat", Platform: "plat", BuyerID: "ada", Dual: true}
	merchant    = &guard.Principal{Kind: guard.KindMerchant, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "m", Store: "flower-shop", Scopes: []string{"orders:read"}}
	buyerBuy    = &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "agent", Platform: "plat", BuyerID: "ada", Scopes: []string{"purchase:complete"}}
	buyerManage = &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "agent", Platform: "plat", BuyerID: "ada", Scopes: []string{"dev.ucp.shopping.checkout:manage"}}
	buyerRead   = &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "agent", Platform: "plat", BuyerID: "ada", Scopes: []string{"dev.ucp.shopping.catalog.search:read", "orders:read"}}
	app         = &guard.Principal{Kind: guard.KindApp, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "script"}
)

// TestPolicyMatrix checks every row of the operations table for every
// caller class, allowed and refused, with the refusal's status and code.
// The expectations are written out here, not derived from the table.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	type caller struct {
		name string
		p    *guard.Principal
	}
	callers := []caller{{"anonymous", anon}, {"platform key", platformKey}, {"signed only", signedOnly}, {"key+bearer", dual},
		{"merchant at its store", merchant}, {"buyer purchase", buyerBuy}, {"buyer checkout:manage", buyerManage},
		{"buyer read-only", buyerRead}, {"app-only", app}}
	const (
		ok    = ""
		auth  = "401 identity_required"
		forb  = "403 forbidden"
		scope = "403 insufficient_scope"
		conf  = "403 credential_conflict"
	)
	// Columns in the order of callers.
	catalog := []string{ok, ok, ok, ok, ok, ok, ok, ok, ok}
	cart := []string{auth, ok, ok, ok, ok, ok, ok, scope, forb}
	session := []string{auth, ok, ok, ok, ok, ok, ok, scope, forb}
	complete := []string{auth, ok, ok, conf, scope, ok, scope, scope, forb}
	prepare := []string{auth, forb, forb, conf, forb, ok, scope, scope, forb}
	order := []string{auth, ok, ok, ok, ok, scope, scope, ok, forb}
	account := []string{auth, forb, forb, conf, forb, ok, scope, scope, forb}
	accountOrders := []string{auth, forb, forb, conf, forb, ok, scope, ok, forb}
	settings := []string{auth, forb, forb, forb, ok, forb, forb, forb, forb}
	want := map[guard.Operation][]string{
		guard.OpSearchCatalog: catalog, guard.OpLookupCatalog: catalog, guard.OpGetProduct: catalog,
		guard.OpSearchLocations: catalog, guard.OpLookupLocations: catalog,
		guard.OpCreateCart: cart, guard.OpGetCart: cart, guard.OpUpdateCart: cart, guard.OpCancelCart: cart,
		guard.OpCreateCheckout: session, guard.OpGetCheckout: session, guard.OpUpdateCheckout: session, guard.OpCancelCheckout: session,
		guard.OpCompleteCheckout: complete, guard.OpPrepareCheckoutPayment: prepare, guard.OpGetOrder: order,
		guard.OpGetBuyerContext: account, guard.OpListMyAddresses: account, guard.OpListMyOrders: accountOrders, guard.OpGetMyOrder: accountOrders,
		guard.OpListMyAgentAuthorizations: account, guard.OpRevokeAgentAuthorization: account, guard.OpUpdateSpendingLimits: account,
		guard.OpGetWebhookSettings: settings, guard.OpUpdateWebhookSettings: settings,
	}
	if len(guard.Operations()) != len(want) {
		t.Fatalf("the table has %d operations, the matrix %d: %v", len(guard.Operations()), len(want), guard.Operations())
	}
	for _, op := range guard.Operations() {
		row, found := want[op]
		if !found {
			t.Errorf("operation %s is not in the matrix", op)
			continue
		}
		for i, c := range callers {
			store := "flower-shop" // the merchant's own store
			err := guard.Authorize(c.p, op, store)
			got := ok
			var ge *guard.Error
			if errors.As(err, &ge) {
				got = fmt.Sprintf("%d %s", ge.Status, ge.Code)
			} else if err != nil {
				got = err.Error()
			}
			if got != row[i] {
				t.Errorf("%s by %s: %q, want %q", op, c.name, got, row[i])
			}
		}
	}
	var ge *guard.Error
	if err := guard.Authorize(platformKey, "refund_everything", ""); !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Fatalf("operation without a rule: %v", err)
	}
}

// TestMerchantConfinedToItsStore: a merchant credential is refused at any
// other store and at the cross-store surfaces, for every operation.
func TestMerchantConfinedToItsStore(t *testing.T) {
	t.Parallel()
	for _, op := range guard.Operations() {
		for _, store := range []string{"kyoto-tea", ""} {
			var ge *guard.Error
			if err := guard.Authorize(merchant, op, store); !errors.As(err, &ge) || ge.Code != "wrong_store" || ge.Status != http.StatusForbidden {
				t.Errorf("%s at %q: %v", op, store, err)
			}
		}
	}
}

// TestWebhookSettingsNeedOrdersRead: the store's order events URL
// receives every order, so a merchant token without orders:read may
// neither read nor change it (403 insufficient_scope naming the scope);
// refusals of other callers say the operation is the merchant's.
func TestWebhookSettingsNeedOrdersRead(t *testing.T) {
	t.Parallel()
	completeOnly := &guard.Principal{Kind: guard.KindMerchant, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "m",
		Store: "flower-shop", Scopes: []string{"purchase:complete"}}
	for _, op := range []guard.Operation{guard.OpGetWebhookSettings, guard.OpUpdateWebhookSettings} {
		var ge *guard.Error
		if err := guard.Authorize(completeOnly, op, "flower-shop"); !errors.As(err, &ge) || ge.Code != "insufficient_scope" || ge.Scope != "orders:read" {
			t.Errorf("%s without orders:read: %v", op, err)
		}
		if err := guard.Authorize(platformKey, op, "flower-shop"); !errors.As(err, &ge) || !strings.Contains(ge.Content, "merchant") {
			t.Errorf("%s by a platform: %v", op, err)
		}
		if err := guard.Authorize(anon, op, "flower-shop"); !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized || !strings.Contains(ge.Content, "merchant token") {
			t.Errorf("%s anonymously: %v", op, err)
		}
	}
}

func TestOwner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    *guard.Principal
		want string
	}{
		{nil, ""},
		{anon, ""},
		{platformKey, "platform:plat"},
		{dual, "platform:plat"},
		{signedOnly, "profile:https://p.example/.well-known/ucp"},
		{merchant, "store:flower-shop|client:m"},
		{buyerBuy, "platform:plat|buyer:ada"},
		{&guard.Principal{Kind: guard.KindBuyer, ClientID: "loner", BuyerID: "b1"}, "client:loner|buyer:b1"},
		{app, "client:script"},
	} {
		if got := tc.p.Owner(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestMaySession is the Artos session rule: a platform's checkout is
// claimed by a buyer of one of its clients; the platform keeps reaching
// it; nobody else does.
func TestMaySession(t *testing.T) {
	t.Parallel()
	otherPlatform := &guard.Principal{Kind: guard.KindPlatform, Credential: guard.CredentialAPIKey, ClientID: "rival", Platform: "rival"}
	otherBuyer := &guard.Principal{Kind: guard.KindBuyer, Credential: guard.CredentialBearer, ClientID: "agent", Platform: "plat", BuyerID: "bob"}
	rivalBuyer := &guard.Principal{Kind: guard.KindBuyer, Credential: guard.CredentialBearer, ClientID: "x", Platform: "rival", BuyerID: "ada"}
	loner := &guard.Principal{Kind: guard.KindBuyer, Credential: guard.CredentialBearer, ClientID: "loner", BuyerID: "ada"}
	for _, tc := range []struct {
		name      string
		p         *guard.Principal
		owner     string
		ok, claim bool
	}{
		{"platform, its own", platformKey, "platform:plat", true, false},
		{"buyer of the platform claims it", buyerBuy, "platform:plat", true, true},
		{"the buyer, once claimed", buyerBuy, "platform:plat|buyer:ada", true, false},
		{"the platform, after the claim", platformKey, "platform:plat|buyer:ada", true, false},
		{"key+bearer, after the claim", dual, "platform:plat|buyer:ada", true, false},
		{"another buyer of the platform, after the claim", otherBuyer, "platform:plat|buyer:ada", false, false},
		{"another platform", otherPlatform, "platform:plat", false, false},
		{"another platform, claimed", otherPlatform, "platform:plat|buyer:ada", false, false},
		{"a buyer of another platform", rivalBuyer, "platform:plat", false, false},
		{"a buyer of no platform", loner, "platform:plat", false, false},
		{"a merchant", merchant, "platform:plat", false, false},
		{"anonymous", anon, "platform:plat", false, false},
		{"anonymous, empty owner", anon, "", false, false},
	} {
		ok, claim := tc.p.MaySession(tc.owner)
		if ok != tc.ok || claim != tc.claim {
			t.Errorf("%s: (%v, %v), want (%v, %v)", tc.name, ok, claim, tc.ok, tc.claim)
		}
	}
}

func TestMayReadOrder(t *testing.T) {
	t.Parallel()
	byBuyer := guard.OrderParty{Owner: "platform:plat|buyer:ada", ClientID: "agent", BuyerID: "ada", Store: "flower-shop"}
	byKey := guard.OrderParty{Owner: "platform:plat", ClientID: "plat", Store: "flower-shop"}
	bySigned := guard.OrderParty{Owner: "profile:https://p.example/.well-known/ucp", Store: "flower-shop"}
	rival := &guard.Principal{Kind: guard.KindPlatform, Credential: guard.CredentialAPIKey, ClientID: "rival", Platform: "rival"}
	bob := &guard.Principal{Kind: guard.KindBuyer, Credential: guard.CredentialBearer, ClientID: "agent", Platform: "plat", BuyerID: "bob"}
	otherMerchant := &guard.Principal{Kind: guard.KindMerchant, Credential: guard.CredentialBearer, ClientID: "m2", Store: "kyoto-tea"}
	for _, tc := range []struct {
		name string
		p    *guard.Principal
		o    guard.OrderParty
		want bool
	}{
		{"the platform, its key's order", platformKey, byKey, true},
		{"the platform, its buyer's order", platformKey, byBuyer, true},
		{"another platform", rival, byBuyer, false},
		{"the buyer", buyerRead, byBuyer, true},
		{"the buyer, an order the platform placed for nobody", buyerRead, byKey, false},
		{"another buyer", bob, byBuyer, false},
		{"the store's merchant", merchant, byBuyer, true},
		{"another store's merchant", otherMerchant, byBuyer, false},
		{"the signed platform, its order", signedOnly, bySigned, true},
		{"the signed platform, another's order", signedOnly, byKey, false},
		{"anonymous", anon, bySigned, false},
		{"nil", nil, byKey, false},
	} {
		if got := tc.p.MayReadOrder(tc.o); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
