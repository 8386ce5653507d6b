package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// couponEnv serves the stores with the real account store, where Ada
// holds one coupon of balance (USD, from 30.00).
func couponEnv(t *testing.T, balance int64) (*env, *sqlstore.Store) {
	t.Helper()
	st := sqlstoretest.SQLite(t)
	doc, _ := json.Marshal(store.AccountDoc{Coupons: []store.SavedCoupon{{ID: "cpn_1", Balance: balance, Currency: "USD", MinSubtotal: 3000,
		ExpiresAt: time.Now().Add(time.Hour)}}})
	if err := st.CreateBuyer(context.Background(), &store.Buyer{ID: "buyer_ada", Email: "ada@example.com", PasswordHash: "x", Account: doc}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envOptions{store: st, cfg: func(c *shop.Config) { c.Accounts = st; c.Guard = dualAuth }})
	e.allow("buyer_ada", "demo-agent", 100000, 100000, "USD")
	return e, st
}

func couponBalance(t *testing.T, st *sqlstore.Store) int64 {
	t.Helper()
	b, err := st.Buyer(t.Context(), "buyer_ada")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := store.ParseAccount(b.Account)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Coupons[0].Balance
}

// attachCoupon claims the buyer's coupon the Artos way: update_checkout
// carrying only context, with the key and the buyer's bearer.
func attachCoupon(t *testing.T, e *env, id string, claims ...string) *ucp.Checkout {
	t.Helper()
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+id, map[string]any{"context": map[string]any{"eligibility": claims}},
		"X-Test-Dual", "buyer_ada")
	wantStatus(t, res, b, http.StatusOK)
	return decode[ucp.Checkout](t, b)
}

func couponLine(c *ucp.Checkout) int64 {
	for _, tl := range c.Totals {
		if tl.DisplayText == "Artos coupon" {
			return -tl.Amount
		}
	}
	return 0
}

// TestCouponCrypto: the claim with the buyer's bearer applies the
// coupon (a credit line after tax, the grand total lowered); the card is
// refused at the eligibility gate; crypto redeems it with the order, once.
func TestCouponCrypto(t *testing.T) {
	t.Parallel()
	e, st := couponEnv(t, 1500)
	c := sportCheckout(t, e, 2) // the platform's key; gels 2 × 30.00 + shipping + tax
	before := c.Totals[len(c.Totals)-1].Amount
	got := attachCoupon(t, e, c.ID, shop.CouponClaim)
	if couponLine(got) != 1500 || got.Totals[len(got.Totals)-1].Amount != before-1500 || len(got.LineItems) != 1 {
		t.Fatalf("coupon not applied (or the partial update lost the lines): %+v", got.Totals)
	}
	// Without the buyer, the claim does nothing and says why.
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, map[string]any{"context": map[string]any{"eligibility": []string{shop.CouponClaim}}})
	wantStatus(t, res, b, http.StatusOK)
	if k := decode[ucp.Checkout](t, b); couponLine(k) != 1500 {
		t.Fatalf("the platform's re-pricing dropped the buyer's coupon: %s", b)
	}
	// The card: the eligibility gate.
	got, b = completeAs(t, e, "energy-sport", c.ID, cardPayment("success_token"), ada...)
	if hasMessage(got, "coupon_requires_crypto") == nil || got.Order != nil || couponBalance(t, st) != 1500 {
		t.Fatalf("card with a coupon: %s", b)
	}
	p, b, _ := prepare(t, e, c.ID, ada...)
	if p == nil || p.PaymentIntent.Amount != before-1500 {
		t.Fatalf("prepare: %s", b)
	}
	if n := spent(t, e, "buyer_ada", "demo-agent"); n != before {
		t.Fatalf("the hold covers %d, want the order's value %d (coupon credit included)", n, before)
	}
	got, b = completeAs(t, e, "energy-sport", c.ID, cryptoPayment(p.PaymentIntent.SettlementReference), ada...)
	if got.Order == nil {
		t.Fatalf("crypto with the coupon: %s", b)
	}
	if bal := couponBalance(t, st); bal != 0 {
		t.Fatalf("coupon balance %d after the order, want 0", bal)
	}
}

// TestCouponCoversAll: a coupon that covers the whole total needs no
// rail; the buyer completes with no instrument, and the credit is taken;
// the platform's key cannot spend the buyer's credit.
func TestCouponCoversAll(t *testing.T) {
	t.Parallel()
	e, st := couponEnv(t, 50000)
	c := sportCheckout(t, e, 2)
	got := attachCoupon(t, e, c.ID, shop.CouponClaim)
	if total := got.Totals[len(got.Totals)-1].Amount; total != 0 {
		t.Fatalf("total %d", total)
	}
	owed := couponLine(got)
	if got, b := completeAs(t, e, "energy-sport", c.ID, map[string]any{}); hasMessage(got, "coupon_requires_buyer") == nil || got.Order != nil {
		t.Fatalf("the platform spent the buyer's coupon: %s", b)
	}
	got, b := completeAs(t, e, "energy-sport", c.ID, map[string]any{}, ada...)
	if got.Order == nil {
		t.Fatalf("$0 order: %s", b)
	}
	if bal := couponBalance(t, st); bal != 50000-owed {
		t.Fatalf("balance %d, want %d", bal, 50000-owed)
	}
	// Removing the claim removes the credit (on another checkout).
	c2 := sportCheckout(t, e, 2)
	attachCoupon(t, e, c2.ID, shop.CouponClaim)
	if got := attachCoupon(t, e, c2.ID); couponLine(got) != 0 {
		t.Fatalf("credit kept without the claim: %+v", got.Totals)
	}
}

// TestCouponSpentOnce: two orders racing for one coupon's whole balance:
// one gets it, the other is refused and places nothing.
func TestCouponSpentOnce(t *testing.T) {
	t.Parallel()
	e, st := couponEnv(t, 50000)
	var ids []string
	for range 2 {
		c := sportCheckout(t, e, 2)
		attachCoupon(t, e, c.ID, shop.CouponClaim)
		ids = append(ids, c.ID)
	}
	// One coupon of 500.00 covers both 0-total orders on paper; the
	// second redemption must find the balance gone (each takes ~71.43).
	// Lower the balance so only one fits.
	b, _ := st.Buyer(t.Context(), "buyer_ada")
	doc, _ := store.ParseAccount(b.Account)
	doc.Coupons[0].Balance = 10000
	raw, _ := json.Marshal(doc)
	if err := st.SetBuyerAccount(t.Context(), "buyer_ada", raw); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	placed := make([]bool, 2)
	for i, id := range ids {
		wg.Go(func() {
			got, _ := completeAs(t, e, "energy-sport", id, map[string]any{}, ada...)
			placed[i] = got.Order != nil
		})
	}
	wg.Wait()
	if n, err := st.BuyerOrders(t.Context(), "buyer_ada", nil, 10); err != nil || len(n) != 1 {
		t.Fatalf("%d orders stored, want 1 (%v)", len(n), err)
	}
	if placed[0] == placed[1] {
		for _, id := range ids {
			_, b := e.req("GET", "/s/energy-sport/checkout-sessions/"+id, nil)
			t.Logf("%s", b)
		}
		t.Fatalf("placed %v: want exactly one; balance %d", placed, couponBalance(t, st))
	}
	if bal := couponBalance(t, st); bal < 0 || bal >= 10000 {
		t.Fatalf("balance %d", bal)
	}
}

// TestCouponNeedsSpendingBearer: the key with a buyer's bearer that may
// not spend (no purchase:complete) cannot name the buyer's coupon.
func TestCouponNeedsSpendingBearer(t *testing.T) {
	t.Parallel()
	e, _ := couponEnv(t, 1500)
	c := sportCheckout(t, e, 2)
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, map[string]any{"context": map[string]any{"eligibility": []string{shop.CouponClaim}}},
		"X-Test-Dual", "buyer_ada", "X-Test-Scopes", "orders:read")
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[ucp.Checkout](t, b); couponLine(got) != 0 || hasMessage(got, "coupon_requires_buyer") == nil {
		t.Fatalf("a read-only bearer applied the buyer's coupon: %s", b)
	}
}
