package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestExchangeRefusalFloodKeepsGoodEntries: refusals are cached apart
// from exchanged tokens, so a flood of made-up bearers (each refused,
// each cached for RefusalTTL) never evicts a buyer's cached token, which
// would cost that buyer a new exchange on its next request.
func TestExchangeRefusalFloodKeepsGoodEntries(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxEntries = 4 })
	ctx := context.Background()
	for _, s := range []string{"good-a", "good-b", "good-c"} {
		if _, err := ex.Exchange(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// 1 free place in the good cache; 200 refusals.
	for i := range 200 {
		if _, err := ex.Exchange(ctx, fmt.Sprintf("made-up-%d", i)); err == nil {
			t.Fatal("a made-up bearer was exchanged")
		}
	}
	before := a.count()
	for _, s := range []string{"good-a", "good-b", "good-c"} {
		if _, err := ex.Exchange(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.count() - before; n != 0 {
		t.Fatalf("the refusal flood evicted good entries: %d new exchanges", n)
	}
	// The refusals are bounded too (default 1000): the 200 are still
	// answered from their cache.
	if _, err := ex.Exchange(ctx, "made-up-0"); err == nil || a.count() != before {
		t.Fatalf("refusal not cached: %v, %d exchanges", err, a.count()-before)
	}
}

// TestExchangeRefusalCacheIsBounded: the refusal cache holds at most
// MaxRefusals entries, least recently used out first.
func TestExchangeRefusalCacheIsBounded(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxRefusals = 10 })
	ctx := context.Background()
	for i := range 50 {
		ex.Exchange(ctx, fmt.Sprintf("made-up-%d", i))
	}
	if n := ex.Len(); n != 10 {
		t.Fatalf("%d cached entries after 50 refusals, bound 10", n)
	}
	before := a.count()
	ex.Exchange(ctx, "made-up-49") // recent: cached
	ex.Exchange(ctx, "made-up-0")  // evicted: asked again
	if n := a.count() - before; n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
}

// subjects is the subject token of every exchange request, in order.
func (a *fakeAS) subjects() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.requests {
		out = append(out, r.Form["subject_token"]...)
	}
	return out
}

// TestExchangeAbandonedWaitNeverReachesTheTokenEndpoint: an exchange
// waiting for an in-flight slot gives its place up when every caller that
// wanted it has gone, instead of waiting on (up to 10 s) and then asking
// the token endpoint for nobody.
func TestExchangeAbandonedWaitNeverReachesTheTokenEndpoint(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxInFlight = 1 })
	first := make(chan error, 1)
	go func() { _, err := ex.Exchange(context.Background(), "good-first"); first <- err }()
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Five callers wait for the one slot, then leave.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if _, err := ex.Exchange(ctx, fmt.Sprintf("good-gone-%d", i)); !errors.Is(err, context.Canceled) {
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	wg.Wait()
	close(a.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The slot is free again; abandoned exchanges queued before this one
	// would have been sent first.
	if _, err := ex.Exchange(context.Background(), "good-next"); err != nil {
		t.Fatal(err)
	}
	if got := a.subjects(); !slices.Equal(got, []string{"good-first", "good-next"}) {
		t.Fatalf("exchanges sent: %q, want only the two wanted", got)
	}
}

// TestExchangeWaitingQueueIsBoundedAndCallersThatLeftFreeTheirPlaces:
// at most MaxWaiting exchanges wait for a slot; past it an exchange fails
// at once with ErrExchangeBusy (not a refusal of the token). An exchange
// whose callers all left frees its place for another at once.
func TestExchangeWaitingQueueIsBoundedAndCallersThatLeftFreeTheirPlaces(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxInFlight = 1; o.MaxWaiting = 2 })
	defer close(a.hold)
	go ex.Exchange(context.Background(), "good-first")
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ex.Waiting() != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d exchanges waiting, want %d", ex.Waiting(), n)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { ex.Exchange(ctx, fmt.Sprintf("good-w-%d", i)) })
	}
	waitFor(2)
	// A second caller of a waiting exchange shares its place.
	wg.Go(func() { ex.Exchange(ctx, "good-w-0") })
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	_, err := ex.Exchange(context.Background(), "good-third")
	xe, ok := errors.AsType[*ExchangeError](err)
	if !ok || !errors.Is(err, ErrExchangeBusy) || xe.TokenRefused() {
		t.Fatalf("past the queue: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %v, not at once", d)
	}
	// Every caller leaves: both places are free again.
	cancel()
	wg.Wait()
	if n := ex.Waiting(); n != 0 {
		t.Fatalf("%d exchanges still waiting after their callers left", n)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for i := range 2 {
		wg.Go(func() {
			if _, err := ex.Exchange(ctx2, fmt.Sprintf("good-again-%d", i)); !errors.Is(err, context.Canceled) {
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	waitFor(2)
	cancel2()
	wg.Wait()
	if got := a.subjects(); !slices.Equal(got, []string{"good-first"}) {
		t.Fatalf("exchanges sent: %q", got)
	}
}

// TestExchangeLastCallerLeavingARunningExchangeDoesNotStopIt: once sent,
// an exchange runs to its end and is cached even when its last caller
// has left (the client usually comes back; the token endpoint has done
// the work).
func TestExchangeLastCallerLeavingARunningExchangeDoesNotStopIt(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxInFlight = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := ex.Exchange(ctx, "good-1"); done <- err }()
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	// A new caller joins the running exchange rather than sending another.
	got := make(chan error)
	go func() { _, err := ex.Exchange(context.Background(), "good-1"); got <- err }()
	time.Sleep(10 * time.Millisecond)
	close(a.hold)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := a.count(); n != 1 {
		t.Fatalf("%d exchanges for one subject", n)
	}
}
