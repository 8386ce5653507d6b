package bridge

import (
	"context"
	"fmt"
	"testing"
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
