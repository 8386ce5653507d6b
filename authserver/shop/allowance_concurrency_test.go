package shop_test

import (
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// capRace sends n concurrent buyer-bound completions of 22.00 EUR (an
// untracked variant, so stock never decides) against a daily cap that
// fits exactly fit of them, spread over the given store URLs, and checks
// that exactly fit orders were placed and spending stayed within the cap.
func capRace(t *testing.T, e *env, urls []string, n, fit int) {
	const price = 2200
	capAmount := int64(price*fit + price/2)
	e.allow("buyer_ada", "demo-agent", price, capAmount, "EUR")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.createCheckout("flower-shop", lines(line("sunflowers", 1)), ada...).ID
	}
	var placed, retried atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		base := urls[i%len(urls)]
		wg.Go(func() {
			<-start
			res, b := e.reqTo(base, "POST", "/s/flower-shop/checkout-sessions/"+id+"/complete", cardPayment("success_token"), ada...)
			// On SQLite the holds queue on the one writer, and one that
			// waits past its 10 s bound is a 503 before anything was
			// held (a loaded 2-core machine under -race gets there): a
			// client retries it, and so does the race, which must still
			// place exactly what fits.
			for try := 0; res.StatusCode == 503 && try < 5; try++ {
				retried.Add(1)
				res, b = e.reqTo(base, "POST", "/s/flower-shop/checkout-sessions/"+id+"/complete", cardPayment("success_token"), ada...)
			}
			if res.StatusCode != 200 {
				t.Errorf("HTTP %d: %s", res.StatusCode, b)
				return
			}
			c := decode[ucp.Checkout](t, b)
			switch {
			case c.Order != nil:
				placed.Add(1)
			case hasMessage(c, "spend_cap_exceeded") == nil:
				t.Errorf("neither an order nor a cap refusal: %s", b)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := retried.Load(); n > 0 {
		t.Logf("%d completions retried after a 503", n)
	}
	got := spent(t, e, "buyer_ada", "demo-agent")
	if placed.Load() != int64(fit) || got != int64(price*fit) || got > capAmount || orders(t, e, "buyer_ada") != fit {
		t.Fatalf("%d orders placed, %d spent (cap %d); want exactly %d orders", placed.Load(), got, capAmount, fit)
	}
}

// TestAllowanceConcurrentSQLite: 200 concurrent completions for one buyer
// near the cap place exactly the orders that fit.
func TestAllowanceConcurrentSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	capRace(t, e, []string{e.srv.URL}, 200, 37)
}

// TestAllowanceConcurrentPostgresTwoInstances: the same on PostgreSQL,
// with the completions split over two server instances, each with its own
// connection pool on the shared database.
func TestAllowanceConcurrentPostgresTwoInstances(t *testing.T) {
	t.Parallel()
	a, b := sqlstoretest.PostgresPair(t)
	if a == nil {
		t.Skip(sqlstoretest.EnvPG + " is not set")
	}
	e := newEnv(t, &envOptions{store: a})
	other, err := shop.New(shop.Config{BaseURL: e.srv.URL, Store: b, Keys: e.keys, Profiles: &discovery.Fetcher{AllowInsecureLoopback: true},
		Guard: testAuth, Accounts: testAccounts{"platform-a": e.agent.URL()}, DisableRateLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(other.Handler())
	t.Cleanup(srv2.Close)
	var _ store.Commerce = b
	capRace(t, e, []string{e.srv.URL, srv2.URL}, 200, 37)
}
