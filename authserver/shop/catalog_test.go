package shop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The demo catalog, by store: product ids in (shop, id) order.
var (
	esProducts = []string{"energy-gels", "hydration-vest", "merino-socks", "road-racer-2", "trail-runner-x"}
	fsProducts = []string{"bouquet_roses", "gardenias", "orchid_pot", "sunflowers", "tulip_bunch"}
	ktProducts = []string{"chawan", "matcha-uji", "sencha"}
)

// catSearch posts a catalog search and decodes the 200 answer.
func (e *env) catSearch(t *testing.T, path string, body any, hdr ...string) *ucp.SearchResponse {
	t.Helper()
	res, b := e.req("POST", path, body, hdr...)
	wantStatus(t, res, b, http.StatusOK)
	r := decode[ucp.SearchResponse](t, b)
	if r.Products == nil {
		t.Fatalf("products must be an array: %s", b)
	}
	return r
}

// catProtoErr asserts a flat protocol error with status and code.
func catProtoErr(t *testing.T, res *http.Response, b []byte, status int, code string) {
	t.Helper()
	wantStatus(t, res, b, status)
	if p := decode[map[string]string](t, b); (*p)["code"] != code {
		t.Fatalf("code %q, want %q: %s", (*p)["code"], code, b)
	}
}

// catEnvelopeErr asserts the 200 error envelope with one message.
func catEnvelopeErr(t *testing.T, res *http.Response, b []byte, code, path string) *ucp.ErrorResponse {
	t.Helper()
	wantStatus(t, res, b, http.StatusOK)
	env := decode[ucp.ErrorResponse](t, b)
	if env.UCP.Status != ucp.StatusError || env.UCP.Version != ucp.Version || len(env.Messages) != 1 ||
		env.Messages[0].Type != "error" || env.Messages[0].Code != code || env.Messages[0].Path != path {
		t.Fatalf("want error envelope %s at %s: %s", code, path, b)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	if _, ok := raw["id"]; ok {
		t.Fatalf("error envelope carries an id: %s", b)
	}
	return env
}

func catProductIDs(ps []ucp.Product) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func catVariantIDs(vs []ucp.Variant) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func catFindProduct(t *testing.T, ps []ucp.Product, id string) *ucp.Product {
	t.Helper()
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i]
		}
	}
	t.Fatalf("no product %s in %v", id, catProductIDs(ps))
	return nil
}

func catFindVariant(t *testing.T, vs []ucp.Variant, id string) *ucp.Variant {
	t.Helper()
	for i := range vs {
		if vs[i].ID == id {
			return &vs[i]
		}
	}
	t.Fatalf("no variant %s in %v", id, catVariantIDs(vs))
	return nil
}

func forgeCursor(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }

// TestCatalogSearchQueryTerms: every term must occur (AND), as a
// case-insensitive substring of the product text; the search stays in
// its store.
func TestCatalogSearchQueryTerms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		// "trail" alone also finds the hydration vest, "shoes" the road
		// racer: only Trail Runner X has both.
		{"trail shoes", []string{"trail-runner-x"}},
		{"  TRAIL   Shoes ", []string{"trail-runner-x"}},
		{"trail", []string{"hydration-vest", "trail-runner-x"}},
		{"shoes", []string{"road-racer-2", "trail-runner-x"}},
		{"road shoes", []string{"road-racer-2"}},
		{"es-trx-blu-11", []string{"trail-runner-x"}}, // a variant SKU
		{"trail gel", []string{}},
		{"roses", []string{}}, // another store's product
	} {
		r := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"query": tc.query})
		if got := catProductIDs(r.Products); !slices.Equal(got, tc.want) {
			t.Errorf("query %q: %v, want %v", tc.query, got, tc.want)
		}
		if r.Pagination == nil || r.Pagination.HasNextPage || r.Pagination.Cursor != "" {
			t.Errorf("query %q: pagination %+v", tc.query, r.Pagination)
		}
	}
}

// TestCatalogSearchBrowse: a filter without a query browses the whole
// store, and only that store (a request with no input at all is refused:
// TestSearchNeedsInput).
func TestCatalogSearchBrowse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for slug, want := range map[string][]string{"energy-sport": esProducts, "flower-shop": fsProducts, "kyoto-tea": ktProducts} {
		for _, body := range []any{map[string]any{"filters": browseAll}, map[string]any{"query": "   ", "filters": browseAll}} {
			r := e.catSearch(t, "/s/"+slug+"/catalog/search", body)
			if got := catProductIDs(r.Products); !slices.Equal(got, want) {
				t.Errorf("%s %v: %v, want %v", slug, body, got, want)
			}
			if r.Pagination == nil || r.Pagination.HasNextPage {
				t.Errorf("%s: %+v", slug, r.Pagination)
			}
		}
	}
	res, b := e.req("POST", "/s/nowhere/catalog/search", map[string]any{"query": "x"})
	catProtoErr(t, res, b, http.StatusNotFound, "store_not_found")
}

// TestCatalogSearchCategories: categories match exactly; several
// categories are OR-ed; they AND with the query.
func TestCatalogSearchCategories(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name  string
		query string
		cats  []string
		want  []string
	}{
		{"one", "", []string{"Running > Shoes"}, []string{"road-racer-2", "trail-runner-x"}},
		{"two are OR-ed", "", []string{"Running > Shoes", "Nutrition"}, []string{"energy-gels", "road-racer-2", "trail-runner-x"}},
		{"three", "", []string{"Running > Apparel", "Running > Accessories", "Nutrition"}, []string{"energy-gels", "hydration-vest", "merino-socks"}},
		{"prefix is not a match", "", []string{"Running"}, []string{}},
		{"prefix is not a match among two", "", []string{"Running", "Nutrition"}, []string{"energy-gels"}},
		{"substring is not a match", "", []string{"Shoes"}, []string{}},
		{"unknown", "", []string{"Flowers > Bouquets"}, []string{}},
		{"with query", "trail", []string{"Running > Shoes"}, []string{"trail-runner-x"}},
		{"two with query", "trail", []string{"Running > Shoes", "Running > Accessories"}, []string{"hydration-vest", "trail-runner-x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"query": tc.query, "filters": map[string]any{"categories": tc.cats}})
			if got := catProductIDs(r.Products); !slices.Equal(got, tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
			for _, p := range r.Products {
				if !slices.ContainsFunc(p.Categories, func(c ucp.Category) bool { return slices.Contains(tc.cats, c.Value) }) {
					t.Fatalf("%s has categories %+v", p.ID, p.Categories)
				}
			}
		})
	}
	// OR-ed categories paginate too: every match once, in order.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		pg := map[string]any{"limit": 1}
		if cursor != "" {
			pg["cursor"] = cursor
		}
		r := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{
			"filters": map[string]any{"categories": []string{"Nutrition", "Running > Shoes"}}, "pagination": pg})
		got = append(got, catProductIDs(r.Products)...)
		if !r.Pagination.HasNextPage {
			break
		}
		cursor = r.Pagination.Cursor
	}
	if want := []string{"energy-gels", "road-racer-2", "trail-runner-x"}; !slices.Equal(got, want) {
		t.Fatalf("paged categories %v, want %v", got, want)
	}
}

// TestCatalogSearchPrice: price bounds are minor units; a product matches
// when its price range meets the bounds.
func TestCatalogSearchPrice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name     string
		slug     string
		min, max any
		want     []string
	}{
		// flower-shop: tulips 1900, sunflowers 2200, gardenias 2800,
		// roses 3500, orchid 4500 (EUR cents).
		{"min and max", "flower-shop", 2000, 3000, []string{"gardenias", "sunflowers"}},
		{"inclusive bounds", "flower-shop", 2200, 2800, []string{"gardenias", "sunflowers"}},
		{"min only", "flower-shop", 3500, nil, []string{"bouquet_roses", "orchid_pot"}},
		{"max only", "flower-shop", nil, 1900, []string{"tulip_bunch"}},
		{"min zero", "flower-shop", 0, 2000, []string{"tulip_bunch"}},
		{"nothing in range", "flower-shop", 5000, 9000, []string{}},
		// energy-sport in USD cents: not in dollars.
		{"cents", "energy-sport", 10000, 20000, []string{"road-racer-2", "trail-runner-x"}},
		{"cents upper", "energy-sport", nil, 3000, []string{"energy-gels", "merino-socks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			price := map[string]any{}
			if tc.min != nil {
				price["min"] = tc.min
			}
			if tc.max != nil {
				price["max"] = tc.max
			}
			r := e.catSearch(t, "/s/"+tc.slug+"/catalog/search", map[string]any{"filters": map[string]any{"price": price}})
			if got := catProductIDs(r.Products); !slices.Equal(got, tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
	// With a query and a category too: all filters AND.
	r := e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"query": "bouquet",
		"filters": map[string]any{"categories": []string{"Flowers > Bouquets"}, "price": map[string]any{"max": 2500}}})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"sunflowers", "tulip_bunch"}) {
		t.Fatalf("%v", got)
	}
	// Across stores, context.currency picks the currency the bounds are in.
	r = e.catSearch(t, "/catalog/search", map[string]any{"context": map[string]any{"currency": "eur"},
		"filters": map[string]any{"price": map[string]any{"min": 1, "max": 100000}}})
	if got := catProductIDs(r.Products); !slices.Equal(got, fsProducts) {
		t.Fatalf("EUR bounds: %v", got)
	}
	r = e.catSearch(t, "/catalog/search", map[string]any{"context": map[string]any{"currency": "JPY"},
		"filters": map[string]any{"price": map[string]any{"max": 3500}}})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"matcha-uji", "sencha"}) {
		t.Fatalf("JPY bounds: %v", got)
	}
	for _, body := range []string{
		`{"filters":{"price":{"min":-1}}}`,
		`{"filters":{"price":{"max":-5}}}`,
		`{"filters":{"price":{"min":"cheap"}}}`,
		`{"filters":{"price":{"min":1.5}}}`,
	} {
		res, b := e.req("POST", "/s/flower-shop/catalog/search", body)
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	}
	t.Run("max zero", func(t *testing.T) {
		r := e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"filters": map[string]any{"price": map[string]any{"max": 0}}})
		if len(r.Products) != 0 {
			t.Fatalf("max 0 matched %v", catProductIDs(r.Products))
		}
	})
}

// catWalk pages through a search with limit and returns every page's ids.
func (e *env) catWalk(t *testing.T, path string, body map[string]any, limit int) [][]string {
	t.Helper()
	var pages [][]string
	cursor := ""
	for {
		if len(pages) > 50 {
			t.Fatal("pagination does not end")
		}
		b := map[string]any{}
		for k, v := range body {
			b[k] = v
		}
		pg := map[string]any{"limit": limit}
		if cursor != "" {
			pg["cursor"] = cursor
		}
		b["pagination"] = pg
		r := e.catSearch(t, path, b)
		if r.Pagination == nil {
			t.Fatal("no pagination")
		}
		ids := catProductIDs(r.Products)
		if len(ids) == 0 || len(ids) > limit {
			t.Fatalf("page %d has %d products (limit %d)", len(pages), len(ids), limit)
		}
		pages = append(pages, ids)
		if !r.Pagination.HasNextPage {
			if r.Pagination.Cursor != "" {
				t.Fatalf("last page with a cursor: %+v", r.Pagination)
			}
			return pages
		}
		if r.Pagination.Cursor == "" {
			t.Fatal("has_next_page without a cursor")
		}
		cursor = r.Pagination.Cursor
	}
}

// TestCatalogSearchPagination: cursors walk every product exactly once,
// in a store and across stores; forged cursors are refused.
func TestCatalogSearchPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pages := e.catWalk(t, "/s/energy-sport/catalog/search", map[string]any{"filters": browseAll}, 2)
	if !reflect.DeepEqual(pages, [][]string{esProducts[:2], esProducts[2:4], esProducts[4:]}) {
		t.Fatalf("pages %v", pages)
	}
	// An exact multiple: the last full page says there is nothing more.
	pages = e.catWalk(t, "/s/kyoto-tea/catalog/search", map[string]any{"filters": browseAll}, 3)
	if !reflect.DeepEqual(pages, [][]string{ktProducts}) {
		t.Fatalf("pages %v", pages)
	}
	pages = e.catWalk(t, "/s/flower-shop/catalog/search", map[string]any{"query": "bouquet"}, 1)
	if !reflect.DeepEqual(pages, [][]string{{"bouquet_roses"}, {"sunflowers"}, {"tulip_bunch"}}) {
		t.Fatalf("pages %v", pages)
	}
	// Across stores: 13 products, 4 a page, each exactly once.
	all := append(append(slices.Clone(esProducts), fsProducts...), ktProducts...)
	pages = e.catWalk(t, "/catalog/search", map[string]any{"filters": browseAll}, 4)
	if len(pages) != 4 || !slices.Equal(slices.Concat(pages...), all) {
		t.Fatalf("global pages %v", pages)
	}
	// The default page is 10; limits above the maximum are clamped, not
	// refused.
	r := e.catSearch(t, "/catalog/search", map[string]any{"filters": browseAll})
	if len(r.Products) != 10 || !r.Pagination.HasNextPage {
		t.Fatalf("default page: %d products, %+v", len(r.Products), r.Pagination)
	}
	r = e.catSearch(t, "/catalog/search", map[string]any{"filters": browseAll, "pagination": map[string]any{"limit": 100000}})
	if len(r.Products) != 13 || r.Pagination.HasNextPage {
		t.Fatalf("clamped page: %d products, %+v", len(r.Products), r.Pagination)
	}
	// A cursor is bound to nothing but its position: the next page of a
	// store search starts after the cursor's product.
	r = e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"filters": browseAll, "pagination": map[string]any{"limit": 2}})
	r2 := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"filters": browseAll, "pagination": map[string]any{"limit": 2, "cursor": r.Pagination.Cursor}})
	if !slices.Equal(catProductIDs(r2.Products), esProducts[2:4]) {
		t.Fatalf("%v", catProductIDs(r2.Products))
	}
	for _, cur := range []string{
		"not a cursor!",
		"%%%",
		forgeCursor("not json"),
		forgeCursor(`["s","i"]`),
		forgeCursor(`{"o":-1}`),
		forgeCursor(`{"o":1000000}`),
		base64.StdEncoding.EncodeToString([]byte(`{"s":"energy-sport","i":"road-racer-2"}==`)),
	} {
		res, b := e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"query": "shoes", "pagination": map[string]any{"cursor": cur}})
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("cursor %q: %d %s", cur, res.StatusCode, b)
			continue
		}
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	}
	res, b := e.req("POST", "/s/energy-sport/catalog/search", `{"query":"shoes","pagination":{"limit":-1}}`)
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	res, b = e.req("POST", "/s/energy-sport/catalog/search", `{"query":"shoes","pagination":{"limit":"2"}}`)
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
}

// TestCatalogSearchSort: price_asc and price_desc order by price and
// paginate over the sorted result; other sorts are refused.
func TestCatalogSearchSort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// energy-sport by lowest variant price: socks 1800, gels 3000, vest
	// 8900, trail runner 12900, road racer 15900.
	asc := []string{"merino-socks", "energy-gels", "hydration-vest", "trail-runner-x", "road-racer-2"}
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	for sort, want := range map[string][]string{"price_asc": asc, "price_desc": desc, "relevance": esProducts, "": esProducts} {
		r := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"sort": sort, "filters": browseAll})
		if got := catProductIDs(r.Products); !slices.Equal(got, want) {
			t.Errorf("sort %q: %v, want %v", sort, got, want)
		}
		for limit := 1; limit <= 3; limit++ {
			if got := slices.Concat(e.catWalk(t, "/s/energy-sport/catalog/search", map[string]any{"sort": sort, "filters": browseAll}, limit)...); !slices.Equal(got, want) {
				t.Errorf("sort %q limit %d: %v, want %v", sort, limit, got, want)
			}
		}
	}
	// Sorted, with a filter and a query.
	r := e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"sort": "price_desc", "query": "bouquet"})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"bouquet_roses", "sunflowers", "tulip_bunch"}) {
		t.Fatalf("%v", got)
	}
	r = e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"sort": "price_asc",
		"filters": map[string]any{"categories": []string{"Flowers > Plants", "Flowers > Bouquets"}, "price": map[string]any{"min": 2000}}})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"sunflowers", "gardenias", "bouquet_roses", "orchid_pot"}) {
		t.Fatalf("%v", got)
	}
	// Sorted across stores (prices compared as numbers, whatever the
	// currency): ascending amounts.
	var prev int64 = -1
	r = e.catSearch(t, "/catalog/search", map[string]any{"sort": "price_asc", "filters": browseAll, "pagination": map[string]any{"limit": 50}})
	if len(r.Products) != 13 {
		t.Fatalf("%d products", len(r.Products))
	}
	for _, p := range r.Products {
		if p.PriceRange.Min.Amount < prev {
			t.Fatalf("not ascending at %s: %v", p.ID, catProductIDs(r.Products))
		}
		prev = p.PriceRange.Min.Amount
	}
	if got := slices.Concat(e.catWalk(t, "/catalog/search", map[string]any{"sort": "price_asc", "filters": browseAll}, 5)...); !slices.Equal(got, catProductIDs(r.Products)) {
		t.Fatalf("paged %v, want %v", got, catProductIDs(r.Products))
	}
	for _, sort := range []string{"cheapest", "PRICE_ASC", "price", "name"} {
		res, b := e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"sort": sort, "query": "shoes"})
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	}
}

// TestCatalogSearchQueryLimits: queries over 500 characters or 20 words
// are refused; malformed bodies are 400s.
func TestCatalogSearchQueryLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ok := strings.Repeat("a", 500)
	e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"query": ok})
	res, b := e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"query": ok + "a"})
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	words := strings.TrimSpace(strings.Repeat("shoe ", 20))
	r := e.catSearch(t, "/s/energy-sport/catalog/search", map[string]any{"query": words})
	if len(r.Products) != 2 {
		t.Fatalf("%v", catProductIDs(r.Products))
	}
	res, b = e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"query": words + " shoe"})
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	for _, body := range []string{`{"query":`, `{"query":5}`, `[]`, `{"query":"a"} {}`} {
		res, b := e.req("POST", "/s/energy-sport/catalog/search", body)
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	}
	res, b = e.req("POST", "/s/energy-sport/catalog/search", `{}`, "Content-Type", "text/plain")
	wantStatus(t, res, b, http.StatusUnsupportedMediaType)
}

// TestCatalogSearchProductShape: products carry live prices (integer
// minor units with currency), a price range, availability and the
// envelope with the catalog capabilities.
func TestCatalogSearchProductShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, b := e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"query": "trail runner"})
	wantStatus(t, res, b, http.StatusOK)
	// Amounts are JSON integers.
	if !strings.Contains(string(b), `"price":{"amount":12900,"currency":"USD"}`) {
		t.Fatalf("price not in minor units: %s", b)
	}
	r := decode[ucp.SearchResponse](t, b)
	if r.UCP == nil || r.UCP.Version != ucp.Version || r.UCP.Status != ucp.StatusSuccess {
		t.Fatalf("envelope %+v", r.UCP)
	}
	// Only the operation's capability (overview.md, Response Capability
	// Selection): search, not lookup.
	if len(r.UCP.Capabilities[ucp.CapCatalogSearch]) != 1 || r.UCP.Capabilities[ucp.CapCatalogSearch][0].Version != ucp.Version ||
		len(r.UCP.Capabilities) != 1 {
		t.Fatalf("catalog capabilities %+v", r.UCP.Capabilities)
	}
	if r.UCP.PaymentHandlers != nil {
		t.Fatal("payment handlers on a catalog response")
	}
	p := catFindProduct(t, r.Products, "trail-runner-x")
	if p.Title != "Trail Runner X" || p.Description.Plain == "" || len(p.Options) != 2 || len(p.Categories) != 1 ||
		p.Categories[0].Value != "Running > Shoes" || p.Metadata != nil {
		t.Fatalf("%+v", p)
	}
	if want := (ucp.PriceRange{Min: ucp.Price{Amount: 12900, Currency: "USD"}, Max: ucp.Price{Amount: 13400, Currency: "USD"}}); p.PriceRange != want {
		t.Fatalf("price_range %+v", p.PriceRange)
	}
	if got := catVariantIDs(p.Variants); !slices.Equal(got, []string{"trx-blk-9", "trx-blk-10", "trx-blu-10", "trx-blu-11"}) {
		t.Fatal(got)
	}
	for _, tc := range []struct {
		id     string
		price  int64
		status string
		avail  bool
	}{
		{"trx-blk-9", 12900, "in_stock", true},
		{"trx-blk-10", 12900, "out_of_stock", false},
		{"trx-blu-10", 12900, "in_stock", true},
		{"trx-blu-11", 13400, "in_stock", true},
	} {
		v := catFindVariant(t, p.Variants, tc.id)
		if v.Price != (ucp.Price{Amount: tc.price, Currency: "USD"}) || v.Availability == nil ||
			v.Availability.Status != tc.status || v.Availability.Available != tc.avail || v.Seller != nil || v.Title == "" || len(v.Options) != 2 {
			t.Fatalf("%s: %+v", tc.id, v)
		}
	}
	// Gardenias are out of stock; sunflowers are untracked (always
	// available); JPY amounts are yen.
	r = e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"filters": browseAll})
	g := catFindProduct(t, r.Products, "gardenias").Variants[0]
	if g.Availability == nil || g.Availability.Available || g.Availability.Status != "out_of_stock" || g.Price != (ucp.Price{Amount: 2800, Currency: "EUR"}) {
		t.Fatalf("gardenias %+v", g)
	}
	s := catFindProduct(t, r.Products, "sunflowers").Variants[0]
	if s.Availability == nil || !s.Availability.Available || s.Availability.Status != "in_stock" {
		t.Fatalf("sunflowers %+v", s)
	}
	r = e.catSearch(t, "/s/kyoto-tea/catalog/search", map[string]any{"query": "matcha"})
	if m := r.Products[0]; m.Variants[0].Price != (ucp.Price{Amount: 3240, Currency: "JPY"}) || m.PriceRange.Max.Currency != "JPY" {
		t.Fatalf("%+v", m)
	}

	// Prices and stock are read live from the variant rows, not from
	// the product document written at seeding.
	ctx := t.Context()
	row, err := e.store.Product(ctx, "flower-shop", "tulip_bunch")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.store.ProductVariants(ctx, "flower-shop", "tulip_bunch")
	if err != nil || len(vs) != 1 {
		t.Fatal(vs, err)
	}
	vs[0].Price, vs[0].Stock = 2500, 0
	if err := e.store.PutProduct(ctx, row, vs); err != nil {
		t.Fatal(err)
	}
	r = e.catSearch(t, "/s/flower-shop/catalog/search", map[string]any{"query": "tulip"})
	tp := r.Products[0]
	if tp.Variants[0].Price.Amount != 2500 || tp.Variants[0].Availability.Available || tp.PriceRange.Min.Amount != 2500 || tp.PriceRange.Max.Amount != 2500 {
		t.Fatalf("not live: %+v", tp)
	}
}

// TestCatalogSearchAnonymous: the catalog may be browsed without a
// UCP-Agent and without credentials; carts may not.
func TestCatalogSearchAnonymous(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, path := range []string{"/s/energy-sport/catalog/search", "/catalog/search"} {
		r := e.catSearch(t, path, map[string]any{"query": "trail shoes"}, "UCP-Agent", "", "X-Test-Client", "")
		if len(r.Products) != 1 || r.Products[0].ID != "trail-runner-x" || r.UCP == nil || r.UCP.Version != ucp.Version ||
			r.UCP.Capabilities[ucp.CapCatalogSearch] == nil {
			t.Fatalf("%s: %+v", path, r)
		}
	}
	res, b := e.req("POST", "/s/energy-sport/catalog/lookup", map[string]any{"ids": []string{"trx-blk-9"}}, "UCP-Agent", "")
	wantStatus(t, res, b, http.StatusOK)
	res, b = e.req("POST", "/s/energy-sport/catalog/product", map[string]any{"id": "trx-blk-9"}, "UCP-Agent", "")
	wantStatus(t, res, b, http.StatusOK)
	// A bad credential is still refused.
	res, b = e.req("POST", "/s/energy-sport/catalog/search", map[string]any{"query": "shoes"}, "X-Test-Client", "bad")
	wantStatus(t, res, b, http.StatusUnauthorized)
	// Carts name a platform profile.
	res, b = e.req("POST", "/s/energy-sport/carts", lines(line("trx-blk-9", 1)), "UCP-Agent", "")
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_profile_url")
}

// TestCatalogSearchGlobal: the cross-store catalog names each variant's
// seller and store, and its variant ids buy at that store.
func TestCatalogSearchGlobal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.catSearch(t, "/catalog/search", map[string]any{"filters": browseAll, "pagination": map[string]any{"limit": 50}})
	stores := map[string][]string{}
	names := map[string]string{"energy-sport": "Energy Sport", "flower-shop": "Flower Shop", "kyoto-tea": "Kyoto Tea House"}
	for _, p := range r.Products {
		var md struct {
			Store string `json:"store"`
		}
		if err := json.Unmarshal(p.Metadata, &md); err != nil || md.Store == "" {
			t.Fatalf("%s: metadata %s", p.ID, p.Metadata)
		}
		// The store is also a first-class member: slug, name, URL and
		// endpoints, the one metadata.store names.
		u := e.srv.URL + "/s/" + md.Store
		if want := (ucp.StoreRef{Slug: md.Store, Name: names[md.Store], URL: u, MCP: u + "/mcp", Profile: u + "/.well-known/ucp"}); p.Store == nil || *p.Store != want {
			t.Fatalf("%s: store %+v, want %+v", p.ID, p.Store, want)
		}
		stores[md.Store] = append(stores[md.Store], p.ID)
		if len(p.Variants) == 0 {
			t.Fatalf("%s has no variants", p.ID)
		}
		for _, v := range p.Variants {
			if v.Seller == nil || v.Seller.Name != names[md.Store] || len(v.Seller.Links) != 1 ||
				v.Seller.Links[0].Type != "ucp_profile" || v.Seller.Links[0].URL != e.srv.URL+"/s/"+md.Store+"/.well-known/ucp" {
				t.Fatalf("%s/%s seller %+v", md.Store, v.ID, v.Seller)
			}
		}
	}
	if !slices.Equal(stores["energy-sport"], esProducts) || !slices.Equal(stores["flower-shop"], fsProducts) || !slices.Equal(stores["kyoto-tea"], ktProducts) {
		t.Fatalf("%v", stores)
	}
	// The seller link is the store's profile.
	link := r.Products[0].Variants[0].Seller.Links[0].URL
	res, b := e.req("GET", strings.TrimPrefix(link, e.srv.URL), nil)
	wantStatus(t, res, b, http.StatusOK)
	if p := decode[ucp.Profile](t, b); p.UCP.Capabilities[ucp.CapCheckout] == nil {
		t.Fatalf("%s", b)
	}
	// A query finds products in several stores: "two" is in the vest's
	// and the orchid's descriptions.
	r = e.catSearch(t, "/catalog/search", map[string]any{"query": "two"})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"hydration-vest", "orchid_pot"}) {
		t.Fatalf("%v", got)
	}
	r = e.catSearch(t, "/catalog/search", map[string]any{"query": "matcha"})
	if len(r.Products) != 1 {
		t.Fatalf("%v", catProductIDs(r.Products))
	}
	var md struct {
		Store string `json:"store"`
	}
	json.Unmarshal(r.Products[0].Metadata, &md)
	v := r.Products[0].Variants[0]
	c := e.createCheckout(md.Store, lines(line(v.ID, 2)))
	if md.Store != "kyoto-tea" || c.Currency != "JPY" || c.LineItems[0].Item.ID != "matcha-uji-40" ||
		c.LineItems[0].Item.Price != v.Price.Amount || c.LineItems[0].Quantity != 2 {
		t.Fatalf("%+v", c)
	}
	// Store searches carry neither seller nor metadata.
	r = e.catSearch(t, "/s/kyoto-tea/catalog/search", map[string]any{"query": "matcha"})
	if r.Products[0].Metadata != nil || r.Products[0].Variants[0].Seller != nil || r.Products[0].Store != nil {
		t.Fatalf("%+v", r.Products[0])
	}
	// The apex catalog has no carts or checkouts.
	res, b = e.req("POST", "/checkout-sessions", lines(line("matcha-uji-40", 1)))
	if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
}

// catLookup posts a lookup and decodes the 200 answer.
func (e *env) catLookup(t *testing.T, path string, ids []string) *ucp.LookupResponse {
	t.Helper()
	res, b := e.req("POST", path, map[string]any{"ids": ids})
	wantStatus(t, res, b, http.StatusOK)
	r := decode[ucp.LookupResponse](t, b)
	if r.UCP == nil || r.UCP.Version != ucp.Version || r.UCP.Status != ucp.StatusSuccess || r.UCP.Capabilities[ucp.CapCatalogLookup] == nil || r.Products == nil {
		t.Fatalf("%s", b)
	}
	// lookup_variant.inputs is required (minItems 1).
	for _, p := range r.Products {
		for _, v := range p.Variants {
			if len(v.Inputs) == 0 {
				t.Fatalf("%s/%s without inputs: %s", p.ID, v.ID, b)
			}
		}
	}
	return r
}

// TestCatalogLookup: variant ids resolve exactly, product ids to the
// featured variant; unknown ids are warnings; ids resolving to the same
// product merge.
func TestCatalogLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	t.Run("variant id", func(t *testing.T) {
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"trx-blu-11"})
		if len(r.Products) != 1 || r.Products[0].ID != "trail-runner-x" || len(r.Messages) != 0 {
			t.Fatalf("%+v", r)
		}
		p := r.Products[0]
		if len(p.Variants) != 1 || p.Variants[0].ID != "trx-blu-11" ||
			!reflect.DeepEqual(p.Variants[0].Inputs, []ucp.InputCorrelation{{ID: "trx-blu-11", Match: "exact"}}) {
			t.Fatalf("%+v", p.Variants)
		}
		if v := p.Variants[0]; v.Price != (ucp.Price{Amount: 13400, Currency: "USD"}) || v.Availability == nil || !v.Availability.Available {
			t.Fatalf("%+v", v)
		}
		// An out-of-stock variant asked for by id is still that variant.
		r = e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"trx-blk-10"})
		if v := r.Products[0].Variants; len(v) != 1 || v[0].ID != "trx-blk-10" || v[0].Availability.Available || v[0].Inputs[0].Match != "exact" {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("product id", func(t *testing.T) {
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"trail-runner-x"})
		if len(r.Products) != 1 || len(r.Products[0].Variants) != 1 {
			t.Fatalf("%+v", r)
		}
		v := r.Products[0].Variants[0]
		if v.ID != "trx-blk-9" || !reflect.DeepEqual(v.Inputs, []ucp.InputCorrelation{{ID: "trail-runner-x", Match: "featured"}}) {
			t.Fatalf("%+v", v)
		}
		// The product keeps its full price range.
		if r.Products[0].PriceRange.Max.Amount != 13400 {
			t.Fatalf("%+v", r.Products[0].PriceRange)
		}
	})
	t.Run("unknown ids", func(t *testing.T) {
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"nope", "trx-blk-9", "bouquet_roses", "rr2-10"})
		if got := catProductIDs(r.Products); !slices.Equal(got, []string{"trail-runner-x", "road-racer-2"}) {
			t.Fatalf("%v", got)
		}
		if len(r.Messages) != 2 {
			t.Fatalf("%+v", r.Messages)
		}
		for i, path := range []string{"$.ids[0]", "$.ids[2]"} {
			if m := r.Messages[i]; m.Type != "warning" || m.Code != "not_found" || m.Path != path || m.Content == "" {
				t.Fatalf("%+v", m)
			}
		}
		r = e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"x", "y"})
		if len(r.Products) != 0 || !slices.Equal(messageCodes(r.Messages), []string{"not_found", "not_found"}) || r.Messages[1].Path != "$.ids[1]" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("same product merges", func(t *testing.T) {
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"trx-blu-10", "rr2-9", "trail-runner-x", "trx-blk-9", "trx-blu-10"})
		if got := catProductIDs(r.Products); !slices.Equal(got, []string{"trail-runner-x", "road-racer-2"}) {
			t.Fatalf("%v", got)
		}
		trx := r.Products[0]
		// Only the variants some id resolved to, in catalog order.
		if got := catVariantIDs(trx.Variants); !slices.Equal(got, []string{"trx-blk-9", "trx-blu-10"}) {
			t.Fatalf("%v", got)
		}
		blk := catFindVariant(t, trx.Variants, "trx-blk-9")
		if !slices.Contains(blk.Inputs, ucp.InputCorrelation{ID: "trail-runner-x", Match: "featured"}) ||
			!slices.Contains(blk.Inputs, ucp.InputCorrelation{ID: "trx-blk-9", Match: "exact"}) {
			t.Fatalf("%+v", blk.Inputs)
		}
		blu := catFindVariant(t, trx.Variants, "trx-blu-10")
		if !slices.Contains(blu.Inputs, ucp.InputCorrelation{ID: "trx-blu-10", Match: "exact"}) {
			t.Fatalf("%+v", blu.Inputs)
		}
		// The same product id twice is still one product.
		r = e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"road-racer-2", "road-racer-2"})
		if len(r.Products) != 1 || len(r.Products[0].Variants) != 1 {
			t.Fatalf("%+v", r.Products)
		}
	})
	t.Run("duplicate ids are deduplicated", func(t *testing.T) {
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"trx-blk-9", "trx-blk-9"})
		if in := r.Products[0].Variants[0].Inputs; len(in) != 1 {
			t.Errorf("inputs %+v", in)
		}
		r = e.catLookup(t, "/s/energy-sport/catalog/lookup", []string{"nope", "nope"})
		if len(r.Messages) != 1 {
			t.Errorf("messages %+v", r.Messages)
		}
	})
	t.Run("batch size", func(t *testing.T) {
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprintf("missing-%d", i)
		}
		ids[99] = "energy-gels-12"
		r := e.catLookup(t, "/s/energy-sport/catalog/lookup", ids)
		if len(r.Products) != 1 || len(r.Messages) != 99 || r.Messages[98].Path != "$.ids[98]" {
			t.Fatalf("%d products %d messages", len(r.Products), len(r.Messages))
		}
		for _, body := range []any{
			map[string]any{"ids": []string{}},
			map[string]any{},
			map[string]any{"ids": append(ids, "one-more")},
			`{"ids":"trx-blk-9"}`,
			`{"ids":[1]}`,
			nil,
		} {
			res, b := e.req("POST", "/s/energy-sport/catalog/lookup", body)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("%v: %d %s", body, res.StatusCode, b)
			}
		}
		res, b := e.req("POST", "/s/energy-sport/catalog/lookup", map[string]any{"ids": []string{}})
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	})
	t.Run("over the batch limit is request_too_large", func(t *testing.T) {
		ids := make([]string, 101)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		res, b := e.req("POST", "/s/energy-sport/catalog/lookup", map[string]any{"ids": ids})
		catProtoErr(t, res, b, http.StatusBadRequest, "request_too_large")
	})
	t.Run("other store", func(t *testing.T) {
		r := e.catLookup(t, "/s/flower-shop/catalog/lookup", []string{"trx-blk-9", "tulip_bunch"})
		if got := catProductIDs(r.Products); !slices.Equal(got, []string{"tulip_bunch"}) || len(r.Messages) != 1 || r.Messages[0].Path != "$.ids[0]" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("global", func(t *testing.T) {
		r := e.catLookup(t, "/catalog/lookup", []string{"matcha-uji-40", "trx-blk-9", "tulip_bunch", "nope"})
		if got := catProductIDs(r.Products); !slices.Equal(got, []string{"matcha-uji", "trail-runner-x", "tulip_bunch"}) {
			t.Fatalf("%v", got)
		}
		want := map[string]string{"matcha-uji": "kyoto-tea", "trail-runner-x": "energy-sport", "tulip_bunch": "flower-shop"}
		for _, p := range r.Products {
			if string(p.Metadata) != fmt.Sprintf(`{"store":%q}`, want[p.ID]) || len(p.Variants) != 1 || p.Variants[0].Seller == nil ||
				p.Variants[0].Seller.Links[0].URL != e.srv.URL+"/s/"+want[p.ID]+"/.well-known/ucp" {
				t.Fatalf("%+v", p)
			}
		}
		if len(r.Messages) != 1 || r.Messages[0].Path != "$.ids[3]" {
			t.Fatalf("%+v", r.Messages)
		}
	})
}

// TestCatalogLookupFeaturedSkipsOutOfStock: a product id resolves to its
// first available variant; with none available, to its first.
func TestCatalogLookupFeaturedSkipsOutOfStock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := shop.PutSeedShop(t.Context(), e.store, shop.SeedShop{Slug: "test-shop", Name: "Test Shop", Currency: "USD",
		Config: shop.Settings{Rails: []string{shop.HandlerCardID}},
		Products: []shop.SeedProduct{
			{ID: "jacket", Title: "Rain Jacket", Description: "Waterproof.",
				Options: []ucp.ProductOption{{Name: "Size", Values: []ucp.OptionValue{{Label: "S"}, {Label: "M"}, {Label: "L"}}}},
				Variants: []shop.SeedVariant{
					{ID: "jacket-s", Title: "Rain Jacket - S", Price: 9000, Stock: 0, Options: []ucp.SelectedOption{{Name: "Size", Label: "S"}}},
					{ID: "jacket-m", Title: "Rain Jacket - M", Price: 9500, Stock: 2, Options: []ucp.SelectedOption{{Name: "Size", Label: "M"}}},
					{ID: "jacket-l", Title: "Rain Jacket - L", Price: 9500, Stock: 5, Options: []ucp.SelectedOption{{Name: "Size", Label: "L"}}},
				}},
			{ID: "cap", Title: "Cap", Description: "Sold out.",
				Variants: []shop.SeedVariant{
					{ID: "cap-red", Title: "Cap - Red", Price: 1500, Stock: 0},
					{ID: "cap-blue", Title: "Cap - Blue", Price: 1500, Stock: 0},
				}},
		}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := e.catLookup(t, "/s/test-shop/catalog/lookup", []string{"jacket", "cap"})
	if got := catProductIDs(r.Products); !slices.Equal(got, []string{"jacket", "cap"}) {
		t.Fatalf("%v", got)
	}
	j := r.Products[0].Variants
	if len(j) != 1 || j[0].ID != "jacket-m" || !reflect.DeepEqual(j[0].Inputs, []ucp.InputCorrelation{{ID: "jacket", Match: "featured"}}) {
		t.Fatalf("jacket %+v", j)
	}
	c := r.Products[1].Variants
	if len(c) != 1 || c[0].ID != "cap-red" || c[0].Availability.Available || c[0].Inputs[0].Match != "featured" {
		t.Fatalf("cap %+v", c)
	}
	// The out-of-stock first variant by id, next to its product id: two
	// variants, each with its own input.
	r = e.catLookup(t, "/s/test-shop/catalog/lookup", []string{"jacket-s", "jacket"})
	if got := catVariantIDs(r.Products[0].Variants); len(r.Products) != 1 || !slices.Equal(got, []string{"jacket-s", "jacket-m"}) {
		t.Fatalf("%v", got)
	}
}

// TestCatalogLookupFilters: lookup.md says filters apply after
// resolution and exclude products whose variants all fall outside them.
func TestCatalogLookupFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, b := e.req("POST", "/catalog/lookup", map[string]any{"ids": []string{"trx-blk-9", "tulip_bunch"},
		"context": map[string]any{"currency": "USD"}, "filters": map[string]any{"price": map[string]any{"max": 5000}}})
	wantStatus(t, res, b, http.StatusOK)
	if got := catProductIDs(decode[ucp.LookupResponse](t, b).Products); slices.Contains(got, "trail-runner-x") {
		t.Fatalf("price filter ignored: %v", got)
	}
}

// catProduct posts get_product and decodes a 200 product answer.
func (e *env) catProduct(t *testing.T, path string, body any) *ucp.ProductResponse {
	t.Helper()
	res, b := e.req("POST", path, body)
	wantStatus(t, res, b, http.StatusOK)
	r := decode[ucp.ProductResponse](t, b)
	if r.UCP == nil || r.UCP.Status != ucp.StatusSuccess || r.UCP.Version != ucp.Version || r.UCP.Capabilities[ucp.CapCatalogLookup] == nil || r.Product.ID == "" {
		t.Fatalf("%s", b)
	}
	return r
}

func optSel(pairs ...string) []ucp.SelectedOption {
	var out []ucp.SelectedOption
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, ucp.SelectedOption{Name: pairs[i], Label: pairs[i+1]})
	}
	return out
}

// TestCatalogGetProduct: by product or variant id, with selections
// relaxed by preferences.
func TestCatalogGetProduct(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const path = "/s/energy-sport/catalog/product"
	t.Run("product id", func(t *testing.T) {
		r := e.catProduct(t, path, map[string]any{"id": "trail-runner-x"})
		p := r.Product
		if p.Title != "Trail Runner X" || len(p.Variants) == 0 || p.PriceRange.Min.Amount != 12900 || len(p.Options) != 2 {
			t.Fatalf("%+v", p)
		}
		if !reflect.DeepEqual(p.Selected, optSel("Color", "Black", "Size", "9")) {
			t.Fatalf("selected %+v", p.Selected)
		}
		for _, v := range p.Variants {
			if v.Availability == nil || v.Price.Currency != "USD" || len(v.Inputs) != 0 {
				t.Fatalf("%+v", v)
			}
		}
	})
	t.Run("variant id", func(t *testing.T) {
		r := e.catProduct(t, path, map[string]any{"id": "trx-blu-11"})
		if r.Product.ID != "trail-runner-x" || !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Blue", "Size", "11")) {
			t.Fatalf("%+v", r.Product)
		}
		r = e.catProduct(t, path, map[string]any{"id": "trx-blk-10"})
		if !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Black", "Size", "10")) {
			t.Fatalf("%+v", r.Product.Selected)
		}
		r = e.catProduct(t, path, map[string]any{"id": "rr2-10"})
		if r.Product.ID != "road-racer-2" || !reflect.DeepEqual(r.Product.Selected, optSel("Size", "10")) {
			t.Fatalf("%+v", r.Product)
		}
	})
	t.Run("variant id is the first variant", func(t *testing.T) {
		r := e.catProduct(t, path, map[string]any{"id": "trx-blu-11"})
		if r.Product.Variants[0].ID != "trx-blu-11" {
			t.Fatalf("first variant %s", r.Product.Variants[0].ID)
		}
	})
	t.Run("variant id overrides selected", func(t *testing.T) {
		r := e.catProduct(t, path, map[string]any{"id": "trx-blu-11", "selected": optSel("Color", "Black")})
		if !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Blue", "Size", "11")) {
			t.Fatalf("selected %+v", r.Product.Selected)
		}
	})
	t.Run("selected", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			sel   []ucp.SelectedOption
			prefs []string
			want  []ucp.SelectedOption
		}{
			{"full match", optSel("Color", "Blue", "Size", "11"), nil, optSel("Color", "Blue", "Size", "11")},
			{"out of stock is still selectable", optSel("Color", "Black", "Size", "10"), nil, optSel("Color", "Black", "Size", "10")},
			{"partial", optSel("Color", "Blue"), nil, optSel("Color", "Blue")},
			{"partial size", optSel("Size", "11"), nil, optSel("Size", "11")},
			{"case-insensitive", optSel("color", "BLUE", "size", "11"), nil, optSel("Color", "Blue", "Size", "11")},
			// product.selected is the effective selection (lookup.md):
			// the request's options that survived, in the catalog's
			// spelling. Black / 11 does not exist: Color first keeps Black
			// and relaxes Size; Size first keeps 11 and relaxes Color.
			// When nothing survives, the featured variant's defaults.
			{"relax size", optSel("Color", "Black", "Size", "11"), []string{"Color", "Size"}, optSel("Color", "Black")},
			{"relax size, selections in other order", optSel("Size", "11", "Color", "Black"), []string{"Color", "Size"}, optSel("Color", "Black")},
			{"relax color", optSel("Color", "Black", "Size", "11"), []string{"Size", "Color"}, optSel("Size", "11")},
			{"relax color, selections in other order", optSel("Size", "11", "Color", "Black"), []string{"Size", "Color"}, optSel("Size", "11")},
			{"nothing matches", optSel("Color", "Green", "Size", "12"), []string{"Color", "Size"}, optSel("Color", "Black", "Size", "9")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.catProduct(t, path, map[string]any{"id": "trail-runner-x", "selected": tc.sel, "preferences": tc.prefs})
				if !reflect.DeepEqual(r.Product.Selected, tc.want) {
					t.Fatalf("selected %+v, want %+v", r.Product.Selected, tc.want)
				}
			})
		}
	})
	t.Run("unlisted options relax before preferred ones", func(t *testing.T) {
		for _, tc := range []struct {
			sel, want []ucp.SelectedOption
		}{
			{optSel("Color", "Black", "Size", "11"), optSel("Color", "Black")},
			{optSel("Width", "Wide", "Color", "Blue"), optSel("Color", "Blue")},
		} {
			r := e.catProduct(t, path, map[string]any{"id": "trail-runner-x", "selected": tc.sel, "preferences": []string{"Color"}})
			if !reflect.DeepEqual(r.Product.Selected, tc.want) {
				t.Errorf("selected %+v, want %+v", r.Product.Selected, tc.want)
			}
		}
	})
	t.Run("selected is the effective selection", func(t *testing.T) {
		r := e.catProduct(t, path, map[string]any{"id": "trail-runner-x", "selected": optSel("Color", "Black", "Size", "11"), "preferences": []string{"Color", "Size"}})
		if !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Black")) {
			t.Fatalf("selected %+v", r.Product.Selected)
		}
		r = e.catProduct(t, path, map[string]any{"id": "trail-runner-x", "selected": optSel("Color", "Blue")})
		if !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Blue")) {
			t.Fatalf("selected %+v", r.Product.Selected)
		}
	})
	t.Run("not found", func(t *testing.T) {
		for _, p := range []struct{ path, id string }{
			{path, "nope"},
			{path, "bouquet_roses"}, // another store's
			{"/catalog/product", "nope"},
		} {
			res, b := e.req("POST", p.path, map[string]any{"id": p.id})
			env := catEnvelopeErr(t, res, b, "not_found", "$.id")
			if env.Messages[0].Severity != ucp.SeverityUnrecoverable {
				t.Fatalf("%s", b)
			}
		}
		for _, body := range []any{map[string]any{}, map[string]any{"id": ""}, `{"id":5}`, nil} {
			res, b := e.req("POST", path, body)
			catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
		}
	})
	t.Run("global", func(t *testing.T) {
		r := e.catProduct(t, "/catalog/product", map[string]any{"id": "chawan-raku"})
		if r.Product.ID != "chawan" || string(r.Product.Metadata) != `{"store":"kyoto-tea"}` || r.Product.Variants[0].Seller == nil ||
			r.Product.Variants[0].Seller.Name != "Kyoto Tea House" {
			t.Fatalf("%+v", r.Product)
		}
		r = e.catProduct(t, "/catalog/product", map[string]any{"id": "trx-blu-10"})
		if r.Product.ID != "trail-runner-x" || !reflect.DeepEqual(r.Product.Selected, optSel("Color", "Blue", "Size", "10")) {
			t.Fatalf("%+v", r.Product)
		}
	})
}

// TestCatalogCurrencyMessages: price bounds across currencies are flagged.
func TestCatalogCurrencyMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, b := e.req("POST", "/catalog/search", map[string]any{"filters": map[string]any{"price": map[string]any{"max": 5000}}})
	if r := decode[ucp.SearchResponse](t, b); !slices.Equal(messageCodes(r.Messages), []string{"currency_ambiguous"}) {
		t.Fatalf("%s", b)
	}
	_, b = e.req("POST", "/catalog/search", map[string]any{"filters": map[string]any{"price": map[string]any{"max": 5000}}, "context": map[string]any{"currency": "EUR"}})
	if r := decode[ucp.SearchResponse](t, b); len(r.Messages) != 0 || len(r.Products) == 0 {
		t.Fatalf("%s", b)
	}
	_, b = e.req("POST", "/s/flower-shop/catalog/search", map[string]any{"filters": map[string]any{"price": map[string]any{"max": 5000}}, "context": map[string]any{"currency": "USD"}})
	if r := decode[ucp.SearchResponse](t, b); !slices.Equal(messageCodes(r.Messages), []string{"currency_mismatch"}) || len(r.Products) != 0 {
		t.Fatalf("%s", b)
	}
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

// TestReviewGetProductRelaxationCPU (security review, finding 9):
// get_product selection relaxation is cubic in the request: with every
// selection named by the *last* preference, each round scans
// |selected| x |preferences| and there are |selected| rounds. A 75 KB
// anonymous request burns seconds of CPU; a 1 MiB one, hours.
//
// Not parallel: it times one request, and serial tests run alone.
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

// TestReviewSearchScansWholeCatalog (security review, finding 10):
// Relevance search with a filter the store query cannot express
// (price max 0, or 2+ categories) pages through the whole catalog in
// batches of limit+1: an anonymous request with limit 1 costs one query
// per two products in every store.
func TestReviewSearchScansWholeCatalog(t *testing.T) {
	t.Parallel()
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

// TestReviewPriceSortTruncatedAt1000 (security review, finding 13):
// price_asc/price_desc sort only the first 1000 matches in (store, id)
// order: past 1000 matches the "cheapest first" page is not the cheapest,
// and paging ends at offset 1000, so the rest is unreachable.
func TestReviewPriceSortTruncatedAt1000(t *testing.T) {
	t.Parallel()
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
	r := e.catSearch(t, "/s/big-store/catalog/search", map[string]any{"sort": "price_asc", "filters": browseAll, "pagination": map[string]any{"limit": 1}})
	if len(r.Products) != 1 || r.Products[0].ID != "zzz-cheapest" {
		var got string
		if len(r.Products) > 0 {
			got = fmt.Sprintf("%s (price %d)", r.Products[0].ID, r.Products[0].PriceRange.Min.Amount)
		}
		t.Fatalf("price_asc first product %s, want zzz-cheapest (price 1); has_next_page %v", got, r.Pagination != nil && r.Pagination.HasNextPage)
	}
}
