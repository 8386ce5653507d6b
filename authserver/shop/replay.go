package shop

import (
	"context"
	"errors"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// StoreReplayCache is a mandate.ReplayCache on the shared idempotency
// table: every instance of a multi-instance deployment sees every used
// mandate, and the records expire with the mandates (swept with the
// idempotency records).
type StoreReplayCache struct {
	Store store.Idempotency
	Now   func() time.Time
}

var _ mandate.ReplayCache = (*StoreReplayCache)(nil)

// Use implements mandate.ReplayCache: the first claim of id wins; a live
// claim means replay.
func (c *StoreReplayCache) Use(ctx context.Context, id string, expires time.Time) error {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	// Held (pending) until the mandate expires, plus a minute of the
	// verifier's leeway: a claim that lapses can only be re-claimed by a
	// mandate the verifier already refuses as expired.
	life := max(expires.Sub(now), 0) + time.Minute
	rec, err := c.Store.ClaimIdempotency(ctx, store.IdemKey{Scope: "ap2-mandate", Key: id}, []byte("used"), now, life, life)
	switch {
	case err == nil && rec == nil:
		return nil
	case err == nil, errors.Is(err, store.ErrInProgress):
		return mandate.ErrReplayed
	default:
		return err
	}
}
