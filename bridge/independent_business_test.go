package bridge_test

// A small UCP 2026-04-08 business written here from the spec (ucp.md §1,
// §2: profile at /.well-known/ucp, the dev.ucp.shopping REST binding,
// UCP-Agent and Request-Id on every call, Idempotency-Key on state
// changes). It shares no code with the platform's stores; the bridge
// reaches it only by its profile URL (business_url).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

type tinyShop struct {
	srv *httptest.Server
	t   *testing.T

	mu        sync.Mutex
	checkouts map[string]map[string]any
	leaked    []string // credentials it should never have seen
}

var tinyPrices = map[string]int64{"kettle": 4200, "teapot": 2599}

func newTinyShop(t *testing.T) *tinyShop {
	s := &tinyShop{t: t, checkouts: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ucp", s.profile)
	mux.HandleFunc("POST /api/catalog/search", s.wrap(false, s.search))
	mux.HandleFunc("POST /api/checkout-sessions", s.wrap(true, s.create))
	mux.HandleFunc("GET /api/checkout-sessions/{id}", s.wrap(false, s.get))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tinyShop) profile(w http.ResponseWriter, _ *http.Request) {
	entity := func(extra map[string]any) map[string]any {
		m := map[string]any{"version": "2026-04-08", "spec": "https://ucp.dev/specification/overview", "schema": "https://ucp.dev/schemas/x.json"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ucp": map[string]any{
		"version": "2026-04-08",
		"services": map[string]any{"dev.ucp.shopping": []any{
			entity(map[string]any{"transport": "rest", "endpoint": s.srv.URL + "/api"})}},
		"capabilities": map[string]any{
			"dev.ucp.shopping.checkout":       []any{entity(nil)},
			"dev.ucp.shopping.catalog.search": []any{entity(nil)},
		},
		"payment_handlers": map[string]any{},
	}})
}

// wrap enforces the transport rules and records leaked credentials.
func (s *tinyShop) wrap(stateChanging bool, h func(r *http.Request, body []byte) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Header.Get("X-API-Key") != "" || r.Header.Get("Authorization") != "" {
			s.leaked = append(s.leaked, r.URL.Path)
		}
		if !strings.Contains(r.Header.Get("UCP-Agent"), `profile="`) || r.Header.Get("Request-Id") == "" ||
			(stateChanging && r.Header.Get("Idempotency-Key") == "") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"code":"invalid_request","content":"UCP-Agent, Request-Id and Idempotency-Key are required"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h(r, body))
	}
}

func tinyEnvelope() map[string]any {
	return map[string]any{"version": "2026-04-08", "status": "success"}
}

func (s *tinyShop) search(_ *http.Request, body []byte) any {
	var req struct {
		Query   string `json:"query"`
		Filters struct {
			Price struct {
				Max *int64 `json:"max"`
			} `json:"price"`
		} `json:"filters"`
	}
	_ = json.Unmarshal(body, &req)
	products := []any{}
	for id, price := range tinyPrices {
		if req.Query != "" && !strings.Contains(id, req.Query) || req.Filters.Price.Max != nil && price > *req.Filters.Price.Max {
			continue
		}
		p := map[string]any{"amount": price, "currency": "USD"}
		products = append(products, map[string]any{"id": "p_" + id, "title": id, "description": map[string]any{"plain": id},
			"price_range": map[string]any{"min": p, "max": p},
			"variants":    []any{map[string]any{"id": id, "title": id, "description": map[string]any{"plain": id}, "price": p}}})
	}
	return map[string]any{"ucp": tinyEnvelope(), "products": products}
}

func (s *tinyShop) create(_ *http.Request, body []byte) any {
	var req struct {
		LineItems []struct {
			Item struct {
				ID string `json:"id"`
			} `json:"item"`
			Quantity int64 `json:"quantity"`
		} `json:"line_items"`
	}
	_ = json.Unmarshal(body, &req)
	var total int64
	var lines []any
	for i, l := range req.LineItems {
		p, ok := tinyPrices[l.Item.ID]
		if !ok {
			return map[string]any{"ucp": map[string]any{"version": "2026-04-08", "status": "error"},
				"messages": []any{map[string]any{"type": "error", "code": "item_unavailable", "content": "no such item: " + l.Item.ID, "severity": "unrecoverable"}}}
		}
		total += p * l.Quantity
		lines = append(lines, map[string]any{"id": fmt.Sprintf("li_%d", i), "item": map[string]any{"id": l.Item.ID, "price": p},
			"quantity": l.Quantity, "totals": []any{map[string]any{"type": "total", "amount": p * l.Quantity}}})
	}
	id := fmt.Sprintf("tiny_%d", len(s.checkouts)+1)
	co := map[string]any{"ucp": tinyEnvelope(), "id": id, "status": "incomplete", "currency": "USD", "line_items": lines,
		"totals": []any{map[string]any{"type": "subtotal", "amount": total}, map[string]any{"type": "total", "amount": total}},
		"links":  []any{}, "continue_url": s.srv.URL + "/pay/" + id}
	s.checkouts[id] = co
	return co
}

func (s *tinyShop) get(r *http.Request, _ []byte) any {
	if co, ok := s.checkouts[r.PathValue("id")]; ok {
		return co
	}
	return map[string]any{"ucp": map[string]any{"version": "2026-04-08", "status": "error"},
		"messages": []any{map[string]any{"type": "error", "code": "not_found", "content": "no such checkout", "severity": "unrecoverable"}}}
}

// TestIndependentBusiness: the bridge shops at a business outside the
// platform by its profile URL, converts the price filter exactly, and
// never sends it the platform key or the buyer's token.
func TestIndependentBusiness(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	shop := newTinyShop(t)
	h := startHarness(t, harnessOptions{allowance: &authservertest.Allowance{MaxPerOrder: "50", DailyCap: "100", Currency: "USD", Days: 30}})
	bizURL := shop.srv.URL + "/.well-known/ucp"
	res := h.ok(t, "search_products", map[string]any{"business_url": bizURL, "query": "t",
		"filters": map[string]any{"price": map[string]any{"max": 26, "currency": "USD"}}})
	js := mustJSON(t, res)
	if !strings.Contains(js, "teapot") || strings.Contains(js, "kettle") {
		t.Fatalf("search max 26.00 USD: %s", js)
	}
	co := h.ok(t, "create_checkout", map[string]any{"business_url": bizURL, "items": lines("kettle", 2)})
	if co["id"] == "" || co["status"] != "incomplete" {
		t.Fatalf("checkout: %v", co)
	}
	got := h.ok(t, "view_checkout", map[string]any{"business_url": bizURL, "id": co["id"]})
	if got["id"] != co["id"] {
		t.Fatalf("view: %v", got)
	}
	bad := h.call(t, "create_checkout", map[string]any{"business_url": bizURL, "items": lines("toaster", 1)})
	if !bad.IsError || structured(t, bad)["code"] != "item_unavailable" {
		t.Fatalf("unknown item: %s", text(bad))
	}
	bad = h.call(t, "view_checkout", map[string]any{"business_url": shop.srv.URL + "/nothing-here", "id": "x"})
	if !bad.IsError {
		t.Fatalf("bad profile URL: %s", text(bad))
	}
	shop.mu.Lock()
	defer shop.mu.Unlock()
	if len(shop.leaked) > 0 {
		t.Fatalf("platform or buyer credentials sent to another business: %v", shop.leaked)
	}
}
