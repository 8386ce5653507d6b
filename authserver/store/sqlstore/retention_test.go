package sqlstore_test

import (
	"context"
	"fmt"
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
