package guard

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Operation is a platform API operation, named as its MCP tool.
type Operation string

// The store operations (UCP shopping service).
const (
	OpSearchCatalog    Operation = "search_catalog"
	OpLookupCatalog    Operation = "lookup_catalog"
	OpGetProduct       Operation = "get_product"
	OpCreateCart       Operation = "create_cart"
	OpGetCart          Operation = "get_cart"
	OpUpdateCart       Operation = "update_cart"
	OpCancelCart       Operation = "cancel_cart"
	OpCreateCheckout   Operation = "create_checkout"
	OpGetCheckout      Operation = "get_checkout"
	OpUpdateCheckout   Operation = "update_checkout"
	OpCompleteCheckout Operation = "complete_checkout"
	OpCancelCheckout   Operation = "cancel_checkout"
	OpGetOrder         Operation = "get_order"
	// OpPrepareCheckoutPayment builds a crypto payment intent (Artos).
	OpPrepareCheckoutPayment Operation = "prepare_checkout_payment"
	// The store's physical locations (the UCP location capability's
	// search and lookup; the Artos bridge's tools).
	OpSearchLocations Operation = "search_locations"
	OpLookupLocations Operation = "lookup_locations"
)

// The buyer account operations (/account/mcp).
const (
	OpGetBuyerContext           Operation = "get_buyer_context"
	OpListMyAddresses           Operation = "list_my_addresses"
	OpListMyOrders              Operation = "list_my_orders"
	OpGetMyOrder                Operation = "get_my_order"
	OpListMyAgentAuthorizations Operation = "list_my_agent_authorizations"
	OpRevokeAgentAuthorization  Operation = "revoke_agent_authorization"
	OpUpdateSpendingLimits      Operation = "update_spending_limits"
)

// The store's own settings, managed by its merchant (REST only: they are
// no UCP operation, so no store MCP endpoint lists them).
const (
	// OpGetWebhookSettings reads where the store's order events go.
	OpGetWebhookSettings Operation = "get_webhook_settings"
	// OpUpdateWebhookSettings sets or removes the store's order events URL.
	OpUpdateWebhookSettings Operation = "update_webhook_settings"
)

// Scopes the table names.
const (
	ScopePurchase       = "purchase:complete"
	ScopeCheckoutManage = "dev.ucp.shopping.checkout:manage"
	ScopeCartManage     = "dev.ucp.shopping.cart:manage"
	ScopeOrdersRead     = "orders:read"
	ScopeOrderRead      = "dev.ucp.shopping.order:read"
)

// Rule is who may run an operation.
type Rule struct {
	// Kinds that may call; empty means every kind, anonymous included.
	// Anonymous callers refused by Kinds get 401 (authenticate and
	// retry), everyone else 403.
	Kinds []Kind
	// Scopes: a bearer token of the kind must hold at least one of the
	// listed scopes (a kind absent from the map needs none). API keys
	// carry no scopes and are judged by Kinds alone.
	Scopes map[Kind][]string
	// BuyerBound: the operation spends or reads a buyer's own account,
	// so it runs on the buyer's bearer alone. The key with a bearer is
	// refused, never run as the platform.
	BuyerBound bool
	// MinTier is the weakest trust tier accepted; "" means any.
	MinTier Tier
}

var (
	anyCaller   = Rule{}
	sessionRule = Rule{Kinds: []Kind{KindPlatform, KindMerchant, KindBuyer}, Scopes: map[Kind][]string{KindBuyer: {ScopePurchase, ScopeCheckoutManage}}}
	cartRule    = Rule{Kinds: []Kind{KindPlatform, KindMerchant, KindBuyer}, Scopes: map[Kind][]string{KindBuyer: {ScopePurchase, ScopeCheckoutManage, ScopeCartManage}}}
	// The account tools act on the buyer's whole account (every store,
	// every agent): a bearer needs the scope of an agent the buyer let
	// shop, or one that reads orders; a catalog-only grant gets nothing.
	accountRule       = Rule{Kinds: []Kind{KindBuyer}, BuyerBound: true, Scopes: map[Kind][]string{KindBuyer: {ScopePurchase}}}
	accountOrdersRule = Rule{Kinds: []Kind{KindBuyer}, BuyerBound: true, Scopes: map[Kind][]string{KindBuyer: {ScopePurchase, ScopeOrdersRead, ScopeOrderRead}}}
	completeRule      = Rule{Kinds: []Kind{KindPlatform, KindMerchant, KindBuyer}, BuyerBound: true,
		Scopes: map[Kind][]string{KindBuyer: {ScopePurchase}, KindMerchant: {ScopePurchase}}}
	// merchantRule: the store's merchant alone, with orders:read: the
	// order events URL receives every order the store takes, so a token
	// that may not read the store's orders may neither see nor redirect
	// where they go.
	merchantRule = Rule{Kinds: []Kind{KindMerchant}, Scopes: map[Kind][]string{KindMerchant: {ScopeOrdersRead}}}
)

// policy is the operations table: one rule per operation, read by
// Authorize and rendered in README.md (TestPolicyTable keeps them equal).
// What a caller may see within an allowed operation is decided per
// object: MaySession for carts and checkouts, MayReadOrder for orders;
// a merchant is confined to its store by Authorize.
var policy = map[Operation]Rule{
	OpSearchCatalog:          anyCaller,
	OpLookupCatalog:          anyCaller,
	OpGetProduct:             anyCaller,
	OpSearchLocations:        anyCaller, // public like the catalog: where the shops are, when they open, what they carry
	OpLookupLocations:        anyCaller,
	OpCreateCart:             cartRule,
	OpGetCart:                cartRule,
	OpUpdateCart:             cartRule,
	OpCancelCart:             cartRule,
	OpCreateCheckout:         sessionRule,
	OpGetCheckout:            sessionRule,
	OpUpdateCheckout:         sessionRule,
	OpCancelCheckout:         sessionRule,
	OpCompleteCheckout:       completeRule,
	OpPrepareCheckoutPayment: {Kinds: []Kind{KindBuyer}, BuyerBound: true, Scopes: map[Kind][]string{KindBuyer: {ScopePurchase}}},
	OpGetOrder: {Kinds: []Kind{KindPlatform, KindMerchant, KindBuyer},
		Scopes: map[Kind][]string{KindBuyer: {ScopeOrdersRead, ScopeOrderRead}, KindMerchant: {ScopeOrdersRead}}},
	OpGetBuyerContext:           accountRule,
	OpListMyAddresses:           accountRule,
	OpListMyOrders:              accountOrdersRule,
	OpGetMyOrder:                accountOrdersRule,
	OpListMyAgentAuthorizations: accountRule,
	OpRevokeAgentAuthorization:  accountRule,
	OpUpdateSpendingLimits:      accountRule,
	OpGetWebhookSettings:        merchantRule,
	OpUpdateWebhookSettings:     merchantRule,
}

var tierRank = map[Tier]int{TierAnonymous: 0, TierToken: 1, TierSigned: 2}

// Authorize decides whether p may run op at store (a store slug; "" for
// the cross-store catalog and the account) by the policy table. An
// unknown operation is refused: a new operation must be given a rule.
// Refusals are *Error: 401 for anonymous callers that must authenticate,
// 403 otherwise (insufficient_scope names the scopes that would do).
func Authorize(p *Principal, op Operation, store string) error {
	rule, ok := policy[op]
	if !ok {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("operation %s has no access rule", op)}
	}
	if p == nil {
		p = Anonymous()
	}
	// A merchant's credential is its store's and nobody else's: at
	// another store, or at the cross-store surfaces, it is no credential
	// the platform honours.
	if p.Kind == KindMerchant && p.Store != store {
		return &Error{Status: http.StatusForbidden, Code: "wrong_store",
			Content: fmt.Sprintf("this merchant credential is bound to the store %q and is not valid here", p.Store)}
	}
	return rule.check(p, op)
}

// Lookup returns op's rule.
func Lookup(op Operation) (Rule, bool) {
	r, ok := policy[op]
	return r, ok
}

// Operations lists the operations the table has a rule for.
func Operations() []Operation {
	ops := make([]Operation, 0, len(policy))
	for op := range policy {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

func (rule Rule) check(p *Principal, op Operation) error {
	if p == nil {
		p = Anonymous()
	}
	// Before the kinds: the key with a bearer is the platform by kind,
	// and the caller must learn the rule it broke, not that platforms
	// may not call a buyer's operation.
	if rule.BuyerBound && p.Dual {
		return &Error{Status: http.StatusForbidden, Code: "credential_conflict",
			Content: fmt.Sprintf("%s is buyer-bound: send the buyer's bearer token alone, without X-API-Key (a key with a bearer is never run as the platform)", op)}
	}
	if len(rule.Kinds) > 0 && !slices.Contains(rule.Kinds, p.Kind) {
		if p.Kind == KindAnonymous {
			need := "a platform API key or an OAuth bearer token"
			if slices.Equal(rule.Kinds, []Kind{KindMerchant}) {
				need = "the store's merchant token (client_credentials)"
			}
			return &Error{Status: http.StatusUnauthorized, Code: "identity_required",
				Content: fmt.Sprintf("%s needs a credential: %s", op, need)}
		}
		if slices.Equal(rule.Kinds, []Kind{KindMerchant}) {
			return &Error{Status: http.StatusForbidden, Code: "forbidden",
				Content: fmt.Sprintf("%s is the store's merchant's alone (its client_credentials token); %s callers may not call it", op, p.Kind)}
		}
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("%s callers may not %s", p.Kind, op)}
	}
	if rule.MinTier != "" && tierRank[p.Tier] < tierRank[rule.MinTier] {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("%s needs a %s caller", op, rule.MinTier)}
	}
	if need := rule.Scopes[p.Kind]; len(need) > 0 && p.Credential == CredentialBearer && !slices.ContainsFunc(need, p.HasScope) {
		return &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Scope: strings.Join(need, " "),
			Content: fmt.Sprintf("%s needs one of the scopes %s", op, strings.Join(need, ", "))}
	}
	return nil
}

// Owner is the key a caller's sessions (carts, checkouts) are filed under.
// A platform's sessions are its application's, whichever of its
// credentials made them; a buyer's are narrowed to the buyer (two buyers
// of one agent app never share sessions); a merchant's to its store and
// client; a caller known only by a verified signature, to its profile.
// Anonymous callers own nothing ("").
func (p *Principal) Owner() string {
	switch {
	case p == nil || p.Kind == KindAnonymous:
		return ""
	case p.Kind == KindMerchant:
		return "store:" + p.Store + "|client:" + p.ClientID
	case p.ClientID == "" && p.Profile != "":
		return "profile:" + p.Profile
	}
	base := "client:" + p.ClientID
	if p.Platform != "" {
		base = "platform:" + p.Platform
	}
	if p.BuyerID != "" && !p.Dual {
		return base + "|buyer:" + p.BuyerID
	}
	return base
}

// MaySession reports whether p may use a cart or checkout filed under
// owner, and whether p claims it. The Artos buyer flow: a checkout the
// platform created with its key is completed with the bearer of a buyer
// signed in through one of the same platform's OAuth clients; that buyer
// claims it (it is refiled under the buyer), and from then on it is the
// buyer's, which the platform's own credentials still reach. Everyone
// else, other buyers and other platforms, is refused (reported not found).
func (p *Principal) MaySession(owner string) (ok, claim bool) {
	mine := p.Owner()
	if mine == "" || owner == "" {
		return false, false
	}
	if owner == mine {
		return true, false
	}
	if p.Platform == "" || p.Kind == KindMerchant {
		return false, false
	}
	platform := "platform:" + p.Platform
	switch {
	case p.Kind == KindBuyer && owner == platform:
		return true, true
	case p.BuyerID == "" || p.Dual:
		// The platform itself (key, app-only token, or key with its
		// buyer's bearer) reaches its buyers' sessions.
		return strings.HasPrefix(owner, platform+"|buyer:"), false
	}
	return false, false
}

// OrderParty is who an order was placed by: the owner of its checkout
// session, the client and buyer of the credential that completed it, and
// its store.
type OrderParty struct {
	Owner    string
	ClientID string
	BuyerID  string
	Store    string
}

// MayReadOrder reports whether p may read an order: a platform, the
// orders placed under its application (by its key, its tokens, or its
// buyers through its clients); a merchant, its store's orders; a buyer,
// the buyer's own orders; a caller known by a verified signature, the
// orders it placed. Anonymous callers never.
func (p *Principal) MayReadOrder(o OrderParty) bool {
	if p == nil || p.Kind == KindAnonymous {
		return false
	}
	switch p.Kind {
	case KindMerchant:
		return p.Store != "" && p.Store == o.Store
	case KindBuyer:
		return p.BuyerID != "" && p.BuyerID == o.BuyerID
	}
	mine := p.Owner()
	if o.Owner == mine || strings.HasPrefix(o.Owner, mine+"|buyer:") {
		return true
	}
	// The platform's own client placed it (an order from before the
	// owner was kept by application).
	return p.ClientID != "" && p.ClientID == o.ClientID
}
