package shop_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// continuePage fetches a checkout's hosted continue page.
func (e *env) continuePage(t *testing.T, c *ucp.Checkout) string {
	t.Helper()
	res, err := e.srv.Client().Get(c.ContinueURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("continue page: HTTP %d %s", res.StatusCode, b)
	}
	return string(b)
}

// TestHostedPageMoney: amounts show in major units with the currency's ISO
// 4217 exponent. The page once kept its own table of exponents, which
// lacked XAF (and UGX, PYG, …): a Central African store showed 1500 francs
// as "15.00 XAF".
func TestHostedPageMoney(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := shop.PutSeedShop(t.Context(), e.store, shop.SeedShop{Slug: "douala-market", Name: "Douala Market", Currency: "XAF",
		Config:   shop.Settings{Rails: []string{shop.HandlerCardID}},
		Products: []shop.SeedProduct{{ID: "plantain", Title: "Plantain", Variants: []shop.SeedVariant{{ID: "plantain", Title: "Plantain", Price: 1500, Stock: -1}}}},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		slug, item string
		want       string
	}{
		{"douala-market", "plantain", "3000 XAF"},
		{"kyoto-tea", "sencha-100", "3240 JPY"},
		{"flower-shop", "bouquet_roses", "70.00 EUR"},
	} {
		c := e.createCheckout(tc.slug, lines(line(tc.item, 2)))
		// An escalation makes the page show the checkout with its pay button.
		_, b := e.req("POST", "/s/"+tc.slug+"/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenEscalate))
		if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutRequiresEscalation {
			t.Fatalf("%s: setup: %s", tc.slug, b)
		}
		page := e.continuePage(t, c)
		if !strings.Contains(page, "Pay "+tc.want) {
			t.Errorf("%s: the page does not show %q:\n%s", tc.slug, tc.want, page)
		}
	}
}

// TestReviewHostedPageCompletesAP2CheckoutWithoutMandate (security review, finding 3):
// The hosted continue page pays any non-terminal checkout, not only an
// escalated one. continue_url is in every create/update response, so the
// agent itself can POST the form: the order is placed without the AP2
// mandate and is recorded as buyer_type "human".
func TestReviewHostedPageCompletesAP2CheckoutWithoutMandate(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.Status != ucp.CheckoutReadyForComplete || c.ContinueURL == "" {
		t.Fatalf("setup: %s %q", c.Status, c.ContinueURL)
	}
	u, _ := url.Parse(c.ContinueURL)
	res, err := e.srv.Client().PostForm(e.srv.URL+u.Path, url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if st, _ := checkoutStatus(t, b); st == ucp.CheckoutCompleted {
		t.Fatalf("the agent completed a never-escalated AP2 checkout through continue_url, no mandate: %s", b)
	}
}

// hookStore runs before once, just before the first CompleteSession: a
// write that lands between completion's read and its commit.
type hookStore struct {
	store.Commerce
	once   sync.Once
	before func()
}

func (h *hookStore) CompleteSession(ctx context.Context, s *store.Session, o *store.Order, takes []store.StockTake) error {
	h.once.Do(h.before)
	return h.Commerce.CompleteSession(ctx, s, o, takes)
}

// TestReviewHostedPayNeedsEscalationOnEveryAttempt: the platform updates
// the checkout while the buyer's hosted payment runs, taking it back from
// the buyer (ready_for_complete again, same terms); the retry after the
// lost race finds it no longer waiting for the buyer and pays nothing.
// (It used to complete whatever the platform had put in, unseen by the
// buyer and covered by no mandate; changed terms are also caught by
// TestReviewHostedPayChargesWhatItShowed.)
func TestReviewHostedPayNeedsEscalationOnEveryAttempt(t *testing.T) {
	t.Parallel()
	hs := &hookStore{Commerce: sqlstoretest.SQLite(t)}
	e := newEnv(t, &envOptions{store: hs})
	c := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenEscalate))
	esc := decode[ucp.Checkout](t, b)
	if esc.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("setup: %s", b)
	}
	form := e.hostedForm(esc.ContinueURL)
	hs.before = func() {
		res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+c.ID, map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
		wantStatus(t, res, b, 200)
	}
	r, err := e.srv.Client().PostForm(esc.ContinueURL, form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if got := decode[ucp.Checkout](t, b); got.Status == ucp.CheckoutCompleted {
		t.Fatalf("the hosted page completed a checkout that was no longer escalated: %s", b)
	}
}

// TestReviewHostedPayChargesWhatItShowed: the price changes after the
// page was drawn; the buyer's click pays nothing, and the page shows the
// new total for the buyer to accept.
func TestReviewHostedPayChargesWhatItShowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenEscalate))
	esc := decode[ucp.Checkout](t, b)
	form := e.hostedForm(esc.ContinueURL)
	if err := e.store.PutProduct(t.Context(), &store.Product{ShopSlug: "flower-shop", ID: "bouquet_roses", Title: "Bouquet of Red Roses",
		Text: "roses", MinPrice: 10500, MaxPrice: 10500, Currency: "EUR", Doc: []byte(`{"id":"bouquet_roses","title":"Bouquet of Red Roses"}`), UpdatedAt: time.Now()},
		[]*store.Variant{{ShopSlug: "flower-shop", ID: "bouquet_roses", ProductID: "bouquet_roses", Title: "Bouquet of Red Roses", Price: 10500, Stock: 40}}); err != nil {
		t.Fatal(err)
	}
	r, err := e.srv.Client().PostForm(esc.ContinueURL, form)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("%v %v", r, err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	got := decode[ucp.Checkout](t, b)
	if got.Status != ucp.CheckoutRequiresEscalation || got.Totals[len(got.Totals)-1].Amount != 10500 {
		t.Fatalf("the buyer clicked \"Pay 35.00 EUR\" and the checkout is now: %s", b)
	}
	if !strings.Contains(string(page), "Pay 105.00 EUR") {
		t.Fatalf("the page does not offer the new total:\n%s", page)
	}
	// The buyer accepts the new total.
	e.payOnHostedPage(esc.ContinueURL)
	_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutCompleted || got.Totals[len(got.Totals)-1].Amount != 10500 {
		t.Fatalf("%s", b)
	}
	// A second click on the old page is not an error: the page shows the
	// order.
	r, err = e.srv.Client().PostForm(esc.ContinueURL, form)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("second click: %v %v", r, err)
	}
	r.Body.Close()
}
