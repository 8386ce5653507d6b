package shop

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// holdLife is how long a completion's spend hold counts while not yet
// consumed: long enough for the payment step, short enough that a hold
// whose instance died gives the buyer's cap back soon.
const holdLife = 15 * time.Minute

// buyerBound reports whether the completion pays with a buyer's
// authority (a buyer's bearer): the buyer's allowance applies. The hosted
// page is the buyer paying in person, and the platform's key acts for
// no buyer.
func (oc *opCtx) buyerBound() bool {
	p := oc.Principal
	return oc.ownerOverride == "" && p != nil && p.Kind == guard.KindBuyer
}

// holdSpend reserves the order's total against the buyer's allowance for
// the agent client, atomically with the checks (per-order limit,
// currency, expiry, the daily cap with holds in flight, the mandate's
// payment_mandate_id). The hold is consumed with the order or released.
// A retry after a lost race keeps a hold of the same amount. credit is
// the buyer's coupon credit the order also uses: the buyer's money too,
// so the hold covers the order's value before it.
func (cp *completion) holdSpend(ctx context.Context, c *ucp.Checkout, credit int64) *Reply {
	if !cp.oc.buyerBound() {
		return nil
	}
	s, p := cp.s, cp.oc.Principal
	total := c.Totals[len(c.Totals)-1].Amount + credit
	now := s.now()
	from, to := oauth.SpendDay(now)
	check := func(raw json.RawMessage, spent int64) error {
		al, err := oauth.ParseAllowance(raw)
		if err != nil {
			return err
		}
		return al.Check(oauth.Spend{Amount: total, Currency: c.Currency, MandateID: cp.mandateID}, spent, now)
	}
	var err error
	if h := cp.hold; h != nil && h.Amount == total && h.Currency == c.Currency {
		// A hold taken earlier (a lost race's attempt, or the crypto
		// intent's at prepare) is checked again, under the same lock, as
		// if taken now: the buyer may have lowered the allowance since,
		// and this request's mandate may name another allowance.
		err = s.cfg.Store.RecheckHold(ctx, h, from, to, now, check)
	} else {
		if h != nil {
			cp.releaseHold(ctx)
		}
		life := holdLife
		if cp.holdLife > 0 {
			life = cp.holdLife
		}
		h = &store.SpendHold{ID: newID("hold_"), BuyerID: p.BuyerID, ClientID: p.ClientID, Ref: cp.oc.shop.Slug + "/" + c.ID,
			Amount: total, Currency: c.Currency, CreatedAt: now, ExpiresAt: now.Add(life)}
		if err = s.cfg.Store.HoldSpend(ctx, h, from, to, now, check); err == nil {
			cp.hold, cp.oc.holdID = h, h.ID
		}
	}
	var se *oauth.SpendError
	switch {
	case errors.As(err, &se):
		// The buyer has not let this agent spend this much: refused,
		// without the checkout (completion.refused says why).
		s.cfg.Metrics.AllowanceRefused(se.Code)
		return cp.refused(ucp.Message{Type: "error", Code: se.Code, Content: se.Content,
			Severity: ucp.SeverityRequiresBuyerInput})
	case errors.Is(err, store.ErrHoldLapsed):
		cp.hold, cp.oc.holdID = nil, ""
		return cp.paymentFailed(ctx, c, "the spending reserved for this payment lapsed; prepare or complete the payment again")
	case err != nil:
		return s.storeFailure(ctx, err)
	}
	return nil
}

// releaseHold gives back a hold no order consumed. It runs past the
// request's cancellation: a caller hanging up must not keep the buyer's
// cap reserved for holdLife.
func (cp *completion) releaseHold(ctx context.Context) {
	if cp.hold == nil {
		return
	}
	if err := cp.s.cfg.Store.ReleaseHold(context.WithoutCancel(ctx), cp.hold.ID); err != nil {
		cp.s.log.ErrorContext(ctx, "shop: release a spend hold", "hold", cp.hold.ID, "err", err)
	}
	cp.hold, cp.oc.holdID = nil, ""
}

// savedCardToken is the buyer's saved sandbox card, for a buyer-bound
// card payment that names no card (Artos confirmPurchase sends none);
// "" when the buyer has none or the platform cannot look it up.
func (cp *completion) savedCardToken(ctx context.Context) string {
	if !cp.oc.buyerBound() || cp.s.cfg.Accounts == nil {
		return ""
	}
	b, err := cp.s.cfg.Accounts.Buyer(ctx, cp.oc.Principal.BuyerID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			cp.s.failure(ctx, "shop: load buyer account", err)
		}
		return ""
	}
	doc, err := store.ParseAccount(b.Account)
	if err != nil || doc.Card == nil {
		return ""
	}
	return doc.Card.Token
}

// requireSigned refuses a completion a store reserves for the signed
// tier (a verified RFC 9421 request signature).
func (cp *completion) requireSigned() *Reply {
	oc := cp.oc
	// Signed means signed by the platform the request names: a signature
	// verified against another profile proves nothing about this one.
	if !oc.shop.cfg.RequireSignedCompletion || oc.ownerOverride != "" ||
		(oc.Principal != nil && oc.Principal.Tier == guard.TierSigned && oc.Principal.Profile == oc.Agent) {
		return nil
	}
	return protoErr(http.StatusForbidden, rpcAuth, "signature_required",
		oc.shop.Name+" completes checkouts only for signed requests: sign complete_checkout with RFC 9421 using a key published in your UCP profile (signed trust tier)")
}
