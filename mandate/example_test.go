package mandate_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// A store signs its checkout; an agent verifies the store, mints a
// checkout mandate; the store verifies the mandate at complete_checkout.
func Example() {
	ctx := context.Background()
	store, _ := mandate.GenerateSigningKey()
	agent, _ := mandate.GenerateSigningKey()

	checkout := []byte(`{"id":"chk_1","status":"ready_for_complete","currency":"EUR",
		"line_items":[{"id":"li_1","item":{"id":"bouquet_roses","title":"Roses","price":4500},"quantity":1,
		"totals":[{"type":"subtotal","amount":4500},{"type":"total","amount":4500}]}],
		"totals":[{"type":"subtotal","amount":4500},{"type":"total","amount":4500}]}`)
	signed, _ := mandate.AttachMerchantAuthorization(checkout, store)

	// Agent side: trust the checkout only if the store signed it.
	storeKeys := mandate.NewKeySet(store.PublicJWK()) // normally ParseKeySet(store profile)
	if err := mandate.VerifyMerchantAuthorization(ctx, signed, storeKeys); err != nil {
		fmt.Println("do not buy:", err)
		return
	}
	tok, _ := mandate.MintCheckoutMandate(agent, &mandate.Params{Checkout: signed, Merchant: "flower-shop"})

	// Store side, at complete_checkout.
	v, err := mandate.VerifyCheckoutMandate(ctx, tok, &mandate.VerifyOptions{
		AgentKeys:    mandate.NewKeySet(agent.PublicJWK()), // normally the UCP-Agent profile's keys
		MerchantKeys: storeKeys,
		Merchant:     "flower-shop",
		Checkout:     signed,
		Replay:       mandate.NewMemoryReplayCache(0, nil),
	})
	fmt.Println(v.Total.Amount, v.Total.Currency, err)

	// The same checkout re-priced: the mandate no longer covers it.
	repriced, _ := mandate.AttachMerchantAuthorization([]byte(`{"id":"chk_1","currency":"EUR","line_items":[],
		"totals":[{"type":"subtotal","amount":9000},{"type":"total","amount":9000}]}`), store)
	_, err = mandate.VerifyCheckoutMandate(ctx, tok, &mandate.VerifyOptions{
		AgentKeys: mandate.NewKeySet(agent.PublicJWK()), Merchant: "flower-shop", Checkout: repriced,
	})
	var me *mandate.Error
	if errors.As(err, &me) {
		fmt.Println(me.Code)
	}
	// Output:
	// 4500 EUR <nil>
	// mandate_scope_mismatch
}

func ExampleMintPaymentMandate() {
	agent, _ := mandate.GenerateSigningKey()
	checkout := []byte(`{"id":"chk_1","currency":"usd","totals":[{"type":"subtotal","amount":1999},{"type":"total","amount":1999}]}`)
	tok, _ := mandate.MintPaymentMandate(agent, &mandate.Params{
		Checkout: checkout, Merchant: "energy-sport", HandlerID: "artos.crypto", TTL: 2 * time.Minute,
		PaymentMandateID: "5b0e5a3e-8f7a-4c53-9d3b-2f1f6a0e7c11",
	})
	v, err := mandate.VerifyPaymentMandate(context.Background(), tok, &mandate.VerifyOptions{
		AgentKeys: mandate.NewKeySet(agent.PublicJWK()), Merchant: "energy-sport", Checkout: checkout, HandlerID: "artos.crypto",
	})
	fmt.Println(v.Claims.Payment.Amount, v.Claims.Payment.Currency, v.Claims.PaymentMandateID, err)
	// Output: 1999 USD 5b0e5a3e-8f7a-4c53-9d3b-2f1f6a0e7c11 <nil>
}

func ExampleCanonicalize() {
	out, _ := mandate.Canonicalize([]byte(`{"b": [1.50, 1e21], "a": "<&>", "\u20ac": -0}`))
	fmt.Println(string(out))
	// Output: {"a":"<&>","b":[1.5,1e+21],"€":0}
}
