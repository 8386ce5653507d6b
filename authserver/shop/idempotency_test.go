package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestIdempotentReplay: the same key and body returns the stored response
// without running the operation again; another body is a 409.
func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	key := uuid()
	body := lines(line("bouquet_roses", 1))
	res1, b1 := e.req("POST", "/s/flower-shop/checkout-sessions", body, "Idempotency-Key", key)
	wantStatus(t, res1, b1, http.StatusCreated)
	res2, b2 := e.req("POST", "/s/flower-shop/checkout-sessions", `{ "line_items" : [ {"quantity":1, "item":{"id":"bouquet_roses"}} ] }`, "Idempotency-Key", key)
	wantStatus(t, res2, b2, http.StatusCreated)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("replay differs:\n%s\n%s", b1, b2)
	}
	res3, b3 := e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 2)), "Idempotency-Key", key)
	wantStatus(t, res3, b3, http.StatusConflict)
	// Keys are per platform: another platform's identical key runs anew.
	res4, b4 := e.req("POST", "/s/flower-shop/checkout-sessions", body, "Idempotency-Key", key, "X-Test-Client", "platform-b")
	wantStatus(t, res4, b4, http.StatusCreated)
	if decode[ucp.Checkout](t, b4).ID == decode[ucp.Checkout](t, b1).ID {
		t.Fatal("another platform got the first platform's checkout")
	}
	// The same key on another operation is a conflict too.
	c := decode[ucp.Checkout](t, b1)
	res5, b5 := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/cancel", nil, "Idempotency-Key", key)
	wantStatus(t, res5, b5, http.StatusConflict)
	// Business outcomes are stored: a declined completion replays as
	// declined even after the card would work.
	ck := uuid()
	_, d1 := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("fail_token"), "Idempotency-Key", ck)
	_, d2 := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("fail_token"), "Idempotency-Key", ck)
	if !bytes.Equal(d1, d2) || decode[ucp.Checkout](t, d2).Status == ucp.CheckoutCompleted {
		t.Fatalf("%s\n%s", d1, d2)
	}
}

// TestConcurrentCompleteOneKey: 20 concurrent completes with one key make
// one order, and every caller gets the same response.
func TestConcurrentCompleteOneKey(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, &envOptions{store: open(t)})
			c := e.createCheckout("flower-shop", lines(line("orchid_pot", 2)))
			key := uuid()
			const n = 20
			bodies := make([][]byte, n)
			codes := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), "Idempotency-Key", key)
					bodies[i], codes[i] = b, res.StatusCode
				}()
			}
			close(start)
			wg.Wait()
			for i := range n {
				if codes[i] != http.StatusOK || !bytes.Equal(bodies[i], bodies[0]) {
					t.Fatalf("call %d: %d %s\nfirst: %s", i, codes[i], bodies[i], bodies[0])
				}
			}
			done := decode[ucp.Checkout](t, bodies[0])
			if done.Status != ucp.CheckoutCompleted {
				t.Fatalf("%s", bodies[0])
			}
			vs, err := e.store.Variants(t.Context(), "flower-shop", []string{"orchid_pot"})
			if err != nil || vs["orchid_pot"].Stock != 5 {
				t.Fatalf("stock taken more than once: %+v %v", vs["orchid_pot"], err)
			}
		})
	}
}

// TestCompleteRaceDifferentKeys: concurrent completions with different
// keys place one order; the others see a completed checkout.
func TestCompleteRaceDifferentKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("orchid_pot", 1)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	completed, refused := 0, 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
			mu.Lock()
			defer mu.Unlock()
			switch res.StatusCode {
			case http.StatusOK:
				if decode[ucp.Checkout](t, b).Status == ucp.CheckoutCompleted {
					completed++
				}
			case http.StatusConflict:
				refused++
			}
		}()
	}
	wg.Wait()
	if completed != 1 || refused != 9 {
		t.Fatalf("%d completed, %d refused", completed, refused)
	}
	vs, _ := e.store.Variants(t.Context(), "flower-shop", []string{"orchid_pot"})
	if vs["orchid_pot"].Stock != 6 {
		t.Fatalf("stock %d", vs["orchid_pot"].Stock)
	}
}

// failingIdem breaks the idempotency store.
type failingIdem struct {
	store.Commerce
	fail bool
	mu   sync.Mutex
}

func (f *failingIdem) ClaimIdempotency(ctx context.Context, k store.IdemKey, h []byte, now time.Time, lease, ttl time.Duration) (*store.IdemRecord, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	return f.Commerce.ClaimIdempotency(ctx, k, h, now, lease, ttl)
}

// TestIdempotencyStoreDownFailsClosed: no idempotency, no state change.
func TestIdempotencyStoreDownFailsClosed(t *testing.T) {
	t.Parallel()
	fi := &failingIdem{Commerce: sqlstoretest.SQLite(t)}
	e := newEnv(t, &envOptions{store: fi})
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	fi.mu.Lock()
	fi.fail = true
	fi.mu.Unlock()
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	wantStatus(t, res, b, http.StatusServiceUnavailable)
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	_, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if decode[ucp.Checkout](t, b).Status == ucp.CheckoutCompleted {
		t.Fatal("completed without idempotency")
	}
}

// TestProtocolErrorsReleaseTheKey: a request that failed before it had an
// effect may be retried with its key, even with a corrected body.
func TestProtocolErrorsReleaseTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	key := uuid()
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":"one"}]}`, "Idempotency-Key", key)
	wantStatus(t, res, b, http.StatusBadRequest)
	res, b = e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)), "Idempotency-Key", key)
	wantStatus(t, res, b, http.StatusCreated)
}

// TestSweep: expired idempotency records go; live ones stay and still
// replay; the rows deleted and the sweeps reach the metrics.
func TestSweep(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Now = clock; c.IdempotencyTTL = time.Hour; c.Metrics = m }})
	key := uuid()
	_, b1 := e.req("POST", "/s/flower-shop/carts", lines(line("tulip_bunch", 1)), "Idempotency-Key", key)
	if n, err := e.svc.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("swept %d live records (%v)", n, err)
	}
	_, b2 := e.req("POST", "/s/flower-shop/carts", lines(line("tulip_bunch", 1)), "Idempotency-Key", key)
	if !bytes.Equal(b1, b2) {
		t.Fatal("live record lost")
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if n, err := e.svc.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	want := `
# HELP ucpbridge_sweep_deleted_rows_total Rows deleted by the retention sweeps, by table.
# TYPE ucpbridge_sweep_deleted_rows_total counter
ucpbridge_sweep_deleted_rows_total{table="idempotency"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ucpbridge_sweep_deleted_rows_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "ucpbridge_sweep_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("sweep duration series: %d (%v)", n, err)
	}
}

// memShops serves stores from memory and nothing else (any other store call
// panics on the nil Commerce): enough for Service.Do to reach an operation
// without real I/O, so tests can run it inside a synctest bubble.
type memShops struct {
	store.Commerce
	shops map[string]*store.Shop
}

func newMemShops(t *testing.T) *memShops {
	m := &memShops{shops: map[string]*store.Shop{}}
	for _, sh := range shop.DemoShops() {
		cfg, err := json.Marshal(sh.Config)
		if err != nil {
			t.Fatal(err)
		}
		m.shops[sh.Slug] = &store.Shop{Slug: sh.Slug, Name: sh.Name, Currency: sh.Currency, Config: cfg}
	}
	return m
}

func (m *memShops) Shop(_ context.Context, slug string) (*store.Shop, error) {
	if sh, ok := m.shops[slug]; ok {
		return sh, nil
	}
	return nil, store.ErrNotFound
}

// stuckIdem holds every idempotency key as claimed by a first request
// that never finishes.
type stuckIdem struct {
	*memShops
	claims atomic.Int64
}

func (s *stuckIdem) ClaimIdempotency(context.Context, store.IdemKey, []byte, time.Time, time.Duration, time.Duration) (*store.IdemRecord, error) {
	s.claims.Add(1)
	return nil, store.ErrInProgress
}

// TestIdempotencyWaitsForFirst: a duplicate of a request still running
// polls for IdempotencyWait (10 s by default), then answers 409
// idempotency_in_progress with Retry-After; a caller that gives up first
// gets 503. Time is synctest's: the ten seconds take none.
func TestIdempotencyWaitsForFirst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &stuckIdem{memShops: newMemShops(t)}
		caps := map[string][]ucp.Capability{ucp.CapCheckout: {{Entity: ucp.Entity{Version: ucp.Version}}}}
		svc, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &shop.MemoryKeys{},
			Profiles: fixedProfile{&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version, Capabilities: caps}}}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(lines(line("bouquet_roses", 1)))
		req := func() *shop.Request {
			return &shop.Request{Op: shop.OpCreateCheckout, Shop: "flower-shop", Body: body, Agent: "https://p.example/.well-known/ucp",
				IdempotencyKey: uuid(), Principal: &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken,
					Credential: guard.CredentialAPIKey, ClientID: "platform-a", Platform: "platform-a"}}
		}

		start := time.Now()
		rep := svc.Do(t.Context(), req())
		waited := time.Since(start)
		if rep.Err == nil || rep.Err.Status != http.StatusConflict || rep.Err.Code != "idempotency_in_progress" || rep.Err.RetryAfter != 1 {
			t.Fatalf("want 409 idempotency_in_progress, got %+v %s", rep.Err, rep.Body)
		}
		// Backoff doubles from 2 ms to 50 ms: at most one step past the wait.
		if waited < 10*time.Second || waited > 10*time.Second+50*time.Millisecond {
			t.Fatalf("waited %v, want the 10 s IdempotencyWait", waited)
		}
		if n := st.claims.Load(); n < 100 || n > 300 {
			t.Fatalf("%d claims in 10 s; the backoff should cap polling at 20 a second", n)
		}

		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start = time.Now()
		rep = svc.Do(ctx, req())
		if rep.Err == nil || rep.Err.Status != http.StatusServiceUnavailable || time.Since(start) > time.Second+50*time.Millisecond {
			t.Fatalf("canceled after 1 s: %+v after %v", rep.Err, time.Since(start))
		}
	})
}

// sweepCounter records sweep passes.
type sweepCounter struct {
	store.Commerce
	mu      sync.Mutex
	passes  []time.Time // the now of each SweepIdempotency
	cutoffs []time.Time // each SweepSessions' before
	holds   []time.Time // each SweepHolds' before
}

func (s *sweepCounter) SweepHolds(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = append(s.holds, before)
	return 0, nil
}

func (s *sweepCounter) SweepIdempotency(_ context.Context, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passes = append(s.passes, now)
	return 0, nil
}

func (s *sweepCounter) SweepSessions(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutoffs = append(s.cutoffs, before)
	return 0, nil
}

// TestSweepEvery: a pass at once, then one per interval, each deleting
// sessions expired SessionRetention ago, until the context ends. Time is
// synctest's, so three hours pass at once and exactly.
func TestSweepEvery(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &sweepCounter{}
		svc, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &shop.MemoryKeys{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		start := time.Now()
		go func() { svc.SweepEvery(ctx, time.Hour); close(done) }()
		time.Sleep(3*time.Hour + time.Minute)
		synctest.Wait()
		cancel()
		<-done
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.passes) != 4 || len(st.cutoffs) != 4 || len(st.holds) != 4 {
			t.Fatalf("%d idempotency, %d session and %d hold sweeps in 3 h, want 4 each", len(st.passes), len(st.cutoffs), len(st.holds))
		}
		for i, before := range st.holds {
			if !before.Equal(st.passes[i].Add(-shop.HoldRetention)) {
				t.Errorf("hold sweep %d cut at %v, want %v", i, before, st.passes[i].Add(-shop.HoldRetention))
			}
		}
		for i, now := range st.passes {
			want := start.Add(time.Duration(i) * time.Hour)
			if !now.Equal(want) || !st.cutoffs[i].Equal(want.Add(-shop.SessionRetention)) {
				t.Fatalf("pass %d at %v cutting %v, want %v and %v", i, now, st.cutoffs[i], want, want.Add(-shop.SessionRetention))
			}
		}
	})
}
