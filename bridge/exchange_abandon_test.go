package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestExchangeLeftBeforeItsGoroutineRanHoldsNoSlot: a waiting exchange
// whose only caller leaves before the exchange's goroutine first runs (a
// client gone at once, or one whose deadline had passed) is abandoned and
// must not be sent. Its goroutine used to take the abandoned state for
// "already holds a slot": it sent the exchange for nobody, past
// MaxInFlight, and then gave back a slot it never took, so the release of
// an exchange that did hold one blocked forever: that exchange never
// finished, its callers waited until they gave up, and its flight stayed
// in the map, so every later request with that bearer hung as well.
func TestExchangeLeftBeforeItsGoroutineRanHoldsNoSlot(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxInFlight = 1 })
	first := make(chan error, 1)
	go func() { _, err := ex.Exchange(context.Background(), "good-first"); first <- err }()
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Callers already gone: each starts an exchange that waits for the one
	// slot and leaves it at once, usually before its goroutine has run.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		if _, err := ex.Exchange(gone, fmt.Sprintf("good-gone-%d", i)); !errors.Is(err, context.Canceled) {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	close(a.hold)
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exchange holding the slot never finished: its release blocked on a slot given back twice")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ex.mu.Lock()
		flights, waiting := len(ex.flights), ex.waiting
		ex.mu.Unlock()
		if flights == 0 && waiting == 0 && len(ex.sem) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every exchange ended: %d flights, %d waiting, %d slots taken", flights, waiting, len(ex.sem))
		}
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := ex.Exchange(ctx, "good-next"); err != nil {
		t.Fatal(err)
	}
	if got := a.subjects(); !slices.Equal(got, []string{"good-first", "good-next"}) {
		t.Fatalf("exchanges sent: %q, want only the two wanted", got)
	}
}
