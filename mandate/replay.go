package mandate

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers used mandate ids until they expire.
type ReplayCache interface {
	// Use atomically records id as used until expires. It returns
	// ErrReplayed when id is already recorded and not yet expired, and any
	// other error when it cannot tell (the caller then fails closed).
	Use(ctx context.Context, id string, expires time.Time) error
}

// DefaultReplayCapacity bounds a MemoryReplayCache made with capacity 0.
const DefaultReplayCapacity = 1 << 20

// ErrReplayCacheFull is returned by MemoryReplayCache when it holds
// capacity unexpired ids. Forgetting an id early would re-open replay, so
// the cache refuses instead.
var ErrReplayCacheFull = errors.New("mandate: replay cache full")

// MemoryReplayCache is an in-process ReplayCache for a single instance.
// Multi-instance deployments need a shared store (the authserver provides
// one).
type MemoryReplayCache struct {
	mu       sync.Mutex
	seen     map[string]time.Time
	capacity int
	now      func() time.Time
	swept    time.Time
}

// NewMemoryReplayCache returns a cache holding at most capacity unexpired
// ids (DefaultReplayCapacity when capacity <= 0). now may be nil.
func NewMemoryReplayCache(capacity int, now func() time.Time) *MemoryReplayCache {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{seen: map[string]time.Time{}, capacity: capacity, now: now}
}

// Use implements ReplayCache.
func (c *MemoryReplayCache) Use(_ context.Context, id string, expires time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if exp, ok := c.seen[id]; ok && now.Before(exp) {
		return ErrReplayed
	}
	// A full cache is swept at most once a second, so a flood of fresh
	// mandates costs one pass over the map, not one per request.
	if len(c.seen) >= c.capacity && now.Sub(c.swept) >= time.Second {
		c.swept = now
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
	}
	if len(c.seen) >= c.capacity {
		return ErrReplayCacheFull
	}
	c.seen[id] = expires
	return nil
}
