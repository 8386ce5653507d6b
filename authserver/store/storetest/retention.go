package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Retainer is a store with the retention sweep (and the commerce half,
// whose order records a sweep must leave alone).
type Retainer interface {
	store.Store
	store.Commerce
	store.Sweeper
}

// RunRetention runs the retention sweep's tests: every kind of record is
// deleted once retention lets it go and kept while a rule still needs it.
// open returns a new, empty store for each subtest.
func RunRetention(t *testing.T, open func(t *testing.T) Retainer) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Retainer)
	}{
		{"AccessTokens", testSweepAccessTokens},
		{"Codes", testSweepCodes},
		{"LiveFamilyKeptReuseStillFires", testSweepLiveFamily},
		{"RevokedFamily", testSweepRevokedFamily},
		{"ExpiredFamily", testSweepExpiredFamily},
		{"RevocationAfterSweep", testSweepThenRevoke},
		{"Batches", testSweepBatches},
		{"Cancelled", testSweepCancelled},
		{"OrdersKept", testSweepKeepsOrders},
		{"BadRetention", testSweepBadRetention},
		{"UnusedClients", testSweepUnusedClients},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// ret is the retention the tests sweep with: distinct periods, so each
// test shows which one applies.
var ret = store.Retention{TokenGrace: time.Minute, CodeRetention: 10 * time.Minute, RevokedRetention: time.Hour,
	UnusedClientRetention: 48 * time.Hour}

func sweep(t *testing.T, s store.Sweeper, now time.Time) store.SweepStats {
	t.Helper()
	st, err := s.SweepExpired(context.Background(), now, ret)
	must(t, err)
	if st.More || st.Busy {
		t.Fatalf("sweep at %v: %+v", now.Sub(t0), st)
	}
	return st
}

func wantDeleted(t *testing.T, st store.SweepStats, want map[string]int64) {
	t.Helper()
	for _, table := range []string{store.TableAccessTokens, store.TableRefreshTokens, store.TableGrants, store.TableCodes, store.TableClients} {
		if st.Deleted[table] != want[table] {
			t.Fatalf("deleted %v, want %v", st.Deleted, want)
		}
	}
}

func appToken(t *testing.T, expires time.Time) *store.AccessToken {
	return &store.AccessToken{Hash: hash(t), ClientID: "merchant", Scope: "orders:read", Store: "shop", ExpiresAt: expires}
}

// testSweepAccessTokens: an access token goes TokenGrace after it
// expires, not before; a revoked one is kept (refused as revoked) until
// then too.
func testSweepAccessTokens(t *testing.T, s Retainer) {
	ctx := context.Background()
	short, long, revoked := appToken(t, t0.Add(time.Minute)), appToken(t, t0.Add(time.Hour)), appToken(t, t0.Add(time.Minute))
	for _, a := range []*store.AccessToken{short, long, revoked} {
		must(t, s.SaveAccessToken(ctx, a))
	}
	must(t, s.RevokeToken(ctx, revoked.Hash, t0))
	wantDeleted(t, sweep(t, s, t0.Add(2*time.Minute-time.Millisecond)), nil)
	_, err := s.AccessToken(ctx, short.Hash, t0.Add(2*time.Minute))
	wantErr(t, err, store.ErrExpired, "expired token inside the grace")
	_, err = s.AccessToken(ctx, revoked.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "revoked token inside the grace")
	st := sweep(t, s, t0.Add(2*time.Minute))
	wantDeleted(t, st, map[string]int64{store.TableAccessTokens: 2})
	if st.Total() != 2 || st.Duration <= 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, h := range [][]byte{short.Hash, revoked.Hash} {
		_, err = s.AccessToken(ctx, h, t0)
		wantErr(t, err, store.ErrNotFound, "swept token")
	}
	if _, err := s.AccessToken(ctx, long.Hash, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("live token: %v", err)
	}
	wantDeleted(t, sweep(t, s, t0.Add(2*time.Minute)), nil)
}

// testSweepCodes: an unused code stays CodeRetention after it expires; a
// redeemed code stays as long as the family it issued, so a replay at any
// time in the family's life revokes it, and goes with that family.
func testSweepCodes(t *testing.T, s Retainer) {
	ctx := context.Background()
	unused := saveCode(t, s) // expires t0+1m
	f := redeemed(t, s)      // its code too
	usedCode := hash(t)
	must(t, s.SaveCode(ctx, &store.Code{Hash: usedCode, ClientID: "c1", BuyerID: "b1", ExpiresAt: t0.Add(time.Minute)}))
	g := newFamily(t)
	must(t, s.RedeemCode(ctx, usedCode, g.issue(), t0))
	// Retention is CodeRetention (10 min) past expiry: at t0+11m-1ms all
	// three are kept.
	wantDeleted(t, sweep(t, s, t0.Add(11*time.Minute-time.Millisecond)), nil)
	if _, err := s.Code(ctx, unused); err != nil {
		t.Fatalf("unused code inside retention: %v", err)
	}
	// Then only the unused code goes.
	wantDeleted(t, sweep(t, s, t0.Add(11*time.Minute)), map[string]int64{store.TableCodes: 1})
	_, err := s.Code(ctx, unused)
	wantErr(t, err, store.ErrNotFound, "swept code")
	// Days later, long past CodeRetention, a replay of a redeemed code
	// is still recognised and revokes what it issued.
	later := t0.Add(3 * 24 * time.Hour)
	wantDeleted(t, sweep(t, s, later), map[string]int64{store.TableAccessTokens: 2}) // the first access tokens (t0+1h)
	wantErr(t, s.RedeemCode(ctx, usedCode, newFamily(t).issue(), later), store.ErrCodeUsed, "replay days later")
	_, _, err = s.RefreshToken(ctx, g.refresh.Hash, later)
	wantErr(t, err, store.ErrRevoked, "the family the replayed code issued")
	// The other code's family is live: untouched.
	if _, _, err := s.RefreshToken(ctx, f.refresh.Hash, later); err != nil {
		t.Fatalf("live family after the code sweep: %v", err)
	}
	// The revoked family goes RevokedRetention (1 h) after the replay,
	// its code with it; a replay then is an unknown code.
	st := sweep(t, s, later.Add(time.Hour))
	wantDeleted(t, st, map[string]int64{store.TableGrants: 1, store.TableRefreshTokens: 1, store.TableCodes: 1})
	wantErr(t, s.RedeemCode(ctx, usedCode, newFamily(t).issue(), later.Add(time.Hour)), store.ErrNotFound, "code swept with its family")
	if _, _, err := s.RefreshToken(ctx, f.refresh.Hash, later.Add(time.Hour)); err != nil {
		t.Fatalf("live family after its sibling was swept: %v", err)
	}
}

// rotate exchanges f's current refresh token for a new pair at now.
func rotate(t *testing.T, s store.Store, f *family, now time.Time) (old []byte) {
	t.Helper()
	next := store.Issue{
		Refresh: &store.RefreshToken{Hash: hash(t), GrantID: f.grant.ID, ExpiresAt: f.grant.ExpiresAt},
		Access:  &store.AccessToken{Hash: hash(t), GrantID: f.grant.ID, ClientID: "c1", BuyerID: "b1", Scope: f.grant.Scope, ExpiresAt: now.Add(time.Hour)},
		Sealed:  []byte("sealed"),
	}
	_, err := s.Rotate(context.Background(), f.refresh.Hash, next, now, 30*time.Second)
	must(t, err)
	old = f.refresh.Hash
	f.refresh, f.access = next.Refresh, next.Access
	return old
}

// testSweepLiveFamily: a live family keeps every rotated-out refresh
// token however old, so a replay after sweeps is still reuse and kills
// the family; only its expired access tokens go.
func testSweepLiveFamily(t *testing.T, s Retainer) {
	ctx := context.Background()
	f := redeemed(t, s)
	firstAccess := f.access.Hash
	old1 := rotate(t, s, &f, t0.Add(10*time.Minute))
	old2 := rotate(t, s, &f, t0.Add(20*time.Minute))
	// Days later (its code and the first access tokens long expired),
	// two sweeps: the family's expired access tokens go; its code stays
	// with the family.
	later := t0.Add(3 * 24 * time.Hour)
	wantDeleted(t, sweep(t, s, later), map[string]int64{store.TableAccessTokens: 3})
	wantDeleted(t, sweep(t, s, later), nil)
	_, err := s.AccessToken(ctx, firstAccess, later)
	wantErr(t, err, store.ErrNotFound, "expired access token of a live family")
	for _, h := range [][]byte{old1, old2, f.refresh.Hash} {
		if _, _, err := s.RefreshToken(ctx, h, later); err != nil {
			t.Fatalf("refresh token of a live family after a sweep: %v", err)
		}
	}
	// A fresh pair, then the first rotated-out token comes back: reuse.
	rotate(t, s, &f, later)
	next := newFamily(t)
	next.refresh.GrantID, next.access.GrantID = f.grant.ID, f.grant.ID
	_, err = s.Rotate(ctx, old1, store.Issue{Refresh: next.refresh, Access: next.access}, later.Add(time.Minute), 30*time.Second)
	wantErr(t, err, store.ErrTokenReused, "rotated-out token replayed after a sweep")
	_, _, err = s.RefreshToken(ctx, f.refresh.Hash, later.Add(time.Minute))
	wantErr(t, err, store.ErrRevoked, "the family after reuse")
	_, err = s.AccessToken(ctx, f.access.Hash, later.Add(time.Minute))
	wantErr(t, err, store.ErrRevoked, "the family's access token after reuse")
}

// testSweepRevokedFamily: a revoked family is kept RevokedRetention after
// its revocation (refused as revoked), then goes whole.
func testSweepRevokedFamily(t *testing.T, s Retainer) {
	ctx := context.Background()
	f := redeemed(t, s)
	old := rotate(t, s, &f, t0.Add(time.Minute))
	live := redeemed(t, s)
	revokedAt := t0.Add(2 * time.Minute)
	must(t, s.RevokeToken(ctx, f.refresh.Hash, revokedAt))
	before := revokedAt.Add(time.Hour - time.Millisecond)
	// The access tokens that expired at t0+1h (one per family) go; the
	// revoked family is kept, and both families' codes with them.
	wantDeleted(t, sweep(t, s, before), map[string]int64{store.TableAccessTokens: 2})
	_, _, err := s.RefreshToken(ctx, old, before)
	wantErr(t, err, store.ErrRevoked, "revoked family inside retention")
	st := sweep(t, s, revokedAt.Add(time.Hour))
	// The revoked family: its grant, both refresh tokens, the access
	// token of its rotation (still unexpired, but revoked) and its code.
	wantDeleted(t, st, map[string]int64{store.TableGrants: 1, store.TableRefreshTokens: 2, store.TableAccessTokens: 1, store.TableCodes: 1})
	for _, h := range [][]byte{old, f.refresh.Hash} {
		_, _, err = s.RefreshToken(ctx, h, revokedAt.Add(time.Hour))
		wantErr(t, err, store.ErrNotFound, "swept refresh token")
	}
	_, err = s.Grant(ctx, f.grant.ID)
	wantErr(t, err, store.ErrNotFound, "swept grant")
	_, err = s.AccessToken(ctx, f.access.Hash, revokedAt)
	wantErr(t, err, store.ErrNotFound, "swept access token")
	// A swept token presented for refresh or revocation is unknown: no
	// error to revoke (RFC 7009), invalid at the token endpoint.
	must(t, s.RevokeToken(ctx, old, revokedAt.Add(2*time.Hour)))
	next := newFamily(t)
	next.refresh.GrantID, next.access.GrantID = f.grant.ID, f.grant.ID
	_, err = s.Rotate(ctx, old, store.Issue{Refresh: next.refresh, Access: next.access}, revokedAt.Add(2*time.Hour), 30*time.Second)
	wantErr(t, err, store.ErrNotFound, "swept token rotated")
	if _, _, err := s.RefreshToken(ctx, live.refresh.Hash, revokedAt.Add(time.Hour)); err != nil {
		t.Fatalf("the other family: %v", err)
	}
}

// testSweepExpiredFamily: a family that reached its end goes TokenGrace
// later, but not while an access token from its last rotation lives.
func testSweepExpiredFamily(t *testing.T, s Retainer) {
	ctx := context.Background()
	f := newFamily(t)
	f.grant.ExpiresAt, f.refresh.ExpiresAt = t0.Add(2*time.Hour), t0.Add(2*time.Hour)
	must(t, s.IssueGrant(ctx, f.issue()))
	old := rotate(t, s, &f, t0.Add(2*time.Hour-time.Minute)) // its access token lives until t0+3h-1m
	end := t0.Add(2*time.Hour + time.Minute)
	// The first access token (t0+1h) goes; the family waits for the last.
	wantDeleted(t, sweep(t, s, end), map[string]int64{store.TableAccessTokens: 1})
	_, _, err := s.RefreshToken(ctx, old, end)
	wantErr(t, err, store.ErrExpired, "expired family kept while an access token lives")
	if _, err := s.AccessToken(ctx, f.access.Hash, end); err != nil {
		t.Fatalf("last access token of an ended family: %v", err)
	}
	gone := t0.Add(3 * time.Hour)
	wantDeleted(t, sweep(t, s, gone), map[string]int64{store.TableGrants: 1, store.TableRefreshTokens: 2, store.TableAccessTokens: 1})
	_, err = s.Grant(ctx, f.grant.ID)
	wantErr(t, err, store.ErrNotFound, "swept expired grant")
}

// testSweepThenRevoke: after a sweep removed a live family's expired
// access tokens, revoking still reaches everything that is left, by
// token and by client.
func testSweepThenRevoke(t *testing.T, s Retainer) {
	ctx := context.Background()
	a, b := redeemed(t, s), redeemed(t, s)
	now := t0.Add(5 * time.Hour)
	rotate(t, s, &a, now)
	rotate(t, s, &b, now)
	wantDeleted(t, sweep(t, s, now), map[string]int64{store.TableAccessTokens: 2})
	must(t, s.RevokeToken(ctx, a.refresh.Hash, now))
	_, err := s.AccessToken(ctx, a.access.Hash, now)
	wantErr(t, err, store.ErrRevoked, "access token of a family revoked after a sweep")
	n, err := s.RevokeClientGrants(ctx, "b1", "c1", now)
	must(t, err)
	if n != 1 {
		t.Fatalf("RevokeClientGrants after a sweep: %d live grants, want 1", n)
	}
	_, err = s.AccessToken(ctx, b.access.Hash, now)
	wantErr(t, err, store.ErrRevoked, "access token after revoking the client")
}

// testSweepBatches: MaxBatches bounds one sweep, which says More; the
// next sweep goes on where it stopped.
func testSweepBatches(t *testing.T, s Retainer) {
	ctx := context.Background()
	for range 10 {
		must(t, s.SaveAccessToken(ctx, appToken(t, t0)))
	}
	r := store.Retention{TokenGrace: time.Minute, BatchSize: 3, MaxBatches: 2}
	st, err := s.SweepExpired(ctx, t0.Add(time.Hour), r)
	must(t, err)
	if st.Deleted[store.TableAccessTokens] != 6 || !st.More {
		t.Fatalf("first sweep: %+v", st)
	}
	st, err = s.SweepExpired(ctx, t0.Add(time.Hour), r)
	must(t, err)
	if st.Deleted[store.TableAccessTokens] != 4 || st.More {
		t.Fatalf("second sweep: %+v", st)
	}
}

// testSweepCancelled: a cancelled sweep stops with ctx's error and
// deletes nothing more.
func testSweepCancelled(t *testing.T, s Retainer) {
	ctx, cancel := context.WithCancel(context.Background())
	must(t, s.SaveAccessToken(ctx, appToken(t, t0)))
	cancel()
	st, err := s.SweepExpired(ctx, t0.Add(time.Hour), ret)
	if !errors.Is(err, context.Canceled) || st.Total() != 0 {
		t.Fatalf("cancelled sweep: %+v, %v", st, err)
	}
	if _, err := s.AccessToken(context.Background(), appToken(t, t0).Hash, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}

// testSweepKeepsOrders: orders, completed checkouts and consumed spend
// holds (what orders and allowances are audited with) outlive the
// sweep of the family that paid for them.
func testSweepKeepsOrders(t *testing.T, s Retainer) {
	ctx := context.Background()
	f := redeemed(t, s)
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: f.grant.Scope, Allowance: f.grant.Allowance, UpdatedAt: t0}))
	day, next := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
	h := hold("b1", "c1", 700, t0, 10*time.Minute)
	must(t, s.HoldSpend(ctx, h, day, next, t0, capCheck(1000, 700, nil)))
	o := newOrder("shop", "o1", "chk1")
	o.HoldID = h.ID
	must(t, s.CompleteSession(ctx, completed(created(t, s, "shop", "chk1")), o, nil))
	must(t, s.RevokeGrant(ctx, f.grant.ID, t0.Add(time.Minute)))
	st := sweep(t, s, t0.Add(3*time.Hour))
	wantDeleted(t, st, map[string]int64{store.TableGrants: 1, store.TableRefreshTokens: 1, store.TableAccessTokens: 1, store.TableCodes: 1})
	if _, err := s.Order(ctx, "shop", "o1"); err != nil {
		t.Fatalf("order after the sweep: %v", err)
	}
	if os, err := s.BuyerOrders(ctx, "b1", nil, 10); err != nil || len(os) != 1 {
		t.Fatalf("buyer orders after the sweep: %d, %v", len(os), err)
	}
	if got := session(t, s, "shop", "chk1"); got.Status != "completed" {
		t.Fatalf("completed checkout after the sweep: %+v", got)
	}
	if spent, err := s.Spent(ctx, "b1", "c1", day, next, t0.Add(3*time.Hour)); err != nil || spent != 700 {
		t.Fatalf("spent after the sweep: %d, %v", spent, err)
	}
	if _, err := s.Consent(ctx, "b1", "c1"); err != nil {
		t.Fatalf("consent after the sweep: %v", err)
	}
}

func testSweepBadRetention(t *testing.T, s Retainer) {
	must(t, s.SaveAccessToken(context.Background(), appToken(t, t0)))
	for _, r := range []store.Retention{{TokenGrace: -time.Second}, {CodeRetention: -1}, {RevokedRetention: -1}, {BatchSize: -1}, {MaxBatches: -1}} {
		st, err := s.SweepExpired(context.Background(), t0.Add(time.Hour), r)
		if err == nil || st.Total() != 0 {
			t.Fatalf("%+v: %+v, %v", r, st, err)
		}
	}
}

// testSweepUnusedClients: a self-registered client nobody consented to
// and that holds no grant goes UnusedClientRetention after it registered,
// with its unfinished sign-ins' codes; one a buyer consented to, one with
// a grant, a younger one and an operator's client stay.
func testSweepUnusedClients(t *testing.T, s Retainer) {
	ctx := context.Background()
	reg := func(id string, at time.Time, registered bool) {
		c := &store.Client{ID: id, Type: store.ClientInstalled, Name: id, RedirectURIs: []string{"http://127.0.0.1/cb"},
			GrantTypes: []string{"authorization_code"}, Scopes: []string{"purchase:complete"}, CreatedAt: at}
		if registered {
			c.RegistrationHash = hash(t)
		}
		must(t, s.CreateClient(ctx, c))
	}
	reg("dcr-unused", t0, true)
	reg("dcr-consented", t0, true)
	reg("dcr-granted", t0, true)
	reg("dcr-young", t0.Add(24*time.Hour), true)
	reg("operator", t0, false)
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "dcr-consented", Scope: "purchase:complete", UpdatedAt: t0}))
	f := newFamily(t)
	f.grant.ClientID, f.access.ClientID = "dcr-granted", "dcr-granted"
	must(t, s.IssueGrant(ctx, f.issue()))
	unfinished := hash(t) // a sign-in of the unused client that never finished
	must(t, s.SaveCode(ctx, &store.Code{Hash: unfinished, ClientID: "dcr-unused", BuyerID: "b1", ExpiresAt: t0.Add(time.Minute)}))

	// Just inside the retention: nothing of the clients goes (the code
	// and the family's first access token do).
	st := sweep(t, s, t0.Add(48*time.Hour-time.Millisecond))
	wantDeleted(t, st, map[string]int64{store.TableCodes: 1, store.TableAccessTokens: 1})
	must(t, s.SaveCode(ctx, &store.Code{Hash: unfinished, ClientID: "dcr-unused", BuyerID: "b1", ExpiresAt: t0.Add(48 * time.Hour)}))
	st = sweep(t, s, t0.Add(48*time.Hour))
	wantDeleted(t, st, map[string]int64{store.TableClients: 1, store.TableCodes: 1})
	_, err := s.Client(ctx, "dcr-unused")
	wantErr(t, err, store.ErrNotFound, "unused self-registered client")
	_, err = s.Code(ctx, unfinished)
	wantErr(t, err, store.ErrNotFound, "its unfinished sign-in's code")
	for _, id := range []string{"dcr-consented", "dcr-granted", "dcr-young", "operator"} {
		if _, err := s.Client(ctx, id); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}
	// The young one goes in its turn. Once the granted client's family
	// has ended and gone, nothing holds that client either (a real
	// client with a grant also has the buyer's consent, which does);
	// the consented one and the operator's stay for good.
	wantDeleted(t, sweep(t, s, t0.Add(72*time.Hour)), map[string]int64{store.TableClients: 1})
	wantDeleted(t, sweep(t, s, t0.Add(400*24*time.Hour)), map[string]int64{
		store.TableGrants: 1, store.TableRefreshTokens: 1, store.TableClients: 1})
	for _, id := range []string{"dcr-consented", "operator"} {
		if _, err := s.Client(ctx, id); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}
}
