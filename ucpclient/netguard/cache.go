package netguard

import (
	"container/list"
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrBusy is returned, uncached, when MaxInFlight fetches already run, or
// MaxInFlightPerHost for the key's host.
var ErrBusy = errors.New("netguard: too many fetches in flight")

// Fetch produces a value (or an error) and how long to keep it, the
// error included; ttl <= 0 means do not cache. It runs detached from any
// one caller's cancellation (others may be waiting), so it must bound
// itself.
type Fetch[V any] func(ctx context.Context) (v V, ttl time.Duration, err error)

// Cache sits in front of documents fetched from URLs that callers name
// (CIMD client metadata, UCP profiles): one fetch per key at a time,
// shared by every caller waiting on it (singleflight); results kept for
// the TTL the fetch reports, least recently used out first, within an
// entry count and a byte budget; and bounds on fetches in flight, overall
// and per host, so callers naming fresh URLs cannot turn the server into
// a request amplifier, and one slow host cannot hold every slot.
//
// Set fields before first use; the zero value needs only MaxEntries. It
// is safe for concurrent use.
type Cache[V any] struct {
	MaxEntries  int // required: entries kept, LRU out first
	MaxInFlight int // 0: unbounded
	// MaxInFlightPerHost bounds the fetches of keys (URLs) on one host;
	// 0: unbounded.
	MaxInFlightPerHost int
	// MaxBytes bounds the sum of Size over the entries kept, LRU out
	// first; 0 (or a nil Size): no byte budget.
	MaxBytes int64
	Size     func(V) int64
	Now      func() time.Time

	mu       sync.Mutex
	entries  map[string]*list.Element // of *entry[V]
	lru      list.List                // front: most recently used
	bytes    int64
	inflight map[string]*call[V]
	perHost  map[string]int
}

type entry[V any] struct {
	key     string
	v       V
	err     error
	size    int64
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

// host is the host a key names, lower-cased (keys that are not URLs
// share the empty host).
func host(key string) string {
	u, err := url.Parse(key)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
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
		c.perHost = make(map[string]int)
	}
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry[V])
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.v, e.err
		}
		c.remove(el)
	}
	cl, ok := c.inflight[key]
	if !ok {
		h := host(key)
		if c.MaxInFlight > 0 && len(c.inflight) >= c.MaxInFlight ||
			c.MaxInFlightPerHost > 0 && c.perHost[h] >= c.MaxInFlightPerHost {
			c.mu.Unlock()
			return zero, ErrBusy
		}
		cl = &call[V]{done: make(chan struct{})}
		c.inflight[key] = cl
		c.perHost[h]++
		go c.run(context.WithoutCancel(ctx), key, h, cl, fetch)
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

// remove drops an entry; the caller holds mu.
func (c *Cache[V]) remove(el *list.Element) {
	e := el.Value.(*entry[V])
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

func (c *Cache[V]) full() bool {
	return c.lru.Len() > max(c.MaxEntries, 1) || c.MaxBytes > 0 && c.bytes > c.MaxBytes && c.lru.Len() > 1
}

func (c *Cache[V]) run(ctx context.Context, key, h string, cl *call[V], fetch Fetch[V]) {
	v, ttl, err := fetch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ttl > 0 {
		if el, ok := c.entries[key]; ok {
			c.remove(el)
		}
		var size int64
		if c.Size != nil && err == nil {
			size = c.Size(v)
		}
		if c.MaxBytes <= 0 || size <= c.MaxBytes {
			now := c.now()
			c.entries[key] = c.lru.PushFront(&entry[V]{key: key, v: v, err: err, size: size, expires: now.Add(ttl)})
			c.bytes += size
			if c.full() {
				// Full: expired entries go first, whatever their recency.
				for el := c.lru.Back(); el != nil; {
					prev := el.Prev()
					if e := el.Value.(*entry[V]); !now.Before(e.expires) {
						c.remove(el)
					}
					el = prev
				}
			}
			for c.full() {
				c.remove(c.lru.Back())
			}
		}
	}
	cl.v, cl.err = v, err
	delete(c.inflight, key)
	if c.perHost[h]--; c.perHost[h] <= 0 {
		delete(c.perHost, h)
	}
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

// Bytes reports the sum of Size over the cached entries.
func (c *Cache[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Cached reports whether key has an entry, expired or not.
func (c *Cache[V]) Cached(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}
