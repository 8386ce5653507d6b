package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Platform is a store that keeps both the authorization server's records
// and the stores' (the spend allowance lives in one, its holds in the
// other).
type Platform interface {
	store.Store
	store.Commerce
}

// RunPlatform runs the tests of what spans both halves: client roles and
// platform ownership, buyer accounts and consents, spend holds and buyer
// order history. open returns a new, empty store for each subtest.
func RunPlatform(t *testing.T, open func(t *testing.T) Platform) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Platform)
	}{
		{"ClientRoles", testClientRoles},
		{"TokenStoreAndPlatform", testTokenStoreAndPlatform},
		{"BuyerAccount", testBuyerAccount},
		{"ConsentAdmin", testConsentAdmin},
		{"SpendHolds", testSpendHolds},
		{"SpendHoldConsumedByOrder", testSpendHoldConsumedByOrder},
		{"RecheckHold", testRecheckHold},
		{"ConcurrentSpendHolds", testConcurrentSpendHolds},
		{"BuyerOrders", testBuyerOrders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

func testClientRoles(t *testing.T, s Platform) {
	ctx := context.Background()
	cimd := "https://agent.example/oauth-client.json"
	must(t, s.CreateClient(ctx, &store.Client{ID: "plat", Type: store.ClientWeb, Name: "P", Role: store.RolePlatform,
		Platform: "plat", CIMD: []string{cimd}, Profile: "https://plat.example/.well-known/ucp", CreatedAt: t0}))
	must(t, s.CreateClient(ctx, &store.Client{ID: "agent", Type: store.ClientInstalled, Name: "A", Platform: "plat", CreatedAt: t0}))
	must(t, s.CreateClient(ctx, &store.Client{ID: "shopbot", Type: store.ClientWeb, Name: "M", Role: store.RoleMerchant, Store: "kyoto-tea", CreatedAt: t0}))
	p, err := s.Client(ctx, "plat")
	must(t, err)
	if p.Role != store.RolePlatform || p.Platform != "plat" || p.Profile != "https://plat.example/.well-known/ucp" || len(p.CIMD) != 1 || p.CIMD[0] != cimd {
		t.Fatalf("platform round trip: %+v", p)
	}
	m, err := s.Client(ctx, "shopbot")
	must(t, err)
	if m.Role != store.RoleMerchant || m.Store != "kyoto-tea" || m.Platform != "" {
		t.Fatalf("merchant round trip: %+v", m)
	}
	for id, want := range map[string]string{"plat": "plat", "agent": "plat", cimd: "plat", "shopbot": "", "unknown": ""} {
		got, err := s.ClientPlatform(ctx, id)
		must(t, err)
		if got != want {
			t.Errorf("ClientPlatform(%q) = %q, want %q", id, got, want)
		}
	}
	// A CIMD URL belongs to one platform; the failed registration leaves
	// nothing behind.
	err = s.CreateClient(ctx, &store.Client{ID: "plat2", Type: store.ClientWeb, Name: "P2", Role: store.RolePlatform, Platform: "plat2",
		CIMD: []string{cimd}, CreatedAt: t0})
	wantErr(t, err, store.ErrConflict, "CIMD URL of another platform")
	_, err = s.Client(ctx, "plat2")
	wantErr(t, err, store.ErrNotFound, "half-registered platform")
	if got, _ := s.ClientPlatform(ctx, "plat2"); got != "" {
		t.Fatalf("half-registered platform owns itself: %q", got)
	}
	// UpdateClient: a new registration, its CIMD URLs moved with it; the
	// apps it owns keep their owner.
	p.CIMD, p.Profile = []string{"https://agent.example/v2.json"}, "https://plat.example/v2"
	must(t, s.UpdateClient(ctx, p))
	if got, _ := s.Client(ctx, "plat"); got.Profile != "https://plat.example/v2" || len(got.CIMD) != 1 || got.CIMD[0] != "https://agent.example/v2.json" {
		t.Fatalf("after update: %+v", got)
	}
	for id, want := range map[string]string{cimd: "", "https://agent.example/v2.json": "plat", "agent": "plat", "plat": "plat"} {
		if got, _ := s.ClientPlatform(ctx, id); got != want {
			t.Errorf("after update: ClientPlatform(%q) = %q, want %q", id, got, want)
		}
	}
	// A role-less client gets its role.
	m.Role, m.Store = store.RoleMerchant, "flower-shop"
	must(t, s.UpdateClient(ctx, m))
	if got, _ := s.Client(ctx, "shopbot"); got.Store != "flower-shop" {
		t.Fatalf("merchant after update: %+v", got)
	}
	must(t, s.CreateClient(ctx, &store.Client{ID: "plat3", Type: store.ClientWeb, Name: "P3", Role: store.RolePlatform, Platform: "plat3", CreatedAt: t0}))
	wantErr(t, s.UpdateClient(ctx, &store.Client{ID: "plat3", Type: store.ClientWeb, Name: "P3", Role: store.RolePlatform, Platform: "plat3",
		CIMD: []string{"https://agent.example/v2.json"}}), store.ErrConflict, "another platform's CIMD URL")
	if got, _ := s.ClientPlatform(ctx, "plat3"); got != "plat3" {
		t.Fatalf("a refused update changed the ownership rows: %q", got)
	}
	wantErr(t, s.UpdateClient(ctx, &store.Client{ID: "nobody", Type: store.ClientWeb, Name: "N"}), store.ErrNotFound, "unknown client")
}

func testTokenStoreAndPlatform(t *testing.T, s Platform) {
	ctx := context.Background()
	must(t, s.CreateClient(ctx, &store.Client{ID: "agent", Type: store.ClientInstalled, Name: "A", Platform: "plat", CreatedAt: t0}))
	a := &store.AccessToken{Hash: hash(t), ClientID: "agent", BuyerID: "b1", Scope: "purchase:complete", ExpiresAt: t0.Add(time.Hour)}
	m := &store.AccessToken{Hash: hash(t), ClientID: "shopbot", Scope: "orders:read", Store: "kyoto-tea", ExpiresAt: t0.Add(time.Hour)}
	must(t, s.SaveAccessToken(ctx, a))
	must(t, s.SaveAccessToken(ctx, m))
	got, err := s.AccessToken(ctx, a.Hash, t0)
	must(t, err)
	if got.Platform != "plat" || got.Store != "" {
		t.Fatalf("agent token: %+v", got)
	}
	got, err = s.AccessToken(ctx, m.Hash, t0)
	must(t, err)
	if got.Store != "kyoto-tea" || got.Platform != "" {
		t.Fatalf("merchant token: %+v", got)
	}
}

func testBuyerAccount(t *testing.T, s Platform) {
	ctx := context.Background()
	doc := json.RawMessage(`{"name":"Ada"}`)
	must(t, s.CreateBuyer(ctx, &store.Buyer{ID: "b1", Email: "ada@example.com", PasswordHash: "x", Account: doc, CreatedAt: t0}))
	b, err := s.Buyer(ctx, "b1")
	must(t, err)
	if string(b.Account) != string(doc) {
		t.Fatalf("account %s", b.Account)
	}
	must(t, s.SetBuyerAccount(ctx, "b1", json.RawMessage(`{"name":"Ada L."}`)))
	b, err = s.BuyerByEmail(ctx, "ada@example.com")
	must(t, err)
	if string(b.Account) != `{"name":"Ada L."}` {
		t.Fatalf("account after set %s", b.Account)
	}
	wantErr(t, s.SetBuyerAccount(ctx, "nobody", doc), store.ErrNotFound, "account of an unknown buyer")
}

func testConsentAdmin(t *testing.T, s Platform) {
	ctx := context.Background()
	for _, c := range []string{"c2", "c1"} {
		must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: c, Scope: "purchase:complete", Allowance: []byte(`{"n":1}`), UpdatedAt: t0}))
	}
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b2", ClientID: "c1", Scope: "orders:read", UpdatedAt: t0}))
	list, err := s.BuyerConsents(ctx, "b1")
	must(t, err)
	if len(list) != 2 || list[0].ClientID != "c1" || list[1].ClientID != "c2" {
		t.Fatalf("BuyerConsents: %+v", list)
	}
	must(t, s.UpdateConsent(ctx, "b1", "c1", func(c *store.Consent) error {
		c.Allowance, c.UpdatedAt = []byte(`{"n":0}`), t0.Add(time.Minute)
		return nil
	}))
	c, err := s.Consent(ctx, "b1", "c1")
	must(t, err)
	if string(c.Allowance) != `{"n":0}` || !c.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after update: %+v", c)
	}
	refuse := errors.New("no")
	if err := s.UpdateConsent(ctx, "b1", "c1", func(c *store.Consent) error { c.Allowance = nil; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("fn error: %v", err)
	}
	if c, _ := s.Consent(ctx, "b1", "c1"); string(c.Allowance) != `{"n":0}` {
		t.Fatal("an aborted update changed the consent")
	}
	wantErr(t, s.UpdateConsent(ctx, "b9", "c1", func(*store.Consent) error { return nil }), store.ErrNotFound, "update of no consent")

	// Revoking a client's grants ends both of its families for the buyer
	// and nobody else's.
	var fams []family
	for _, pair := range [][2]string{{"b1", "c1"}, {"b1", "c1"}, {"b1", "c2"}, {"b2", "c1"}} {
		f := pairFamily(t, pair[1], pair[0])
		must(t, s.IssueGrant(ctx, f.issue()))
		fams = append(fams, f)
	}
	n, err := s.RevokeClientGrants(ctx, "b1", "c1", t0.Add(time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("revoked %d grants, want 2", n)
	}
	for i, f := range fams {
		_, err := s.AccessToken(ctx, f.access.Hash, t0.Add(2*time.Minute))
		if revoked := errors.Is(err, store.ErrRevoked); revoked != (i < 2) {
			t.Errorf("family %d: access token err %v", i, err)
		}
	}
}

// pairFamily is newFamily for another client and buyer.
func pairFamily(t *testing.T, clientID, buyerID string) family {
	f := newFamily(t)
	f.grant.ClientID, f.grant.BuyerID = clientID, buyerID
	f.access.ClientID, f.access.BuyerID = clientID, buyerID
	return f
}

// capCheck is a SpendCheck with a fixed daily cap, recording what the
// store passed it.
func capCheck(dailyCap, amount int64, seen *json.RawMessage) store.SpendCheck {
	return func(allowance json.RawMessage, spent int64) error {
		if seen != nil {
			*seen = allowance
		}
		if spent+amount > dailyCap {
			return fmt.Errorf("over the cap: spent %d", spent)
		}
		return nil
	}
}

func hold(buyer, client string, amount int64, at time.Time, life time.Duration) *store.SpendHold {
	return &store.SpendHold{ID: id("h"), BuyerID: buyer, ClientID: client, Ref: id("shop/chk"), Amount: amount, Currency: "EUR",
		CreatedAt: at, ExpiresAt: at.Add(life)}
}

func testSpendHolds(t *testing.T, s Platform) {
	ctx := context.Background()
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete", Allowance: []byte(`{"daily_cap":1000}`), UpdatedAt: t0}))
	day, next := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
	var seen json.RawMessage
	h1 := hold("b1", "c1", 600, t0, time.Minute)
	must(t, s.HoldSpend(ctx, h1, day, next, t0, capCheck(1000, 600, &seen)))
	if string(seen) != `{"daily_cap":1000}` {
		t.Fatalf("check saw allowance %s", seen)
	}
	// A held hold counts: 600 + 500 > 1000.
	if err := s.HoldSpend(ctx, hold("b1", "c1", 500, t0, time.Minute), day, next, t0, capCheck(1000, 500, nil)); err == nil {
		t.Fatal("a hold over the cap was taken")
	}
	if got, _ := s.Spent(ctx, "b1", "c1", day, next, t0); got != 600 {
		t.Fatalf("spent %d, want 600 (a refused hold must not be stored)", got)
	}
	// Released, it no longer counts; a lapsed hold (past ExpiresAt)
	// neither.
	must(t, s.ReleaseHold(ctx, h1.ID))
	must(t, s.ReleaseHold(ctx, "no-such-hold"))
	h2 := hold("b1", "c1", 900, t0, time.Minute)
	must(t, s.HoldSpend(ctx, h2, day, next, t0, capCheck(1000, 900, nil)))
	if got, _ := s.Spent(ctx, "b1", "c1", day, next, t0.Add(2*time.Minute)); got != 0 {
		t.Fatalf("a lapsed hold still counts: %d", got)
	}
	// Other pairs and other days do not count; a pair without consent
	// gets a nil allowance.
	seen = json.RawMessage("x")
	must(t, s.HoldSpend(ctx, hold("b1", "c2", 900, t0, time.Minute), day, next, t0, capCheck(1000, 900, &seen)))
	if seen != nil {
		t.Fatalf("no consent: check saw %s", seen)
	}
	if got, _ := s.Spent(ctx, "b1", "c1", next, next.Add(24*time.Hour), t0); got != 0 {
		t.Fatalf("next day spent %d", got)
	}
	n, err := s.SweepHolds(ctx, t0.Add(time.Second))
	must(t, err)
	if n != 3 {
		t.Fatalf("swept %d holds, want 3", n)
	}
	wantErr(t, s.HoldSpend(ctx, &store.SpendHold{ID: "dup", BuyerID: "b1", ClientID: "c1", Amount: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)},
		day, next, t0, capCheck(1000, 1, nil)), nil, "first hold")
	wantErr(t, s.HoldSpend(ctx, &store.SpendHold{ID: "dup", BuyerID: "b1", ClientID: "c1", Amount: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)},
		day, next, t0, capCheck(1000, 1, nil)), store.ErrConflict, "hold id reused")
}

func testSpendHoldConsumedByOrder(t *testing.T, s Platform) {
	ctx := context.Background()
	day, next := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
	h := hold("b1", "c1", 700, t0, 10*time.Minute)
	must(t, s.HoldSpend(ctx, h, day, next, t0, capCheck(1000, 700, nil)))
	sess := created(t, s, "shop", "chk1")
	o := newOrder("shop", "o1", "chk1")
	o.HoldID = h.ID
	must(t, s.CompleteSession(ctx, completed(sess), o, nil))
	// Consumed, it counts even after its ExpiresAt, and release cannot
	// give it back.
	must(t, s.ReleaseHold(ctx, h.ID))
	if got, _ := s.Spent(ctx, "b1", "c1", day, next, t0.Add(time.Hour)); got != 700 {
		t.Fatalf("consumed hold counts %d, want 700", got)
	}
	// A hold consumed once cannot place a second order; a lapsed one
	// cannot place any. The order is rolled back.
	sess2 := created(t, s, "shop", "chk2")
	o2 := newOrder("shop", "o2", "chk2")
	o2.HoldID = h.ID
	wantErr(t, s.CompleteSession(ctx, completed(sess2), o2, nil), store.ErrHoldLapsed, "reused hold")
	noOrder(t, s, "shop", "o2")
	late := hold("b1", "c1", 100, t0, time.Second)
	must(t, s.HoldSpend(ctx, late, day, next, t0, capCheck(1000, 100, nil)))
	o3 := newOrder("shop", "o3", "chk2") // CreatedAt is t0+1m, after the hold lapsed
	o3.HoldID = late.ID
	wantErr(t, s.CompleteSession(ctx, completed(session(t, s, "shop", "chk2")), o3, nil), store.ErrHoldLapsed, "lapsed hold")
	noOrder(t, s, "shop", "o3")
	if got := session(t, s, "shop", "chk2"); got.Status == "completed" {
		t.Fatal("the session was completed without its order")
	}
}

// testConcurrentSpendHolds: 50 concurrent holds of 30 against a cap of
// 1000 leave exactly 33 taken (990), none over.
func testConcurrentSpendHolds(t *testing.T, s Platform) {
	ctx := context.Background()
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete", Allowance: []byte(`{}`), UpdatedAt: t0}))
	day, next := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			err := s.HoldSpend(ctx, hold("b1", "c1", 30, t0, time.Hour), day, next, t0, capCheck(1000, 30, nil))
			if err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	spent, err := s.Spent(ctx, "b1", "c1", day, next, t0)
	must(t, err)
	if ok.Load() != 33 || spent != 990 {
		t.Fatalf("%d holds taken, %d spent; want 33 and 990", ok.Load(), spent)
	}
}

func testBuyerOrders(t *testing.T, s Platform) {
	ctx := context.Background()
	var want []string
	for i := range 7 {
		shop := []string{"a-shop", "b-shop"}[i%2]
		chk := fmt.Sprintf("chk%d", i)
		sess := created(t, s, shop, chk)
		o := newOrder(shop, fmt.Sprintf("o%d", i), chk)
		o.CreatedAt = t0.Add(time.Duration(i/2) * time.Minute) // pairs share a time: ties by store, id
		must(t, s.CompleteSession(ctx, completed(sess), o, nil))
		want = append(want, shop+"/"+o.ID)
	}
	other := newOrder("a-shop", "ox", "chkx")
	other.BuyerID = "b2"
	must(t, s.CompleteSession(ctx, completed(created(t, s, "a-shop", "chkx")), other, nil))
	// Newest first: i=6 (t+3m), then 5 (b-shop) and 4 (a-shop) at t+2m…
	wantOrder := []string{"a-shop/o6", "b-shop/o5", "a-shop/o4", "b-shop/o3", "a-shop/o2", "b-shop/o1", "a-shop/o0"}
	var got []string
	var cur *store.OrderCursor
	for page := 0; ; page++ {
		os, err := s.BuyerOrders(ctx, "b1", cur, 3)
		must(t, err)
		for _, o := range os {
			got = append(got, o.ShopSlug+"/"+o.ID)
		}
		if len(os) < 3 {
			break
		}
		last := os[len(os)-1]
		cur = &store.OrderCursor{CreatedAt: last.CreatedAt, ShopSlug: last.ShopSlug, ID: last.ID}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantOrder) {
		t.Fatalf("orders %v, want %v (all %v)", got, wantOrder, want)
	}
}

// testRecheckHold: a hold checked again sees the window without itself,
// the allowance as it is now, and refuses a hold no longer held.
func testRecheckHold(t *testing.T, s Platform) {
	ctx := context.Background()
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete", Allowance: []byte(`{"v":1}`), UpdatedAt: t0}))
	day, next := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
	other := hold("b1", "c1", 300, t0, time.Hour)
	must(t, s.HoldSpend(ctx, other, day, next, t0, capCheck(1000, 300, nil)))
	h := hold("b1", "c1", 600, t0, time.Hour)
	must(t, s.HoldSpend(ctx, h, day, next, t0, capCheck(1000, 600, nil)))
	var seen json.RawMessage
	var sawSpent int64 = -1
	must(t, s.RecheckHold(ctx, h, day, next, t0.Add(time.Minute), func(a json.RawMessage, spent int64) error {
		seen, sawSpent = a, spent
		return nil
	}))
	if sawSpent != 300 || string(seen) != `{"v":1}` {
		t.Fatalf("recheck saw spent %d (want 300: the other hold, not itself), allowance %s", sawSpent, seen)
	}
	// The allowance lowered since: the same hold is refused now.
	must(t, s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete", Allowance: []byte(`{"v":2}`), UpdatedAt: t0}))
	if err := s.RecheckHold(ctx, h, day, next, t0.Add(time.Minute), capCheck(800, 600, &seen)); err == nil || string(seen) != `{"v":2}` {
		t.Fatalf("recheck against a lowered cap: %v (saw %s)", err, seen)
	}
	// Released or lapsed, it is not a hold any more.
	wantErr(t, s.RecheckHold(ctx, h, day, next, t0.Add(2*time.Hour), capCheck(1000, 600, nil)), store.ErrHoldLapsed, "lapsed hold")
	must(t, s.ReleaseHold(ctx, h.ID))
	wantErr(t, s.RecheckHold(ctx, h, day, next, t0.Add(time.Minute), capCheck(1000, 600, nil)), store.ErrHoldLapsed, "released hold")
	// Another buyer's hold id is not this buyer's.
	stolen := *other
	stolen.BuyerID = "b2"
	wantErr(t, s.RecheckHold(ctx, &stolen, day, next, t0.Add(time.Minute), capCheck(1000, 300, nil)), store.ErrHoldLapsed, "another buyer's hold")
}
