package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/authserver/store/storetest"
)

func TestSQLiteRetention(t *testing.T) {
	t.Parallel()
	storetest.RunRetention(t, func(t *testing.T) storetest.Retainer {
		t.Parallel()
		return sqlstoretest.SQLite(t)
	})
}

// TestConcurrentSweepers: two instances sweep one database while
// requests rotate and revoke: neither fails or deadlocks, and together
// they count every deleted row exactly once.
func TestConcurrentSweepers(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ucpbridge.db")
		var ss [2]*sqlstore.Store
		for i := range ss {
			s, err := sqlstore.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ss[i] = s
		}
		concurrentSweepers(t, ss[0], ss[1])
	})
	t.Run("Postgres", func(t *testing.T) {
		a, b := sqlstoretest.PostgresPair(t)
		if a == nil {
			t.Skip(sqlstoretest.EnvPG + " is not set")
		}
		concurrentSweepers(t, a, b)
	})
}

// TestDefaultSweepBatch: with BatchSize zero each engine deletes its own
// batch size: small on SQLite's single writer, larger on PostgreSQL.
func TestDefaultSweepBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t testing.TB) *sqlstore.Store
		want int64
	}{
		{"SQLite", sqlstoretest.SQLite, sqlstore.SQLiteSweepBatch},
		{"Postgres", sqlstoretest.Postgres, sqlstore.PostgresSweepBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.open(t)
			if s == nil {
				t.Skip(sqlstoretest.EnvPG + " is not set")
			}
			ctx := context.Background()
			t0 := time.UnixMilli(1_790_000_000_000)
			for i := range sqlstore.PostgresSweepBatch + 10 {
				h := sha256.Sum256(fmt.Appendf(nil, "token %d", i))
				must(t, s.SaveAccessToken(ctx, &store.AccessToken{Hash: h[:], ClientID: "m", Scope: "orders:read", ExpiresAt: t0}))
			}
			st, err := s.SweepExpired(ctx, t0.Add(time.Hour), store.Retention{MaxBatches: 1})
			must(t, err)
			if st.Deleted[store.TableAccessTokens] != tc.want || !st.More {
				t.Fatalf("one batch with the default size: %+v, want %d deleted", st, tc.want)
			}
		})
	}
}

func concurrentSweepers(t *testing.T, a, b *sqlstore.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_790_000_000_000)
	now := t0.Add(48 * time.Hour)
	const apps, families = 1500, 60
	for i := range apps {
		must(t, a.SaveAccessToken(ctx, &store.AccessToken{Hash: []byte(fmt.Sprintf("app-%d", i)), ClientID: "m", ExpiresAt: t0}))
	}
	// Families: even ones revoked a day ago (swept), odd ones live with
	// an expired access token (kept); requests rotate and revoke the
	// live ones while the sweepers run.
	type fam struct{ grant, refresh string }
	var live []fam
	for i := range families {
		g := fmt.Sprintf("g%d", i)
		iss := store.Issue{Grant: &store.Grant{ID: g, ClientID: "c", BuyerID: "b", CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
			Refresh: &store.RefreshToken{Hash: []byte(g + "-r0"), GrantID: g, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
			Access:  &store.AccessToken{Hash: []byte(g + "-a0"), GrantID: g, ClientID: "c", BuyerID: "b", ExpiresAt: t0.Add(time.Hour)}}
		must(t, a.IssueGrant(ctx, iss))
		if i%2 == 0 {
			must(t, a.RevokeGrant(ctx, g, t0))
		} else {
			live = append(live, fam{g, g + "-r0"})
		}
	}
	r := store.Retention{BatchSize: 25}
	var (
		mu    sync.Mutex
		total = map[string]int64{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for _, s := range []*sqlstore.Store{a, b} {
		wg.Go(func() {
			for {
				st, err := s.SweepExpired(ctx, now, r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for k, v := range st.Deleted {
					total[k] += v
				}
				mu.Unlock()
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	// Requests alongside: each live family rotates twice, then every
	// other one is revoked (now, so it stays for RevokedRetention).
	var reqs sync.WaitGroup
	for i, f := range live {
		reqs.Go(func() {
			s := []*sqlstore.Store{a, b}[i%2]
			cur := []byte(f.refresh)
			for n := 1; n <= 2; n++ {
				next := store.Issue{Refresh: &store.RefreshToken{Hash: []byte(fmt.Sprintf("%s-r%d", f.grant, n)), GrantID: f.grant, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
					Access: &store.AccessToken{Hash: []byte(fmt.Sprintf("%s-a%d", f.grant, n)), GrantID: f.grant, ClientID: "c", BuyerID: "b", ExpiresAt: now.Add(time.Hour)}}
				if _, err := s.Rotate(ctx, cur, next, now, time.Second); err != nil {
					t.Errorf("rotate %s: %v", f.grant, err)
					return
				}
				cur = next.Refresh.Hash
			}
			if i%2 == 0 {
				if err := s.RevokeToken(ctx, cur, now); err != nil {
					t.Errorf("revoke %s: %v", f.grant, err)
				}
			}
		})
	}
	reqs.Wait()
	close(stop)
	wg.Wait()
	// One last sweep picks up anything left by a Busy or racing pass.
	st, err := a.SweepExpired(ctx, now, r)
	must(t, err)
	for k, v := range st.Deleted {
		total[k] += v
	}
	revoked := int64(families / 2)
	want := map[string]int64{
		store.TableAccessTokens:  apps + revoked + int64(len(live)), // the revoked families' and the live ones' a0
		store.TableRefreshTokens: revoked,
		store.TableGrants:        revoked,
	}
	for k, v := range want {
		if total[k] != v {
			t.Errorf("%s: deleted %d, want %d (all: %v)", k, total[k], v, total)
		}
	}
	for table, n := range map[string]int{"grants": families - int(revoked), "refresh_tokens": 3 * len(live), "access_tokens": 2 * len(live)} {
		var got int
		must(t, a.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&got))
		if got != n {
			t.Errorf("%s: %d rows left, want %d", table, got, n)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSaveAccessTokenExpiryIndex is what the sweep's index on
// access_tokens(expires_at) costs the hot path: one client_credentials
// token insert, with and without the index, on a table already holding
// 200,000 tokens.
func BenchmarkSaveAccessTokenExpiryIndex(b *testing.B) {
	opens := map[string]func(testing.TB) *sqlstore.Store{"sqlite": func(tb testing.TB) *sqlstore.Store { return sqlstoretest.SQLite(tb) }}
	if os.Getenv(sqlstoretest.EnvPG) != "" {
		opens["postgres"] = func(tb testing.TB) *sqlstore.Store { return sqlstoretest.Postgres(tb) }
	}
	for name, open := range opens {
		for _, index := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/index=%v", name, index), func(b *testing.B) {
				ctx := context.Background()
				s := open(b)
				if !index {
					if _, err := s.DB().ExecContext(ctx, `DROP INDEX access_tokens_expires`); err != nil {
						b.Fatal(err)
					}
				}
				exp := time.Now().Add(5 * time.Second)
				if _, err := s.DB().ExecContext(ctx, `INSERT INTO access_tokens (hash, client_id, buyer_id, scope, resource, store, expires_at)
					SELECT CAST(md5(CAST(g AS TEXT)) AS `+map[bool]string{true: "BYTEA", false: "BLOB"}[name == "postgres"]+`), 'm', '', 'orders:read', '', 'shop', `+fmt.Sprint(exp.UnixMilli())+` + g
					FROM generate_series(1, 200000) AS g`); err != nil && name == "postgres" {
					b.Fatal(err)
				} else if err != nil {
					// SQLite has no md5 or generate_series: a recursive CTE.
					if _, err := s.DB().ExecContext(ctx, `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200000)
						INSERT INTO access_tokens (hash, client_id, buyer_id, scope, resource, store, expires_at)
						SELECT randomblob(32), 'm', '', 'orders:read', '', 'shop', ? + n FROM g`, exp.UnixMilli()); err != nil {
						b.Fatal(err)
					}
				}
				var i int
				b.SetParallelism(8)
				b.ResetTimer()
				var mu sync.Mutex
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						mu.Lock()
						i++
						h := sha256.Sum256(fmt.Appendf(nil, "tok-%d", i))
						mu.Unlock()
						if err := s.SaveAccessToken(ctx, &store.AccessToken{Hash: h[:], ClientID: "m", Scope: "orders:read", Store: "shop",
							ExpiresAt: time.Now().Add(5 * time.Second)}); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}
