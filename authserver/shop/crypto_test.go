package shop_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

type prepared struct {
	PaymentIntent shop.PaymentIntent `json:"payment_intent"`
	Checkout      ucp.Checkout       `json:"checkout"`
}

func cryptoPayment(token string) map[string]any {
	return map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{
		"id": "i1", "handler_id": shop.HandlerCryptoID, "type": "crypto", "selected": true,
		"credential": map[string]any{"type": "token", "token": token}}}}}
}

func sportCheckout(t *testing.T, e *env, qty int, hdr ...string) *ucp.Checkout {
	t.Helper()
	body := lines(line("energy-gels-12", qty))
	body["fulfillment"] = usShipping
	return e.createCheckout("energy-sport", body, hdr...)
}

func prepare(t *testing.T, e *env, id string, hdr ...string) (*prepared, []byte, int) {
	t.Helper()
	res, b := e.req("POST", "/s/energy-sport/checkout-sessions/"+id+"/prepare-payment",
		map[string]any{"buyer_address": "0x" + strings.Repeat("0", 64), "input_coin_type": "0x2::sui::SUI"}, hdr...)
	if res.StatusCode != http.StatusOK {
		return nil, b, res.StatusCode
	}
	p := decode[prepared](t, b)
	return p, b, res.StatusCode
}

// TestCryptoPayment: prepare (buyer bearer, within the allowance) binds
// an intent to the checkout, its version and amount, and holds the
// amount; completing with the intent's settlement reference pays exactly
// once; the digest is what the sandbox chain gives the unsigned
// transaction.
func TestCryptoPayment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.allow("buyer_ada", "demo-agent", 50000, 50000, "USD")
	c := sportCheckout(t, e, 1, ada...)
	p, b, status := prepare(t, e, c.ID, ada...)
	if status != http.StatusOK {
		t.Fatalf("prepare: %d %s", status, b)
	}
	it := p.PaymentIntent
	tx, err := base64.StdEncoding.DecodeString(it.UnsignedTx)
	sum := sha256.Sum256(tx)
	if err != nil || it.SettlementReference != "sim_"+hex.EncodeToString(sum[:]) || it.CheckoutID != c.ID || it.Amount != p.Checkout.Totals[len(p.Checkout.Totals)-1].Amount {
		t.Fatalf("intent %+v", it)
	}
	if n := spent(t, e, "buyer_ada", "demo-agent"); n != it.Amount {
		t.Fatalf("prepare holds %d, want %d", n, it.Amount)
	}
	// The platform key cannot pay with crypto, even with the reference.
	got, b := completeAs(t, e, "energy-sport", c.ID, cryptoPayment(it.SettlementReference))
	if hasMessage(got, "authentication_required") == nil || got.Order != nil {
		t.Fatalf("platform crypto completion: %s", b)
	}
	// A wrong reference pays nothing.
	got, b = completeAs(t, e, "energy-sport", c.ID, cryptoPayment("sim_"+strings.Repeat("0", 64)), ada...)
	if hasMessage(got, "payment_failed") == nil || got.Order != nil {
		t.Fatalf("wrong reference: %s", b)
	}
	got, b = completeAs(t, e, "energy-sport", c.ID, cryptoPayment(it.SettlementReference), ada...)
	if got.Status != ucp.CheckoutCompleted || got.Order == nil {
		t.Fatalf("crypto completion: %s", b)
	}
	if n := spent(t, e, "buyer_ada", "demo-agent"); n != it.Amount {
		t.Fatalf("after the order %d counts, want %d", n, it.Amount)
	}
	// Exactly once: the same settlement again places nothing.
	res, b := e.req("POST", "/s/energy-sport/checkout-sessions/"+c.ID+"/complete", cryptoPayment(it.SettlementReference), ada...)
	if res.StatusCode == http.StatusOK && decode[ucp.Checkout](t, b).Order.ID != got.Order.ID {
		t.Fatalf("paid twice: %s", b)
	}
	if orders(t, e, "buyer_ada") != 1 {
		t.Fatal("a second order")
	}
}

// TestCryptoPrepareRefusals: prepare is buyer-only, needs an allowance
// that covers the amount, and a changed checkout voids the intent.
func TestCryptoPrepareRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := sportCheckout(t, e, 1, ada...)
	if _, b, status := prepare(t, e, c.ID, ada...); status != http.StatusOK || !strings.Contains(string(b), oauth.CodeAllowanceRequired) {
		t.Fatalf("no allowance: %d %s", status, b)
	}
	pc := sportCheckout(t, e, 1)
	if _, b, status := prepare(t, e, pc.ID); status != http.StatusForbidden {
		t.Fatalf("platform key prepare: %d %s", status, b)
	}
	e.allow("buyer_ada", "demo-agent", 1000, 50000, "USD")
	big := sportCheckout(t, e, 3, ada...)
	_, b, _ := prepare(t, e, big.ID, ada...)
	// The refusal is the first message (Artos clients show the first):
	// preparing crypto is the choice of rail, so no reminder to choose.
	if refused := decode[ucp.Checkout](t, b); len(refused.Messages) == 0 || refused.Messages[0].Code != oauth.CodeSpendCapExceeded ||
		spent(t, e, "buyer_ada", "demo-agent") != 0 {
		t.Fatalf("over the cap: %s", b)
	}
	e.allow("buyer_ada", "demo-agent", 50000, 50000, "USD")
	p, b, _ := prepare(t, e, c.ID, ada...)
	if p == nil || p.Checkout.Status != ucp.CheckoutReadyForComplete || len(p.Checkout.Messages) != 0 {
		t.Fatalf("%s", b)
	}
	// The platform-less update moves the version: the intent is void.
	upd := lines(line("energy-gels-12", 2))
	upd["fulfillment"] = usShipping
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, upd, ada...)
	wantStatus(t, res, b, http.StatusOK)
	got, b := completeAs(t, e, "energy-sport", c.ID, cryptoPayment(p.PaymentIntent.SettlementReference), ada...)
	if got.Order != nil || hasMessage(got, "payment_failed") == nil {
		t.Fatalf("stale intent paid: %s", b)
	}
	// Preparing again replaces the intent and its hold.
	p2, b, _ := prepare(t, e, c.ID, ada...)
	if p2 == nil || spent(t, e, "buyer_ada", "demo-agent") != p2.PaymentIntent.Amount {
		t.Fatalf("re-prepare: %s (spent %d)", b, spent(t, e, "buyer_ada", "demo-agent"))
	}
	if got, b := completeAs(t, e, "energy-sport", c.ID, cryptoPayment(p2.PaymentIntent.SettlementReference), ada...); got.Order == nil {
		t.Fatalf("%s", b)
	}
}
