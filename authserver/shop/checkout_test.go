package shop_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestCreateCheckout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 2)))
	if c.Status != ucp.CheckoutReadyForComplete || c.Currency != "EUR" || len(c.LineItems) != 1 {
		t.Fatalf("%+v", c)
	}
	l := c.LineItems[0]
	if l.Item.Price != 3500 || l.Item.Title == "" || l.Quantity != 2 || l.ID == "" {
		t.Fatalf("line %+v", l)
	}
	if len(l.Totals) != 2 || l.Totals[0].Amount != 7000 || l.Totals[1].Amount != 7000 {
		t.Fatalf("line totals %+v", l.Totals)
	}
	checkTotals(t, c.Totals)
	if c.UCP == nil || c.UCP.Version != ucp.Version || c.UCP.Status != "success" || c.UCP.PaymentHandlers["sh.artos.card"] == nil {
		t.Fatalf("envelope %+v", c.UCP)
	}
	if c.UCP.Capabilities[ucp.CapCheckout] == nil || c.UCP.Capabilities[ucp.CapCart] != nil {
		t.Fatalf("checkout responses echo checkout and its extensions only: %v", c.UCP.Capabilities)
	}
	if c.AP2 == nil || c.AP2.MerchantAuthorization == "" {
		t.Fatal("no merchant_authorization")
	}
	if !strings.HasPrefix(c.ContinueURL, e.srv.URL+"/s/flower-shop/checkout-sessions/"+c.ID+"/continue?token=") || c.ExpiresAt == "" || len(c.Links) == 0 {
		t.Fatalf("continue_url %q expires_at %q links %v", c.ContinueURL, c.ExpiresAt, c.Links)
	}
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[ucp.Checkout](t, b); got.ID != c.ID || got.Totals[len(got.Totals)-1].Amount != c.Totals[len(c.Totals)-1].Amount {
		t.Fatalf("get %+v", got)
	}
}

// TestCreateCheckoutRefusals: well-formed requests the store cannot
// turn into a checkout create nothing and get the error envelope (HTTP
// 200, ucp.status error) with a JSONPath; requests the UCP request schema
// refuses (malformed JSON, wrong types, no lines, bad quantities) are a
// 400 invalid_request (TestInvalidCreateBodies covers them all).
func TestCreateCheckoutRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, body, code, path string
	}{
		{"unknown item", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1},{"item":{"id":"nope"},"quantity":1}]}`, "item_unavailable", "$.line_items[1].item.id"},
		{"item of another store", `{"line_items":[{"item":{"id":"trx-blk-9"},"quantity":1}]}`, "item_unavailable", "$.line_items[0].item.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := e.req("POST", "/s/flower-shop/checkout-sessions", tc.body)
			wantStatus(t, res, b, http.StatusOK)
			env := decode[ucp.ErrorResponse](t, b)
			if env.UCP.Status != "error" || len(env.Messages) != 1 || env.Messages[0].Code != tc.code ||
				env.Messages[0].Path != tc.path || env.Messages[0].Severity != ucp.SeverityUnrecoverable {
				t.Fatalf("%s", b)
			}
		})
	}
	for _, body := range []string{`{"line_items":`, `[1,2]`, `{"line_items":[{"item":{"id":"x"},"quantity":"two"}]}`, `{"line_items":"x"}`,
		`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":0}]}`, `{"line_items":[]}`, `{"line_items":[{"item":{},"quantity":1}]}`} {
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions", body)
		wantStatus(t, res, b, http.StatusBadRequest)
		if p := decode[map[string]string](t, b); (*p)["code"] != "invalid_request" {
			t.Fatalf("%s", b)
		}
	}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", `{}`, "Content-Type", "text/plain")
	wantStatus(t, res, b, http.StatusUnsupportedMediaType)
	res, b = e.req("POST", "/s/nowhere/checkout-sessions", lines(line("x", 1)))
	wantStatus(t, res, b, http.StatusNotFound)
}

// TestResponseOnlyFieldsIgnored: prices, totals, status and ids a platform
// sends are ignored; the catalog decides.
func TestResponseOnlyFieldsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", map[string]any{
		"id": "chk_mine", "status": "completed", "currency": "USD",
		"totals":     []any{map[string]any{"type": "total", "amount": 1}},
		"line_items": []any{map[string]any{"id": "li_x", "item": map[string]any{"id": "bouquet_roses", "price": 1, "title": "cheap"}, "quantity": 1, "totals": []any{}}},
		"unknown":    map[string]any{"x": 1},
	})
	if c.ID == "chk_mine" || c.Status != ucp.CheckoutReadyForComplete || c.Currency != "EUR" || c.LineItems[0].Item.Price != 3500 ||
		c.LineItems[0].Item.Title == "cheap" || c.LineItems[0].ID == "li_x" || c.Totals[len(c.Totals)-1].Amount != 3500 {
		t.Fatalf("%+v", c)
	}
}

func TestOutOfStock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1), line("gardenias", 1)))
	if c.Status != ucp.CheckoutIncomplete || !slices.Equal(messageCodes(c.Messages), []string{"out_of_stock"}) ||
		c.Messages[0].Path != "$.line_items[1]" || c.Messages[0].Severity != ucp.SeverityRecoverable {
		t.Fatalf("%+v", c)
	}
	// orchid_pot has 7: two lines of 4 exceed it together.
	c = e.createCheckout("flower-shop", lines(line("orchid_pot", 4), line("orchid_pot", 4)))
	if c.Status != ucp.CheckoutIncomplete || len(c.Messages) != 2 || !strings.Contains(c.Messages[0].Content, "only 7") {
		t.Fatalf("%+v", c.Messages)
	}
	// Completing refuses too, and places no order.
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusOK)
	// The checkout, as it prices (incomplete), with ucp.status success:
	// a body carrying the checkout is the payload.
	got := decode[ucp.Checkout](t, b)
	if got.UCP.Status != "success" || got.Status != ucp.CheckoutIncomplete || got.Order != nil || got.Payment != nil {
		t.Fatalf("%s", b)
	}
}

// TestUpdateIsFullReplace: members not resent are dropped; lines keep
// their ids; totals are recomputed.
func TestUpdateIsFullReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := lines(line("bouquet_roses", 1), line("tulip_bunch", 2))
	body["buyer"] = map[string]any{"email": "ada@example.com"}
	c := e.createCheckout("flower-shop", body)
	if c.Buyer == nil || c.Buyer.Email != "ada@example.com" {
		t.Fatalf("%+v", c.Buyer)
	}
	tulipID := c.LineItems[1].ID
	res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+c.ID, lines(line("tulip_bunch", 3)))
	wantStatus(t, res, b, http.StatusOK)
	u := decode[ucp.Checkout](t, b)
	if u.Buyer != nil || len(u.LineItems) != 1 || u.LineItems[0].ID != tulipID || u.LineItems[0].Quantity != 3 {
		t.Fatalf("%+v", u)
	}
	checkTotals(t, u.Totals)
	if u.Totals[len(u.Totals)-1].Amount != 3*1900 {
		t.Fatalf("%+v", u.Totals)
	}
	// A refused update changes nothing.
	res, b = e.req("PUT", "/s/flower-shop/checkout-sessions/"+c.ID, lines(line("nope", 1)))
	wantStatus(t, res, b, http.StatusOK)
	if env := decode[ucp.ErrorResponse](t, b); env.UCP.Status != "error" {
		t.Fatalf("%s", b)
	}
	res, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if g := decode[ucp.Checkout](t, b); g.LineItems[0].Quantity != 3 {
		t.Fatalf("refused update changed the checkout: %s", b)
	}
}

// TestFulfillmentDiscountTax: the sports store ships to US/CA only, needs
// a destination, charges shipping and tax, and applies codes.
func TestFulfillmentDiscountTax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("energy-sport", lines(line("trx-blk-9", 1)))
	if c.Status != ucp.CheckoutIncomplete || !slices.Contains(messageCodes(c.Messages), "field_required") {
		t.Fatalf("no destination must block: %+v", c.Messages)
	}
	body := lines(line("trx-blk-9", 1))
	body["fulfillment"] = usShipping
	body["discounts"] = map[string]any{"codes": []string{"run10", "nope", "RUN10"}}
	body["payment"] = map[string]any{"instruments": []any{map[string]any{"handler_id": "artos.card", "type": "card", "selected": true}}}
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, body)
	wantStatus(t, res, b, http.StatusOK)
	u := decode[ucp.Checkout](t, b)
	if u.Status != ucp.CheckoutReadyForComplete {
		t.Fatalf("%s", b)
	}
	checkTotals(t, u.Totals)
	// 12900 - 1290 (10%) = 11610 >= 7500: free standard shipping; tax 8.25%
	// of 11610 = 957.825 -> 958.
	want := []ucp.Total{{Type: "subtotal", Amount: 12900}, {Type: "discount", DisplayText: "10% off running gear", Amount: -1290},
		{Type: "fulfillment", DisplayText: "Shipping", Amount: 0}, {Type: "tax", DisplayText: "Sales tax", Amount: 958}, {Type: "total", Amount: 12568}}
	if !reflect.DeepEqual(u.Totals, want) {
		t.Fatalf("totals %+v, want %+v", u.Totals, want)
	}
	if got := messageCodes(u.Messages); !slices.Equal(got, []string{"discount_code_invalid", "discount_code_already_applied"}) {
		t.Fatalf("messages %v", got)
	}
	g := u.Fulfillment.Methods[0].Groups[0]
	if g.SelectedOptionID != "standard" || len(g.Options) != 2 || u.Fulfillment.Methods[0].SelectedDestinationID == "" {
		t.Fatalf("%+v", u.Fulfillment)
	}
	// Express, chosen explicitly, is charged.
	f := map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": usShipping["methods"].([]any)[0].(map[string]any)["destinations"],
		"groups": []any{map[string]any{"selected_option_id": "express"}}}}}
	body["fulfillment"] = f
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, body)
	u = decode[ucp.Checkout](t, b)
	if i := slices.IndexFunc(u.Totals, func(t ucp.Total) bool { return t.Type == "fulfillment" }); i < 0 || u.Totals[i].Amount != 1999 {
		t.Fatalf("%+v", u.Totals)
	}
	checkTotals(t, u.Totals)
	// A destination outside US/CA is undeliverable.
	fr := lines(line("trx-blk-9", 1))
	fr["fulfillment"] = frShipping
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, fr)
	u = decode[ucp.Checkout](t, b)
	if u.Status != ucp.CheckoutIncomplete || !slices.Contains(messageCodes(u.Messages), "address_undeliverable") {
		t.Fatalf("%s", b)
	}
	// Artos' flat shipping_address is read too.
	art := lines(line("trx-blk-9", 1))
	art["shipping_address"] = usShipping["methods"].([]any)[0].(map[string]any)["destinations"].([]any)[0]
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, art)
	u = decode[ucp.Checkout](t, b)
	if slices.Contains(messageCodes(u.Messages), "field_required") || u.Fulfillment == nil {
		t.Fatalf("%s", b)
	}
	// ...including the SDK README's {country, postal_code}.
	art["shipping_address"] = map[string]any{"country": "CA", "postal_code": "H2X 1Y4"}
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, art)
	u = decode[ucp.Checkout](t, b)
	if len(u.Messages) != 1 || u.Messages[0].Code != "payment_selection_required" || u.Fulfillment.Methods[0].Destinations[0].AddressCountry != "CA" {
		t.Fatalf("%s", b)
	}
}

// TestCompleteCard covers the sandbox card tokens.
func TestCompleteCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	newCheckout := func() *ucp.Checkout { return e.createCheckout("flower-shop", lines(line("bouquet_roses", 1))) }

	t.Run("success", func(t *testing.T) {
		c := newCheckout()
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
		wantStatus(t, res, b, http.StatusOK)
		done := decode[ucp.Checkout](t, b)
		if done.Status != ucp.CheckoutCompleted || done.Order == nil || done.ContinueURL != "" || done.UCP.Status != "success" {
			t.Fatalf("%s", b)
		}
		if strings.Contains(string(b), `"credential"`) {
			t.Fatal("credential echoed")
		}
		res, b = e.req("GET", "/s/flower-shop/orders/"+done.Order.ID, nil)
		wantStatus(t, res, b, http.StatusOK)
		o := decode[ucp.Order](t, b)
		if o.CheckoutID != c.ID || o.PermalinkURL != done.Order.PermalinkURL || len(o.LineItems) != 1 ||
			o.LineItems[0].Status != "processing" || o.LineItems[0].Quantity.Total != 1 || o.UCP.Capabilities[ucp.CapOrder] == nil {
			t.Fatalf("%s", b)
		}
		checkTotals(t, o.Totals)
		row, err := e.store.Order(t.Context(), "flower-shop", o.ID)
		if err != nil || row.ClientID != "platform-a" || row.BuyerType != "agent" {
			t.Fatalf("%+v %v", row, err)
		}
		// Completed is immutable.
		for _, p := range []struct{ method, path string }{{"POST", "/complete"}, {"POST", "/cancel"}, {"PUT", ""}} {
			res, b := e.req(p.method, "/s/flower-shop/checkout-sessions/"+c.ID+p.path, lines(line("bouquet_roses", 1)))
			wantStatus(t, res, b, http.StatusConflict)
			if env := decode[ucp.ErrorResponse](t, b); env.Messages[0].Code != "checkout_completed" {
				t.Fatalf("%s", b)
			}
		}
	})
	t.Run("decline", func(t *testing.T) {
		c := newCheckout()
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("fail_token"))
		wantStatus(t, res, b, http.StatusOK)
		// A business outcome: the checkout (ucp.status success), its
		// status unchanged, the error among its messages, the card the
		// request named not echoed as if stored.
		got := decode[ucp.Checkout](t, b)
		if got.UCP.Status != "success" || got.ID != c.ID || got.Status != ucp.CheckoutReadyForComplete || got.Order != nil ||
			!slices.Contains(messageCodes(got.Messages), "payment_failed") || got.Payment != nil {
			t.Fatalf("%s", b)
		}
		res, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
		if g := decode[ucp.Checkout](t, b); g.Status != ucp.CheckoutReadyForComplete || len(g.Messages) != 0 {
			t.Fatalf("a decline must change nothing: %s", b)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		c := newCheckout()
		_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("tok_made_up"))
		if got := decode[ucp.Checkout](t, b); got.Order != nil || !slices.Contains(messageCodes(got.Messages), "payment_failed") {
			t.Fatalf("%s", b)
		}
	})
	t.Run("unknown handler", func(t *testing.T) {
		c := newCheckout()
		body := cardPayment("success_token")
		body["payment"].(map[string]any)["instruments"].([]any)[0].(map[string]any)["handler_id"] = "sh.artos.card"
		_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", body)
		if got := decode[ucp.Checkout](t, b); got.Order != nil || !slices.Contains(messageCodes(got.Messages), "payment_handler_invalid") {
			t.Fatalf("%s", b)
		}
	})
	t.Run("3ds escalation then hosted payment", func(t *testing.T) {
		c := newCheckout()
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("escalate_token"))
		wantStatus(t, res, b, http.StatusOK)
		got := decode[ucp.Checkout](t, b)
		if got.Status != ucp.CheckoutRequiresEscalation || got.ContinueURL == "" || !slices.ContainsFunc(got.Messages, func(m ucp.Message) bool {
			return m.Code == "requires_3ds" && m.Severity == ucp.SeverityRequiresBuyerInput
		}) {
			t.Fatalf("%s", b)
		}
		// The buyer pays on the hosted page; the order is a human's.
		page, err := e.srv.Client().Get(got.ContinueURL)
		if err != nil || page.StatusCode != 200 {
			t.Fatalf("%v %v", page, err)
		}
		page.Body.Close()
		u, _ := url.Parse(got.ContinueURL)
		bad := *u
		bad.RawQuery = "token=wrong"
		if r, _ := e.srv.Client().PostForm(bad.String(), url.Values{"token": {"wrong"}}); r.StatusCode != 404 {
			t.Fatalf("wrong token: %d", r.StatusCode)
		}
		e.payOnHostedPage(got.ContinueURL)
		_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
		done := decode[ucp.Checkout](t, b)
		if done.Status != ucp.CheckoutCompleted || done.Order == nil {
			t.Fatalf("%s", b)
		}
		row, err := e.store.Order(t.Context(), "flower-shop", done.Order.ID)
		if err != nil || row.BuyerType != "human" || row.Owner != "platform:platform-a" {
			t.Fatalf("%+v %v", row, err)
		}
	})
	t.Run("no credential hands off to the buyer", func(t *testing.T) {
		c := newCheckout()
		_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete",
			map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{"handler_id": "artos.card", "selected": true}}}})
		if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutRequiresEscalation || got.ContinueURL == "" {
			t.Fatalf("%s", b)
		}
	})
	t.Run("key required", func(t *testing.T) {
		c := newCheckout()
		for _, op := range []string{"/complete", "/cancel"} {
			res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+op, cardPayment("success_token"), "Idempotency-Key", "")
			wantStatus(t, res, b, http.StatusBadRequest)
			if !strings.Contains(string(b), "idempotency_key_required") {
				t.Fatalf("%s", b)
			}
		}
		res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), "Idempotency-Key", "short")
		wantStatus(t, res, b, http.StatusBadRequest)
	})
}

// TestPaymentSelectionRequired: a multi-rail store with no rail chosen
// answers 200, ucp.status error, checkout incomplete, nothing consumed.
func TestPaymentSelectionRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := lines(line("rr2-9", 1))
	body["fulfillment"] = usShipping
	c := e.createCheckout("energy-sport", body)
	if c.Status != ucp.CheckoutIncomplete || !slices.Contains(messageCodes(c.Messages), "payment_selection_required") {
		t.Fatalf("%+v", c)
	}
	if len(c.UCP.PaymentHandlers["sh.artos.card"]) != 1 || c.UCP.PaymentHandlers["sh.artos.crypto"][0].ID != "artos.crypto" {
		t.Fatalf("%+v", c.UCP.PaymentHandlers)
	}
	res, b := e.req("POST", "/s/energy-sport/checkout-sessions/"+c.ID+"/complete", `{}`)
	wantStatus(t, res, b, http.StatusOK)
	got := decode[ucp.Checkout](t, b)
	if got.UCP.Status != "success" || got.Status != ucp.CheckoutIncomplete || got.Order != nil ||
		!slices.ContainsFunc(got.Messages, func(m ucp.Message) bool { return m.Code == "payment_selection_required" && m.Type == "error" }) {
		t.Fatalf("%s", b)
	}
	// Choosing the card rail at complete works.
	res, b = e.req("POST", "/s/energy-sport/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	if done := decode[ucp.Checkout](t, b); done.Status != ucp.CheckoutCompleted {
		t.Fatalf("%s", b)
	}
}

func TestCancelCheckout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/cancel", nil)
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutCanceled || got.ContinueURL != "" {
		t.Fatalf("%s", b)
	}
	res, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/cancel", nil)
	wantStatus(t, res, b, http.StatusConflict)
	res, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusConflict)
}

// TestCheckoutOwnership: a session is visible only to the platform that
// created it; others get not_found, as for an unknown id; anonymous
// callers are asked to authenticate.
func TestCheckoutOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	wantIdentityRequired(t, e, "GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	wantIdentityRequired(t, e, "POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	for _, who := range []string{"platform-b"} {
		res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, "X-Test-Client", who)
		wantStatus(t, res, b, http.StatusOK)
		if env := decode[ucp.ErrorResponse](t, b); env.UCP.Status != "error" || env.Messages[0].Code != "not_found" {
			t.Fatalf("%q sees another platform's checkout: %s", who, b)
		}
		res, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), "X-Test-Client", who)
		if env := decode[ucp.ErrorResponse](t, b); env.Messages[0].Code != "not_found" {
			t.Fatalf("%s", b)
		}
	}
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, "X-Test-Client", "bad")
	wantStatus(t, res, b, http.StatusUnauthorized)
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("no challenge")
	}
}

// TestOrderAccess: the placing platform, the buyer with an order-read
// scope, the store's merchant; nobody else, and never anonymous.
func TestOrderAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ada := []string{"X-Test-Client", "demo-agent", "X-Test-Platform", "platform-a", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "purchase:complete"}
	e.allow("buyer_ada", "demo-agent", 100000, 100000, "EUR")
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), ada...)
	done := decode[ucp.Checkout](t, b)
	if done.Order == nil {
		t.Fatalf("no order: %s", b)
	}
	path := "/s/flower-shop/orders/" + done.Order.ID
	for _, tc := range []struct {
		hdr []string
		ok  bool
	}{
		{[]string{"X-Test-Client", "platform-a"}, true},
		{[]string{"X-Test-Client", "platform-b"}, false},
		{[]string{"X-Test-Client", "platform-b", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "dev.ucp.shopping.order:read"}, true},
		{[]string{"X-Test-Client", "platform-b", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "orders:read"}, true},
		{[]string{"X-Test-Client", "platform-b", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "purchase:complete"}, false},
		{[]string{"X-Test-Client", "platform-b", "X-Test-Buyer", "buyer_bob", "X-Test-Scopes", "dev.ucp.shopping.order:read"}, false},
		{[]string{"X-Test-Client", "shop-bot", "X-Test-Store", "flower-shop", "X-Test-Scopes", "orders:read"}, true},
		{[]string{"X-Test-Client", "shop-bot", "X-Test-Store", "flower-shop"}, false},
		{[]string{"X-Test-Client", "tea-bot", "X-Test-Store", "kyoto-tea", "X-Test-Scopes", "orders:read"}, false},
		{[]string{"X-Test-Client", ""}, false},
	} {
		_, b := e.req("GET", path, nil, tc.hdr...)
		var v struct {
			ID  string `json:"id"`
			UCP struct {
				Status string `json:"status"`
			} `json:"ucp"`
		}
		json.Unmarshal(b, &v)
		if (v.ID == done.Order.ID) != tc.ok {
			t.Fatalf("%v: %s", tc.hdr, b)
		}
	}
}

// TestTotalsInvariantsRandomCheckouts drives random checkouts through the
// real service (random items, quantities, codes, destinations, options)
// and checks the totals invariants on every response.
func TestTotalsInvariantsRandomCheckouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	items := map[string][]string{
		"energy-sport": {"trx-blk-9", "trx-blu-10", "trx-blu-11", "rr2-9", "rr2-10", "merino-socks-m", "hydration-vest-5l", "energy-gels-12"},
		"flower-shop":  {"bouquet_roses", "tulip_bunch", "orchid_pot", "sunflowers", "gardenias"},
		"kyoto-tea":    {"matcha-uji-40", "sencha-100", "chawan-raku"},
	}
	codes := []string{"RUN10", "welcome5", "SPRING15", "nope"}
	dest := map[string]map[string]any{"energy-sport": usShipping, "flower-shop": frShipping}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 150 {
		slug := []string{"energy-sport", "flower-shop", "kyoto-tea"}[r.IntN(3)]
		var ls []map[string]any
		for range 1 + r.IntN(6) {
			ls = append(ls, line(items[slug][r.IntN(len(items[slug]))], 1+r.IntN(40)))
		}
		body := lines(ls...)
		if r.IntN(2) == 0 {
			body["discounts"] = map[string]any{"codes": []string{codes[r.IntN(len(codes))], codes[r.IntN(len(codes))]}}
		}
		if d, ok := dest[slug]; ok && r.IntN(3) > 0 {
			body["fulfillment"] = d
		}
		res, b := e.req("POST", "/s/"+slug+"/checkout-sessions", body)
		wantStatus(t, res, b, http.StatusCreated)
		c := decode[ucp.Checkout](t, b)
		checkTotals(t, c.Totals)
		var lineSum int64
		for _, l := range c.LineItems {
			checkTotals(t, l.Totals)
			if l.Totals[0].Amount != l.Item.Price*l.Quantity {
				t.Fatalf("case %d: line %+v", i, l)
			}
			lineSum += l.Totals[0].Amount
		}
		if c.Totals[0].Type != ucp.TotalSubtotal || c.Totals[0].Amount != lineSum {
			t.Fatalf("case %d: subtotal %d != lines %d", i, c.Totals[0].Amount, lineSum)
		}
	}
}

// TestCheckoutExpiry: a session past expires_at is canceled and can no
// longer complete.
func TestCheckoutExpiry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = clock; c.CheckoutTTL = time.Hour }})
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	exp, err := time.Parse(time.RFC3339, c.ExpiresAt)
	if err != nil || exp.Sub(now) < 59*time.Minute || exp.Sub(now) > time.Hour {
		t.Fatalf("expires_at %q", c.ExpiresAt)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutCanceled || got.ContinueURL != "" {
		t.Fatalf("%s", b)
	}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusConflict)
}

// TestTooManyInstruments: payment.instruments is bounded.
func TestTooManyInstruments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var insts []any
	for range 11 {
		insts = append(insts, map[string]any{"handler_id": "artos.card", "type": "card"})
	}
	body := lines(line("bouquet_roses", 1))
	body["payment"] = map[string]any{"instruments": insts}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", body)
	wantStatus(t, res, b, http.StatusBadRequest)
	if p := decode[map[string]string](t, b); (*p)["code"] != "invalid_request" || !strings.HasPrefix((*p)["content"], "$.payment.instruments ") {
		t.Fatalf("%s", b)
	}
}

// TestReviewUnofferedRailViaEleventhInstrument (security review, finding 1):
// Paying with a rail the store does not offer: payment() validates only
// the first 10 instruments, but completion picks the selected instrument
// from the raw, untruncated list.
func TestReviewUnofferedRailViaEleventhInstrument(t *testing.T) {
	t.Parallel()
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

// TestReviewCompleteNilReplyAfterLostRaces (security review, finding 4):
// completeCheckout returns a nil *Reply after four lost races
// (placeOrder's retry with attempt == 3): Do then dereferences it in
// idempotent() and panics (REST: connection dropped; hosted page: same
// in payHosted; the idempotency claim is left pending).
func TestReviewCompleteNilReplyAfterLostRaces(t *testing.T) {
	t.Parallel()
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
			Agent: e.agent.URL(), IdempotencyKey: uuid(), Principal: &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "platform-a", Platform: "platform-a"}, BuyerType: "agent"})
	}()
	if rep == nil {
		t.Fatal("Service.Do returned nil")
	}
}

// TestReviewBuyersOfOneClientShareCheckouts (security review, finding 11):
// A buyer token identifies the buyer, but sessions, orders and
// idempotency keys are scoped to the client only: two buyers of the same
// (public, installed) agent app see and replay each other's checkouts.
func TestReviewBuyersOfOneClientShareCheckouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := lines(line("bouquet_roses", 1))
	body["buyer"] = map[string]any{"email": "ada@example.com", "first_name": "Ada"}
	key := uuid()
	ada := []string{"X-Test-Client", "demo-agent", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "purchase:complete", "Idempotency-Key", key}
	bob := []string{"X-Test-Client", "demo-agent", "X-Test-Buyer", "buyer_bob", "X-Test-Scopes", "purchase:complete"}
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
