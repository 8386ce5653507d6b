package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// BenchmarkCreateComplete measures a checkout's life through the service
// (binding-neutral Service.Do): create with two lines and a destination,
// then complete with the sandbox card, on each backend. Stock is
// untracked, so iterations do not run dry. Report: checkouts/s.
func BenchmarkCreateComplete(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(b *testing.B) store.Commerce
	}{
		{"sqlite", func(b *testing.B) store.Commerce { return sqlstoretest.SQLite(b) }},
		{"postgres", func(b *testing.B) store.Commerce {
			s := sqlstoretest.Postgres(b)
			if s == nil {
				b.Skip(sqlstoretest.EnvPG + " is not set")
			}
			return s
		}},
	} {
		b.Run(backend.name, func(b *testing.B) {
			st := backend.open(b)
			if err := shop.Seed(context.Background(), st, shop.DemoShops(), time.Now()); err != nil {
				b.Fatal(err)
			}
			// A platform profile served locally, cached after the first
			// fetch as in production.
			key, _ := mandate.GenerateSigningKey()
			jwk, _ := json.Marshal(key.PublicJWK())
			prof, _ := json.Marshal(&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version,
				Capabilities: map[string][]ucp.Capability{ucp.CapCheckout: {{Entity: ucp.Entity{Version: ucp.Version}}},
					ucp.CapFulfillment: {{Entity: ucp.Entity{Version: ucp.Version}, Extends: ucp.Extends{ucp.CapCheckout}}}},
				PaymentHandlers: map[string][]ucp.PaymentHandler{}}, SigningKeys: []json.RawMessage{jwk}})
			ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(prof) }))
			defer ps.Close()
			svc, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &shop.MemoryKeys{},
				Profiles: &discovery.Fetcher{AllowInsecureLoopback: true}, DisableRateLimits: true})
			if err != nil {
				b.Fatal(err)
			}
			create, _ := json.Marshal(map[string]any{"line_items": []any{line("sunflowers", 2)}, "fulfillment": frShipping})
			createES, _ := json.Marshal(map[string]any{"line_items": []any{line("merino-socks-m", 2), line("energy-gels-12", 1)}, "fulfillment": usShipping})
			complete, _ := json.Marshal(cardPayment("success_token"))
			agent := ps.URL + "/.well-known/ucp"
			ctx := context.Background()
			p := &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "bench"}
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					slug, body := "flower-shop", create
					if i%2 == 0 {
						slug, body = "energy-sport", createES
					}
					rep := svc.Do(ctx, &shop.Request{Op: shop.OpCreateCheckout, Shop: slug, Body: body, Agent: agent, Principal: p, IdempotencyKey: uuid()})
					if rep.Err != nil || rep.Status != 201 {
						b.Fatalf("create: %+v %s", rep.Err, rep.Body)
					}
					var c struct{ ID string }
					json.Unmarshal(rep.Body, &c)
					rep = svc.Do(ctx, &shop.Request{Op: shop.OpCompleteCheckout, Shop: slug, ID: c.ID, Body: complete, Agent: agent, Principal: p,
						IdempotencyKey: uuid(), BuyerType: "agent"})
					var done struct{ Status string }
					if rep.Err != nil || json.Unmarshal(rep.Body, &done) != nil || done.Status != ucp.CheckoutCompleted {
						b.Fatalf("complete: %+v %s", rep.Err, rep.Body)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
		})
	}
}
