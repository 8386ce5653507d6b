package shop_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// cartEnv is an env whose SQLite store the test can count sessions in.
func cartEnv(t *testing.T, cfg func(*shop.Config)) (*env, *sqlstore.Store) {
	t.Helper()
	st := sqlstoretest.SQLite(t)
	return newEnv(t, &envOptions{store: st, cfg: cfg}), st
}

// cartSessions counts the stored sessions of kind ("cart" or "checkout").
func cartSessions(t *testing.T, st *sqlstore.Store, kind string) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sessions WHERE kind = ?`, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createCart creates a cart in slug and returns it.
func (e *env) createCart(slug string, body any, hdr ...string) *ucp.Cart {
	e.t.Helper()
	res, b := e.req("POST", "/s/"+slug+"/carts", body, hdr...)
	wantStatus(e.t, res, b, http.StatusCreated)
	c := decode[ucp.Cart](e.t, b)
	if c.ID == "" {
		e.t.Fatalf("cart without id: %s", b)
	}
	return c
}

// cartGet reads a cart; ok is false for the not_found envelope.
func (e *env) cartGet(t *testing.T, slug, id string, hdr ...string) (c *ucp.Cart, ok bool) {
	t.Helper()
	res, b := e.req("GET", "/s/"+slug+"/carts/"+id, nil, hdr...)
	wantStatus(t, res, b, http.StatusOK)
	var probe struct {
		UCP ucp.Envelope `json:"ucp"`
	}
	json.Unmarshal(b, &probe)
	if probe.UCP.Status == ucp.StatusError {
		env := catEnvelopeErr(t, res, b, "not_found", "$.id")
		if env.Messages[0].Severity != ucp.SeverityUnrecoverable {
			t.Fatalf("%s", b)
		}
		return nil, false
	}
	return decode[ucp.Cart](t, b), true
}

func cartTotal(t *testing.T, totals []ucp.Total, typ string) int64 {
	t.Helper()
	for _, x := range totals {
		if x.Type == typ {
			return x.Amount
		}
	}
	t.Fatalf("no %s total in %+v", typ, totals)
	return 0
}

func withCodes(body map[string]any, codes ...string) map[string]any {
	body["discounts"] = map[string]any{"codes": codes}
	return body
}

// TestCartCreate: lines are priced from the catalog; totals sum; the
// envelope names the cart capabilities; get returns the same cart.
func TestCartCreate(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	res, b := e.req("POST", "/s/flower-shop/carts", lines(line("bouquet_roses", 2), line("tulip_bunch", 1)))
	wantStatus(t, res, b, http.StatusCreated)
	c := decode[ucp.Cart](t, b)
	if !strings.HasPrefix(c.ID, "cart_") || c.Currency != "EUR" || len(c.LineItems) != 2 || c.ExpiresAt == "" || len(c.Messages) != 0 {
		t.Fatalf("%s", b)
	}
	if _, err := time.Parse(time.RFC3339, c.ExpiresAt); err != nil {
		t.Fatalf("expires_at %q", c.ExpiresAt)
	}
	for i, want := range []struct {
		id, title  string
		price, qty int64
		lineTotal  int64
	}{
		{"bouquet_roses", "Bouquet of Red Roses", 3500, 2, 7000},
		{"tulip_bunch", "Tulip Bunch", 1900, 1, 1900},
	} {
		l := c.LineItems[i]
		if l.ID == "" || l.Item.ID != want.id || l.Item.Title != want.title || l.Item.Price != want.price || l.Quantity != want.qty {
			t.Fatalf("line %d: %+v", i, l)
		}
		if !reflect.DeepEqual(l.Totals, []ucp.Total{{Type: ucp.TotalSubtotal, Amount: want.lineTotal}, {Type: ucp.TotalTotal, Amount: want.lineTotal}}) {
			t.Fatalf("line %d totals %+v", i, l.Totals)
		}
	}
	if c.LineItems[0].ID == c.LineItems[1].ID {
		t.Fatal("duplicate line ids")
	}
	checkTotals(t, c.Totals)
	if !reflect.DeepEqual(c.Totals, []ucp.Total{{Type: ucp.TotalSubtotal, Amount: 8900}, {Type: ucp.TotalTotal, Amount: 8900}}) {
		t.Fatalf("totals %+v", c.Totals)
	}
	if c.UCP == nil || c.UCP.Version != ucp.Version || c.UCP.Status != ucp.StatusSuccess || c.UCP.Capabilities[ucp.CapCart] == nil ||
		c.UCP.Capabilities[ucp.CapDiscount] == nil || c.UCP.Capabilities[ucp.CapCheckout] != nil || c.UCP.PaymentHandlers != nil {
		t.Fatalf("envelope %+v", c.UCP)
	}
	// Carts have no status on the wire, and no payment.
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	for _, k := range []string{"status", "payment", "order"} {
		if _, ok := raw[k]; ok {
			t.Fatalf("cart carries %s: %s", k, b)
		}
	}
	g, ok := e.cartGet(t, "flower-shop", c.ID)
	if !ok || g.ID != c.ID || !reflect.DeepEqual(g.LineItems, c.LineItems) || !reflect.DeepEqual(g.Totals, c.Totals) || g.ExpiresAt != c.ExpiresAt || g.UCP.Capabilities[ucp.CapCart] == nil {
		t.Fatalf("get %+v", g)
	}
	// USD cents and JPY yen at the other stores.
	es := e.createCart("energy-sport", lines(line("trx-blu-11", 1), line("merino-socks-m", 3)))
	if es.Currency != "USD" || cartTotal(t, es.Totals, ucp.TotalTotal) != 13400+3*1800 {
		t.Fatalf("%+v", es)
	}
	kt := e.createCart("kyoto-tea", lines(line("matcha-uji-40", 2)))
	if kt.Currency != "JPY" || cartTotal(t, kt.Totals, ucp.TotalTotal) != 6480 {
		t.Fatalf("%+v", kt)
	}
	// Unknown carts and stores.
	if _, ok := e.cartGet(t, "flower-shop", "cart_nope"); ok {
		t.Fatal("unknown cart found")
	}
	if _, ok := e.cartGet(t, "energy-sport", c.ID); ok {
		t.Fatal("a cart is visible from another store")
	}
	res, b = e.req("POST", "/s/nowhere/carts", lines(line("bouquet_roses", 1)))
	catProtoErr(t, res, b, http.StatusNotFound, "store_not_found")
}

// TestCartOutOfStock: a cart short of stock is still created, with a
// recoverable out_of_stock error on the line.
func TestCartOutOfStock(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	c := e.createCart("flower-shop", lines(line("bouquet_roses", 1), line("gardenias", 1)))
	if !slices.Equal(messageCodes(c.Messages), []string{"out_of_stock"}) || c.Messages[0].Path != "$.line_items[1]" ||
		c.Messages[0].Severity != ucp.SeverityRecoverable || len(c.LineItems) != 2 {
		t.Fatalf("%+v", c)
	}
	checkTotals(t, c.Totals)
}

// TestCartUpdateIsFullReplace: PUT replaces the cart; what is not resent
// is gone; lines selling the same item keep their ids.
func TestCartUpdateIsFullReplace(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	body := withCodes(lines(line("bouquet_roses", 1), line("tulip_bunch", 2)), "SPRING15")
	body["buyer"] = map[string]any{"email": "ada@example.com", "first_name": "Ada"}
	body["context"] = map[string]any{"address_country": "FR"}
	c := e.createCart("flower-shop", body)
	if c.Buyer == nil || c.Buyer.Email != "ada@example.com" || c.Context == nil || c.Context.AddressCountry != "FR" || c.Discounts == nil {
		t.Fatalf("%+v", c)
	}
	tulipID := c.LineItems[1].ID

	res, b := e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 3), line("orchid_pot", 1)))
	wantStatus(t, res, b, http.StatusOK)
	u := decode[ucp.Cart](t, b)
	if u.ID != c.ID || u.Buyer != nil || u.Context != nil || u.Discounts != nil || len(u.LineItems) != 2 {
		t.Fatalf("not replaced: %s", b)
	}
	if u.LineItems[0].ID != tulipID || u.LineItems[0].Quantity != 3 || u.LineItems[1].Item.ID != "orchid_pot" ||
		u.LineItems[1].ID == tulipID || u.LineItems[1].ID == c.LineItems[0].ID {
		t.Fatalf("line ids %+v (tulip was %s, roses %s)", u.LineItems, tulipID, c.LineItems[0].ID)
	}
	checkTotals(t, u.Totals)
	if !reflect.DeepEqual(u.Totals, []ucp.Total{{Type: ucp.TotalSubtotal, Amount: 3*1900 + 4500}, {Type: ucp.TotalTotal, Amount: 3*1900 + 4500}}) {
		t.Fatalf("totals %+v", u.Totals)
	}
	if u.ExpiresAt != c.ExpiresAt {
		t.Fatalf("expiry moved: %s -> %s", c.ExpiresAt, u.ExpiresAt)
	}
	g, ok := e.cartGet(t, "flower-shop", c.ID)
	if !ok || !reflect.DeepEqual(g.LineItems, u.LineItems) || g.Buyer != nil || g.Discounts != nil {
		t.Fatalf("get after update %+v", g)
	}
	// The buyer comes back when resent.
	body = lines(line("tulip_bunch", 3))
	body["buyer"] = map[string]any{"email": "bob@example.com"}
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, body)
	wantStatus(t, res, b, http.StatusOK)
	if u := decode[ucp.Cart](t, b); u.Buyer == nil || u.Buyer.Email != "bob@example.com" || len(u.LineItems) != 1 || u.LineItems[0].ID != tulipID {
		t.Fatalf("%s", b)
	}
	// A refused update changes nothing: an item the store does not sell
	// (the error envelope), lines the request schema refuses (400).
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("nope", 1)))
	wantStatus(t, res, b, http.StatusOK)
	if env := decode[ucp.ErrorResponse](t, b); env.UCP.Status != ucp.StatusError || len(env.Messages) != 1 {
		t.Fatalf("%s", b)
	}
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 0)))
	wantBadField(t, res, b, "$.line_items[0].quantity")
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines())
	wantBadField(t, res, b, "$.line_items")
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, `{"line_items":`)
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	if g, _ := e.cartGet(t, "flower-shop", c.ID); g == nil || g.LineItems[0].Quantity != 3 || g.Buyer == nil || g.Buyer.Email != "bob@example.com" {
		t.Fatalf("a refused update changed the cart: %+v", g)
	}
	// Updating an unknown cart is not_found.
	res, b = e.req("PUT", "/s/flower-shop/carts/cart_nope", lines(line("tulip_bunch", 1)))
	catEnvelopeErr(t, res, b, "not_found", "$.id")
}

// TestCartDiscountCodes: codes are case-insensitive; unknown and repeated
// codes are warnings; totals stay consistent.
func TestCartDiscountCodes(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	for _, tc := range []struct {
		name     string
		codes    []string
		discount int64 // the discount total, 0 for none
		msgs     []string
		paths    []string
	}{
		// 2 roses = 7000; 15% = 1050.
		{"percent", []string{"SPRING15"}, -1050, nil, nil},
		{"lower case", []string{"spring15"}, -1050, nil, nil},
		{"padded", []string{" Spring15 "}, -1050, nil, nil},
		{"unknown", []string{"BOGUS"}, 0, []string{"discount_code_invalid"}, []string{"$.discounts.codes[0]"}},
		{"another store's", []string{"RUN10"}, 0, []string{"discount_code_invalid"}, []string{"$.discounts.codes[0]"}},
		{"repeated", []string{"SPRING15", "spring15"}, -1050, []string{"discount_code_already_applied"}, []string{"$.discounts.codes[1]"}},
		{"mixed", []string{"nope", "SPRING15", "SPRING15"}, -1050, []string{"discount_code_invalid", "discount_code_already_applied"},
			[]string{"$.discounts.codes[0]", "$.discounts.codes[2]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.createCart("flower-shop", withCodes(lines(line("bouquet_roses", 2)), tc.codes...))
			checkTotals(t, c.Totals)
			if got := messageCodes(c.Messages); !slices.Equal(got, tc.msgs) {
				t.Fatalf("messages %v, want %v", got, tc.msgs)
			}
			for i, m := range c.Messages {
				if m.Type != "warning" || m.Path != tc.paths[i] {
					t.Fatalf("message %+v", m)
				}
			}
			if c.Discounts == nil || !slices.Equal(c.Discounts.Codes, tc.codes) {
				t.Fatalf("discounts %+v", c.Discounts)
			}
			i := slices.IndexFunc(c.Totals, func(x ucp.Total) bool { return x.Type == ucp.TotalDiscount })
			if tc.discount == 0 {
				if i >= 0 || len(c.Discounts.Applied) != 0 || cartTotal(t, c.Totals, ucp.TotalTotal) != 7000 {
					t.Fatalf("discount applied: %+v %+v", c.Totals, c.Discounts)
				}
				return
			}
			if i < 0 || c.Totals[i].Amount != tc.discount || cartTotal(t, c.Totals, ucp.TotalSubtotal) != 7000 ||
				cartTotal(t, c.Totals, ucp.TotalTotal) != 7000+tc.discount {
				t.Fatalf("totals %+v", c.Totals)
			}
			if len(c.Discounts.Applied) != 1 || c.Discounts.Applied[0].Amount != -tc.discount || c.Discounts.Applied[0].Title != "Spring 15%" {
				t.Fatalf("applied %+v", c.Discounts.Applied)
			}
		})
	}
	// Two codes stack at the sports store: 10% of 12900 then $5.
	c := e.createCart("energy-sport", withCodes(lines(line("trx-blk-9", 1)), "run10", "WELCOME5"))
	checkTotals(t, c.Totals)
	if cartTotal(t, c.Totals, ucp.TotalTotal) != 12900-1290-500 || len(c.Discounts.Applied) != 2 {
		t.Fatalf("%+v", c.Totals)
	}
	// An update without discounts drops them; with them, re-prices.
	c = e.createCart("flower-shop", withCodes(lines(line("bouquet_roses", 2)), "SPRING15"))
	res, b := e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("bouquet_roses", 2)))
	wantStatus(t, res, b, http.StatusOK)
	if u := decode[ucp.Cart](t, b); u.Discounts != nil || cartTotal(t, u.Totals, ucp.TotalTotal) != 7000 {
		t.Fatalf("%s", b)
	}
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, withCodes(lines(line("bouquet_roses", 4)), "spring15"))
	wantStatus(t, res, b, http.StatusOK)
	if u := decode[ucp.Cart](t, b); cartTotal(t, u.Totals, ucp.TotalTotal) != 14000-2100 {
		t.Fatalf("%s", b)
	}
	// At most 10 codes.
	many := make([]string, 11)
	for i := range many {
		many[i] = "SPRING15"
	}
	res, b = e.req("POST", "/s/flower-shop/carts", withCodes(lines(line("bouquet_roses", 1)), many...))
	wantBadField(t, res, b, "$.discounts.codes")
}

// TestCartCancel: cancel needs an idempotency key, returns the cart as it
// was, and the cart is gone afterwards.
func TestCartCancel(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	c := e.createCart("flower-shop", lines(line("tulip_bunch", 2)))
	res, b := e.req("POST", "/s/flower-shop/carts/"+c.ID+"/cancel", nil, "Idempotency-Key", "")
	catProtoErr(t, res, b, http.StatusBadRequest, "idempotency_key_required")
	if _, ok := e.cartGet(t, "flower-shop", c.ID); !ok {
		t.Fatal("refused cancel canceled the cart")
	}
	key := uuid()
	res, b = e.req("POST", "/s/flower-shop/carts/"+c.ID+"/cancel", nil, "Idempotency-Key", key)
	wantStatus(t, res, b, http.StatusOK)
	got := decode[ucp.Cart](t, b)
	if got.ID != c.ID || !reflect.DeepEqual(got.LineItems, c.LineItems) || !reflect.DeepEqual(got.Totals, c.Totals) || got.UCP.Status != ucp.StatusSuccess {
		t.Fatalf("cancel returns %s", b)
	}
	// The same key replays the answer.
	res, b2 := e.req("POST", "/s/flower-shop/carts/"+c.ID+"/cancel", nil, "Idempotency-Key", key)
	wantStatus(t, res, b2, http.StatusOK)
	if string(b2) != string(b) {
		t.Fatalf("replay %s, first %s", b2, b)
	}
	if _, ok := e.cartGet(t, "flower-shop", c.ID); ok {
		t.Fatal("canceled cart still readable")
	}
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 1)))
	catEnvelopeErr(t, res, b, "not_found", "$.id")
	res, b = e.req("POST", "/s/flower-shop/carts/"+c.ID+"/cancel", nil)
	catEnvelopeErr(t, res, b, "not_found", "$.id")
	res, b = e.req("POST", "/s/flower-shop/carts/cart_nope/cancel", nil)
	catEnvelopeErr(t, res, b, "not_found", "$.id")
}

// TestCartExpiry: an expired cart is not found.
func TestCartExpiry(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	e, _ := cartEnv(t, func(c *shop.Config) {
		c.CheckoutTTL = time.Hour
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	c := e.createCart("flower-shop", lines(line("tulip_bunch", 1)))
	exp, err := time.Parse(time.RFC3339, c.ExpiresAt)
	if err != nil || exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("expires_at %q", c.ExpiresAt)
	}
	offset.Store(int64(59 * time.Minute))
	if _, ok := e.cartGet(t, "flower-shop", c.ID); !ok {
		t.Fatal("expired early")
	}
	offset.Store(int64(61 * time.Minute))
	if _, ok := e.cartGet(t, "flower-shop", c.ID); ok {
		t.Fatal("expired cart readable")
	}
	res, b := e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 1)))
	catEnvelopeErr(t, res, b, "not_found", "$.id")
	res, b = e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": c.ID})
	catEnvelopeErr(t, res, b, "not_found", "$.cart_id")
}

// TestCartOwnership: a cart is visible only to the platform that created
// it; anyone else gets not_found, as for an unknown id.
func TestCartOwnership(t *testing.T) {
	t.Parallel()
	e, st := cartEnv(t, nil)
	c := e.createCart("flower-shop", lines(line("tulip_bunch", 2)))
	wantIdentityRequired(t, e, "GET", "/s/flower-shop/carts/"+c.ID, nil)
	wantIdentityRequired(t, e, "PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 9)))
	for _, who := range []string{"platform-b"} {
		if _, ok := e.cartGet(t, "flower-shop", c.ID, "X-Test-Client", who); ok {
			t.Fatalf("%q reads platform-a's cart", who)
		}
		res, b := e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(line("tulip_bunch", 9)), "X-Test-Client", who)
		catEnvelopeErr(t, res, b, "not_found", "$.id")
		res, b = e.req("POST", "/s/flower-shop/carts/"+c.ID+"/cancel", nil, "X-Test-Client", who)
		catEnvelopeErr(t, res, b, "not_found", "$.id")
		n := cartSessions(t, st, "checkout")
		res, b = e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": c.ID}, "X-Test-Client", who)
		catEnvelopeErr(t, res, b, "not_found", "$.cart_id")
		if cartSessions(t, st, "checkout") != n {
			t.Fatal("a refused conversion created a checkout")
		}
	}
	// platform-a's cart is untouched.
	g, ok := e.cartGet(t, "flower-shop", c.ID)
	if !ok || g.LineItems[0].Quantity != 2 {
		t.Fatalf("%+v", g)
	}
	// A bad credential is a 401, not a lookup.
	res, b := e.req("GET", "/s/flower-shop/carts/"+c.ID, nil, "X-Test-Client", "bad")
	wantStatus(t, res, b, http.StatusUnauthorized)
}

// TestCartToCheckout: create checkout with cart_id copies the cart's
// lines.
func TestCartToCheckout(t *testing.T) {
	t.Parallel()
	e, st := cartEnv(t, nil)
	cart := e.createCart("flower-shop", lines(line("bouquet_roses", 2), line("tulip_bunch", 1)))
	co := e.createCheckout("flower-shop", map[string]any{"cart_id": cart.ID})
	if co.ID == cart.ID || !strings.HasPrefix(co.ID, "chk_") || co.Currency != "EUR" || len(co.LineItems) != 2 {
		t.Fatalf("%+v", co)
	}
	for i, l := range co.LineItems {
		if l.Item != cart.LineItems[i].Item || l.Quantity != cart.LineItems[i].Quantity {
			t.Fatalf("line %d: %+v, cart %+v", i, l, cart.LineItems[i])
		}
	}
	checkTotals(t, co.Totals)
	if cartTotal(t, co.Totals, ucp.TotalSubtotal) != 8900 {
		t.Fatalf("%+v", co.Totals)
	}
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil)
	wantStatus(t, res, b, http.StatusOK)
	// The cart lives on while the checkout runs.
	if _, ok := e.cartGet(t, "flower-shop", cart.ID); !ok {
		t.Fatal("cart gone after conversion")
	}
	// Unknown, canceled and other stores' carts are not found; nothing is
	// created.
	other := e.createCart("energy-sport", lines(line("trx-blk-9", 1)))
	canceled := e.createCart("flower-shop", lines(line("tulip_bunch", 1)))
	res, b = e.req("POST", "/s/flower-shop/carts/"+canceled.ID+"/cancel", nil)
	wantStatus(t, res, b, http.StatusOK)
	n := cartSessions(t, st, "checkout")
	for _, id := range []string{"cart_nope", canceled.ID, other.ID} {
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": id})
		env := catEnvelopeErr(t, res, b, "not_found", "$.cart_id")
		if env.Messages[0].Severity != ucp.SeverityUnrecoverable {
			t.Fatalf("%s", b)
		}
	}
	if got := cartSessions(t, st, "checkout"); got != n {
		t.Fatalf("refused conversions created %d checkouts", got-n)
	}
}

// TestCartToCheckoutSpec: cart.md's conversion rules the store does not
// follow yet.
func TestCartToCheckoutSpec(t *testing.T) {
	t.Parallel()
	e, st := cartEnv(t, nil)
	body := lines(line("bouquet_roses", 2))
	body["buyer"] = map[string]any{"email": "ada@example.com"}
	body["context"] = map[string]any{"address_country": "FR"}
	cart := e.createCart("flower-shop", body)
	t.Run("empty line_items with cart_id", func(t *testing.T) {
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": cart.ID, "line_items": []any{}})
		wantStatus(t, res, b, http.StatusCreated)
		if co := decode[ucp.Checkout](t, b); len(co.LineItems) != 1 || co.LineItems[0].Item.ID != "bouquet_roses" {
			t.Fatalf("%s", b)
		}
	})
	t.Run("cart contents win over the payload", func(t *testing.T) {
		cart := e.createCart("flower-shop", body)
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": cart.ID, "line_items": []any{line("tulip_bunch", 5)}})
		wantStatus(t, res, b, http.StatusCreated)
		if co := decode[ucp.Checkout](t, b); len(co.LineItems) != 1 || co.LineItems[0].Item.ID != "bouquet_roses" || co.LineItems[0].Quantity != 2 {
			t.Fatalf("%s", b)
		}
	})
	t.Run("buyer and context carried over", func(t *testing.T) {
		cart := e.createCart("flower-shop", body)
		co := e.createCheckout("flower-shop", map[string]any{"cart_id": cart.ID})
		if co.Buyer == nil || co.Buyer.Email != "ada@example.com" || co.Context == nil || co.Context.AddressCountry != "FR" {
			t.Fatalf("buyer %+v context %+v", co.Buyer, co.Context)
		}
	})
	t.Run("one checkout per cart", func(t *testing.T) {
		c2 := e.createCart("flower-shop", lines(line("tulip_bunch", 1)))
		first := e.createCheckout("flower-shop", map[string]any{"cart_id": c2.ID})
		n := cartSessions(t, st, "checkout")
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", map[string]any{"cart_id": c2.ID})
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		if again := decode[ucp.Checkout](t, b); again.ID != first.ID || cartSessions(t, st, "checkout") != n {
			t.Fatalf("second conversion made checkout %s (first %s)", again.ID, first.ID)
		}
	})
}

// TestCartRefusals: bad lines create nothing: the error envelope for
// items the store does not sell, a 400 naming the field for lines the
// request schema refuses (and for JSON of the wrong type).
func TestCartRefusals(t *testing.T) {
	t.Parallel()
	e, st := cartEnv(t, nil)
	for _, tc := range []struct {
		name, body, code, path string
	}{
		{"unknown item", `{"line_items":[{"item":{"id":"nope"},"quantity":1}]}`, "item_unavailable", "$.line_items[0].item.id"},
		{"another store's item", `{"line_items":[{"item":{"id":"trx-blk-9"},"quantity":1}]}`, "item_unavailable", "$.line_items[0].item.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := e.req("POST", "/s/flower-shop/carts", tc.body)
			env := catEnvelopeErr(t, res, b, tc.code, tc.path)
			if env.Messages[0].Severity != ucp.SeverityUnrecoverable {
				t.Fatalf("%s", b)
			}
		})
	}
	for _, tc := range []struct{ name, body, path string }{
		{"zero quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":0}]}`, "$.line_items[0].quantity"},
		{"negative quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":-1}]}`, "$.line_items[0].quantity"},
		{"huge quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1},{"item":{"id":"tulip_bunch"},"quantity":10001}]}`, "$.line_items[1].quantity"},
		{"fractional quantity", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1.5}]}`, "$.line_items[0].quantity"},
		{"missing quantity", `{"line_items":[{"item":{"id":"tulip_bunch"}}]}`, "$.line_items[0].quantity"},
		{"no item id", `{"line_items":[{"item":{},"quantity":1}]}`, "$.line_items[0].item.id"},
		{"no lines", `{"line_items":[]}`, "$.line_items"},
		{"no line_items", `{}`, "$.line_items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := e.req("POST", "/s/flower-shop/carts", tc.body)
			wantBadField(t, res, b, tc.path)
		})
	}
	for _, body := range []string{
		`{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":"abc"}]}`,
		`{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":true}]}`,
		`{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":[1]}]}`,
		`{"line_items":[{"item":"tulip_bunch","quantity":1}]}`,
		`{"line_items":{"item":{"id":"tulip_bunch"},"quantity":1}}`,
		`{"line_items":`,
		`[]`,
	} {
		res, b := e.req("POST", "/s/flower-shop/carts", body)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, res.StatusCode, b)
			continue
		}
		catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	}
	res, b := e.req("POST", "/s/flower-shop/carts", nil)
	catProtoErr(t, res, b, http.StatusBadRequest, "invalid_request")
	res, b = e.req("POST", "/s/flower-shop/carts", `{}`, "Content-Type", "text/plain")
	wantStatus(t, res, b, http.StatusUnsupportedMediaType)
	if n := cartSessions(t, st, "cart"); n != 0 {
		t.Fatalf("refused requests created %d carts", n)
	}

	// 100 lines are fine; 101 are refused.
	var ls []map[string]any
	for range 100 {
		ls = append(ls, line("sunflowers", 1))
	}
	c := e.createCart("flower-shop", lines(ls...))
	if len(c.LineItems) != 100 || cartTotal(t, c.Totals, ucp.TotalTotal) != 100*2200 {
		t.Fatalf("%d lines", len(c.LineItems))
	}
	res, b = e.req("POST", "/s/flower-shop/carts", lines(append(ls, line("sunflowers", 1))...))
	wantBadField(t, res, b, "$.line_items")
	res, b = e.req("PUT", "/s/flower-shop/carts/"+c.ID, lines(append(ls, line("sunflowers", 1))...))
	wantBadField(t, res, b, "$.line_items")
	// 10000 units on one line are fine.
	c2 := e.createCart("flower-shop", lines(line("sunflowers", 10000)))
	if cartTotal(t, c2.Totals, ucp.TotalTotal) != 10000*2200 {
		t.Fatalf("%+v", c2.Totals)
	}
	if n := cartSessions(t, st, "cart"); n != 2 {
		t.Fatalf("%d carts, want 2", n)
	}
	t.Run("quantity as a JSON string", func(t *testing.T) {
		res, b := e.req("POST", "/s/flower-shop/carts", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":"5"}]}`)
		if res.StatusCode == http.StatusCreated {
			t.Fatalf("string quantity accepted: %s", b)
		}
	})
}

// TestCartResponseOnlyFieldsIgnored: ids, status, currency, totals and
// item prices or titles a platform sends are ignored, not refused.
func TestCartResponseOnlyFieldsIgnored(t *testing.T) {
	t.Parallel()
	e, _ := cartEnv(t, nil)
	bogus := map[string]any{
		"id": "cart_mine", "status": "completed", "currency": "USD", "expires_at": "2000-01-01T00:00:00Z",
		"ucp":          map[string]any{"version": "1999-01-01"},
		"totals":       []any{map[string]any{"type": "total", "amount": 1}},
		"messages":     []any{map[string]any{"type": "error", "code": "x", "content": "x"}},
		"continue_url": "https://evil.example/",
		"line_items": []any{map[string]any{"id": "li_x", "item": map[string]any{"id": "bouquet_roses", "price": 1, "title": "cheap"},
			"quantity": 2, "totals": []any{map[string]any{"type": "total", "amount": 2}}}},
		"unknown": map[string]any{"x": 1},
	}
	c := e.createCart("flower-shop", bogus)
	if c.ID == "cart_mine" || c.Currency != "EUR" || c.ExpiresAt == "2000-01-01T00:00:00Z" || c.UCP.Version != ucp.Version ||
		len(c.Messages) != 0 || c.ContinueURL == "https://evil.example/" {
		t.Fatalf("%+v", c)
	}
	l := c.LineItems[0]
	if l.ID == "li_x" || l.Item.Price != 3500 || l.Item.Title != "Bouquet of Red Roses" || l.Totals[0].Amount != 7000 {
		t.Fatalf("line %+v", l)
	}
	checkTotals(t, c.Totals)
	if cartTotal(t, c.Totals, ucp.TotalTotal) != 7000 {
		t.Fatalf("%+v", c.Totals)
	}
	if _, ok := e.cartGet(t, "flower-shop", "cart_mine"); ok {
		t.Fatal("the platform chose the cart id")
	}
	// On update too; the path names the cart, not the body.
	other := e.createCart("flower-shop", lines(line("tulip_bunch", 1)))
	bogus["id"] = other.ID
	bogus["line_items"] = []any{map[string]any{"item": map[string]any{"id": "orchid_pot", "price": 0}, "quantity": 1}}
	res, b := e.req("PUT", "/s/flower-shop/carts/"+c.ID, bogus)
	wantStatus(t, res, b, http.StatusOK)
	u := decode[ucp.Cart](t, b)
	if u.ID != c.ID || u.LineItems[0].Item.Price != 4500 || cartTotal(t, u.Totals, ucp.TotalTotal) != 4500 || u.Currency != "EUR" {
		t.Fatalf("%s", b)
	}
	if g, _ := e.cartGet(t, "flower-shop", other.ID); g == nil || g.LineItems[0].Item.ID != "tulip_bunch" {
		t.Fatalf("body id updated another cart: %+v", g)
	}
}
