package shop

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Artos coupons (artos.md §5.5, §10.7): reusable store credit a buyer
// holds, usable at any store in its currency, one per order, up to the
// order's total. A platform asks for it with the eligibility claim
// CouponClaim in context.eligibility on update_checkout, sending the
// buyer's bearer with its key (platform+buyer) so the store knows whose
// coupon; removing the claim removes the credit. It redeems with the
// crypto rail, or when it covers the whole total; a card completion with
// a coupon applied is refused at the eligibility gate. Redemption is
// buyer-bound (the buyer's bearer alone, within the allowance) and takes
// the credit off the coupon in the order's transaction.

// CouponClaim is the eligibility claim that applies the buyer's coupon.
const CouponClaim = "sh.artos.coupon"

// couponTitle labels the credit in discounts and totals.
const couponTitle = "Artos coupon"

// couponState is the coupon a checkout's pricing applied.
type couponState struct {
	ID      string `json:"id"`
	BuyerID string `json:"buyer_id"`
	Amount  int64  `json:"amount"`
}

func claimsCoupon(c *ucp.Context) bool {
	return c != nil && slices.Contains(c.Eligibility, CouponClaim)
}

// applyCoupon adds the buyer's coupon credit to a priced checkout when
// the request claims it: totals gets the credit line (before the grand
// total is summed), c the applied discount and its messages, st the
// coupon. The buyer is the caller's (a buyer token, or the key with the
// buyer's bearer); a re-pricing by the platform's key alone keeps the
// buyer who attached it.
func (s *Service) applyCoupon(ctx context.Context, oc *opCtx, in *checkoutInput, st *checkoutState, c *ucp.Checkout,
	totals []ucp.Total, itemsSubtotal int64) ([]ucp.Total, error) {
	prev := st.Coupon
	st.Coupon = nil
	if !claimsCoupon(in.Context) {
		return totals, nil
	}
	buyer := ""
	switch p := oc.Principal; {
	case p != nil && p.BuyerID != "" && p.HasScope(guard.ScopePurchase):
		// The buyer's bearer (alone, or with the key) lets the agent
		// spend: it may name the buyer's coupon.
		buyer = p.BuyerID
	case prev != nil && (p == nil || p.BuyerID == "" || p.BuyerID == prev.BuyerID):
		// Re-pricing by the platform's key keeps the buyer who attached
		// it; another buyer's request never inherits it.
		buyer = prev.BuyerID
	}
	warn := func(code, content string) {
		c.Messages = append(c.Messages, ucp.Message{Type: "warning", Code: code, Path: "$.context.eligibility", Content: content})
	}
	if buyer == "" || s.cfg.Accounts == nil {
		warn("coupon_requires_buyer", "the "+CouponClaim+" claim applies the buyer's coupon: send the buyer's bearer token with the platform key")
		return totals, nil
	}
	b, err := s.cfg.Accounts.Buyer(ctx, buyer)
	if errors.Is(err, store.ErrNotFound) {
		warn("coupon_not_eligible", "the buyer holds no coupon")
		return totals, nil
	}
	if err != nil {
		return nil, err
	}
	doc, err := store.ParseAccount(b.Account)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, t := range totals {
		total += t.Amount
	}
	now := s.now()
	var best *store.SavedCoupon
	for i := range doc.Coupons {
		cp := &doc.Coupons[i]
		if cp.Currency != c.Currency || cp.Balance <= 0 || !now.Before(cp.ExpiresAt) || itemsSubtotal < cp.MinSubtotal {
			continue
		}
		if best == nil || cp.Balance > best.Balance || (cp.Balance == best.Balance && strings.Compare(cp.ID, best.ID) < 0) {
			best = cp
		}
	}
	if best == nil || total <= 0 {
		warn("coupon_not_eligible", "none of the buyer's coupons applies to this order (currency, minimum subtotal, balance or expiry)")
		return totals, nil
	}
	amount := min(best.Balance, total)
	st.Coupon = &couponState{ID: best.ID, BuyerID: buyer, Amount: amount}
	if c.Discounts == nil {
		c.Discounts = &ucp.Discounts{}
	}
	c.Discounts.Applied = append(c.Discounts.Applied, ucp.AppliedDiscount{Title: couponTitle, Amount: amount, Automatic: true})
	return append(totals, ucp.Total{Type: ucp.TotalDiscount, DisplayText: couponTitle, Amount: -amount}), nil
}

// couponGate refuses what a coupon cannot do: pay alongside a card
// (coupons redeem with crypto, or alone when they cover the total), or be
// redeemed without the buyer's own authority.
func (cp *completion) couponGate(ctx context.Context, st *checkoutState, c *ucp.Checkout, railID string) *Reply {
	cp.oc.redeem = nil // a retry decides again on the reloaded session
	if st.Coupon == nil {
		return nil
	}
	// The coupon is the buyer's credit: a refusal to redeem it is
	// refused without the checkout (completion.refused says why).
	msg := func(code, content string) *Reply {
		return cp.refused(ucp.Message{Type: "error", Code: code, Path: "$.context.eligibility", Content: content,
			Severity: ucp.SeverityRecoverable})
	}
	switch {
	case railID != "" && railID != HandlerCryptoID:
		return msg("coupon_requires_crypto", "an Artos coupon redeems with "+HandlerCryptoID+" (or alone, when it covers the whole total); pay with crypto or remove "+CouponClaim+" from context.eligibility")
	case !cp.oc.buyerBound() || cp.oc.Principal.BuyerID != st.Coupon.BuyerID:
		return msg("coupon_requires_buyer", "the coupon is the buyer's credit: complete with the buyer's bearer token alone")
	}
	cp.oc.redeem = &store.CouponRedemption{BuyerID: st.Coupon.BuyerID, CouponID: st.Coupon.ID, Amount: st.Coupon.Amount}
	return nil
}

// couponCredit is the coupon credit a checkout's pricing applied.
func couponCredit(st *checkoutState) int64 {
	if st.Coupon == nil {
		return 0
	}
	return st.Coupon.Amount
}
