package shop

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"testing/quick"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestMulDivRound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b, c, want int64 }{
		{11610, 825, 10_000, 958}, // 957.825
		{100, 1500, 10_000, 15},
		{5, 5000, 10_000, 3}, // 2.5 rounds half up
		{0, 825, 10_000, 0},
		{math.MaxInt64, 10_000, 10_000, math.MaxInt64},
		{math.MaxInt64, 9_999, 10_000, 9222449699651090329}, // exact beyond float64
	} {
		if got := mulDivRound(tc.a, tc.b, tc.c); got != tc.want {
			t.Errorf("mulDivRound(%d,%d,%d) = %d, want %d", tc.a, tc.b, tc.c, got, tc.want)
		}
	}
}

// TestTotalsProperty prices random carts through the real pricing steps
// (discounts of both kinds, shipping with a free threshold, tax) and checks
// the UCP invariants: one subtotal, one total, entries sum to the total,
// discounts never positive nor larger than the items, nothing negative.
func TestTotalsProperty(t *testing.T) {
	t.Parallel()
	cfg := Settings{Rails: []string{HandlerCardID}, TaxBP: 825,
		Discounts: map[string]DiscountRule{"P10": {Title: "10%", PercentBP: 1000}, "P100": {Title: "all", PercentBP: 10_000},
			"F5": {Title: "5 off", Amount: 500}, "F1M": {Title: "1M off", Amount: 1_000_000}}}
	codes := []string{"P10", "P100", "F5", "F1M", "nope", "p10"}
	f := func(seed uint64) bool {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		var subtotal int64
		for range 1 + r.IntN(maxLines) {
			price := r.Int64N(1_000_000_000) // up to 10M in cents
			qty := 1 + r.Int64N(maxQuantity)
			subtotal += price * qty
		}
		var picked []string
		for range r.IntN(4) {
			picked = append(picked, codes[r.IntN(len(codes))])
		}
		totals := []ucp.Total{{Type: ucp.TotalSubtotal, Amount: subtotal}}
		_, dt, _ := applyDiscounts(cfg, picked, subtotal)
		totals = append(totals, dt...)
		items := subtotal
		for _, d := range dt {
			if d.Amount > 0 {
				return false
			}
			items += d.Amount
		}
		if items < 0 {
			return false
		}
		ship := r.Int64N(5000)
		if items >= 7500 {
			ship = 0
		}
		totals = append(totals, ucp.Total{Type: ucp.TotalFulfillment, Amount: ship})
		totals = append(totals, ucp.Total{Type: ucp.TotalTax, Amount: mulDivRound(items+ship, cfg.TaxBP, 10_000)})
		totals = sumTotals(totals)
		var sum, total int64
		nsub, ntot := 0, 0
		for _, x := range totals {
			switch x.Type {
			case ucp.TotalSubtotal:
				nsub++
			case ucp.TotalTotal:
				ntot++
				total = x.Amount
				continue
			}
			if x.Type != ucp.TotalDiscount && x.Amount < 0 {
				return false
			}
			sum += x.Amount
		}
		return nsub == 1 && ntot == 1 && sum == total && total >= 0
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// TestSignedCheckoutEncoding: the spliced ap2 member yields exactly what
// marshalling the checkout with ap2 would.
func TestSignedCheckoutEncoding(t *testing.T) {
	t.Parallel()
	key := &MemoryKeys{}
	k, _ := key.ShopKey(t.Context(), "s")
	neg := &negotiation{version: ucp.Version, caps: map[string]string{ucp.CapCheckout: ucp.Version},
		business: &businessProfile{key: k, profile: &ucp.Profile{}}}
	c := &ucp.Checkout{ID: "chk_1", LineItems: []ucp.LineItem{{ID: "li_1", Item: ucp.Item{ID: "x", Title: "<b>&", Price: 5}, Quantity: 1}},
		Status: ucp.CheckoutIncomplete, Currency: "EUR", Totals: []ucp.Total{{Type: "subtotal", Amount: 5}, {Type: "total", Amount: 5}}}
	s := &Service{}
	got, err := s.signedCheckout(&opCtx{neg: neg}, c)
	if err != nil {
		t.Fatal(err)
	}
	var back ucp.Checkout
	if err := json.Unmarshal(got, &back); err != nil || back.AP2 == nil {
		t.Fatalf("%v %s", err, got)
	}
	want, _ := json.Marshal(&back)
	if string(got) != string(want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
