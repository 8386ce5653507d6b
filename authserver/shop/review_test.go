package shop_test

// Regression tests from the adversarial review of authserver/shop: each
// TestReview* failed on the reviewed code and guards the fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// racingStore simulates a concurrent writer (e.g. the owner's own
// update_checkout, or the hosted page) that lands between completion's read
// of the session and its CompleteSession, for the first `races` calls.
type racingStore struct {
	store.Commerce
	races int32
	n     atomic.Int32
}

func (r *racingStore) CompleteSession(ctx context.Context, s *store.Session, o *store.Order, takes []store.StockTake) error {
	if r.n.Add(1) <= r.races {
		if cur, err := r.Commerce.Session(ctx, s.Kind, s.ShopSlug, s.ID); err == nil {
			cur.UpdatedAt = time.Now()
			if err := r.Commerce.UpdateSession(ctx, cur); err != nil {
				return err
			}
		}
	}
	return r.Commerce.CompleteSession(ctx, s, o, takes)
}

// countingStore counts catalog searches.
type countingStore struct {
	store.Commerce
	searches atomic.Int64
}

func (c *countingStore) SearchProducts(ctx context.Context, q store.ProductQuery) ([]*store.Product, error) {
	c.searches.Add(1)
	return c.Commerce.SearchProducts(ctx, q)
}

func checkoutStatus(t *testing.T, b []byte) (string, []string) {
	t.Helper()
	c := decode[ucp.Checkout](t, b)
	return c.Status, messageCodes(c.Messages)
}

// 1. Paying with a rail the store does not offer: payment() validates only
// the first 10 instruments, but completion picks the selected instrument
// from the raw, untruncated list.
func TestReviewUnofferedRailViaEleventhInstrument(t *testing.T) {
	e := newEnv(t, nil)
	err := shop.PutSeedShop(t.Context(), e.store, shop.SeedShop{Slug: "crypto-only", Name: "Crypto Only", Currency: "USD",
		Config:   shop.Settings{Rails: []string{shop.HandlerCryptoID}},
		Products: []shop.SeedProduct{{ID: "widget", Title: "Widget", Variants: []shop.SeedVariant{{ID: "widget", Title: "Widget", Price: 1000, Stock: 5}}}},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := e.createCheckout("crypto-only", lines(line("widget", 1)))
	var inst []any
	for range 10 {
		inst = append(inst, map[string]any{"handler_id": shop.HandlerCryptoID, "type": "crypto"})
	}
	inst = append(inst, map[string]any{"handler_id": shop.HandlerCardID, "type": "card", "selected": true,
		"credential": map[string]any{"type": "token", "token": shop.TokenSuccess}})
	_, b := e.req("POST", "/s/crypto-only/checkout-sessions/"+c.ID+"/complete", map[string]any{"payment": map[string]any{"instruments": inst}})
	if st, _ := checkoutStatus(t, b); st == ucp.CheckoutCompleted {
		t.Fatalf("a crypto-only store placed an order paid with %s (11th instrument): %s", shop.HandlerCardID, b)
	}
}

// 2. AP2 lock (ucp.md §4 "once active the session is locked") and identity
// binding (§1.2): an authenticated platform creates the checkout under an
// AP2 profile, then completes naming another profile without AP2, and no
// mandate is asked for.
func TestReviewAP2LockBypassedBySwitchingProfile(t *testing.T) {
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
		t.Fatal("setup: AP2 not negotiated")
	}
	plain := newAgentServer(t) // same platform, a profile without AP2
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess),
		"UCP-Agent", `profile="`+plain.URL()+`"`)
	if st, _ := checkoutStatus(t, b); st == ucp.CheckoutCompleted {
		t.Fatalf("AP2-negotiated checkout completed without a mandate by switching UCP-Agent: %s", b)
	}
}

// 3. The hosted continue page pays any non-terminal checkout, not only an
// escalated one. continue_url is in every create/update response, so the
// agent itself can POST the form: the order is placed without the AP2
// mandate and is recorded as buyer_type "human".
func TestReviewHostedPageCompletesAP2CheckoutWithoutMandate(t *testing.T) {
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.Status != ucp.CheckoutReadyForComplete || c.ContinueURL == "" {
		t.Fatalf("setup: %s %q", c.Status, c.ContinueURL)
	}
	u, _ := url.Parse(c.ContinueURL)
	res, err := e.srv.Client().PostForm(e.srv.URL+u.Path, url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if st, _ := checkoutStatus(t, b); st == ucp.CheckoutCompleted {
		t.Fatalf("the agent completed a never-escalated AP2 checkout through continue_url, no mandate: %s", b)
	}
}

// 4. completeCheckout returns a nil *Reply after four lost races
// (placeOrder's retry with attempt == 3): Do then dereferences it in
// idempotent() and panics (REST: connection dropped; hosted page: same
// in payHosted; the idempotency claim is left pending).
func TestReviewCompleteNilReplyAfterLostRaces(t *testing.T) {
	e := newEnv(t, &envOptions{store: &racingStore{Commerce: sqlstoretest.SQLite(t), races: 100}})
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	body, _ := json.Marshal(cardPayment(shop.TokenSuccess))
	var rep *shop.Reply
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Service.Do panicked after lost races: %v", p)
			}
		}()
		rep = e.svc.Do(t.Context(), &shop.Request{Op: shop.OpCompleteCheckout, Shop: "flower-shop", ID: c.ID, Body: body,
			Agent: e.agent.URL(), IdempotencyKey: uuid(), Principal: &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "platform-a"}, BuyerType: "agent"})
	}()
	if rep == nil {
		t.Fatal("Service.Do returned nil")
	}
}

// 5. A valid AP2 mandate is consumed on the first attempt; when that
// attempt loses a race (ErrStale) the retry loop re-verifies the same
// mandate and refuses it as replayed.
func TestReviewMandateRefusedAsReplayAfterOneLostRace(t *testing.T) {
	e := newEnv(t, &envOptions{store: &racingStore{Commerce: sqlstoretest.SQLite(t), races: 1}})
	e.agent.set(func(a *agentServer) { a.caps = append(a.caps, ucp.CapAP2Mandate) })
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	base := "/s/flower-shop/checkout-sessions/" + c.ID
	_, cur := e.req("GET", base, nil)
	_, b := e.req("POST", base+"/complete", withMandate(cardPayment(shop.TokenSuccess), mint(t, e, "flower-shop", cur)))
	if st, codes := checkoutStatus(t, b); st != ucp.CheckoutCompleted {
		t.Fatalf("valid mandate refused after one concurrent no-op write (%v): %s", codes, b)
	}
}

// 6. Signing a response for /s/<anything>/ asks the KeySource for that
// slug; FileKeys (what serve uses) generates and writes a key file for
// every slug an anonymous caller invents (disk and memory growth, and the
// response of a non-existent store comes signed).
func TestReviewSignatureRequestMintsKeysForUnknownStores(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Keys = &shop.FileKeys{Dir: dir} }})
	for i := range 3 {
		slug := fmt.Sprintf("no-such-store-%d", i)
		res, b := e.req("GET", "/s/"+slug+"/.well-known/ucp", nil, "Accept-Signature", `sig1=("@status")`, "X-Test-Client", "", "UCP-Agent", "")
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("setup: %d %s", res.StatusCode, b)
		}
		if _, err := os.Stat(filepath.Join(dir, slug+".jwk")); err == nil {
			t.Fatalf("an anonymous request for unknown store %q wrote a signing key to disk (signed: %v)", slug, res.Header.Get("Signature") != "")
		}
	}
}

// 7. MCP authentication failure with a body that is not a JSON object
// (a batch, or anything else): rewriteRPCError gives up and the wrapper
// flushes the *request* body back with HTTP 200 (content type sniffed).
func TestReviewMCPAuthFailureEchoesRequestWith200(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`,
		`<html><body><script>alert(document.domain)</script></body></html>`,
	} {
		res, b := e.rpcPost("/s/flower-shop/mcp", []byte(body), "X-Test-Client", "bad")
		if res.StatusCode != http.StatusUnauthorized || string(b) == body {
			t.Fatalf("bad credentials: HTTP %d Content-Type %q, body echoed: %v\n%s", res.StatusCode, res.Header.Get("Content-Type"), string(b) == body, b)
		}
	}
}

// 8. mcp-go's DNS-rebinding guard is on: a request that arrives on a
// loopback address with a non-loopback Host gets 403. That is every MCP
// call in `serve` behind a same-host TLS proxy that keeps Host (Caddy's
// default; nginx with proxy_set_header Host $host), while REST works.
func TestReviewMCPForbiddenBehindLocalReverseProxy(t *testing.T) {
	e := newEnv(t, nil) // Dev off: the serve configuration
	send := func(method, path string, body []byte) *http.Response {
		r, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(string(body)))
		r.Host = "api.example.com" // as forwarded by the proxy
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("UCP-Agent", `profile="`+e.agent.URL()+`"`)
		res, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := send("POST", "/s/flower-shop/catalog/product", []byte(`{"id":"tulip_bunch"}`)); res.StatusCode != http.StatusOK {
		t.Fatalf("setup: REST %d", res.StatusCode)
	}
	rpc := mcpRequest(t, "get_product", e.mcpArgs("catalog", map[string]any{"id": "tulip_bunch"}))
	if res := send("POST", "/s/flower-shop/mcp", rpc); res.StatusCode != http.StatusOK {
		t.Fatalf("MCP behind a local proxy: HTTP %d (REST works)", res.StatusCode)
	}
}

// 9. get_product selection relaxation is cubic in the request: with every
// selection named by the *last* preference, each round scans
// |selected| x |preferences| and there are |selected| rounds. A 75 KB
// anonymous request burns seconds of CPU; a 1 MiB one, hours.
func TestReviewGetProductRelaxationCPU(t *testing.T) {
	e := newEnv(t, nil)
	const n = 250
	sel := make([]map[string]any, n)
	for i := range sel {
		sel[i] = map[string]any{"name": "zz", "label": "q"}
	}
	prefs := slices.Repeat([]string{"y"}, 100*n)
	prefs = append(prefs, "zz")
	body, _ := json.Marshal(map[string]any{"id": "trail-runner-x", "selected": sel, "preferences": prefs})
	start := time.Now()
	res, b := e.req("POST", "/catalog/product", body, "UCP-Agent", "", "X-Test-Client", "")
	took := time.Since(start)
	if res.StatusCode == http.StatusOK && took > 300*time.Millisecond {
		t.Fatalf("a %d-byte anonymous get_product took %v (status %d, %d bytes out)", len(body), took, res.StatusCode, len(b))
	}
}

// 10. Relevance search with a filter the store query cannot express
// (price max 0, or 2+ categories) pages through the whole catalog in
// batches of limit+1: an anonymous request with limit 1 costs one query
// per two products in every store.
func TestReviewSearchScansWholeCatalog(t *testing.T) {
	cs := &countingStore{Commerce: sqlstoretest.SQLite(t)}
	e := newEnv(t, &envOptions{store: cs})
	for _, filters := range []map[string]any{
		{"price": map[string]any{"max": 0}},
		{"categories": []string{"nope-a", "nope-b"}},
	} {
		cs.searches.Store(0)
		res, b := e.req("POST", "/catalog/search", map[string]any{"filters": filters, "pagination": map[string]any{"limit": 1}},
			"UCP-Agent", "", "X-Test-Client", "")
		wantStatus(t, res, b, http.StatusOK)
		if n := cs.searches.Load(); n > 2 {
			t.Fatalf("filters %v: one anonymous search ran %d store queries (O(catalog size))", filters, n)
		}
	}
}

// 11. A buyer token identifies the buyer, but sessions, orders and
// idempotency keys are scoped to the client only: two buyers of the same
// (public, installed) agent app see and replay each other's checkouts.
func TestReviewBuyersOfOneClientShareCheckouts(t *testing.T) {
	e := newEnv(t, nil)
	body := lines(line("bouquet_roses", 1))
	body["buyer"] = map[string]any{"email": "ada@example.com", "first_name": "Ada"}
	key := uuid()
	ada := []string{"X-Test-Client", "demo-agent", "X-Test-Buyer", "buyer_ada", "Idempotency-Key", key}
	bob := []string{"X-Test-Client", "demo-agent", "X-Test-Buyer", "buyer_bob"}
	c := e.createCheckout("flower-shop", body, ada...)
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, bob...)
	if got := decode[ucp.Checkout](t, b); got.ID == c.ID {
		t.Errorf("buyer_bob reads buyer_ada's checkout (buyer %+v)", got.Buyer)
	}
	_, b = e.req("POST", "/s/flower-shop/checkout-sessions", body, append(bob, "Idempotency-Key", key)...)
	if got := decode[ucp.Checkout](t, b); got.ID == c.ID {
		t.Errorf("buyer_bob's request with the same idempotency key replayed buyer_ada's checkout %s (continue_url token included)", got.ID)
	}
}

// 12. The business profile is cached per store forever: a store whose
// rails change (PutSeedShop) keeps advertising the old handlers in its
// profile and in every signed checkout's ucp.payment_handlers, while
// pricing reads the new settings and refuses them.
func TestReviewProfileCacheNeverRefreshed(t *testing.T) {
	e := newEnv(t, nil)
	e.req("GET", "/s/energy-sport/.well-known/ucp", nil)
	es := shop.DemoShops()[0]
	es.Config.Rails = []string{shop.HandlerCardID}
	if err := shop.PutSeedShop(t.Context(), e.store, es, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := lines(line("rr2-10", 1))
	body["fulfillment"] = usShipping
	c := e.createCheckout("energy-sport", body)
	if _, ok := c.UCP.PaymentHandlers[shop.HandlerCrypto]; ok {
		t.Fatalf("checkout advertises %s after the store dropped it (stale profile cache)", shop.HandlerCrypto)
	}
}

// 13. price_asc/price_desc sort only the first 1000 matches in (store, id)
// order: past 1000 matches the "cheapest first" page is not the cheapest,
// and paging ends at offset 1000, so the rest is unreachable.
func TestReviewPriceSortTruncatedAt1000(t *testing.T) {
	e := newEnv(t, nil)
	big := shop.SeedShop{Slug: "big-store", Name: "Big", Currency: "USD", Config: shop.Settings{Rails: []string{shop.HandlerCardID}}}
	for i := range 1000 {
		id := fmt.Sprintf("p%04d", i)
		big.Products = append(big.Products, shop.SeedProduct{ID: id, Title: "Thing " + id,
			Variants: []shop.SeedVariant{{ID: id, Title: "Thing " + id, Price: 500 + int64(i), Stock: -1}}})
	}
	big.Products = append(big.Products, shop.SeedProduct{ID: "zzz-cheapest", Title: "Cheapest thing",
		Variants: []shop.SeedVariant{{ID: "zzz-cheapest", Title: "Cheapest thing", Price: 1, Stock: -1}}})
	if err := shop.PutSeedShop(t.Context(), e.store, big, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.catSearch(t, "/s/big-store/catalog/search", map[string]any{"sort": "price_asc", "pagination": map[string]any{"limit": 1}})
	if len(r.Products) != 1 || r.Products[0].ID != "zzz-cheapest" {
		var got string
		if len(r.Products) > 0 {
			got = fmt.Sprintf("%s (price %d)", r.Products[0].ID, r.Products[0].PriceRange.Min.Amount)
		}
		t.Fatalf("price_asc first product %s, want zzz-cheapest (price 1); has_next_page %v", got, r.Pagination != nil && r.Pagination.HasNextPage)
	}
}
