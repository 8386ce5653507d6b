package shop_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// fixedProfile serves one platform profile for every URL.
type fixedProfile struct{ p *ucp.Profile }

func (f fixedProfile) Fetch(context.Context, string) (*ucp.Profile, error) { return f.p, nil }

// FuzzCheckoutBody feeds arbitrary bodies to create and then update a
// checkout: the service must answer (never panic), and every checkout it
// returns must keep the totals invariants.
func FuzzCheckoutBody(f *testing.F) {
	for _, s := range []string{
		`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":2}]}`,
		`{"line_items":[{"item":{"id":"trx-blk-9"},"quantity":1}],"fulfillment":{"methods":[{"type":"shipping","destinations":[{"address_country":"US"}],"groups":[{"selected_option_id":"express"}]}]},"discounts":{"codes":["RUN10","WELCOME5"]}}`,
		`{"line_items":[{"item":{"id":"orchid_pot"},"quantity":9999}],"discounts":{"codes":["spring15","SPRING15"]},"payment":{"instruments":[{"handler_id":"artos.card","selected":true}]}}`,
		`{"cart_id":"cart_x"}`, `{"line_items":[{"item":{"id":"x"},"quantity":"1"}]}`, `[]`, `{`,
	} {
		f.Add("flower-shop", []byte(s))
		f.Add("energy-sport", []byte(s))
	}
	st := sqlstoretest.SQLite(f)
	if err := shop.Seed(context.Background(), st, shop.DemoShops(), time.Now()); err != nil {
		f.Fatal(err)
	}
	caps := map[string][]ucp.Capability{}
	for _, c := range []string{ucp.CapCheckout, ucp.CapFulfillment, ucp.CapDiscount, ucp.CapCart} {
		caps[c] = []ucp.Capability{{Entity: ucp.Entity{Version: ucp.Version}}}
	}
	svc, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: st, Keys: &shop.MemoryKeys{},
		Profiles: fixedProfile{&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version, Capabilities: caps}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, slug string, body []byte) {
		if slug != "flower-shop" && slug != "energy-sport" {
			slug = "flower-shop"
		}
		ctx := context.Background()
		req := &shop.Request{Op: shop.OpCreateCheckout, Shop: slug, Body: body, Agent: "https://p.example/.well-known/ucp"}
		rep := svc.Do(ctx, req)
		check := func(rep *shop.Reply) string {
			if rep == nil || (rep.Err == nil && len(rep.Body) == 0) {
				t.Fatalf("empty reply for %q", body)
			}
			if rep.Err != nil || (rep.Status != 200 && rep.Status != 201) {
				return ""
			}
			var c ucp.Checkout
			if json.Unmarshal(rep.Body, &c) != nil || c.ID == "" {
				return "" // an error envelope
			}
			checkTotals(t, c.Totals)
			return c.ID
		}
		id := check(rep)
		if id == "" {
			return
		}
		check(svc.Do(ctx, &shop.Request{Op: shop.OpUpdateCheckout, Shop: slug, ID: id, Body: body, Agent: req.Agent}))
	})
}
