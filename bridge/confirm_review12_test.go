package bridge_test

import (
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// TestConfirmRefusalNamesNoInventedAmount (review 12): when the store
// refuses the payment (allowance), the answer it gives is an error
// envelope, not the checkout. confirm_purchase must not read a total
// and currency out of it: it used to report "the total 0.00 USD" and
// "this checkout is in USD" for a 35.00 EUR checkout, wrong money told
// to the agent and the buyer.
func TestConfirmRefusalNamesNoInventedAmount(t *testing.T) {
	for name, al := range map[string]*authservertest.Allowance{
		"currency":  {MaxPerOrder: "500", DailyCap: "1000", Currency: "USD", Days: 30},
		"per order": {MaxPerOrder: "10", DailyCap: "1000", Currency: "EUR", Days: 30},
	} {
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, harnessOptions{allowance: al})
			co := h.ok(t, "create_checkout", map[string]any{"store_slug": "flower-shop", "items": lines("bouquet_roses", 1)})
			res := h.call(t, "confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"], "payment_method": "artos.card"})
			out := structured(t, res)
			if !res.IsError || out["outcome"] != "allowance_refused" {
				t.Fatalf("outcome %v: %s", out["outcome"], text(res))
			}
			if c, _ := out["currency"].(string); c != "" && c != "EUR" {
				t.Errorf("currency %q for a EUR checkout: %s", c, text(res))
			}
			if strings.Contains(text(res), "0.00 USD") || strings.Contains(text(res), "checkout is in USD") {
				t.Errorf("invented amount: %s", text(res))
			}
		})
	}
}
