package shop_test

// Second security review of issue 9: coupons and the partial update.

import (
	"net/http"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestReview9bPartialContextKeepsCouponClaim: an update without
// line_items is the partial shape, where "the members it carries replace
// theirs and the rest stays" (README), and "removing the claim removes
// it". putCheckout decodes the body over the stored input with
// json.Unmarshal, which merges into the stored *ucp.Context instead of
// replacing it: a context member that no longer carries the
// sh.artos.coupon claim keeps the old eligibility list, so the buyer's
// coupon stays applied, and the buyer's next completion spends it, on a
// checkout whose last context asked for no coupon. The same merge keeps
// stale members of buyer, fulfillment destinations and instruments.
func TestReview9bPartialContextKeepsCouponClaim(t *testing.T) {
	t.Parallel()
	e, st := couponEnv(t, 50000)
	c := sportCheckout(t, e, 2)
	if got := attachCoupon(t, e, c.ID, shop.CouponClaim); couponLine(got) == 0 {
		t.Fatalf("precondition: coupon not applied: %+v", got.Totals)
	}
	// The platform sends a new context: a destination country, and no
	// coupon claim.
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, map[string]any{"context": map[string]any{"address_country": "US"}},
		"X-Test-Dual", "buyer_ada")
	wantStatus(t, res, b, http.StatusOK)
	got := decode[ucp.Checkout](t, b)
	if got.Context != nil && len(got.Context.Eligibility) == 0 && couponLine(got) == 0 {
		return // the context was replaced: no claim, no credit
	}
	credit := couponLine(got)
	var elig []string
	if got.Context != nil {
		elig = got.Context.Eligibility
	}
	// The buyer's agent completes: the coupon it no longer asked for pays.
	done, _ := completeAs(t, e, "energy-sport", c.ID, map[string]any{}, ada...)
	t.Errorf("a partial update whose context carries no coupon claim kept the stored eligibility %v and the coupon credit %d; "+
		"the buyer's completion then placed order %v and left the coupon at %d of 50000",
		elig, credit, done != nil && done.Order != nil, couponBalance(t, st))
}
