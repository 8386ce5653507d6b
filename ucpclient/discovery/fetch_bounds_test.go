package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestOneHostCannotHoldEveryFetchSlot: URLs on one slow host get at most
// MaxInFlightPerHost concurrent fetches; a profile on another host is
// still fetched.
func TestOneHostCannotHoldEveryFetchSlot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer free()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ucp":{"version":"2026-04-08"}}`))
	}))
	defer good.Close()
	f := &Fetcher{AllowInsecureLoopback: true}
	// Both test servers listen on 127.0.0.1: name the good one as
	// "localhost" so the two are different hosts.
	goodURL := strings.Replace(good.URL, "127.0.0.1", "localhost", 1) + "/.well-known/ucp"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range defaultMaxInFlightPerHost {
		go f.Fetch(ctx, fmt.Sprintf("%s/p%d", slow.URL, i))
	}
	for joined := 0; joined < defaultMaxInFlightPerHost; runtime.Gosched() {
		joined = 0
		for i := range defaultMaxInFlightPerHost {
			joined += f.cache.Joined(fmt.Sprintf("%s/p%d", slow.URL, i))
		}
	}
	_, err := f.Fetch(context.Background(), slow.URL+"/one-more")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeProfileUnreachable || !strings.Contains(e.Content, "too many") {
		t.Fatalf("a fifth fetch on one host: %v", err)
	}
	if _, err := f.Fetch(context.Background(), goodURL); err != nil {
		t.Fatalf("another host was blocked: %v", err)
	}
	if f.cache.MaxBytes != defaultMaxCacheBytes || f.cache.Size == nil {
		t.Fatal("profile cache has no byte budget")
	}
}
