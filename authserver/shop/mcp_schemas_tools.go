package shop

import (
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// toolInfo is what an MCP tool tells an agent besides its schemas: a
// title, when to use it and what comes back, and honest hints.
type toolInfo struct {
	title string
	doc   string
	// global replaces doc on the cross-store catalog (/mcp).
	global string
	// The MCP tool annotations. idempotent follows the MCP definition:
	// calling again with the same arguments has no further effect. The
	// arguments include meta, so a tool whose idempotency key is
	// required is idempotent (a repeat replays the stored outcome); a
	// create whose key is optional is not. Updates replace the inputs
	// whole, so repeating one changes nothing more; that also makes them
	// destructive (what was not resent is gone). openWorld: money moves
	// through a payment handler (a card network, a chain), outside the
	// store.
	readOnly, destructive, idempotent, openWorld bool
}

// The sentence every state-changing tool's description ends with.
const (
	keyRequired = ` Requires meta["idempotency-key"]: a fresh UUID, reused unchanged when retrying this same call.`
	keyOptional = ` Send meta["idempotency-key"] (a fresh UUID) to make retries safe.`
)

var toolInfos = map[Op]toolInfo{
	OpSearchCatalog: {title: "Search the catalog", readOnly: true, idempotent: true,
		doc: "Search this store's products by text, category and price. Use it to find what to buy. " +
			"Returns products (id, title, description, price_range) with their purchasable variants: variants[].id is what a checkout line names (line_items[].item.id), " +
			"with price and availability. Prices are integer minor units of the currency (1250 = 12.50 EUR). " +
			"More results: pagination.has_next_page, then call again with pagination.cursor.",
		global: "Search the products of every store on this platform at once, by text, category and price. " +
			"Returns products with their purchasable variants (variants[].id names an item in a checkout line), prices in integer minor units of each store's currency, " +
			"and the store selling each variant (seller.name; seller.links[0] is that store's UCP profile). " +
			"To buy, call that store's own MCP endpoint (/s/{store}/mcp), which takes the same variant ids. " +
			"More results: pagination.has_next_page, then call again with pagination.cursor."},
	OpLookupCatalog: {title: "Look up products by id", readOnly: true, idempotent: true,
		doc: "Look up to 100 products or variants by id, e.g. to refresh prices and availability before a checkout. " +
			"Returns the products, each with only the variants the ids resolved to (variants[].inputs says which requested id matched and how: exact, or featured for a product id). " +
			"Ids that match nothing are not_found messages, not an error.",
		global: "Look up to 100 products or variants by id across every store on this platform. " +
			"Returns the products, each with only the variants the ids resolved to (variants[].inputs names the matching ids) and the store selling them (seller). " +
			"Ids that match nothing are not_found messages, not an error."},
	OpGetProduct: {title: "Get a product", readOnly: true, idempotent: true,
		doc: "Get one product in full: description, options (Size, Color) and every variant with price and availability. " +
			"Use it to choose the variant to buy: pass the option values chosen so far in selected, and the response's options say which values remain available. " +
			"A product id or a variant id works; an unknown id is an error envelope (not_found).",
		global: "Get one product in full, looking across every store on this platform: description, options and every variant with price, availability and seller (the store to buy it at). " +
			"Pass the option values chosen so far in selected to narrow to a variant. An unknown id is an error envelope (not_found)."},
	OpCreateCart: {title: "Create a cart",
		doc: "Create a cart to collect items and see estimated totals (subtotal and discounts; no shipping or tax yet). Optional: create_checkout also takes the lines directly. " +
			"Returns the cart: its id, priced lines and totals (integer minor units), with messages for lines that cannot be sold as asked (out of stock). " +
			"Turn it into a checkout with create_checkout {cart_id}. Unknown items or bad quantities create nothing (an error envelope)." + keyOptional},
	OpGetCart: {title: "Get a cart", readOnly: true, idempotent: true,
		doc: "Get a cart by id: its lines and estimated totals (integer minor units), to review it or before turning it into a checkout with create_checkout {cart_id}. " +
			"A canceled, expired or unknown cart is an error envelope (not_found)."},
	OpUpdateCart: {title: "Replace a cart's contents", destructive: true, idempotent: true,
		doc: "Replace a cart's contents: send every line to keep (lines left out are removed), and buyer, context and discount codes too. " +
			"Returns the re-priced cart." + keyOptional},
	OpCancelCart: {title: "Cancel a cart", destructive: true, idempotent: true,
		doc: "Cancel a cart that is no longer wanted. Returns the cart as it was; afterwards it can no longer be read or turned into a checkout." + keyRequired},
	OpCreateCheckout: {title: "Start a checkout",
		doc: "Start buying: create a checkout session from lines (variant ids and quantities) or a cart_id, with whatever is known already (a shipping destination in fulfillment, the buyer, discount codes). " +
			"The store prices it from its catalog and returns the checkout: its id, status, priced lines, totals (integer minor units), fulfillment options, " +
			"payment handlers (ucp.payment_handlers), continue_url, and messages saying what is missing (often a shipping destination). " +
			"Next: update_checkout until status is ready_for_complete, show the buyer the total, then complete_checkout. " +
			"Unknown items or bad quantities create nothing (an error envelope)." + keyOptional},
	OpGetCheckout: {title: "Get a checkout", readOnly: true, idempotent: true,
		doc: "Get a checkout session by id: its status, lines, totals and messages as they stand. " +
			"Its body is the checkout an AP2 checkout mandate embeds verbatim (ap2.merchant_authorization is the store's signature over it). " +
			"An unknown id is an error envelope (not_found)."},
	OpUpdateCheckout: {title: "Change a checkout", destructive: true, idempotent: true,
		doc: "Change a checkout: its lines, buyer, fulfillment (a shipping destination, a delivery option from fulfillment groups[].options), discount codes. " +
			"With line_items it replaces every input: resend whatever should stay. Without line_items only the members sent change. " +
			"Returns the re-priced checkout; messages say what is still missing. A completed or canceled checkout cannot change (an error envelope)." + keyOptional},
	OpCompleteCheckout: {title: "Place the order and pay", destructive: true, idempotent: true, openWorld: true,
		doc: "Place the order and pay. Only when the checkout is ready_for_complete and the buyer has agreed to its total. " +
			"Send one selected payment instrument (handler_id from ucp.payment_handlers, credential.token) and, when the checkout negotiated AP2, ap2.checkout_mandate. " +
			"Returns the checkout: completed with order.id; or requires_escalation with continue_url, where the buyer finishes in a browser (3-D Secure, card entry); " +
			"or as it was, with a payment_failed message (nothing charged). This spends the buyer's money: on a timeout, retry with the same idempotency key, never a new one." + keyRequired},
	OpCancelCheckout: {title: "Cancel a checkout", destructive: true, idempotent: true,
		doc: "Cancel a checkout session that is not completed. Returns it with status canceled; it can no longer change or be paid." + keyRequired},
	OpGetOrder: {title: "Get an order", readOnly: true, idempotent: true,
		doc: "Get an order placed at this store (the order.id of a completed checkout): its lines with fulfilled quantities, totals, " +
			"and fulfillment expectations (how and when it arrives) and events. An unknown id is an error envelope (not_found)."},
	OpPrepareCheckoutPayment: {title: "Prepare a crypto payment", destructive: true, idempotent: true, openWorld: true,
		doc: "Prepare paying a checkout with crypto (the artos.crypto handler; only with the buyer's own bearer token, within the buyer's spending allowance). " +
			"Re-prices the checkout, holds the amount against the allowance and returns payment_intent: unsigned_tx for the buyer's wallet to sign and submit, " +
			"and settlement_reference; any earlier prepared payment of the checkout is void. " +
			"Then call complete_checkout with an artos.crypto instrument whose credential.token is the settlement reference." + keyRequired},
}

// annotations are a tool's MCP options from its info.
func (ti toolInfo) annotations() []mcp.ToolOption {
	return []mcp.ToolOption{
		mcp.WithTitleAnnotation(ti.title),
		mcp.WithReadOnlyHintAnnotation(ti.readOnly),
		mcp.WithDestructiveHintAnnotation(ti.destructive),
		mcp.WithIdempotentHintAnnotation(ti.idempotent),
		mcp.WithOpenWorldHintAnnotation(ti.openWorld),
	}
}

// The cross-store catalog's MCP identity.
const (
	catalogServerName  = "ucpbridge-catalog"
	catalogServerTitle = "Catalog of every store"
)

// catalogInstructions is what the cross-store catalog tells an agent on
// initialize.
const catalogInstructions = "Search and look up products across every UCP store on this platform. " +
	"Every call names your platform in meta[\"ucp-agent\"].profile (your UCP profile URL). " +
	"Prices are integer minor units of each store's currency. This endpoint sells nothing: " +
	"buy at the store selling a variant (seller, links[0] its UCP profile) through its own MCP endpoint, /s/{store}/mcp."

// storeInstructions is what a store's MCP endpoint tells an agent on
// initialize: what the store is and how a purchase goes.
func storeInstructions(name, currency string) string {
	var b strings.Builder
	b.WriteString(name + " is a UCP store. Amounts are integer minor units of " + currency + ". ")
	b.WriteString("Every call names your platform in meta[\"ucp-agent\"].profile (your UCP profile URL); ")
	b.WriteString("state-changing calls also carry meta[\"idempotency-key\"], a fresh UUID reused on retries. ")
	b.WriteString("To buy: search_catalog or get_product to find a variant id; create_checkout with line_items [{item: {id}, quantity}]; ")
	b.WriteString("update_checkout with a shipping destination (fulfillment) until status is ready_for_complete; ")
	b.WriteString("show the buyer the total; complete_checkout with a selected payment instrument. ")
	b.WriteString("Business outcomes (out of stock, a declined card, an unknown id) are results with messages; ")
	b.WriteString("malformed calls are JSON-RPC errors naming what to fix.")
	return b.String()
}
