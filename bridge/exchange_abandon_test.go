package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// TestExchangeServerErrorIsNeverARefusal: only the token endpoint's
// 4xx answer refuses the subject (RFC 6749 §5.2 errors are 400). A 5xx
// that happens to carry invalid_grant (a gateway or a failing platform
// replaying an error body) is the platform's failure: it used to be
// cached for RefusalTTL and answered 401 invalid_token, so the buyer was
// told to sign in again over an outage.
func TestExchangeServerErrorIsNeverARefusal(t *testing.T) {
	a := newFakeAS(t)
	a.answer = func(w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"invalid_grant","error_description":"upstream"}`))
		return true
	}
	ex := newTestExchanger(t, a, nil)
	_, err := ex.Exchange(context.Background(), "good-outage")
	xe, ok := errors.AsType[*ExchangeError](err)
	if !ok || xe.TokenRefused() || xe.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %#v", err)
	}
	ex.Exchange(context.Background(), "good-outage")
	if a.count() != 2 || ex.Len() != 0 {
		t.Fatalf("a platform failure was cached as a refusal: %d exchanges, %d cached", a.count(), ex.Len())
	}
	// A 400 invalid_grant still is a refusal.
	a.mu.Lock()
	a.answer = nil
	a.mu.Unlock()
	if _, err := ex.Exchange(context.Background(), "bad-one"); !isRefusal(err) {
		t.Fatalf("400 invalid_grant: %v", err)
	}
}

func isRefusal(err error) bool {
	xe, ok := errors.AsType[*ExchangeError](err)
	return ok && xe.TokenRefused()
}
