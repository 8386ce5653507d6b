package shop_test

// Security review of issue 9 (who may spend whose money, with which
// credential). Each TestReview9… test showed a hole (it failed
// before the fix it now guards); TestReview9Safe… tests pin down behaviour
// the review verified to be safe.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// review9AP2Checkout is an AP2 (checkout mandate) buyer-bound checkout
// at energy-sport, for Ada through demo-agent with an allowance in USD.
func review9AP2Env(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t, nil)
	e.agent.set(func(a *agentServer) { a.caps = append(a.caps, ucp.CapAP2Mandate) })
	allowanceID := e.allow("buyer_ada", "demo-agent", 50000, 50000, "USD")
	return e, allowanceID
}

// review9Mandate mints a checkout mandate over the checkout as the store
// serves it now, naming paymentMandateID.
func review9Mandate(t *testing.T, e *env, slug, id, paymentMandateID string, hdr ...string) string {
	t.Helper()
	res, live := e.req("GET", "/s/"+slug+"/checkout-sessions/"+id, nil, hdr...)
	wantStatus(t, res, live, http.StatusOK)
	tok, err := mandate.MintCheckoutMandate(e.agent.key, &mandate.Params{Checkout: live, Merchant: slug, PaymentMandateID: paymentMandateID})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestReview9SafeCryptoCompletionChecksPaymentMandateID pins a hole found
// in this review and fixed meanwhile (a70fc03, store.RecheckHold): a mandate's
// payment_mandate_id must be the buyer's allowance for this agent
// (README: "a mandate's payment_mandate_id, when present, is this
// allowance's id (mandate_scope_mismatch)"). On the card rail that holds
// (TestReview9SafeCardCompletionChecksPaymentMandateID). On the crypto
// rail the completion adopted the hold taken at prepare_checkout_payment,
// where no mandate was seen, and holdSpend returned early for an adopted
// hold of the same amount, so the mandate's payment_mandate_id was never
// compared with the allowance: a mandate scoped to another allowance (or
// another buyer's) paid.
func TestReview9SafeCryptoCompletionChecksPaymentMandateID(t *testing.T) {
	t.Parallel()
	e, allowanceID := review9AP2Env(t)
	c := sportCheckout(t, e, 1, ada...)
	p, b, status := prepare(t, e, c.ID, ada...)
	if status != http.StatusOK || p == nil {
		t.Fatalf("prepare: %d %s", status, b)
	}
	other := uuid()
	if other == allowanceID {
		t.Fatal("uuid collision")
	}
	body := cryptoPayment(p.PaymentIntent.SettlementReference)
	body["ap2"] = map[string]any{"checkout_mandate": review9Mandate(t, e, "energy-sport", c.ID, other, ada...)}
	got, b := completeAs(t, e, "energy-sport", c.ID, body, ada...)
	if got.Order != nil || hasMessage(got, oauth.CodeMandateMismatch) == nil {
		t.Fatalf("a crypto completion whose mandate names payment_mandate_id %s (the buyer's allowance is %s) was not refused with %s: status %q, order %v, messages %v",
			other, allowanceID, oauth.CodeMandateMismatch, got.Status, got.Order, messageCodes(got.Messages))
	}
}

// TestReview9SafeCardCompletionChecksPaymentMandateID: the control for the
// test above: the card rail refuses a mandate scoped to another
// allowance, and accepts the buyer's own.
func TestReview9SafeCardCompletionChecksPaymentMandateID(t *testing.T) {
	t.Parallel()
	e, allowanceID := review9AP2Env(t)
	c := sportCheckout(t, e, 1, ada...)
	body := cardPayment("success_token")
	body["ap2"] = map[string]any{"checkout_mandate": review9Mandate(t, e, "energy-sport", c.ID, uuid(), ada...)}
	got, b := completeAs(t, e, "energy-sport", c.ID, body, ada...)
	if got.Order != nil || hasMessage(got, oauth.CodeMandateMismatch) == nil {
		t.Fatalf("card: a foreign payment_mandate_id paid: %s", b)
	}
	body = cardPayment("success_token")
	body["ap2"] = map[string]any{"checkout_mandate": review9Mandate(t, e, "energy-sport", c.ID, allowanceID, ada...)}
	if got, b = completeAs(t, e, "energy-sport", c.ID, body, ada...); got.Order == nil {
		t.Fatalf("card: the buyer's own payment_mandate_id was refused: %s", b)
	}
}

// review9Lower lowers the buyer's allowance for client in place, as
// oauth.Server.LowerAllowance does (same id, lower limits).
func review9Lower(t *testing.T, e *env, buyer, client string, maxPerOrder, dailyCap int64) {
	t.Helper()
	us, ok := e.store.(interface {
		UpdateConsent(ctx context.Context, buyerID, clientID string, fn func(c *store.Consent) error) error
	})
	if !ok {
		t.Fatal("the env's store keeps no consents")
	}
	if err := us.UpdateConsent(t.Context(), buyer, client, func(c *store.Consent) error {
		al, err := oauth.ParseAllowance(c.Allowance)
		if err != nil || al == nil {
			return fmt.Errorf("no allowance: %v", err)
		}
		al.MaxPerOrder, al.DailyCap = maxPerOrder, dailyCap
		c.Allowance, _ = json.Marshal(al)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReview9SafeCryptoCompletionHonoursLoweredAllowance pins a hole
// found in this review and fixed meanwhile (a70fc03): the buyer lowers
// the agent's limits (account tools or /oauth/account, whose notice says
// "The new limits apply to the agent's next payment") after the agent
// prepared a crypto payment but before it completed. The completion is
// a buyer-bound completion and, in this sandbox, the payment itself
// ("complete_checkout … pays exactly once"), yet it adopts the hold from
// prepare and never checked the allowance again: an order above the
// buyer's new per-order limit and daily cap was placed.
func TestReview9SafeCryptoCompletionHonoursLoweredAllowance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.allow("buyer_ada", "demo-agent", 50000, 50000, "USD")
	c := sportCheckout(t, e, 1, ada...)
	p, b, status := prepare(t, e, c.ID, ada...)
	if status != http.StatusOK || p == nil {
		t.Fatalf("prepare: %d %s", status, b)
	}
	amount := p.PaymentIntent.Amount
	// The buyer now allows at most 1.00 USD per order and per day.
	review9Lower(t, e, "buyer_ada", "demo-agent", 100, 100)
	got, b := completeAs(t, e, "energy-sport", c.ID, cryptoPayment(p.PaymentIntent.SettlementReference), ada...)
	if got.Order != nil || hasMessage(got, oauth.CodeSpendCapExceeded) == nil {
		t.Fatalf("after the buyer lowered the limits to 1.00 USD per order and per day, a crypto completion of %s USD was placed (status %q, messages %v)",
			ucp.FormatMinor(amount, "USD"), got.Status, messageCodes(got.Messages))
	}
}

// TestReview9SafeIdempotentReplayIsAuthorizedFirst: the idempotency
// scope is the session owner (platform|buyer), which every agent client
// of the platform shares for that buyer; a stored completion is replayed
// only after the guard authorized the caller, so a token without
// purchase:complete (or another platform's buyer) never gets it.
func TestReview9SafeIdempotentReplayIsAuthorizedFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.allow("buyer_ada", "demo-agent", 5000, 5000, "EUR")
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
	key := uuid()
	path := "/s/flower-shop/checkout-sessions/" + c.ID + "/complete"
	res, b := e.req("POST", path, cardPayment("success_token"), append(ada, "Idempotency-Key", key)...)
	if res.StatusCode != http.StatusOK || decode[ucp.Checkout](t, b).Order == nil {
		t.Fatalf("complete: %s", b)
	}
	manage := []string{"X-Test-Client", "reader-agent", "X-Test-Platform", "platform-a", "X-Test-Buyer", "buyer_ada",
		"X-Test-Scopes", "dev.ucp.shopping.checkout:manage", "Idempotency-Key", key}
	if res, b := e.req("POST", path, cardPayment("success_token"), manage...); res.StatusCode != http.StatusForbidden {
		t.Fatalf("replay without purchase:complete: %d %s", res.StatusCode, b)
	}
	rival := []string{"X-Test-Client", "rival-agent", "X-Test-Platform", "platform-b", "X-Test-Buyer", "buyer_ada",
		"X-Test-Scopes", "purchase:complete", "Idempotency-Key", key}
	if _, b := e.req("POST", path, cardPayment("success_token"), rival...); decode[ucp.Checkout](t, b).Order != nil {
		t.Fatalf("another platform's buyer got the stored completion: %s", b)
	}
}

// TestReview9SafePlatformKeyNeverChargesSavedCard: after the buyer
// claimed the platform's checkout the platform's key still reaches it,
// but a completion with the key is not buyer-bound: a card instrument
// with no credential goes to the hosted page and never charges the
// buyer's saved card (which would bypass the allowance).
func TestReview9SafePlatformKeyNeverChargesSavedCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) {
		c.Accounts = cardAccounts{testAccounts{"platform-a": ""}, map[string]*store.SavedCard{"buyer_ada": {Token: "success_token", Brand: "visa", Last4: "4242"}}}
	}})
	e.allow("buyer_ada", "demo-agent", 100, 100, "EUR") // 1.00 EUR: nothing fits
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	// Ada claims it (an update is enough).
	res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+c.ID, lines(line("tulip_bunch", 1)), ada...)
	wantStatus(t, res, b, http.StatusOK)
	noCard := map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{"id": "i1", "handler_id": "artos.card", "type": "card", "selected": true}}}}
	got, b := completeAs(t, e, "flower-shop", c.ID, noCard)
	if got.Order != nil || got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("the platform key's completion of the buyer's checkout: %s", b)
	}
}
