package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// pickupAt is a fulfillment member choosing pickup; dest and option may
// be empty (the store's choice).
func pickupAt(dest, option string) map[string]any {
	m := map[string]any{"type": "pickup"}
	if dest != "" {
		m["selected_destination_id"] = dest
	}
	if option != "" {
		m["groups"] = []any{map[string]any{"selected_option_id": option}}
	}
	return map[string]any{"methods": []any{m}}
}

func destIDs(m ucp.FulfillmentMethod) []string {
	var out []string
	for _, d := range m.Destinations {
		out = append(out, d.ID)
	}
	return out
}

// fulfillmentTotal is the checkout's fulfillment total entry.
func fulfillmentTotal(t *testing.T, c *ucp.Checkout) ucp.Total {
	t.Helper()
	i := slices.IndexFunc(c.Totals, func(x ucp.Total) bool { return x.Type == ucp.TotalFulfillment })
	if i < 0 {
		t.Fatalf("no fulfillment total: %+v", c.Totals)
	}
	return c.Totals[i]
}

// availableMethod is an entry of fulfillment.available_methods.
type availableMethod struct {
	Type          string   `json:"type"`
	LineItemIDs   []string `json:"line_item_ids"`
	FulfillableOn string   `json:"fulfillable_on"`
	Description   string   `json:"description"`
}

// TestPickupCheckoutREST: a pickup method's destinations are the shops
// that carry every line, as retail locations (id, name, address); one is
// selected for the platform when it is the only one, otherwise the
// platform picks (select_destination until it does); the options and
// the fulfillment total (which names the shop) follow the choice; a shop
// lacking an item is refused with what it lacks; every kyoto-tea
// checkout says which shop could hand over which lines.
func TestPickupCheckoutREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	// Tea and a bowl: only Gion has bowls, so Gion it is.
	c := e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("matcha-uji-40", 1), line("chawan-raku", 1)},
		"fulfillment": pickupAt("", "")})
	m := c.Fulfillment.Methods[0]
	if c.Status != ucp.CheckoutReadyForComplete || m.Type != "pickup" || !slices.Equal(destIDs(m), []string{"kt-gion"}) ||
		m.SelectedDestinationID != "kt-gion" || len(m.LineItemIDs) != 2 {
		t.Fatalf("pickup: %s %v %+v", c.Status, messageCodes(c.Messages), m)
	}
	d := m.Destinations[0]
	if d.Name != "Kyoto Tea House Gion" || d.Type != "business_location" || d.Address == nil || d.Address.PostalCode != "605-0074" ||
		d.Address.AddressLocality != "Kyoto" || d.StreetAddress != "" {
		t.Fatalf("a retail location is {id, name, address}: %+v", d)
	}
	g := m.Groups[0]
	if len(g.Options) != 2 || g.Options[0].ID != "in_store" || g.Options[1].ID != "express" || g.SelectedOptionID != "in_store" ||
		g.Options[1].Totals[0].Amount != 300 || g.Options[0].Description == "" {
		t.Fatalf("pickup options: %+v", g)
	}
	if ft := fulfillmentTotal(t, c); ft.Amount != 0 || ft.DisplayText != "In-store pickup at Kyoto Tea House Gion" || total(c) != 3240+5400 {
		t.Fatalf("totals: %+v", c.Totals)
	}
	checkTotals(t, c.Totals)
	var avail []availableMethod
	for _, raw := range c.Fulfillment.AvailableMethods {
		avail = append(avail, *decode[availableMethod](t, raw))
	}
	if len(avail) != 2 || avail[0].Type != "pickup" || len(avail[0].LineItemIDs) != 2 || avail[0].FulfillableOn != "now" ||
		avail[0].Description != "Every item can be picked up at Kyoto Tea House Gion." ||
		!slices.Equal(avail[1].LineItemIDs, []string{c.LineItems[0].ID}) ||
		avail[1].Description != "Uji Matcha 40g can be picked up at Kyoto Tea House Arashiyama." {
		t.Fatalf("available_methods: %+v", avail)
	}

	// Tea alone: both shops have it, so the platform chooses.
	c = e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("matcha-uji-40", 2)}, "fulfillment": pickupAt("", "")})
	m = c.Fulfillment.Methods[0]
	if c.Status != ucp.CheckoutIncomplete || !slices.Equal(destIDs(m), []string{"kt-gion", "kt-arashiyama"}) || m.SelectedDestinationID != "" ||
		!slices.Equal(messageCodes(c.Messages), []string{"select_destination"}) || c.Messages[0].Path != "$.fulfillment.methods[0].selected_destination_id" ||
		!strings.Contains(c.Messages[0].Content, "kt-arashiyama (Kyoto Tea House Arashiyama)") || c.Messages[0].Severity != ucp.SeverityRecoverable {
		t.Fatalf("two shops: %s %+v %+v", c.Status, c.Messages, m)
	}
	if slices.ContainsFunc(c.Totals, func(x ucp.Total) bool { return x.Type == ucp.TotalFulfillment }) {
		t.Fatalf("a fulfillment total before a shop is chosen: %+v", c.Totals)
	}
	put := func(body map[string]any) *ucp.Checkout {
		t.Helper()
		res, b := e.req("PUT", "/s/kyoto-tea/checkout-sessions/"+c.ID, body)
		wantStatus(t, res, b, http.StatusOK)
		return decode[ucp.Checkout](t, b)
	}
	u := put(map[string]any{"line_items": []any{line("matcha-uji-40", 2)}, "fulfillment": pickupAt("kt-arashiyama", "express")})
	if ft := fulfillmentTotal(t, u); u.Status != ucp.CheckoutReadyForComplete || ft.Amount != 300 ||
		ft.DisplayText != "Express in-store pickup at Kyoto Tea House Arashiyama" || total(u) != 2*3240+300 ||
		u.Fulfillment.Methods[0].SelectedDestinationID != "kt-arashiyama" || u.Fulfillment.Methods[0].Groups[0].SelectedOptionID != "express" {
		t.Fatalf("Arashiyama, express: %s %v %+v %+v", u.Status, messageCodes(u.Messages), u.Totals, u.Fulfillment)
	}
	checkTotals(t, u.Totals)

	for _, r := range []struct {
		name string
		body map[string]any
		code string
		says string
	}{
		{"a shop without the bowl", map[string]any{"line_items": []any{line("matcha-uji-40", 1), line("chawan-raku", 1)}, "fulfillment": pickupAt("kt-arashiyama", "")},
			"pickup_unavailable", "Kyoto Tea House Arashiyama does not carry Raku Tea Bowl; pick up at kt-gion"},
		{"no such shop", map[string]any{"line_items": []any{line("matcha-uji-40", 1)}, "fulfillment": pickupAt("kt-osaka", "")},
			"invalid_destination", "kt-osaka"},
		{"no such option", map[string]any{"line_items": []any{line("matcha-uji-40", 1)}, "fulfillment": pickupAt("kt-gion", "curbside")},
			"invalid_option", "curbside"},
	} {
		u := put(r.body)
		if u.Status != ucp.CheckoutIncomplete || !slices.Equal(messageCodes(u.Messages), []string{r.code}) || !strings.Contains(u.Messages[0].Content, r.says) {
			t.Errorf("%s: %s %+v", r.name, u.Status, u.Messages)
		}
	}

	// The Artos SDK's flat selection: a shop's id picks up there.
	a := e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("sencha-100", 1)},
		"fulfillment": map[string]any{"selected_destination_id": "kt-gion", "selected_option_id": "express"}})
	if m := a.Fulfillment.Methods[0]; m.Type != "pickup" || m.SelectedDestinationID != "kt-gion" || fulfillmentTotal(t, a).Amount != 300 {
		t.Fatalf("flat selection: %+v", a.Fulfillment)
	}
	// Shipping is still shipping, with the pickup hints alongside.
	s := e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("sencha-100", 1)}, "fulfillment": map[string]any{"methods": []any{
		map[string]any{"type": "shipping", "destinations": []any{map[string]any{"street_address": "1-1 Marunouchi", "address_locality": "Tokyo", "postal_code": "100-0005", "address_country": "JP"}}}}}})
	if m := s.Fulfillment.Methods[0]; m.Type != "shipping" || fulfillmentTotal(t, s).Amount != 800 || len(s.Fulfillment.AvailableMethods) != 2 ||
		m.Destinations[0].PostalCode != "100-0005" {
		t.Fatalf("shipping at kyoto-tea: %+v %+v", s.Fulfillment, s.Totals)
	}
	// No fulfillment asked: the hints alone.
	n := e.createCheckout("kyoto-tea", lines(line("sencha-100", 1)))
	if n.Fulfillment == nil || len(n.Fulfillment.Methods) != 0 || len(n.Fulfillment.AvailableMethods) != 2 {
		t.Fatalf("no method: %+v", n.Fulfillment)
	}
	// A store without shops has no pickup; an unknown method type is no method.
	for slug, body := range map[string]map[string]any{
		"flower-shop": {"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": pickupAt("", "")},
		"kyoto-tea":   {"line_items": []any{line("sencha-100", 1)}, "fulfillment": map[string]any{"methods": []any{map[string]any{"type": "drone"}}}},
	} {
		res, b := e.req("POST", "/s/"+slug+"/checkout-sessions", body)
		wantStatus(t, res, b, http.StatusOK)
		if env := decode[ucp.ErrorResponse](t, b); env.UCP.Status != ucp.StatusError || len(env.Messages) != 1 || env.Messages[0].Code != "invalid_request" ||
			env.Messages[0].Path != "$.fulfillment.methods[0].type" {
			t.Errorf("%s: %s", slug, b)
		}
	}
	if f := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping}).Fulfillment; len(f.AvailableMethods) != 0 {
		t.Fatalf("flower-shop has no shops to pick up from: %+v", f)
	}
}

// unsignedKyoto makes kyoto-tea complete without the signed tier, so the
// tests can place its orders with the platform key.
func unsignedKyoto(t *testing.T, e *env) {
	t.Helper()
	for _, sh := range shop.DemoShops() {
		if sh.Slug == "kyoto-tea" {
			sh.Config.RequireSignedCompletion = false
			if err := shop.PutSeedShop(context.Background(), e.store, sh, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// orderExpectation reads an order's one fulfillment expectation.
func orderExpectation(t *testing.T, b []byte) (ucp.Expectation, *ucp.Order) {
	t.Helper()
	o := decode[ucp.Order](t, b)
	if len(o.Fulfillment.Expectations) != 1 || o.Fulfillment.Expectations[0].Destination == nil {
		t.Fatalf("order: %s", b)
	}
	return o.Fulfillment.Expectations[0], o
}

// TestPickupOrderREST: the order of a pickup checkout records the shop:
// an expectation of method pickup whose destination is the shop's
// address under its id, described with its name, and the totals with
// the named pickup line.
func TestPickupOrderREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	unsignedKyoto(t, e)
	c := e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("sencha-100", 3)}, "fulfillment": pickupAt("kt-arashiyama", "express")})
	res, b := e.req("POST", "/s/kyoto-tea/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusOK)
	done := decode[ucp.Checkout](t, b)
	if done.Status != ucp.CheckoutCompleted || done.Order == nil {
		t.Fatalf("complete: %s", b)
	}
	res, b = e.req("GET", "/s/kyoto-tea/orders/"+done.Order.ID, nil)
	wantStatus(t, res, b, http.StatusOK)
	x, o := orderExpectation(t, b)
	if x.MethodType != "pickup" || x.Destination.ID != "kt-arashiyama" || x.Destination.PostalCode != "616-8385" || x.Destination.AddressCountry != "JP" ||
		x.Description != "Express in-store pickup at Kyoto Tea House Arashiyama" || len(x.LineItems) != 1 || x.LineItems[0].Quantity != 3 {
		t.Fatalf("expectation: %+v %+v", x, x.Destination)
	}
	if i := slices.IndexFunc(o.Totals, func(t ucp.Total) bool { return t.Type == ucp.TotalFulfillment }); i < 0 ||
		o.Totals[i].DisplayText != "Express in-store pickup at Kyoto Tea House Arashiyama" || o.Totals[i].Amount != 300 {
		t.Fatalf("order totals: %+v", o.Totals)
	}
	checkTotals(t, o.Totals)
}

// TestPickupMCP: the same through the store's MCP tools, with the Artos
// SDK's flat selection: create, complete, read the order.
func TestPickupMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	unsignedKyoto(t, e)
	b := e.mcpCall("kyoto-tea", "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("chawan-raku", 1)},
		"fulfillment": map[string]any{"selected_destination_id": "kt-gion"}}))
	c := decode[ucp.Checkout](t, b)
	if c.Status != ucp.CheckoutReadyForComplete || c.Fulfillment.Methods[0].Type != "pickup" || fulfillmentTotal(t, c).DisplayText != "In-store pickup at Kyoto Tea House Gion" {
		t.Fatalf("create_checkout: %s", b)
	}
	b = e.mcpCall("kyoto-tea", "complete_checkout", e.mcpArgs("id", c.ID, "checkout", cardPayment("success_token")))
	done := decode[ucp.Checkout](t, b)
	if done.Status != ucp.CheckoutCompleted || done.Order == nil {
		t.Fatalf("complete_checkout: %s", b)
	}
	b = e.mcpCall("kyoto-tea", "get_order", e.mcpArgs("id", done.Order.ID))
	if x, _ := orderExpectation(t, b); x.MethodType != "pickup" || x.Destination.ID != "kt-gion" || x.Destination.PostalCode != "605-0074" ||
		x.Description != "In-store pickup at Kyoto Tea House Gion" {
		t.Fatalf("get_order: %+v", x)
	}
}

// TestPickupRepricedAtCompletion: completion prices the checkout again,
// so a shop that stopped carrying an item meanwhile refuses the pickup
// and nothing is placed.
func TestPickupRepricedAtCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	unsignedKyoto(t, e)
	c := e.createCheckout("kyoto-tea", map[string]any{"line_items": []any{line("chawan-raku", 1)}, "fulfillment": pickupAt("kt-gion", "")})
	for _, sh := range shop.DemoShops() {
		if sh.Slug == "kyoto-tea" {
			sh.Config.RequireSignedCompletion = false
			sh.Config.Locations[0].Items = []string{"matcha-uji-40"} // Gion sold its last bowl elsewhere
			if err := shop.PutSeedShop(context.Background(), e.store, sh, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, b := e.req("POST", "/s/kyoto-tea/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	if res.StatusCode != http.StatusOK || strings.Contains(string(b), `"order"`) || !strings.Contains(string(b), "pickup_unavailable") {
		t.Fatalf("completion after the shop stopped carrying the bowl: %d %s", res.StatusCode, b)
	}
}

// TestSeedAddsLocations: a data directory from before locations gets
// kyoto-tea's shops and pickup options on the next start, and nothing
// else of its settings changes; a store that has a locations member,
// even empty, is left alone.
func TestSeedAddsLocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlstoretest.SQLite(t)
	old := shop.DemoShops()
	for i := range old {
		old[i].Config.Locations, old[i].Config.Pickup = nil, nil
	}
	if err := shop.Seed(ctx, st, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The merchant changed a setting meanwhile.
	if err := st.UpdateShopConfig(ctx, "kyoto-tea", func(raw json.RawMessage) (json.RawMessage, error) {
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		doc["webhooks"] = map[string]any{"order_events_url": "https://merchant.example/orders"}
		return json.Marshal(doc)
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and again: nothing more changes
		if err := shop.Seed(ctx, st, shop.DemoShops(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := st.Shop(ctx, "kyoto-tea")
	if err != nil {
		t.Fatal(err)
	}
	var got shop.Settings
	if err := json.Unmarshal(sh.Config, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Locations) != 2 || got.Locations[0].ID != "kt-gion" || len(got.Locations[0].Items) != 3 || len(got.Pickup) != 2 ||
		got.Webhooks.OrderEventsURL != "https://merchant.example/orders" || !got.RequireSignedCompletion {
		t.Fatalf("kyoto-tea after the seed: %s", sh.Config)
	}

	// A store whose settings hold locations, none: the merchant's.
	st2 := sqlstoretest.SQLite(t)
	if err := shop.Seed(ctx, st2, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	const none = `{"rails":["artos.card"],"locations":[]}`
	if err := st2.UpdateShopConfig(ctx, "kyoto-tea", func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(none), nil }); err != nil {
		t.Fatal(err)
	}
	if err := shop.Seed(ctx, st2, shop.DemoShops(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if sh, _ := st2.Shop(ctx, "kyoto-tea"); string(sh.Config) != none {
		t.Fatalf("settings with locations changed: %s", sh.Config)
	}
}

// TestSeedWidensShipTo: a data directory from before flower-shop shipped
// to the US gains it on the next start; no country is removed and other
// settings stay.
func TestSeedWidensShipTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlstoretest.SQLite(t)
	old := shop.DemoShops()
	for i := range old {
		if old[i].Slug == "flower-shop" {
			old[i].Config.ShipTo = []string{"FR", "DE", "NL", "BE", "CH"} // CH: the merchant's own addition
		}
	}
	if err := shop.Seed(ctx, st, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := shop.Seed(ctx, st, shop.DemoShops(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := st.Shop(ctx, "flower-shop")
	if err != nil {
		t.Fatal(err)
	}
	var got shop.Settings
	if err := json.Unmarshal(sh.Config, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got.ShipTo, "US") || !slices.Contains(got.ShipTo, "CH") || len(got.ShipTo) != 6 || len(got.Discounts) == 0 {
		t.Fatalf("flower-shop after the seed: %s", sh.Config)
	}
}
