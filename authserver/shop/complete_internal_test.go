package shop

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
)

// countingRail charges through the card rail and counts charges and voids.
type countingRail struct {
	cardRail
	charges, voids atomic.Int32
}

func (r *countingRail) pay(ctx context.Context, p *payment) payOutcome {
	out := r.cardRail.pay(ctx, p)
	if out.result == payPaid {
		r.charges.Add(1)
	}
	return out
}

func (r *countingRail) void(context.Context, string) error { r.voids.Add(1); return nil }

// staleOnce fails the first CompleteSession as a lost race would, after
// running during (a price change, say).
type staleOnce struct {
	store.Commerce
	n      atomic.Int32
	during func(ctx context.Context)
}

func (s *staleOnce) CompleteSession(ctx context.Context, ses *store.Session, o *store.Order, takes []store.StockTake) error {
	if s.n.Add(1) == 1 {
		if s.during != nil {
			s.during(ctx)
		}
		return store.ErrStale
	}
	return s.Commerce.CompleteSession(ctx, ses, o, takes)
}

// TestLostRaceChargesOnce: completion retries after a lost race, but the
// rail is charged once for the one order (a real rail would have charged
// the buyer again on every retry); when the retry sells other terms (the
// price moved), the first charge is voided before the new one.
func TestLostRaceChargesOnce(t *testing.T) {
	t.Parallel()
	for _, repriced := range []bool{false, true} {
		charges, voids, total := lostRace(t, repriced)
		wantTotal := int64(3500 + 690)
		if repriced {
			wantTotal = 4000 + 690
		}
		if charges != 1+btoi(repriced) || voids != btoi(repriced) || total != wantTotal {
			t.Errorf("repriced=%v: %d charges, %d voids, order total %d", repriced, charges, voids, total)
		}
	}
}

func btoi(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func lostRace(t *testing.T, repriced bool) (charges, voids int32, total int64) {
	st := &staleOnce{Commerce: sqlstoretest.SQLite(t)}
	if repriced {
		st.during = func(ctx context.Context) {
			if err := st.PutProduct(ctx, &store.Product{ShopSlug: "flower-shop", ID: "bouquet_roses", Title: "Roses", Text: "roses",
				MinPrice: 4000, MaxPrice: 4000, Currency: "EUR", Doc: []byte(`{"id":"bouquet_roses"}`), UpdatedAt: time.Now()},
				[]*store.Variant{{ShopSlug: "flower-shop", ID: "bouquet_roses", ProductID: "bouquet_roses", Title: "Roses", Price: 4000, Stock: 40}}); err != nil {
				t.Error(err)
			}
		}
	}
	if err := Seed(t.Context(), st, DemoShops(), time.Now()); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &MemoryKeys{}, Dev: true,
		Profiles: &discovery.Fetcher{AllowInsecureLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	card := &countingRail{}
	svc.rails[HandlerCardID] = card
	p := &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "p"}
	agent := "http://127.0.0.1:1/.well-known/ucp" // dev: unreachable profiles fall back to the store's own
	rep := svc.Do(t.Context(), &Request{Op: OpCreateCheckout, Shop: "flower-shop", Agent: agent, Principal: p, IdempotencyKey: "create-0000000001",
		Body: []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}],"fulfillment":{"methods":[{"type":"shipping","destinations":[{"address_country":"FR"}]}]}}`)})
	var c struct{ ID, Status string }
	if rep.Err != nil || json.Unmarshal(rep.Body, &c) != nil {
		t.Fatalf("create: %+v %s", rep.Err, rep.Body)
	}
	rep = svc.Do(t.Context(), &Request{Op: OpCompleteCheckout, Shop: "flower-shop", ID: c.ID, Agent: agent, Principal: p, IdempotencyKey: "complete-00000001",
		Body: []byte(`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`)})
	var done struct {
		Status string
		Totals []struct {
			Type   string
			Amount int64
		}
	}
	if rep.Err != nil || json.Unmarshal(rep.Body, &done) != nil || done.Status != "completed" {
		t.Fatalf("complete: %+v %s", rep.Err, rep.Body)
	}
	if st.n.Load() != 2 {
		t.Fatalf("%d placements", st.n.Load())
	}
	return card.charges.Load(), card.voids.Load(), done.Totals[len(done.Totals)-1].Amount
}

// TestChargeWithoutOrderVoided: a completion charges, loses the race for
// the last units, and its retry ends out of stock: no order, so the charge
// is voided.
func TestChargeWithoutOrderVoided(t *testing.T) {
	t.Parallel()
	st := &staleOnce{Commerce: sqlstoretest.SQLite(t)}
	st.during = func(ctx context.Context) {
		if err := st.PutProduct(ctx, &store.Product{ShopSlug: "flower-shop", ID: "bouquet_roses", Title: "Roses", Text: "roses",
			MinPrice: 3500, MaxPrice: 3500, Currency: "EUR", Doc: []byte(`{"id":"bouquet_roses"}`), UpdatedAt: time.Now()},
			[]*store.Variant{{ShopSlug: "flower-shop", ID: "bouquet_roses", ProductID: "bouquet_roses", Title: "Roses", Price: 3500, Stock: 0}}); err != nil {
			t.Error(err)
		}
	}
	if err := Seed(t.Context(), st, DemoShops(), time.Now()); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &MemoryKeys{}, Dev: true,
		Profiles: &discovery.Fetcher{AllowInsecureLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	card := &countingRail{}
	svc.rails[HandlerCardID] = card
	p := &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "p"}
	agent := "http://127.0.0.1:1/.well-known/ucp"
	rep := svc.Do(t.Context(), &Request{Op: OpCreateCheckout, Shop: "flower-shop", Agent: agent, Principal: p, IdempotencyKey: "create-0000000002",
		Body: []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)})
	var c struct{ ID, Status string }
	if rep.Err != nil || json.Unmarshal(rep.Body, &c) != nil {
		t.Fatalf("create: %+v %s", rep.Err, rep.Body)
	}
	rep = svc.Do(t.Context(), &Request{Op: OpCompleteCheckout, Shop: "flower-shop", ID: c.ID, Agent: agent, Principal: p, IdempotencyKey: "complete-00000002",
		Body: []byte(`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`)})
	if rep.Err != nil || json.Unmarshal(rep.Body, &c) != nil || c.Status == "completed" {
		t.Fatalf("complete: %+v %s", rep.Err, rep.Body)
	}
	if card.charges.Load() != 1 || card.voids.Load() != 1 {
		t.Fatalf("%d charges, %d voids, no order", card.charges.Load(), card.voids.Load())
	}
}
