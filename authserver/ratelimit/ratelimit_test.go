package ratelimit_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 4, 8, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t *testing.T, l ratelimit.Limit, c *clock) *ratelimit.Limiter {
	t.Helper()
	lim, err := ratelimit.New(l, &ratelimit.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func TestBurstThenRefill(t *testing.T) {
	t.Parallel()
	c := newClock()
	lim := newLimiter(t, ratelimit.Limit{Rate: 2, Burst: 3}, c)
	for i := range 3 {
		if ok, _ := lim.Allow("k"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := lim.Allow("k")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v, retry after %v; want refused, 500ms at 2/s", ok, wait)
	}
	c.Add(250 * time.Millisecond)
	if ok, wait := lim.Allow("k"); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token later: ok %v, retry after %v", ok, wait)
	}
	c.Add(250 * time.Millisecond)
	if ok, _ := lim.Allow("k"); !ok {
		t.Fatal("a refilled token was refused")
	}
	if ok, _ := lim.Allow("k"); ok {
		t.Fatal("one refilled token allowed two requests")
	}
	// A long idle period refills to Burst, never beyond.
	c.Add(time.Hour)
	n := 0
	for {
		if ok, _ := lim.Allow("k"); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour idle %d requests allowed, want the burst of 3", n)
	}
}

func TestKeysDoNotShareBuckets(t *testing.T) {
	t.Parallel()
	lim := newLimiter(t, ratelimit.Limit{Rate: 1, Burst: 1}, newClock())
	if ok, _ := lim.Allow("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := lim.Allow("a"); ok {
		t.Fatal("a allowed past its burst")
	}
	for i := range 100 {
		if ok, _ := lim.Allow(fmt.Sprint("b", i)); !ok {
			t.Fatalf("b%d refused because a is out of tokens", i)
		}
	}
}

// TestBlockedCountsFailuresOnly is the failure-counting pattern: Blocked
// takes nothing and remembers nothing; Allow after a failure charges it.
func TestBlockedCountsFailuresOnly(t *testing.T) {
	t.Parallel()
	lim := newLimiter(t, ratelimit.Limit{Rate: 1, Burst: 2}, newClock())
	for range 10 {
		if blocked, _ := lim.Blocked("k"); blocked {
			t.Fatal("Blocked took tokens")
		}
	}
	if lim.Len() != 0 {
		t.Fatalf("probing with Blocked created %d buckets", lim.Len())
	}
	lim.Allow("k")
	lim.Allow("k")
	if blocked, wait := lim.Blocked("k"); !blocked || wait != time.Second {
		t.Fatalf("after two failures: blocked %v, retry after %v", blocked, wait)
	}
}

// TestIdleBucketsSwept: memory follows the keys active within one refill
// period. Sweeps run per shard on access; 2000 fresh keys touch every one
// of the 32 shards (the chance that one is missed is about 32·(31/32)^2000).
func TestIdleBucketsSwept(t *testing.T) {
	t.Parallel()
	c := newClock()
	lim := newLimiter(t, ratelimit.Limit{Rate: 10, Burst: 20}, c) // full in 2 s
	for i := range 1000 {
		lim.Allow(fmt.Sprint("old", i))
	}
	if lim.Len() != 1000 {
		t.Fatalf("%d buckets, want 1000", lim.Len())
	}
	c.Add(2*time.Second + time.Millisecond)
	for i := range 2000 {
		lim.Allow(fmt.Sprint("new", i))
	}
	if n := lim.Len(); n != 2000 {
		t.Fatalf("%d buckets, want the 2000 new ones: the old keys idled a full refill period", n)
	}
}

// TestSweepKeepsRefillingBuckets: a sweep drops only full buckets;
// dropping one still refilling would forgive its debt.
func TestSweepKeepsRefillingBuckets(t *testing.T) {
	t.Parallel()
	c := newClock()
	lim := newLimiter(t, ratelimit.Limit{Rate: 1, Burst: 4}, c) // full in 4 s
	touch := func() {
		for i := range 2000 {
			lim.Allow(fmt.Sprint("touch", i))
		}
	}
	touch() // every shard swept at t0
	c.Add(3 * time.Second)
	for range 4 {
		lim.Allow("k")
	}
	c.Add(1500 * time.Millisecond) // 4.5 s: every shard sweeps on the next touch
	touch()
	n := 0
	for {
		if ok, _ := lim.Allow("k"); !ok {
			break
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d tokens 1.5 s after emptying at 1/s, want 1: the sweep dropped a bucket still refilling", n)
	}
}

// TestClockSteppingBack: a clock stepping back refills nothing, and does
// not make the caller wait out the step either (Retry-After stays true).
func TestClockSteppingBack(t *testing.T) {
	t.Parallel()
	c := newClock()
	lim := newLimiter(t, ratelimit.Limit{Rate: 1, Burst: 1}, c)
	lim.Allow("k")
	c.Add(-time.Hour)
	if ok, wait := lim.Allow("k"); ok || wait != time.Second {
		t.Fatalf("after the clock stepped back: ok %v, retry after %v; want refused, 1s", ok, wait)
	}
	c.Add(time.Second)
	if ok, _ := lim.Allow("k"); !ok {
		t.Fatal("refused one second later at 1/s: the caller waits out the clock step")
	}
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	var nilLim *ratelimit.Limiter
	zero, err := ratelimit.New(ratelimit.Limit{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, lim := range []*ratelimit.Limiter{nilLim, zero} {
		for range 1000 {
			if ok, _ := lim.Allow("k"); !ok {
				t.Fatal("a disabled limiter refused")
			}
		}
		if blocked, _ := lim.Blocked("k"); blocked || lim.Len() != 0 {
			t.Fatal("a disabled limiter blocks or keeps buckets")
		}
	}
}

func TestInvalidLimits(t *testing.T) {
	t.Parallel()
	for _, l := range []ratelimit.Limit{
		{Rate: -1, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: 1, Burst: -5}, {Rate: 0, Burst: 10},
		{Rate: math.NaN(), Burst: 1}, {Rate: math.Inf(1), Burst: 1},
	} {
		_, err := ratelimit.New(l, nil)
		var le *ratelimit.LimitError
		if !errors.As(err, &le) || le.Limit.Burst != l.Burst {
			t.Errorf("%+v: %v, want a *LimitError", l, err)
		}
	}
	// A tiny rate is valid and does not overflow the refill period.
	lim, err := ratelimit.New(ratelimit.Limit{Rate: 1e-12, Burst: 1 << 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim.Allow("k")
	if ok, _ := lim.Allow("k"); !ok {
		t.Fatal("refused within a huge burst")
	}
}

// TestConcurrentBurst: however many callers race on one key, the burst
// is handed out exactly once.
func TestConcurrentBurst(t *testing.T) {
	t.Parallel()
	lim := newLimiter(t, ratelimit.Limit{Rate: 1e-6, Burst: 50}, newClock())
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := lim.Allow("k"); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d requests allowed, want the burst of 50", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 90 * time.Second: 90} {
		if got := ratelimit.RetryAfterSeconds(d); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	lim, _ := ratelimit.New(ratelimit.Limit{Rate: 1e9, Burst: 1 << 30}, nil)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprint("client-", n.Add(1))
		for pb.Next() {
			lim.Allow(key)
		}
	})
}
