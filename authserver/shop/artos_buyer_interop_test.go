package shop_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// artosBuyerResult is what `node artos.mjs buyer` prints.
type artosBuyerResult struct {
	OK        bool                  `json:"ok"`
	BuyerMode bool                  `json:"buyerMode"`
	Steps     map[string]*buyerStep `json:"steps"`
	// Signed are the sandbox signAndSubmit calls, in order.
	Signed []struct {
		Purchase string `json:"purchase"`
		Digest   string `json:"digest"`
	} `json:"signed"`
	Mandates []struct {
		CheckoutID                         string `json:"checkoutId"`
		Merchant                           string `json:"merchant"`
		HasPaymentMandate                  bool   `json:"hasPaymentMandate"`
		EmbeddedMerchantAuthorizationValid bool   `json:"embeddedMerchantAuthorizationValid"`
	} `json:"mandates"`
}

// buyerStep is one purchase of the buyer job: the SDK's createCheckout,
// then its confirmPurchase outcome.
type buyerStep struct {
	OK          bool        `json:"ok"`
	Error       string      `json:"error"`
	ErrorName   string      `json:"errorName"`
	CheckoutID  string      `json:"checkoutId"`
	Create      *stepResult `json:"create"`
	Outcome     string      `json:"outcome"`
	Code        string      `json:"code"`
	Message     string      `json:"message"`
	ContinueURL string      `json:"continueUrl"`
	Checkout    *stepResult `json:"checkout"`
}

// rpcCall is the part of an SDK JSON-RPC request the test reads.
type rpcCall struct {
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			ID       string `json:"id"`
			Checkout struct {
				AP2 struct {
					CheckoutMandate string `json:"checkout_mandate"`
					PaymentMandate  string `json:"payment_mandate"`
				} `json:"ap2"`
				Payment struct {
					Instruments []map[string]json.RawMessage `json:"instruments"`
				} `json:"payment"`
			} `json:"checkout"`
		} `json:"arguments"`
	} `json:"params"`
}

// TestArtosSDKBuyerInterop drives the Artos buyer flow with the real SDK
// (@artos-commerce/ucp-client 0.14.0): one UcpClient holds the platform
// key and Ada's buyer token, as a signed-in Artos host does. Each purchase
// is created with the platform key and paid by the SDK's confirmPurchase,
// which completes with the buyer's bearer alone:
//
//   - card: no card is named, so Ada's saved sandbox card pays, within
//     her allowance for artos-agent;
//   - crypto: prepare_checkout_payment and complete_checkout with the
//     bearer alone, the unsigned transaction "signed and submitted" on
//     the sandbox chain by the SDK's deps.crypto;
//   - over the per-order limit (card): refused at completion;
//   - over what remains of the day (crypto): refused at prepare, before
//     anything is signed.
//
// One allowance has one currency, so every purchase is at energy-sport
// (USD, card and crypto): one agent client, one allowance, exact sums.
// The allowance is 100.00 USD per order and 150.00 USD a day. The
// day's last purchase fits per order but not the day only because the
// two orders before it counted.
func TestArtosSDKBuyerInterop(t *testing.T) {
	t.Parallel()
	needArtos(t)
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) {
		c.Guard = artosAuth
		c.Accounts = cardAccounts{testAccounts{"test-platform": ""},
			map[string]*store.SavedCard{"buyer_ada": {Token: "success_token", Brand: "visa", Last4: "4242"}}}
	}})
	e.agent.set(func(a *agentServer) {
		a.version = artosVersion
		a.caps = append(a.caps, ucp.CapAP2Mandate)
	})
	const (
		maxPerOrder = 10000
		dailyCap    = 15000
		// Energy gels are 30.00, standard shipping 5.99 under 75.00,
		// and 8.25% sales tax on both.
		oneGel   = 3000 + 599 + 297            // 38.96
		twoGels  = 6000 + 599 + 544            // 71.43
		oneRacer = 15900 + 0 + 1312            // 172.12, shipped free
		left     = dailyCap - oneGel - twoGels // 39.61
	)
	e.allow("buyer_ada", "artos-agent", maxPerOrder, dailyCap, "USD")
	rec := &wireRecorder{h: e.svc.Handler()}
	front := httptest.NewServer(rec)
	t.Cleanup(front.Close)

	priv, err := e.agent.key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	us := map[string]any{"street_address": "1 Main St", "address_locality": "Boulder", "address_region": "CO",
		"postal_code": "80301", "address_country": "US"}
	purchase := func(name, item string, qty int, method string) map[string]any {
		return map[string]any{"name": name, "store": "energy-sport", "items": []any{map[string]any{"id": item, "quantity": qty}},
			"paymentMethod": method, "shippingAddress": us}
	}
	job := map[string]any{
		"baseUrl":    front.URL,
		"apiKey":     artosAPIKey,
		"buyerToken": artosBuyerToken,
		"profileUrl": e.agent.URL(),
		"agentJwk":   json.RawMessage(priv),
		"kid":        e.agent.key.KeyID(),
		"purchases": []any{
			purchase("card", "energy-gels-12", 1, shop.HandlerCardID),
			purchase("crypto", "energy-gels-12", 2, shop.HandlerCryptoID),
			purchase("overOrder", "rr2-9", 1, shop.HandlerCardID),
			purchase("overDay", "energy-gels-12", 2, shop.HandlerCryptoID),
		},
	}
	res := &artosBuyerResult{}
	raw := runArtos(t, "buyer", job, res)
	if !res.BuyerMode {
		t.Fatalf("the SDK client holds no buyer token: %s", raw)
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	step := func(name string, total int64) *buyerStep {
		t.Helper()
		s := res.Steps[name]
		if s == nil {
			t.Fatalf("artos.mjs ran no purchase %q:\n%s", name, raw)
		}
		if !s.OK {
			dumpWire(t, rec)
			t.Fatalf("%s: the SDK threw %s: %s", name, s.ErrorName, s.Error)
		}
		// Created with the platform key, priced, signed by the store;
		// two rails, so the store waits for a choice (confirmPurchase's
		// paymentMethod makes it).
		if c := s.Create; c == nil || c.Status != ucp.CheckoutIncomplete || !slices.Equal(c.Messages, []string{"payment_selection_required"}) ||
			c.Currency != "USD" || c.Total != total ||
			!c.MerchantAuthorizationValid || s.CheckoutID == "" || c.ID != s.CheckoutID {
			t.Fatalf("%s: createCheckout %s", name, js(s))
		}
		return s
	}
	order := func(name string, s *buyerStep, total int64) string {
		t.Helper()
		c := s.Checkout
		if s.Outcome != "completed" || c == nil || c.UCPStatus != "success" || c.Status != ucp.CheckoutCompleted ||
			c.OrderID == "" || c.Total != total || !c.MerchantAuthorizationValid {
			dumpWire(t, rec)
			t.Fatalf("%s: confirmPurchase %s", name, js(s))
		}
		row, err := e.store.Order(t.Context(), "energy-sport", c.OrderID)
		if err != nil {
			t.Fatalf("%s: order %s: %v", name, c.OrderID, err)
		}
		if row.BuyerID != "buyer_ada" || row.ClientID != "artos-agent" || row.CheckoutID != s.CheckoutID ||
			row.Owner != "platform:test-platform|buyer:buyer_ada" {
			t.Fatalf("%s: order row %+v", name, row)
		}
		if o := decode[ucp.Order](t, row.Doc); o.Totals[len(o.Totals)-1].Amount != total {
			t.Fatalf("%s: the order's total is %+v, want %d", name, o.Totals, total)
		}
		return c.OrderID
	}
	// A refusal: the SDK's store_error outcome, whose checkout carries
	// spend_cap_exceeded naming the limit; no order, not completed.
	refused := func(name string, s *buyerStep, content string) {
		t.Helper()
		c := s.Checkout
		if s.Outcome != "error" || s.Code != "store_error" || c == nil || c.UCPStatus != "error" || c.OrderID != "" || c.Status == ucp.CheckoutCompleted {
			dumpWire(t, rec)
			t.Fatalf("%s: want the store_error outcome: %s", name, js(s))
		}
		capMsg := ""
		for _, m := range c.Details {
			if m.Code == oauth.CodeSpendCapExceeded && m.Type == "error" {
				capMsg = m.Content
			}
		}
		if !strings.Contains(capMsg, content) {
			t.Fatalf("%s: want %s saying %q: %+v", name, oauth.CodeSpendCapExceeded, content, c.Details)
		}
		if s.Message != capMsg {
			// What the SDK shows the agent is the first message with
			// content (messageOf), not necessarily the refusal.
			t.Logf("%s: the SDK reports %q; the refusal says %q", name, s.Message, capMsg)
		}
		row, err := e.store.Session(t.Context(), store.KindCheckout, "energy-sport", s.CheckoutID)
		if err != nil || row.Status == ucp.CheckoutCompleted {
			t.Fatalf("%s: the refused checkout is %+v (%v)", name, row, err)
		}
	}

	cardOrder := order("card", step("card", oneGel), oneGel)
	cryptoOrder := order("crypto", step("crypto", twoGels), twoGels)
	refused("overOrder", step("overOrder", oneRacer), "100.00 USD per order")
	refused("overDay", step("overDay", twoGels), "daily cap is 150.00 USD and "+ucp.FormatMinor(left, "USD")+" USD"+" remains")
	if cardOrder == cryptoOrder {
		t.Fatalf("one order for two purchases: %s", cardOrder)
	}

	// The allowance counts exactly the two orders; the refusals placed
	// nothing and kept no hold.
	if n := spent(t, e, "buyer_ada", "artos-agent"); n != oneGel+twoGels {
		t.Fatalf("spent %d today, want %d + %d", n, oneGel, twoGels)
	}
	all, err := e.store.BuyerOrders(t.Context(), "buyer_ada", nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range all {
		got = append(got, o.ID)
	}
	slices.Sort(got)
	want := []string{cardOrder, cryptoOrder}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ada's orders %v, want %v", got, want)
	}

	// The wire, as the server received it: who sent which credential.
	var prepares, completes []*exchange
	for _, x := range rec.exchanges() {
		if x.Status != http.StatusOK {
			dumpWire(t, rec)
			t.Fatalf("%s %s answered %d: %s", x.Method, x.Path, x.Status, x.Response)
		}
		key, bearer := x.Header.Get("X-API-Key"), x.Header.Get("Authorization")
		var rpc rpcCall
		if strings.HasSuffix(x.Path, "/mcp") {
			if err := json.Unmarshal(x.Body, &rpc); err != nil {
				t.Fatalf("%s: %v", x.Body, err)
			}
		}
		switch rpc.Params.Name {
		case "complete_checkout", "prepare_checkout_payment":
			// Buyer-bound: the bearer alone.
			if bearer != "Bearer "+artosBuyerToken || key != "" {
				t.Fatalf("%s carried X-API-Key %q, Authorization %q", rpc.Params.Name, key, bearer)
			}
			if rpc.Params.Name == "complete_checkout" {
				completes = append(completes, x)
			} else {
				prepares = append(prepares, x)
			}
		default:
			// The store profile, create_checkout, get_checkout: the key alone.
			if key != artosAPIKey || bearer != "" {
				t.Fatalf("%s %s (%s) carried X-API-Key %q, Authorization %q", x.Method, x.Path, rpc.Params.Name, key, bearer)
			}
		}
	}
	callOf := func(x *exchange) *rpcCall {
		var rpc rpcCall
		json.Unmarshal(x.Body, &rpc)
		return &rpc
	}
	ids := func(xs []*exchange) []string {
		var out []string
		for _, x := range xs {
			out = append(out, callOf(x).Params.Arguments.ID)
		}
		return out
	}
	card, crypto, overOrder, overDay := res.Steps["card"].CheckoutID, res.Steps["crypto"].CheckoutID,
		res.Steps["overOrder"].CheckoutID, res.Steps["overDay"].CheckoutID
	if got, want := ids(completes), []string{card, crypto, overOrder}; !slices.Equal(got, want) {
		t.Fatalf("complete_checkout for %v, want %v", got, want)
	}
	if got, want := ids(prepares), []string{crypto, overDay}; !slices.Equal(got, want) {
		t.Fatalf("prepare_checkout_payment for %v, want %v", got, want)
	}

	// The card completions name the rail and no card: the saved one paid.
	for _, x := range []*exchange{completes[0], completes[2]} {
		in := callOf(x).Params.Arguments.Checkout.Payment.Instruments
		if len(in) != 1 || string(in[0]["handler_id"]) != `"`+shop.HandlerCardID+`"` || in[0]["credential"] != nil {
			t.Fatalf("card instrument %s", x.Body)
		}
	}

	// Crypto: the digest the SDK completed with is the sandbox chain's
	// name for the transaction prepare returned, and the intent's
	// settlement reference; only that purchase reached signAndSubmit.
	var prep struct {
		Result struct {
			StructuredContent struct {
				PaymentIntent shop.PaymentIntent `json:"payment_intent"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(prepares[0].Response, &prep); err != nil {
		t.Fatal(err)
	}
	intent := prep.Result.StructuredContent.PaymentIntent
	tx, err := base64.StdEncoding.DecodeString(intent.UnsignedTx)
	sum := sha256.Sum256(tx)
	digest := "sim_" + hex.EncodeToString(sum[:])
	if err != nil || len(tx) == 0 || intent.SettlementReference != digest || intent.CheckoutID != crypto || intent.Amount != twoGels {
		t.Fatalf("prepared intent %+v (%v)", intent, err)
	}
	paid := callOf(completes[1]).Params.Arguments.Checkout
	if in := paid.Payment.Instruments; len(in) != 1 || string(in[0]["handler_id"]) != `"`+shop.HandlerCryptoID+`"` ||
		!strings.Contains(string(in[0]["credential"]), `"token":"`+digest+`"`) {
		t.Fatalf("crypto instrument %s, want the token %s", completes[1].Body, digest)
	}
	if paid.AP2.PaymentMandate == "" {
		t.Fatalf("the crypto completion carries no payment_mandate: %s", completes[1].Body)
	}
	if len(res.Signed) != 1 || res.Signed[0].Purchase != "crypto" || res.Signed[0].Digest != digest {
		t.Fatalf("signAndSubmit calls %+v, want one for crypto giving %s", res.Signed, digest)
	}

	// The checkout mandates the SDK sent, one per complete_checkout,
	// each binding its checkout; only crypto adds a payment_mandate.
	if len(res.Mandates) != 3 {
		t.Fatalf("mandates %+v", res.Mandates)
	}
	for i, id := range []string{card, crypto, overOrder} {
		m := res.Mandates[i]
		if m.CheckoutID != id || m.Merchant != "energy-sport" || !m.EmbeddedMerchantAuthorizationValid || m.HasPaymentMandate != (id == crypto) {
			t.Fatalf("mandate %d: %+v, want checkout %s", i, m, id)
		}
	}

	// artosAuth refuses a bearer that is not Ada's, so the bearer-only
	// calls above were hers; and her bearer with the key on a completion
	// (what the SDK never sends there) is refused, not run as the
	// platform.
	r, b := e.req("GET", "/s/energy-sport/checkout-sessions/"+card, nil, "X-Test-Client", "", "Authorization", "Bearer at_someone_else")
	wantStatus(t, r, b, http.StatusUnauthorized)
	r, b = e.req("POST", "/s/energy-sport/checkout-sessions/"+overOrder+"/complete", cardPayment("success_token"),
		"X-Test-Client", "", "X-API-Key", artosAPIKey, "Authorization", "Bearer "+artosBuyerToken)
	wantStatus(t, r, b, http.StatusForbidden)
	if !strings.Contains(string(b), "credential_conflict") || orders(t, e, "buyer_ada") != 2 {
		t.Fatalf("key + bearer on complete: %s", b)
	}
}
