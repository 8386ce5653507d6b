package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// RunCommerce runs the store.Commerce suite. open returns a new, empty
// store for each subtest and arranges for it to be closed. It is the first
// thing each subtest does, so it may call t.Parallel when the backend can
// run subtests side by side.
func RunCommerce(t *testing.T, open func(t *testing.T) store.Commerce) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Commerce)
	}{
		{"Shops", testShops},
		{"Products", testProducts},
		{"ProductVariantConflict", testProductVariantConflict},
		{"Variants", testVariants},
		{"SearchTerms", testSearchTerms},
		{"SearchCategory", testSearchCategory},
		{"SearchPrice", testSearchPrice},
		{"SearchPagination", testSearchPagination},
		{"Sessions", testSessions},
		{"CompleteSession", testCompleteSession},
		{"CompleteOrderConflict", testCompleteOrderConflict},
		{"CompleteOutOfStock", testCompleteOutOfStock},
		{"CompleteUntracked", testCompleteUntracked},
		{"CompleteStale", testCompleteStale},
		{"ConcurrentComplete", testConcurrentComplete},
		{"ConcurrentStock", testConcurrentStock},
		{"ConcurrentSharedVariants", testConcurrentSharedVariants},
		{"Idempotency", testIdempotency},
		{"IdempotencyLapsedLease", testIdempotencyLapsedLease},
		{"IdempotencyExpired", testIdempotencyExpired},
		{"IdempotencyRelease", testIdempotencyRelease},
		{"IdempotencySweep", testIdempotencySweep},
		{"SessionSweep", testSessionSweep},
		{"WebhookOutbox", testWebhookOutbox},
		{"ConcurrentWebhookClaims", testConcurrentWebhookClaims},
		{"WebhookDestinations", testWebhookDestinations},
		{"UpdateShopConfig", testUpdateShopConfig},
		{"ConcurrentShopConfig", testConcurrentShopConfig},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ConcurrentTakeOver", testConcurrentTakeOver},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func product(shop, id, text string, minPrice, maxPrice int64, currency string, categories ...string) *store.Product {
	return &store.Product{ShopSlug: shop, ID: id, Title: "Title " + id, Text: text, MinPrice: minPrice, MaxPrice: maxPrice,
		Currency: currency, Categories: categories, Doc: json.RawMessage(`{"id":"` + id + `"}`), UpdatedAt: t0}
}

func variant(id string, price, stock int64) *store.Variant {
	return &store.Variant{ID: id, Title: "Variant " + id, Price: price, Stock: stock, ImageURL: "https://img.example/" + id}
}

// stocked puts product p in shop with one variant per id, each with the
// given stock.
func stocked(t *testing.T, s store.Commerce, shop, p string, stock map[string]int64) {
	t.Helper()
	var vs []*store.Variant
	for _, id := range slices.Sorted(maps.Keys(stock)) {
		vs = append(vs, variant(id, 1000, stock[id]))
	}
	must(t, s.PutProduct(context.Background(), product(shop, p, p, 1000, 1000, "EUR"), vs))
}

func take(variant string, quantity int64) store.StockTake {
	return store.StockTake{VariantID: variant, Quantity: quantity}
}

func stockOf(t *testing.T, s store.Commerce, shop, id string) int64 {
	t.Helper()
	vs, err := s.Variants(context.Background(), shop, []string{id})
	must(t, err)
	v, ok := vs[id]
	if !ok {
		t.Fatalf("variant %s/%s is gone", shop, id)
	}
	return v.Stock
}

func ids(ps []*store.Product) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ShopSlug+"/"+p.ID)
	}
	return out
}

func search(t *testing.T, s store.Commerce, q store.ProductQuery, want ...string) {
	t.Helper()
	ps, err := s.SearchProducts(context.Background(), q)
	must(t, err)
	if got := ids(ps); !slices.Equal(got, want) {
		t.Fatalf("search %+v: got %v, want %v", q, got, want)
	}
}

func testShops(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutShop(ctx, &store.Shop{Slug: "zeta", Name: "Zeta", Currency: "USD", CreatedAt: t0}))
	must(t, s.PutShop(ctx, &store.Shop{Slug: "alpha", Name: "Alpha", Currency: "EUR", Config: json.RawMessage(`{"tax":20}`), CreatedAt: t0}))
	got, err := s.Shop(ctx, "alpha")
	must(t, err)
	if got.Name != "Alpha" || got.Currency != "EUR" || string(got.Config) != `{"tax":20}` || !got.CreatedAt.Equal(t0) {
		t.Fatalf("round trip: %+v", got)
	}
	must(t, s.PutShop(ctx, &store.Shop{Slug: "alpha", Name: "Alpha 2", Currency: "GBP", Config: json.RawMessage(`{"tax":5}`), CreatedAt: t0.Add(time.Hour)}))
	got, err = s.Shop(ctx, "alpha")
	must(t, err)
	if got.Name != "Alpha 2" || got.Currency != "GBP" || string(got.Config) != `{"tax":5}` || !got.CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("replace: %+v", got)
	}
	shops, err := s.Shops(ctx)
	must(t, err)
	if len(shops) != 2 || shops[0].Slug != "alpha" || shops[1].Slug != "zeta" || shops[0].Name != "Alpha 2" {
		t.Fatalf("shops: %+v", shops)
	}
	_, err = s.Shop(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "unknown shop")
}

func variantIDs(vs []*store.Variant) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func testProducts(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	p := product("a", "p1", "red running shoe", 1000, 2500, "EUR", "shoes", "running")
	must(t, s.PutProduct(ctx, p, []*store.Variant{variant("v-b", 1000, 5), variant("v-a", 2500, 0), variant("v-c", 1200, -1)}))
	got, err := s.Product(ctx, "a", "p1")
	must(t, err)
	if got.Title != "Title p1" || got.Text != "red running shoe" || got.MinPrice != 1000 || got.MaxPrice != 2500 ||
		got.Currency != "EUR" || !slices.Equal(got.Categories, []string{"shoes", "running"}) ||
		string(got.Doc) != `{"id":"p1"}` || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("round trip: %+v", got)
	}
	vs, err := s.ProductVariants(ctx, "a", "p1")
	must(t, err)
	if !slices.Equal(variantIDs(vs), []string{"v-b", "v-a", "v-c"}) {
		t.Fatalf("variants not in insertion order: %v", variantIDs(vs))
	}
	if v := vs[2]; v.ShopSlug != "a" || v.ProductID != "p1" || v.Title != "Variant v-c" || v.Price != 1200 ||
		v.Stock != -1 || v.ImageURL != "https://img.example/v-c" {
		t.Fatalf("variant round trip: %+v", v)
	}

	// Replacing drops v-b, updates v-c and takes the new order.
	p = product("a", "p1", "red trail shoe", 900, 1300, "EUR", "shoes")
	p.Title, p.UpdatedAt = "New title", t0.Add(time.Hour)
	must(t, s.PutProduct(ctx, p, []*store.Variant{variant("v-c", 1300, 9), variant("v-a", 900, 2)}))
	got, err = s.Product(ctx, "a", "p1")
	must(t, err)
	if got.Title != "New title" || got.Text != "red trail shoe" || got.MinPrice != 900 || !slices.Equal(got.Categories, []string{"shoes"}) ||
		!got.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("replaced product: %+v", got)
	}
	vs, err = s.ProductVariants(ctx, "a", "p1")
	must(t, err)
	if !slices.Equal(variantIDs(vs), []string{"v-c", "v-a"}) || vs[0].Stock != 9 || vs[0].Price != 1300 || vs[1].Stock != 2 {
		t.Fatalf("replaced variants: %+v", vs)
	}
	m, err := s.Variants(ctx, "a", []string{"v-b"})
	must(t, err)
	if len(m) != 0 {
		t.Fatalf("dropped variant still stored: %+v", m["v-b"])
	}
	// The category list was replaced too.
	search(t, s, store.ProductQuery{Category: "running"})
	search(t, s, store.ProductQuery{Category: "shoes"}, "a/p1")

	_, err = s.Product(ctx, "a", "nope")
	wantErr(t, err, store.ErrNotFound, "unknown product")
	_, err = s.Product(ctx, "b", "p1")
	wantErr(t, err, store.ErrNotFound, "product of another shop")
	vs, err = s.ProductVariants(ctx, "a", "nope")
	must(t, err)
	if len(vs) != 0 {
		t.Fatalf("variants of an unknown product: %v", variantIDs(vs))
	}
}

// testProductVariantConflict: a variant id belongs to one product of a
// shop; taking it from another product fails and changes nothing.
func testProductVariantConflict(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutProduct(ctx, product("a", "p1", "one", 100, 100, "EUR"), []*store.Variant{variant("v1", 100, 3), variant("v2", 100, 4)}))
	must(t, s.PutProduct(ctx, product("a", "p2", "two", 100, 100, "EUR"), []*store.Variant{variant("v3", 100, 1)}))

	err := s.PutProduct(ctx, product("a", "p3", "three", 100, 100, "EUR"), []*store.Variant{variant("v0", 100, 1), variant("v1", 100, 99)})
	wantErr(t, err, store.ErrConflict, "new product taking another's variant")
	_, err = s.Product(ctx, "a", "p3")
	wantErr(t, err, store.ErrNotFound, "product of a failed put")
	m, err := s.Variants(ctx, "a", []string{"v0", "v1"})
	must(t, err)
	if _, ok := m["v0"]; ok || m["v1"].ProductID != "p1" || m["v1"].Stock != 3 {
		t.Fatalf("failed put left changes: %+v %+v", m["v0"], m["v1"])
	}

	p2 := product("a", "p2", "two changed", 100, 100, "EUR")
	err = s.PutProduct(ctx, p2, []*store.Variant{variant("v2", 100, 50)})
	wantErr(t, err, store.ErrConflict, "existing product taking another's variant")
	got, err := s.Product(ctx, "a", "p2")
	must(t, err)
	vs, err := s.ProductVariants(ctx, "a", "p2")
	must(t, err)
	if got.Text != "two" || !slices.Equal(variantIDs(vs), []string{"v3"}) {
		t.Fatalf("failed put changed p2: %+v %v", got, variantIDs(vs))
	}
	if vs, _ := s.ProductVariants(ctx, "a", "p1"); !slices.Equal(variantIDs(vs), []string{"v1", "v2"}) || vs[1].Stock != 4 {
		t.Fatalf("failed put changed p1's variants: %+v", vs)
	}

	// Variant ids are per shop.
	must(t, s.PutProduct(ctx, product("b", "p9", "other shop", 100, 100, "EUR"), []*store.Variant{variant("v1", 100, 7)}))
}

func testVariants(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutProduct(ctx, product("a", "p1", "one", 100, 200, "EUR"), []*store.Variant{variant("v1", 100, 3), variant("v2", 200, -1)}))
	must(t, s.PutProduct(ctx, product("a", "p2", "two", 300, 300, "EUR"), []*store.Variant{variant("v3", 300, 0)}))
	must(t, s.PutProduct(ctx, product("b", "p1", "other", 100, 100, "EUR"), []*store.Variant{variant("v4", 100, 1)}))
	m, err := s.Variants(ctx, "a", []string{"v3", "nope", "v1", "v4"})
	must(t, err)
	if len(m) != 2 || m["v1"].ProductID != "p1" || m["v1"].Stock != 3 || m["v1"].Price != 100 || m["v3"].ProductID != "p2" {
		t.Fatalf("variants: %v", m)
	}
	m, err = s.Variants(ctx, "a", nil)
	must(t, err)
	if len(m) != 0 {
		t.Fatalf("no ids: %v", m)
	}
	// A long id list (a big cart) finds what it names, wherever it sits.
	many := make([]string, 1200)
	for i := range many {
		many[i] = fmt.Sprintf("missing-%d", i)
	}
	many[0], many[700], many[1199] = "v1", "v2", "v3"
	m, err = s.Variants(ctx, "a", many)
	must(t, err)
	if len(m) != 3 || m["v2"] == nil || m["v3"] == nil {
		t.Fatalf("long id list: %v", m)
	}
}

func testSearchTerms(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	for _, p := range []*store.Product{
		product("a", "p1", "red running shoe", 100, 100, "EUR"),
		product("a", "p2", "blue running shoe", 100, 100, "EUR"),
		product("a", "p3", "red hat", 100, 100, "EUR"),
		product("a", "p4", "100% cotton_tee", 100, 100, "EUR"),
		product("b", "p1", "red scarf", 100, 100, "EUR"),
	} {
		must(t, s.PutProduct(ctx, p, nil))
	}
	search(t, s, store.ProductQuery{}, "a/p1", "a/p2", "a/p3", "a/p4", "b/p1")
	search(t, s, store.ProductQuery{Terms: []string{"red"}}, "a/p1", "a/p3", "b/p1")
	search(t, s, store.ProductQuery{Terms: []string{"red", "shoe"}}, "a/p1")
	search(t, s, store.ProductQuery{Terms: []string{"unn"}}, "a/p1", "a/p2")
	search(t, s, store.ProductQuery{Terms: []string{"red", "green"}})
	search(t, s, store.ProductQuery{Terms: []string{"red"}, ShopSlug: "b"}, "b/p1")
	// Terms are literal substrings, not patterns.
	search(t, s, store.ProductQuery{Terms: []string{"%"}}, "a/p4")
	search(t, s, store.ProductQuery{Terms: []string{"_"}}, "a/p4")
	search(t, s, store.ProductQuery{Terms: []string{"r%d"}})
}

func testSearchCategory(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutProduct(ctx, product("a", "p1", "x", 100, 100, "EUR", "shoes", "running shoes"), nil))
	must(t, s.PutProduct(ctx, product("a", "p2", "x", 100, 100, "EUR", "shoes/trail"), nil))
	must(t, s.PutProduct(ctx, product("a", "p3", "x", 100, 100, "EUR", `say "hi"`, "a,b"), nil))
	must(t, s.PutProduct(ctx, product("a", "p4", "x", 100, 100, "EUR"), nil))
	search(t, s, store.ProductQuery{Category: "shoes"}, "a/p1")
	search(t, s, store.ProductQuery{Category: "running shoes"}, "a/p1")
	search(t, s, store.ProductQuery{Category: "shoes/trail"}, "a/p2")
	for _, c := range []string{"shoe", "running", "trail", "hoes", `"shoes"`, "a", "b", `say`, `hi`} {
		search(t, s, store.ProductQuery{Category: c})
	}
	search(t, s, store.ProductQuery{Category: `say "hi"`}, "a/p3")
	search(t, s, store.ProductQuery{Category: "a,b"}, "a/p3")
	search(t, s, store.ProductQuery{Category: "shoes", ShopSlug: "b"})
	// Categories: any of them, exactly.
	search(t, s, store.ProductQuery{Categories: []string{"shoes/trail", "a,b"}}, "a/p2", "a/p3")
	search(t, s, store.ProductQuery{Categories: []string{"shoe", "trail"}})
	search(t, s, store.ProductQuery{Categories: []string{"shoes", "shoes/trail"}, Category: "running shoes"}, "a/p1")
}

func testSearchPrice(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	for _, p := range []*store.Product{
		product("a", "p1", "x", 1000, 2000, "EUR"),
		product("a", "p2", "x", 500, 800, "EUR"),
		product("a", "p3", "x", 3000, 3000, "USD"),
		product("a", "p4", "x", 1500, 1500, "USD"),
	} {
		must(t, s.PutProduct(ctx, p, nil))
	}
	search(t, s, store.ProductQuery{MinPrice: i64(1000)}, "a/p1", "a/p3", "a/p4")
	search(t, s, store.ProductQuery{MinPrice: i64(2000)}, "a/p1", "a/p3")
	search(t, s, store.ProductQuery{MinPrice: i64(2001)}, "a/p3")
	search(t, s, store.ProductQuery{MaxPrice: i64(900)}, "a/p2")
	search(t, s, store.ProductQuery{MaxPrice: i64(500)}, "a/p2")
	search(t, s, store.ProductQuery{MaxPrice: i64(499)})
	search(t, s, store.ProductQuery{MinPrice: i64(1200), MaxPrice: i64(1800)}, "a/p1", "a/p4")
	search(t, s, store.ProductQuery{MinPrice: i64(1200), MaxPrice: i64(1800), Currency: "EUR"}, "a/p1")
	search(t, s, store.ProductQuery{MaxPrice: i64(5000), Currency: "USD"}, "a/p3", "a/p4")
	// Without a price bound the currency does not filter.
	search(t, s, store.ProductQuery{Currency: "EUR"}, "a/p1", "a/p2", "a/p3", "a/p4")
	// Zero is a bound, not "no bound".
	search(t, s, store.ProductQuery{MaxPrice: i64(0)})
	must(t, s.PutProduct(ctx, product("b", "free", "x", 0, 0, "EUR"), nil))
	search(t, s, store.ProductQuery{MaxPrice: i64(0)}, "b/free")
	// Price orders, ties by (shop, id), paged by offset.
	search(t, s, store.ProductQuery{Order: "price_asc"}, "b/free", "a/p2", "a/p1", "a/p4", "a/p3")
	search(t, s, store.ProductQuery{Order: "price_desc"}, "a/p3", "a/p4", "a/p1", "a/p2", "b/free")
	search(t, s, store.ProductQuery{Order: "price_asc", Offset: 1, Limit: 2}, "a/p2", "a/p1")
	search(t, s, store.ProductQuery{Order: "price_desc", Offset: 4, Limit: 2}, "b/free")
	if _, err := s.SearchProducts(ctx, store.ProductQuery{Order: "name"}); err == nil {
		t.Fatal("unknown order accepted")
	}
}

func i64(v int64) *int64 { return &v }

func testSearchPagination(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	// Both shops use the same ids, so only the (shop, id) pair orders them.
	for _, p := range []*store.Product{
		product("b", "p2", "x", 100, 100, "EUR"),
		product("a", "p3", "x", 100, 100, "EUR"),
		product("a", "p1", "x", 100, 100, "EUR"),
		product("b", "p1", "x", 100, 100, "EUR"),
		product("a", "p2", "x", 100, 100, "EUR"),
		product("a", "p0", "skip", 100, 100, "EUR"),
	} {
		must(t, s.PutProduct(ctx, p, nil))
	}
	q := store.ProductQuery{Terms: []string{"x"}, Limit: 2}
	search(t, s, q, "a/p1", "a/p2")
	q.AfterShop, q.AfterID = "a", "p2"
	search(t, s, q, "a/p3", "b/p1")
	q.AfterShop, q.AfterID = "b", "p1"
	search(t, s, q, "b/p2")
	q.AfterShop, q.AfterID = "b", "p2"
	search(t, s, q)
	search(t, s, store.ProductQuery{AfterShop: "a", AfterID: "p9"}, "b/p1", "b/p2")
	search(t, s, store.ProductQuery{ShopSlug: "a", AfterShop: "a", AfterID: "p1", Limit: 1}, "a/p2")
	search(t, s, store.ProductQuery{Limit: 0}, "a/p0", "a/p1", "a/p2", "a/p3", "b/p1", "b/p2")
}

func newSession(shop, id string) *store.Session {
	return &store.Session{Kind: store.KindCheckout, ShopSlug: shop, ID: id, Owner: "client:c1", Status: "incomplete",
		Doc: json.RawMessage(`{"status":"incomplete"}`), CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(6 * time.Hour)}
}

func session(t *testing.T, s store.Commerce, shop, id string) *store.Session {
	t.Helper()
	got, err := s.Session(context.Background(), store.KindCheckout, shop, id)
	must(t, err)
	return got
}

func testSessions(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	sess := newSession("a", "cs1")
	sess.Version = 7 // ignored: a new session starts at 1
	must(t, s.CreateSession(ctx, sess))
	got := session(t, s, "a", "cs1")
	if got.Kind != store.KindCheckout || got.Owner != "client:c1" || got.Status != "incomplete" || got.Version != 1 ||
		string(got.Doc) != `{"status":"incomplete"}` || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) ||
		!got.ExpiresAt.Equal(t0.Add(6*time.Hour)) {
		t.Fatalf("round trip: %+v", got)
	}
	wantErr(t, s.CreateSession(ctx, newSession("a", "cs1")), store.ErrConflict, "duplicate session")
	// Kind and shop are part of the key.
	cart := newSession("a", "cs1")
	cart.Kind = store.KindCart
	must(t, s.CreateSession(ctx, cart))
	must(t, s.CreateSession(ctx, newSession("b", "cs1")))
	_, err := s.Session(ctx, store.KindCheckout, "a", "nope")
	wantErr(t, err, store.ErrNotFound, "unknown session")
	_, err = s.Session(ctx, store.KindCart, "b", "cs1")
	wantErr(t, err, store.ErrNotFound, "session of another kind")

	upd := *got
	upd.Status, upd.Doc = "ready_for_complete", json.RawMessage(`{"status":"ready_for_complete"}`)
	upd.UpdatedAt, upd.ExpiresAt = t0.Add(time.Minute), t0.Add(7*time.Hour)
	upd.Owner, upd.CreatedAt = "platform:p|buyer:b1", t0.Add(time.Hour) // refiled; CreatedAt is not updatable
	must(t, s.UpdateSession(ctx, &upd))
	if upd.Version != 2 {
		t.Fatalf("caller's version after update: %d", upd.Version)
	}
	got = session(t, s, "a", "cs1")
	if got.Version != 2 || got.Status != "ready_for_complete" || string(got.Doc) != `{"status":"ready_for_complete"}` ||
		!got.UpdatedAt.Equal(t0.Add(time.Minute)) || !got.ExpiresAt.Equal(t0.Add(7*time.Hour)) ||
		got.Owner != "platform:p|buyer:b1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after update: %+v", got)
	}
	must(t, s.UpdateSession(ctx, &upd))
	if upd.Version != 3 || session(t, s, "a", "cs1").Version != 3 {
		t.Fatalf("second update: caller at %d", upd.Version)
	}

	stale := *got // read at version 2
	stale.Status, stale.Doc = "canceled", json.RawMessage(`{"status":"canceled"}`)
	wantErr(t, s.UpdateSession(ctx, &stale), store.ErrStale, "stale update")
	if stale.Version != 2 {
		t.Fatalf("stale update moved the caller's version to %d", stale.Version)
	}
	if got := session(t, s, "a", "cs1"); got.Version != 3 || got.Status != "ready_for_complete" {
		t.Fatalf("stale update changed the session: %+v", got)
	}
	// The other sessions sharing the id are untouched.
	if c, err := s.Session(ctx, store.KindCart, "a", "cs1"); err != nil || c.Version != 1 || c.Status != "incomplete" {
		t.Fatalf("cart with the same id: %+v %v", c, err)
	}
	if got := session(t, s, "b", "cs1"); got.Version != 1 {
		t.Fatalf("other shop's session: %+v", got)
	}

	missing := newSession("a", "nope")
	missing.Version = 1
	wantErr(t, s.UpdateSession(ctx, missing), store.ErrNotFound, "update of an unknown session")
}

func newOrder(shop, id, checkout string) *store.Order {
	return &store.Order{ShopSlug: shop, ID: id, CheckoutID: checkout, Owner: "client:c1", ClientID: "c1", BuyerID: "b1",
		BuyerType: "agent", Doc: json.RawMessage(`{"id":"` + id + `"}`), CreatedAt: t0.Add(time.Minute)}
}

// completed is sess as the caller would complete it.
func completed(sess *store.Session) *store.Session {
	c := *sess
	c.Status, c.Doc, c.UpdatedAt = "completed", json.RawMessage(`{"status":"completed"}`), t0.Add(time.Minute)
	return &c
}

func created(t *testing.T, s store.Commerce, shop, id string) *store.Session {
	t.Helper()
	sess := newSession(shop, id)
	must(t, s.CreateSession(context.Background(), sess))
	return session(t, s, shop, id)
}

func noOrder(t *testing.T, s store.Commerce, shop, id string) {
	t.Helper()
	_, err := s.Order(context.Background(), shop, id)
	wantErr(t, err, store.ErrNotFound, "order "+id)
}

func testCompleteSession(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 5, "v2": 3, "v3": -1, "v4": 8})
	sess := completed(created(t, s, "a", "cs1"))
	o := newOrder("a", "o1", "cs1")
	must(t, s.CompleteSession(ctx, sess, o, []store.StockTake{take("v2", 1), take("v1", 2), take("v3", 4), take("v1", 1)}))
	if sess.Version != 2 {
		t.Fatalf("caller's version after completion: %d", sess.Version)
	}
	got := session(t, s, "a", "cs1")
	if got.Version != 2 || got.Status != "completed" || string(got.Doc) != `{"status":"completed"}` || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("session after completion: %+v", got)
	}
	for id, want := range map[string]int64{"v1": 2, "v2": 2, "v3": -1, "v4": 8} {
		if got := stockOf(t, s, "a", id); got != want {
			t.Errorf("stock of %s: %d, want %d", id, got, want)
		}
	}
	ord, err := s.Order(ctx, "a", "o1")
	must(t, err)
	if ord.CheckoutID != "cs1" || ord.Owner != "client:c1" || ord.ClientID != "c1" || ord.BuyerID != "b1" || ord.BuyerType != "agent" ||
		string(ord.Doc) != `{"id":"o1"}` || !ord.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("order round trip: %+v", ord)
	}
	noOrder(t, s, "a", "nope")
	noOrder(t, s, "b", "o1")

	// No stock takes at all (a digital good) is fine too.
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs2")), newOrder("a", "o2", "cs2"), nil))
}

// testCompleteOrderConflict: an order id or checkout that already has an
// order fails the whole completion.
func testCompleteOrderConflict(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 5})
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs1")), newOrder("a", "o1", "cs1"), []store.StockTake{take("v1", 1)}))
	sess := completed(created(t, s, "a", "cs2"))
	for _, o := range []*store.Order{newOrder("a", "o1", "cs2"), newOrder("a", "o2", "cs1")} {
		err := s.CompleteSession(ctx, sess, o, []store.StockTake{take("v1", 1)})
		wantErr(t, err, store.ErrConflict, "order "+o.ID+" for checkout "+o.CheckoutID)
		if got := session(t, s, "a", "cs2"); got.Version != 1 || got.Status != "incomplete" || sess.Version != 1 {
			t.Fatalf("conflicting order changed the session: %+v (caller at %d)", got, sess.Version)
		}
		if got := stockOf(t, s, "a", "v1"); got != 4 {
			t.Fatalf("conflicting order took stock: %d left", got)
		}
	}
	noOrder(t, s, "a", "o2")
	if o, _ := s.Order(ctx, "a", "o1"); o.CheckoutID != "cs1" {
		t.Fatalf("first order overwritten: %+v", o)
	}
	// The same order id in another shop is another order.
	must(t, s.CompleteSession(ctx, completed(created(t, s, "b", "cs1")), newOrder("b", "o1", "cs1"), nil))
}

func testCompleteOutOfStock(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 5, "v2": 1, "v3": 0})
	sess := completed(created(t, s, "a", "cs1"))
	check := func(takes []store.StockTake, variant string, available int64) {
		t.Helper()
		err := s.CompleteSession(ctx, sess, newOrder("a", "o1", "cs1"), takes)
		var oos *store.OutOfStockError
		if !errors.As(err, &oos) {
			t.Fatalf("takes %v: got %v, want an OutOfStockError", takes, err)
		}
		if oos.VariantID != variant || oos.Available != available {
			t.Fatalf("takes %v: %+v, want %s with %d available", takes, oos, variant, available)
		}
		if sess.Version != 1 {
			t.Fatalf("failed completion moved the caller's version to %d", sess.Version)
		}
		if got := session(t, s, "a", "cs1"); got.Version != 1 || got.Status != "incomplete" || string(got.Doc) != `{"status":"incomplete"}` {
			t.Fatalf("failed completion changed the session: %+v", got)
		}
		noOrder(t, s, "a", "o1")
		for id, want := range map[string]int64{"v1": 5, "v2": 1, "v3": 0} {
			if got := stockOf(t, s, "a", id); got != want {
				t.Fatalf("failed completion left %s at %d, want %d", id, got, want)
			}
		}
	}
	// v1 is taken before v2 runs short: its decrement must roll back.
	check([]store.StockTake{take("v1", 2), take("v2", 2)}, "v2", 1)
	check([]store.StockTake{take("v2", 1), take("v2", 1)}, "v2", 0)
	check([]store.StockTake{take("v1", 1), take("v3", 1)}, "v3", 0)
	check([]store.StockTake{take("v1", 3), take("zz", 1)}, "zz", 0)
	check([]store.StockTake{take("v1", 6)}, "v1", 5)
	// Exactly what is left is enough.
	must(t, s.CompleteSession(ctx, sess, newOrder("a", "o1", "cs1"), []store.StockTake{take("v1", 5), take("v2", 1)}))
	if stockOf(t, s, "a", "v1") != 0 || stockOf(t, s, "a", "v2") != 0 {
		t.Fatal("stock not taken to zero")
	}
}

func testCompleteUntracked(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": -1, "v2": 2})
	for i := range 3 {
		id := fmt.Sprintf("cs%d", i)
		must(t, s.CompleteSession(ctx, completed(created(t, s, "a", id)), newOrder("a", "o"+id, id), []store.StockTake{take("v1", 1000)}))
	}
	if got := stockOf(t, s, "a", "v1"); got != -1 {
		t.Fatalf("untracked stock changed to %d", got)
	}
	// An untracked variant does not cover a tracked one in the same order.
	err := s.CompleteSession(ctx, completed(created(t, s, "a", "cs9")), newOrder("a", "o9", "cs9"), []store.StockTake{take("v1", 1), take("v2", 3)})
	var oos *store.OutOfStockError
	if !errors.As(err, &oos) || oos.VariantID != "v2" {
		t.Fatalf("got %v, want v2 out of stock", err)
	}
}

func testCompleteStale(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 5})
	read := created(t, s, "a", "cs1")
	moved := *read
	moved.Status, moved.Doc = "ready_for_complete", json.RawMessage(`{"moved":true}`)
	must(t, s.UpdateSession(ctx, &moved))

	stale := completed(read)
	wantErr(t, s.CompleteSession(ctx, stale, newOrder("a", "o1", "cs1"), []store.StockTake{take("v1", 2)}), store.ErrStale, "stale completion")
	if stale.Version != 1 {
		t.Fatalf("stale completion moved the caller's version to %d", stale.Version)
	}
	if got := session(t, s, "a", "cs1"); got.Version != 2 || string(got.Doc) != `{"moved":true}` {
		t.Fatalf("stale completion changed the session: %+v", got)
	}
	if got := stockOf(t, s, "a", "v1"); got != 5 {
		t.Fatalf("stale completion took stock: %d left", got)
	}
	noOrder(t, s, "a", "o1")

	missing := completed(newSession("a", "nope"))
	missing.Version = 1
	wantErr(t, s.CompleteSession(ctx, missing, newOrder("a", "o2", "nope"), []store.StockTake{take("v1", 1)}), store.ErrNotFound, "completion of an unknown session")
	if got := stockOf(t, s, "a", "v1"); got != 5 {
		t.Fatalf("completion of an unknown session took stock: %d left", got)
	}
	noOrder(t, s, "a", "o2")
}

// warmUpCommerce runs n overlapping reads so a pooled store has
// connections ready and the contenders that follow really overlap.
func warmUpCommerce(s store.Commerce, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range 5 {
				s.Shop(context.Background(), "none")
			}
		})
	}
	wg.Wait()
}

// testConcurrentComplete: 20 completions of one session read at one
// version. One places its order; the others are stale and change nothing.
func testConcurrentComplete(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 100})
	read := completed(created(t, s, "a", "cs1"))
	const n = 20
	warmUpCommerce(s, n)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     []string
		stale  int
		others []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			sess := *read
			o := newOrder("a", fmt.Sprintf("o%d", i), "cs1")
			<-start
			err := s.CompleteSession(ctx, &sess, o, []store.StockTake{take("v1", 1)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok = append(ok, o.ID)
			case errors.Is(err, store.ErrStale):
				stale++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(others), others[0])
	}
	if len(ok) != 1 || stale != n-1 {
		t.Fatalf("%d completed, %d stale", len(ok), stale)
	}
	if got := stockOf(t, s, "a", "v1"); got != 99 {
		t.Fatalf("stock %d, want 99", got)
	}
	if got := session(t, s, "a", "cs1"); got.Version != 2 {
		t.Fatalf("session at version %d", got.Version)
	}
	for i := range n {
		id := fmt.Sprintf("o%d", i)
		if id == ok[0] {
			_, err := s.Order(ctx, "a", id)
			must(t, err)
		} else {
			noOrder(t, s, "a", id)
		}
	}
}

// testConcurrentStock: 30 checkouts race for 10 units. Exactly 10 orders
// are placed and the stock ends at zero, never below.
func testConcurrentStock(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 10})
	const n = 30
	sessions := make([]*store.Session, n)
	for i := range sessions {
		sessions[i] = completed(created(t, s, "a", fmt.Sprintf("cs%d", i)))
	}
	warmUpCommerce(s, n)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed = map[string]bool{}
		oos    int
		others []error
	)
	start := make(chan struct{})
	for _, sess := range sessions {
		wg.Go(func() {
			o := newOrder("a", "o-"+sess.ID, sess.ID)
			<-start
			err := s.CompleteSession(ctx, sess, o, []store.StockTake{take("v1", 1)})
			var e *store.OutOfStockError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				placed[sess.ID] = true
			case errors.As(err, &e) && e.VariantID == "v1" && e.Available == 0:
				oos++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(others), others[0])
	}
	if len(placed) != 10 || oos != n-10 {
		t.Fatalf("%d placed, %d out of stock", len(placed), oos)
	}
	if got := stockOf(t, s, "a", "v1"); got != 0 {
		t.Fatalf("stock %d, want 0", got)
	}
	for _, sess := range sessions {
		got := session(t, s, "a", sess.ID)
		_, err := s.Order(ctx, "a", "o-"+sess.ID)
		if placed[sess.ID] {
			must(t, err)
			if got.Version != 2 {
				t.Fatalf("placed %s at version %d", sess.ID, got.Version)
			}
		} else {
			wantErr(t, err, store.ErrNotFound, "order of a checkout that ran out of stock")
			if got.Version != 1 {
				t.Fatalf("out-of-stock %s moved to version %d", sess.ID, got.Version)
			}
		}
	}
}

// testConcurrentSharedVariants: orders naming the same variants in
// opposite orders all go through; none fails on a lock-order deadlock.
func testConcurrentSharedVariants(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	stocked(t, s, "a", "p1", map[string]int64{"v1": 100, "v2": 100, "v3": 100})
	const n = 20
	sessions := make([]*store.Session, n)
	for i := range sessions {
		sessions[i] = completed(created(t, s, "a", fmt.Sprintf("cs%d", i)))
	}
	warmUpCommerce(s, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := make(chan struct{})
	for i, sess := range sessions {
		takes := []store.StockTake{take("v1", 1), take("v2", 1), take("v3", 1)}
		if i%2 == 1 {
			slices.Reverse(takes)
		}
		wg.Go(func() {
			<-start
			if err := s.CompleteSession(ctx, sess, newOrder("a", "o-"+sess.ID, sess.ID), takes); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d failed, first: %v", len(errs), n, errs[0])
	}
	for _, id := range []string{"v1", "v2", "v3"} {
		if got := stockOf(t, s, "a", id); got != 100-n {
			t.Fatalf("stock of %s: %d, want %d", id, got, 100-n)
		}
	}
}

var idemKey = store.IdemKey{Scope: "client:c1", Key: "k1"}

func claim(t *testing.T, s store.Commerce, k store.IdemKey, reqHash string, now time.Time, lease, ttl time.Duration) (*store.IdemRecord, error) {
	t.Helper()
	return s.ClaimIdempotency(context.Background(), k, []byte(reqHash), now, lease, ttl)
}

// claimed asserts a claim wins.
func claimed(t *testing.T, s store.Commerce, k store.IdemKey, reqHash string, now time.Time, lease, ttl time.Duration) {
	t.Helper()
	rec, err := claim(t, s, k, reqHash, now, lease, ttl)
	if rec != nil || err != nil {
		t.Fatalf("claim %s at %v: got %+v, %v, want it claimed", k.Key, now.Sub(t0), rec, err)
	}
}

// pending asserts a claim finds the key held by reqHash's request.
func pending(t *testing.T, s store.Commerce, k store.IdemKey, reqHash string, now time.Time) *store.IdemRecord {
	t.Helper()
	rec, err := claim(t, s, k, "other", now, time.Second, time.Hour)
	wantErr(t, err, store.ErrInProgress, "claim of a held key")
	if rec == nil || rec.Done || string(rec.RequestHash) != reqHash {
		t.Fatalf("held key: %+v, want pending %s", rec, reqHash)
	}
	return rec
}

func testIdempotency(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	claimed(t, s, idemKey, "h1", t0, 30*time.Second, 24*time.Hour)
	rec := pending(t, s, idemKey, "h1", t0.Add(29*time.Second))
	if !rec.CreatedAt.Equal(t0) || !rec.LeaseUntil.Equal(t0.Add(30*time.Second)) || !rec.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("pending record times: %+v", rec)
	}
	// Keys are per scope.
	claimed(t, s, store.IdemKey{Scope: "client:c2", Key: "k1"}, "h1", t0, 30*time.Second, 24*time.Hour)

	must(t, s.FinishIdempotency(ctx, idemKey, 201, []byte(`{"id":"o1"}`)))
	// Done outlives the lease: a retry long after gets the response.
	for _, h := range []string{"h1", "h2"} {
		rec, err := claim(t, s, idemKey, h, t0.Add(time.Hour), 30*time.Second, 24*time.Hour)
		must(t, err)
		if rec == nil || !rec.Done || rec.Status != 201 || string(rec.Body) != `{"id":"o1"}` || string(rec.RequestHash) != "h1" ||
			!rec.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("done record for a %s retry: %+v", h, rec)
		}
	}
}

func testIdempotencyLapsedLease(t *testing.T, s store.Commerce) {
	claimed(t, s, idemKey, "h1", t0, 30*time.Second, 24*time.Hour)
	pending(t, s, idemKey, "h1", t0.Add(30*time.Second-time.Millisecond))
	// The claimant died: at the end of its lease the key is up for grabs.
	claimed(t, s, idemKey, "h2", t0.Add(30*time.Second), 30*time.Second, 24*time.Hour)
	rec := pending(t, s, idemKey, "h2", t0.Add(31*time.Second))
	if !rec.LeaseUntil.Equal(t0.Add(60*time.Second)) || !rec.CreatedAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("taken-over record: %+v", rec)
	}
}

func testIdempotencyExpired(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	claimed(t, s, idemKey, "h1", t0, 30*time.Second, time.Hour)
	must(t, s.FinishIdempotency(ctx, idemKey, 200, []byte("first")))
	rec, err := claim(t, s, idemKey, "h2", t0.Add(time.Hour-time.Millisecond), 30*time.Second, time.Hour)
	must(t, err)
	if rec == nil || !rec.Done {
		t.Fatalf("record before expiry: %+v", rec)
	}
	claimed(t, s, idemKey, "h2", t0.Add(time.Hour), 30*time.Second, time.Hour)
	rec = pending(t, s, idemKey, "h2", t0.Add(time.Hour+time.Second))
	if rec.Status != 0 || len(rec.Body) != 0 || !rec.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("new claim kept the expired response: %+v", rec)
	}
}

func testIdempotencyRelease(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	claimed(t, s, idemKey, "h1", t0, time.Minute, time.Hour)
	must(t, s.ReleaseIdempotency(ctx, idemKey))
	// Released inside its lease, the key is free at once.
	claimed(t, s, idemKey, "h2", t0.Add(time.Second), time.Minute, time.Hour)

	done := store.IdemKey{Scope: "client:c1", Key: "k2"}
	claimed(t, s, done, "h1", t0, time.Minute, time.Hour)
	must(t, s.FinishIdempotency(ctx, done, 200, []byte("kept")))
	must(t, s.ReleaseIdempotency(ctx, done))
	rec, err := claim(t, s, done, "h1", t0.Add(time.Second), time.Minute, time.Hour)
	must(t, err)
	if rec == nil || !rec.Done || string(rec.Body) != "kept" {
		t.Fatalf("release dropped a done record: %+v", rec)
	}
	must(t, s.ReleaseIdempotency(ctx, store.IdemKey{Scope: "client:c1", Key: "unknown"}))
}

func testIdempotencySweep(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	k := func(key string) store.IdemKey { return store.IdemKey{Scope: "client:c1", Key: key} }
	claimed(t, s, k("k1"), "h1", t0, time.Hour, time.Hour)
	claimed(t, s, k("k2"), "h2", t0, time.Minute, 2*time.Hour)
	must(t, s.FinishIdempotency(ctx, k("k2"), 200, nil))
	claimed(t, s, k("k3"), "h3", t0, 3*time.Hour, 3*time.Hour)
	sweep := func(now time.Time, want int64) {
		t.Helper()
		n, err := s.SweepIdempotency(ctx, now)
		must(t, err)
		if n != want {
			t.Fatalf("sweep at %v: %d, want %d", now.Sub(t0), n, want)
		}
	}
	sweep(t0.Add(time.Hour-time.Millisecond), 0)
	sweep(t0.Add(2*time.Hour), 2)
	sweep(t0.Add(2*time.Hour), 0)
	pending(t, s, k("k3"), "h3", t0.Add(2*time.Hour))
	// A swept done key is gone: a new claim starts afresh.
	claimed(t, s, k("k2"), "h9", t0.Add(2*time.Hour), time.Minute, time.Hour)
	pending(t, s, k("k2"), "h9", t0.Add(2*time.Hour))
}

// race runs n claims of k at now at once and checks that exactly one wins
// and the others see the winner's pending record.
func race(t *testing.T, s store.Commerce, k store.IdemKey, now time.Time, n int) {
	warmUpCommerce(s, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		winners  []string
		seen     = map[string]int{}
		inFlight int
		others   []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			h := fmt.Sprintf("h%d", i)
			<-start
			rec, err := s.ClaimIdempotency(context.Background(), k, []byte(h), now, time.Minute, time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && rec == nil:
				winners = append(winners, h)
			case errors.Is(err, store.ErrInProgress) && rec != nil:
				inFlight++
				seen[string(rec.RequestHash)]++
			default:
				others = append(others, fmt.Errorf("%+v, %w", rec, err))
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d unexpected results, first: %v", len(others), others[0])
	}
	if len(winners) != 1 || inFlight != n-1 {
		t.Fatalf("%d winners %v, %d in progress", len(winners), winners, inFlight)
	}
	if len(seen) != 1 || seen[winners[0]] != n-1 {
		t.Fatalf("losers saw %v, winner was %s", seen, winners[0])
	}
}

func testConcurrentClaim(t *testing.T, s store.Commerce) {
	race(t, s, idemKey, t0, 20)
}

// testConcurrentTakeOver: 20 retries find a lapsed claim at once; one
// takes it over.
func testConcurrentTakeOver(t *testing.T, s store.Commerce) {
	claimed(t, s, idemKey, "dead", t0, 30*time.Second, time.Hour)
	race(t, s, idemKey, t0.Add(time.Minute), 20)
}

func testSessionSweep(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	mk := func(kind store.SessionKind, id, status string, expires time.Time) {
		must(t, s.CreateSession(ctx, &store.Session{Kind: kind, ShopSlug: "a", ID: id, Owner: "o", Status: status,
			Doc: json.RawMessage(`{}`), CreatedAt: t0, UpdatedAt: t0, ExpiresAt: expires}))
	}
	mk(store.KindCheckout, "old-open", "incomplete", t0)
	mk(store.KindCheckout, "old-canceled", "canceled", t0)
	mk(store.KindCheckout, "old-done", "completed", t0)
	mk(store.KindCart, "old-cart", "active", t0)
	mk(store.KindCheckout, "new-open", "incomplete", t0.Add(time.Hour))
	mk(store.KindCart, "new-cart", "active", t0.Add(time.Hour))
	n, err := s.SweepSessions(ctx, t0.Add(time.Minute))
	must(t, err)
	if n != 3 {
		t.Fatalf("swept %d, want 3", n)
	}
	for _, tc := range []struct {
		kind store.SessionKind
		id   string
		kept bool
	}{
		{store.KindCheckout, "old-open", false}, {store.KindCheckout, "old-canceled", false}, {store.KindCart, "old-cart", false},
		{store.KindCheckout, "old-done", true}, {store.KindCheckout, "new-open", true}, {store.KindCart, "new-cart", true},
	} {
		_, err := s.Session(ctx, tc.kind, "a", tc.id)
		if (err == nil) != tc.kept {
			t.Fatalf("%s: kept=%v, err %v", tc.id, tc.kept, err)
		}
	}
}

func testWebhookOutbox(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	claim := func(now time.Time, want ...string) []*store.Webhook {
		t.Helper()
		ws, err := s.ClaimWebhooks(ctx, now, time.Minute, 10)
		must(t, err)
		var got []string
		for _, w := range ws {
			got = append(got, w.OrderID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("claim at %v: %v, want %v", now.Sub(t0), got, want)
		}
		return ws
	}
	claim(t0)
	// An order with a webhook URL queues its event with the order.
	o := newOrder("a", "o1", "cs1")
	o.WebhookURLs = []string{"https://platform.example/hooks"}
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs1")), o, nil))
	// A completion that fails queues nothing.
	stale := completed(created(t, s, "a", "cs2"))
	stale.Version = 7
	o2 := newOrder("a", "o2", "cs2")
	o2.WebhookURLs = []string{"https://platform.example/hooks", "https://merchant.example/orders"}
	if err := s.CompleteSession(ctx, stale, o2, nil); !errors.Is(err, store.ErrStale) {
		t.Fatalf("stale completion: %v", err)
	}
	// Orders without a URL queue nothing.
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs3")), newOrder("a", "o3", "cs3"), nil))

	ws := claim(t0.Add(time.Minute), "o1")
	w := ws[0]
	if w.URL != "https://platform.example/hooks" || w.ShopSlug != "a" || w.Attempts != 0 || w.ID == "" {
		t.Fatalf("%+v", w)
	}
	// Leased: invisible until the lease ends.
	claim(t0.Add(time.Minute + 59*time.Second))
	claim(t0.Add(2*time.Minute), "o1")
	must(t, s.RetryWebhook(ctx, w.ID, t0.Add(time.Hour)))
	claim(t0.Add(59 * time.Minute))
	ws = claim(t0.Add(time.Hour), "o1")
	if ws[0].Attempts != 1 || ws[0].ID != w.ID {
		t.Fatalf("after a retry: %+v", ws[0])
	}
	must(t, s.DeleteWebhook(ctx, w.ID))
	claim(t0.Add(48 * time.Hour))
	if err := s.RetryWebhook(ctx, w.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retry of a deleted webhook: %v", err)
	}
}

// testConcurrentWebhookClaims: workers racing for due deliveries each get
// a disjoint share.
func testConcurrentWebhookClaims(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	const orders = 20
	for i := range orders {
		id := fmt.Sprintf("cs%02d", i)
		o := newOrder("a", fmt.Sprintf("o%02d", i), id)
		o.WebhookURLs = []string{"https://platform.example/hooks"}
		must(t, s.CompleteSession(ctx, completed(created(t, s, "a", id)), o, nil))
	}
	warmUpCommerce(s, 8)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				ws, err := s.ClaimWebhooks(ctx, t0.Add(time.Hour), time.Hour, 2)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, w := range ws {
					seen[w.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != orders {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), orders)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
}

// testWebhookDestinations: an order with several URLs (the platform's
// webhook, the store's own order events URL) queues one delivery per
// distinct URL, each with its own id; empty URLs queue nothing.
func testWebhookDestinations(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	o := newOrder("a", "o1", "cs1")
	o.WebhookURLs = []string{"https://platform.example/hooks", "", "https://merchant.example/orders", "https://platform.example/hooks"}
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs1")), o, nil))
	o2 := newOrder("a", "o2", "cs2")
	o2.WebhookURLs = []string{"", ""}
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a", "cs2")), o2, nil))
	ws, err := s.ClaimWebhooks(ctx, t0.Add(time.Hour), time.Minute, 10)
	must(t, err)
	var urls []string
	webhookIDs := map[string]bool{}
	for _, w := range ws {
		if w.OrderID != "o1" || w.ShopSlug != "a" {
			t.Fatalf("%+v", w)
		}
		urls = append(urls, w.URL)
		webhookIDs[w.ID] = true
	}
	slices.Sort(urls)
	if !slices.Equal(urls, []string{"https://merchant.example/orders", "https://platform.example/hooks"}) || len(webhookIDs) != 2 {
		t.Fatalf("queued %v (%d ids)", urls, len(webhookIDs))
	}
}

// testUpdateShopConfig: the update sees the stored document and its
// result is stored; its error stores nothing and comes back unchanged;
// an unknown shop is ErrNotFound without calling it.
func testUpdateShopConfig(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutShop(ctx, &store.Shop{Slug: "alpha", Name: "Alpha", Currency: "EUR", Config: json.RawMessage(`{"rails":["x"]}`), CreatedAt: t0}))
	must(t, s.UpdateShopConfig(ctx, "alpha", func(c json.RawMessage) (json.RawMessage, error) {
		if string(c) != `{"rails":["x"]}` {
			t.Errorf("update saw %s", c)
		}
		return json.RawMessage(`{"rails":["x"],"webhooks":{"order_events_url":"https://m.example/o"}}`), nil
	}))
	got, err := s.Shop(ctx, "alpha")
	must(t, err)
	if string(got.Config) != `{"rails":["x"],"webhooks":{"order_events_url":"https://m.example/o"}}` ||
		got.Name != "Alpha" || got.Currency != "EUR" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after update: %+v %s", got, got.Config)
	}
	refused := errors.New("refused by the caller")
	if err := s.UpdateShopConfig(ctx, "alpha", func(json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{}`), refused
	}); !errors.Is(err, refused) {
		t.Fatalf("update error: %v", err)
	}
	if err := s.UpdateShopConfig(ctx, "alpha", func(json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"unterminated`), nil
	}); err == nil {
		t.Fatal("a document that is not JSON was stored")
	}
	if got, _ := s.Shop(ctx, "alpha"); string(got.Config) != `{"rails":["x"],"webhooks":{"order_events_url":"https://m.example/o"}}` {
		t.Fatalf("a refused update wrote %s", got.Config)
	}
	called := false
	err = s.UpdateShopConfig(ctx, "nope", func(c json.RawMessage) (json.RawMessage, error) { called = true; return c, nil })
	if !errors.Is(err, store.ErrNotFound) || called {
		t.Fatalf("unknown shop: %v (update called: %v)", err, called)
	}
	// A shop without a document: the update gets none.
	must(t, s.PutShop(ctx, &store.Shop{Slug: "bare", Name: "Bare", Currency: "EUR", CreatedAt: t0}))
	must(t, s.UpdateShopConfig(ctx, "bare", func(c json.RawMessage) (json.RawMessage, error) {
		if len(c) != 0 {
			t.Errorf("bare shop's config: %s", c)
		}
		return json.RawMessage(`{"a":1}`), nil
	}))
	if got, _ := s.Shop(ctx, "bare"); string(got.Config) != `{"a":1}` {
		t.Fatalf("bare shop: %s", got.Config)
	}
}

// testConcurrentShopConfig: concurrent read-modify-writes of one shop's
// document, each adding its own member, lose none of them.
func testConcurrentShopConfig(t *testing.T, s store.Commerce) {
	ctx := context.Background()
	must(t, s.PutShop(ctx, &store.Shop{Slug: "alpha", Name: "Alpha", Currency: "EUR", Config: json.RawMessage(`{"base":true}`), CreatedAt: t0}))
	warmUpCommerce(s, 8)
	const writers, rounds = 8, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				err := s.UpdateShopConfig(ctx, "alpha", func(c json.RawMessage) (json.RawMessage, error) {
					var doc map[string]any
					if err := json.Unmarshal(c, &doc); err != nil {
						return nil, err
					}
					doc[fmt.Sprintf("w%d_r%d", w, r)] = true
					return json.Marshal(doc)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Shop(ctx, "alpha")
	must(t, err)
	var doc map[string]any
	must(t, json.Unmarshal(got.Config, &doc))
	if len(doc) != 1+writers*rounds || doc["base"] != true {
		t.Fatalf("%d members after %d updates: %s", len(doc), writers*rounds, got.Config)
	}
}
