package bridge_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
)

var staticTools = []string{"search_products", "lookup_products", "view_product", "get_product_global", "create_cart", "update_cart",
	"view_cart", "create_checkout", "update_checkout", "view_checkout", "confirm_purchase", "get_order", "get_my_order",
	"search_locations", "lookup_locations", "get_connection_status", "connect_account"}

var usShipping = map[string]any{"first_name": "Ada", "last_name": "Lovelace", "street_address": "1 Main St",
	"address_locality": "Boulder", "address_region": "CO", "postal_code": "80301", "address_country": "US"}

// TestStdioShopping is the agent's whole flow over stdio with a buyer
// token in the token file (EUR allowance 50.00 per order): tools listed
// with honest annotations and schemas, the account tools discovered,
// search, cart, checkout, confirm_purchase on the card (the buyer's saved
// card, the completion with the bearer alone), the spend cap refusal, and
// an account tool proxied with the buyer's bearer only.
func TestStdioShopping(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	h := startHarness(t, harnessOptions{allowance: &authservertest.DefaultAllowance})
	ctx := t.Context()

	// tools/list: every static tool, plus the discovered account tools.
	list, err := h.session.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*mcp.Tool{}
	for _, tool := range list.Tools {
		byName[tool.Name] = tool
	}
	for _, n := range append(staticTools, "get_buyer_context", "list_my_orders") {
		if byName[n] == nil {
			t.Errorf("tool %s not listed", n)
		}
	}
	for _, n := range staticTools {
		tool := byName[n]
		if tool == nil {
			continue
		}
		a := tool.Annotations
		if a == nil || a.DestructiveHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: annotations not all set: %+v", n, a)
			continue
		}
		if tool.OutputSchema == nil || tool.InputSchema == nil || tool.Description == "" {
			t.Errorf("%s: schema or description missing", n)
		}
	}
	if a := byName["confirm_purchase"].Annotations; a.ReadOnlyHint || !*a.DestructiveHint || a.IdempotentHint {
		t.Errorf("confirm_purchase annotations: %+v", a)
	}
	if a := byName["search_products"].Annotations; !a.ReadOnlyHint || *a.DestructiveHint || !a.IdempotentHint {
		t.Errorf("search_products annotations: %+v", a)
	}

	st := h.ok(t, "get_connection_status", nil)
	if st["buyer_connected"] != true || st["platform_key"] != true || st["transport"] != "stdio" || st["buyer"] == nil {
		t.Fatalf("status: %v", st)
	}

	// Search finds the roses; a price filter in major units narrows.
	res := h.ok(t, "search_products", map[string]any{"query": "roses"})
	if !strings.Contains(mustJSON(t, res), "bouquet_roses") {
		t.Fatalf("search: %v", res)
	}
	res = h.ok(t, "search_products", map[string]any{"query": "roses", "filters": map[string]any{"price": map[string]any{"max": 1, "currency": "EUR"}}})
	if strings.Contains(mustJSON(t, res), "bouquet_roses") {
		t.Fatalf("max 1.00 EUR still finds 35.00 EUR roses: %v", res)
	}
	bad := h.call(t, "search_products", map[string]any{"filters": map[string]any{"price": map[string]any{"max": "10.001", "currency": "EUR"}}})
	if !bad.IsError || !strings.Contains(text(bad), "at most 2 decimal") {
		t.Fatalf("3 decimals of EUR: %s", text(bad))
	}

	// Cart, checkout, confirm on the card: the saved card pays.
	cart := h.ok(t, "create_cart", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
	co := h.ok(t, "create_checkout", map[string]any{"store_slug": "flower-shop", "cart_id": cart["id"]})
	if co["id"] == "" {
		t.Fatalf("checkout: %v", co)
	}
	n := h.rt.len()
	pr := h.ok(t, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"], "payment_method": "artos.card"})
	if pr["outcome"] != "completed" || pr["order_id"] == "" || pr["total"] != float64(3500) || pr["currency"] != "EUR" {
		t.Fatalf("confirm: %v", pr)
	}
	var completes int
	for _, w := range h.rt.since(n) {
		if w.Tool == "complete_checkout" {
			completes++
			if w.APIKey || !w.Bearer {
				t.Errorf("complete_checkout sent key=%v bearer=%v", w.APIKey, w.Bearer)
			}
		}
		if w.Tool == "get_checkout" && w.Bearer {
			t.Errorf("get_checkout carried the buyer's bearer")
		}
	}
	if completes != 1 {
		t.Fatalf("%d completions", completes)
	}

	// The buyer's own order, through the proxied account tool: bearer only.
	n = h.rt.len()
	mine := h.ok(t, "get_my_order", map[string]any{"order_id": pr["order_id"]})
	if !strings.Contains(mustJSON(t, mine), pr["order_id"].(string)) {
		t.Fatalf("get_my_order: %v", mine)
	}
	bc := h.ok(t, "get_buyer_context", nil)
	if !strings.Contains(mustJSON(t, bc), h.p.BuyerEmail) {
		t.Fatalf("get_buyer_context: %v", bc)
	}
	for _, w := range h.rt.since(n) {
		if w.APIKey || !w.Bearer || !strings.HasSuffix(w.Path, "/account/mcp") {
			t.Errorf("account call %s %s: key=%v bearer=%v", w.Path, w.Tool, w.APIKey, w.Bearer)
		}
	}

	// Over the 50.00 EUR per-order limit: refused, which limit, nothing charged.
	co = h.ok(t, "create_checkout", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 2)})
	refused := h.call(t, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"]})
	sc := structured(t, refused)
	if !refused.IsError || sc["outcome"] != "allowance_refused" || !strings.Contains(text(refused), "per-order limit of 50.00 EUR") {
		t.Fatalf("spend cap: %s %v", text(refused), sc)
	}
	if r, _ := sc["refusal"].(map[string]any); r["limit"] != "max_per_order" || r["max"] != float64(5000) {
		t.Fatalf("refusal: %v", sc["refusal"])
	}
}

// TestStdioCrypto: a crypto purchase with the buyer's bearer only (USD
// allowance), and the rail choice when none is given.
func TestStdioCrypto(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	h := startHarness(t, harnessOptions{allowance: &authservertest.Allowance{MaxPerOrder: "500", DailyCap: "1000", Currency: "USD", Days: 30}})
	co := h.ok(t, "create_checkout", map[string]any{"store_slug": "energy-sport", "items": lines("rr2-10", 1), "shipping_address": usShipping})
	if co["id"] == "" || co["currency"] != "USD" {
		t.Fatalf("checkout: %v", co)
	}
	// update_checkout changes only what it is given: express shipping, same line.
	up := h.ok(t, "update_checkout", map[string]any{"store_slug": "energy-sport", "id": co["id"],
		"fulfillment": map[string]any{"selected_option_id": "express"}})
	if js := mustJSON(t, up); !strings.Contains(js, `"selected_option_id":"express"`) || !strings.Contains(js, "rr2-10") ||
		!strings.Contains(js, "Boulder") {
		t.Fatalf("update_checkout: %s", js)
	}
	choose := h.ok(t, "confirm_purchase", map[string]any{"store_slug": "energy-sport", "checkout_id": co["id"]})
	if choose["outcome"] != "payment_selection_required" || len(choose["rails"].([]any)) != 2 ||
		!strings.Contains(choose["next_step"].(string), "artos.crypto") {
		t.Fatalf("rails: %v", choose)
	}
	n := h.rt.len()
	pr := h.ok(t, "confirm_purchase", map[string]any{"store_slug": "energy-sport", "checkout_id": co["id"], "payment_method": "artos.crypto"})
	if pr["outcome"] != "completed" || pr["order_id"] == "" {
		t.Fatalf("crypto: %v", pr)
	}
	seen := map[string]bool{}
	for _, w := range h.rt.since(n) {
		if w.Tool == "prepare_checkout_payment" || w.Tool == "complete_checkout" {
			seen[w.Tool] = true
			if w.APIKey || !w.Bearer {
				t.Errorf("%s: key=%v bearer=%v", w.Tool, w.APIKey, w.Bearer)
			}
		}
	}
	if !seen["prepare_checkout_payment"] || !seen["complete_checkout"] {
		t.Fatalf("calls: %v", seen)
	}
}

// TestStdioNoBuyer: without a connected buyer, buyer-bound tools are
// tool errors that say to call connect_account, and nothing is sent with
// the platform key in the buyer's place.
func TestStdioNoBuyer(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	h := startHarness(t, harnessOptions{})
	list, err := h.session.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if slices.Contains(names, "get_buyer_context") || !slices.Contains(names, "get_my_order") || !slices.Contains(names, "connect_account") {
		t.Fatalf("tools without a buyer: %v", names)
	}
	st := h.ok(t, "get_connection_status", nil)
	if st["buyer_connected"] != false || !strings.Contains(st["how_to_connect"].(string), "connect_account") {
		t.Fatalf("status: %v", st)
	}
	n := h.rt.len()
	res := h.call(t, "get_my_order", map[string]any{"order_id": "ord_1"})
	if !res.IsError || !strings.Contains(text(res), "connect_account") || structured(t, res)["code"] != "buyer_not_connected" {
		t.Fatalf("get_my_order: %s", text(res))
	}
	if calls := h.rt.since(n); len(calls) != 0 {
		t.Fatalf("sent without a buyer: %v", calls)
	}
	// Crypto needs the buyer: sign_in_required, nothing prepared.
	co := h.ok(t, "create_checkout", map[string]any{"store_slug": "energy-sport", "items": lines("rr2-10", 1), "shipping_address": usShipping})
	n = h.rt.len()
	res = h.call(t, "confirm_purchase", map[string]any{"store_slug": "energy-sport", "checkout_id": co["id"], "payment_method": "artos.crypto"})
	if !res.IsError || structured(t, res)["outcome"] != "sign_in_required" || !strings.Contains(text(res), "connect_account") {
		t.Fatalf("crypto without a buyer: %s", text(res))
	}
	for _, w := range h.rt.since(n) {
		if w.Tool == "prepare_checkout_payment" || w.Tool == "complete_checkout" {
			t.Errorf("sent %s without a buyer", w.Tool)
		}
	}
	// Card without a buyer: the platform key, and the buyer pays on the hosted page.
	co = h.ok(t, "create_checkout", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
	pr := h.ok(t, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"]})
	if pr["outcome"] != "escalation_required" || pr["continue_url"] == "" || !strings.Contains(pr["next_step"].(string), pr["continue_url"].(string)) {
		t.Fatalf("card without a buyer: %v", pr)
	}
	// Bad input is a tool error, not a protocol error.
	res = h.call(t, "view_checkout", map[string]any{"store_slug": "flower-shop", "id": "nope"})
	if !res.IsError {
		t.Fatalf("unknown checkout: %s", text(res))
	}
	res = h.call(t, "create_cart", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 0)})
	if !res.IsError {
		t.Fatalf("quantity 0 passed the input schema: %s", text(res))
	}
	res = h.call(t, "create_cart", map[string]any{"items": lines("bouquet_roses", 1)})
	if !res.IsError || !strings.Contains(text(res), "store_slug is required") {
		t.Fatalf("no store: %s", text(res))
	}
}

// TestStdioSignedRequests: with SignRequests the bridge signs every
// platform request (RFC 9421) with the key its profile publishes, and the
// platform accepts them through a whole purchase.
func TestStdioSignedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	h := startHarness(t, harnessOptions{allowance: &authservertest.DefaultAllowance,
		config: func(c *bridge.Config) { c.SignRequests = true }})
	co := h.ok(t, "create_checkout", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
	pr := h.ok(t, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"]})
	if pr["outcome"] != "completed" {
		t.Fatalf("signed purchase: %v", pr)
	}
	for _, w := range h.rt.since(0) {
		if strings.HasSuffix(w.Path, "/mcp") && !w.Signed {
			t.Errorf("%s %s not signed", w.Path, w.Tool)
		}
	}
}
