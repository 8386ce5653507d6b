package authserver

import (
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

// limiter keeps one bucket per key (client id or IP). Buckets idle long
// enough to be full again are dropped, so memory follows active keys.
type limiter struct {
	rl      RateLimit
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rl RateLimit, now func() time.Time) *limiter {
	return &limiter{rl: rl, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for key, or says how long until one is available.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil || l.rl.Rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	full := time.Duration(float64(l.rl.Burst) / l.rl.Rate * float64(time.Second))
	if now.Sub(l.swept) > full && len(l.buckets) > 1024 {
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.rl.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(float64(l.rl.Burst), b.tokens+now.Sub(b.last).Seconds()*l.rl.Rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rl.Rate * float64(time.Second))
	return false, wait
}
