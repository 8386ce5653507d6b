package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/authserver/store/storetest"
)

// The SQLite suites run their subtests in parallel: each opens a fresh
// store in its own directory.
func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Parallel()
		return sqlstoretest.SQLite(t)
	})
}

// TestPostgres runs both suites on PostgreSQL when UCPBRIDGE_TEST_PG holds
// a DSN; each subtest gets its own schema, dropped afterwards. It runs
// alongside the SQLite tests, but its subtests run one at a time: a store's
// pool goes up to 32 connections (the concurrency tests use 20 to 30), and
// the server's max_connections (100 by default) is shared with the other
// packages' tests, which go test runs at the same time.
func TestPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(sqlstoretest.EnvPG) == "" {
		t.Skip(sqlstoretest.EnvPG + " is not set")
	}
	t.Run("Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return sqlstoretest.Postgres(t) })
	})
	t.Run("Commerce", func(t *testing.T) {
		storetest.RunCommerce(t, func(t *testing.T) store.Commerce { return sqlstoretest.Postgres(t) })
	})
	t.Run("Platform", func(t *testing.T) {
		storetest.RunPlatform(t, func(t *testing.T) storetest.Platform { return sqlstoretest.Postgres(t) })
	})
	t.Run("Retention", func(t *testing.T) {
		storetest.RunRetention(t, func(t *testing.T) storetest.Retainer { return sqlstoretest.Postgres(t) })
	})
}

func TestSQLitePlatform(t *testing.T) {
	t.Parallel()
	storetest.RunPlatform(t, func(t *testing.T) storetest.Platform {
		t.Parallel()
		return sqlstoretest.SQLite(t)
	})
}

// TestRevocationDropsSealedResponses: a revoked family keeps no sealed
// token responses (they are encrypted, but there is no reason to keep them).
func TestRevocationDropsSealedResponses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlstoretest.SQLite(t)
	now := time.UnixMilli(1_790_000_000_000)
	g := &store.Grant{ID: "g1", ClientID: "c", BuyerID: "b", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	rt := &store.RefreshToken{Hash: []byte("rt1"), GrantID: "g1", ExpiresAt: now.Add(time.Hour)}
	code := &store.Code{Hash: []byte("code"), ClientID: "c", BuyerID: "b", ExpiresAt: now.Add(time.Minute)}
	if err := s.SaveCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if err := s.RedeemCode(ctx, code.Hash, store.Issue{Grant: g, Refresh: rt, Access: &store.AccessToken{Hash: []byte("at1"), GrantID: "g1", ClientID: "c", ExpiresAt: now.Add(time.Hour)}}, now); err != nil {
		t.Fatal(err)
	}
	next := store.Issue{Refresh: &store.RefreshToken{Hash: []byte("rt2"), GrantID: "g1", ExpiresAt: now.Add(time.Hour)},
		Access: &store.AccessToken{Hash: []byte("at2"), GrantID: "g1", ClientID: "c", ExpiresAt: now.Add(time.Hour)}, Sealed: []byte("sealed")}
	if _, err := s.Rotate(ctx, rt.Hash, next, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, "g1", now); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens WHERE sealed IS NOT NULL OR state <> 'revoked'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d refresh tokens still live or sealed (%v)", n, err)
	}
}

func TestCommerceSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunCommerce(t, func(t *testing.T) store.Commerce {
		t.Parallel()
		return sqlstoretest.SQLite(t)
	})
}

// TestSearchLimits: a zero limit gets a default page and no limit gets
// more than the cap, so one query never reads a whole catalog.
func TestSearchLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlstoretest.SQLite(t)
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1100 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO products
			(shop_slug, id, title, text, min_price, max_price, currency, categories, updated_at)
			VALUES ('a', ?, 't', 'x', 1, 1, 'EUR', '[]', 0)`, fmt.Sprintf("p%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for limit, want := range map[int]int{0: 50, -1: 50, 7: 7, 1000: 1000, 5000: 1000} {
		ps, err := s.SearchProducts(ctx, store.ProductQuery{Limit: limit})
		if err != nil || len(ps) != want {
			t.Errorf("limit %d: %d products (%v), want %d", limit, len(ps), err, want)
		}
	}
}
