package shop_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// browseAll is the filters of a search that lists everything: a price
// from 0 (a search needs an input; TestSearchNeedsInput).
var browseAll = map[string]any{"price": map[string]any{"min": 0}}

// wantBadField asserts the 400 invalid_request a request the UCP request
// schema refuses gets, its content naming the field by JSONPath.
func wantBadField(t *testing.T, res *http.Response, b []byte, path string) {
	t.Helper()
	wantStatus(t, res, b, http.StatusBadRequest)
	if p := decode[map[string]string](t, b); (*p)["code"] != "invalid_request" || !strings.HasPrefix((*p)["content"], path+" ") {
		t.Fatalf("want invalid_request naming %s: %s", path, b)
	}
}

// wantEnvelopeShape holds a UCP response body to the spec's rule for
// ucp.status (checkout.md, Error Handling: the shape discriminator):
// "error" bodies are error_response.json (ucp, messages, continue_url;
// nothing else), and a body carrying a resource says "success".
func wantEnvelopeShape(t *testing.T, b []byte) (status string) {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	var env struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body["ucp"], &env); err != nil {
		t.Fatalf("no ucp envelope: %s", b)
	}
	switch env.Status {
	case ucp.StatusError:
		for k := range body {
			if k != "ucp" && k != "messages" && k != "continue_url" {
				t.Fatalf("an error envelope carries %q (error_response.json admits ucp, messages, continue_url): %s", k, b)
			}
		}
		if len(body["messages"]) < 3 {
			t.Fatalf("an error envelope without messages: %s", b)
		}
	case ucp.StatusSuccess:
	default:
		t.Fatalf("ucp.status %q: %s", env.Status, b)
	}
	return env.Status
}

// TestSearchNeedsInput: a search with no query and no filters is a
// missing required parameter (search.md: at least one input), refused
// as the bindings say: REST 400, MCP -32602, on every store and on the
// cross-store catalog. A filter alone browses.
func TestSearchNeedsInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	empty := []any{
		map[string]any{},
		map[string]any{"query": ""},
		map[string]any{"query": " \t "},
		map[string]any{"filters": map[string]any{}},
		map[string]any{"filters": map[string]any{"categories": []string{}, "price": map[string]any{}}},
		map[string]any{"pagination": map[string]any{"limit": 5}},
		map[string]any{"sort": "price_asc", "context": map[string]any{"currency": "EUR"}},
	}
	for _, base := range []string{"/s/energy-sport", "/s/flower-shop", "/s/kyoto-tea", ""} {
		for _, body := range append(empty, nil) {
			res, b := e.req("POST", base+"/catalog/search", body)
			wantStatus(t, res, b, http.StatusBadRequest)
			if p := decode[map[string]string](t, b); (*p)["code"] != "invalid_request" || !strings.Contains((*p)["content"], "a search needs an input") {
				t.Fatalf("%s %v: %s", base, body, b)
			}
			// Anonymous browsing (no UCP-Agent) is held to it too.
			res, b = e.req("POST", base+"/catalog/search", body, "UCP-Agent", "", "X-Test-Client", "")
			wantStatus(t, res, b, http.StatusBadRequest)
		}
		for _, body := range empty {
			res, out, b := e.mcpCallRaw(base+"/mcp", "search_catalog", e.mcpArgs("catalog", body))
			wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
			if !strings.Contains(out.Error.Data.Content, "a search needs an input") {
				t.Fatalf("%s/mcp %v: %s", base, body, b)
			}
		}
		// No catalog argument at all.
		res, out, b := e.mcpCallRaw(base+"/mcp", "search_catalog", e.mcpArgs())
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")

		// A query, a category or a price bound is an input.
		for _, body := range []map[string]any{{"query": "a"}, {"filters": map[string]any{"categories": []string{"Tea"}}},
			{"filters": map[string]any{"price": map[string]any{"max": 1}}}, {"filters": browseAll}} {
			e.catSearch(t, base+"/catalog/search", body)
			e.mcpFor(t).mustMCP(base+"/mcp", "search_catalog", e.mcpArgs("catalog", body))
		}
	}
}

// mustMCP calls tool at path and returns structuredContent, failing on
// anything but a JSON-RPC result.
func (e *env) mustMCP(path, tool string, args any) []byte {
	e.t.Helper()
	return e.mustMCPWith(path, tool, args)
}

func (e *env) mustMCPWith(path, tool string, args any, hdr ...string) []byte {
	e.t.Helper()
	res, out, b := e.mcpCallRaw(path, tool, args, hdr...)
	return mustResult(e.t, tool, res, out, b)
}

// TestResponsesClaimOnlyWhatHolds: a response claims no capability the
// request was not held to. In dev, a platform profile that cannot be
// fetched leaves no keys to verify an AP2 mandate with: the checkout
// neither claims dev.ucp.shopping.ap2_mandate nor is locked to it. With
// the profile, AP2 is claimed and required. Catalog responses echo their
// own operation's capability only.
func TestResponsesClaimOnlyWhatHolds(t *testing.T) {
	t.Parallel()
	for _, binding := range []string{"rest", "mcp"} {
		t.Run(binding, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, &envOptions{dev: true})
			e.agent.set(func(a *agentServer) { a.caps = append(a.caps, ucp.CapAP2Mandate) })
			// down: requests name a profile nothing serves (nothing
			// listens on port 9), as README's purchase by hand does.
			down := false
			const nowhere = "http://127.0.0.1:9/.well-known/ucp"
			call := func(tool, method, path string, status int, kv ...any) []byte {
				t.Helper()
				args := e.mcpArgs(kv...)
				hdr := []string{}
				if down {
					args["meta"].(map[string]any)["ucp-agent"] = map[string]any{"profile": nowhere}
					hdr = []string{"UCP-Agent", `profile="` + nowhere + `"`}
				}
				if binding == "mcp" {
					return e.mcpFor(t).mustMCPWith("/s/flower-shop/mcp", tool, args, hdr...)
				}
				var body any
				if len(kv) > 0 {
					body = kv[len(kv)-1]
				}
				res, b := e.req(method, path, body, hdr...)
				wantStatus(t, res, b, status)
				return b
			}
			create := func() []byte {
				return call("create_checkout", "POST", "/s/flower-shop/checkout-sessions", http.StatusCreated, "checkout", lines(line("bouquet_roses", 1)))
			}
			complete := func(id string) []byte {
				return call("complete_checkout", "POST", "/s/flower-shop/checkout-sessions/"+id+"/complete", http.StatusOK,
					"id", id, "checkout", cardPayment(shop.TokenSuccess))
			}

			// The profile is reachable: AP2 is negotiated, claimed and
			// enforced.
			held := decode[ucp.Checkout](t, create())
			if held.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
				t.Fatalf("AP2 not claimed with the profile: %v", held.UCP.Capabilities)
			}
			if got := decode[ucp.Checkout](t, complete(held.ID)); got.Status == ucp.CheckoutCompleted || hasMessage(got, "mandate_required") == nil {
				t.Fatalf("AP2 claimed but not required: %+v", got)
			}

			// A profile that cannot be fetched: dev serves the store's own
			// capabilities, without the one it cannot hold the request to.
			down = true
			c := decode[ucp.Checkout](t, create())
			if c.UCP.Capabilities[ucp.CapAP2Mandate] != nil || c.UCP.Capabilities[ucp.CapCheckout] == nil {
				t.Fatalf("claims %v without the platform profile", c.UCP.Capabilities)
			}
			got := decode[ucp.Checkout](t, complete(c.ID))
			if got.Status != ucp.CheckoutCompleted || got.UCP.Capabilities[ucp.CapAP2Mandate] != nil {
				t.Fatalf("completion without a mandate: %+v", got)
			}
			// The search response names search, not lookup.
			sc := call("search_catalog", "POST", "/s/flower-shop/catalog/search", http.StatusOK, "catalog", map[string]any{"query": "roses"})
			if caps := decode[ucp.SearchResponse](t, sc).UCP.Capabilities; len(caps) != 1 || caps[ucp.CapCatalogSearch] == nil {
				t.Fatalf("search claims %v", caps)
			}
		})
	}
	// Lookup and get_product name lookup only.
	e := newEnv(t, nil)
	for _, path := range []string{"/s/energy-sport/catalog/lookup", "/catalog/lookup"} {
		res, b := e.req("POST", path, map[string]any{"ids": []string{"rr2-9"}})
		wantStatus(t, res, b, http.StatusOK)
		if caps := decode[ucp.LookupResponse](t, b).UCP.Capabilities; len(caps) != 1 || caps[ucp.CapCatalogLookup] == nil {
			t.Fatalf("%s claims %v", path, caps)
		}
	}
	res, b := e.req("POST", "/s/energy-sport/catalog/product", map[string]any{"id": "rr2-9"})
	wantStatus(t, res, b, http.StatusOK)
	if caps := decode[ucp.ProductResponse](t, b).UCP.Capabilities; len(caps) != 1 || caps[ucp.CapCatalogLookup] == nil {
		t.Fatalf("get_product claims %v", caps)
	}
}

func (e *env) catSearchBody(t *testing.T, path string, body any) []byte {
	t.Helper()
	res, b := e.req("POST", path, body)
	wantStatus(t, res, b, http.StatusOK)
	return b
}

// TestRefusedCompletionEnvelopes: every way a completion places no
// order answers by the spec's rule for ucp.status. A failure on the
// checkout (a declined card, a mandate missing, no rail chosen, stock
// gone) is a business outcome: the checkout, ucp.status success, the
// error among its messages, its status as stored, and no payment the
// request sent echoed as if stored: a following GET shows the same. A
// refusal about whose money it is (the buyer's spend allowance) is the
// error envelope, without the checkout. REST and MCP alike.
func TestRefusedCompletionEnvelopes(t *testing.T) {
	t.Parallel()
	for _, binding := range []string{"rest", "mcp"} {
		t.Run(binding, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			complete := func(slug, id string, body any, hdr ...string) []byte {
				t.Helper()
				if binding == "mcp" {
					return e.mcpFor(t).mcpCall(slug, "complete_checkout", e.mcpArgs("id", id, "checkout", body), hdr...)
				}
				res, b := e.req("POST", "/s/"+slug+"/checkout-sessions/"+id+"/complete", body, hdr...)
				wantStatus(t, res, b, http.StatusOK)
				return b
			}
			get := func(slug, id string) *ucp.Checkout {
				t.Helper()
				res, b := e.req("GET", "/s/"+slug+"/checkout-sessions/"+id, nil)
				wantStatus(t, res, b, http.StatusOK)
				return decode[ucp.Checkout](t, b)
			}
			// failedOn: the checkout, success, code among its errors,
			// status and payment as stored (what a GET showed before and
			// shows after: nothing of the request kept).
			failedOn := func(slug, id string, code string, body any, hdr ...string) {
				t.Helper()
				before := get(slug, id)
				b := complete(slug, id, body, hdr...)
				if wantEnvelopeShape(t, b) != ucp.StatusSuccess {
					t.Fatalf("%s: %s", code, b)
				}
				got := decode[ucp.Checkout](t, b)
				if m := hasMessage(got, code); got.ID != id || got.Status != before.Status || got.Order != nil || m == nil || m.Type != "error" ||
					!reflect.DeepEqual(got.Payment, before.Payment) {
					t.Fatalf("%s: want the checkout as stored (%s, payment %+v) with the error: %s", code, before.Status, before.Payment, b)
				}
				if after := get(slug, id); !reflect.DeepEqual(after, before) {
					t.Fatalf("%s: the refused completion changed the checkout:\n%+v\n%+v", code, before, after)
				}
			}

			// A declined card; a rail the store does not offer.
			c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
			failedOn("flower-shop", c.ID, "payment_failed", cardPayment(shop.TokenFail))
			failedOn("flower-shop", c.ID, "payment_handler_invalid", map[string]any{"payment": map[string]any{"instruments": []any{
				map[string]any{"handler_id": shop.HandlerCryptoID, "type": "crypto", "selected": true}}}})
			if g := get("flower-shop", c.ID); g.Payment != nil || g.Status != ucp.CheckoutReadyForComplete {
				t.Fatalf("%+v", g)
			}
			// Several rails, none chosen.
			body := lines(line("rr2-9", 1))
			body["fulfillment"] = usShipping
			sc := e.createCheckout("energy-sport", body)
			failedOn("energy-sport", sc.ID, "payment_selection_required", map[string]any{})
			// An escalated checkout stays escalated, with the payment it
			// stored, when the retry is declined.
			esc := decode[ucp.Checkout](t, complete("flower-shop", c.ID, cardPayment(shop.TokenEscalate)))
			if esc.Status != ucp.CheckoutRequiresEscalation {
				t.Fatalf("escalate: %+v", esc)
			}
			failedOn("flower-shop", c.ID, "payment_failed", cardPayment(shop.TokenFail))

			// Stock gone since: the checkout as stored, at the terms it
			// now prices at, with the out_of_stock error.
			gone := e.createCheckout("flower-shop", lines(line("orchid_pot", 7)))
			other := e.createCheckout("flower-shop", lines(line("orchid_pot", 1)))
			complete("flower-shop", other.ID, cardPayment(shop.TokenSuccess))
			failedOn("flower-shop", gone.ID, "out_of_stock", cardPayment(shop.TokenSuccess))

			// The buyer's allowance: refused without the checkout.
			e.allow("buyer_ada", "demo-agent", 1000, 100000, "EUR")
			mine := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)), ada...)
			b := complete("flower-shop", mine.ID, cardPayment(shop.TokenSuccess), ada...)
			if wantEnvelopeShape(t, b) != ucp.StatusError {
				t.Fatalf("spend cap: %s", b)
			}
			env := decode[ucp.ErrorResponse](t, b)
			if !slices.ContainsFunc(env.Messages, func(m ucp.Message) bool {
				return m.Code == oauth.CodeSpendCapExceeded && strings.Contains(m.Content, "10.00 EUR per order")
			}) {
				t.Fatalf("spend cap: %s", b)
			}
			res, gb := e.req("GET", "/s/flower-shop/checkout-sessions/"+mine.ID, nil, ada...)
			wantStatus(t, res, gb, http.StatusOK)
			if g := decode[ucp.Checkout](t, gb); g.Status != mine.Status || g.Payment != nil || g.Order != nil {
				t.Fatalf("the refusal changed the checkout: %s", gb)
			}
		})
	}
}

// TestMandateRefusalEnvelope: an AP2 checkout completed without its
// mandate is a business outcome on the checkout (REST and MCP).
func TestMandateRefusalEnvelope(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess))
	wantStatus(t, res, b, http.StatusOK)
	sc := e.mcpCall("flower-shop", "complete_checkout", e.mcpArgs("id", c.ID, "checkout", cardPayment(shop.TokenSuccess)))
	for _, body := range [][]byte{b, sc} {
		if wantEnvelopeShape(t, body) != ucp.StatusSuccess {
			t.Fatalf("%s", body)
		}
		if got := decode[ucp.Checkout](t, body); got.ID != c.ID || got.Status != c.Status || got.Payment != nil || hasMessage(got, "mandate_required") == nil {
			t.Fatalf("%s", body)
		}
	}
}

// TestInvalidCreateBodies: one answer for create bodies the UCP request
// schema refuses, REST 400 / MCP -32602 invalid_request naming the field
// (missing line_items, bad quantities, wrong types), against the
// business outcomes of well-formed ones (the error envelope for items the
// store does not sell, a checkout with messages for stock). Checkouts and
// carts alike.
func TestInvalidCreateBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	bad := []struct{ name, body, field string }{
		{"no line_items", `{}`, "$.line_items"},
		{"only a buyer", `{"buyer":{"email":"ada@example.com"}}`, "$.line_items"},
		{"no lines", `{"line_items":[]}`, "$.line_items"},
		{"line_items null", `{"line_items":null}`, "$.line_items"},
		{"no item", `{"line_items":[{"quantity":1}]}`, "$.line_items[0].item.id"},
		{"no item id", `{"line_items":[{"item":{},"quantity":1}]}`, "$.line_items[0].item.id"},
		{"no quantity", `{"line_items":[{"item":{"id":"tulip_bunch"}}]}`, "$.line_items[0].quantity"},
		{"quantity null", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":null}]}`, "$.line_items[0].quantity"},
		{"zero quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":0}]}`, "$.line_items[0].quantity"},
		{"negative quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":-2}]}`, "$.line_items[0].quantity"},
		{"fractional quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1.5}]}`, "$.line_items[0].quantity"},
		{"huge quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1},{"item":{"id":"tulip_bunch"},"quantity":10001}]}`, "$.line_items[1].quantity"},
		{"quantity a string", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":"2"}]}`, "$.line_items[0].quantity"},
		{"quantity a bool", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":true}]}`, "$.line_items[0].quantity"},
		{"line_items an object", `{"line_items":{"item":{"id":"tulip_bunch"},"quantity":1}}`, "$.line_items"},
		{"item a string", `{"line_items":[{"item":"tulip_bunch","quantity":1}]}`, "$.line_items.item"},
		{"item id a number", `{"line_items":[{"item":{"id":7},"quantity":1}]}`, "$.line_items.item.id"},
		{"buyer a string", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1}],"buyer":"ada"}`, "$.buyer"},
		{"codes a string", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1}],"discounts":{"codes":"SPRING15"}}`, "$.discounts.codes"},
	}
	for _, kind := range []struct{ path, tool, arg string }{
		{"/s/flower-shop/checkout-sessions", "create_checkout", "checkout"},
		{"/s/flower-shop/carts", "create_cart", "cart"},
	} {
		for _, tc := range bad {
			t.Run(kind.tool+"/"+tc.name, func(t *testing.T) {
				res, b := e.req("POST", kind.path, tc.body)
				wantStatus(t, res, b, http.StatusBadRequest)
				p := decode[map[string]string](t, b)
				if (*p)["code"] != "invalid_request" || !strings.Contains((*p)["content"], tc.field) {
					t.Fatalf("want invalid_request naming %s: %s", tc.field, b)
				}
				e.mcpFor(t).wantMCPInvalid("/s/flower-shop/mcp", kind.tool, e.mcpArgs(kind.arg, json.RawMessage(tc.body)), tc.field)
			})
		}
		// Whole quantities written as decimals are integers (JSON
		// Schema counts 2.0 as one).
		res, b := e.req("POST", kind.path, `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":2.0}]}`)
		wantStatus(t, res, b, http.StatusCreated)
		if q := decode[ucp.Checkout](t, b).LineItems[0].Quantity; q != 2 {
			t.Fatalf("quantity %d", q)
		}
		// Well-formed, but not sold here: the error envelope.
		res, b = e.req("POST", kind.path, lines(line("nope", 1)))
		wantStatus(t, res, b, http.StatusOK)
		if wantEnvelopeShape(t, b) != ucp.StatusError || decode[ucp.ErrorResponse](t, b).Messages[0].Code != "item_unavailable" {
			t.Fatalf("%s", b)
		}
		sc := e.mustMCP("/s/flower-shop/mcp", kind.tool, e.mcpArgs(kind.arg, lines(line("nope", 1))))
		if wantEnvelopeShape(t, sc) != ucp.StatusError {
			t.Fatalf("%s", sc)
		}
	}
	// A checkout from a cart needs no lines of its own.
	cart := decode[ucp.Cart](t, e.mustMCP("/s/flower-shop/mcp", "create_cart", e.mcpArgs("cart", lines(line("tulip_bunch", 1)))))
	if c := e.createCheckout("flower-shop", map[string]any{"cart_id": cart.ID, "line_items": []any{}}); len(c.LineItems) != 1 {
		t.Fatalf("%+v", c)
	}
}

// wantMCPInvalid: a JSON-RPC -32602 invalid_request whose content names
// field.
func (e *env) wantMCPInvalid(path, tool string, args any, field string) {
	e.t.Helper()
	res, out, b := e.mcpCallRaw(path, tool, args)
	wantRPCError(e.t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
	if !strings.Contains(out.Error.Data.Content, field) {
		e.t.Fatalf("want the error naming %s: %s", field, b)
	}
}

// TestIdempotencyKeyForm: the accepted key is 16 to 255 visible ASCII
// characters (a UUID fits); every refusal says so. A key sent empty
// (an Idempotency-Key header or meta["idempotency-key"] of "") is
// refused, never taken for no key; so are several header lines.
func TestIdempotencyKeyForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	form := "16 to 255 visible ASCII characters"
	wantKeyRefused := func(res *http.Response, b []byte, code string) {
		t.Helper()
		wantStatus(t, res, b, http.StatusBadRequest)
		if p := decode[map[string]string](t, b); (*p)["code"] != code || !strings.Contains((*p)["content"], form) {
			t.Fatalf("want %s saying %q: %s", code, form, b)
		}
	}
	for _, call := range []struct{ method, path string }{
		{"POST", "/s/flower-shop/checkout-sessions"},
		{"PUT", "/s/flower-shop/checkout-sessions/" + c.ID},
		{"POST", "/s/flower-shop/checkout-sessions/" + c.ID + "/complete"},
		{"POST", "/s/flower-shop/checkout-sessions/" + c.ID + "/cancel"},
		{"POST", "/s/flower-shop/carts"},
	} {
		body := any(lines(line("bouquet_roses", 1)))
		if strings.HasSuffix(call.path, "/complete") {
			body = cardPayment(shop.TokenSuccess)
		} else if strings.HasSuffix(call.path, "/cancel") {
			body = nil
		}
		// Empty: refused, not ignored (the header is sent, with nothing).
		r, err := http.NewRequest(call.method, e.srv.URL+call.path, strings.NewReader(string(mcpMarshal(t, body))))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("UCP-Agent", `profile="`+e.agent.URL()+`"`)
		r.Header.Set("X-Test-Client", "platform-a")
		r.Header["Idempotency-Key"] = []string{""}
		res, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, res)
		wantKeyRefused(res, b, "invalid_idempotency_key")
		// Too short, with a space, several lines.
		res, b = e.req(call.method, call.path, body, "Idempotency-Key", "short")
		wantKeyRefused(res, b, "invalid_idempotency_key")
		res, b = e.req(call.method, call.path, body, "Idempotency-Key", "a key with spaces in it")
		wantKeyRefused(res, b, "invalid_idempotency_key")
		r2, _ := http.NewRequest(call.method, e.srv.URL+call.path, strings.NewReader(string(mcpMarshal(t, body))))
		r2.Header = r.Header.Clone()
		r2.Header["Idempotency-Key"] = []string{uuid(), uuid()}
		res, err = e.srv.Client().Do(r2)
		if err != nil {
			t.Fatal(err)
		}
		wantKeyRefused(res, readAll(t, res), "invalid_idempotency_key")
	}
	// Required and missing: the same form named.
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess), "Idempotency-Key", "")
	wantKeyRefused(res, b, "idempotency_key_required")

	// MCP: meta["idempotency-key"] empty is refused on every tool that
	// reads one; so is an empty HTTP header without a meta key.
	for _, call := range []struct {
		tool string
		args []any
	}{
		{"create_checkout", []any{"checkout", lines(line("bouquet_roses", 1))}},
		{"complete_checkout", []any{"id", c.ID, "checkout", cardPayment(shop.TokenSuccess)}},
		{"cancel_checkout", []any{"id", c.ID}},
		{"create_cart", []any{"cart", lines(line("bouquet_roses", 1))}},
	} {
		args := e.mcpArgs(call.args...)
		args["meta"] = e.mcpMeta("")
		args["meta"].(map[string]any)["idempotency-key"] = ""
		res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", call.tool, args)
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_idempotency_key")
		if !strings.Contains(out.Error.Data.Content, form) {
			t.Fatalf("%s: %s", call.tool, b)
		}
		// The HTTP header sent empty, and no meta key: refused too.
		args["meta"] = e.mcpMeta("")
		res, out, b = e.mcpCallRaw("/s/flower-shop/mcp", call.tool, args, "Idempotency-Key", " ")
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_idempotency_key")
	}
	// Nothing was created or changed by any of it.
	if g := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "get_checkout", e.mcpArgs("id", c.ID))); g.Status != ucp.CheckoutReadyForComplete {
		t.Fatalf("%+v", g)
	}
	// A UUID and 16 visible characters are accepted.
	for _, key := range []string{uuid(), "0123456789abcdef", strings.Repeat("~", 255)} {
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)), "Idempotency-Key", key)
		wantStatus(t, res, b, http.StatusCreated)
	}
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(sb.String())
}

// TestArtosReadmeExampleCompletes: the Artos SDK README's example,
// bouquet_roses shipped to {country: "US", postal_code: "94016"}, is
// ready at flower-shop and completes, over REST and MCP; the store still
// ships to the EU, and gardenias stay out of stock.
func TestArtosReadmeExampleCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	readme := map[string]any{"line_items": []any{line("bouquet_roses", 1)},
		"shipping_address": map[string]any{"country": "US", "postal_code": "94016"}}
	// REST.
	c := e.createCheckout("flower-shop", readme)
	if c.Status != ucp.CheckoutReadyForComplete || c.Fulfillment == nil || c.Totals[len(c.Totals)-1].Amount != 3500+690 {
		t.Fatalf("%+v", c)
	}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess))
	wantStatus(t, res, b, http.StatusOK)
	if done := decode[ucp.Checkout](t, b); done.Status != ucp.CheckoutCompleted || done.Order == nil {
		t.Fatalf("%s", b)
	}
	// MCP, as the SDK sends it.
	mc := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "create_checkout", e.mcpArgs("checkout", readme)))
	if mc.Status != ucp.CheckoutReadyForComplete {
		t.Fatalf("%+v", mc)
	}
	done := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "complete_checkout", e.mcpArgs("id", mc.ID, "checkout", cardPayment(shop.TokenSuccess))))
	if done.Status != ucp.CheckoutCompleted || done.Order == nil {
		t.Fatalf("%+v", done)
	}
	// A full US postal address too; the EU still ships; elsewhere not.
	for dest, want := range map[string]string{"US": ucp.CheckoutReadyForComplete, "FR": ucp.CheckoutReadyForComplete, "JP": ucp.CheckoutIncomplete} {
		body := lines(line("tulip_bunch", 1))
		body["fulfillment"] = map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": []any{map[string]any{
			"street_address": "1 Main St", "address_locality": "Somewhere", "postal_code": "94016", "address_country": dest}}}}}
		if got := e.createCheckout("flower-shop", body); got.Status != want {
			t.Fatalf("%s: %s %v", dest, got.Status, messageCodes(got.Messages))
		}
	}
	// Gardenias are still out of stock.
	g := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("gardenias", 1)}, "shipping_address": map[string]any{"country": "US"}})
	if g.Status != ucp.CheckoutIncomplete || !slices.Contains(messageCodes(g.Messages), "out_of_stock") {
		t.Fatalf("%+v", g)
	}
}

// TestProductIDInLineItem: a line item may name a product with exactly
// one variant (the line is that variant's); a product with several
// variants refuses the request with a message naming the product and
// listing its variant ids with their option values, to pick one. REST and
// MCP, checkouts and carts.
func TestProductIDInLineItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := lines(line("energy-gels", 2))
	body["fulfillment"] = usShipping
	c := e.createCheckout("energy-sport", body)
	if len(c.LineItems) != 1 || c.LineItems[0].Item.ID != "energy-gels-12" || c.LineItems[0].Quantity != 2 || c.LineItems[0].Item.Price != 3000 {
		t.Fatalf("%+v", c.LineItems)
	}
	// It stays that variant through completion.
	res, b := e.req("POST", "/s/energy-sport/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess))
	wantStatus(t, res, b, http.StatusOK)
	if done := decode[ucp.Checkout](t, b); done.Status != ucp.CheckoutCompleted || done.LineItems[0].Item.ID != "energy-gels-12" {
		t.Fatalf("%s", b)
	}
	mc := decode[ucp.Checkout](t, e.mcpCall("energy-sport", "create_checkout", e.mcpArgs("checkout", body)))
	if mc.LineItems[0].Item.ID != "energy-gels-12" {
		t.Fatalf("%+v", mc.LineItems)
	}
	cart := decode[ucp.Cart](t, e.mcpCall("energy-sport", "create_cart", e.mcpArgs("cart", lines(line("hydration-vest", 1)))))
	if cart.LineItems[0].Item.ID != "hydration-vest-5l" {
		t.Fatalf("%+v", cart.LineItems)
	}

	// Several variants: pick one.
	want := []string{`"trail-runner-x"`, "Trail Runner X", "4 variants", "pick one",
		"trx-blk-9 (Color: Black, Size: 9)", "trx-blk-10 (Color: Black, Size: 10, out of stock)",
		"trx-blu-10 (Color: Blue, Size: 10)", "trx-blu-11 (Color: Blue, Size: 11)"}
	check := func(b []byte) {
		t.Helper()
		if wantEnvelopeShape(t, b) != ucp.StatusError {
			t.Fatalf("%s", b)
		}
		env := decode[ucp.ErrorResponse](t, b)
		m := env.Messages[0]
		if len(env.Messages) != 1 || m.Code != "variant_required" || m.Path != "$.line_items[1].item.id" || m.Type != "error" {
			t.Fatalf("%s", b)
		}
		for _, w := range want {
			if !strings.Contains(m.Content, w) {
				t.Fatalf("the message lacks %q: %s", w, m.Content)
			}
		}
	}
	two := lines(line("energy-gels", 1), line("trail-runner-x", 1))
	res, b = e.req("POST", "/s/energy-sport/checkout-sessions", two)
	wantStatus(t, res, b, http.StatusOK)
	check(b)
	check(e.mcpCall("energy-sport", "create_checkout", e.mcpArgs("checkout", two)))
	res, b = e.req("POST", "/s/energy-sport/carts", two)
	wantStatus(t, res, b, http.StatusOK)
	check(b)
	// An update naming it changes nothing.
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+mc.ID, two)
	wantStatus(t, res, b, http.StatusOK)
	check(b)
	// A product id of another store is still not sold here.
	res, b = e.req("POST", "/s/energy-sport/checkout-sessions", lines(line("matcha-uji", 1)))
	wantStatus(t, res, b, http.StatusOK)
	if env := decode[ucp.ErrorResponse](t, b); env.Messages[0].Code != "item_unavailable" {
		t.Fatalf("%s", b)
	}
}

// TestCrossStoreResultsNameTheStore: every cross-store result (search,
// lookup, get_product; REST and MCP) carries the store's slug and URL as
// members of its own, and the variant ids buy at that URL.
func TestCrossStoreResultsNameTheStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	storeOf := func(p ucp.Product) *ucp.StoreRef {
		t.Helper()
		s := p.Store
		if s == nil || s.Slug == "" || s.URL != e.srv.URL+"/s/"+s.Slug || s.MCP != s.URL+"/mcp" || s.Profile != s.URL+"/.well-known/ucp" || s.Name == "" {
			t.Fatalf("%s: store %+v", p.ID, s)
		}
		return s
	}
	var products []ucp.Product
	products = append(products, decode[ucp.SearchResponse](t, e.catSearchBody(t, "/catalog/search", map[string]any{"query": "matcha"})).Products...)
	products = append(products, decode[ucp.SearchResponse](t, e.mustMCP("/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses"}))).Products...)
	res, b := e.req("POST", "/catalog/lookup", map[string]any{"ids": []string{"rr2-9"}})
	wantStatus(t, res, b, http.StatusOK)
	products = append(products, decode[ucp.LookupResponse](t, b).Products...)
	products = append(products, decode[ucp.LookupResponse](t, e.mustMCP("/mcp", "lookup_catalog", e.mcpArgs("catalog", map[string]any{"ids": []string{"sencha-100"}}))).Products...)
	res, b = e.req("POST", "/catalog/product", map[string]any{"id": "orchid_pot"})
	wantStatus(t, res, b, http.StatusOK)
	products = append(products, decode[ucp.ProductResponse](t, b).Product)
	products = append(products, decode[ucp.ProductResponse](t, e.mustMCP("/mcp", "get_product", e.mcpArgs("catalog", map[string]any{"id": "trail-runner-x"}))).Product)
	want := []string{"kyoto-tea", "flower-shop", "energy-sport", "kyoto-tea", "flower-shop", "energy-sport"}
	if len(products) != len(want) {
		t.Fatalf("%d products", len(products))
	}
	for i, p := range products {
		s := storeOf(p)
		if s.Slug != want[i] {
			t.Fatalf("%s: store %s, want %s", p.ID, s.Slug, want[i])
		}
		// The URL is the store's checkout endpoint base.
		body := lines(line(p.Variants[0].ID, 1))
		res, b := e.req("POST", strings.TrimPrefix(s.URL, e.srv.URL)+"/checkout-sessions", body)
		wantStatus(t, res, b, http.StatusCreated)
	}
}
