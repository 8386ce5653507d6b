package ucpclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// stubCall is one tools/call the stub store received.
type stubCall struct {
	Tool           string
	APIKey, Bearer string
	Args           map[string]json.RawMessage
}

// stubStore is an MCP UCP store at /s/shop/mcp with its profile at
// /s/shop/.well-known/ucp: it serves one checkout, signed with the
// store's key, and answers tools as a test scripts them.
type stubStore struct {
	t     *testing.T
	srv   *httptest.Server
	key   *mandate.SigningKey
	mu    sync.Mutex
	calls []stubCall
	// checkout is the checkout's members (signed on every read).
	checkout map[string]any
	// tamper, when set, changes the signed checkout before it is sent.
	tamper func(json.RawMessage) json.RawMessage
	// answers override a tool's answer (the structuredContent); nil
	// means the default.
	answers map[string]func(args map[string]json.RawMessage) any
	// status overrides the HTTP answer of a tool (e.g. 401).
	status map[string]int
}

const stubTx = `{"intent":"pi_1","amount":4190}`

func newStubStore(t *testing.T, rails ...string) *stubStore {
	t.Helper()
	k, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]any{}
	for _, r := range rails {
		name := "sh." + r
		handlers[name] = []any{map[string]any{"id": r, "version": "2026-04-08"}}
	}
	s := &stubStore{t: t, key: k, answers: map[string]func(map[string]json.RawMessage) any{}, status: map[string]int{}}
	s.checkout = map[string]any{
		"ucp":        map[string]any{"version": "2026-04-08", "status": "success", "payment_handlers": handlers},
		"id":         "chk_1",
		"status":     "ready_for_complete",
		"currency":   "EUR",
		"line_items": []any{map[string]any{"id": "li_1", "item": map[string]any{"id": "roses", "title": "Roses", "price": 3500}, "quantity": 1}},
		"totals": []any{
			map[string]any{"type": "subtotal", "amount": 3500},
			map[string]any{"type": "fulfillment", "amount": 690},
			map[string]any{"type": "total", "amount": 4190},
		},
		"links": []any{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// signed is the checkout as the store sends it.
func (s *stubStore) signed() json.RawMessage {
	s.t.Helper()
	b, err := json.Marshal(s.checkout)
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := mandate.AttachMerchantAuthorization(b, s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.tamper != nil {
		out = s.tamper(out)
	}
	return out
}

func (s *stubStore) setTotals(subtotal, fulfillment, total int64) {
	s.checkout["totals"] = []any{
		map[string]any{"type": "subtotal", "amount": subtotal},
		map[string]any{"type": "fulfillment", "amount": fulfillment},
		map[string]any{"type": "total", "amount": total},
	}
}

func (s *stubStore) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/s/shop/.well-known/ucp" {
		jwk, _ := json.Marshal(s.key.PublicJWK())
		fmt.Fprintf(w, `{"ucp":{"version":"2026-04-08","payment_handlers":{}},"signing_keys":[%s]}`, jwk)
		return
	}
	if r.URL.Path != "/s/shop/mcp" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var rpc struct {
		ID     json.RawMessage `json:"id"`
		Params struct {
			Name      string                     `json:"name"`
			Arguments map[string]json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	name := rpc.Params.Name
	s.mu.Lock()
	s.calls = append(s.calls, stubCall{Tool: name, APIKey: r.Header.Get("X-API-Key"), Bearer: r.Header.Get("Authorization"), Args: rpc.Params.Arguments})
	st := s.status[name]
	answer := s.answers[name]
	s.mu.Unlock()
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="https://store.example/.well-known/oauth-protected-resource"`)
		w.WriteHeader(st)
		return
	}
	var result any
	switch {
	case answer != nil:
		result = answer(rpc.Params.Arguments)
	case name == "get_checkout" || name == "update_checkout":
		result = s.signed()
	case name == "prepare_checkout_payment":
		result = map[string]any{"ucp": map[string]any{"version": "2026-04-08", "status": "success"},
			"payment_intent": map[string]any{"id": "pi_1", "unsigned_tx": base64.StdEncoding.EncodeToString([]byte(stubTx))},
			"checkout":       s.signed()}
	case name == "complete_checkout":
		s.checkout["status"] = "completed"
		s.checkout["order"] = map[string]any{"id": "ord_1", "permalink_url": "https://store.example/orders/ord_1"}
		result = s.signed()
	default:
		result = map[string]any{"ucp": map[string]any{"status": "error"}, "messages": []any{map[string]any{"type": "error", "code": "unknown_tool"}}}
	}
	rb, _ := json.Marshal(result)
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[],"structuredContent":%s}}`, rpc.ID, rb)
}

func (s *stubStore) got() []stubCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *stubStore) tools() []string {
	var out []string
	for _, c := range s.got() {
		out = append(out, c.Tool)
	}
	return out
}

// last is the last call of tool.
func (s *stubStore) last(tool string) *stubCall {
	calls := s.got()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Tool == tool {
			return &calls[i]
		}
	}
	return nil
}

func (s *stubStore) client(t *testing.T, buyer bool) *Client {
	t.Helper()
	cfg := Config{BaseURL: s.srv.URL, APIKey: "plat.secret", AgentProfile: testProfile,
		Retry: RetryConfig{MaxAttempts: 1}}
	if buyer {
		cfg.Buyer = staticBuyer{tok: "buyer-token"}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// completion is what complete_checkout carried.
type completion struct {
	AP2 struct {
		CheckoutMandate string `json:"checkout_mandate"`
		PaymentMandate  string `json:"payment_mandate"`
	} `json:"ap2"`
	Payment *struct {
		Instruments []map[string]any `json:"instruments"`
	} `json:"payment"`
}

func (s *stubStore) completion(t *testing.T) *completion {
	t.Helper()
	c := s.last("complete_checkout")
	if c == nil {
		t.Fatalf("no complete_checkout; calls %v", s.tools())
	}
	var out completion
	if err := json.Unmarshal(c.Args["checkout"], &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// credentials asserts the credentials a tool call carried.
func credentials(t *testing.T, c *stubCall, key, bearer bool) {
	t.Helper()
	if c == nil {
		t.Fatal("call not made")
	}
	if (c.APIKey != "") != key || (c.Bearer != "") != bearer {
		t.Errorf("%s: X-API-Key %q, Authorization %q; want key %v, bearer %v", c.Tool, c.APIKey, c.Bearer, key, bearer)
	}
}

func TestConfirmPurchaseCard(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	for _, buyer := range []bool{false, true} {
		t.Run(fmt.Sprintf("buyer=%v", buyer), func(t *testing.T) {
			t.Parallel()
			s := newStubStore(t, "artos.card")
			o, err := s.client(t, buyer).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer})
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != OutcomeCompleted || o.Order == nil || o.Order.ID != "ord_1" {
				t.Fatalf("%+v", o)
			}
			if got := s.tools(); !slices.Equal(got, []string{"get_checkout", "complete_checkout"}) {
				t.Fatalf("calls %v", got)
			}
			credentials(t, s.last("get_checkout"), true, false)
			credentials(t, s.last("complete_checkout"), !buyer, buyer) // the bearer alone when there is one
			c := s.completion(t)
			if c.Payment == nil || len(c.Payment.Instruments) != 1 || c.Payment.Instruments[0]["handler_id"] != "artos.card" ||
				c.Payment.Instruments[0]["selected"] != true || c.Payment.Instruments[0]["credential"] != nil {
				t.Fatalf("instrument %+v", c.Payment)
			}
			if c.AP2.CheckoutMandate == "" || c.AP2.PaymentMandate != "" {
				t.Fatalf("ap2 %+v", c.AP2)
			}
			_, claims, _ := compactParts(t, c.AP2.CheckoutMandate)
			if claims["merchant"] != "shop" || claims["checkout"].(map[string]any)["id"] != "chk_1" {
				t.Fatalf("claims %v", claims)
			}
			if _, ok := claims["payment_mandate_id"]; ok {
				t.Fatalf("payment_mandate_id without one given: %v", claims)
			}
		})
	}
}

func TestConfirmPurchaseRails(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	t.Run("several rails, none chosen", func(t *testing.T) {
		s := newStubStore(t, "artos.card", "artos.crypto")
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind != OutcomePaymentSelectionRequired || len(o.Rails) != 2 || o.Rails[0].ID != "artos.card" || !o.Rails[1].Crypto {
			t.Fatalf("%+v", o)
		}
		if slices.Contains(s.tools(), "complete_checkout") {
			t.Fatal("completed without a rail")
		}
	})
	t.Run("chosen rail passed as it is", func(t *testing.T) {
		s := newStubStore(t, "artos.card", "artos.crypto")
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer,
			PaymentMethod: "acme.wallet"})
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		if h := s.completion(t).Payment.Instruments[0]["handler_id"]; h != "acme.wallet" {
			t.Fatalf("handler %v", h)
		}
	})
	t.Run("no rail advertised: no instrument", func(t *testing.T) {
		s := newStubStore(t)
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer})
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		if p := s.completion(t).Payment; p != nil {
			t.Fatalf("instrument sent: %+v", p)
		}
	})
	t.Run("store asks for a selection", func(t *testing.T) {
		s := newStubStore(t)
		s.answers["complete_checkout"] = func(map[string]json.RawMessage) any {
			return map[string]any{"ucp": map[string]any{"status": "error", "payment_handlers": map[string]any{
				"sh.artos.card": []any{map[string]any{"id": "artos.card"}}}},
				"messages": []any{map[string]any{"type": "error", "code": "payment_selection_required", "content": "choose"}}}
		}
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer})
		if err != nil || o.Kind != OutcomePaymentSelectionRequired || len(o.Rails) != 1 {
			t.Fatalf("%+v %v", o, err)
		}
	})
}

func TestConfirmPurchaseZeroTotal(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	for _, buyer := range []bool{false, true} {
		t.Run(fmt.Sprintf("buyer=%v", buyer), func(t *testing.T) {
			t.Parallel()
			s := newStubStore(t, "artos.card", "artos.crypto")
			s.checkout["totals"] = []any{
				map[string]any{"type": "subtotal", "amount": 1500},
				map[string]any{"type": "discount", "amount": -1500},
				map[string]any{"type": "total", "amount": 0},
			}
			// Even with crypto chosen: prepare refuses $0.
			o, err := s.client(t, buyer).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer,
				PaymentMethod: "artos.crypto", Crypto: SandboxSettler{}})
			if err != nil || o.Kind != OutcomeCompleted {
				t.Fatalf("%+v %v", o, err)
			}
			if got := s.tools(); !slices.Equal(got, []string{"get_checkout", "complete_checkout"}) {
				t.Fatalf("calls %v", got)
			}
			c := s.completion(t)
			if c.Payment != nil || c.AP2.CheckoutMandate == "" || c.AP2.PaymentMandate != "" {
				t.Fatalf("completion %+v", c)
			}
			credentials(t, s.last("complete_checkout"), !buyer, buyer)
		})
	}
}

func TestConfirmPurchaseCrypto(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	sum := sha256.Sum256([]byte(stubTx))
	digest := "sim_" + hex.EncodeToString(sum[:])
	in := ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer, PaymentMethod: "artos.crypto", Crypto: SandboxSettler{},
		PaymentMandateID: "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"}

	t.Run("prepare, re-fetch, mandates, settle, complete", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.card", "artos.crypto")
		// Prepare re-prices (a coupon, say): the mandates are for the new
		// terms, which the re-fetch picks up.
		s.answers["prepare_checkout_payment"] = func(map[string]json.RawMessage) any {
			s.setTotals(3500, 0, 3500)
			return map[string]any{"ucp": map[string]any{"status": "success"},
				"payment_intent": map[string]any{"unsigned_tx": base64.StdEncoding.EncodeToString([]byte(stubTx))}}
		}
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		if got := s.tools(); !slices.Equal(got, []string{"get_checkout", "prepare_checkout_payment", "get_checkout", "complete_checkout"}) {
			t.Fatalf("calls %v", got)
		}
		credentials(t, s.last("prepare_checkout_payment"), false, true)
		credentials(t, s.last("complete_checkout"), false, true)
		c := s.completion(t)
		inst := c.Payment.Instruments[0]
		if inst["handler_id"] != "artos.crypto" || inst["type"] != "crypto" || inst["selected"] != true ||
			inst["credential"].(map[string]any)["token"] != digest {
			t.Fatalf("instrument %v (digest %s)", inst, digest)
		}
		_, pm, _ := compactParts(t, c.AP2.PaymentMandate)
		pay := pm["payment"].(map[string]any)
		if pay["amount"] != json.Number("3500") || pay["currency"] != "EUR" || pay["merchant"] != "shop" || pm["payment_mandate_id"] != in.PaymentMandateID {
			t.Fatalf("payment mandate %v", pm)
		}
		_, cm, _ := compactParts(t, c.AP2.CheckoutMandate)
		if cm["payment_mandate_id"] != in.PaymentMandateID || fmt.Sprint(cm["total"].(map[string]any)["amount"]) != "3500" {
			t.Fatalf("checkout mandate %v", cm)
		}
	})
	t.Run("no settler", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto")
		in := in
		in.Crypto = nil
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeFailed || o.Code != "crypto_not_configured" {
			t.Fatalf("%+v %v", o, err)
		}
		if got := s.tools(); !slices.Equal(got, []string{"get_checkout"}) {
			t.Fatalf("calls %v", got)
		}
	})
	t.Run("no buyer", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto") // the single rail is crypto
		in := in
		in.PaymentMethod = ""
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), in)
		var br *BuyerRequiredError
		if err != nil || o.Kind != OutcomeSignInRequired || !errors.As(o.Err, &br) {
			t.Fatalf("%+v %v", o, err)
		}
		if got := s.tools(); !slices.Equal(got, []string{"get_checkout"}) {
			t.Fatalf("calls %v", got)
		}
	})
	t.Run("prepare without unsigned_tx", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto")
		s.answers["prepare_checkout_payment"] = func(map[string]json.RawMessage) any {
			return map[string]any{"ucp": map[string]any{"status": "success"}, "payment_intent": map[string]any{"id": "pi_1"}}
		}
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeFailed || o.Code != "payment_intent_invalid" {
			t.Fatalf("%+v %v", o, err)
		}
		if slices.Contains(s.tools(), "complete_checkout") {
			t.Fatal("completed")
		}
	})
	t.Run("prepare refused by the allowance", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto")
		s.answers["prepare_checkout_payment"] = func(map[string]json.RawMessage) any {
			return map[string]any{"ucp": map[string]any{"status": "error"}, "messages": []any{map[string]any{"type": "error",
				"code": "spend_cap_exceeded", "content": "this allowance allows at most 20.00 EUR per order"}}}
		}
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeAllowanceRefused || o.Refusal.Limit != LimitMaxPerOrder || o.Refusal.Max != 2000 {
			t.Fatalf("%+v %v", o, err)
		}
	})
	t.Run("settlement fails", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto")
		in := in
		in.Crypto = settleFunc(func(string) (string, error) { return "", errors.New("node unreachable") })
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeFailed || o.Code != "payment_execution_failed" || o.Err == nil {
			t.Fatalf("%+v %v", o, err)
		}
		if slices.Contains(s.tools(), "complete_checkout") {
			t.Fatal("completed")
		}
	})
	t.Run("re-fetched terms do not verify", func(t *testing.T) {
		t.Parallel()
		s := newStubStore(t, "artos.crypto")
		s.answers["prepare_checkout_payment"] = func(map[string]json.RawMessage) any {
			s.mu.Lock()
			s.tamper = tamperTotal
			s.mu.Unlock()
			return map[string]any{"payment_intent": map[string]any{"unsigned_tx": "e30="}}
		}
		settled := false
		in := in
		in.Crypto = settleFunc(func(string) (string, error) { settled = true; return "x", nil })
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), in)
		if err != nil || o.Kind != OutcomeFailed || o.Code != string(mandate.CodeMerchantAuthorizationInvalid) || settled {
			t.Fatalf("%+v %v (settled %v)", o, err, settled)
		}
	})
}

type settleFunc func(string) (string, error)

func (f settleFunc) Settle(_ context.Context, tx string) (string, error) { return f(tx) }

// tamperTotal raises the total after signing.
func tamperTotal(b json.RawMessage) json.RawMessage {
	return json.RawMessage(strings.Replace(string(b), `"amount":4190,"type":"total"`, `"amount":1,"type":"total"`, 1))
}

func TestConfirmPurchaseGuards(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	run := func(t *testing.T, s *stubStore, in ConfirmInput) *CheckoutOutcome {
		t.Helper()
		in.Store, in.CheckoutID, in.Signer = "shop", "chk_1", signer
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(s.tools(), "complete_checkout") {
			t.Fatalf("completed: %+v", o)
		}
		return o
	}
	t.Run("tampered checkout", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.tamper = tamperTotal
		o := run(t, s, ConfirmInput{})
		if o.Kind != OutcomeFailed || o.Code != "merchant_authorization_invalid" || !errors.Is(o.Err, mandate.ErrMerchantAuthorizationInvalid) {
			t.Fatalf("%+v", o)
		}
	})
	t.Run("unsigned checkout", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.tamper = func(b json.RawMessage) json.RawMessage {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			delete(m, "ap2")
			out, _ := json.Marshal(m)
			return out
		}
		o := run(t, s, ConfirmInput{})
		if o.Kind != OutcomeFailed || o.Code != "merchant_authorization_missing" {
			t.Fatalf("%+v", o)
		}
	})
	t.Run("totals do not add up", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.setTotals(3500, 690, 4000)
		o := run(t, s, ConfirmInput{})
		var te *TotalsError
		if o.Kind != OutcomeFailed || o.Code != "totals_inconsistent" || !errors.As(o.Err, &te) {
			t.Fatalf("%+v", o)
		}
		// With a page for the buyer: escalate there.
		s = newStubStore(t, "artos.card")
		s.setTotals(3500, 690, 4000)
		s.checkout["continue_url"] = "https://store.example/pay/chk_1"
		o = run(t, s, ConfirmInput{})
		if o.Kind != OutcomeEscalationRequired || o.ContinueURL == "" || !errors.As(o.Err, &te) {
			t.Fatalf("%+v", o)
		}
	})
	t.Run("client ceiling", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		o := run(t, s, ConfirmInput{MaxSpend: 4189})
		if o.Kind != OutcomeAllowanceRefused || o.Code != "spend_cap_exceeded" || o.Refusal.Limit != LimitClientMaxSpend ||
			o.Refusal.Max != 4189 || o.Refusal.Currency != "EUR" {
			t.Fatalf("%+v %+v", o, o.Refusal)
		}
		o = run(t, newStubStore(t, "artos.card"), ConfirmInput{MaxSpend: 10000, MaxSpendCurrency: "usd"})
		if o.Kind != OutcomeAllowanceRefused || o.Refusal.Limit != LimitCurrency {
			t.Fatalf("%+v %+v", o, o.Refusal)
		}
		// At the ceiling: completes.
		s = newStubStore(t, "artos.card")
		if o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer,
			MaxSpend: 4190, MaxSpendCurrency: "EUR"}); err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
	})
	t.Run("store error on get_checkout", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.answers["get_checkout"] = func(map[string]json.RawMessage) any {
			return map[string]any{"ucp": map[string]any{"status": "error"},
				"messages": []any{map[string]any{"type": "error", "code": "not_found", "content": "no such checkout"}}}
		}
		o := run(t, s, ConfirmInput{})
		if o.Kind != OutcomeFailed || o.Code != "not_found" {
			t.Fatalf("%+v", o)
		}
	})
	t.Run("mandate id that is not a UUID is dropped", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer,
			PaymentMandateID: "pm_123"})
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		_, claims, _ := compactParts(t, s.completion(t).AP2.CheckoutMandate)
		if _, ok := claims["payment_mandate_id"]; ok {
			t.Fatalf("claims %v", claims)
		}
	})
	t.Run("input", func(t *testing.T) {
		c := newStubStore(t).client(t, false)
		for _, in := range []ConfirmInput{
			{CheckoutID: "c", Signer: signer}, {Store: "shop", Signer: signer}, {Store: "shop", CheckoutID: "c"},
			{Store: "shop", CheckoutID: "c", Signer: signer, MaxSpend: -1},
		} {
			if _, err := c.ConfirmPurchase(t.Context(), in); err == nil {
				t.Errorf("%+v accepted", in)
			}
		}
	})
}

// A buyer-bound call answered 401: the buyer must sign in again.
func TestConfirmPurchaseSignIn(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"complete_checkout", "prepare_checkout_payment"} {
		s := newStubStore(t, "artos.crypto")
		s.status[tool] = http.StatusUnauthorized
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: newTestSigner(t),
			Crypto: SandboxSettler{}})
		var ae *AuthChallengeError
		if err != nil || o.Kind != OutcomeSignInRequired || o.Code != "invalid_token" || !errors.As(o.Err, &ae) ||
			ae.Challenge.ResourceMetadata == "" {
			t.Fatalf("%s: %+v %v", tool, o, err)
		}
		if s.last(tool) == nil {
			t.Fatalf("%s not called: %v", tool, s.tools())
		}
	}
}

// A 401 to the platform's key is the platform's problem: an error.
func TestConfirmPurchasePlatformRefused(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"get_checkout", "complete_checkout"} {
		s := newStubStore(t, "artos.card")
		s.status[tool] = http.StatusUnauthorized
		o, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: newTestSigner(t)})
		var ae *AuthChallengeError
		if o != nil || !errors.As(err, &ae) {
			t.Fatalf("%s: %+v %v", tool, o, err)
		}
	}
}

func TestConfirmPurchaseCoupon(t *testing.T) {
	t.Parallel()
	signer := newTestSigner(t)
	yes, no := true, false
	eligibility := func(t *testing.T, c *stubCall) (map[string]any, []string) {
		t.Helper()
		var a struct {
			Context map[string]any `json:"context"`
		}
		if err := json.Unmarshal(c.Args["checkout"], &a); err != nil {
			t.Fatal(err)
		}
		var e []string
		if l, ok := a.Context["eligibility"].([]any); ok {
			for _, v := range l {
				e = append(e, v.(string))
			}
		}
		return a.Context, e
	}
	t.Run("attach with the key and the buyer", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.checkout["context"] = map[string]any{"address_country": "US", "eligibility": []any{"com.example.member"}}
		s.answers["update_checkout"] = func(map[string]json.RawMessage) any {
			s.checkout["context"] = map[string]any{"address_country": "US", "eligibility": []any{"com.example.member", couponClaim}}
			return s.signed()
		}
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer, ApplyCoupon: &yes})
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		if got := s.tools(); !slices.Equal(got, []string{"get_checkout", "update_checkout", "get_checkout", "complete_checkout"}) {
			t.Fatalf("calls %v", got)
		}
		u := s.last("update_checkout")
		credentials(t, u, true, true)
		ctx, e := eligibility(t, u)
		if ctx["address_country"] != "US" || !slices.Equal(e, []string{"com.example.member", couponClaim}) {
			t.Fatalf("context %v", ctx)
		}
	})
	t.Run("attach without a buyer does nothing", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		if _, err := s.client(t, false).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer, ApplyCoupon: &yes}); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(s.tools(), "update_checkout") {
			t.Fatal("attached without a buyer")
		}
	})
	t.Run("strip with the key", func(t *testing.T) {
		s := newStubStore(t, "artos.card")
		s.checkout["context"] = map[string]any{"eligibility": []any{couponClaim}}
		s.answers["update_checkout"] = func(map[string]json.RawMessage) any {
			delete(s.checkout, "context")
			return s.signed()
		}
		o, err := s.client(t, true).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer, ApplyCoupon: &no})
		if err != nil || o.Kind != OutcomeCompleted {
			t.Fatalf("%+v %v", o, err)
		}
		u := s.last("update_checkout")
		credentials(t, u, true, false)
		if _, e := eligibility(t, u); len(e) != 0 {
			t.Fatalf("eligibility %v", e)
		}
		// Nothing to strip: no update.
		s = newStubStore(t, "artos.card")
		if _, err := s.client(t, true).ConfirmPurchase(t.Context(), ConfirmInput{Store: "shop", CheckoutID: "chk_1", Signer: signer, ApplyCoupon: &no}); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(s.tools(), "update_checkout") {
			t.Fatal("stripped nothing")
		}
	})
}

func TestSandboxSettler(t *testing.T) {
	tx := []byte(`{"intent":"pi_1"}`)
	sum := sha256.Sum256(tx)
	got, err := SandboxSettler{}.Settle(t.Context(), base64.StdEncoding.EncodeToString(tx))
	if err != nil || got != "sim_"+hex.EncodeToString(sum[:]) {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := (SandboxSettler{}).Settle(t.Context(), "not base64!"); err == nil {
		t.Fatal("accepted")
	}
}
