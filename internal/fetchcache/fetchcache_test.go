package fetchcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCachesForTheReportedTTL(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := &Cache[int]{MaxEntries: 10, Now: clk.Now}
	var calls atomic.Int32
	fetch := func(ttl time.Duration, err error) Fetch[int] {
		return func(context.Context) (int, error, time.Duration) { return int(calls.Add(1)), err, ttl }
	}
	ctx := context.Background()
	if v, err := c.Get(ctx, "a", fetch(time.Minute, nil)); v != 1 || err != nil {
		t.Fatal(v, err)
	}
	if v, _ := c.Get(ctx, "a", fetch(time.Minute, nil)); v != 1 {
		t.Fatalf("not cached: %d", v)
	}
	clk.add(time.Minute)
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
}

func TestSharesOneFetch(t *testing.T) {
	c := &Cache[int]{MaxEntries: 10}
	gate := make(chan struct{})
	var calls atomic.Int32
	fetch := func(context.Context) (int, error, time.Duration) {
		calls.Add(1)
		<-gate
		return 7, nil, time.Minute
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v, err := c.Get(context.Background(), "k", fetch); v != 7 || err != nil {
				t.Error(v, err)
			}
		})
	}
	for c.Joined("k") < 20 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches", calls.Load())
	}
}

// TestCallerCancellation: a caller that gives up gets ctx.Err(); the fetch
// still completes and is cached for the next caller.
func TestCallerCancellation(t *testing.T) {
	c := &Cache[int]{MaxEntries: 10}
	gate := make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context) (int, error, time.Duration) {
		calls.Add(1)
		<-gate
		return 1, ctx.Err(), time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Get(ctx, "k", fetch); done <- err }()
	for c.Joined("k") < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	close(gate)
	for !c.Cached("k") {
		time.Sleep(time.Millisecond)
	}
	if v, err := c.Get(context.Background(), "k", fetch); v != 1 || err != nil || calls.Load() != 1 {
		t.Fatalf("%d %v (%d fetches): the fetch saw the caller's cancellation", v, err, calls.Load())
	}
}

func TestLRUBound(t *testing.T) {
	c := &Cache[string]{MaxEntries: 2}
	ctx := context.Background()
	get := func(k string) {
		c.Get(ctx, k, func(context.Context) (string, error, time.Duration) { return k, nil, time.Hour })
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
	c := &Cache[int]{MaxEntries: 10, MaxInFlight: 1}
	gate := make(chan struct{})
	slow := func(context.Context) (int, error, time.Duration) { <-gate; return 1, nil, time.Minute }
	go c.Get(context.Background(), "a", slow)
	for c.Joined("a") < 1 {
		time.Sleep(time.Millisecond)
	}
	// Joining the running fetch is fine; a new key is refused, uncached.
	var fetched bool
	if _, err := c.Get(context.Background(), "b", func(context.Context) (int, error, time.Duration) { fetched = true; return 2, nil, time.Minute }); !errors.Is(err, ErrBusy) || fetched || c.Cached("b") {
		t.Fatalf("%v fetched=%v", err, fetched)
	}
	close(gate)
	if v, err := c.Get(context.Background(), "a", slow); v != 1 || err != nil {
		t.Fatal(v, err)
	}
	if v, err := c.Get(context.Background(), "b", func(context.Context) (int, error, time.Duration) { return 2, nil, time.Minute }); v != 2 || err != nil {
		t.Fatal(v, err)
	}
}

// TestFullCacheDropsExpiredFirst: when full, expired entries are dropped
// before live ones, however recently used.
func TestFullCacheDropsExpiredFirst(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := &Cache[string]{MaxEntries: 2, Now: clk.Now}
	ctx := context.Background()
	get := func(k string, ttl time.Duration) {
		c.Get(ctx, k, func(context.Context) (string, error, time.Duration) { return k, nil, ttl })
	}
	get("long", time.Hour)
	get("short", time.Second)
	clk.add(2 * time.Second)
	get("new", time.Hour) // short has expired: it goes, not long
	if !c.Cached("long") || c.Cached("short") || !c.Cached("new") {
		t.Fatalf("long=%v short=%v new=%v", c.Cached("long"), c.Cached("short"), c.Cached("new"))
	}
}
