package ucpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestTypedHelpersAgainstPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	ctx := context.Background()
	// Response verification on: the typed helpers go through it too.
	c, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey,
		AgentProfile: "http://127.0.0.1:9/.well-known/ucp", VerifyResponses: ucpclient.VerifyResponsesRequired})
	if err != nil {
		t.Fatal(err)
	}
	const slug = "energy-sport"

	// Catalog, per store and global.
	sr, err := c.SearchCatalog(ctx, slug, &ucp.SearchRequest{Query: "running"})
	if err != nil || len(sr.Products) == 0 || len(sr.Products[0].Variants) == 0 {
		t.Fatalf("SearchCatalog: %+v %v", sr, err)
	}
	gr, err := c.SearchCatalog(ctx, "", &ucp.SearchRequest{Query: "running"})
	if err != nil || len(gr.Products) == 0 {
		t.Fatalf("global SearchCatalog: %+v %v", gr, err)
	}
	lr, err := c.LookupCatalog(ctx, slug, &ucp.LookupRequest{IDs: []string{"rr2-9"}})
	if err != nil || len(lr.Products) != 1 {
		t.Fatalf("LookupCatalog: %+v %v", lr, err)
	}
	pr, err := c.GetProduct(ctx, slug, &ucp.ProductRequest{ID: "road-racer-2"})
	if err != nil || pr.Product.ID != "road-racer-2" {
		t.Fatalf("GetProduct: %+v %v", pr, err)
	}
	var ue *ucpclient.UCPError
	if _, err := c.GetProduct(ctx, slug, &ucp.ProductRequest{ID: "no-such-product"}); !errors.As(err, &ue) || ue.Code() != "not_found" || ue.Op != "store.get_product" {
		t.Fatalf("GetProduct unknown: %v", err)
	}

	// Cart.
	cart, err := c.CreateCart(ctx, slug, &ucpclient.CartInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("rr2-9", 1)}})
	if err != nil || cart.ID == "" || len(cart.LineItems) != 1 || cart.Currency != "USD" {
		t.Fatalf("CreateCart: %+v %v", cart, err)
	}
	got, err := c.GetCart(ctx, slug, cart.ID)
	if err != nil || got.ID != cart.ID {
		t.Fatalf("GetCart: %+v %v", got, err)
	}
	upd, err := c.UpdateCart(ctx, slug, cart.ID, &ucpclient.CartInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("rr2-9", 2), ucpclient.Line("merino-socks-m", 1)}})
	if err != nil || len(upd.LineItems) != 2 || totalOf(upd.Totals) <= totalOf(cart.Totals) {
		t.Fatalf("UpdateCart: %+v %v", upd, err)
	}
	if _, err := c.CreateCart(ctx, slug, &ucpclient.CartInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("no-such-variant", 1)}}); !errors.As(err, &ue) {
		t.Fatalf("CreateCart unknown item: %v", err)
	}

	// Checkout from the cart, then from lines.
	chk, err := c.CreateCheckout(ctx, slug, &ucpclient.CheckoutInput{CartID: cart.ID})
	if err != nil || chk.ID == "" || len(chk.LineItems) != 2 || chk.Status == "" {
		t.Fatalf("CreateCheckout from cart: %+v %v", chk, err)
	}
	if err := ucpclient.CheckTotals(chk); err != nil {
		t.Fatal(err)
	}
	g, err := c.GetCheckout(ctx, slug, chk.ID)
	if err != nil || g.ID != chk.ID || ucpclient.GrandTotal(g) != ucpclient.GrandTotal(chk) {
		t.Fatalf("GetCheckout: %+v %v", g, err)
	}
	u, err := c.UpdateCheckout(ctx, slug, chk.ID, &ucpclient.CheckoutInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("merino-socks-m", 3)}})
	if err != nil || len(u.LineItems) != 1 || u.LineItems[0].Quantity != 3 {
		t.Fatalf("UpdateCheckout: %+v %v", u, err)
	}
	cc, err := c.CancelCheckout(ctx, slug, chk.ID)
	if err != nil || cc.Status != ucp.CheckoutCanceled {
		t.Fatalf("CancelCheckout: %+v %v", cc, err)
	}
	if _, err := c.UpdateCheckout(ctx, slug, chk.ID, &ucpclient.CheckoutInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("rr2-9", 1)}}); !errors.As(err, &ue) {
		t.Fatalf("UpdateCheckout on a canceled checkout: %v", err)
	}
	if _, err := c.GetCheckout(ctx, slug, "no-such-checkout"); !errors.As(err, &ue) || ue.Code() != "not_found" {
		t.Fatalf("GetCheckout unknown: %v", err)
	}
	if _, err := c.GetOrder(ctx, slug, "no-such-order"); !errors.As(err, &ue) {
		t.Fatalf("GetOrder unknown: %v", err)
	}

	// Cancel the cart; it can no longer be read.
	if _, err := c.CancelCart(ctx, slug, cart.ID); err != nil {
		t.Fatalf("CancelCart: %v", err)
	}
	if _, err := c.GetCart(ctx, slug, cart.ID); !errors.As(err, &ue) {
		t.Fatalf("GetCart after cancel: %v", err)
	}

	// Locations: a list (perhaps empty), never an error.
	locs, err := c.SearchLocations(ctx, slug, nil)
	if err != nil {
		t.Fatalf("SearchLocations: %v", err)
	}
	if len(locs.Locations) > 0 {
		lk, err := c.LookupLocations(ctx, slug, &ucpclient.LocationLookupRequest{IDs: []string{locs.Locations[0].ID}})
		if err != nil || len(lk.Locations) != 1 || lk.Locations[0].ID != locs.Locations[0].ID {
			t.Fatalf("LookupLocations: %+v %v", lk, err)
		}
	}

	// Account tools need the buyer: refused locally without one.
	var be *ucpclient.BuyerRequiredError
	if _, err := c.GetBuyerContext(ctx); !errors.As(err, &be) {
		t.Fatalf("GetBuyerContext without a buyer: %v", err)
	}
	tok, err := p.BuyerToken(ctx, "purchase:complete", nil)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey,
		AgentProfile: "http://127.0.0.1:9/.well-known/ucp", Buyer: oauth2.StaticTokenSource(tok)})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := cb.GetBuyerContext(ctx)
	if err != nil || bc.Profile.ID == "" || bc.Profile.Email != p.BuyerEmail || bc.AgentClientID == "" {
		t.Fatalf("GetBuyerContext: %+v %v", bc, err)
	}
	auths, err := cb.ListMyAgentAuthorizations(ctx)
	if err != nil {
		t.Fatalf("ListMyAgentAuthorizations: %v", err)
	}
	var caller bool
	for _, a := range auths {
		caller = caller || a.IsCaller && a.ClientID == bc.AgentClientID
	}
	if !caller {
		t.Fatalf("ListMyAgentAuthorizations: the caller is missing: %+v", auths)
	}
	ol, err := cb.ListMyOrders(ctx, &ucpclient.ListOrdersRequest{Limit: 5})
	if err != nil || ol.Orders == nil {
		t.Fatalf("ListMyOrders: %+v %v", ol, err)
	}
	if _, err := cb.ListMyOrders(ctx, nil); err != nil {
		t.Fatalf("ListMyOrders(nil): %v", err)
	}
	if _, err := cb.GetMyOrder(ctx, slug+"/no-such-order"); err == nil {
		t.Fatal("GetMyOrder unknown: no error")
	}
}

// The wire shapes of the typed helpers, and how results decode, against
// a recording fake.
func TestTypedHelpersWire(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	result := `{"ucp":{"version":"2026-04-08","status":"success"},"id":"x1","status":"incomplete","currency":"USD","line_items":[],"totals":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct {
			Params struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
			} `json:"params"`
		}
		_ = json.Unmarshal(b, &req)
		delete(req.Params.Arguments, "meta")
		req.Params.Arguments["_tool"] = req.Params.Name
		req.Params.Arguments["_path"] = r.URL.Path
		mu.Lock()
		got = append(got, req.Params.Arguments)
		res := result
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"structuredContent":`+res+`}}`)
	}))
	defer srv.Close()
	c, err := ucpclient.New(ucpclient.Config{BaseURL: srv.URL, AgentProfile: "https://agent.example/.well-known/ucp",
		Buyer: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(got[len(got)-1])
		return string(b)
	}
	check := func(name string, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g := last(); g != want {
			t.Errorf("%s sent\n %s\nwant\n %s", name, g, want)
		}
	}
	max := int64(5000)
	_, err = c.CreateCheckout(ctx, "s1", &ucpclient.CheckoutInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line("v1", 2)}})
	check("CreateCheckout", err, `{"_path":"/s/s1/mcp","_tool":"create_checkout","checkout":{"line_items":[{"item":{"id":"v1"},"quantity":2}]}}`)
	_, err = c.UpdateCheckout(ctx, "s1", "x1", &ucpclient.CheckoutInput{Discounts: &ucpclient.DiscountCodes{Codes: []string{"RUN10"}}})
	check("UpdateCheckout", err, `{"_path":"/s/s1/mcp","_tool":"update_checkout","checkout":{"discounts":{"codes":["RUN10"]}},"id":"x1"}`)
	_, err = c.CompleteCheckout(ctx, "s1", "x1", &ucpclient.CompleteInput{Payment: ucp.Payment{}})
	check("CompleteCheckout", err, `{"_path":"/s/s1/mcp","_tool":"complete_checkout","checkout":{"payment":{}},"id":"x1"}`)
	_, err = c.GetCheckout(ctx, "s1", "x1")
	check("GetCheckout", err, `{"_path":"/s/s1/mcp","_tool":"get_checkout","id":"x1"}`)
	_, err = c.CancelCart(ctx, "s1", "x1")
	check("CancelCart", err, `{"_path":"/s/s1/mcp","_tool":"cancel_cart","id":"x1"}`)
	_, err = c.GetOrder(ctx, "s1", "x1")
	check("GetOrder", err, `{"_path":"/s/s1/mcp","_tool":"get_order","id":"x1"}`)
	_, err = c.SearchCatalog(ctx, "s1", &ucp.SearchRequest{Query: "tea"})
	check("SearchCatalog", err, `{"_path":"/s/s1/mcp","_tool":"search_catalog","catalog":{"query":"tea"}}`)
	_, err = c.SearchCatalog(ctx, "", &ucp.SearchRequest{Query: "tea"})
	check("global SearchCatalog", err, `{"_path":"/mcp","_tool":"search_catalog","catalog":{"query":"tea"}}`)
	_, err = c.SearchLocations(ctx, "s1", &ucpclient.LocationSearchRequest{Filters: &ucpclient.LocationFilters{OpenAt: "2026-01-01T10:00:00Z"}})
	check("SearchLocations", err, `{"_path":"/s/s1/mcp","_tool":"search_locations","location":{"filters":{"hours":{"open_at":"2026-01-01T10:00:00Z"}}}}`)
	_, err = c.UpdateSpendingLimits(ctx, &ucpclient.SpendingLimitsUpdate{ClientID: "agent", MaxPerOrderAmount: &max})
	check("UpdateSpendingLimits", err, `{"_path":"/account/mcp","_tool":"update_spending_limits","client_id":"agent","max_per_order_amount":5000}`)
	_, err = c.GetMyOrder(ctx, "s1/o1")
	check("GetMyOrder", err, `{"_path":"/account/mcp","_tool":"get_my_order","order_id":"s1/o1"}`)
	_, err = c.RevokeAgentAuthorization(ctx, "agent")
	check("RevokeAgentAuthorization", err, `{"_path":"/account/mcp","_tool":"revoke_agent_authorization","client_id":"agent"}`)

	// Error envelopes are *UCPError.
	for _, tc := range []struct{ name, body, code string }{
		{"status error", `{"ucp":{"version":"2026-04-08","status":"error"},"messages":[{"type":"error","code":"not_found","content":"no such checkout","severity":"unrecoverable"}]}`, "not_found"},
		{"resource without id", `{"ucp":{"version":"2026-04-08"},"messages":[{"type":"info","code":"x"},{"type":"error","code":"out_of_stock","content":"gone"}]}`, "out_of_stock"},
	} {
		mu.Lock()
		result = tc.body
		mu.Unlock()
		_, err := c.GetCheckout(ctx, "s1", "x1")
		var ue *ucpclient.UCPError
		if !errors.As(err, &ue) || ue.Code() != tc.code || len(ue.Messages) != 2 && tc.name != "status error" || !strings.Contains(err.Error(), tc.code) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A success without an id nor messages is malformed, not a resource.
	mu.Lock()
	result = `{"ucp":{"version":"2026-04-08","status":"success"}}`
	mu.Unlock()
	var pe *ucpclient.ProtocolError
	if _, err := c.GetCart(ctx, "s1", "x1"); !errors.As(err, &pe) {
		t.Errorf("no id: %v", err)
	}
	// Local argument checks, before any I/O.
	if _, err := c.GetCheckout(ctx, "s1", ""); err == nil {
		t.Error("GetCheckout without an id: no error")
	}
	if _, err := c.UpdateSpendingLimits(ctx, &ucpclient.SpendingLimitsUpdate{ClientID: "a"}); err == nil {
		t.Error("UpdateSpendingLimits with nothing to change: no error")
	}
}

func totalOf(ts []ucp.Total) int64 {
	for _, t := range ts {
		if t.Type == ucp.TotalTotal {
			return t.Amount
		}
	}
	return -1
}

// Typed calls with verified response signatures; a business refusal is a
// *UCPError, a tampered or unsigned response a *ResponseSignatureError.
// (Compiled, not run: it needs a platform.)
func ExampleClient_CreateCheckout() {
	ctx := context.Background()
	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:         "https://api.example",
		APIKey:          "client_id.secret",
		AgentProfile:    "https://agent.example/.well-known/ucp",
		VerifyResponses: ucpclient.VerifyResponsesIfKeys,
	})
	if err != nil {
		panic(err)
	}
	chk, err := c.CreateCheckout(ctx, "energy-sport", &ucpclient.CheckoutInput{
		LineItems: []ucpclient.LineItemInput{ucpclient.Line("rr2-9", 1)},
	})
	var ue *ucpclient.UCPError
	var se *ucpclient.ResponseSignatureError
	switch {
	case errors.As(err, &ue):
		fmt.Println("refused:", ue.Code())
	case errors.As(err, &se):
		fmt.Println("response not trusted:", se.Code)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println(chk.Status, ucpclient.GrandTotal(chk), chk.Currency)
	}
}
