package oauth

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"
)

// RateLimit is a token bucket: Burst requests at once, refilled at Rate
// per second. A zero Rate disables the limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// limiter keeps one bucket per key (client id, IP, account). Buckets idle
// long enough to be full again are swept on a timer, whatever the map's
// size, and keys are hashed, so memory follows the number of keys active
// within one refill period and not their length.
type limiter struct {
	rl      RateLimit
	now     func() time.Time
	mu      sync.Mutex
	buckets map[[sha256.Size]byte]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rl RateLimit, now func() time.Time) *limiter {
	return &limiter{rl: rl, now: now, buckets: map[[sha256.Size]byte]*bucket{}}
}

// refill returns key's bucket brought up to now; the caller holds mu.
func (l *limiter) refill(key string) *bucket {
	now := l.now()
	full := time.Duration(float64(l.rl.Burst) / l.rl.Rate * float64(time.Second))
	if now.Sub(l.swept) > max(full, time.Second) {
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	k := sha256.Sum256([]byte(key))
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{tokens: float64(l.rl.Burst), last: now}
		l.buckets[k] = b
	}
	b.tokens = math.Min(float64(l.rl.Burst), b.tokens+now.Sub(b.last).Seconds()*l.rl.Rate)
	b.last = now
	return b
}

func (l *limiter) wait(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) / l.rl.Rate * float64(time.Second))
}

// allow takes one token for key, or says how long until one is available.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil || l.rl.Rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, l.wait(b)
}

// give returns a token taken by allow: a reservation that turned out not
// to count (a sign-in that succeeded). It never fills a bucket past Burst,
// and a bucket swept since is already full.
func (l *limiter) give(key string) {
	if l == nil || l.rl.Rate <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	b.tokens = math.Min(float64(l.rl.Burst), b.tokens+1)
}
