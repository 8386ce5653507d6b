package shop_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// escalated creates a flower-shop checkout of qty bouquets of roses (35.00
// EUR each, shipped to France) as platform-a, and escalates it to the
// buyer with the sandbox 3-D Secure token. hdr are extra request headers.
func (e *env) escalated(qty int, hdr ...string) *ucp.Checkout {
	e.t.Helper()
	c := e.createCheckout("flower-shop", map[string]any{"line_items": []any{line("bouquet_roses", qty)}, "fulfillment": frShipping}, hdr...)
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenEscalate), hdr...)
	esc := decode[ucp.Checkout](e.t, b)
	if esc.Status != ucp.CheckoutRequiresEscalation || esc.ContinueURL == "" {
		e.t.Fatalf("setup: %s", b)
	}
	return esc
}

// checkout reads a flower-shop checkout as platform-a.
func (e *env) checkout(id string) *ucp.Checkout {
	e.t.Helper()
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+id, nil)
	return decode[ucp.Checkout](e.t, b)
}

func total(c *ucp.Checkout) int64 { return c.Totals[len(c.Totals)-1].Amount }

// money is a checkout's total as the page shows it.
func money(c *ucp.Checkout) string { return ucp.FormatMinor(total(c), c.Currency) + " " + c.Currency }

// TestHostedPageMoney: amounts show in major units with the currency's ISO
// 4217 exponent. The page once kept its own table of exponents, which
// lacked XAF (and UGX, PYG, …): a Central African store showed 1500 francs
// as "15.00 XAF".
func TestHostedPageMoney(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, sh := range []shop.SeedShop{
		{Slug: "douala-market", Name: "Douala Market", Currency: "XAF", Config: shop.Settings{Rails: []string{shop.HandlerCardID}},
			Products: []shop.SeedProduct{{ID: "plantain", Title: "Plantain", Variants: []shop.SeedVariant{{ID: "plantain", Title: "Plantain", Price: 1500, Stock: -1}}}}},
		{Slug: "osaka-market", Name: "Osaka Market", Currency: "JPY", Config: shop.Settings{Rails: []string{shop.HandlerCardID}},
			Products: []shop.SeedProduct{{ID: "sencha", Title: "Sencha", Variants: []shop.SeedVariant{{ID: "sencha", Title: "Sencha", Price: 1620, Stock: -1}}}}},
	} {
		if err := shop.PutSeedShop(t.Context(), e.store, sh, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		slug, item string
		want       string
	}{
		{"douala-market", "plantain", "3000 XAF"},
		{"osaka-market", "sencha", "3240 JPY"},
		{"flower-shop", "bouquet_roses", "70.00 EUR"},
	} {
		c := e.createCheckout(tc.slug, lines(line(tc.item, 2)))
		_, b := e.req("POST", "/s/"+tc.slug+"/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenEscalate))
		if got := decode[ucp.Checkout](t, b); got.Status != ucp.CheckoutRequiresEscalation {
			t.Fatalf("%s: setup: %s", tc.slug, b)
		}
		br := e.browser(c.ContinueURL)
		br.want(http.StatusOK, tc.want)
		br.enterCard(shop.SandboxCardSuccess)
		br.want(http.StatusOK, "Pay "+tc.want)
	}
}

// TestHostedSandboxCards: each documented sandbox card, through the card
// step, 3-D Secure where it applies, and the confirmation. Nothing is
// charged before the buyer confirms the amount; the declined card and a
// failed authentication charge nothing and leave the checkout payable.
func TestHostedSandboxCards(t *testing.T) {
	t.Parallel()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		esc := e.escalated(1)
		pay := "Pay " + money(esc)
		b := e.browser(esc.ContinueURL)
		if b.hasForm("pay") || !b.hasForm("card") {
			t.Fatalf("the page must ask for a card first, with no pay button:\n%s", b.page)
		}
		b.enterCard("4242 4242 4242 4242")
		b.want(http.StatusOK, "Visa •••• 4242", pay)
		if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
			t.Fatalf("entering the card charged before the buyer confirmed: %s", got.Status)
		}
		form := b.form("pay")
		b.post(form)
		b.want(http.StatusOK, "Order placed")
		got := e.checkout(esc.ID)
		if got.Status != ucp.CheckoutCompleted || got.Order == nil {
			t.Fatalf("%+v", got)
		}
		o, err := e.store.Order(t.Context(), "flower-shop", got.Order.ID)
		if err != nil || o.BuyerType != "human" {
			t.Fatalf("%+v %v", o, err)
		}
		// A second click on the confirmation shows the order.
		b.post(form)
		b.want(http.StatusOK, "Order placed")
	})

	t.Run("declined", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		esc := e.escalated(1)
		pay := "Pay " + money(esc)
		b := e.browser(esc.ContinueURL)
		b.enterCard(shop.SandboxCardDeclined)
		b.want(http.StatusOK, pay)
		b.submit("pay")
		b.want(http.StatusPaymentRequired, "Your card was declined")
		if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation || got.Order != nil {
			t.Fatalf("a declined card: %+v", got)
		}
		// The buyer tries another card.
		b.payWith(shop.SandboxCardSuccess)
		b.want(http.StatusOK, "Order placed")
	})

	t.Run("3-D Secure", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		esc := e.escalated(1)
		pay := "Pay " + money(esc)
		b := e.browser(esc.ContinueURL)
		b.enterCard(shop.SandboxCard3DS)
		b.want(http.StatusOK, "Complete authentication", "Fail authentication", money(esc))
		if b.hasForm("pay") {
			t.Fatal("the 3-D Secure card skipped authentication")
		}
		b.submit("3ds", "decision", "fail")
		b.want(http.StatusPaymentRequired, "Authentication failed")
		if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
			t.Fatalf("a failed authentication: %s", got.Status)
		}
		b.enterCard(shop.SandboxCard3DS)
		b.submit("3ds", "decision", "complete")
		b.want(http.StatusOK, pay)
		if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
			t.Fatalf("authentication charged before the buyer confirmed: %s", got.Status)
		}
		b.submit("pay")
		b.want(http.StatusOK, "Order placed")
	})

	t.Run("unknown sandbox card", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		esc := e.escalated(1)
		pay := "Pay " + money(esc)
		b := e.browser(esc.ContinueURL)
		_ = pay
		b.enterCard("5555 5555 5555 4444") // a valid Mastercard number
		b.want(http.StatusPaymentRequired, "unknown sandbox card")
		if !b.hasForm("card") || b.hasForm("pay") {
			t.Fatalf("want the card form again:\n%s", b.page)
		}
	})
}

// TestHostedCardFormErrors: a card the page cannot take shows the form
// again with what is wrong (422), never a server error, and charges
// nothing.
func TestHostedCardFormErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	past := time.Now().AddDate(0, -2, 0).Format("01/06")
	for _, tc := range []struct {
		name                        string
		number, expiry, cvc, holder string
		want                        string
	}{
		{"empty", "", "", "", "", "Enter the card number."},
		{"luhn", "4242 4242 4242 4241", futureExpiry(), "123", "", "This card number is not valid"},
		{"letters", "4242-4242-abcd-4242", futureExpiry(), "123", "", "digits only"},
		{"expired", shop.SandboxCardSuccess, past, "123", "", "This card has expired."},
		{"expiry format", shop.SandboxCardSuccess, "2031-04", "123", "", "Write the expiry date as MM/YY"},
		{"month", shop.SandboxCardSuccess, "13/30", "123", "", "The expiry month is 01 to 12."},
		{"short cvc", shop.SandboxCardSuccess, futureExpiry(), "12", "", "the 3 digits on the back"},
		{"amex cvc", "3782 822463 10005", futureExpiry(), "123", "", "4 digits on its front"},
		{"name", shop.SandboxCardSuccess, futureExpiry(), "123", strings.Repeat("a", 101), "longer than 100 characters"},
	} {
		b.submit("card", "number", tc.number, "expiry", tc.expiry, "cvc", tc.cvc, "name", tc.holder)
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, tc.want) || !b.hasForm("card") {
			t.Errorf("%s: HTTP %d, want 422 with %q and the card form:\n%s", tc.name, b.status, tc.want, b.page)
		}
		if strings.Contains(b.page, "4242 4242 4241") || strings.Contains(b.page, "3782 822463") {
			t.Errorf("%s: the page echoes the card number", tc.name)
		}
	}
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("%s", got.Status)
	}
}

// TestHostedCSRF: every POST needs the page's CSRF token, which is bound
// to the browser's cookie and to this checkout's continue token. Forms
// without it, without the cookie, from another checkout or marked
// cross-site by the browser get 403 and charge nothing; so does a card
// accepted on another checkout's page.
func TestHostedCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	esc := e.escalated(1)
	other := e.escalated(2)

	b := e.browser(esc.ContinueURL)
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy"} {
		res, err := b.client.Get(esc.ContinueURL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	b.enterCard(shop.SandboxCardSuccess)
	pay := b.form("pay")

	// The other checkout's page, in the same browser: its forms verify
	// there only.
	ob := &browser{t: t, client: b.client, url: other.ContinueURL}
	ob.open()
	ob.enterCard(shop.SandboxCardSuccess)
	otherPay := ob.form("pay")

	without := func(f url.Values, key string) url.Values {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		g.Del(key)
		return g
	}
	with := func(f url.Values, key, val string) url.Values {
		g := without(f, key)
		g.Set(key, val)
		return g
	}
	stranger := e.browser(esc.ContinueURL) // another browser: another cookie
	for _, tc := range []struct {
		name string
		b    *browser
		form url.Values
		hdr  string
	}{
		{"no token", b, without(pay, "csrf"), ""},
		{"forged token", b, with(pay, "csrf", "forged"), ""},
		{"token of another checkout", b, with(pay, "csrf", otherPay.Get("csrf")), ""},
		{"another browser's cookie", stranger, pay, ""},
		{"cross-site", b, pay, "cross-site"},
	} {
		r, err := http.NewRequest("POST", esc.ContinueURL, strings.NewReader(tc.form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.hdr != "" {
			r.Header.Set("Sec-Fetch-Site", tc.hdr)
		}
		res, err := tc.b.client.Do(r)
		tc.b.read(res, err)
		if tc.b.status != http.StatusForbidden || !strings.Contains(tc.b.page, "nothing was charged") {
			t.Errorf("%s: HTTP %d, want 403:\n%s", tc.name, tc.b.status, tc.b.page)
		}
	}
	// No cookie at all (a client without a jar).
	res, err := e.srv.Client().PostForm(esc.ContinueURL, pay)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("no cookie: HTTP %d, want 403", res.StatusCode)
	}
	// A card the other checkout's page accepted, with this page's valid
	// CSRF token: the buyer types the card again.
	b.post(with(pay, "card", otherPay.Get("card")))
	b.want(http.StatusUnprocessableEntity, "Enter your card again")
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("a refused form charged: %s", got.Status)
	}
	// The genuine form pays.
	b.post(pay)
	b.want(http.StatusOK, "Order placed")
}

// TestHostedPayBindsToWhatWasShown (issue 9): the page showed amount A; the
// platform changed the basket (amount B) and escalated it again. The
// confirmation for A charges nothing and shows B; confirming B places the
// order at B.
func TestHostedPayBindsToWhatWasShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	b.want(http.StatusOK, "Pay "+money(esc))

	res, body := e.req("PUT", "/s/flower-shop/checkout-sessions/"+esc.ID, map[string]any{"line_items": []any{line("bouquet_roses", 12)}, "fulfillment": frShipping})
	wantStatus(t, res, body, 200)
	_, body = e.req("POST", "/s/flower-shop/checkout-sessions/"+esc.ID+"/complete", cardPayment(shop.TokenEscalate))
	changed := decode[ucp.Checkout](t, body)
	if changed.Status != ucp.CheckoutRequiresEscalation || total(changed) <= total(esc) {
		t.Fatalf("setup: %s", body)
	}

	b.submit("pay")
	b.want(http.StatusConflict, "Pay "+money(changed), "the total is now "+money(changed)+" (it was "+money(esc)+")", "Nothing was charged")
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation || got.Order != nil {
		t.Fatalf("the page showed %s and charged: %+v", money(esc), got)
	}
	b.submit("pay")
	b.want(http.StatusOK, "Order placed")
	got := e.checkout(esc.ID)
	if got.Status != ucp.CheckoutCompleted || total(got) != total(changed) {
		t.Fatalf("%+v", got)
	}
	o, err := e.store.Order(t.Context(), "flower-shop", got.Order.ID)
	if err != nil {
		t.Fatal(err)
	}
	if order := decode[ucp.Order](t, o.Doc); order.Totals[len(order.Totals)-1].Amount != total(changed) {
		t.Fatalf("the order's total: %s", o.Doc)
	}
}

// TestHostedPayBindsToVersionShown: the platform takes the checkout back
// and escalates it again at the same terms after the page was drawn. The
// old confirmation pays nothing (the buyer confirmed another version of the
// checkout); the buyer confirms again and pays.
func TestHostedPayBindsToVersionShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	old := b.form("pay")
	res, body := e.req("PUT", "/s/flower-shop/checkout-sessions/"+esc.ID, map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
	wantStatus(t, res, body, 200)
	_, body = e.req("POST", "/s/flower-shop/checkout-sessions/"+esc.ID+"/complete", cardPayment(shop.TokenEscalate))
	if got := decode[ucp.Checkout](t, body); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("setup: %s", body)
	}
	b.post(old)
	b.want(http.StatusConflict, "Pay "+money(esc), "Nothing was charged")
	if fresh := b.form("pay"); fresh.Get("terms") != old.Get("terms") || fresh.Get("version") == old.Get("version") {
		t.Fatalf("setup: want the same terms at a new version: %v %v", old, fresh)
	}
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("the old confirmation paid a checkout version it never showed: %s", got.Status)
	}
	b.submit("pay")
	b.want(http.StatusOK, "Order placed")
}

// TestHostedOrderKeepsClientAndBuyer: an order paid on the hosted page is
// recorded for the client and buyer of the credential that created the
// checkout, although the page runs without one.
func TestHostedOrderKeepsClientAndBuyer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name          string
		hdr           []string
		client, buyer string
	}{
		{"platform key", nil, "platform-a", ""},
		{"buyer bearer", []string{"X-Test-Client", "agent-app", "X-Test-Buyer", "buyer-7", "X-Test-Scopes", "purchase:complete"}, "agent-app", "buyer-7"},
	} {
		if tc.buyer != "" {
			// Escalating is a buyer-bound completion: the allowance
			// applies to it (the hosted payment itself is the buyer's).
			e.allow(tc.buyer, tc.client, 100000, 100000, "EUR")
		}
		esc := e.escalated(1, tc.hdr...)
		e.payOnHostedPage(esc.ContinueURL)
		_, body := e.req("GET", "/s/flower-shop/checkout-sessions/"+esc.ID, nil, tc.hdr...)
		got := decode[ucp.Checkout](t, body)
		if got.Order == nil {
			t.Fatalf("%s: %s", tc.name, body)
		}
		o, err := e.store.Order(t.Context(), "flower-shop", got.Order.ID)
		if err != nil || o.ClientID != tc.client || o.BuyerID != tc.buyer || o.BuyerType != "human" {
			t.Errorf("%s: order %+v (%v), want client %q buyer %q", tc.name, o, err, tc.client, tc.buyer)
		}
	}
}

// TestHostedCardExpires: an accepted card is usable for 30 minutes, as a
// provider's card token is; after that the buyer types it again.
func TestHostedCardExpires(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().Unix())
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = func() time.Time { return time.Unix(now.Load(), 0) } }})
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	now.Add(31 * 60)
	b.submit("pay")
	b.want(http.StatusUnprocessableEntity, "Enter your card again")
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("%s", got.Status)
	}
	b.payWith(shop.SandboxCardSuccess)
	b.want(http.StatusOK, "Order placed")
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
	b := e.browser(c.ContinueURL)
	if b.hasForm("card") || b.hasForm("pay") {
		t.Fatalf("a checkout never escalated shows a payment form:\n%s", b.page)
	}
	u, _ := url.Parse(c.ContinueURL)
	res, err := e.srv.Client().PostForm(e.srv.URL+u.Path, url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, body := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if st, _ := checkoutStatus(t, body); st == ucp.CheckoutCompleted {
		t.Fatalf("the agent completed a never-escalated AP2 checkout through continue_url, no mandate: %s", body)
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
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	hs.before = func() {
		res, body := e.req("PUT", "/s/flower-shop/checkout-sessions/"+esc.ID, map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping})
		wantStatus(t, res, body, 200)
	}
	b.submit("pay")
	if b.status != http.StatusOK || b.hasForm("pay") || b.hasForm("card") {
		t.Fatalf("want the checkout shown without a payment form: HTTP %d\n%s", b.status, b.page)
	}
	if got := e.checkout(esc.ID); got.Status == ucp.CheckoutCompleted {
		t.Fatalf("the hosted page completed a checkout that was no longer escalated: %s", got.Status)
	}
}

// TestReviewHostedPayChargesWhatItShowed: the price changes after the
// page was drawn; the buyer's confirmation pays nothing, and the page
// shows the new total for the buyer to accept.
func TestReviewHostedPayChargesWhatItShowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	b.want(http.StatusOK, "Pay "+money(esc))
	if err := e.store.PutProduct(t.Context(), &store.Product{ShopSlug: "flower-shop", ID: "bouquet_roses", Title: "Bouquet of Red Roses",
		Text: "roses", MinPrice: 10500, MaxPrice: 10500, Currency: "EUR", Doc: []byte(`{"id":"bouquet_roses","title":"Bouquet of Red Roses"}`), UpdatedAt: time.Now()},
		[]*store.Variant{{ShopSlug: "flower-shop", ID: "bouquet_roses", ProductID: "bouquet_roses", Title: "Bouquet of Red Roses", Price: 10500, Stock: 40}}); err != nil {
		t.Fatal(err)
	}
	b.submit("pay")
	b.want(http.StatusConflict, "Pay 105.00 EUR", "Nothing was charged")
	got := e.checkout(esc.ID)
	if got.Status != ucp.CheckoutRequiresEscalation || total(got) != 10500 {
		t.Fatalf("the buyer confirmed \"Pay %s\" and the checkout is now: %+v", money(esc), got)
	}
	// The buyer accepts the new total.
	b.submit("pay")
	b.want(http.StatusOK, "Order placed")
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutCompleted || total(got) != 10500 {
		t.Fatalf("%+v", got)
	}
}

// readHookStore runs hook on the nth session read after it is armed,
// before that read: a write that lands between the page's read of the
// checkout and the completion's.
type readHookStore struct {
	store.Commerce
	armed atomic.Bool
	n     atomic.Int32
	nth   int32
	hook  func()
}

func (h *readHookStore) Session(ctx context.Context, kind store.SessionKind, slug, id string) (*store.Session, error) {
	if h.armed.Load() && h.n.Add(1) == h.nth {
		h.hook()
	}
	return h.Commerce.Session(ctx, kind, slug, id)
}

// TestHostedPayVersionRace: the platform escalates the checkout again, at
// the same terms, after the page checked the form against the checkout
// and before the completion read it. The completion itself holds the
// payment to the version the page showed: nothing is charged.
func TestHostedPayVersionRace(t *testing.T) {
	t.Parallel()
	hs := &readHookStore{Commerce: sqlstoretest.SQLite(t), nth: 2}
	e := newEnv(t, &envOptions{store: hs})
	esc := e.escalated(1)
	b := e.browser(esc.ContinueURL)
	b.enterCard(shop.SandboxCardSuccess)
	hs.hook = func() {
		body := map[string]any{"line_items": []any{line("bouquet_roses", 1)}, "fulfillment": frShipping}
		// This runs on the server's goroutine: report, do not stop.
		if res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+esc.ID, body); res.StatusCode != 200 {
			t.Errorf("update: %s", b)
		}
		if _, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+esc.ID+"/complete", cardPayment(shop.TokenEscalate)); !strings.Contains(string(b), ucp.CheckoutRequiresEscalation) {
			t.Errorf("escalate again: %s", b)
		}
	}
	// Read 1 is the page's, read 2 the completion's.
	hs.armed.Store(true)
	b.submit("pay")
	hs.armed.Store(false)
	b.want(http.StatusConflict, "Pay "+money(esc), "Nothing was charged")
	if got := e.checkout(esc.ID); got.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("paid a version of the checkout the page never showed: %s", got.Status)
	}
	b.submit("pay")
	b.want(http.StatusOK, "Order placed")
}
