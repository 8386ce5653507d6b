package netguard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightPerHost: one slow host holds at most its share of the
// fetch slots; other hosts still get theirs.
func TestMaxInFlightPerHost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := &Cache[int]{MaxEntries: 100, MaxInFlight: 10, MaxInFlightPerHost: 2}
		gate := make(chan struct{})
		slow := func(context.Context) (int, time.Duration, error) { <-gate; return 1, time.Minute, nil }
		for i := range 2 {
			go c.Get(t.Context(), fmt.Sprintf("https://slow.example/c%d.json", i), slow)
		}
		synctest.Wait()
		if _, err := c.Get(t.Context(), "https://SLOW.example/c9.json", slow); !errors.Is(err, ErrBusy) {
			t.Fatalf("a third fetch on one host: %v", err)
		}
		fast := func(context.Context) (int, time.Duration, error) { return 2, time.Minute, nil }
		if v, err := c.Get(t.Context(), "https://other.example/c.json", fast); v != 2 || err != nil {
			t.Fatalf("another host was blocked: %d %v", v, err)
		}
		close(gate)
		synctest.Wait()
		if v, err := c.Get(t.Context(), "https://slow.example/c9.json", fast); v != 2 || err != nil {
			t.Fatalf("the host's slots were not given back: %d %v", v, err)
		}
	})
}

// TestMaxBytes: the byte budget evicts least recently used entries, and a
// value larger than the whole budget is served but not kept.
func TestMaxBytes(t *testing.T) {
	t.Parallel()
	c := &Cache[string]{MaxEntries: 100, MaxBytes: 10, Size: func(s string) int64 { return int64(len(s)) }}
	get := func(k, v string) {
		c.Get(t.Context(), k, func(context.Context) (string, time.Duration, error) { return v, time.Hour, nil })
	}
	get("a", "aaaa")
	get("b", "bbbb")
	get("a", "")     // a is now the most recent
	get("c", "cccc") // 12 bytes: b goes
	if !c.Cached("a") || c.Cached("b") || !c.Cached("c") || c.Bytes() != 8 {
		t.Fatalf("a=%v b=%v c=%v bytes %d", c.Cached("a"), c.Cached("b"), c.Cached("c"), c.Bytes())
	}
	var got string
	got, _ = c.Get(t.Context(), "huge", func(context.Context) (string, time.Duration, error) { return "0123456789abc", time.Hour, nil })
	if got != "0123456789abc" || c.Cached("huge") || c.Bytes() != 8 {
		t.Fatalf("oversized value: %q cached=%v bytes %d", got, c.Cached("huge"), c.Bytes())
	}
	// Replacing an entry (after expiry) accounts for the old size.
	c2 := &Cache[string]{MaxEntries: 10, MaxBytes: 100, Size: func(s string) int64 { return int64(len(s)) }}
	synctest.Test(t, func(t *testing.T) {
		c2.Get(t.Context(), "k", func(context.Context) (string, time.Duration, error) { return "xxxxx", time.Second, nil })
		time.Sleep(2 * time.Second)
		c2.Get(t.Context(), "k", func(context.Context) (string, time.Duration, error) { return "yy", time.Second, nil })
		if c2.Bytes() != 2 {
			t.Fatalf("bytes %d after replacing an entry", c2.Bytes())
		}
	})
}
