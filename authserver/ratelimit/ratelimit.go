// Package ratelimit is in-memory token buckets, one per key (a client id,
// a client network, an account): Burst requests at once, refilled at Rate
// per second.
//
// Memory follows the number of keys active within one refill period, not
// how many were ever seen nor how long they are: keys are hashed to 64
// bits with a per-limiter random seed, and a bucket idle long enough to be
// full again is dropped, since a fresh bucket is the same thing. Buckets
// are spread over shards so that concurrent callers and the sweep do not
// serialise on one lock.
//
// Limits are per process: instances behind a load balancer each allow the
// full rate. That is the usual trade for a limiter that costs no round
// trip; a shared limiter belongs in the database or a proxy.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Limit is a token bucket's shape: Burst requests at once, refilled at
// Rate per second. The zero Limit means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// IsZero reports whether l is the zero Limit (no limit).
func (l Limit) IsZero() bool { return l == Limit{} }

// LimitError is an unusable Limit.
type LimitError struct {
	Limit  Limit
	Reason string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("ratelimit: rate %v burst %d: %s", e.Limit.Rate, e.Limit.Burst, e.Reason)
}

// Validate checks that l is the zero Limit or a usable one: a positive,
// finite Rate and a Burst of at least 1.
func (l Limit) Validate() error {
	switch {
	case l.IsZero():
		return nil
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate <= 0:
		return &LimitError{l, "the rate must be a positive number of requests per second"}
	case l.Burst < 1:
		return &LimitError{l, "the burst must be at least 1"}
	}
	return nil
}

// Options are a Limiter's optional settings; nil means the defaults.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// shards spreads keys over locks. A power of two, so the index is a mask.
const shards = 32

// Limiter keeps one bucket per key. It is safe for concurrent use. A nil
// *Limiter, like one built from the zero Limit, allows everything, so a
// disabled limit needs no branch at the call site.
type Limiter struct {
	limit Limit
	now   func() time.Time
	// full is how long an empty bucket takes to fill: a bucket idle that
	// long is full, the same as no bucket.
	full   time.Duration
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[uint64]bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter for l, or a *LimitError when l is unusable.
func New(l Limit, opts *Options) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	lim := &Limiter{limit: l, now: time.Now, seed: maphash.MakeSeed()}
	if opts != nil && opts.Now != nil {
		lim.now = opts.Now
	}
	if !l.IsZero() {
		// Clamped so that a tiny rate cannot overflow the duration.
		lim.full = time.Duration(math.Min(float64(l.Burst)/l.Rate*float64(time.Second), float64(math.MaxInt64/2)))
	}
	for i := range lim.shards {
		lim.shards[i].buckets = map[uint64]bucket{}
	}
	return lim, nil
}

// Limit is the limit l applies.
func (l *Limiter) Limit() Limit {
	if l == nil {
		return Limit{}
	}
	return l.limit
}

// Allow takes one token from key's bucket. When the bucket is empty it
// takes nothing and says how long until a token is available.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.take(key, true)
}

// Blocked reports, without taking a token, whether key's bucket is empty,
// and for how long. With Allow it counts failures only: check Blocked
// before the attempt, call Allow when the attempt failed.
func (l *Limiter) Blocked(key string) (blocked bool, retryAfter time.Duration) {
	ok, d := l.take(key, false)
	return !ok, d
}

func (l *Limiter) take(key string, take bool) (bool, time.Duration) {
	if l == nil || l.limit.IsZero() {
		return true, 0
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h&(shards-1)]
	now := l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.sweep(now, l.full)
	b, ok := sh.buckets[h]
	if !ok {
		b = bucket{tokens: float64(l.limit.Burst), last: now}
	} else {
		if d := now.Sub(b.last); d > 0 {
			b.tokens = math.Min(float64(l.limit.Burst), b.tokens+d.Seconds()*l.limit.Rate)
		}
		// A clock that stepped back refills nothing, and costs nothing
		// either: refill resumes from the new reading, so no caller waits
		// out the step and Retry-After stays true.
		b.last = now
	}
	if b.tokens >= 1 {
		if take {
			b.tokens--
			sh.buckets[h] = b
		}
		return true, 0
	}
	sh.buckets[h] = b
	return false, time.Duration((1 - b.tokens) / l.limit.Rate * float64(time.Second))
}

// sweep drops the buckets idle for a whole refill period, at most once
// per period (and at most once a second), so its cost is spread over the
// calls that made the buckets. The caller holds mu.
func (sh *shard) sweep(now time.Time, full time.Duration) {
	if now.Sub(sh.swept) <= max(full, time.Second) {
		return
	}
	for k, b := range sh.buckets {
		if now.Sub(b.last) >= full {
			delete(sh.buckets, k)
		}
	}
	sh.swept = now
}

// Len is the number of buckets held, for tests and metrics.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded
// up, at least 1 (a client told 0 would retry at once).
func RetryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
