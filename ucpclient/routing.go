package ucpclient

import (
	"encoding/json"
	"slices"
)

// Credential says which credential an operation is sent with. It is
// decided by the one routing table below, never by the caller.
type Credential uint8

const (
	// Platform sends the platform's X-API-Key only.
	CredentialPlatform Credential = iota + 1
	// Buyer sends the buyer's bearer only, never with the key. Without a
	// Buyer the call fails locally with *BuyerRequiredError.
	CredentialBuyer
	// PlatformBuyer sends both: the key authorizes, the bearer names the
	// buyer (the Artos coupon attach). Without a Buyer the call fails
	// locally with *BuyerRequiredError.
	CredentialPlatformBuyer
)

func (c Credential) String() string {
	switch c {
	case CredentialPlatform:
		return "platform"
	case CredentialBuyer:
		return "buyer"
	case CredentialPlatformBuyer:
		return "platform+buyer"
	}
	return "invalid"
}

// Surface is the endpoint an operation goes to.
type Surface string

const (
	SurfaceREST    Surface = "rest"    // {base}/catalog/search, {base}/s/{slug}/.well-known/ucp
	SurfaceGlobal  Surface = "global"  // {base}/mcp
	SurfaceStore   Surface = "store"   // {base}/s/{slug}/mcp
	SurfaceAccount Surface = "account" // {base}/account/mcp
)

// Variant refines an operation whose credential depends on the call.
type Variant string

const (
	// VariantDefault is the plain operation.
	VariantDefault Variant = ""
	// VariantCrypto is a crypto-rail payment step (WithCrypto).
	VariantCrypto Variant = "crypto"
	// VariantBuyerPresent is a completion on a Client that has a Buyer.
	VariantBuyerPresent Variant = "buyer-present"
	// VariantCoupon is update_checkout attaching the sh.artos.coupon
	// eligibility claim.
	VariantCoupon Variant = "coupon"
)

// Route is one row of the routing table.
type Route struct {
	Surface Surface
	Op      string // tool name, or the REST operation
	Variant Variant
	// Credential is what the call carries.
	Credential Credential
	// Idempotent operations change state: they get a fresh
	// meta["idempotency-key"] (and Idempotency-Key header) unless the
	// caller passes one, which also makes them safe to retry.
	Idempotent bool
}

// anyTool matches every tool of a surface without a row of its own.
const anyTool = "*"

// routes is THE credential routing table (artos.md §3.5, README "guard").
// Every call the client makes is looked up here; nothing else decides
// which credential goes on the wire.
var routes = []Route{
	// REST
	{SurfaceREST, "catalog/search", VariantDefault, CredentialPlatform, false},
	{SurfaceREST, "store_profile", VariantDefault, CredentialPlatform, false},

	// Global /mcp: the catalog.
	{SurfaceGlobal, "search_catalog", VariantDefault, CredentialPlatform, false},
	{SurfaceGlobal, "lookup_catalog", VariantDefault, CredentialPlatform, false},
	{SurfaceGlobal, "get_product", VariantDefault, CredentialPlatform, false},
	{SurfaceGlobal, anyTool, VariantDefault, CredentialPlatform, false},

	// Store /s/{slug}/mcp: catalog, locations, cart, checkout, orders.
	{SurfaceStore, "search_catalog", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "lookup_catalog", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "get_product", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "search_locations", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "lookup_locations", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "create_cart", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "update_cart", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "get_cart", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "cancel_cart", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "create_checkout", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "get_checkout", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, "update_checkout", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "update_checkout", VariantCoupon, CredentialPlatformBuyer, true},
	{SurfaceStore, "cancel_checkout", VariantDefault, CredentialPlatform, true},
	{SurfaceStore, "prepare_checkout_payment", VariantDefault, CredentialBuyer, true}, // crypto only
	{SurfaceStore, "prepare_checkout_payment", VariantCrypto, CredentialBuyer, true},
	{SurfaceStore, "complete_checkout", VariantDefault, CredentialPlatform, true}, // card, no buyer token
	{SurfaceStore, "complete_checkout", VariantBuyerPresent, CredentialBuyer, true},
	{SurfaceStore, "complete_checkout", VariantCrypto, CredentialBuyer, true},
	{SurfaceStore, "get_order", VariantDefault, CredentialPlatform, false},
	{SurfaceStore, anyTool, VariantDefault, CredentialPlatform, false},

	// Buyer /account/mcp: every tool, tools/list included.
	{SurfaceAccount, "tools/list", VariantDefault, CredentialBuyer, false},
	{SurfaceAccount, anyTool, VariantDefault, CredentialBuyer, false},
}

// Routes returns a copy of the routing table, for documentation and tests.
func Routes() []Route { return slices.Clone(routes) }

// couponClaim is the eligibility claim whose attach needs the buyer.
const couponClaim = "sh.artos.coupon"

// route picks the table row for a call. hasBuyer is whether the client has
// a Buyer; args are the tool arguments (to spot the coupon claim).
func route(s Surface, op string, o *callOptions, hasBuyer bool, args json.RawMessage) Route {
	v := VariantDefault
	switch {
	case o.crypto && (op == "complete_checkout" || op == "prepare_checkout_payment"):
		v = VariantCrypto
	case op == "complete_checkout" && hasBuyer:
		v = VariantBuyerPresent
	case op == "update_checkout" && (o.coupon || hasCouponClaim(args)):
		v = VariantCoupon
	}
	if s != SurfaceStore {
		v = VariantDefault
	}
	if r, ok := lookup(s, op, v); ok {
		return r
	}
	if r, ok := lookup(s, op, VariantDefault); ok {
		return r
	}
	r, _ := lookup(s, anyTool, VariantDefault)
	r.Op = op
	return r
}

func lookup(s Surface, op string, v Variant) (Route, bool) {
	for _, r := range routes {
		if r.Surface == s && r.Op == op && r.Variant == v {
			return r, true
		}
	}
	return Route{}, false
}

// hasCouponClaim reports whether update_checkout arguments attach the
// sh.artos.coupon claim: checkout.context.eligibility contains it.
func hasCouponClaim(args json.RawMessage) bool {
	var a struct {
		Checkout struct {
			Context struct {
				Eligibility []json.RawMessage `json:"eligibility"`
			} `json:"context"`
		} `json:"checkout"`
	}
	if json.Unmarshal(args, &a) != nil {
		return false
	}
	for _, e := range a.Checkout.Context.Eligibility {
		var s string
		if json.Unmarshal(e, &s) == nil && s == couponClaim {
			return true
		}
		var o struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Name string `json:"name"`
		}
		if json.Unmarshal(e, &o) == nil && (o.ID == couponClaim || o.Type == couponClaim || o.Name == couponClaim) {
			return true
		}
	}
	return false
}
