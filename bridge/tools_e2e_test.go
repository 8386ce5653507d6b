package bridge_test

import (
	"strings"
	"testing"
)

// TestStdioEveryTool: each store tool round-trips against the platform's
// stores with the platform key (no buyer): products by id, cart update and
// view, locations, and a store order read.
func TestStdioEveryTool(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	h := startHarness(t, harnessOptions{})
	found := h.ok(t, "search_products", map[string]any{"query": "roses", "sort": "price_asc", "pagination": map[string]any{"limit": 5}})
	products := found["products"].([]any)
	if len(products) == 0 {
		t.Fatal("no products")
	}
	prod := products[0].(map[string]any)
	pid := prod["id"].(string)
	slug := prod["store"].(map[string]any)["slug"].(string)
	if got := h.ok(t, "view_product", map[string]any{"store_slug": slug, "id": pid}); got["product"] == nil {
		t.Fatalf("view_product: %v", got)
	}
	if got := h.ok(t, "get_product_global", map[string]any{"id": pid}); got["product"] == nil {
		t.Fatalf("get_product_global: %v", got)
	}
	if got := h.ok(t, "lookup_products", map[string]any{"ids": []any{pid}}); len(got["products"].([]any)) == 0 {
		t.Fatalf("lookup_products: %v", got)
	}
	cart := h.ok(t, "create_cart", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
	up := h.ok(t, "update_cart", map[string]any{"store_slug": "flower-shop", "id": cart["id"], "items": lines("bouquet_roses", 3)})
	if !strings.Contains(mustJSON(t, up["line_items"]), `"quantity":3`) {
		t.Fatalf("update_cart: %v", up)
	}
	if got := h.ok(t, "view_cart", map[string]any{"store_slug": "flower-shop", "id": cart["id"]}); got["id"] != cart["id"] {
		t.Fatalf("view_cart: %v", got)
	}
	var located bool
	for _, slug := range h.p.Stores {
		res := h.call(t, "search_locations", map[string]any{"store_slug": slug})
		if res.IsError {
			continue // a store without shops
		}
		locs := structured(t, res)["locations"].([]any)
		if len(locs) == 0 {
			continue
		}
		id := locs[0].(map[string]any)["id"]
		got := h.ok(t, "lookup_locations", map[string]any{"store_slug": slug, "ids": []any{id}})
		if len(got["locations"].([]any)) != 1 {
			t.Fatalf("lookup_locations: %v", got)
		}
		located = true
		break
	}
	if !located {
		t.Fatal("no store with locations found")
	}
	res := h.call(t, "get_order", map[string]any{"store_slug": "flower-shop", "id": "ord_missing"})
	if !res.IsError || structured(t, res)["code"] == "internal_error" {
		t.Fatalf("get_order of an unknown order: %s", text(res))
	}
}
