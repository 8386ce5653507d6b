package bridge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// buyerBound checks that every call of the named platform tools the
// bridge made went with the exchanged buyer token alone (never the
// platform key), and that there was at least one.
func (w *frontWire) buyerBound(t *testing.T, from int, tools ...string) {
	t.Helper()
	reqs := w.all()[from:]
	for _, tool := range tools {
		n := 0
		for _, r := range reqs {
			if !strings.Contains(r.Body, `"name":"`+tool+`"`) {
				continue
			}
			n++
			if r.Header.Get("X-API-Key") != "" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				t.Errorf("%s sent key=%q authorization=%v", tool, r.Header.Get("X-API-Key"), r.Header.Get("Authorization") != "")
			}
		}
		if n == 0 {
			t.Errorf("no %s call reached the platform", tool)
		}
	}
}

// TestHTTPFrontPurchases is the agent's flow over streamable HTTP with
// the official MCP Go SDK as the agent: the buyer signs in through the
// real OAuth flow (RFC 9728 discovery from the bridge's 401, PKCE, the
// consent form posted over HTTP with a spending limit), then the agent
// searches, builds a cart and a checkout and confirms on the card (the
// buyer's saved card, completion with the exchanged token alone), and
// the per-order limit refuses a larger order with what the limit is.
func TestHTTPFrontPurchases(t *testing.T) {
	e := startFrontE2E(t)
	s, err := e2eConnect(t, e.url, http.DefaultClient, signInWith(t, e.p,
		&authservertest.Allowance{MaxPerOrder: "40", DailyCap: "100", Currency: "EUR", Days: 7}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(name string, args map[string]any) map[string]any {
		t.Helper()
		res := e2eCall(t, s, name, args)
		if res.IsError {
			t.Fatalf("%s: %s", name, e2eText(res))
		}
		return structured(t, res)
	}
	if res := ok("search_products", map[string]any{"store_slug": "flower-shop", "query": "roses"}); !strings.Contains(mustJSON(t, res), "bouquet_roses") {
		t.Fatalf("search: %v", res)
	}
	cart := ok("create_cart", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
	co := ok("create_checkout", map[string]any{"store_slug": "flower-shop", "cart_id": cart["id"]})
	from := len(e.wire.all())
	pr := ok("confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"], "payment_method": "artos.card"})
	if pr["outcome"] != "completed" || pr["order_id"] == "" || pr["total"] != float64(3500) || pr["currency"] != "EUR" {
		t.Fatalf("confirm on the card: %v", pr)
	}
	e.wire.buyerBound(t, from, "complete_checkout")
	if mine := ok("get_my_order", map[string]any{"order_id": pr["order_id"]}); !strings.Contains(mustJSON(t, mine), pr["order_id"].(string)) {
		t.Fatalf("get_my_order: %v", mine)
	}

	// Two bouquets (70.00 EUR) are over the 40.00 EUR per-order limit.
	co = ok("create_checkout", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 2)})
	refused := e2eCall(t, s, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"], "payment_method": "artos.card"})
	sc := structured(t, refused)
	if !refused.IsError || sc["outcome"] != "allowance_refused" || !strings.Contains(e2eText(refused), "per-order limit of 40.00 EUR") {
		t.Fatalf("spend cap: %s %v", e2eText(refused), sc)
	}
	if r, _ := sc["refusal"].(map[string]any); r["limit"] != "max_per_order" || r["max"] != float64(4000) {
		t.Fatalf("refusal: %v", sc["refusal"])
	}
}

// TestHTTPFrontCrypto: over HTTP, a crypto purchase (prepare and complete
// with the exchanged buyer token alone) within a USD allowance.
func TestHTTPFrontCrypto(t *testing.T) {
	e := startFrontE2E(t)
	s, err := e2eConnect(t, e.url, http.DefaultClient, signInWith(t, e.p,
		&authservertest.Allowance{MaxPerOrder: "500", DailyCap: "1000", Currency: "USD", Days: 30}, nil))
	if err != nil {
		t.Fatal(err)
	}
	res := e2eCall(t, s, "create_checkout", map[string]any{"store_slug": "energy-sport", "items": lines("rr2-10", 1), "shipping_address": usShipping})
	co := structured(t, res)
	if res.IsError || co["id"] == "" || co["currency"] != "USD" {
		t.Fatalf("checkout: %s", e2eText(res))
	}
	from := len(e.wire.all())
	res = e2eCall(t, s, "confirm_purchase", map[string]any{"store_slug": "energy-sport", "checkout_id": co["id"], "payment_method": "artos.crypto"})
	if pr := structured(t, res); res.IsError || pr["outcome"] != "completed" || pr["order_id"] == "" {
		t.Fatalf("crypto: %s %v", e2eText(res), pr)
	}
	e.wire.buyerBound(t, from, "prepare_checkout_payment", "complete_checkout")
}
