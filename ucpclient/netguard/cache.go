package netguard

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// ErrBusy is returned, uncached, when MaxInFlight fetches already run.
var ErrBusy = errors.New("netguard: too many fetches in flight")

// Fetch produces a value (or an error) and how long to keep it, the
// error included; ttl <= 0 means do not cache. It runs detached from any
// one caller's cancellation (others may be waiting), so it must bound
// itself.
type Fetch[V any] func(ctx context.Context) (v V, ttl time.Duration, err error)

// Cache sits in front of documents fetched from URLs that callers name
// (CIMD client metadata, UCP profiles): one fetch per key at a time,
// shared by every caller waiting on it (singleflight); results kept for
// the TTL the fetch reports, least recently used out first; and a bound
// on fetches in flight, so callers naming fresh URLs cannot turn the
// server into a request amplifier.
//
// Set fields before first use; the zero value needs only MaxEntries. It
// is safe for concurrent use.
type Cache[V any] struct {
	MaxEntries  int // required: entries kept, LRU out first
	MaxInFlight int // 0: unbounded
	Now         func() time.Time

	mu       sync.Mutex
	entries  map[string]*list.Element // of *entry[V]
	lru      list.List                // front: most recently used
	inflight map[string]*call[V]
}

type entry[V any] struct {
	key     string
	v       V
	err     error
	expires time.Time
}

type call[V any] struct {
	done   chan struct{}
	v      V
	err    error
	joined int
}

func (c *Cache[V]) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the cached result for key, or joins (or starts) the fetch for
// it. A caller whose ctx ends first gets ctx.Err(); the fetch goes on for
// the others and is cached. Cached values are shared: callers must not
// modify them (or must copy).
func (c *Cache[V]) Get(ctx context.Context, key string, fetch Fetch[V]) (V, error) {
	var zero V
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[string]*list.Element)
		c.inflight = make(map[string]*call[V])
	}
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry[V])
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.v, e.err
		}
		c.lru.Remove(el)
		delete(c.entries, key)
	}
	cl, ok := c.inflight[key]
	if !ok && c.MaxInFlight > 0 && len(c.inflight) >= c.MaxInFlight {
		c.mu.Unlock()
		return zero, ErrBusy
	}
	if !ok {
		cl = &call[V]{done: make(chan struct{})}
		c.inflight[key] = cl
		go c.run(context.WithoutCancel(ctx), key, cl, fetch)
	}
	cl.joined++
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.v, cl.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (c *Cache[V]) run(ctx context.Context, key string, cl *call[V], fetch Fetch[V]) {
	v, ttl, err := fetch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ttl > 0 {
		if el, ok := c.entries[key]; ok {
			c.lru.Remove(el)
		}
		now := c.now()
		c.entries[key] = c.lru.PushFront(&entry[V]{key: key, v: v, err: err, expires: now.Add(ttl)})
		if c.lru.Len() > max(c.MaxEntries, 1) {
			// Full: expired entries go first, whatever their recency.
			for el := c.lru.Back(); el != nil; {
				prev := el.Prev()
				if e := el.Value.(*entry[V]); !now.Before(e.expires) {
					c.lru.Remove(el)
					delete(c.entries, e.key)
				}
				el = prev
			}
		}
		for c.lru.Len() > max(c.MaxEntries, 1) {
			oldest := c.lru.Back()
			c.lru.Remove(oldest)
			delete(c.entries, oldest.Value.(*entry[V]).key)
		}
	}
	cl.v, cl.err = v, err
	delete(c.inflight, key)
	close(cl.done)
}

// Joined reports how many Get calls wait on the fetch of key (tests use it
// to know a burst has piled up).
func (c *Cache[V]) Joined(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.inflight[key]; ok {
		return cl.joined
	}
	return 0
}

// Len reports how many entries are cached, expired ones included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Cached reports whether key has an entry, expired or not.
func (c *Cache[V]) Cached(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}
