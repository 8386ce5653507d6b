package shop_test

// Third security review of issue 9: the partial update after the second
// review's fix (members named by the body replace the stored ones whole).
// Each TestReview9c… test showed a hole and now guards its fix.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestReview9cPartialUpdateMemberCase: the partial update merges the
// stored input and the body as maps of member names, byte for byte, then
// decodes the result with encoding/json, which matches member names to
// fields case-insensitively (and so does the first decode of the body,
// which accepts "Context" as the context). A body naming "Context" adds
// a second member beside the stored "context"; json.Marshal sorts the
// map ("Context" < "context"), the decoder lets the later one win, and
// the stored context, coupon claim included, survives the update that
// replaced it. The claim the platform removed keeps crediting the
// buyer's coupon, which the buyer's next completion spends (the fix of
// TestReview9bPartialContextKeepsCouponClaim, bypassed by case).
func TestReview9cPartialUpdateMemberCase(t *testing.T) {
	t.Parallel()
	e, _ := couponEnv(t, 50000)
	c := sportCheckout(t, e, 2)
	if got := attachCoupon(t, e, c.ID, shop.CouponClaim); couponLine(got) == 0 {
		t.Fatalf("precondition: coupon not applied: %+v", got.Totals)
	}
	// Fixed by refusing the miscased member: the update is not applied
	// at all (nothing half-merged), and the caller learns the spelling.
	res, b := e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, map[string]any{"Context": map[string]any{"address_country": "US"}},
		"X-Test-Dual", "buyer_ada")
	wantStatus(t, res, b, http.StatusBadRequest)
	if !strings.Contains(string(b), `send \"context\"`) {
		t.Fatalf("%s", b)
	}
	// The correct spelling replaces the context, claim and all.
	res, b = e.req("PUT", "/s/energy-sport/checkout-sessions/"+c.ID, map[string]any{"context": map[string]any{"address_country": "US"}},
		"X-Test-Dual", "buyer_ada")
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[ucp.Checkout](t, b); couponLine(got) != 0 || (got.Context != nil && len(got.Context.Eligibility) != 0) {
		t.Fatalf("the claim survived its context: %s", b)
	}
}
