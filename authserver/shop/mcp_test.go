package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The tests below drive /s/{slug}/mcp and /mcp the way the Artos SDK does
// (artos.md §0.3 items 2-3, §4.1-4.2): a bare JSON-RPC tools/call POST, no
// initialize, no session id, Accept: application/json only, the UCP
// metadata inside arguments.meta. The go-sdk test checks a spec-following
// MCP client too.

// rpcResponse is a JSON-RPC response as the wire carries it. The result's
// structuredContent stays raw so tests can compare bytes.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
		Tools             []rpcTool       `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Code    string `json:"code"`
			Content string `json:"content"`
		} `json:"data"`
	} `json:"error"`
}

type rpcTool struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	InputSchema *struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	} `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema"`
	Annotations  *struct {
		Title           string `json:"title"`
		ReadOnlyHint    *bool  `json:"readOnlyHint"`
		DestructiveHint *bool  `json:"destructiveHint"`
		IdempotentHint  *bool  `json:"idempotentHint"`
		OpenWorldHint   *bool  `json:"openWorldHint"`
	} `json:"annotations"`
}

// rpcPost posts one raw JSON-RPC body to path with the Artos SDK headers
// (artos.md §0.3 item 3). hdr pairs override them; an empty value removes
// the header.
func (e *env) rpcPost(path string, body []byte, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.req(http.MethodPost, path, body, append([]string{
		"Accept", "application/json",
		"UCP-Agent", `ucp-version="2026-08-25", profile="` + e.agent.URL() + `"`,
		"Idempotency-Key", "", // MCP carries the key in meta, never in a header
	}, hdr...)...)
}

// mcpRequest is a tools/call request body.
func mcpRequest(t *testing.T, tool string, args any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": uuid(), "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mcpMeta is the UCP meta argument for the env's platform; key, when set, is
// the idempotency key.
func (e *env) mcpMeta(key string) map[string]any {
	m := map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL()}}
	if key != "" {
		m["idempotency-key"] = key
	}
	return m
}

// mcpArgs builds tool arguments: meta (with a fresh idempotency key) plus
// the key/value pairs kv.
func (e *env) mcpArgs(kv ...any) map[string]any {
	a := map[string]any{"meta": e.mcpMeta(uuid())}
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i].(string)] = kv[i+1]
	}
	return a
}

// mcpFor is e reporting to t (a subtest must not FailNow its parent).
func (e *env) mcpFor(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// mcpCallRaw calls tool on path and decodes the JSON-RPC response
// whatever the HTTP status.
func (e *env) mcpCallRaw(path, tool string, args any, hdr ...string) (*http.Response, *rpcResponse, []byte) {
	e.t.Helper()
	res, b := e.rpcPost(path, mcpRequest(e.t, tool, args), hdr...)
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s: HTTP %d, not a JSON-RPC response: %v\n%s", tool, res.StatusCode, err, b)
	}
	return res, &out, b
}

// mcpCall calls tool on the store slug and returns structuredContent,
// failing on anything but an HTTP 200 JSON-RPC result.
func (e *env) mcpCall(slug, tool string, args any, hdr ...string) []byte {
	e.t.Helper()
	res, out, b := e.mcpCallRaw("/s/"+slug+"/mcp", tool, args, hdr...)
	return mustResult(e.t, tool, res, out, b)
}

func mustResult(t *testing.T, tool string, res *http.Response, out *rpcResponse, b []byte) []byte {
	t.Helper()
	if res.StatusCode != http.StatusOK || out.Error != nil || out.Result == nil {
		t.Fatalf("%s: HTTP %d, want a JSON-RPC result: %s", tool, res.StatusCode, b)
	}
	if out.JSONRPC != "2.0" {
		t.Fatalf("%s: jsonrpc %q", tool, out.JSONRPC)
	}
	if len(out.Result.StructuredContent) == 0 || out.Result.StructuredContent[0] != '{' {
		t.Fatalf("%s: structuredContent is not an object: %s", tool, b)
	}
	wantOutputSchema(t, tool, out.Result.StructuredContent)
	return out.Result.StructuredContent
}

// outputSchemas caches the compiled outputSchema of each UCP tool.
var outputSchemas sync.Map // tool name -> *jsonschema.Schema

// wantOutputSchema holds a tool's result to the outputSchema the tool
// publishes (MCP: structuredContent MUST conform to it), so every MCP
// result the tests see checks the schema is honest.
func wantOutputSchema(t *testing.T, tool string, sc []byte) {
	t.Helper()
	raw := shop.MCPOutputSchema(tool)
	if raw == nil {
		return // not one of the UCP tools: no schema of its own
	}
	v, ok := outputSchemas.Load(tool)
	if !ok {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("urn:test:"+tool, doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile("urn:test:" + tool)
		if err != nil {
			t.Fatalf("%s outputSchema: %v", tool, err)
		}
		v, _ = outputSchemas.LoadOrStore(tool, sch)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.(*jsonschema.Schema).Validate(inst); err != nil {
		t.Fatalf("%s: structuredContent does not conform to the outputSchema: %#v\n%s", tool, err, sc)
	}
}

// wantRPCError asserts a JSON-RPC error with the UCP codes and HTTP status.
func wantRPCError(t *testing.T, res *http.Response, out *rpcResponse, b []byte, status, rpcCode int, code string) {
	t.Helper()
	if out.Result != nil || out.Error == nil {
		t.Fatalf("want JSON-RPC error %d %s, got HTTP %d %s", rpcCode, code, res.StatusCode, b)
	}
	if out.Error.Code != rpcCode {
		t.Fatalf("error.code %d, want %d: %s", out.Error.Code, rpcCode, b)
	}
	if code != "" && out.Error.Data.Code != code {
		t.Fatalf("error.data.code %q, want %q: %s", out.Error.Data.Code, code, b)
	}
	if out.Error.Message == "" {
		t.Fatalf("error.message is empty: %s", b)
	}
	if status != 0 && res.StatusCode != status {
		t.Fatalf("HTTP %d, want %d: %s", res.StatusCode, status, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
}

func mcpMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMCPArtosStatelessCall posts create_checkout exactly as the Artos SDK
// does and checks the result carries the checkout both as structured
// content and as its exact text serialisation.
func TestMCPArtosStatelessCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := uuid()
	body := mcpMarshal(t, map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{
		"name": "create_checkout", "arguments": map[string]any{
			"meta":     map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL()}, "idempotency-key": uuid()},
			"checkout": lines(line("bouquet_roses", 2), line("tulip_bunch", 1)),
		}}})
	res, b := e.rpcPost("/s/flower-shop/mcp", body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", res.StatusCode, b)
	}
	if sid := res.Header.Get("Mcp-Session-Id"); sid != "" {
		t.Fatalf("stateless endpoint issued a session id %q", sid)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q: an Accept: application/json client cannot read it: %s", ct, b)
	}
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if string(out.ID) != `"`+id+`"` {
		t.Fatalf("id %s, want %q", out.ID, id)
	}
	sc := mustResult(t, "create_checkout", res, &out, b)
	if out.Result.IsError {
		t.Fatalf("isError on success: %s", b)
	}
	if len(out.Result.Content) != 1 || out.Result.Content[0].Type != "text" {
		t.Fatalf("content %+v", out.Result.Content)
	}
	if out.Result.Content[0].Text != string(sc) {
		t.Fatalf("content[0].text differs from structuredContent:\ntext: %s\nsc:   %s", out.Result.Content[0].Text, sc)
	}
	c := decode[ucp.Checkout](t, sc)
	if c.ID == "" || c.Status != ucp.CheckoutReadyForComplete || c.Currency != "EUR" || len(c.LineItems) != 2 {
		t.Fatalf("checkout %s", sc)
	}
	if c.UCP == nil || c.UCP.Version != ucp.Version || c.UCP.Status != ucp.StatusSuccess {
		t.Fatalf("envelope %s", sc)
	}
	if c.AP2 == nil || c.AP2.MerchantAuthorization == "" {
		t.Fatalf("no merchant_authorization: %s", sc)
	}
	checkTotals(t, c.Totals)
	// The session is real: REST reads it back for the same platform.
	r2, b2 := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	wantStatus(t, r2, b2, http.StatusOK)
	if got := decode[ucp.Checkout](t, b2); got.ID != c.ID || got.Status != c.Status {
		t.Fatalf("REST read back %s", b2)
	}
}

// mcpCompleteFlowerOrder creates and completes a flower-shop checkout over
// REST and returns the completed checkout.
func (e *env) mcpCompleteFlowerOrder() *ucp.Checkout {
	e.t.Helper()
	c := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess))
	wantStatus(e.t, res, b, http.StatusOK)
	done := decode[ucp.Checkout](e.t, b)
	if done.Status != ucp.CheckoutCompleted || done.Order == nil || done.Order.ID == "" {
		e.t.Fatalf("not completed: %s", b)
	}
	return done
}

// TestMCPByteIdentityWithREST checks that structuredContent is the REST
// body byte for byte for every read (checkouts included: their
// merchant_authorization is a deterministic RFC 6979 signature).
func TestMCPByteIdentityWithREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", 2)},
		"fulfillment": frShipping, "discounts": map[string]any{"codes": []string{"SPRING15"}}})
	res, b := e.req("POST", "/s/flower-shop/carts", lines(line("tulip_bunch", 3)))
	wantStatus(t, res, b, http.StatusCreated)
	cart := decode[ucp.Cart](t, b)
	completed := e.mcpCompleteFlowerOrder()

	search := map[string]any{"query": "bouquet", "pagination": map[string]any{"limit": 2}}
	lookup := map[string]any{"ids": []string{"bouquet_roses", "orchid_pot", "nope"}}
	product := map[string]any{"id": "tulip_bunch"}
	cases := []struct {
		tool, method, path string
		restBody           any
		args               map[string]any
	}{
		{"get_checkout", "GET", "/s/flower-shop/checkout-sessions/" + c.ID, nil, e.mcpArgs("id", c.ID)},
		{"get_checkout (completed)", "GET", "/s/flower-shop/checkout-sessions/" + completed.ID, nil, e.mcpArgs("id", completed.ID)},
		{"get_cart", "GET", "/s/flower-shop/carts/" + cart.ID, nil, e.mcpArgs("id", cart.ID)},
		{"get_order", "GET", "/s/flower-shop/orders/" + completed.Order.ID, nil, e.mcpArgs("id", completed.Order.ID)},
		{"search_catalog", "POST", "/s/flower-shop/catalog/search", search, e.mcpArgs("catalog", search)},
		{"lookup_catalog", "POST", "/s/flower-shop/catalog/lookup", lookup, e.mcpArgs("catalog", lookup)},
		{"get_product", "POST", "/s/flower-shop/catalog/product", product, e.mcpArgs("catalog", product)},
		{"get_order (not found)", "GET", "/s/flower-shop/orders/ord_missing", nil, e.mcpArgs("id", "ord_missing")},
	}
	for _, tc := range cases {
		t.Run(tc.tool, func(t *testing.T) {
			e := e.mcpFor(t)
			res, rest := e.req(tc.method, tc.path, tc.restBody)
			wantStatus(t, res, rest, http.StatusOK)
			tool, _, _ := strings.Cut(tc.tool, " ")
			sc := e.mcpCall("flower-shop", tool, tc.args)
			if !bytes.Equal(sc, rest) {
				t.Fatalf("MCP structuredContent differs from the REST body:\nREST: %s\nMCP:  %s", rest, sc)
			}
		})
	}
	// The checkout is signed and the signature is stable: two MCP reads
	// agree with each other too (a randomised ECDSA would not).
	a := e.mcpCall("flower-shop", "get_checkout", e.mcpArgs("id", c.ID))
	b2 := e.mcpCall("flower-shop", "get_checkout", e.mcpArgs("id", c.ID))
	if !bytes.Equal(a, b2) || decode[ucp.Checkout](t, a).AP2 == nil {
		t.Fatalf("two reads differ or are unsigned:\n%s\n%s", a, b2)
	}
}

// TestMCPEveryStoreTool runs every per-store tool over MCP.
func TestMCPEveryStoreTool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const slug = "flower-shop"

	// Catalog.
	sr := decode[ucp.SearchResponse](t, e.mcpCall(slug, "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "tulips"})))
	if len(sr.Products) != 1 || sr.Products[0].ID != "tulip_bunch" || sr.UCP == nil || sr.UCP.Version == "" {
		t.Fatalf("search_catalog %+v", sr)
	}
	lr := decode[ucp.LookupResponse](t, e.mcpCall(slug, "lookup_catalog", e.mcpArgs("catalog", map[string]any{"ids": []string{"orchid_pot", "sunflowers"}})))
	if len(lr.Products) != 2 {
		t.Fatalf("lookup_catalog %+v", lr)
	}
	pr := decode[ucp.ProductResponse](t, e.mcpCall(slug, "get_product", e.mcpArgs("catalog", map[string]any{"id": "orchid_pot"})))
	if pr.Product.ID != "orchid_pot" || len(pr.Product.Variants) != 1 || pr.Product.Variants[0].Price.Amount != 4500 {
		t.Fatalf("get_product %+v", pr)
	}

	// Cart.
	cart := decode[ucp.Cart](t, e.mcpCall(slug, "create_cart", e.mcpArgs("cart", lines(line("tulip_bunch", 2)))))
	if cart.ID == "" || len(cart.LineItems) != 1 || cart.LineItems[0].Quantity != 2 {
		t.Fatalf("create_cart %+v", cart)
	}
	got := decode[ucp.Cart](t, e.mcpCall(slug, "get_cart", e.mcpArgs("id", cart.ID)))
	if got.ID != cart.ID || got.LineItems[0].Quantity != 2 {
		t.Fatalf("get_cart %+v", got)
	}
	upd := decode[ucp.Cart](t, e.mcpCall(slug, "update_cart", e.mcpArgs("id", cart.ID, "cart", lines(line("tulip_bunch", 1), line("sunflowers", 2)))))
	if upd.ID != cart.ID || len(upd.LineItems) != 2 {
		t.Fatalf("update_cart %+v", upd)
	}

	// Checkout from the cart, updated, completed, and its order.
	chk := decode[ucp.Checkout](t, e.mcpCall(slug, "create_checkout", e.mcpArgs("checkout", map[string]any{"cart_id": cart.ID})))
	if chk.ID == "" || len(chk.LineItems) != 2 || chk.AP2 == nil {
		t.Fatalf("create_checkout from cart %+v", chk)
	}
	got2 := decode[ucp.Checkout](t, e.mcpCall(slug, "get_checkout", e.mcpArgs("id", chk.ID)))
	if got2.ID != chk.ID || got2.Status != chk.Status {
		t.Fatalf("get_checkout %+v", got2)
	}
	u := decode[ucp.Checkout](t, e.mcpCall(slug, "update_checkout", e.mcpArgs("id", chk.ID, "checkout",
		map[string]any{"line_items": []any{line("tulip_bunch", 1), line("sunflowers", 2)}, "fulfillment": frShipping})))
	if u.Fulfillment == nil || u.Status != ucp.CheckoutReadyForComplete {
		t.Fatalf("update_checkout %+v", u)
	}
	completeArgs := e.mcpArgs("id", chk.ID, "checkout", cardPayment(shop.TokenSuccess))
	doneBody := e.mcpCall(slug, "complete_checkout", completeArgs)
	done := decode[ucp.Checkout](t, doneBody)
	if done.Status != ucp.CheckoutCompleted || done.Order == nil || done.Order.ID == "" || done.UCP.Status != ucp.StatusSuccess {
		t.Fatalf("complete_checkout %+v", done)
	}
	// A retry with the same idempotency key replays the outcome: same
	// bytes, same order, no second charge.
	if again := e.mcpCall(slug, "complete_checkout", completeArgs); !bytes.Equal(again, doneBody) {
		t.Fatalf("complete_checkout retry not replayed:\n%s\n%s", doneBody, again)
	}
	o := decode[ucp.Order](t, e.mcpCall(slug, "get_order", e.mcpArgs("id", done.Order.ID)))
	if o.ID != done.Order.ID || o.CheckoutID != chk.ID || len(o.LineItems) != 2 {
		t.Fatalf("get_order %+v", o)
	}

	// Cancel a checkout; it stays canceled.
	chk2 := decode[ucp.Checkout](t, e.mcpCall(slug, "create_checkout", e.mcpArgs("checkout", lines(line("bouquet_roses", 1)))))
	cc := decode[ucp.Checkout](t, e.mcpCall(slug, "cancel_checkout", e.mcpArgs("id", chk2.ID)))
	if cc.ID != chk2.ID || cc.Status != ucp.CheckoutCanceled {
		t.Fatalf("cancel_checkout %+v", cc)
	}
	if g := decode[ucp.Checkout](t, e.mcpCall(slug, "get_checkout", e.mcpArgs("id", chk2.ID))); g.Status != ucp.CheckoutCanceled {
		t.Fatalf("after cancel %+v", g)
	}

	// Cancel the cart; it is gone.
	e.mcpCall(slug, "cancel_cart", e.mcpArgs("id", cart.ID))
	gone := decode[ucp.ErrorResponse](t, e.mcpCall(slug, "get_cart", e.mcpArgs("id", cart.ID)))
	if gone.UCP.Status != ucp.StatusError || !slices.Contains(messageCodes(gone.Messages), "not_found") {
		t.Fatalf("get_cart after cancel %+v", gone)
	}
}

// TestMCPProtocolErrors checks protocol errors come back as JSON-RPC
// errors with the UCP code (error.code), the flat UCP code in
// error.data.code, and the HTTP status as the primary signal (ucp.md §7).
func TestMCPProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const path = "/s/flower-shop/mcp"
	chk := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "create_checkout", e.mcpArgs("checkout", lines(line("bouquet_roses", 1)))))

	// A call naming no profile is the binding's discovery error, in an
	// HTTP 200 response: clients that take any other status for a
	// transport failure (the Artos SDK, the TypeScript SDK) would
	// otherwise never show it.
	t.Run("missing meta", func(t *testing.T) {
		e := e.mcpFor(t)
		res, out, b := e.mcpCallRaw(path, "get_checkout", map[string]any{"id": chk.ID})
		wantRPCError(t, res, out, b, http.StatusOK, -32001, "invalid_profile_url")
	})
	t.Run("missing profile", func(t *testing.T) {
		e := e.mcpFor(t)
		for _, meta := range []any{map[string]any{"idempotency-key": uuid()}, map[string]any{"ucp-agent": map[string]any{}},
			map[string]any{"ucp-agent": map[string]any{"profile": ""}}, map[string]any{"ucp-agent": map[string]any{"profile": 7}},
			map[string]any{"ucp-agent": "https://p.example/"}, "meta", nil} {
			res, out, b := e.mcpCallRaw(path, "get_checkout", map[string]any{"id": chk.ID, "meta": meta})
			wantRPCError(t, res, out, b, http.StatusOK, -32001, "invalid_profile_url")
			if !strings.Contains(out.Error.Data.Content, `meta["ucp-agent"]`) {
				t.Fatalf("meta %v: the message does not say what to send: %s", meta, b)
			}
		}
	})
	t.Run("profile not https", func(t *testing.T) {
		e := e.mcpFor(t)
		res, out, b := e.mcpCallRaw(path, "get_checkout", map[string]any{"id": chk.ID,
			"meta": map[string]any{"ucp-agent": map[string]any{"profile": "ftp://p.example/profile"}}})
		wantRPCError(t, res, out, b, http.StatusOK, -32001, "invalid_profile_url")
	})
	t.Run("arguments not an object", func(t *testing.T) {
		e := e.mcpFor(t)
		for _, args := range []any{"get it", []any{chk.ID}, 42} {
			res, out, b := e.mcpCallRaw(path, "get_checkout", args)
			wantRPCError(t, res, out, b, 0, -32602, "")
			if res.StatusCode == http.StatusOK {
				t.Fatalf("HTTP 200 for a protocol error: %s", b)
			}
		}
	})
	t.Run("complete without idempotency key", func(t *testing.T) {
		e := e.mcpFor(t)
		res, out, b := e.mcpCallRaw(path, "complete_checkout", map[string]any{"id": chk.ID,
			"meta": e.mcpMeta(""), "checkout": cardPayment(shop.TokenSuccess)})
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "idempotency_key_required")
		// Nothing happened.
		if g := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "get_checkout", e.mcpArgs("id", chk.ID))); g.Status != ucp.CheckoutReadyForComplete {
			t.Fatalf("checkout changed: %+v", g)
		}
	})
	t.Run("idempotency conflict", func(t *testing.T) {
		e := e.mcpFor(t)
		key := uuid()
		first := e.mcpCall("flower-shop", "create_checkout", map[string]any{"meta": e.mcpMeta(key), "checkout": lines(line("tulip_bunch", 1))})
		// A retry with the same body replays the first outcome.
		again := e.mcpCall("flower-shop", "create_checkout", map[string]any{"meta": e.mcpMeta(key), "checkout": lines(line("tulip_bunch", 1))})
		if !bytes.Equal(first, again) {
			t.Fatalf("retry not replayed:\n%s\n%s", first, again)
		}
		res, out, b := e.mcpCallRaw(path, "create_checkout", map[string]any{"meta": e.mcpMeta(key), "checkout": lines(line("tulip_bunch", 2))})
		wantRPCError(t, res, out, b, http.StatusConflict, -32000, "idempotency_conflict")
	})
	t.Run("unknown store", func(t *testing.T) {
		e := e.mcpFor(t)
		res, out, b := e.mcpCallRaw("/s/no-such-store/mcp", "get_checkout", e.mcpArgs("id", chk.ID))
		wantRPCError(t, res, out, b, http.StatusNotFound, -32600, "store_not_found")
	})
	t.Run("profile unreachable", func(t *testing.T) {
		e := e.mcpFor(t)
		args := e.mcpArgs("checkout", lines(line("bouquet_roses", 1)))
		args["meta"] = map[string]any{"ucp-agent": map[string]any{"profile": "http://127.0.0.1:1/x"}, "idempotency-key": uuid()}
		res, out, b := e.mcpCallRaw(path, "create_checkout", args)
		wantRPCError(t, res, out, b, http.StatusFailedDependency, -32001, "profile_unreachable")
	})
	t.Run("bad credentials", func(t *testing.T) {
		e := e.mcpFor(t)
		res, b := e.rpcPost(path, mcpRequest(t, "get_checkout", e.mcpArgs("id", chk.ID)), "X-Test-Client", "bad")
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("HTTP %d, want 401: %s", res.StatusCode, b)
		}
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("no WWW-Authenticate: %v", res.Header)
		}
	})
}

// TestMCPBadCredentialsJSONRPCBody checks the 401 of the MCP endpoint
// carries a JSON-RPC error (-32000) for the request's id, so a JSON-RPC
// client can read it and keep its session.
func TestMCPBadCredentialsJSONRPCBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := uuid()
	body := mcpMarshal(t, map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": "get_checkout", "arguments": e.mcpArgs("id", "chk_x")}})
	res, b := e.rpcPost("/s/flower-shop/mcp", body, "X-Test-Client", "bad")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("HTTP %d WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Error == nil {
		t.Fatalf("an MCP authentication failure must be a JSON-RPC error: %s", b)
	}
	wantRPCError(t, res, &out, b, http.StatusUnauthorized, -32000, "invalid_token")
	if string(out.ID) != `"`+id+`"` {
		t.Fatalf("error id %s, want %q (a null id breaks clients that match responses to requests)", out.ID, id)
	}

	// The go-sdk client survives a 401 on one call.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &mcpHeaderTransport{base: e.srv.Client().Transport, hdr: http.Header{"X-Test-Client": {"platform-a"}}}
	hc := &http.Client{Transport: tr}
	client := mcp.NewClient(&mcp.Implementation{Name: "ucpbridge-test", Version: "0.0.1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.srv.URL + "/s/flower-shop/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	product := e.mcpArgs("catalog", map[string]any{"id": "tulip_bunch"})
	tr.setClient("bad")
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_product", Arguments: product}); err == nil {
		t.Fatal("bad credentials accepted")
	}
	tr.setClient("platform-a")
	sdkCall(ctx, t, cs, "get_product", product)
}

// TestMCPBusinessErrorIsResult checks business outcomes are tool results
// with ucp.status "error", not JSON-RPC errors.
func TestMCPBusinessErrorIsResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", lines(line("no_such_item", 1))))
	sc := mustResult(t, "create_checkout", res, out, b)
	unavailable := decode[ucp.ErrorResponse](t, sc)
	if unavailable.UCP.Status != ucp.StatusError || len(unavailable.Messages) == 0 || unavailable.Messages[0].Code != "item_unavailable" {
		t.Fatalf("want ucp.status error with item_unavailable: %s", sc)
	}
	if out.Result.Content[0].Text != string(sc) {
		t.Fatalf("text %q differs from structuredContent %s", out.Result.Content[0].Text, sc)
	}

	// A declined card is a business outcome too: the checkout comes back
	// (ucp.status success: it is the payload) with payment_failed, its
	// status unchanged.
	c := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "create_checkout", e.mcpArgs("checkout", lines(line("bouquet_roses", 1)))))
	sc = e.mcpCall("flower-shop", "complete_checkout", e.mcpArgs("id", c.ID, "checkout", cardPayment(shop.TokenFail)))
	declined := decode[ucp.Checkout](t, sc)
	if declined.ID != c.ID || declined.UCP == nil || declined.UCP.Status != ucp.StatusSuccess || declined.Status != c.Status ||
		declined.Payment != nil || !slices.Contains(messageCodes(declined.Messages), "payment_failed") {
		t.Fatalf("declined card: %s", sc)
	}

	// Changing a completed checkout is HTTP 409 on REST but a result on
	// MCP (a business outcome, not a protocol error).
	e.mcpCall("flower-shop", "complete_checkout", e.mcpArgs("id", c.ID, "checkout", cardPayment(shop.TokenSuccess)))
	res, out, b = e.mcpCallRaw("/s/flower-shop/mcp", "cancel_checkout", e.mcpArgs("id", c.ID))
	sc = mustResult(t, "cancel_checkout", res, out, b)
	if er := decode[ucp.ErrorResponse](t, sc); er.UCP.Status != ucp.StatusError || !slices.Contains(messageCodes(er.Messages), "checkout_completed") {
		t.Fatalf("cancel of a completed checkout: %s", sc)
	}
	rr, rb := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/cancel", nil)
	wantStatus(t, rr, rb, http.StatusConflict)
}

var mcpStoreTools = []string{"search_catalog", "lookup_catalog", "get_product", "create_cart", "get_cart", "update_cart",
	"cancel_cart", "create_checkout", "get_checkout", "update_checkout", "complete_checkout", "cancel_checkout", "get_order", "prepare_checkout_payment",
	"search_locations", "lookup_locations"}

func (e *env) listTools(path string) []rpcTool {
	e.t.Helper()
	res, b := e.rpcPost(path, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("tools/list: HTTP %d: %s", res.StatusCode, b)
	}
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Result == nil {
		e.t.Fatalf("tools/list: %v: %s", err, b)
	}
	return out.Result.Tools
}

// mcpToolSpec is what a UCP tool must publish: its required arguments,
// whether meta requires an idempotency key, its honest hints
// (readOnly, destructive, idempotent, openWorld) and what its result is.
type mcpToolSpec struct {
	required []string
	keyed    bool
	hints    [4]bool
	result   string // the resource's required member the outputSchema names
}

var mcpToolSpecs = map[string]mcpToolSpec{
	"search_catalog":           {[]string{"meta", "catalog"}, false, [4]bool{true, false, true, false}, "products"},
	"lookup_catalog":           {[]string{"meta", "catalog"}, false, [4]bool{true, false, true, false}, "products"},
	"get_product":              {[]string{"meta", "catalog"}, false, [4]bool{true, false, true, false}, "product"},
	"create_cart":              {[]string{"meta", "cart"}, false, [4]bool{false, false, false, false}, "totals"},
	"get_cart":                 {[]string{"meta", "id"}, false, [4]bool{true, false, true, false}, "totals"},
	"update_cart":              {[]string{"meta", "id", "cart"}, false, [4]bool{false, true, true, false}, "totals"},
	"cancel_cart":              {[]string{"meta", "id"}, true, [4]bool{false, true, true, false}, "totals"},
	"create_checkout":          {[]string{"meta", "checkout"}, false, [4]bool{false, false, false, false}, "links"},
	"get_checkout":             {[]string{"meta", "id"}, false, [4]bool{true, false, true, false}, "links"},
	"update_checkout":          {[]string{"meta", "id", "checkout"}, false, [4]bool{false, true, true, false}, "links"},
	"complete_checkout":        {[]string{"meta", "id", "checkout"}, true, [4]bool{false, true, true, true}, "links"},
	"cancel_checkout":          {[]string{"meta", "id"}, true, [4]bool{false, true, true, false}, "links"},
	"get_order":                {[]string{"meta", "id"}, false, [4]bool{true, false, true, false}, "checkout_id"},
	"prepare_checkout_payment": {[]string{"meta", "id"}, true, [4]bool{false, true, true, true}, "payment_intent"},
}

// schemaNode is a JSON Schema as the tests read it.
type schemaNode struct {
	Schema      string                 `json:"$schema"`
	Type        any                    `json:"type"`
	Description string                 `json:"description"`
	Required    []string               `json:"required"`
	Properties  map[string]*schemaNode `json:"properties"`
	Items       *schemaNode            `json:"items"`
	Enum        []string               `json:"enum"`
	AnyOf       []*schemaNode          `json:"anyOf"`
	MinLength   *int                   `json:"minLength"`
	MaxLength   *int                   `json:"maxLength"`
	MaxItems    *int                   `json:"maxItems"`
	Minimum     *int                   `json:"minimum"`
	Maximum     *int                   `json:"maximum"`
	Pattern     string                 `json:"pattern"`
}

// at follows properties (and items, for "[]") down a path.
func (n *schemaNode) at(t *testing.T, path ...string) *schemaNode {
	t.Helper()
	cur := n
	for _, p := range path {
		if p == "[]" {
			cur = cur.Items
		} else if cur != nil {
			cur = cur.Properties[p]
		}
		if cur == nil {
			t.Fatalf("no %v in the schema", path)
		}
	}
	return cur
}

func (e *env) listToolSchemas(path string) map[string]rpcTool {
	e.t.Helper()
	out := map[string]rpcTool{}
	for _, tl := range e.listTools(path) {
		out[tl.Name] = tl
	}
	return out
}

func decodeSchema(t *testing.T, raw json.RawMessage) *schemaNode {
	t.Helper()
	var n schemaNode
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return &n
}

// TestMCPToolsList checks the tool definitions every store publishes:
// each UCP tool's inputSchema is the request shape of the 2026-04-08
// schemas (required arguments, meta with ucp-agent.profile and, where
// required, idempotency-key; types, enums and the stores' bounds), a
// self-contained 2020-12 schema; its outputSchema is the UCP result (the
// resource, or the error envelope); its description and hints are
// there and honest. /mcp serves the catalog tools only, described for
// the whole platform.
func TestMCPToolsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rawTools := map[string]json.RawMessage{}
	{
		res, b := e.rpcPost("/s/flower-shop/mcp", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		wantStatus(t, res, b, http.StatusOK)
		var out struct {
			Result struct {
				Tools []struct {
					Name         string          `json:"name"`
					InputSchema  json.RawMessage `json:"inputSchema"`
					OutputSchema json.RawMessage `json:"outputSchema"`
				} `json:"tools"`
			} `json:"result"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		for _, tl := range out.Result.Tools {
			rawTools[tl.Name+".input"], rawTools[tl.Name+".output"] = tl.InputSchema, tl.OutputSchema
		}
	}
	byName := e.listToolSchemas("/s/flower-shop/mcp")
	for name, tl := range byName {
		// Every tool, UCP's or not: described, an object schema
		// requiring meta, hints set.
		if tl.Description == "" || tl.InputSchema == nil || tl.InputSchema.Type != "object" || !slices.Contains(tl.InputSchema.Required, "meta") ||
			tl.Annotations == nil || tl.Annotations.ReadOnlyHint == nil || tl.Annotations.OpenWorldHint == nil || len(tl.OutputSchema) == 0 {
			t.Errorf("%s: %+v", name, tl)
		}
	}
	for name, spec := range mcpToolSpecs {
		tl, ok := byName[name]
		if !ok {
			t.Errorf("tool %s not listed", name)
			continue
		}
		in, out := decodeSchema(t, rawTools[name+".input"]), decodeSchema(t, rawTools[name+".output"])
		for which, raw := range map[string]json.RawMessage{"input": rawTools[name+".input"], "output": rawTools[name+".output"]} {
			if bytes.Contains(raw, []byte(`"$ref"`)) {
				t.Errorf("%s %s schema refers elsewhere: clients must be able to read it whole", name, which)
			}
			c := jsonschema.NewCompiler()
			doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err := c.AddResource("urn:x", doc); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Compile("urn:x"); err != nil {
				t.Errorf("%s %s schema is not a 2020-12 schema: %v", name, which, err)
			}
		}
		if in.Schema != "https://json-schema.org/draft/2020-12/schema" || !slices.Equal(in.Required, spec.required) {
			t.Errorf("%s: $schema %q required %v, want %v", name, in.Schema, in.Required, spec.required)
		}
		meta := in.at(t, "meta")
		wantMeta := []string{"ucp-agent"}
		if spec.keyed {
			wantMeta = append(wantMeta, "idempotency-key")
		}
		if !slices.Equal(meta.Required, wantMeta) || !slices.Equal(meta.at(t, "ucp-agent").Required, []string{"profile"}) ||
			meta.at(t, "ucp-agent", "profile").Type != "string" || meta.at(t, "ucp-agent", "profile").Description == "" {
			t.Errorf("%s: meta %+v", name, meta)
		}
		if k := meta.at(t, "idempotency-key"); k.Type != "string" || *k.MinLength != 16 || *k.MaxLength != 255 || k.Pattern == "" || k.Description == "" {
			t.Errorf("%s: idempotency-key %+v", name, k)
		}
		if slices.Contains(spec.required, "id") && (in.at(t, "id").Type != "string" || in.at(t, "id").Description == "") {
			t.Errorf("%s: id %+v", name, in.at(t, "id"))
		}
		// The result: the resource or the error envelope.
		if out.Type != "object" || len(out.AnyOf) < 2 {
			t.Errorf("%s: outputSchema %s", name, rawTools[name+".output"])
		} else {
			last := out.AnyOf[len(out.AnyOf)-1]
			if !slices.Equal(last.Required, []string{"ucp", "messages"}) || !slices.Contains(out.AnyOf[0].Required, spec.result) {
				t.Errorf("%s: outputSchema alternatives %s", name, rawTools[name+".output"])
			}
		}
		a := tl.Annotations
		if got := [4]bool{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}; got != spec.hints {
			t.Errorf("%s: hints (readOnly, destructive, idempotent, openWorld) %v, want %v", name, got, spec.hints)
		}
		if a.Title == "" || len(tl.Description) < 120 {
			t.Errorf("%s: title %q, description %q", name, a.Title, tl.Description)
		}
		if spec.keyed != strings.Contains(tl.Description, `Requires meta["idempotency-key"]`) {
			t.Errorf("%s: the description does not say whether meta[\"idempotency-key\"] is required", name)
		}
	}

	// Types, enums, bounds and descriptions from the spec's schemas.
	in := func(tool string) *schemaNode { return decodeSchema(t, rawTools[tool+".input"]) }
	out := func(tool string) *schemaNode { return decodeSchema(t, rawTools[tool+".output"]) }
	create := in("create_checkout").at(t, "checkout")
	line := create.at(t, "line_items", "[]")
	if !slices.Equal(line.Required, []string{"item", "quantity"}) || !slices.Equal(line.at(t, "item").Required, []string{"id"}) ||
		line.at(t, "quantity").Type != "integer" || *line.at(t, "quantity").Minimum != 1 || *line.at(t, "quantity").Maximum != 10000 ||
		*create.at(t, "line_items").MaxItems != 100 || !strings.Contains(line.at(t, "item", "id").Description, "variant") {
		t.Errorf("create_checkout line_items: %+v", create.at(t, "line_items"))
	}
	if len(create.AnyOf) != 2 || !slices.Equal(create.AnyOf[1].Required, []string{"cart_id"}) {
		t.Errorf("create_checkout: line_items or cart_id: %+v", create.AnyOf)
	}
	method := create.at(t, "fulfillment", "methods", "[]")
	if !slices.Equal(method.at(t, "type").Enum, []string{"shipping", "pickup"}) || *method.at(t, "destinations").MaxItems != 10 {
		t.Errorf("fulfillment method %+v", method)
	}
	for _, m := range []string{"shipping_address", "buyer", "context", "signals", "attribution", "discounts", "payment", "cart_id"} {
		if create.at(t, m).Description == "" {
			t.Errorf("create_checkout %s: no description", m)
		}
	}
	if el := create.at(t, "context", "eligibility"); *el.MaxItems != 16 || el.Items.Pattern == "" {
		t.Errorf("context.eligibility %+v", el)
	}
	if country := create.at(t, "shipping_address", "country"); country.Type != "string" {
		t.Errorf("shipping_address.country (the Artos SDK's) %+v", country)
	}
	if upd := in("update_checkout").at(t, "checkout"); len(upd.Required) != 0 || upd.at(t, "line_items", "[]", "id").Type != "string" {
		t.Errorf("update_checkout takes partial updates and line ids: %+v", upd)
	}
	complete := in("complete_checkout").at(t, "checkout")
	inst := complete.at(t, "payment", "instruments", "[]")
	if !slices.Equal(inst.Required, []string{"handler_id"}) || inst.at(t, "credential", "token").Type != "string" ||
		complete.at(t, "ap2", "checkout_mandate").Type != "string" || complete.Properties["line_items"] != nil {
		t.Errorf("complete_checkout: %+v", complete)
	}
	if pi := in("prepare_checkout_payment").at(t, "payment_intent"); pi.at(t, "input_coin_type").Type != "string" {
		t.Errorf("prepare_checkout_payment: %+v", pi)
	}
	search := in("search_catalog").at(t, "catalog")
	if !slices.Equal(search.at(t, "sort").Enum, []string{"relevance", "price_asc", "price_desc"}) || *search.at(t, "query").MaxLength != 500 ||
		search.at(t, "filters", "price", "min").Type != "integer" || *search.at(t, "pagination", "limit").Minimum != 1 {
		t.Errorf("search_catalog: %+v", search)
	}
	if lk := in("lookup_catalog").at(t, "catalog"); !slices.Equal(lk.Required, []string{"ids"}) || *lk.at(t, "ids").MaxItems != 100 {
		t.Errorf("lookup_catalog: %+v", lk)
	}
	if gp := in("get_product").at(t, "catalog"); !slices.Equal(gp.Required, []string{"id"}) || !slices.Equal(gp.at(t, "selected", "[]").Required, []string{"name", "label"}) {
		t.Errorf("get_product: %+v", gp)
	}
	if cart := in("create_cart").at(t, "cart"); !slices.Equal(cart.Required, []string{"line_items"}) || cart.Properties["payment"] != nil {
		t.Errorf("create_cart: %+v", cart)
	}
	chkOut := out("get_checkout").AnyOf[0]
	if !slices.Equal(chkOut.at(t, "status").Enum, []string{"incomplete", "requires_escalation", "ready_for_complete", "complete_in_progress", "completed", "canceled"}) ||
		!slices.Equal(chkOut.Required, []string{"ucp", "id", "line_items", "status", "currency", "totals", "links"}) ||
		!slices.Equal(chkOut.at(t, "messages", "[]", "severity").Enum, []string{"recoverable", "requires_buyer_input", "requires_buyer_review", "unrecoverable"}) {
		t.Errorf("checkout result: %+v", chkOut)
	}

	// The cross-store catalog: the catalog tools, with the same schemas,
	// described for every store.
	global := e.listToolSchemas("/mcp")
	if names := slices.Sorted(maps.Keys(global)); !slices.Equal(names, []string{"get_product", "lookup_catalog", "search_catalog"}) {
		t.Fatalf("global tools %v", names)
	}
	for name, tl := range global {
		if tl.Description == byName[name].Description || !strings.Contains(tl.Description, "every store") {
			t.Errorf("%s on /mcp: %q", name, tl.Description)
		}
		if !bytes.Equal(tl.OutputSchema, byName[name].OutputSchema) {
			t.Errorf("%s: the global output schema differs", name)
		}
	}
}

// TestMCPGlobalSearchCatalog checks the cross-store search names each
// variant's seller.
func TestMCPGlobalSearchCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, out, b := e.mcpCallRaw("/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"filters": browseAll, "pagination": map[string]any{"limit": 50}}))
	sr := decode[ucp.SearchResponse](t, mustResult(t, "search_catalog", res, out, b))
	sellers := map[string]bool{}
	for _, p := range sr.Products {
		if len(p.Variants) == 0 {
			t.Fatalf("product %s has no variants", p.ID)
		}
		// The store, first-class: its slug and URL, where checkout goes.
		if st := p.Store; st == nil || st.Slug == "" || st.URL != e.srv.URL+"/s/"+st.Slug || st.MCP != st.URL+"/mcp" {
			t.Fatalf("product %s: store %+v", p.ID, p.Store)
		}
		for _, v := range p.Variants {
			if v.Seller == nil || v.Seller.Name == "" || len(v.Seller.Links) == 0 || !strings.HasSuffix(v.Seller.Links[0].URL, "/.well-known/ucp") {
				t.Fatalf("variant %s of %s: seller %+v", v.ID, p.ID, v.Seller)
			}
			sellers[v.Seller.Name] = true
		}
	}
	if len(sellers) < 3 {
		t.Fatalf("sellers %v: want products from every demo store", sellers)
	}
	// A per-store tool is not served globally.
	res, out, b = e.mcpCallRaw("/mcp", "create_checkout", e.mcpArgs("checkout", lines(line("bouquet_roses", 1))))
	if out.Error == nil || res.StatusCode == http.StatusOK && out.Result != nil && !out.Result.IsError {
		t.Fatalf("global create_checkout: HTTP %d %s", res.StatusCode, b)
	}
}

// mcpHeaderTransport adds headers to every request.
type mcpHeaderTransport struct {
	base http.RoundTripper

	mu  sync.Mutex
	hdr http.Header
}

func (h *mcpHeaderTransport) setClient(c string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hdr = http.Header{"X-Test-Client": {c}}
}

func (h *mcpHeaderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	h.mu.Lock()
	for k, v := range h.hdr {
		r.Header[k] = v
	}
	h.mu.Unlock()
	return h.base.RoundTrip(r)
}

// sdkSession connects the official MCP Go SDK client to a store, as
// platform-a.
func (e *env) sdkSession(ctx context.Context, slug string) *mcp.ClientSession {
	e.t.Helper()
	hc := &http.Client{Transport: &mcpHeaderTransport{base: e.srv.Client().Transport, hdr: http.Header{"X-Test-Client": {"platform-a"}}}}
	client := mcp.NewClient(&mcp.Implementation{Name: "ucpbridge-test", Version: "0.0.1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.srv.URL + "/s/" + slug + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		e.t.Fatalf("go-sdk connect: %v", err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

// sdkCall calls a tool through the go-sdk and returns its structured
// content, checking the text content carries the same JSON.
func sdkCall(ctx context.Context, t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: isError: %+v", name, res.Content)
	}
	sc, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("%s: structuredContent %T %v", name, res.StructuredContent, res.StructuredContent)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: content %v", name, res.Content)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s: content[0] %T", name, res.Content[0])
	}
	var fromText map[string]any
	if err := json.Unmarshal([]byte(tc.Text), &fromText); err != nil {
		t.Fatalf("%s: text content is not JSON: %v", name, err)
	}
	a, _ := json.Marshal(fromText)
	b, _ := json.Marshal(sc)
	if !bytes.Equal(a, b) {
		t.Fatalf("%s: text content differs from structuredContent:\n%s\n%s", name, a, b)
	}
	return sc
}

// TestMCPGoSDKClient places an order through the official MCP Go SDK
// client: initialize, then tools/call over streamable HTTP against the
// stateless endpoint.
func TestMCPGoSDKClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := e.sdkSession(ctx, "flower-shop")

	created := sdkCall(ctx, t, cs, "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping}))
	id, _ := created["id"].(string)
	if id == "" || created["status"] != ucp.CheckoutReadyForComplete {
		t.Fatalf("create_checkout %v", created)
	}
	done := sdkCall(ctx, t, cs, "complete_checkout", e.mcpArgs("id", id, "checkout", cardPayment(shop.TokenSuccess)))
	order, _ := done["order"].(map[string]any)
	orderID, _ := order["id"].(string)
	if done["status"] != ucp.CheckoutCompleted || orderID == "" {
		t.Fatalf("complete_checkout %v", done)
	}
	o := sdkCall(ctx, t, cs, "get_order", e.mcpArgs("id", orderID))
	if o["id"] != orderID || o["checkout_id"] != id {
		t.Fatalf("get_order %v", o)
	}

	// A call without meta (HTTP 200 carrying a JSON-RPC error) reaches
	// the SDK as the JSON-RPC error with the UCP codes ...
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_checkout", Arguments: map[string]any{"id": id}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) {
		t.Fatalf("missing meta: err %v, want a JSON-RPC error", err)
	}
	var data struct{ Code string }
	if rpcErr.Code != -32001 || json.Unmarshal(rpcErr.Data, &data) != nil || data.Code != "invalid_profile_url" {
		t.Fatalf("missing meta: code %d data %s", rpcErr.Code, rpcErr.Data)
	}
	// ... and so does an argument outside the schema (HTTP 400, as on
	// REST) ...
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_checkout", Arguments: e.mcpArgs("id", 42)})
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 || json.Unmarshal(rpcErr.Data, &data) != nil || data.Code != "invalid_request" ||
		!strings.Contains(rpcErr.Message, "id: got number, want string") {
		t.Fatalf("id a number: %v", err)
	}
	// ... and neither breaks the session.
	if g := sdkCall(ctx, t, cs, "get_checkout", e.mcpArgs("id", id)); g["status"] != ucp.CheckoutCompleted {
		t.Fatalf("get_checkout after an error %v", g)
	}
}

// TestMCPGoSDKListTools lists the tools through the go-sdk client.
func TestMCPGoSDKListTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := e.sdkSession(ctx, "flower-shop")
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
		if tl.OutputSchema == nil || tl.InputSchema == nil || tl.Annotations == nil {
			t.Errorf("%s: schemas or annotations missing", tl.Name)
		}
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(mcpStoreTools)); !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	// With the tool definitions cached, calls still validate.
	if c := sdkCall(ctx, t, cs, "create_checkout", e.mcpArgs("checkout", lines(line("tulip_bunch", 1)))); c["id"] == "" {
		t.Fatalf("create_checkout %v", c)
	}
}

// TestMCPHTTPLimits checks the HTTP envelope: POST only, bounded bodies.
func TestMCPHTTPLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, method := range []string{"GET", "DELETE"} {
		res, b := e.req(method, "/s/flower-shop/mcp", nil, "Accept", "text/event-stream")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Fatalf("%s: HTTP %d Allow %q: %s", method, res.StatusCode, res.Header.Get("Allow"), b)
		}
	}
	// A body over the 1 MiB default is refused before any tool runs.
	big := mcpRequest(t, "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("bouquet_roses", 1)},
		"signals": map[string]any{"pad": strings.Repeat("x", 1<<20)}}))
	res, b := e.rpcPost("/s/flower-shop/mcp", big)
	if res.StatusCode == http.StatusOK {
		t.Fatalf("a %d-byte body was accepted: %.300s", len(big), b)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d for an oversized body, want 413 as on REST", res.StatusCode)
	}
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Error == nil || out.Result != nil {
		t.Fatalf("oversized body: not a JSON-RPC error: %s", b)
	}
	// Just under the limit is served (padded with a member the store
	// ignores: signals are capped at 4 KiB).
	small := mcpRequest(t, "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("bouquet_roses", 1)},
		"x-pad": strings.Repeat("x", 1<<19)}))
	res, b = e.rpcPost("/s/flower-shop/mcp", small)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a %d-byte body: HTTP %d %.300s", len(small), res.StatusCode, b)
	}
}

// TestMCPIdempotencyKeyHeader: the HTTP Idempotency-Key stands in for
// meta["idempotency-key"] (the binding allows the headers on the HTTP
// layer); meta wins when both are there.
func TestMCPIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	call := func(args map[string]any, key string) []byte {
		body := mcpMarshal(t, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
			"params": map[string]any{"name": "complete_checkout", "arguments": args}})
		_, b := e.rpcPost("/s/flower-shop/mcp", body, "Idempotency-Key", key)
		return b
	}
	args := map[string]any{"meta": map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL()}}, "id": c.ID,
		"checkout": cardPayment("success_token")}
	key := uuid()
	b1 := call(args, key)
	if !strings.Contains(string(b1), `"completed"`) {
		t.Fatalf("header key not used: %s", b1)
	}
	if b2 := call(args, key); !bytes.Equal(b1, b2) {
		t.Fatalf("replay differs:\n%s\n%s", b1, b2)
	}
}

// TestMCPAuthErrorIDs: only a string or number id is echoed.
func TestMCPAuthErrorIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for id, want := range map[string]string{`"a"`: `"a"`, `7`: `7`, `{"x":"<b>"}`: `null`, `["a"]`: `null`, `null`: `null`} {
		body := []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"get_cart","arguments":{}}}`)
		res, b := e.rpcPost("/s/flower-shop/mcp", body, "X-Test-Client", "bad")
		var out struct {
			ID json.RawMessage `json:"id"`
		}
		if res.StatusCode != http.StatusUnauthorized || json.Unmarshal(b, &out) != nil || string(out.ID) != want {
			t.Fatalf("id %s: %d %s", id, res.StatusCode, b)
		}
	}
}

// TestReviewMCPAuthFailureEchoesRequestWith200 (security review, finding 7):
// MCP authentication failure with a body that is not a JSON object
// (a batch, or anything else): the error rewrite gave up and the wrapper
// flushed the *request* body back with HTTP 200 (content type sniffed).
func TestReviewMCPAuthFailureEchoesRequestWith200(t *testing.T) {
	t.Parallel()
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

// TestReviewMCPForbiddenBehindLocalReverseProxy (security review, finding 8):
// mcp-go's DNS-rebinding guard is on: a request that arrives on a
// loopback address with a non-loopback Host gets 403. That is every MCP
// call in `serve` behind a same-host TLS proxy that keeps Host (Caddy's
// default; nginx with proxy_set_header Host $host), while REST works.
func TestReviewMCPForbiddenBehindLocalReverseProxy(t *testing.T) {
	t.Parallel()
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

// initializeResult is the part of an initialize result the tests read.
type initializeResult struct {
	ServerInfo struct {
		Name    string `json:"name"`
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"serverInfo"`
	Instructions string `json:"instructions"`
}

// mcpInitialize sends initialize to path and returns the result.
func (e *env) mcpInitialize(path string, hdr ...string) (*http.Response, *initializeResult, []byte) {
	e.t.Helper()
	res, b := e.rpcPost(path, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",`+
		`"capabilities":{},"clientInfo":{"name":"ucpbridge-test","version":"0.0.1"}}}`), hdr...)
	var out struct {
		Result *initializeResult `json:"result"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("initialize %s: HTTP %d %v: %s", path, res.StatusCode, err, b)
	}
	return res, out.Result, b
}

// TestMCPServerNames: each MCP endpoint reports its own name on
// initialize: a store's its store's name (with instructions in its
// currency), the cross-store catalog its own; over raw JSON-RPC and to
// the official Go SDK client.
func TestMCPServerNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for path, want := range map[string]struct{ name, instr string }{
		"/s/flower-shop/mcp":  {"Flower Shop", "EUR"},
		"/s/kyoto-tea/mcp":    {"Kyoto Tea House", "JPY"},
		"/s/energy-sport/mcp": {"Energy Sport", "USD"},
		"/mcp":                {"ucpbridge-catalog", "every UCP store"},
	} {
		res, ir, b := e.mcpInitialize(path)
		if res.StatusCode != http.StatusOK || ir == nil || ir.ServerInfo.Name != want.name || ir.ServerInfo.Title == "" ||
			ir.ServerInfo.Version == "" || !strings.Contains(ir.Instructions, want.instr) || !strings.Contains(ir.Instructions, `meta["ucp-agent"]`) {
			t.Errorf("%s: HTTP %d %s", path, res.StatusCode, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got := e.sdkSession(ctx, "kyoto-tea").InitializeResult().ServerInfo; got.Name != "Kyoto Tea House" {
		t.Fatalf("go-sdk: server %+v", got)
	}
	// An endpoint for no store is refused, as its tool calls always
	// were: the JSON-RPC error for the request's id.
	for _, slug := range []string{"no-such-store", "Not_A_Slug"} {
		res, _, b := e.mcpInitialize("/s/" + slug + "/mcp")
		var out rpcResponse
		if json.Unmarshal(b, &out) != nil {
			t.Fatalf("%s: %s", slug, b)
		}
		wantRPCError(t, res, &out, b, http.StatusNotFound, -32600, "store_not_found")
	}
}

// TestMCPServerNameFollowsTheStore: a renamed store's endpoint reports
// the new name once its cached server has aged out (a minute).
func TestMCPServerNameFollowsTheStore(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = clk.Now }})
	if _, ir, b := e.mcpInitialize("/s/flower-shop/mcp"); ir == nil || ir.ServerInfo.Name != "Flower Shop" {
		t.Fatalf("%s", b)
	}
	sh, err := e.store.Shop(t.Context(), "flower-shop")
	if err != nil {
		t.Fatal(err)
	}
	sh.Name = "Fleurs de Paris"
	if err := e.store.PutShop(t.Context(), sh); err != nil {
		t.Fatal(err)
	}
	if _, ir, b := e.mcpInitialize("/s/flower-shop/mcp"); ir == nil || ir.ServerInfo.Name != "Flower Shop" {
		t.Fatalf("within the minute: %s", b)
	}
	clk.Add(time.Minute)
	if _, ir, b := e.mcpInitialize("/s/flower-shop/mcp"); ir == nil || ir.ServerInfo.Name != "Fleurs de Paris" ||
		!strings.HasPrefix(ir.Instructions, "Fleurs de Paris is a UCP store") {
		t.Fatalf("after the minute: %s", b)
	}
}

// lookupStore counts store lookups by slug and fails them on demand.
type lookupStore struct {
	store.Commerce
	mu      sync.Mutex
	lookups map[string]int
	down    bool
}

func (s *lookupStore) Shop(ctx context.Context, slug string) (*store.Shop, error) {
	s.mu.Lock()
	s.lookups[slug]++
	down := s.down
	s.mu.Unlock()
	if down {
		return nil, errors.New("the database is down")
	}
	return s.Commerce.Shop(ctx, slug)
}

func (s *lookupStore) count(slug string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[slug]
}

// TestMCPStoreLookups: a store endpoint looks its store up (for its
// name) at most once a minute. A name that finds no store is charged to
// the caller's rate limit like an operation, and once the caller is over
// it nothing is looked up: unknown names cannot make the database work
// for free, while known stores' endpoints stay free to reach (served
// from the last lookup when the caller is over its limit, or when the
// store cannot be read); a store never read while the database is down
// is 503.
func TestMCPStoreLookups(t *testing.T) {
	t.Parallel()
	var ls *lookupStore
	e, clk := limitedEnv(t, shop.RateLimits{Anonymous: ratelimit.Limit{Rate: 0.01, Burst: 2}}, func(c *shop.Config) {
		ls = &lookupStore{Commerce: c.Store, lookups: map[string]int{}}
		c.Store = ls
	})
	list := func(slug string) (*http.Response, *rpcResponse, []byte) {
		res, b := e.rpcPost("/s/"+slug+"/mcp", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), "X-Test-Client", "", "X-Forwarded-For", "192.0.2.9")
		var out rpcResponse
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: HTTP %d %s", slug, res.StatusCode, b)
		}
		return res, &out, b
	}
	for range 5 {
		if res, _, b := list("flower-shop"); res.StatusCode != http.StatusOK {
			t.Fatalf("a known store: HTTP %d %s", res.StatusCode, b)
		}
	}
	if n := ls.count("flower-shop"); n != 1 {
		t.Fatalf("%d lookups of a known store within a minute, want 1", n)
	}
	for i := range 2 {
		res, out, b := list(fmt.Sprint("gone-", i))
		wantRPCError(t, res, out, b, http.StatusNotFound, -32600, "store_not_found")
	}
	res, out, b := list("gone-2")
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
	if n := ls.count("gone-2"); n != 0 {
		t.Fatalf("a caller over its limit made %d lookups", n)
	}
	// A minute on, the caller is still over its limit (0.6 of a call
	// back): the known store is served as last read.
	clk.Add(time.Minute)
	if res, _, b := list("flower-shop"); res.StatusCode != http.StatusOK {
		t.Fatalf("a known store, the caller over its limit: HTTP %d %s", res.StatusCode, b)
	}
	// The database down: a store read before is served as it was; one
	// never read is unavailable.
	clk.Add(time.Hour)
	ls.mu.Lock()
	ls.down = true
	ls.mu.Unlock()
	if res, ir, b := e.mcpInitialize("/s/flower-shop/mcp"); res.StatusCode != http.StatusOK || ir == nil || ir.ServerInfo.Name != "Flower Shop" {
		t.Fatalf("a store read before, the database down: HTTP %d %s", res.StatusCode, b)
	}
	res, _, b = e.mcpInitialize("/s/kyoto-tea/mcp")
	out = &rpcResponse{}
	json.Unmarshal(b, out)
	wantRPCError(t, res, out, b, http.StatusServiceUnavailable, -32000, "unavailable")
}

// TestMCPCatalogWithoutMeta: UCP's MCP binding requires
// meta["ucp-agent"] on every request, catalog reads included (REST may
// browse without UCP-Agent; MCP has no such allowance). A catalog read
// without it, on a store and on the cross-store catalog, signed in or
// not, is the binding's discovery error (-32001 invalid_profile_url) in
// an HTTP 200 response, saying what to send: the Artos SDK (like the
// TypeScript SDK) reports any other status as a transport failure and
// drops the message. The same read with a profile is served.
func TestMCPCatalogWithoutMeta(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	calls := []struct{ tool, arg string }{
		{"search_catalog", `{"query":"roses"}`},
		{"lookup_catalog", `{"ids":["bouquet_roses"]}`},
		{"get_product", `{"id":"bouquet_roses"}`},
	}
	for _, path := range []string{"/s/flower-shop/mcp", "/mcp"} {
		for _, client := range []string{"", "platform-a"} {
			for _, c := range calls {
				catalog := json.RawMessage(c.arg)
				res, out, b := e.mcpCallRaw(path, c.tool, map[string]any{"catalog": catalog}, "X-Test-Client", client, "UCP-Agent", "")
				wantRPCError(t, res, out, b, http.StatusOK, -32001, "invalid_profile_url")
				if msg := out.Error.Data.Content; !strings.Contains(msg, `meta["ucp-agent"]`) || !strings.Contains(msg, "catalog reads included") ||
					!strings.Contains(msg, "REST") || out.Error.Message != msg {
					t.Fatalf("%s %s: the message does not say what to do: %s", path, c.tool, b)
				}
				// What the Artos SDK does with the answer (client.js
				// callStoreTool): !res.ok is a transport error; a
				// JSON-RPC error is thrown with its message.
				if !(res.StatusCode >= 200 && res.StatusCode < 300) {
					t.Fatalf("the Artos SDK would report a transport failure: HTTP %d", res.StatusCode)
				}
				e.mcpFor(t).mustMCP(path, c.tool, map[string]any{"catalog": catalog, "meta": e.mcpMeta("")})
			}
		}
	}
	// The official Go SDK client gets the JSON-RPC error, and its
	// session carries on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := e.sdkSession(ctx, "flower-shop")
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "search_catalog", Arguments: map[string]any{"catalog": map[string]any{"query": "roses"}}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32001 || !strings.Contains(rpcErr.Message, `meta["ucp-agent"]`) {
		t.Fatalf("go-sdk: %v", err)
	}
	sdkCall(ctx, t, cs, "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses"}))
	// REST still browses without a profile.
	res, b := e.req("POST", "/s/flower-shop/catalog/search", map[string]any{"query": "roses"}, "UCP-Agent", "", "X-Test-Client", "")
	wantStatus(t, res, b, http.StatusOK)
}

// TestMCPSchemaViolations: a call outside its tool's inputSchema is
// refused before it runs with the binding's invalid-params error
// (-32602 invalid_request, HTTP 400 as on REST), naming each violation
// where it is in the arguments, on a store and on /mcp. Where the
// store's own reading refuses the body too, its refusal is the answer
// (REST's, word for word). Nothing ran: the idempotency key of a refused
// call is still free.
func TestMCPSchemaViolations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	chk := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "create_checkout", e.mcpArgs("checkout", lines(line("bouquet_roses", 1)))))
	good := map[string]any{"line_items": []any{line("tulip_bunch", 1)}}
	with := func(k string, v any) map[string]any {
		m := maps.Clone(good)
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		path, tool string
		args       map[string]any
		want       string
	}{
		{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("tulip_bunch", 0)}}),
			"$.line_items[0].quantity"},
		{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", map[string]any{}),
			"checkout: one of: checkout $.line_items is required | checkout $.cart_id is required"},
		{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", with("fulfillment", map[string]any{"methods": []any{map[string]any{"type": "drone"}}})),
			"checkout $.fulfillment.methods[0].type: value must be one of 'shipping', 'pickup'"},
		{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", with("context", map[string]any{"eligibility": []string{"gold member"}})),
			"checkout $.context.eligibility[0]: 'gold member' does not match pattern"},
		{"/s/flower-shop/mcp", "create_cart", e.mcpArgs("cart", map[string]any{"line_items": []any{map[string]any{"quantity": 1}}}),
			"$.line_items[0].item.id"},
		{"/s/flower-shop/mcp", "complete_checkout", e.mcpArgs("id", chk.ID, "checkout", map[string]any{"payment": map[string]any{
			"instruments": []any{map[string]any{"selected": true, "credential": map[string]any{"type": "token", "token": shop.TokenSuccess}}}}}),
			"checkout $.payment.instruments[0].handler_id is required"},
		{"/s/flower-shop/mcp", "complete_checkout", e.mcpArgs("id", chk.ID), "checkout is required"},
		{"/s/flower-shop/mcp", "get_checkout", e.mcpArgs("id", 42), "id: got number, want string"},
		{"/s/flower-shop/mcp", "get_order", e.mcpArgs(), "id is required"},
		{"/s/flower-shop/mcp", "cancel_checkout", map[string]any{"id": chk.ID, "meta": map[string]any{
			"ucp-agent": map[string]any{"profile": e.agent.URL()}, "idempotency-key": 12345678901234567}}, `meta["idempotency-key"] must be a string`},
		{"/s/flower-shop/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses", "sort": "cheapest"}),
			"catalog $.sort: value must be one of 'relevance', 'price_asc', 'price_desc'"},
		{"/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses", "pagination": map[string]any{"limit": 0}}),
			"catalog $.pagination.limit: minimum: got 0, want 1"},
		{"/mcp", "get_product", e.mcpArgs("catalog", map[string]any{"selected": []any{map[string]any{"name": "Size"}}}), "catalog $.id is required"},
		{"/mcp", "lookup_catalog", e.mcpArgs("catalog", map[string]any{"ids": slices.Repeat([]string{"x"}, 101)}),
			"catalog $.ids: maxItems: got 101, want 100"},
		// The store's own refusal, the same as REST's.
		{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", with("buyer", "ada")), "$.buyer must be"},
		{"/s/flower-shop/mcp", "create_cart", e.mcpArgs("cart", with("signals", freeFormOf(33, 1))), "$.signals has more than 32 members"},
	} {
		e := e.mcpFor(t)
		res, out, b := e.mcpCallRaw(tc.path, tc.tool, tc.args)
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
		if !strings.Contains(out.Error.Data.Content, tc.want) {
			t.Errorf("%s %s: want %q in %s", tc.path, tc.tool, tc.want, b)
		}
		// A refusal of the schema's own points at the inputSchema (the
		// store's name a body path, "$.…"; meta is read first).
		if !strings.HasPrefix(tc.want, "$.") && !strings.HasPrefix(tc.want, "meta[") && !strings.Contains(out.Error.Data.Content, "inputSchema") {
			t.Errorf("%s %s: %s", tc.path, tc.tool, b)
		}
	}
	// The refused completion ran nothing: its key completes the checkout.
	key := uuid()
	args := map[string]any{"meta": e.mcpMeta(key), "id": chk.ID, "checkout": map[string]any{"payment": map[string]any{
		"instruments": []any{map[string]any{"handler_id": 7, "credential": map[string]any{"type": "token", "token": shop.TokenSuccess}}}}}}
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "complete_checkout", args)
	wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
	if g := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "get_checkout", e.mcpArgs("id", chk.ID))); g.Status != chk.Status || g.Order != nil {
		t.Fatalf("a refused call changed the checkout: %+v", g)
	}
	args["checkout"] = cardPayment(shop.TokenSuccess)
	if done := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "complete_checkout", args)); done.Status != ucp.CheckoutCompleted {
		t.Fatalf("the key of a refused call: %+v", done)
	}
}

// TestMCPSchemaViolationsCharged: a call refused for its arguments is
// charged to the caller's rate limit like the operation (as REST charges
// a body it refuses), so invalid calls are no way around the limit.
func TestMCPSchemaViolationsCharged(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t, shop.RateLimits{Credential: ratelimit.Limit{Rate: 0.01, Burst: 2}}, nil)
	for range 2 {
		res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses", "sort": "cheapest"}))
		wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
	}
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses"}))
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
}

// TestMCPArtosShapes: the shapes the Artos SDK sends pass the schemas and
// do what they do on REST: a flat shipping_address with country (its
// README's), members the store ignores (tip_amount, metadata, line
// customisations), the flat fulfillment selection, a partial update with
// only a coupon claim, a card completion with a selected instrument and
// no type.
func TestMCPArtosShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	created := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "create_checkout", e.mcpArgs("checkout", map[string]any{
		"line_items": []any{map[string]any{"item": map[string]any{"id": "bouquet_roses"}, "quantity": 1,
			"selected_modifiers": []any{map[string]any{"group_id": "wrap", "option_id": "paper"}}}},
		"shipping_address": map[string]any{"country": "FR", "postal_code": "75001", "address_locality": "Paris", "street_address": "1 rue de Rivoli"},
		"tip_amount":       250,
		"metadata":         map[string]any{"artos_food": map[string]any{"notes": "ring twice"}},
		"fulfillment":      map[string]any{"fulfillable_on": "2026-12-24"},
	})))
	if created.ID == "" || created.Status != ucp.CheckoutReadyForComplete {
		t.Fatalf("create_checkout: %+v", created)
	}
	upd := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "update_checkout", e.mcpArgs("id", created.ID, "checkout",
		map[string]any{"context": map[string]any{"eligibility": []string{shop.CouponClaim}}})))
	if upd.ID != created.ID || len(upd.LineItems) != 1 {
		t.Fatalf("partial update: %+v", upd)
	}
	done := decode[ucp.Checkout](t, e.mcpCall("flower-shop", "complete_checkout", e.mcpArgs("id", created.ID, "checkout",
		map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{"handler_id": shop.HandlerCardID, "selected": true,
			"credential": map[string]any{"token": shop.TokenSuccess}}}}})))
	if done.Status != ucp.CheckoutCompleted || done.Order == nil {
		t.Fatalf("complete_checkout: %+v", done)
	}
}
