// Package storetest is the conformance suite every store.Store
// implementation must pass: the same tests, including the concurrency
// guarantees, run against SQLite and PostgreSQL.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Run runs the suite. open returns a new, empty store for each subtest.
// It is the first thing each subtest does, so it may call t.Parallel when
// the backend can run subtests side by side.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Clients", testClients},
		{"Buyers", testBuyers},
		{"Consents", testConsents},
		{"CodeRedemption", testCodeRedemption},
		{"IssueGrant", testIssueGrant},
		{"CodeReplayRevokes", testCodeReplayRevokes},
		{"CodeExpired", testCodeExpired},
		{"AccessTokens", testAccessTokens},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshGraceExpires", testRefreshGraceExpires},
		{"RevokeRefreshKillsFamily", testRevokeRefreshKillsFamily},
		{"RefreshExpiry", testRefreshExpiry},
		{"ConcurrentRotation", testConcurrentRotation},
		{"ConcurrentRedemption", testConcurrentRedemption},
		{"Resources", testResources},
		{"ExchangedTokens", testExchangedTokens},
		{"SelfRegisteredClients", testSelfRegisteredClients},
		{"ExchangeRacesRevocation", testExchangeRacesRevocation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.UnixMilli(1_790_000_000_000)

func hash(t *testing.T) []byte {
	b := make([]byte, 32)
	rand.Read(b)
	h := sha256.Sum256(b)
	return h[:]
}

func id(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%s_%x", prefix, b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := &store.Client{ID: "agent-app", SecretHash: []byte{1, 2, 3}, Type: store.ClientWeb, Name: "Agent",
		RedirectURIs: []string{"https://a.example/cb", "http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"purchase:complete"}, Developers: []string{"b1"}, CreatedAt: t0}
	must(t, s.CreateClient(ctx, c))
	got, err := s.Client(ctx, "agent-app")
	must(t, err)
	if got.Name != "Agent" || got.Type != store.ClientWeb || !bytes.Equal(got.SecretHash, c.SecretHash) ||
		len(got.RedirectURIs) != 2 || got.RedirectURIs[1] != "http://127.0.0.1/cb" || got.Developers[0] != "b1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("round trip: %+v", got)
	}
	wantErr(t, s.CreateClient(ctx, c), store.ErrConflict, "duplicate client")
	_, err = s.Client(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "unknown client")
	pub := &store.Client{ID: "cli", Type: store.ClientInstalled, Name: "CLI", CreatedAt: t0}
	must(t, s.CreateClient(ctx, pub))
	got, err = s.Client(ctx, "cli")
	must(t, err)
	if got.SecretHash != nil || got.RedirectURIs == nil || len(got.RedirectURIs) != 0 {
		t.Fatalf("public client: %+v", got)
	}
}

func testBuyers(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateBuyer(ctx, &store.Buyer{ID: "b1", Email: "Ada@Example.com", PasswordHash: "$argon2id$x", CreatedAt: t0}))
	b, err := s.BuyerByEmail(ctx, "ada@example.COM")
	must(t, err)
	if b.ID != "b1" || b.PasswordHash != "$argon2id$x" {
		t.Fatalf("%+v", b)
	}
	if _, err := s.Buyer(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateBuyer(ctx, &store.Buyer{ID: "b2", Email: "ADA@example.com", CreatedAt: t0}), store.ErrConflict, "same email, other case")
	wantErr(t, s.CreateBuyer(ctx, &store.Buyer{ID: "b1", Email: "x@example.com", CreatedAt: t0}), store.ErrConflict, "same id")
	_, err = s.BuyerByEmail(ctx, "bob@example.com")
	wantErr(t, err, store.ErrNotFound, "unknown email")
}

func testConsents(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.Consent(ctx, "b1", "c1")
	wantErr(t, err, store.ErrNotFound, "no consent")
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "orders:read", UpdatedAt: t0}))
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete orders:read",
		Allowance: []byte(`{"max_per_order":5000,"currency":"EUR"}`), UpdatedAt: t0.Add(time.Hour)}))
	c, err := s.Consent(ctx, "b1", "c1")
	must(t, err)
	if c.Scope != "purchase:complete orders:read" || string(c.Allowance) != `{"max_per_order":5000,"currency":"EUR"}` || !c.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("upsert: %+v", c)
	}
}

// family builds the grant and tokens a code redemption issues.
type family struct {
	grant   *store.Grant
	refresh *store.RefreshToken
	access  *store.AccessToken
}

func newFamily(t *testing.T) family {
	g := &store.Grant{ID: id("g"), ClientID: "c1", BuyerID: "b1", Scope: "purchase:complete offline_access",
		Resource: "https://api.example/mcp", Allowance: []byte(`{"daily_cap":10000}`), CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	return family{
		grant:   g,
		refresh: &store.RefreshToken{Hash: hash(t), GrantID: g.ID, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
		access:  &store.AccessToken{Hash: hash(t), GrantID: g.ID, ClientID: "c1", BuyerID: "b1", Scope: g.Scope, Resource: g.Resource, ExpiresAt: t0.Add(time.Hour)},
	}
}

func (f family) issue() store.Issue {
	return store.Issue{Grant: f.grant, Refresh: f.refresh, Access: f.access}
}

func saveCode(t *testing.T, s store.Store) []byte {
	h := hash(t)
	must(t, s.SaveCode(context.Background(), &store.Code{Hash: h, ClientID: "c1", BuyerID: "b1", RedirectURI: "http://127.0.0.1/cb",
		Scope: "purchase:complete offline_access", Resource: "https://api.example/mcp", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Allowance: []byte(`{"daily_cap":10000}`), ExpiresAt: t0.Add(time.Minute)}))
	return h
}

// redeemed stores a code and redeems it, returning the issued family.
func redeemed(t *testing.T, s store.Store) family {
	h := saveCode(t, s)
	f := newFamily(t)
	must(t, s.RedeemCode(context.Background(), h, f.issue(), t0))
	return f
}

func testCodeRedemption(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := saveCode(t, s)
	c, err := s.Code(ctx, h)
	must(t, err)
	if c.CodeChallenge != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" || c.RedirectURI != "http://127.0.0.1/cb" || string(c.Allowance) != `{"daily_cap":10000}` {
		t.Fatalf("code: %+v", c)
	}
	f := newFamily(t)
	must(t, s.RedeemCode(ctx, h, f.issue(), t0.Add(10*time.Second)))
	g, err := s.Grant(ctx, f.grant.ID)
	must(t, err)
	if g.BuyerID != "b1" || !g.RevokedAt.IsZero() || string(g.Allowance) != `{"daily_cap":10000}` {
		t.Fatalf("grant: %+v", g)
	}
	if _, _, err := s.RefreshToken(ctx, f.refresh.Hash, t0); err != nil {
		t.Fatal(err)
	}
	a, err := s.AccessToken(ctx, f.access.Hash, t0)
	must(t, err)
	if a.GrantID != f.grant.ID || a.Scope != f.grant.Scope {
		t.Fatalf("access: %+v", a)
	}
	_, err = s.Code(ctx, hash(t))
	wantErr(t, err, store.ErrNotFound, "unknown code")
	wantErr(t, s.RedeemCode(ctx, hash(t), newFamily(t).issue(), t0), store.ErrNotFound, "redeem unknown code")
}

func testCodeReplayRevokes(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := saveCode(t, s)
	f := newFamily(t)
	must(t, s.RedeemCode(ctx, h, f.issue(), t0))
	wantErr(t, s.RedeemCode(ctx, h, newFamily(t).issue(), t0.Add(time.Second)), store.ErrCodeUsed, "second redemption")
	g, err := s.Grant(ctx, f.grant.ID)
	must(t, err)
	if g.RevokedAt.IsZero() {
		t.Fatal("replay did not revoke the first redemption's grant")
	}
	_, err = s.AccessToken(ctx, f.access.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "access token after code replay")
	_, _, err = s.RefreshToken(ctx, f.refresh.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "refresh token after code replay")
}

func testCodeExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := saveCode(t, s)
	wantErr(t, s.RedeemCode(ctx, h, newFamily(t).issue(), t0.Add(time.Minute)), store.ErrExpired, "expired code")
}

func testAccessTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := &store.AccessToken{Hash: hash(t), ClientID: "merchant", Scope: "orders:read", ExpiresAt: t0.Add(time.Hour)}
	must(t, s.SaveAccessToken(ctx, a))
	got, err := s.AccessToken(ctx, a.Hash, t0)
	must(t, err)
	if got.GrantID != "" || got.ClientID != "merchant" || got.BuyerID != "" {
		t.Fatalf("%+v", got)
	}
	wantErr(t, s.SaveAccessToken(ctx, a), store.ErrConflict, "duplicate hash")
	_, err = s.AccessToken(ctx, a.Hash, t0.Add(time.Hour))
	wantErr(t, err, store.ErrExpired, "expired token")
	must(t, s.RevokeToken(ctx, a.Hash, t0))
	_, err = s.AccessToken(ctx, a.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "revoked token")
	must(t, s.RevokeToken(ctx, hash(t), t0)) // unknown: not an error (RFC 7009)
	_, err = s.AccessToken(ctx, hash(t), t0)
	wantErr(t, err, store.ErrNotFound, "unknown token")
}

// next builds the tokens a refresh of f issues.
func next(t *testing.T, f family, sealed string) store.Issue {
	return store.Issue{
		Refresh: &store.RefreshToken{Hash: hash(t), GrantID: f.grant.ID, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
		Access:  &store.AccessToken{Hash: hash(t), GrantID: f.grant.ID, ClientID: "c1", BuyerID: "b1", Scope: f.grant.Scope, ExpiresAt: t0.Add(2 * time.Hour)},
		Sealed:  []byte(sealed),
	}
}

func testRefreshRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	grace := 30 * time.Second
	n1 := next(t, f, "pair-1")
	r, err := s.Rotate(ctx, f.refresh.Hash, n1, t0.Add(time.Minute), grace)
	must(t, err)
	if r.Replayed || r.Grant.ID != f.grant.ID {
		t.Fatalf("first rotation: %+v", r)
	}
	if _, err := s.AccessToken(ctx, n1.Access.Hash, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A retry inside the grace window (the response was lost) gets the
	// same pair back and issues nothing.
	n2 := next(t, f, "pair-2")
	r, err = s.Rotate(ctx, f.refresh.Hash, n2, t0.Add(time.Minute+10*time.Second), grace)
	must(t, err)
	if !r.Replayed || string(r.Sealed) != "pair-1" {
		t.Fatalf("grace retry: %+v", r)
	}
	_, err = s.AccessToken(ctx, n2.Access.Hash, t0)
	wantErr(t, err, store.ErrNotFound, "grace retry must not issue")
	// The successor rotates normally...
	n3 := next(t, f, "pair-3")
	if _, err := s.Rotate(ctx, n1.Refresh.Hash, n3, t0.Add(time.Minute+15*time.Second), grace); err != nil {
		t.Fatal(err)
	}
	// ...after which the original is a reuse even inside its grace window:
	// the whole family dies.
	_, err = s.Rotate(ctx, f.refresh.Hash, next(t, f, "x"), t0.Add(time.Minute+20*time.Second), grace)
	wantErr(t, err, store.ErrTokenReused, "reuse of a rotated token whose successor was used")
	for _, h := range [][]byte{f.access.Hash, n1.Access.Hash, n3.Access.Hash} {
		_, err := s.AccessToken(ctx, h, t0)
		wantErr(t, err, store.ErrRevoked, "family access token after reuse")
	}
	_, _, err = s.RefreshToken(ctx, n3.Refresh.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "newest refresh token after reuse")
	g, _ := s.Grant(ctx, f.grant.ID)
	if g.RevokedAt.IsZero() {
		t.Fatal("grant not revoked")
	}
}

func testRefreshGraceExpires(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	grace := 30 * time.Second
	_, err := s.Rotate(ctx, f.refresh.Hash, next(t, f, "p1"), t0, grace)
	must(t, err)
	_, err = s.Rotate(ctx, f.refresh.Hash, next(t, f, "p2"), t0.Add(grace+time.Second), grace)
	wantErr(t, err, store.ErrTokenReused, "retry after the grace window")
	g, _ := s.Grant(ctx, f.grant.ID)
	if g.RevokedAt.IsZero() {
		t.Fatal("grant not revoked")
	}
}

func testRevokeRefreshKillsFamily(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	must(t, s.RevokeToken(ctx, f.refresh.Hash, t0))
	_, err := s.AccessToken(ctx, f.access.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "access token after refresh revocation")
	_, err = s.Rotate(ctx, f.refresh.Hash, next(t, f, "x"), t0, time.Minute)
	wantErr(t, err, store.ErrRevoked, "rotate revoked")
	// Revoking an access token leaves the family alone.
	f2 := redeemed(t, s)
	must(t, s.RevokeToken(ctx, f2.access.Hash, t0))
	if _, _, err := s.RefreshToken(ctx, f2.refresh.Hash, t0); err != nil {
		t.Fatalf("refresh token after access token revocation: %v", err)
	}
}

func testRefreshExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	_, err := s.Rotate(ctx, f.refresh.Hash, next(t, f, "x"), t0.Add(31*24*time.Hour), time.Minute)
	wantErr(t, err, store.ErrExpired, "expired refresh token")
	_, _, err = s.RefreshToken(ctx, hash(t), t0)
	wantErr(t, err, store.ErrNotFound, "unknown refresh token")
}

// testConcurrentRotation: 50 clients refresh one token at once. Exactly
// one rotation happens; everyone else gets the same pair back.
func testConcurrentRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		rotated  int
		replayed int
		errs     []error
		sealed   = map[string]int{}
		winner   store.Issue
	)
	warmUp(t, s, f.grant.ID, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nx := next(t, f, fmt.Sprintf("pair-%d", i))
			<-start
			r, err := s.Rotate(ctx, f.refresh.Hash, nx, t0.Add(time.Second), time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case r.Replayed:
				replayed++
				sealed[string(r.Sealed)]++
			default:
				rotated++
				winner = nx
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if rotated != 1 || replayed != n-1 {
		t.Fatalf("rotated %d, replayed %d", rotated, replayed)
	}
	if len(sealed) != 1 || sealed[string(winner.Sealed)] != n-1 {
		t.Fatalf("replays did not all get the winner's pair: %v (winner %s)", sealed, winner.Sealed)
	}
	if _, _, err := s.RefreshToken(ctx, winner.Refresh.Hash, t0); err != nil {
		t.Fatalf("winner's refresh token: %v", err)
	}
	if g, _ := s.Grant(ctx, f.grant.ID); !g.RevokedAt.IsZero() {
		t.Fatal("family revoked by a concurrent refresh")
	}
}

// testConcurrentRedemption: 20 redemptions of one code at once. One wins;
// the others are replays, which revoke what the winner got.
func testConcurrentRedemption(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := saveCode(t, s)
	const n = 20
	warmUp(t, s, "none", n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      int
		used    int
		other   []error
		granted string
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := newFamily(t)
			<-start
			err := s.RedeemCode(ctx, h, f.issue(), t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				granted = f.grant.ID
			case errors.Is(err, store.ErrCodeUsed):
				used++
			default:
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
	}
	if ok != 1 || used != n-1 {
		t.Fatalf("ok %d, used %d", ok, used)
	}
	g, err := s.Grant(ctx, granted)
	must(t, err)
	if g.RevokedAt.IsZero() {
		t.Fatal("replays did not revoke the winner's grant")
	}
}

// warmUp runs n overlapping reads so a pooled store has connections ready
// and the contenders that follow really overlap instead of queueing on
// connection set-up.
func warmUp(t *testing.T, s store.Store, grantID string, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				s.Grant(context.Background(), grantID)
			}
		}()
	}
	wg.Wait()
}

func testIssueGrant(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := newFamily(t)
	must(t, s.IssueGrant(ctx, f.issue()))
	if _, _, err := s.RefreshToken(ctx, f.refresh.Hash, t0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.IssueGrant(ctx, f.issue()), store.ErrConflict, "same grant id twice")
	// The failed second issue left nothing half-written.
	if _, err := s.AccessToken(ctx, f.access.Hash, t0); err != nil {
		t.Fatal(err)
	}
}
