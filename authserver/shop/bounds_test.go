package shop_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// with returns a create-checkout body for one rose with kv merged in.
func with(kv ...any) map[string]any {
	b := lines(line("bouquet_roses", 1))
	for i := 0; i+1 < len(kv); i += 2 {
		b[kv[i].(string)] = kv[i+1]
	}
	return b
}

// freeFormOf is n members named k0…, each value v.
func freeFormOf(n int, v any) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprint("k", i)] = v
	}
	return m
}

func dest(kv ...string) map[string]any {
	d := map[string]any{"street_address": "1 rue de Rivoli", "address_locality": "Paris", "postal_code": "75001", "address_country": "FR"}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	return d
}

func shipTo(ds ...map[string]any) map[string]any {
	return map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": ds}}}
}

func instrument(kv ...any) map[string]any {
	in := map[string]any{"handler_id": "artos.card", "selected": true}
	for i := 0; i+1 < len(kv); i += 2 {
		in[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"instruments": []any{in}}
}

// wantFieldRefused asserts the 400 invalid_request that names path.
func wantFieldRefused(t *testing.T, res *http.Response, b []byte, path string) {
	t.Helper()
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	if p := decode[map[string]string](t, b); !strings.Contains((*p)["content"], path+" ") {
		t.Fatalf("the error does not name %s: %s", path, b)
	}
}

var x = strings.Repeat

// overBounds are create-checkout bodies each one byte or one entry over a
// bound, with the field the refusal must name.
var overBounds = []struct {
	path string
	body map[string]any
}{
	{"$.signals", with("signals", freeFormOf(33, 1))},
	{"$.signals", with("signals", map[string]any{x("k", 65): 1})},
	{`$.signals["ua"]`, with("signals", map[string]any{"ua": x("a", 511)})}, // 513 bytes as JSON
	{`$.signals["nested"]`, with("signals", map[string]any{"nested": map[string]any{"a": x("b", 600)}})},
	{"$.signals", with("signals", freeFormOf(10, x("v", 450)))}, // each value fits; the whole does not
	{"$.attribution", with("attribution", freeFormOf(33, "x"))},
	{"$.attribution", with("attribution", map[string]any{x("k", 65): "x"})},
	{`$.attribution["utm_source"]`, with("attribution", map[string]any{"utm_source": x("s", 511)})},
	{"$.attribution", with("attribution", freeFormOf(9, x("v", 500)))},
	{"$.buyer.first_name", with("buyer", map[string]any{"first_name": x("a", 257)})},
	{"$.buyer.last_name", with("buyer", map[string]any{"last_name": x("a", 257)})},
	{"$.buyer.email", with("buyer", map[string]any{"email": x("a", 250) + "@e.mail"})},
	{"$.buyer.phone_number", with("buyer", map[string]any{"phone_number": x("1", 65)})},
	{"$.context.intent", with("context", map[string]any{"intent": x("i", 257)})},
	{"$.context.address_region", with("context", map[string]any{"address_region": x("r", 257)})},
	{"$.context.address_country", with("context", map[string]any{"address_country": x("F", 65)})},
	{"$.context.postal_code", with("context", map[string]any{"postal_code": x("7", 65)})},
	{"$.context.language", with("context", map[string]any{"language": x("f", 65)})},
	{"$.context.currency", with("context", map[string]any{"currency": x("E", 65)})},
	{"$.context.eligibility", with("context", map[string]any{"eligibility": strings.Fields(x("e ", 17))})},
	{"$.context.eligibility[0]", with("context", map[string]any{"eligibility": []string{x("e", 65)}})},
	{"$.line_items[0].item.id", lines(line(x("i", 256), 1))},
	{"$.line_items[1].id", lines(line("bouquet_roses", 1), map[string]any{"id": x("l", 256), "item": map[string]any{"id": "tulip_bunch"}, "quantity": 1})},
	{"$.cart_id", map[string]any{"cart_id": x("c", 256)}},
	{"$.discounts.codes[1]", with("discounts", map[string]any{"codes": []string{"SPRING15", x("D", 65)}})},
	{"$.fulfillment.methods[0].destinations[1].street_address", with("fulfillment", shipTo(dest(), dest("street_address", x("s", 257))))},
	{"$.fulfillment.methods[0].destinations[0].extended_address", with("fulfillment", shipTo(dest("extended_address", x("s", 257))))},
	{"$.fulfillment.methods[0].destinations[0].address_locality", with("fulfillment", shipTo(dest("address_locality", x("s", 257))))},
	{"$.fulfillment.methods[0].destinations[0].address_region", with("fulfillment", shipTo(dest("address_region", x("s", 257))))},
	{"$.fulfillment.methods[0].destinations[0].address_country", with("fulfillment", shipTo(dest("address_country", x("F", 65))))},
	{"$.fulfillment.methods[0].destinations[0].postal_code", with("fulfillment", shipTo(dest("postal_code", x("7", 65))))},
	{"$.fulfillment.methods[0].destinations[0].first_name", with("fulfillment", shipTo(dest("first_name", x("a", 257))))},
	{"$.fulfillment.methods[0].destinations[0].last_name", with("fulfillment", shipTo(dest("last_name", x("a", 257))))},
	{"$.fulfillment.methods[0].destinations[0].phone_number", with("fulfillment", shipTo(dest("phone_number", x("1", 65))))},
	{"$.fulfillment.methods[0].destinations[0].id", with("fulfillment", shipTo(dest("id", x("d", 256))))},
	{"$.fulfillment.methods[0].selected_destination_id", with("fulfillment", map[string]any{"methods": []any{map[string]any{
		"type": "shipping", "destinations": []any{dest()}, "selected_destination_id": x("d", 256)}}})},
	{"$.fulfillment.methods[0].type", with("fulfillment", map[string]any{"methods": []any{map[string]any{"type": x("t", 65)}}})},
	{"$.fulfillment.methods[0].groups", with("fulfillment", map[string]any{"methods": []any{map[string]any{
		"type": "shipping", "destinations": []any{dest()}, "groups": make([]map[string]any, 11)}}})},
	{"$.fulfillment.methods[0].groups[0].selected_option_id", with("fulfillment", map[string]any{"methods": []any{map[string]any{
		"type": "shipping", "destinations": []any{dest()}, "groups": []any{map[string]any{"selected_option_id": x("o", 256)}}}}})},
	{"$.fulfillment.selected_option_id", with("fulfillment", map[string]any{"selected_option_id": x("o", 256)})},
	{"$.fulfillment.selected_destination_id", with("fulfillment", map[string]any{"selected_destination_id": x("o", 256)})},
	{"$.shipping_address.street_address", with("shipping_address", map[string]any{"street_address": x("s", 257), "country": "FR"})},
	{"$.shipping_address.country", with("shipping_address", map[string]any{"street_address": "1 rue", "country": x("F", 65)})},
	{"$.payment.instruments[0].id", with("payment", instrument("id", x("i", 256)))},
	{"$.payment.instruments[0].handler_id", with("payment", instrument("handler_id", x("h", 256)))},
	{"$.payment.instruments[0].type", with("payment", instrument("type", x("t", 65)))},
	{"$.payment.instruments[0].display", with("payment", instrument("display", map[string]any{"brand": x("b", 1020)}))},
	{"$.payment.instruments[0].billing_address.street_address", with("payment", instrument("billing_address", dest("street_address", x("s", 257))))},
}

// TestFieldBoundsCheckout: a create or update over any bound is refused
// as a whole (400 invalid_request naming the field), and nothing is
// stored: no checkout, no change to an existing one.
func TestFieldBoundsCheckout(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	e := newEnv(t, &envOptions{store: st})
	for _, c := range overBounds {
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", c.body)
		wantFieldRefused(t, res, b, c.path)
	}
	if n := cartSessions(t, st, "checkout"); n != 0 {
		t.Fatalf("refused requests stored %d checkouts", n)
	}
	co := e.createCheckout("flower-shop", with("fulfillment", frShipping))
	_, before := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil)
	for _, c := range overBounds {
		if _, ok := c.body["line_items"]; !ok {
			continue // cart_id: update replaces lines
		}
		res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+co.ID, c.body)
		wantFieldRefused(t, res, b, c.path)
	}
	_, after := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil)
	if !sameCheckout(t, before, after) {
		t.Fatalf("refused updates changed the checkout:\n%s\n%s", before, after)
	}
}

// sameCheckout compares two GETs of a checkout, minus the per-response
// signature.
func sameCheckout(t *testing.T, a, b []byte) bool {
	t.Helper()
	strip := func(x []byte) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(x, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "ap2")
		out, _ := json.Marshal(m)
		return string(out)
	}
	return strip(a) == strip(b)
}

// TestFieldBoundsAtTheLimit: exactly at every free-form bound is served
// and stored as sent.
func TestFieldBoundsAtTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	signals := map[string]any{}
	for i := range 31 {
		signals[fmt.Sprintf("%s%02d", x("k", 62), i)] = i // 31 names of 64 bytes
	}
	signals["ua"] = x("a", 510) // 512 bytes as JSON
	attribution := map[string]any{}
	for i := range 7 {
		attribution[fmt.Sprint("a", i)] = x("v", 510)
	}
	attribution["rest"] = x("r", 4096-7*(5+512+1)-11) // {, 7 members, "rest":, "…", }: 4096 bytes as JSON
	if b, _ := json.Marshal(attribution); len(b) != 4096 {
		t.Fatalf("test attribution is %d bytes", len(b))
	}
	body := with("signals", signals, "attribution", attribution,
		"buyer", map[string]any{"email": x("a", 249) + "@e.mail", "first_name": x("f", 256), "phone_number": x("1", 64)},
		"context", map[string]any{"intent": x("i", 256), "eligibility": strings.Fields(x("e ", 16))},
		"discounts", map[string]any{"codes": []string{x("D", 64)}},
		"fulfillment", shipTo(dest("street_address", x("s", 256), "id", x("d", 255))))
	c := e.createCheckout("flower-shop", body)
	if len(c.Signals) != 32 || c.Signals["ua"] != x("a", 510) || len(c.Attribution) != 8 || c.Buyer == nil || len(c.Buyer.Email) != 256 {
		t.Fatalf("not stored as sent: %d signals, %d attribution, buyer %+v", len(c.Signals), len(c.Attribution), c.Buyer)
	}
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[ucp.Checkout](t, b); got.Attribution["rest"] != attribution["rest"] {
		t.Fatal("attribution not kept")
	}
}

// TestFieldBoundsCartAndComplete: carts and completions are bounded the
// same way; a refused completion leaves the checkout as it was.
func TestFieldBoundsCartAndComplete(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	e := newEnv(t, &envOptions{store: st})
	for _, c := range overBounds {
		if _, ok := c.body["line_items"]; !ok || strings.HasPrefix(c.path, "$.fulfillment") || strings.HasPrefix(c.path, "$.shipping_address") ||
			strings.HasPrefix(c.path, "$.payment") {
			continue // not cart members
		}
		res, b := e.req("POST", "/s/flower-shop/carts", c.body)
		wantFieldRefused(t, res, b, c.path)
	}
	if n := cartSessions(t, st, "cart"); n != 0 {
		t.Fatalf("refused requests stored %d carts", n)
	}

	co := e.createCheckout("flower-shop", with("fulfillment", frShipping))
	_, before := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil)
	for path, extra := range map[string]map[string]any{
		"$.signals":      {"signals": freeFormOf(33, 1)},
		`$.signals["a"]`: {"signals": map[string]any{"a": x("a", 600)}},
		"$.attribution":  {"attribution": freeFormOf(9, x("v", 500))},
		"$.payment.instruments[0].billing_address.postal_code": {"payment": map[string]any{"instruments": []any{map[string]any{
			"handler_id": "artos.card", "selected": true, "credential": map[string]any{"type": "token", "token": "success_token"},
			"billing_address": dest("postal_code", x("7", 65))}}}},
	} {
		body := cardPayment("success_token")
		for k, v := range extra {
			body[k] = v
		}
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+co.ID+"/complete", body)
		wantFieldRefused(t, res, b, path)
	}
	_, after := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil)
	if !sameCheckout(t, before, after) {
		t.Fatalf("refused completions changed the checkout:\n%s\n%s", before, after)
	}
	var orders int
	if err := st.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM orders`).Scan(&orders); err != nil || orders != 0 {
		t.Fatalf("%d orders after refused completions (%v)", orders, err)
	}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+co.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusOK)
	if s, _ := checkoutStatus(t, b); s != ucp.CheckoutCompleted {
		t.Fatalf("complete within bounds: %s", b)
	}
}

// TestFieldBoundsMCP: over MCP the refusal is the JSON-RPC invalid-params
// error with HTTP 400.
func TestFieldBoundsMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", with("signals", freeFormOf(33, 1))))
	wantRPCError(t, res, out, b, http.StatusBadRequest, -32602, "invalid_request")
	if !strings.Contains(out.Error.Data.Content, "$.signals ") {
		t.Fatalf("the error does not name $.signals: %s", b)
	}
}

// TestFieldBoundsLargestSession measures the largest checkout session
// the bounds allow: every bounded field at its limit, as many lines,
// destinations and instruments as pricing accepts. The 20 requests that
// once stored 50 MB now store at most 20 of these.
func TestFieldBoundsLargestSession(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	e := newEnv(t, &envOptions{store: st})
	var ls []any
	for i := range 100 {
		ls = append(ls, map[string]any{"id": fmt.Sprintf("%0255d", i), "item": map[string]any{"id": "sunflowers"}, "quantity": 1})
	}
	full := func(id string) map[string]any {
		return map[string]any{"id": id, "street_address": x("s", 256), "extended_address": x("e", 256), "address_locality": x("l", 256),
			"address_region": x("r", 256), "address_country": "FR", "postal_code": x("7", 64), "first_name": x("f", 256),
			"last_name": x("l", 256), "phone_number": x("1", 64)}
	}
	var ds, ins, groups []any
	for i := range 10 {
		ds = append(ds, full(fmt.Sprintf("%0255d", i)))
		ins = append(ins, map[string]any{"id": fmt.Sprintf("%0255d", i), "handler_id": "artos.card", "type": x("t", 64),
			"display": map[string]any{"d": x("d", 1014)}, "billing_address": full(x("b", 255))})
		groups = append(groups, map[string]any{"selected_option_id": x("o", 255)})
	}
	freeForm := func() map[string]any {
		m := map[string]any{}
		for i := range 7 {
			m[fmt.Sprint("a", i)] = x("v", 510)
		}
		m["rest"] = x("r", 4096-7*(5+512+1)-11) // {, 7 members, "rest":, "…", }
		return m
	}
	var codes []string
	for i := range 10 {
		codes = append(codes, fmt.Sprintf("%064d", i))
	}
	body := map[string]any{"line_items": ls, "signals": freeForm(), "attribution": freeForm(),
		"buyer":   map[string]any{"first_name": x("f", 256), "last_name": x("l", 256), "email": x("e", 256), "phone_number": x("1", 64)},
		"context": map[string]any{"intent": x("i", 256), "address_region": x("r", 256), "eligibility": strings.Fields(strings.Repeat(x("e", 64)+" ", 16))},
		"fulfillment": map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": ds, "selected_destination_id": fmt.Sprintf("%0255d", 0),
			"groups": groups}}},
		"discounts": map[string]any{"codes": codes}, "payment": map[string]any{"instruments": ins}}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", body)
	wantStatus(t, res, b, http.StatusCreated)
	var doc int
	if err := st.DB().QueryRowContext(t.Context(), `SELECT MAX(LENGTH(doc)) FROM sessions WHERE kind = 'checkout'`).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest checkout session: %d bytes stored (request %d bytes)", doc, len(mcpMarshal(t, body)))
	if doc > 256<<10 {
		t.Fatalf("a session within every bound stores %d bytes", doc)
	}
}
