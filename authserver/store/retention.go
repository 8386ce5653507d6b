package store

import (
	"context"
	"fmt"
	"time"
)

// Retention says how long OAuth records outlive their use before a sweep
// deletes them. Each period is chosen so that deleting a record changes
// no answer the server gives: a deleted token, code or family is refused
// just as the expired or revoked one was, and every rule that still
// needs a record (refresh reuse detection, code replay revocation,
// revocation itself) keeps it. Zero fields take the defaults.
type Retention struct {
	// TokenGrace is how long an access token is kept after it expires
	// (default 5 minutes), so instances with skewed clocks and the
	// introspection endpoint still tell "expired" from "unknown" for a
	// while.
	TokenGrace time.Duration
	// CodeRetention is how long an unused authorization code is kept
	// after it expires (default 1 hour). A redeemed code is kept as long
	// as the refresh family it issued and deleted with it, so a replay at
	// any time in that family's life still revokes it (RFC 6749 §4.1.2).
	CodeRetention time.Duration
	// RevokedRetention is how long a revoked refresh family (grant,
	// refresh and access tokens) is kept after its revocation (default 24
	// hours). A family that expired goes TokenGrace after its expiry,
	// once none of its access tokens is live. A live family is never
	// deleted: every rotated-out refresh token stays until the family's
	// end, so a replay of any of them is recognised as reuse.
	RevokedRetention time.Duration
	// UnusedClientRetention is how long a self-registered client (RFC
	// 7591) that no buyer ever consented to and that holds no grant is
	// kept after its registration (default 7 days). Registration is open
	// (rate-limited per network, not per caller), so clients nobody used
	// would otherwise pile up for ever; a client a buyer consented to is
	// never deleted by the sweep.
	UnusedClientRetention time.Duration
	// BatchSize is how many rows one delete transaction removes (zero:
	// the store's default). sqlstore deletes 50 at a time on SQLite,
	// whose single writer every token issuance queues on: 50 moved token
	// p99 by ~2 ms while a sweep ran, 100 by ~12 ms (issue 13 soak). On
	// PostgreSQL, where a delete blocks no insert, it deletes 500: 50
	// per transaction fell behind ~2,000 tokens/s, 500 kept up with
	// 3,500/s and moved p99 by ~3 ms.
	BatchSize int
	// MaxBatches bounds the batches per table in one sweep (default
	// 10000); a sweep that reaches it reports More.
	MaxBatches int
}

// Retention defaults.
const (
	DefaultTokenGrace            = 5 * time.Minute
	DefaultCodeRetention         = time.Hour
	DefaultRevokedRetention      = 24 * time.Hour
	DefaultUnusedClientRetention = 7 * 24 * time.Hour
	DefaultSweepMaxBatches       = 10000
)

// WithDefaults returns r with zero fields set to the defaults (but
// BatchSize, which the store chooses), or an error for a negative one.
func (r Retention) WithDefaults() (Retention, error) {
	for name, d := range map[string]time.Duration{"TokenGrace": r.TokenGrace, "CodeRetention": r.CodeRetention, "RevokedRetention": r.RevokedRetention, "UnusedClientRetention": r.UnusedClientRetention} {
		if d < 0 {
			return r, fmt.Errorf("store: Retention.%s is negative (%v)", name, d)
		}
	}
	if r.BatchSize < 0 || r.MaxBatches < 0 {
		return r, fmt.Errorf("store: Retention.BatchSize (%d) and MaxBatches (%d) must not be negative", r.BatchSize, r.MaxBatches)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.TokenGrace, DefaultTokenGrace)
	def(&r.CodeRetention, DefaultCodeRetention)
	def(&r.RevokedRetention, DefaultRevokedRetention)
	def(&r.UnusedClientRetention, DefaultUnusedClientRetention)
	if r.MaxBatches == 0 {
		r.MaxBatches = DefaultSweepMaxBatches
	}
	return r, nil
}

// Table names in SweepStats.Deleted: the stores' tables, so operators
// can match them with the database.
const (
	TableAccessTokens  = "access_tokens"
	TableRefreshTokens = "refresh_tokens"
	TableGrants        = "grants"
	TableCodes         = "codes"
	TableClients       = "clients"
)

// SweepStats is what one sweep did: the figures for logs and metrics
// (a counter of rows deleted per table, a histogram of durations).
type SweepStats struct {
	// Deleted counts the rows deleted, by table (Table* names; a table
	// with nothing to delete may be absent).
	Deleted  map[string]int64
	Duration time.Duration
	// More: a table reached Retention.MaxBatches, so expired rows may
	// remain; the caller should sweep again soon rather than wait.
	More bool
	// Busy: another instance was sweeping the same database (PostgreSQL),
	// so this one stopped early and left the work to it.
	Busy bool
}

// Total is the number of rows deleted in all tables.
func (s SweepStats) Total() int64 {
	var n int64
	for _, v := range s.Deleted {
		n += v
	}
	return n
}

// Sweeper deletes the OAuth records that retention no longer needs.
type Sweeper interface {
	// SweepExpired deletes, as of now, the access tokens, authorization
	// codes and refresh families r lets go, in batches of r.BatchSize,
	// each its own short transaction, at most r.MaxBatches per table. It
	// stops between batches when ctx ends, returning what it did with
	// ctx's error. Several instances may sweep one database at once; no
	// row is counted twice.
	SweepExpired(ctx context.Context, now time.Time, r Retention) (SweepStats, error)
}
