package netguard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The cache tests run in synctest bubbles: the cache's clock is the
// bubble's (time.Now), time.Sleep moves it, and synctest.Wait replaces
// polling for a burst to pile up.

func TestCachesForTheReportedTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[int]{MaxEntries: 10}
		var calls atomic.Int32
		fetch := func(ttl time.Duration, err error) Fetch[int] {
			return func(context.Context) (int, time.Duration, error) { return int(calls.Add(1)), ttl, err }
		}
		ctx := t.Context()
		if v, err := c.Get(ctx, "a", fetch(time.Minute, nil)); v != 1 || err != nil {
			t.Fatal(v, err)
		}
		if v, _ := c.Get(ctx, "a", fetch(time.Minute, nil)); v != 1 {
			t.Fatalf("not cached: %d", v)
		}
		time.Sleep(time.Minute)
		if v, _ := c.Get(ctx, "a", fetch(time.Minute, nil)); v != 2 {
			t.Fatalf("served past its TTL: %d", v)
		}
		// ttl <= 0: not cached.
		c.Get(ctx, "b", fetch(0, nil))
		if v, _ := c.Get(ctx, "b", fetch(0, nil)); v != 4 || c.Cached("b") {
			t.Fatalf("cached without a TTL: %d", v)
		}
		// Errors are cached when the fetch says so.
		boom := errors.New("boom")
		c.Get(ctx, "c", fetch(time.Second, boom))
		if _, err := c.Get(ctx, "c", fetch(time.Second, nil)); !errors.Is(err, boom) {
			t.Fatalf("error not cached: %v", err)
		}
	})
}

func TestSharesOneFetch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[int]{MaxEntries: 10}
		gate := make(chan struct{})
		var calls atomic.Int32
		fetch := func(context.Context) (int, time.Duration, error) {
			calls.Add(1)
			<-gate
			return 7, time.Minute, nil
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if v, err := c.Get(t.Context(), "k", fetch); v != 7 || err != nil {
					t.Error(v, err)
				}
			})
		}
		synctest.Wait()
		if n := c.Joined("k"); n != 20 {
			t.Fatalf("%d callers joined", n)
		}
		close(gate)
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("%d fetches", calls.Load())
		}
	})
}

// TestCallerCancellation: a caller that gives up gets ctx.Err(); the fetch
// still completes and is cached for the next caller.
func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[int]{MaxEntries: 10}
		gate := make(chan struct{})
		var calls atomic.Int32
		fetch := func(ctx context.Context) (int, time.Duration, error) {
			calls.Add(1)
			<-gate
			return 1, time.Minute, ctx.Err()
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { _, err := c.Get(ctx, "k", fetch); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
		close(gate)
		synctest.Wait()
		if v, err := c.Get(t.Context(), "k", fetch); v != 1 || err != nil || calls.Load() != 1 {
			t.Fatalf("%d %v (%d fetches): the fetch saw the caller's cancellation", v, err, calls.Load())
		}
	})
}

func TestLRUBound(t *testing.T) {
	t.Parallel()
	c := &Cache[string]{MaxEntries: 2}
	ctx := t.Context()
	get := func(k string) {
		c.Get(ctx, k, func(context.Context) (string, time.Duration, error) { return k, time.Hour, nil })
	}
	get("a")
	get("b")
	get("a") // a is now the most recent
	get("c") // evicts b
	if c.Len() != 2 || !c.Cached("a") || c.Cached("b") || !c.Cached("c") {
		t.Fatalf("len %d a=%v b=%v c=%v", c.Len(), c.Cached("a"), c.Cached("b"), c.Cached("c"))
	}
}

func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[int]{MaxEntries: 10, MaxInFlight: 1}
		gate := make(chan struct{})
		slow := func(context.Context) (int, time.Duration, error) { <-gate; return 1, time.Minute, nil }
		go c.Get(t.Context(), "a", slow)
		synctest.Wait()
		// Joining the running fetch is fine; a new key is refused, uncached.
		var fetched bool
		other := func(context.Context) (int, time.Duration, error) { fetched = true; return 2, time.Minute, nil }
		if _, err := c.Get(t.Context(), "b", other); !errors.Is(err, ErrBusy) || fetched || c.Cached("b") {
			t.Fatalf("%v fetched=%v", err, fetched)
		}
		close(gate)
		if v, err := c.Get(t.Context(), "a", slow); v != 1 || err != nil {
			t.Fatal(v, err)
		}
		if v, err := c.Get(t.Context(), "b", other); v != 2 || err != nil {
			t.Fatal(v, err)
		}
	})
}

// TestFullCacheDropsExpiredFirst: when full, expired entries are dropped
// before live ones, however recently used.
func TestFullCacheDropsExpiredFirst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[string]{MaxEntries: 2}
		get := func(k string, ttl time.Duration) {
			c.Get(t.Context(), k, func(context.Context) (string, time.Duration, error) { return k, ttl, nil })
		}
		get("long", time.Hour)
		get("short", time.Second)
		time.Sleep(2 * time.Second)
		get("new", time.Hour) // short has expired: it goes, not long
		if !c.Cached("long") || c.Cached("short") || !c.Cached("new") {
			t.Fatalf("long=%v short=%v new=%v", c.Cached("long"), c.Cached("short"), c.Cached("new"))
		}
	})
}
