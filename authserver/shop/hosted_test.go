package shop_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
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
