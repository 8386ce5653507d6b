package guard

import (
	"fmt"
	"net/http"
	"slices"
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
)

// Rule is who may run an operation.
type Rule struct {
	// Kinds that may call; empty means every kind, anonymous included.
	Kinds []Kind
	// AnyScope: a bearer must hold at least one of these scopes; empty
	// means no scope is needed. API keys carry no scopes and are judged
	// by Kinds alone.
	AnyScope []string
	// MinTier is the weakest trust tier accepted; "" means any.
	MinTier Tier
}

// policy is the operations table: one rule per operation, read by
// Authorize (README shows it). It encodes today's behaviour: every
// operation is open to every caller, and what a caller may see is decided
// per object (Owner, MayReadOrder). The guard issue narrows it.
var policy = map[Operation]Rule{
	OpSearchCatalog:    {},
	OpLookupCatalog:    {},
	OpGetProduct:       {},
	OpCreateCart:       {},
	OpGetCart:          {},
	OpUpdateCart:       {},
	OpCancelCart:       {},
	OpCreateCheckout:   {},
	OpGetCheckout:      {},
	OpUpdateCheckout:   {},
	OpCompleteCheckout: {},
	OpCancelCheckout:   {},
	OpGetOrder:         {},
}

var tierRank = map[Tier]int{TierAnonymous: 0, TierToken: 1, TierSigned: 2}

// Authorize decides whether p may run op by the Policy table. An unknown
// operation is refused: a new operation must be given a rule. Refusals
// are 403 *Error.
func Authorize(p *Principal, op Operation) error {
	rule, ok := policy[op]
	if !ok {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("operation %s has no access rule", op)}
	}
	return rule.check(p, op)
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
	if len(rule.Kinds) > 0 && !slices.Contains(rule.Kinds, p.Kind) {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("%s callers may not %s", p.Kind, op)}
	}
	if rule.MinTier != "" && tierRank[p.Tier] < tierRank[rule.MinTier] {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Content: fmt.Sprintf("%s needs a %s caller", op, rule.MinTier)}
	}
	if len(rule.AnyScope) > 0 && p.Credential == CredentialBearer && !slices.ContainsFunc(rule.AnyScope, p.HasScope) {
		return &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
			Content: fmt.Sprintf("%s needs one of the scopes %v", op, rule.AnyScope)}
	}
	return nil
}

// Owner is the key a caller's sessions (carts, checkouts) are filed under:
// the authenticated client, narrowed to the buyer when a buyer token is
// used (two buyers of one public agent app never share sessions), or for
// anonymous callers the platform profile they name (session ids are
// unguessable, and the profile keeps two anonymous platforms apart).
func (p *Principal) Owner(profile string) string {
	if p.IsAnonymous() {
		return "profile:" + profile
	}
	if p.BuyerID != "" {
		return "client:" + p.ClientID + "|buyer:" + p.BuyerID
	}
	return "client:" + p.ClientID
}

// OrderParty is who an order was placed by: the owner of its checkout
// session, and the client and buyer of the credential that completed it.
type OrderParty struct {
	Owner    string
	ClientID string
	BuyerID  string
}

// MayReadOrder reports whether p, naming profile, may read an order: the
// session's owner; the platform that placed it (its key or an app-only
// token, for any of its buyers); or the buyer it was placed for, holding
// an order-read scope.
func (p *Principal) MayReadOrder(profile string, o OrderParty) bool {
	if o.Owner == p.Owner(profile) {
		return true
	}
	if p.IsAnonymous() {
		return false
	}
	if p.BuyerID == "" {
		return p.ClientID == o.ClientID
	}
	return p.BuyerID == o.BuyerID && (p.HasScope("dev.ucp.shopping.order:read") || p.HasScope("orders:read"))
}
