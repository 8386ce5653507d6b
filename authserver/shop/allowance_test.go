package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The buyer Ada, signed in through demo-agent, an OAuth client of
// platform-a.
var ada = []string{"X-Test-Client", "demo-agent", "X-Test-Platform", "platform-a", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "purchase:complete"}

func spent(t *testing.T, e *env, buyer, client string) int64 {
	t.Helper()
	from, to := oauth.SpendDay(time.Now())
	n, err := e.store.Spent(t.Context(), buyer, client, from, to, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func orders(t *testing.T, e *env, buyer string) int {
	t.Helper()
	os, err := e.store.BuyerOrders(t.Context(), buyer, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(os)
}

// completeAs completes checkout id at slug with body and returns the
// checkout answer.
func completeAs(t *testing.T, e *env, slug, id string, body any, hdr ...string) (*ucp.Checkout, []byte) {
	t.Helper()
	res, b := e.req("POST", "/s/"+slug+"/checkout-sessions/"+id+"/complete", body, hdr...)
	if res.StatusCode != http.StatusOK {
		return &ucp.Checkout{}, b
	}
	return decode[ucp.Checkout](t, b), b
}

func hasMessage(c *ucp.Checkout, code string) *ucp.Message {
	for i := range c.Messages {
		if c.Messages[i].Code == code {
			return &c.Messages[i]
		}
	}
	return nil
}

// TestAllowanceEnforced: a buyer-bound completion is held to the buyer's
// allowance for the agent client: per order, currency, expiry, the daily
// cap; each refusal names the limit and what remains, places nothing and
// charges nothing.
func TestAllowanceEnforced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// Tulips are 19.00 EUR; shipping 6.90 under 60.00.
	buy := func(qty int) (*ucp.Checkout, []byte) {
		body := lines(line("tulip_bunch", qty))
		body["fulfillment"] = frShipping
		c := e.createCheckout("flower-shop", body, ada...)
		return completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), ada...)
	}
	// No allowance at all.
	got, b := buy(1)
	if m := hasMessage(got, oauth.CodeAllowanceRequired); m == nil || got.Status == ucp.CheckoutCompleted {
		t.Fatalf("no allowance: %s", b)
	}
	e.allow("buyer_ada", "demo-agent", 5000, 8000, "EUR")
	// Over the per-order limit: 3 × 19.00 = 57.00 + 6.90.
	got, b = buy(3)
	if m := hasMessage(got, oauth.CodeSpendCapExceeded); m == nil || !strings.Contains(m.Content, "50.00 EUR per order") || got.Order != nil {
		t.Fatalf("per order: %s", b)
	}
	// Within: 25.90, then 44.90 (2 tulips + shipping) would pass per
	// order but not the day (8000 - 2590 = 5410 left, so it fits), then
	// a third of 44.90 does not.
	if got, b = buy(1); got.Order == nil {
		t.Fatalf("within the allowance: %s", b)
	}
	if got, b = buy(2); got.Order == nil {
		t.Fatalf("within the day: %s", b)
	}
	if n := spent(t, e, "buyer_ada", "demo-agent"); n != 2590+4490 {
		t.Fatalf("spent %d, want %d", n, 2590+4490)
	}
	got, b = buy(1)
	m := hasMessage(got, oauth.CodeSpendCapExceeded)
	if m == nil || !strings.Contains(m.Content, "daily cap is 80.00 EUR and 9.20 EUR remains") || got.Order != nil {
		t.Fatalf("daily cap: %s", b)
	}
	if orders(t, e, "buyer_ada") != 2 || spent(t, e, "buyer_ada", "demo-agent") != 7080 {
		t.Fatal("a refused completion placed an order or kept a hold")
	}
	// Another agent client of the same buyer has its own allowance (none).
	other := slices.Clone(ada)
	other[1] = "other-agent"
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), other...)
	if got, b := completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), other...); hasMessage(got, oauth.CodeAllowanceRequired) == nil {
		t.Fatalf("another client spends ada's allowance: %s", b)
	}
}

func TestAllowanceCurrencyAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.allow("buyer_ada", "demo-agent", 100000, 100000, "USD")
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
	got, b := completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), ada...)
	if hasMessage(got, oauth.CodeCurrencyMismatch) == nil || got.Order != nil {
		t.Fatalf("currency: %s", b)
	}
	// Expired yesterday.
	al := oauth.Allowance{ID: uuid(), MaxPerOrder: 100000, DailyCap: 100000, Currency: "EUR", ExpiresAt: time.Now().Add(-time.Hour)}
	raw, _ := json.Marshal(al)
	if err := e.store.(interface {
		SaveConsent(context.Context, *store.Consent) error
	}).SaveConsent(t.Context(), &store.Consent{BuyerID: "buyer_ada", ClientID: "demo-agent", Scope: "purchase:complete", Allowance: raw, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, b = completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), ada...)
	if hasMessage(got, oauth.CodeAllowanceExpired) == nil || got.Order != nil {
		t.Fatalf("expired: %s", b)
	}
}

// TestAllowanceHoldReleasedOnFailure: a declined card or an escalation
// gives the hold back.
func TestAllowanceHoldReleasedOnFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.allow("buyer_ada", "demo-agent", 5000, 5000, "EUR")
	for _, tok := range []string{"fail_token", "escalate_token"} {
		c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
		got, b := completeAs(t, e, "flower-shop", c.ID, cardPayment(tok), ada...)
		if got.Order != nil {
			t.Fatalf("%s placed an order: %s", tok, b)
		}
		if n := spent(t, e, "buyer_ada", "demo-agent"); n != 0 {
			t.Fatalf("%s: a hold of %d is kept", tok, n)
		}
	}
}

// TestPlatformKeyCardNoAllowance: the platform's key acts for no buyer:
// no allowance applies (card as before).
func TestPlatformKeyCardNoAllowance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	if got, b := completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token")); got.Order == nil {
		t.Fatalf("%s", b)
	}
}

// TestKeyAndBearerRefusedOnComplete: the key with the buyer's bearer on a
// buyer-bound call is refused with the rule, never run as the platform.
func TestKeyAndBearerRefusedOnComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Guard = dualAuth }})
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), "X-Test-Dual", "buyer_ada")
	wantStatus(t, res, b, http.StatusForbidden)
	if !strings.Contains(string(b), "credential_conflict") {
		t.Fatalf("%s", b)
	}
	if _, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil); decode[ucp.Checkout](t, b).Status == ucp.CheckoutCompleted {
		t.Fatal("completed anyway")
	}
}

// TestArtosBuyerFlow: the platform creates the checkout with its key; a
// buyer of one of its OAuth clients completes it with the bearer alone,
// within the allowance, paying with the buyer's saved card; from then on
// the checkout is the buyer's (the platform still reaches it; another
// buyer and another platform do not).
func TestArtosBuyerFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) {
		c.Accounts = cardAccounts{testAccounts{"platform-a": ""}, map[string]*store.SavedCard{"buyer_ada": {Token: "success_token", Brand: "visa", Last4: "4242"}}}
	}})
	e.allow("buyer_ada", "demo-agent", 5000, 8000, "EUR")
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1))) // platform-a's key
	// Another platform's buyer, and a buyer of no platform, do not see it.
	rival := []string{"X-Test-Client", "rival-agent", "X-Test-Platform", "platform-b", "X-Test-Buyer", "buyer_ada", "X-Test-Scopes", "purchase:complete"}
	if got, _ := completeAs(t, e, "flower-shop", c.ID, nil, rival...); got.ID == c.ID {
		t.Fatal("a buyer of another platform completed the checkout")
	}
	// Ada completes with no card: her saved card pays, Artos-style.
	body := map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{"id": "i1", "handler_id": shop.HandlerCardID, "type": "card", "selected": true}}}}
	got, b := completeAs(t, e, "flower-shop", c.ID, body, ada...)
	if got.Status != ucp.CheckoutCompleted || got.Order == nil {
		t.Fatalf("buyer completion: %s", b)
	}
	if n := spent(t, e, "buyer_ada", "demo-agent"); n != 1900 {
		t.Fatalf("spent %d", n)
	}
	row, err := e.store.Order(t.Context(), "flower-shop", got.Order.ID)
	if err != nil || row.BuyerID != "buyer_ada" || row.ClientID != "demo-agent" || row.Owner != "platform:platform-a|buyer:buyer_ada" {
		t.Fatalf("order %+v %v", row, err)
	}
	bob := []string{"X-Test-Client", "demo-agent", "X-Test-Platform", "platform-a", "X-Test-Buyer", "buyer_bob", "X-Test-Scopes", "purchase:complete"}
	// The platform completing a checkout its buyer claimed places the
	// buyer's order (Bob claims one by an update, the platform pays).
	c3 := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	if res, b := e.req("PUT", "/s/flower-shop/checkout-sessions/"+c3.ID, lines(line("tulip_bunch", 2)), bob...); res.StatusCode != http.StatusOK {
		t.Fatalf("bob's update: %s", b)
	}
	if got, b := completeAs(t, e, "flower-shop", c3.ID, cardPayment("success_token")); got.Order == nil {
		t.Fatalf("platform completion of a claimed checkout: %s", b)
	} else if row, err := e.store.Order(t.Context(), "flower-shop", got.Order.ID); err != nil || row.BuyerID != "buyer_bob" {
		t.Fatalf("the claimed checkout's order: %+v %v", row, err)
	}
	for who, hdr := range map[string][]string{"platform-a": nil, "bob": bob, "platform-b": {"X-Test-Client", "platform-b"}} {
		_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, hdr...)
		if seen := decode[ucp.Checkout](t, b).ID == c.ID; seen != (who == "platform-a") {
			t.Errorf("%s sees the buyer's checkout: %v", who, seen)
		}
	}
	// Without a saved card the buyer is sent to the hosted page.
	c2 := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	bobAl := e.allow("buyer_bob", "demo-agent", 5000, 5000, "EUR")
	_ = bobAl
	got, b = completeAs(t, e, "flower-shop", c2.ID, body, bob...)
	if got.Status != ucp.CheckoutRequiresEscalation || spent(t, e, "buyer_bob", "demo-agent") != 0 {
		t.Fatalf("no saved card: %s", b)
	}
	// Bob pays on the hosted page: the order is his, not the platform's
	// that created the checkout.
	e.payOnHostedPage(got.ContinueURL)
	_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c2.ID, nil)
	done := decode[ucp.Checkout](t, b)
	if done.Order == nil {
		t.Fatalf("hosted payment: %s", b)
	}
	if row, err := e.store.Order(t.Context(), "flower-shop", done.Order.ID); err != nil || row.BuyerID != "buyer_bob" || row.ClientID != "demo-agent" {
		t.Fatalf("hosted order after the claim: %+v %v", row, err)
	}
}

// cardAccounts adds buyers with saved cards to testAccounts.
type cardAccounts struct {
	testAccounts
	cards map[string]*store.SavedCard
}

func (a cardAccounts) Buyer(_ context.Context, id string) (*store.Buyer, error) {
	c, ok := a.cards[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	raw, _ := json.Marshal(store.AccountDoc{Card: c})
	return &store.Buyer{ID: id, Account: raw}, nil
}

// TestAllowanceDayBoundary: the daily cap is per calendar day in UTC: a
// full day's spending at 23:59:59 UTC leaves nothing until 00:00:00 UTC,
// when the whole cap is there again.
func TestAllowanceDayBoundary(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()) } }})
	al := oauth.Allowance{ID: uuid(), MaxPerOrder: 1900, DailyCap: 1900, Currency: "EUR", ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	raw, _ := json.Marshal(al)
	if err := e.store.(interface {
		SaveConsent(context.Context, *store.Consent) error
	}).SaveConsent(t.Context(), &store.Consent{BuyerID: "buyer_ada", ClientID: "demo-agent", Scope: "purchase:complete", Allowance: raw, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	buy := func() *ucp.Checkout {
		c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
		got, _ := completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), ada...)
		return got
	}
	if got := buy(); got.Order == nil {
		t.Fatal("the day's first order was refused")
	}
	now.Store(time.Date(2026, 12, 7, 23, 59, 59, 999_000_000, time.UTC).UnixNano())
	if got := buy(); got.Order != nil || hasMessage(got, oauth.CodeSpendCapExceeded) == nil {
		t.Fatal("a second order fitted into a spent day")
	}
	now.Store(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC).UnixNano())
	if got := buy(); got.Order == nil {
		t.Fatal("the new day's cap is not there at 00:00:00 UTC")
	}
}

// TestSweepHolds: spend holds are kept while a daily window may still
// read them, then swept with the service's other expired records.
func TestSweepHolds(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	start := time.Now()
	now.Store(start.UnixNano())
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()) } }})
	e.allow("buyer_ada", "demo-agent", 100000, 100000, "EUR")
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), ada...)
	if got, b := completeAs(t, e, "flower-shop", c.ID, cardPayment("success_token"), ada...); got.Order == nil {
		t.Fatalf("%s", b)
	}
	from, to := oauth.SpendDay(start)
	counted := func() int64 {
		n, err := e.store.Spent(t.Context(), "buyer_ada", "demo-agent", from, to, start)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	now.Store(start.Add(time.Hour).UnixNano())
	if _, err := e.svc.Sweep(t.Context()); err != nil || counted() != 1900 {
		t.Fatalf("a sweep an hour later dropped today's hold (%v, counted %d)", err, counted())
	}
	now.Store(start.Add(shop.HoldRetention + time.Minute).UnixNano())
	if _, err := e.svc.Sweep(t.Context()); err != nil || counted() != 0 {
		t.Fatalf("a hold past its retention survived the sweep (%v, counted %d)", err, counted())
	}
}
