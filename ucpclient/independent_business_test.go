package ucpclient_test

// A small UCP 2026-04-08 business written here from the spec (ucp.md §1,
// §2, §5, §7): its own profile, REST handlers, idempotency store and
// auth, and no code shared with ucpbridge's stores. The client finds it by
// its profile URL only.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const (
	indieKey     = "indie-key-123"
	indieAgent   = "https://agent.example/.well-known/ucp"
	platformKey  = "platform-secret-never-leaves"
	indieVersion = "2026-04-08"
)

type indieTotal struct {
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
}

type indieLine struct {
	ID   string `json:"id,omitempty"`
	Item struct {
		ID    string `json:"id"`
		Title string `json:"title,omitempty"`
		Price int64  `json:"price,omitempty"`
	} `json:"item"`
	Quantity int          `json:"quantity"`
	Totals   []indieTotal `json:"totals,omitempty"`
}

type indieCheckout struct {
	UCP         map[string]any      `json:"ucp"`
	ID          string              `json:"id"`
	LineItems   []indieLine         `json:"line_items"`
	Buyer       map[string]any      `json:"buyer,omitempty"`
	Status      string              `json:"status"`
	Currency    string              `json:"currency"`
	Totals      []indieTotal        `json:"totals"`
	Messages    []map[string]string `json:"messages,omitempty"`
	Links       []map[string]string `json:"links"`
	ContinueURL string              `json:"continue_url,omitempty"`
	Order       map[string]string   `json:"order,omitempty"`
}

type indieReq struct {
	method, path string
	header       http.Header
}

type idemEntry struct {
	sum    [32]byte
	status int
	body   []byte
}

type indieShop struct {
	srv *httptest.Server

	mu         sync.Mutex
	checkouts  map[string]*indieCheckout
	orders     map[string]map[string]any
	idem       map[string]idemEntry
	log        []indieReq
	created    int
	failCreate int // answer this many creates with 503 first
}

var indiePrices = map[string]int64{"mug": 1250, "tea": 800}

func newIndieShop(t *testing.T) *indieShop {
	s := startIndieShop()
	t.Cleanup(s.srv.Close)
	return s
}

// startIndieShop serves the business until s.srv.Close.
func startIndieShop() *indieShop {
	s := &indieShop{checkouts: map[string]*indieCheckout{}, orders: map[string]map[string]any{}, idem: map[string]idemEntry{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ucp", s.profile(true))
	mux.HandleFunc("GET /norest/.well-known/ucp", s.profile(false))
	// A newer business that still serves 2026-04-08 through
	// supported_versions, and one that does not.
	mux.HandleFunc("GET /newer/.well-known/ucp", s.newer(true))
	mux.HandleFunc("GET /future/.well-known/ucp", s.newer(false))
	mux.HandleFunc("POST /ucp/v1/catalog/search", s.api(false, s.search))
	mux.HandleFunc("POST /ucp/v1/checkout-sessions", s.api(true, s.create))
	mux.HandleFunc("GET /ucp/v1/checkout-sessions/{id}", s.api(true, s.get))
	mux.HandleFunc("PUT /ucp/v1/checkout-sessions/{id}", s.api(true, s.update))
	mux.HandleFunc("POST /ucp/v1/checkout-sessions/{id}/complete", s.api(true, s.complete))
	mux.HandleFunc("POST /ucp/v1/checkout-sessions/{id}/cancel", s.api(true, s.cancel))
	mux.HandleFunc("GET /ucp/v1/orders/{id}", s.api(true, s.order))
	s.srv = httptest.NewServer(mux)
	return s
}

func (s *indieShop) profile(rest bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		svc := []map[string]any{{"version": indieVersion, "spec": "https://ucp.dev/specification/overview",
			"schema": "https://ucp.dev/" + indieVersion + "/services/shopping/mcp.openrpc.json", "transport": "mcp", "endpoint": s.srv.URL + "/mcp"}}
		if rest {
			svc = append(svc, map[string]any{"version": indieVersion, "spec": "https://ucp.dev/specification/overview",
				"schema": "https://ucp.dev/" + indieVersion + "/services/shopping/rest.openapi.json", "transport": "rest", "endpoint": s.srv.URL + "/ucp/v1"})
		}
		cap := func(name string) []map[string]any {
			return []map[string]any{{"version": indieVersion, "spec": "https://ucp.dev/specification/" + name, "schema": "https://ucp.dev/schemas/" + name + ".json"}}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(map[string]any{"ucp": map[string]any{
			"version":  indieVersion,
			"services": map[string]any{"dev.ucp.shopping": svc},
			"capabilities": map[string]any{
				"dev.ucp.shopping.checkout":       cap("checkout"),
				"dev.ucp.shopping.order":          cap("order"),
				"dev.ucp.shopping.catalog.search": cap("catalog"),
			},
			"payment_handlers": map[string]any{"com.indie.tokenizer": []map[string]any{{"id": "indie_tok", "version": indieVersion,
				"spec": "https://indie.example/tokenizer", "schema": "https://indie.example/tokenizer.json", "available_instruments": []map[string]string{{"type": "card"}}}}},
		}})
	}
}

func (s *indieShop) newer(withLeaf bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := map[string]any{"version": "2026-09-01", "payment_handlers": map[string]any{},
			"services": map[string]any{"dev.ucp.shopping": []map[string]any{{"version": "2026-09-01", "transport": "rest", "endpoint": s.srv.URL + "/ucp/v2"}}}}
		if withLeaf {
			u["supported_versions"] = map[string]string{indieVersion: s.srv.URL + "/.well-known/ucp"}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ucp": u})
	}
}

var (
	agentRe = regexp.MustCompile(`(?:^|,\s*)profile="([^"\\]*)"`)
	uuidRe  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// api applies the transport rules every operation shares: UCP-Agent and
// Request-Id required, Idempotency-Key required on POST/PUT with replay
// and conflict, the API key (when auth is true) with a 401 challenge.
func (s *indieShop) api(auth bool, h func(r *http.Request, body []byte) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		defer s.mu.Unlock()
		s.log = append(s.log, indieReq{r.Method, r.URL.Path, r.Header.Clone()})
		flat := func(status int, code, content string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"code": code, "content": content})
		}
		if m := agentRe.FindStringSubmatch(r.Header.Get("UCP-Agent")); m == nil || !strings.HasPrefix(m[1], "https://") {
			flat(400, "invalid_profile_url", "UCP-Agent with an https profile is required")
			return
		}
		if !uuidRe.MatchString(r.Header.Get("Request-Id")) {
			flat(400, "invalid_request", "Request-Id (uuid) is required")
			return
		}
		if auth && r.Header.Get("X-API-Key") != indieKey {
			w.Header().Set("WWW-Authenticate", `Bearer realm="indie", error="invalid_token", error_description="unknown API key", resource_metadata="`+s.srv.URL+`/.well-known/oauth-protected-resource"`)
			flat(401, "unauthorized", "a valid X-API-Key is required")
			return
		}
		key := r.Header.Get("Idempotency-Key")
		stateChanging := r.Method != http.MethodGet && !strings.Contains(r.URL.Path, "/catalog/")
		if stateChanging && !uuidRe.MatchString(key) && !strings.HasPrefix(key, "test-") {
			flat(400, "invalid_request", "Idempotency-Key is required on state-changing operations")
			return
		}
		ik := r.Method + " " + r.URL.Path + " " + key
		sum := sha256.Sum256(body)
		if e, ok := s.idem[ik]; stateChanging && ok {
			if e.sum != sum {
				flat(409, "idempotency_conflict", "the key was used with a different request")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(e.status)
			w.Write(e.body)
			return
		}
		if r.URL.Path == "/ucp/v1/checkout-sessions" && s.failCreate > 0 {
			s.failCreate--
			w.Header().Set("Retry-After", "0")
			flat(503, "unavailable", "try again")
			return
		}
		status, v := h(r, body)
		out, _ := json.Marshal(v)
		if stateChanging {
			s.idem[ik] = idemEntry{sum, status, out}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(out)
	}
}

func indieEnvelope(caps ...string) map[string]any {
	m := map[string]any{}
	for _, c := range caps {
		m[c] = []map[string]string{{"version": indieVersion}}
	}
	return map[string]any{"version": indieVersion, "capabilities": m}
}

func indieError(code, content string) map[string]any {
	return map[string]any{"ucp": map[string]string{"version": indieVersion, "status": "error"},
		"messages": []map[string]string{{"type": "error", "code": code, "content": content, "severity": "unrecoverable"}}}
}

func (s *indieShop) search(r *http.Request, body []byte) (int, any) {
	var req struct {
		Query string `json:"query"`
	}
	json.Unmarshal(body, &req)
	var products []map[string]any
	for id, price := range indiePrices {
		if req.Query != "" && !strings.Contains(id, strings.ToLower(req.Query)) {
			continue
		}
		p := map[string]any{"amount": price, "currency": "USD"}
		products = append(products, map[string]any{"id": "prod_" + id, "title": id, "description": map[string]string{"plain": "A " + id},
			"price_range": map[string]any{"min": p, "max": p},
			"variants":    []map[string]any{{"id": id, "title": id, "description": map[string]string{"plain": id}, "price": p}}})
	}
	return 200, map[string]any{"ucp": indieEnvelope("dev.ucp.shopping.catalog.search"), "products": products,
		"pagination": map[string]any{"has_next_page": false}}
}

// price fills the server-side fields of lines and totals; false on an
// unknown item.
func (s *indieShop) price(c *indieCheckout, lines []indieLine) bool {
	var sub int64
	for i := range lines {
		p, ok := indiePrices[lines[i].Item.ID]
		if !ok || lines[i].Quantity < 1 {
			return false
		}
		lines[i].ID = fmt.Sprintf("li_%d", i+1)
		lines[i].Item.Title, lines[i].Item.Price = lines[i].Item.ID, p
		amt := p * int64(lines[i].Quantity)
		lines[i].Totals = []indieTotal{{"subtotal", amt}, {"total", amt}}
		sub += amt
	}
	c.LineItems, c.Totals = lines, []indieTotal{{"subtotal", sub}, {"total", sub}}
	c.Messages = nil
	if email, _ := c.Buyer["email"].(string); email == "" {
		c.Status = "incomplete"
		c.Messages = []map[string]string{{"type": "error", "code": "missing", "content": "buyer email is required", "severity": "recoverable", "path": "$.buyer.email"}}
	} else {
		c.Status = "ready_for_complete"
	}
	c.ContinueURL = s.srv.URL + "/checkout/" + c.ID
	return true
}

func (s *indieShop) view(c *indieCheckout) *indieCheckout {
	v := *c
	v.UCP = indieEnvelope("dev.ucp.shopping.checkout")
	v.UCP["payment_handlers"] = map[string]any{"com.indie.tokenizer": []map[string]string{{"id": "indie_tok", "version": indieVersion}}}
	return &v
}

func (s *indieShop) create(r *http.Request, body []byte) (int, any) {
	var req struct {
		LineItems []indieLine    `json:"line_items"`
		Buyer     map[string]any `json:"buyer"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.LineItems) == 0 {
		return 200, indieError("invalid_request", "line_items are required")
	}
	s.created++
	c := &indieCheckout{ID: fmt.Sprintf("co_%d", s.created), Currency: "USD", Buyer: req.Buyer,
		Links: []map[string]string{{"type": "terms_of_service", "url": "https://indie.example/terms"}}}
	if !s.price(c, req.LineItems) {
		return 200, indieError("item_unavailable", "unknown item")
	}
	s.checkouts[c.ID] = c
	return 201, s.view(c)
}

func (s *indieShop) get(r *http.Request, _ []byte) (int, any) {
	c, ok := s.checkouts[r.PathValue("id")]
	if !ok {
		return 200, indieError("not_found", "no such checkout")
	}
	return 200, s.view(c)
}

func (s *indieShop) update(r *http.Request, body []byte) (int, any) {
	c, ok := s.checkouts[r.PathValue("id")]
	if !ok {
		return 200, indieError("not_found", "no such checkout")
	}
	if c.Status == "completed" || c.Status == "canceled" {
		return 200, indieError("invalid_state", "checkout is "+c.Status)
	}
	var req struct {
		LineItems []indieLine    `json:"line_items"`
		Buyer     map[string]any `json:"buyer"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.LineItems) == 0 {
		return 200, indieError("invalid_request", "line_items are required (update is a full replace)")
	}
	c.Buyer = req.Buyer // full replace
	if !s.price(c, req.LineItems) {
		return 200, indieError("item_unavailable", "unknown item")
	}
	return 200, s.view(c)
}

func (s *indieShop) complete(r *http.Request, body []byte) (int, any) {
	c, ok := s.checkouts[r.PathValue("id")]
	if !ok {
		return 200, indieError("not_found", "no such checkout")
	}
	var req struct {
		Payment struct {
			Instruments []struct {
				HandlerID  string `json:"handler_id"`
				Credential struct {
					Type  string `json:"type"`
					Token string `json:"token"`
				} `json:"credential"`
			} `json:"instruments"`
		} `json:"payment"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Payment.Instruments) == 0 {
		return 400, map[string]string{"code": "invalid_request", "content": "payment.instruments is required"}
	}
	if c.Status != "ready_for_complete" {
		return 200, s.view(c)
	}
	in := req.Payment.Instruments[0]
	if in.HandlerID != "indie_tok" || in.Credential.Type != "token" || in.Credential.Token != "tok_ok" {
		v := s.view(c) // a failed payment is a business outcome: 200, status kept
		v.Messages = []map[string]string{{"type": "error", "code": "payment_failed", "content": "card declined", "severity": "recoverable"}}
		return 200, v
	}
	orderID := "ord_" + strings.TrimPrefix(c.ID, "co_")
	c.Status, c.ContinueURL, c.Messages = "completed", "", nil
	c.Order = map[string]string{"id": orderID, "permalink_url": s.srv.URL + "/orders/" + orderID}
	s.orders[orderID] = map[string]any{"ucp": indieEnvelope("dev.ucp.shopping.order"), "id": orderID, "checkout_id": c.ID,
		"permalink_url": c.Order["permalink_url"], "line_items": []any{}, "fulfillment": map[string]any{"expectations": []any{}, "events": []any{}},
		"currency": c.Currency, "totals": c.Totals}
	return 200, s.view(c)
}

func (s *indieShop) cancel(r *http.Request, body []byte) (int, any) {
	c, ok := s.checkouts[r.PathValue("id")]
	if !ok {
		return 200, indieError("not_found", "no such checkout")
	}
	if len(body) != 0 {
		return 400, map[string]string{"code": "invalid_request", "content": "cancel takes an empty body"}
	}
	if c.Status == "completed" || c.Status == "canceled" {
		return 409, map[string]string{"code": "invalid_state", "content": "checkout is " + c.Status}
	}
	c.Status = "canceled"
	return 200, s.view(c)
}

func (s *indieShop) order(r *http.Request, _ []byte) (int, any) {
	o, ok := s.orders[r.PathValue("id")]
	if !ok {
		return 200, indieError("not_found", "no such order")
	}
	return 200, o
}

func (s *indieShop) requests() []indieReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]indieReq(nil), s.log...)
}

func indieClient(t *testing.T, hook func(context.Context, *ucpclient.Challenge) error) *ucpclient.Client {
	t.Helper()
	c, err := ucpclient.New(ucpclient.Config{
		// The platform API lives elsewhere (a loopback BaseURL lets the
		// guarded HTTP client reach the loopback test business).
		BaseURL: "http://127.0.0.1:1",
		APIKey:  platformKey,
		// A buyer token from the platform's sign-in: never sent to
		// another business.
		Buyer:           oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "platform-buyer-token"}),
		AgentProfile:    indieAgent,
		Retry:           ucpclient.RetryConfig{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		OnAuthChallenge: hook,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type checkoutView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	UCP    struct {
		Version string `json:"version"`
		Status  string `json:"status"`
	} `json:"ucp"`
	Totals   []indieTotal        `json:"totals"`
	Messages []map[string]string `json:"messages"`
	Order    *struct {
		ID string `json:"id"`
	} `json:"order"`
}

func checkoutDecoder(t *testing.T) func(json.RawMessage, error) checkoutView {
	return func(raw json.RawMessage, err error) checkoutView {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var v checkoutView
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return v
	}
}

// TestIndependentBusinessREST: catalog, checkout create, update and
// complete with a token against a business found by its profile URL.
func TestIndependentBusinessREST(t *testing.T) {
	shop := newIndieShop(t)
	c := indieClient(t, nil)
	ctx := context.Background()
	dc := checkoutDecoder(t)
	b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, APIKey: indieKey})
	if err != nil {
		t.Fatal(err)
	}
	if b.Endpoint() != shop.srv.URL+"/ucp/v1" || b.HasBuyerToken() {
		t.Fatalf("endpoint %q, buyer token %v", b.Endpoint(), b.HasBuyerToken())
	}
	if n := b.Negotiated(); n.Version != indieVersion || !n.Has(ucp.CapCheckout) || !n.Has(ucp.CapOrder) {
		t.Fatalf("negotiated %+v", n)
	}

	sr, err := b.SearchCatalog(ctx, &ucp.SearchRequest{Query: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Products) != 1 || len(sr.Products[0].Variants) != 1 || sr.Products[0].Variants[0].Price.Amount != 1250 {
		t.Fatalf("search: %+v", sr)
	}
	variant := sr.Products[0].Variants[0].ID

	lines := []map[string]any{{"item": map[string]string{"id": variant}, "quantity": 2}}
	co := dc(b.CreateCheckout(ctx, map[string]any{"line_items": lines}))
	if co.ID == "" || co.Status != ucp.CheckoutIncomplete || co.UCP.Version != indieVersion {
		t.Fatalf("create: %+v", co)
	}
	got := dc(b.GetCheckout(ctx, co.ID))
	if got.ID != co.ID {
		t.Fatalf("get: %+v", got)
	}
	co = dc(b.UpdateCheckout(ctx, co.ID, map[string]any{"line_items": lines, "buyer": map[string]string{"email": "ada@example.com"}}))
	if co.Status != ucp.CheckoutReadyForComplete || len(co.Totals) != 2 || co.Totals[1].Amount != 2500 {
		t.Fatalf("update: %+v", co)
	}

	pay := func(token string) map[string]any {
		return map[string]any{"payment": map[string]any{"instruments": []map[string]any{{"id": "pi_1", "handler_id": "indie_tok", "type": "card",
			"credential": map[string]string{"type": "token", "token": token}}}}}
	}
	declined := dc(b.CompleteCheckout(ctx, co.ID, pay("tok_declined")))
	if declined.Status != ucp.CheckoutReadyForComplete || len(declined.Messages) == 0 || declined.Messages[0]["code"] != "payment_failed" {
		t.Fatalf("declined completion: %+v", declined)
	}
	done := dc(b.CompleteCheckout(ctx, co.ID, pay("tok_ok")))
	if done.Status != ucp.CheckoutCompleted || done.Order == nil || done.Order.ID == "" {
		t.Fatalf("complete: %+v", done)
	}
	raw, err := b.GetOrder(ctx, done.Order.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ord ucp.Order
	if err := json.Unmarshal(raw, &ord); err != nil || ord.ID != done.Order.ID || ord.CheckoutID != co.ID {
		t.Fatalf("order %s: %v", raw, err)
	}
	// A missing order is a 2xx UCP error envelope: a result, as on MCP.
	raw, err = b.GetOrder(ctx, "ord_nope")
	if err != nil || !ucpclient.IsUCPError(raw) {
		t.Fatalf("missing order: %s, %v", raw, err)
	}

	// Cancel: empty body; cancelling twice is the business's 4xx.
	other := dc(b.CreateCheckout(ctx, map[string]any{"line_items": lines}))
	if v := dc(b.CancelCheckout(ctx, other.ID)); v.Status != ucp.CheckoutCanceled {
		t.Fatalf("cancel: %+v", v)
	}
	_, err = b.CancelCheckout(ctx, other.ID)
	var pe *ucpclient.ProtocolError
	if !errors.As(err, &pe) || pe.StatusCode != 409 || pe.Code != "invalid_state" {
		t.Fatalf("second cancel: %v", err)
	}

	// Every request carried UCP-Agent and a fresh Request-Id; state
	// changes an Idempotency-Key; reads none; this business's key, never
	// the platform's, and no bearer.
	rids := map[string]bool{}
	for _, r := range shop.requests() {
		if got := r.header.Get("UCP-Agent"); got != `profile="`+indieAgent+`"` {
			t.Errorf("%s %s: UCP-Agent %q", r.method, r.path, got)
		}
		rid := r.header.Get("Request-Id")
		if rids[rid] {
			t.Errorf("%s %s: Request-Id %q reused", r.method, r.path, rid)
		}
		rids[rid] = true
		idem := r.header.Get("Idempotency-Key") != ""
		if want := r.method != http.MethodGet && !strings.Contains(r.path, "/catalog/"); idem != want {
			t.Errorf("%s %s: Idempotency-Key present %v, want %v", r.method, r.path, idem, want)
		}
		for name, vals := range r.header {
			for _, v := range vals {
				if strings.Contains(v, platformKey) {
					t.Errorf("%s %s: platform key sent in %s", r.method, r.path, name)
				}
			}
		}
		if r.header.Get("Authorization") != "" {
			t.Errorf("%s %s: Authorization sent", r.method, r.path)
		}
		if !strings.Contains(r.path, "/catalog/") && r.header.Get("X-API-Key") != indieKey {
			t.Errorf("%s %s: X-API-Key %q", r.method, r.path, r.header.Get("X-API-Key"))
		}
	}
}

// TestIndependentBusinessIdempotency: a create retried after a 503 keeps
// its key and creates one checkout; the same key replays; the same key
// with another body is the business's 409.
func TestIndependentBusinessIdempotency(t *testing.T) {
	shop := newIndieShop(t)
	c := indieClient(t, nil)
	ctx := context.Background()
	dc := checkoutDecoder(t)
	b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, APIKey: indieKey})
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"line_items": []map[string]any{{"item": map[string]string{"id": "tea"}, "quantity": 1}}}

	shop.mu.Lock()
	shop.failCreate = 1
	shop.mu.Unlock()
	first := dc(b.CreateCheckout(ctx, body))
	var creates []indieReq
	for _, r := range shop.requests() {
		if r.method == http.MethodPost && r.path == "/ucp/v1/checkout-sessions" {
			creates = append(creates, r)
		}
	}
	if len(creates) != 2 {
		t.Fatalf("%d create attempts, want 2 (503 then retry)", len(creates))
	}
	if k0, k1 := creates[0].header.Get("Idempotency-Key"), creates[1].header.Get("Idempotency-Key"); k0 == "" || k0 != k1 {
		t.Errorf("retry changed the Idempotency-Key: %q, %q", k0, k1)
	}
	if creates[0].header.Get("Request-Id") == creates[1].header.Get("Request-Id") {
		t.Error("retry reused the Request-Id")
	}

	const key = "test-replay-1"
	a := dc(b.CreateCheckout(ctx, body, ucpclient.WithIdempotencyKey(key)))
	again := dc(b.CreateCheckout(ctx, body, ucpclient.WithIdempotencyKey(key)))
	if a.ID == "" || a.ID != again.ID || a.ID == first.ID {
		t.Fatalf("replay: %q then %q (first %q)", a.ID, again.ID, first.ID)
	}
	shop.mu.Lock()
	created := shop.created
	shop.mu.Unlock()
	if created != 2 {
		t.Errorf("business created %d checkouts, want 2", created)
	}
	other := map[string]any{"line_items": []map[string]any{{"item": map[string]string{"id": "mug"}, "quantity": 3}}}
	_, err = b.CreateCheckout(ctx, other, ucpclient.WithIdempotencyKey(key))
	var pe *ucpclient.ProtocolError
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusConflict || pe.Code != "idempotency_conflict" || pe.RequestID == "" {
		t.Fatalf("same key, other body: %v", err)
	}
}

// TestIndependentBusinessAuthChallenge: the business's 401 reaches the
// hook and comes back as *AuthChallengeError; without a key of its own
// the business gets no key at all (the platform's stays home).
func TestIndependentBusinessAuthChallenge(t *testing.T) {
	shop := newIndieShop(t)
	var hooked []*ucpclient.Challenge
	var mu sync.Mutex
	c := indieClient(t, func(_ context.Context, ch *ucpclient.Challenge) error {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, ch)
		return nil
	})
	ctx := context.Background()
	body := map[string]any{"line_items": []map[string]any{{"item": map[string]string{"id": "tea"}, "quantity": 1}}}
	for _, key := range []string{"wrong-key", ""} {
		b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.CreateCheckout(ctx, body)
		var ae *ucpclient.AuthChallengeError
		if !errors.As(err, &ae) {
			t.Fatalf("key %q: %v, want *AuthChallengeError", key, err)
		}
		if ae.Op != "rest.create_checkout" || ae.Challenge.Error != "invalid_token" || ae.Challenge.Realm != "indie" ||
			ae.Challenge.ResourceMetadata != shop.srv.URL+"/.well-known/oauth-protected-resource" {
			t.Errorf("key %q: challenge %+v", key, ae.Challenge)
		}
	}
	mu.Lock()
	if len(hooked) != 2 {
		t.Errorf("hook called %d times, want 2", len(hooked))
	}
	mu.Unlock()
	reqs := shop.requests()
	if len(reqs) != 2 || reqs[0].header.Get("X-API-Key") != "wrong-key" || reqs[1].header.Get("X-API-Key") != "" {
		t.Errorf("requests: %+v", reqs)
	}
	// The 401 was not retried (one request per call).
}

// TestIndependentBusinessDiscovery: the profile rules before any call.
func TestIndependentBusinessDiscovery(t *testing.T) {
	shop := newIndieShop(t)
	c := indieClient(t, nil)
	ctx := context.Background()
	var de *discovery.Error

	_, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", nil) // http without the loopback allowance
	if !errors.As(err, &de) || de.Code != discovery.CodeInvalidProfileURL {
		t.Errorf("http profile: %v", err)
	}
	_, err = c.Business(ctx, shop.srv.URL+"/norest/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if !errors.Is(err, ucpclient.ErrNoREST) {
		t.Errorf("MCP-only profile: %v", err)
	}
	_, err = c.Business(ctx, shop.srv.URL+"/missing/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if !errors.As(err, &de) || de.Code != discovery.CodeProfileUnreachable {
		t.Errorf("missing profile: %v", err)
	}
	// Client-side negotiation with a platform profile that shares no
	// capability.
	plat, err := ucp.ParseProfile([]byte(`{"ucp":{"version":"2026-04-08","capabilities":{"com.other.thing":[{"version":"2026-04-08"}]},"payment_handlers":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, Platform: plat})
	if !errors.As(err, &de) || de.Code != discovery.CodeCapabilitiesIncompatible {
		t.Errorf("incompatible platform: %v", err)
	}
	plat.UCP.Capabilities = map[string][]ucp.Capability{ucp.CapCheckout: {{Entity: ucp.Entity{Version: "2026-04-08"}}}}
	b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, Platform: plat})
	if err != nil || !b.Negotiated().Has(ucp.CapCheckout) || b.Negotiated().Has(ucp.CapOrder) {
		t.Errorf("negotiated: %+v, %v", b, err)
	}
	// A newer business is followed to its 2026-04-08 leaf profile; one
	// without a leaf is version_unsupported.
	b, err = c.Business(ctx, shop.srv.URL+"/newer/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if err != nil || b.Endpoint() != shop.srv.URL+"/ucp/v1" || b.Profile().UCP.Version != indieVersion {
		t.Errorf("newer business: %v", err)
	}
	_, err = c.Business(ctx, shop.srv.URL+"/future/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if !errors.As(err, &de) || de.Code != discovery.CodeVersionUnsupported {
		t.Errorf("future business: %v", err)
	}
	if len(bytes.TrimSpace(b.Profile().Raw)) == 0 || b.ProfileURL() != shop.srv.URL+"/newer/.well-known/ucp" { // the URL asked for; the leaf profile
		t.Errorf("profile not kept")
	}
}

// A business found by its profile URL alone, over its REST binding: search,
// create a checkout, fill it in, and complete it with a payment token.
func ExampleClient_Business() {
	shop := startIndieShop() // a UCP business on loopback
	defer shop.srv.Close()
	ctx := context.Background()

	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      "http://127.0.0.1:1", // the platform API (unused here)
		AgentProfile: "https://agent.example/.well-known/ucp",
	})
	if err != nil {
		panic(err)
	}
	b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{
		AllowInsecureLoopback: true,     // tests only: UCP requires https
		APIKey:                indieKey, // the key this business issued us
	})
	if err != nil {
		panic(err)
	}
	res, err := b.SearchCatalog(ctx, &ucp.SearchRequest{Query: "mug"})
	if err != nil {
		panic(err)
	}
	lines := []map[string]any{{"item": map[string]string{"id": res.Products[0].Variants[0].ID}, "quantity": 1}}
	raw, err := b.CreateCheckout(ctx, map[string]any{"line_items": lines})
	if err != nil {
		panic(err)
	}
	var co ucp.Checkout
	_ = json.Unmarshal(raw, &co)
	// Update is a full replace: resend the lines with the buyer.
	if _, err := b.UpdateCheckout(ctx, co.ID, map[string]any{"line_items": lines, "buyer": map[string]string{"email": "ada@example.com"}}); err != nil {
		panic(err)
	}
	raw, err = b.CompleteCheckout(ctx, co.ID, map[string]any{"payment": map[string]any{"instruments": []map[string]any{{
		"id": "pi_1", "handler_id": "indie_tok", "type": "card", "credential": map[string]string{"type": "token", "token": "tok_ok"}}}}})
	if err != nil {
		panic(err)
	}
	_ = json.Unmarshal(raw, &co)
	total := ucpclient.GrandTotal(raw)
	fmt.Println(co.Status, co.Order.ID, total)
	// Output: completed ord_1 1250
}

// TestIndependentBusinessResponseSignatures: a business outside the
// platform is held to the keys its own profile publishes: this one signs
// nothing and publishes no key, so IfKeys lets its answers through and
// Required refuses them (never a silent pass).
func TestIndependentBusinessResponseSignatures(t *testing.T) {
	shop := newIndieShop(t)
	ctx := context.Background()
	for _, tc := range []struct {
		mode    ucpclient.ResponseVerification
		refused bool
	}{{ucpclient.VerifyResponsesIfKeys, false}, {ucpclient.VerifyResponsesRequired, true}} {
		c, err := ucpclient.New(ucpclient.Config{BaseURL: "http://127.0.0.1:1", AgentProfile: indieAgent, VerifyResponses: tc.mode,
			Retry: ucpclient.RetryConfig{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Business(ctx, shop.srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true, APIKey: indieKey})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.SearchCatalog(ctx, &ucp.SearchRequest{Query: "mug"})
		var rse *ucpclient.ResponseSignatureError
		if refused := errors.As(err, &rse); refused != tc.refused {
			t.Fatalf("mode %v: %v", tc.mode, err)
		}
	}
}
