package ucpclient

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// wireCall is one request a recordingTransport saw.
type wireCall struct {
	Path, Tool         string
	APIKey, Bearer     bool
	IdempotencyKeyMeta bool
}

// recordingTransport records, per request, the tool called and which
// credentials went on the wire.
type recordingTransport struct {
	mu    sync.Mutex
	calls []wireCall
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := wireCall{Path: r.URL.Path, APIKey: r.Header.Get("X-API-Key") != "",
		Bearer: strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")}
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		var rpc struct {
			Params struct {
				Name      string `json:"name"`
				Arguments struct {
					Meta map[string]any `json:"meta"`
				} `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal(b, &rpc) == nil {
			w.Tool = rpc.Params.Name
			_, w.IdempotencyKeyMeta = rpc.Params.Arguments.Meta["idempotency-key"]
		}
	}
	rt.mu.Lock()
	rt.calls = append(rt.calls, w)
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (rt *recordingTransport) tools() []wireCall {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]wireCall(nil), rt.calls...)
}

// e2eCheckout creates a checkout on a real store with the platform key.
func e2eCheckout(t *testing.T, c *Client, slug string, checkout map[string]any) string {
	t.Helper()
	out, err := c.CallStoreTool(t.Context(), slug, "create_checkout", map[string]any{"checkout": checkout})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.ID == "" || IsUCPError(out) {
		t.Fatalf("create_checkout: %s", out)
	}
	return v.ID
}

func lines(id string, q int) []any {
	return []any{map[string]any{"item": map[string]any{"id": id}, "quantity": q}}
}

// usShipping is energy-sport's required US shipping address.
var usShipping = map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": []any{map[string]any{
	"street_address": "1 Main St", "address_locality": "Boulder", "address_region": "CO",
	"postal_code": "80301", "address_country": "US"}}}}}

// signInBuyer signs the demo buyer in through Connect, driven by the real
// consent page with allowance al, and returns the buyer's token source.
func signInBuyer(t *testing.T, p *authservertest.Platform, al *authservertest.Allowance) *BuyerTokenSource {
	t.Helper()
	ctx := t.Context()
	store := &MemoryTokenStore{}
	_, err := Connect(ctx, ConnectOptions{ClientID: p.AgentClientID, Issuer: p.URL, AllowLoopback: true, Store: store,
		OpenBrowser: func(authURL string) error {
			loc, err := p.SignIn(ctx, authURL, &authservertest.Consent{Allowance: al})
			if err != nil {
				return err
			}
			res, err := http.Get(loc.String())
			if err != nil {
				return err
			}
			res.Body.Close()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	md, err := DiscoverAuthServer(ctx, http.DefaultClient, p.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewBuyerTokenSource(ctx, md.OAuth2Config(p.AgentClientID, ""), store, &BuyerTokenOptions{HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestConfirmPurchaseE2E drives ConfirmPurchase against the real platform
// (authservertest), with an agent profile publishing the signer's key so
// that AP2 applies: the card with the platform key, a buyer signed in
// through Connect within and over the allowance, and crypto with the
// buyer's bearer alone.
func TestConfirmPurchaseE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	signer := newTestSigner(t)
	profileURL := agentProfile(t, signer)
	newClient := func(t *testing.T, p *authservertest.Platform, buyer BuyerTokens) (*Client, *recordingTransport) {
		rt := &recordingTransport{}
		c, err := New(Config{BaseURL: p.URL, APIKey: p.PlatformKey, AgentProfile: profileURL, Buyer: buyer,
			HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			t.Fatal(err)
		}
		return c, rt
	}

	t.Run("card with the platform key", func(t *testing.T) {
		t.Parallel()
		p := authservertest.Start(t, nil)
		c, rt := newClient(t, p, nil)
		ctx := t.Context()
		// Search, a cart, a checkout from it.
		res, err := c.CallStoreTool(ctx, "flower-shop", "search_catalog", map[string]any{"catalog": map[string]any{"query": "roses"}})
		if err != nil || !bytes.Contains(res, []byte("bouquet_roses")) {
			t.Fatalf("search: %s %v", res, err)
		}
		cart, err := c.CallStoreTool(ctx, "flower-shop", "create_cart", map[string]any{"cart": map[string]any{"line_items": lines("bouquet_roses", 1)}})
		var cv struct{ ID string }
		if err != nil || json.Unmarshal(cart, &cv) != nil || cv.ID == "" {
			t.Fatalf("cart: %s %v", cart, err)
		}
		id := e2eCheckout(t, c, "flower-shop", map[string]any{"cart_id": cv.ID})
		o, err := c.ConfirmPurchase(ctx, ConfirmInput{Store: "flower-shop", CheckoutID: id, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		// No card on the platform's side: the buyer pays on the hosted page.
		if o.Kind != OutcomeEscalationRequired || o.ContinueURL == "" {
			t.Fatalf("%+v %s", o, o.Raw)
		}
		for _, w := range rt.tools() {
			if w.Bearer || (strings.HasSuffix(w.Path, "/mcp") && !w.APIKey) {
				t.Errorf("%s %s: key %v bearer %v", w.Path, w.Tool, w.APIKey, w.Bearer)
			}
		}
		// Over the client's ceiling: nothing is completed.
		id = e2eCheckout(t, c, "flower-shop", map[string]any{"line_items": lines("bouquet_roses", 1)})
		o, err = c.ConfirmPurchase(ctx, ConfirmInput{Store: "flower-shop", CheckoutID: id, Signer: signer, MaxSpend: 100})
		if err != nil || o.Kind != OutcomeAllowanceRefused || o.Refusal.Limit != LimitClientMaxSpend || o.Refusal.Max != 100 {
			t.Fatalf("%+v %v", o, err)
		}
		// energy-sport has two rails: the choice is the buyer's.
		id = e2eCheckout(t, c, "energy-sport", map[string]any{"line_items": lines("rr2-10", 1), "fulfillment": usShipping})
		o, err = c.ConfirmPurchase(ctx, ConfirmInput{Store: "energy-sport", CheckoutID: id, Signer: signer})
		if err != nil || o.Kind != OutcomePaymentSelectionRequired || len(o.Rails) != 2 {
			t.Fatalf("%+v %v", o, err)
		}
		// Crypto without a buyer: sign in first, nothing sent.
		n := len(rt.tools())
		o, err = c.ConfirmPurchase(ctx, ConfirmInput{Store: "energy-sport", CheckoutID: id, Signer: signer,
			PaymentMethod: "artos.crypto", Crypto: SandboxSettler{}})
		if err != nil || o.Kind != OutcomeSignInRequired {
			t.Fatalf("%+v %v", o, err)
		}
		for _, w := range rt.tools()[n:] {
			if w.Tool == "prepare_checkout_payment" || w.Tool == "complete_checkout" {
				t.Errorf("sent %s without a buyer", w.Tool)
			}
		}
	})

	t.Run("buyer within and over the allowance", func(t *testing.T) {
		t.Parallel()
		p := authservertest.Start(t, nil)
		c, rt := newClient(t, p, signInBuyer(t, p, &authservertest.DefaultAllowance))
		ctx := t.Context()
		// 35.00 EUR fits the 50.00 per order: Ada's saved card pays.
		id := e2eCheckout(t, c, "flower-shop", map[string]any{"line_items": lines("bouquet_roses", 1)})
		o, err := c.ConfirmPurchase(ctx, ConfirmInput{Store: "flower-shop", CheckoutID: id, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind != OutcomeCompleted || o.Order == nil || o.Order.ID == "" {
			t.Fatalf("%+v %s", o, o.Raw)
		}
		// 70.00 EUR is over it: refused, which limit, nothing charged.
		id = e2eCheckout(t, c, "flower-shop", map[string]any{"line_items": lines("bouquet_roses", 2)})
		o, err = c.ConfirmPurchase(ctx, ConfirmInput{Store: "flower-shop", CheckoutID: id, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind != OutcomeAllowanceRefused || o.Refusal == nil || o.Refusal.Limit != LimitMaxPerOrder ||
			o.Refusal.Max != 5000 || o.Refusal.Currency != "EUR" {
			t.Fatalf("%+v %+v %s", o, o.Refusal, o.Raw)
		}
		// Every completion went with the bearer alone.
		var completes int
		for _, w := range rt.tools() {
			if w.Tool == "complete_checkout" {
				completes++
				if w.APIKey || !w.Bearer {
					t.Errorf("complete_checkout: key %v bearer %v", w.APIKey, w.Bearer)
				}
			}
		}
		if completes != 2 {
			t.Fatalf("%d completions", completes)
		}
	})

	t.Run("crypto with the bearer only", func(t *testing.T) {
		t.Parallel()
		p := authservertest.Start(t, nil)
		usd := &authservertest.Allowance{MaxPerOrder: "500", DailyCap: "1000", Currency: "USD", Days: 30}
		c, rt := newClient(t, p, signInBuyer(t, p, usd))
		ctx := t.Context()
		id := e2eCheckout(t, c, "energy-sport", map[string]any{"line_items": lines("rr2-10", 1), "fulfillment": usShipping})
		applied := true
		o, err := c.ConfirmPurchase(ctx, ConfirmInput{Store: "energy-sport", CheckoutID: id, Signer: signer,
			PaymentMethod: "artos.crypto", Crypto: SandboxSettler{}, ApplyCoupon: &applied})
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind != OutcomeCompleted || o.Order == nil {
			t.Fatalf("%+v %s", o, o.Raw)
		}
		// Ada's coupon went off the total.
		var discounted bool
		for _, tt := range o.Checkout.Totals {
			if tt.Type == ucp.TotalDiscount && tt.Amount < 0 {
				discounted = true
			}
		}
		if !discounted {
			t.Errorf("no coupon credit: %s", o.Raw)
		}
		seen := map[string]wireCall{}
		for _, w := range rt.tools() {
			if w.Tool != "" {
				seen[w.Tool] = w
			}
		}
		for _, tool := range []string{"prepare_checkout_payment", "complete_checkout"} {
			w, ok := seen[tool]
			if !ok || w.APIKey || !w.Bearer || !w.IdempotencyKeyMeta {
				t.Errorf("%s: sent %v, %+v", tool, ok, w)
			}
		}
		if w := seen["update_checkout"]; !w.APIKey || !w.Bearer {
			t.Errorf("coupon attach: %+v", w)
		}
		if w := seen["get_checkout"]; !w.APIKey || w.Bearer {
			t.Errorf("get_checkout: %+v", w)
		}
	})
}
