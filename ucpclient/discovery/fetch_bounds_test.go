package discovery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestOneHostCannotHoldEveryFetchSlot: URLs on one slow host get at most
// MaxInFlightPerHost concurrent fetches; a profile on another host is
// still fetched. In a synctest bubble, against an in-process host.
func TestOneHostCannotHoldEveryFetchSlot(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		ts := newInProcess(func(w http.ResponseWriter, r *http.Request) {
			if strings.EqualFold(r.URL.Hostname(), "slow.example") {
				<-gate
			}
			io.WriteString(w, testProfile)
		})
		release := releaseOnCleanup(t, gate)
		f := &Fetcher{Client: ts.Client()}
		for i := range defaultMaxInFlightPerHost {
			go f.Fetch(context.Background(), fmt.Sprintf("https://slow.example/p%d", i))
		}
		synctest.Wait()
		for i := range defaultMaxInFlightPerHost {
			if n := f.joined(fmt.Sprintf("https://slow.example/p%d", i)); n != 1 {
				t.Fatalf("fetch %d on the slow host: %d joined", i, n)
			}
		}
		// Bounded, so a missing bound fails here instead of deadlocking
		// the bubble.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := f.Fetch(ctx, "https://SLOW.example/one-more")
		if e := wantCode(t, err, CodeProfileUnreachable); !strings.Contains(e.Content, "too many") {
			t.Fatalf("a fifth fetch on one host: %v", err)
		}
		if n := ts.count("/one-more"); n != 0 {
			t.Fatalf("the refused fetch reached the host (%d)", n)
		}
		if _, err := f.Fetch(context.Background(), "https://good.example/.well-known/ucp"); err != nil {
			t.Fatalf("another host was blocked: %v", err)
		}
		release()
		synctest.Wait()
		if _, err := f.Fetch(context.Background(), "https://slow.example/one-more"); err != nil {
			t.Fatalf("the host's slots were not given back: %v", err)
		}
		if f.cache.MaxBytes != defaultMaxCacheBytes || f.cache.Size == nil {
			t.Fatal("profile cache has no byte budget")
		}
	})
}
