package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ucpbridge/ucpbridge/mandate"
)

func ExampleToMinorUnits() {
	for _, a := range []struct{ amount, currency string }{
		{"12.50", "USD"}, {"125", "JPY"}, {"1.234", "BHD"}, {"12.345", "USD"},
	} {
		n, err := ToMinorUnits(a.amount, a.currency)
		var ae *AmountError
		if errors.As(err, &ae) {
			fmt.Println("refused:", ae.Reason)
			continue
		}
		fmt.Println(a.amount, a.currency, "=", n)
	}
	// Output:
	// 12.50 USD = 1250
	// 125 JPY = 125
	// 1.234 BHD = 1234
	// refused: USD amounts have at most 2 decimal places: enter an amount like 125 or 125.50
}

func ExampleGrandTotal() {
	checkout := json.RawMessage(`{"id":"co_1","currency":"EUR","totals":[
		{"type":"subtotal","amount":3000},{"type":"fulfillment","amount":690},{"type":"total","amount":3690}]}`)
	fmt.Println(GrandTotal(checkout), CurrencyOf(checkout), IsUCPError(checkout))
	// Output: 3690 EUR false
}

func ExampleCheckTotals() {
	checkout := json.RawMessage(`{"id":"co_1","currency":"EUR","totals":[
		{"type":"subtotal","amount":3000},{"type":"discount","amount":-450},{"type":"total","amount":3000}]}`)
	var te *TotalsError
	if err := CheckTotals(checkout); errors.As(err, &te) {
		fmt.Println("ask the buyer:", te.Reason)
	}
	// Output: ask the buyer: the entries add up to 25.50 EUR but the total is 30.00 EUR
}

func ExampleAp2Signer() {
	// The agent's key; its public JWK is published in the agent's UCP
	// profile under the same kid.
	key, _ := mandate.GenerateSigningKey()
	agentKey, _ := mandate.NewSigningKey(key.PrivateKey(), "agent_key_2026")
	signer, _ := NewAp2Signer(agentKey)

	// The checkout exactly as get_checkout returned it.
	storeKey, _ := mandate.GenerateSigningKey()
	checkout, _ := mandate.AttachMerchantAuthorization([]byte(
		`{"id":"co_1","currency":"EUR","totals":[{"type":"subtotal","amount":3500},{"type":"total","amount":3500}]}`), storeKey)

	checkoutMandate, err := signer.MintCheckoutMandate(checkout, "flower-shop", &MandateOptions{
		PaymentMandateID: "sh.artos.card", // not an allowance UUID: dropped, as the Artos SDK does
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	paymentMandate, _ := signer.MintPaymentMandate(GrandTotal(checkout), CurrencyOf(checkout), "flower-shop", nil)

	// What the store checks.
	opts := &mandate.VerifyOptions{AgentKeys: mandate.NewKeySet(agentKey.PublicJWK()), Merchant: "flower-shop", Checkout: checkout}
	v, err := mandate.VerifyCheckoutMandate(context.Background(), checkoutMandate, opts)
	fmt.Println(v.KeyID, v.Total, v.Claims.PaymentMandateID == "", err)
	p, err := mandate.VerifyPaymentMandate(context.Background(), paymentMandate, opts)
	fmt.Println(*p.Claims.Payment, err)
	// Output:
	// agent_key_2026 {3500 EUR} true <nil>
	// {3500 EUR flower-shop} <nil>
}

func ExampleVerifyMerchantAuthorization() {
	storeKey, _ := mandate.GenerateSigningKey()
	checkout, _ := mandate.AttachMerchantAuthorization([]byte(
		`{"id":"co_1","currency":"EUR","totals":[{"type":"total","amount":3500}]}`), storeKey)

	// The store profile (GET /s/:slug/.well-known/ucp) publishes its keys
	// as "signing_keys" or, as the Artos API does, "keys".
	jwk, _ := json.Marshal(storeKey.PublicJWK())
	keys, _ := mandate.ParseKeySet([]byte(`{"ucp":{"version":"2026-04-08"},"keys":[` + string(jwk) + `]}`))

	fmt.Println(VerifyMerchantAuthorization(checkout, keys))

	var c map[string]any
	_ = json.Unmarshal(checkout, &c)
	c["totals"] = []any{map[string]any{"type": "total", "amount": 1}}
	tampered, _ := json.Marshal(c)
	err := VerifyMerchantAuthorization(tampered, keys)
	fmt.Println(errors.Is(err, mandate.ErrMerchantAuthorizationInvalid))
	// Output:
	// <nil>
	// true
}

func ExampleOutcomeOf() {
	// What a store answers when the buyer's allowance does not cover the
	// order: an error envelope, no checkout.
	resp := json.RawMessage(`{"ucp":{"version":"2026-04-08","status":"error"},"messages":[{"type":"error",
		"code":"spend_cap_exceeded","severity":"requires_buyer_input",
		"content":"this order is 35.00 EUR; the daily cap is 120.50 EUR and 15.50 EUR remains today (UTC), payments in flight included"}]}`)

	o := OutcomeOf(resp)
	switch o.Kind {
	case OutcomeCompleted:
		fmt.Println("order", o.Order.ID)
	case OutcomePaymentSelectionRequired:
		fmt.Println("choose one of", o.Rails)
	case OutcomeEscalationRequired:
		fmt.Println("send the buyer to", o.ContinueURL)
	case OutcomeAllowanceRefused:
		r := o.Refusal
		fmt.Println(r.Code, r.Limit, r.Remaining, r.Currency)
	case OutcomeSignInRequired:
		fmt.Println("sign the buyer in")
	default:
		fmt.Println("failed:", o.Code, o.Message)
	}
	// Output: spend_cap_exceeded daily_cap 1550 EUR
}
