package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// BenchmarkCompleteHotBuyer measures completions per second for ONE buyer
// (every completion takes a hold on the same allowance row, so they queue
// on its lock), against the same completions by the platform key (no
// allowance, no hold), on PostgreSQL. Checkouts are created before the
// timer starts; only complete_checkout is timed. Report: completions/s.
//
//	UCPBRIDGE_TEST_PG=… go test ./authserver/shop -run '^$' -bench HotBuyer -benchtime 2000x
func BenchmarkCompleteHotBuyer(b *testing.B) {
	st := sqlstoretest.Postgres(b)
	if st == nil {
		b.Skip(sqlstoretest.EnvPG + " is not set")
	}
	ctx := context.Background()
	if err := shop.Seed(ctx, st, shop.DemoShops(), time.Now()); err != nil {
		b.Fatal(err)
	}
	prof, _ := json.Marshal(&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version,
		Capabilities:    map[string][]ucp.Capability{ucp.CapCheckout: {{Entity: ucp.Entity{Version: ucp.Version}}}},
		PaymentHandlers: map[string][]ucp.PaymentHandler{}}})
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(prof) }))
	defer ps.Close()
	svc, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &shop.MemoryKeys{},
		Profiles: &discovery.Fetcher{AllowInsecureLoopback: true}, DisableRateLimits: true})
	if err != nil {
		b.Fatal(err)
	}
	// A cap no benchmark run reaches: the checks run, none refuses.
	al, _ := json.Marshal(oauth.Allowance{ID: uuid(), MaxPerOrder: 1 << 40, DailyCap: 1 << 50, Currency: "EUR", ExpiresAt: time.Now().Add(time.Hour)})
	if err := st.SaveConsent(ctx, &store.Consent{BuyerID: "hot", ClientID: "agent", Scope: "purchase:complete", Allowance: al, UpdatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	agent := ps.URL + "/.well-known/ucp"
	create, _ := json.Marshal(lines(line("sunflowers", 1)))
	complete, _ := json.Marshal(cardPayment("success_token"))
	for _, tc := range []struct {
		name string
		p    *guard.Principal
	}{
		{"allowance", &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer,
			ClientID: "agent", Platform: "bench", BuyerID: "hot", Scopes: []string{"purchase:complete"}}},
		{"platform-key", &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey,
			ClientID: "bench", Platform: "bench"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ids := make(chan string, b.N)
			for range b.N {
				rep := svc.Do(ctx, &shop.Request{Op: shop.OpCreateCheckout, Shop: "flower-shop", Body: create, Agent: agent, Principal: tc.p, IdempotencyKey: uuid()})
				if rep.Err != nil || rep.Status != 201 {
					b.Fatalf("create: %+v %s", rep.Err, rep.Body)
				}
				var c struct{ ID string }
				json.Unmarshal(rep.Body, &c)
				ids <- c.ID
			}
			close(ids)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rep := svc.Do(ctx, &shop.Request{Op: shop.OpCompleteCheckout, Shop: "flower-shop", ID: <-ids, Body: complete, Agent: agent,
						Principal: tc.p, IdempotencyKey: uuid()})
					var c ucp.Checkout
					if rep.Err != nil || json.Unmarshal(rep.Body, &c) != nil || c.Order == nil {
						b.Errorf("complete: %+v %s", rep.Err, rep.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "completions/s")
		})
	}
}
