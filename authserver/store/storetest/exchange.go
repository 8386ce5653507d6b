package storetest

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// The suite's tests for token exchange (RFC 8693), self-registered
// clients (RFC 7591/7592) and platform-owned resources; Run lists them.

func testResources(t *testing.T, s store.Store) {
	ctx := context.Background()
	const r1, r2 = "http://127.0.0.1:9000/mcp", "https://bridge.example/mcp"
	_, err := s.ResourceOwner(ctx, r1)
	wantErr(t, err, store.ErrNotFound, "unregistered resource")
	must(t, s.AddResource(ctx, "plat-a", r1, t0))
	must(t, s.AddResource(ctx, "plat-a", r1, t0)) // its owner again: no error
	must(t, s.AddResource(ctx, "plat-a", r2, t0))
	wantErr(t, s.AddResource(ctx, "plat-b", r1, t0), store.ErrConflict, "another platform's resource")
	owner, err := s.ResourceOwner(ctx, r1)
	must(t, err)
	if owner != "plat-a" {
		t.Fatalf("owner %q", owner)
	}
	// Exact strings: a trailing slash is another resource.
	_, err = s.ResourceOwner(ctx, r1+"/")
	wantErr(t, err, store.ErrNotFound, "resource with a trailing slash")
	list, err := s.PlatformResources(ctx, "plat-a")
	must(t, err)
	if !slices.Equal(list, []string{r1, r2}) {
		t.Fatalf("resources %q", list)
	}
	if list, err := s.PlatformResources(ctx, "plat-b"); err != nil || len(list) != 0 {
		t.Fatalf("plat-b: %q %v", list, err)
	}
}

// exchanged is an access token exchanged for f's access token.
func exchanged(t *testing.T, f family, platform string, expires time.Time) *store.AccessToken {
	return &store.AccessToken{Hash: hash(t), GrantID: f.grant.ID, ClientID: f.access.ClientID, BuyerID: f.access.BuyerID,
		Scope: "purchase:complete", Resource: "https://api.example", Subject: f.access.Hash, ActingPlatform: platform, ExpiresAt: expires}
}

func testExchangedTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateClient(ctx, &store.Client{ID: "c1", Type: store.ClientInstalled, Name: "agent", Platform: "plat-home", CreatedAt: t0}))
	must(t, s.CreateClient(ctx, &store.Client{ID: "plat-home", Type: store.ClientWeb, Name: "home", Role: store.RolePlatform,
		Platform: "plat-home", CreatedAt: t0}))
	f := redeemed(t, s)
	x := exchanged(t, f, "plat-b", t0.Add(30*time.Minute))
	must(t, s.SaveAccessToken(ctx, x))
	got, err := s.AccessToken(ctx, x.Hash, t0)
	must(t, err)
	if !got.Exchanged() || !bytes.Equal(got.Subject, f.access.Hash) || got.ActingPlatform != "plat-b" || got.Platform != "plat-b" ||
		got.GrantID != f.grant.ID || got.ClientID != "c1" || got.BuyerID != "b1" {
		t.Fatalf("exchanged token: %+v", got)
	}
	// The subject keeps its owner's platform.
	sub, err := s.AccessToken(ctx, f.access.Hash, t0)
	must(t, err)
	if sub.Exchanged() || sub.Platform != "plat-home" || sub.ActingPlatform != "" {
		t.Fatalf("subject: %+v", sub)
	}
	// Revoking the subject alone kills the exchanged token.
	must(t, s.RevokeToken(ctx, f.access.Hash, t0))
	_, err = s.AccessToken(ctx, x.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "exchanged token of a revoked subject")

	// Revoking the grant kills both.
	f2 := redeemed(t, s)
	x2 := exchanged(t, f2, "plat-b", t0.Add(30*time.Minute))
	must(t, s.SaveAccessToken(ctx, x2))
	must(t, s.RevokeGrant(ctx, f2.grant.ID, t0))
	_, err = s.AccessToken(ctx, x2.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "exchanged token of a revoked grant")

	// A subject that is gone (swept) takes its exchanged token along.
	orphan := &store.AccessToken{Hash: hash(t), GrantID: "g_gone", ClientID: "c1", BuyerID: "b1", Scope: "orders:read",
		Subject: hash(t), ActingPlatform: "plat-b", ExpiresAt: t0.Add(time.Hour)}
	must(t, s.SaveAccessToken(ctx, orphan))
	_, err = s.AccessToken(ctx, orphan.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "exchanged token without its subject")

	// The buyer revoking the agent (RevokeClientGrants) kills both.
	f3 := redeemed(t, s)
	x3 := exchanged(t, f3, "plat-b", t0.Add(30*time.Minute))
	must(t, s.SaveAccessToken(ctx, x3))
	if _, err := s.RevokeClientGrants(ctx, "b1", "c1", t0); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{f3.access.Hash, x3.Hash} {
		_, err = s.AccessToken(ctx, h, t0)
		wantErr(t, err, store.ErrRevoked, "token after the buyer revoked the agent")
	}
}

func testSelfRegisteredClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	reg := []byte("0123456789abcdef0123456789abcdef")
	c := &store.Client{ID: "dcr_1", Type: store.ClientInstalled, Name: "mcp-remote", RedirectURIs: []string{"http://localhost:3334/oauth/callback"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, RegistrationHash: reg, CreatedAt: t0}
	must(t, s.CreateClient(ctx, c))
	got, err := s.Client(ctx, "dcr_1")
	must(t, err)
	if !got.SelfRegistered() || !bytes.Equal(got.RegistrationHash, reg) {
		t.Fatalf("client: %+v", got)
	}
	must(t, s.CreateClient(ctx, &store.Client{ID: "op", Type: store.ClientInstalled, Name: "op", CreatedAt: t0}))
	if op, err := s.Client(ctx, "op"); err != nil || op.SelfRegistered() {
		t.Fatalf("operator's client: %+v %v", op, err)
	}

	// A grant, a live code, a consent and an exchanged token of dcr_1.
	g := &store.Grant{ID: id("g"), ClientID: "dcr_1", BuyerID: "b1", Scope: "purchase:complete offline_access", CreatedAt: t0,
		ExpiresAt: t0.Add(24 * time.Hour)}
	f := family{grant: g,
		refresh: &store.RefreshToken{Hash: hash(t), GrantID: g.ID, ExpiresAt: g.ExpiresAt},
		access:  &store.AccessToken{Hash: hash(t), GrantID: g.ID, ClientID: "dcr_1", BuyerID: "b1", Scope: g.Scope, ExpiresAt: t0.Add(time.Hour)}}
	must(t, s.IssueGrant(ctx, f.issue()))
	x := exchanged(t, f, "plat-b", t0.Add(time.Hour))
	must(t, s.SaveAccessToken(ctx, x))
	code := hash(t)
	must(t, s.SaveCode(ctx, &store.Code{Hash: code, ClientID: "dcr_1", BuyerID: "b1", RedirectURI: "http://localhost:1/oauth/callback",
		Scope: "orders:read", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", ExpiresAt: t0.Add(time.Minute)}))
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "dcr_1", Scope: "orders:read", UpdatedAt: t0}))

	must(t, s.DeleteClient(ctx, "dcr_1", t0))
	_, err = s.Client(ctx, "dcr_1")
	wantErr(t, err, store.ErrNotFound, "deleted client")
	wantErr(t, s.DeleteClient(ctx, "dcr_1", t0), store.ErrNotFound, "deleting twice")
	for _, h := range [][]byte{f.access.Hash, x.Hash} {
		_, err := s.AccessToken(ctx, h, t0)
		wantErr(t, err, store.ErrRevoked, "access token of a deleted client")
	}
	_, _, err = s.RefreshToken(ctx, f.refresh.Hash, t0)
	wantErr(t, err, store.ErrRevoked, "refresh token of a deleted client")
	gg, err := s.Grant(ctx, g.ID)
	must(t, err)
	if gg.RevokedAt.IsZero() {
		t.Fatal("grant of a deleted client is live")
	}
	err = s.RedeemCode(ctx, code, newFamily(t).issue(), t0)
	wantErr(t, err, store.ErrCodeUsed, "code of a deleted client")
	_, err = s.Consent(ctx, "b1", "dcr_1")
	wantErr(t, err, store.ErrNotFound, "consent of a deleted client")
	if _, err := s.Client(ctx, "op"); err != nil {
		t.Fatalf("another client went too: %v", err)
	}
}

// testExchangeRacesRevocation: exchanges stored while the grant is being
// revoked never leave a live token behind, whichever commits first.
func testExchangeRacesRevocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	f := redeemed(t, s)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		saved [][]byte
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := exchanged(t, f, "plat-b", t0.Add(30*time.Minute))
			if err := s.SaveAccessToken(ctx, x); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			saved = append(saved, x.Hash)
			mu.Unlock()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.RevokeGrant(ctx, f.grant.ID, t0); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	for _, h := range saved {
		_, err := s.AccessToken(ctx, h, t0)
		wantErr(t, err, store.ErrRevoked, "exchanged token saved during the grant's revocation")
	}
}
