package bridge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPFloodOfBearersIsRefusedQuicklyPastTheQueue: with the token
// endpoint stuck, fresh bearers past the exchanges in flight (32) and
// those waiting for a slot (64) get 503 with Retry-After at once, instead
// of each piling up for 10 s; the others are answered when the endpoint
// answers.
func TestHTTPFloodOfBearersIsRefusedQuicklyPastTheQueue(t *testing.T) {
	e := newFrontEnv(t, nil)
	e.as.mu.Lock()
	e.as.hold = make(chan struct{})
	e.as.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			close(e.as.hold)
		}
	}
	defer release()
	const n, inFlight, waiting = 150, 32, 64
	type answer struct {
		status     int
		retryAfter string
	}
	answers := make(chan answer, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", fmt.Sprintf("Bearer made-up-%d", i))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{status: -1, retryAfter: err.Error()}
				return
			}
			res.Body.Close()
			answers <- answer{res.StatusCode, res.Header.Get("Retry-After")}
		}()
	}
	deadline := time.After(3 * time.Second)
	for busy := 0; busy < n-inFlight-waiting; {
		select {
		case a := <-answers:
			if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
				t.Fatalf("while the token endpoint is stuck: HTTP %d, Retry-After %q", a.status, a.retryAfter)
			}
			busy++
		case <-deadline:
			t.Fatalf("%d of %d bearers past the queue answered 503 within 3 s", busy, n-inFlight-waiting)
		}
	}
	select {
	case a := <-answers:
		t.Fatalf("more bearers answered than were past the queue: HTTP %d", a.status)
	case <-time.After(50 * time.Millisecond):
	}
	if got := e.as.count(); got != inFlight {
		t.Fatalf("%d exchanges reached the token endpoint, want %d", got, inFlight)
	}
	release()
	for range inFlight + waiting {
		if a := <-answers; a.status != http.StatusUnauthorized {
			t.Fatalf("a made-up bearer once the endpoint answers: HTTP %d", a.status)
		}
	}
}
