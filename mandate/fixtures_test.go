package mandate_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// checkoutJSON is a 2026-04-08 checkout response as a store returns it,
// before ap2 is attached. The odd key order and spacing are deliberate: the
// signatures must not depend on them.
const checkoutJSON = `{
  "ucp": {"version": "2026-04-08", "capabilities": {"dev.ucp.shopping.checkout": [{"version": "2026-04-08"}],
          "dev.ucp.shopping.ap2_mandate": [{"version": "2026-04-08"}]},
          "payment_handlers": {"sh.artos.card": [{"id": "artos.card", "version": "2026-04-08"}]}},
  "status": "ready_for_complete",
  "id": "chk_7f3a",
  "currency": "EUR",
  "line_items": [
    {"id": "li_1", "item": {"id": "bouquet_roses", "title": "Roses & <Baby's breath>", "price": 4500}, "quantity": 2,
     "totals": [{"type": "subtotal", "amount": 9000}, {"type": "total", "amount": 9000}]}
  ],
  "totals": [{"type": "subtotal", "amount": 9000}, {"type": "fulfillment", "amount": 595},
             {"type": "tax", "amount": 1710}, {"type": "total", "amount": 11305}],
  "links": [{"type": "terms_of_service", "url": "https://shop.example/terms"}],
  "messages": [{"type": "info", "content": "Délivré en 24 h \u2028"}]
}`

const storeSlug = "flower-shop"

type fixture struct {
	agent, store *mandate.SigningKey
	agentKeys    *mandate.KeySet
	storeKeys    *mandate.KeySet
	checkout     []byte // with ap2.merchant_authorization
	now          time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	agent, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	store, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := mandate.AttachMerchantAuthorization([]byte(checkoutJSON), store)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		agent: agent, store: store,
		agentKeys: mandate.NewKeySet(agent.PublicJWK()),
		storeKeys: mandate.NewKeySet(store.PublicJWK()),
		checkout:  signed,
		now:       time.Unix(1_790_000_000, 0),
	}
}

func (f *fixture) params() *mandate.Params {
	return &mandate.Params{Checkout: f.checkout, Merchant: storeSlug, Now: f.now, HandlerID: "artos.card",
		Issuer: "https://agent.example/.well-known/ucp", Audience: "https://api.example/s/flower-shop"}
}

func (f *fixture) opts() *mandate.VerifyOptions {
	return &mandate.VerifyOptions{
		AgentKeys: f.agentKeys, MerchantKeys: f.storeKeys, Merchant: storeSlug, Checkout: f.checkout,
		Audience: "https://api.example/s/flower-shop", HandlerID: "artos.card",
		Now: func() time.Time { return f.now },
	}
}

// edit returns checkout with fn applied to its decoded object.
func edit(t testing.TB, checkout []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(checkout, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setTotal(m map[string]any, amount float64) {
	for _, tot := range m["totals"].([]any) {
		if e := tot.(map[string]any); e["type"] == "total" {
			e["amount"] = amount
		}
	}
}

// segments splits a compact JWS.
func segments(tok string) []string { return strings.Split(tok, ".") }
