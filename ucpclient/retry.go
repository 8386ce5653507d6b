package ucpclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// RetryConfig bounds the client's retries. The zero value means the
// defaults. Only safe requests are ever retried: GETs, and requests that
// carry an idempotency key; and only on transport errors, 429 and 5xx
// (never 501, never another 4xx, never 401, which the challenge relay
// handles).
type RetryConfig struct {
	// MaxAttempts counts the first attempt; 0 means 3, 1 disables
	// retries.
	MaxAttempts int
	// MinWait is the first backoff; 0 means 500 ms.
	MinWait time.Duration
	// MaxWait caps every wait, a server's Retry-After included; 0 means
	// 30 s.
	MaxWait time.Duration
}

func (r RetryConfig) withDefaults() RetryConfig {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 3
	}
	if r.MinWait <= 0 {
		r.MinWait = 500 * time.Millisecond
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 30 * time.Second
	}
	if r.MinWait > r.MaxWait {
		r.MinWait = r.MaxWait
	}
	return r
}

// retrySafeKey marks, in the request context, a request that may be
// retried (retryablehttp's CheckRetry does not see the request).
type retrySafeKey struct{}

func withRetrySafe(ctx context.Context, safe bool) context.Context {
	return context.WithValue(ctx, retrySafeKey{}, safe)
}

// checkRetry wraps retryablehttp.DefaultRetryPolicy with the safety rule.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if safe, _ := ctx.Value(retrySafeKey{}).(bool); !safe {
		return false, nil
	}
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) { // the guard refused the address: it will again
		return false, nil
	}
	if err == nil && resp != nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return false, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// cappedBackoff is retryablehttp.DefaultBackoff (which honours
// Retry-After on 429 and 503) with every wait capped at max: the default
// does not cap Retry-After, so "Retry-After: 3600" would sleep an hour.
func cappedBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	d := retryablehttp.DefaultBackoff(min, max, attempt, resp)
	if d > max || d < 0 {
		d = max
	}
	return d
}

func newRetryClient(hc *http.Client, rc RetryConfig, logger *slog.Logger) *retryablehttp.Client {
	rc = rc.withDefaults()
	c := &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: rc.MinWait,
		RetryWaitMax: rc.MaxWait,
		RetryMax:     rc.MaxAttempts - 1,
		CheckRetry:   checkRetry,
		Backoff:      cappedBackoff,
		// Keep the last response on give-up: the caller's error says
		// what the server answered.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	if logger != nil { // never a typed nil in the interface
		c.Logger = logger
	}
	return c
}
