package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// completeInput is what complete reads: the payment, mandates and
// observed signals; everything else was settled by create and update.
type completeInput struct {
	Payment     *ucp.Payment      `json:"payment,omitempty"`
	AP2         *ucp.AP2          `json:"ap2,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
}

// completion is one complete_checkout request, across the attempts a lost
// race costs it.
type completion struct {
	s  *Service
	oc *opCtx
	in completeInput
	// mandateConsumed: an earlier attempt verified and consumed the
	// mandate. A retry re-checks its binding to the re-priced checkout
	// but must not count it as a replay.
	mandateConsumed bool
	// charged is what an earlier attempt charged: a retry after a lost
	// race must not charge again for the same terms. placed: the order
	// was placed; a charge without an order is voided.
	charged *charge
	placed  bool
	// shown is the checkout the hosted page showed the buyer (nil for
	// the API); the buyer pays for exactly that.
	shown *shownCheckout
	// mandateID is the payment_mandate_id the verified mandate named.
	mandateID string
	// hold is the buyer's spend hold taken for this completion (or the
	// prepared crypto payment's); holdLife overrides holdLife.
	hold     *store.SpendHold
	holdLife time.Duration
	// stored is the checkout as the session holds it, read by this
	// attempt: what a failed completion answers with (failed).
	stored *ucp.Checkout
}

// charge is one successful charge through a rail, under the payment
// reference ref, for the terms of checkout.
type charge struct {
	rail, ref string
	amount    int64
	checkout  *ucp.Checkout
}

// cloneTerms copies what termsHash reads, so later steps editing the
// checkout (its status, its order) cannot change the record of what was
// charged.
func cloneTerms(c *ucp.Checkout) *ucp.Checkout {
	return &ucp.Checkout{ID: c.ID, Currency: c.Currency, LineItems: slices.Clone(c.LineItems), Totals: slices.Clone(c.Totals),
		Fulfillment: c.Fulfillment, Discounts: c.Discounts}
}

// completeCheckout runs the completion steps on the session, in order:
// reprice it against the live catalog, choose the rail, authorize the
// charge, pay through the rail and place the order, taking stock in the
// same transaction. A business failure at any step changes nothing and
// answers as failed and refused say; a lost race runs the steps again on
// the reloaded session.
func (s *Service) completeCheckout(ctx context.Context, oc *opCtx) *Reply {
	return s.complete(ctx, oc, nil)
}

// complete runs the completion; shown is what the hosted page showed the
// buyer (nil for the API).
func (s *Service) complete(ctx context.Context, oc *opCtx, shown *shownCheckout) *Reply {
	cp := &completion{s: s, oc: oc, shown: shown}
	if rep := cp.requireSigned(); rep != nil {
		return rep
	}
	if len(oc.Body) > 0 {
		if rep := decodeInput(oc.Body, &cp.in); rep != nil {
			return rep
		}
	}
	rep := checkouts.update(ctx, s, oc, concurrentModification, func(ses *session[checkoutState]) (*Reply, error) {
		if terminal(ses.st.Checkout.Status) {
			return oc.notModifiable(&ses.st.Checkout), nil
		}
		// The hosted page pays only a checkout still waiting for the
		// buyer, checked on every attempt: the platform may have changed
		// it since the page read it.
		if oc.ownerOverride != "" && ses.st.Checkout.Status != ucp.CheckoutRequiresEscalation {
			return notPayable(), nil
		}
		stored := ses.st.Checkout
		cp.stored = &stored
		c, inst, rep := cp.reprice(ctx, ses.st)
		if rep != nil {
			return rep, nil
		}
		if rep, err := cp.confirmShown(ctx, ses, c); rep != nil || err != nil {
			return rep, err
		}
		railID, rep := cp.chooseRail(ctx, c, inst)
		if rep != nil {
			return rep, nil
		}
		if rep := cp.authorize(ctx, ses.st, c, railID); rep != nil {
			return rep, nil
		}
		if rep := cp.couponGate(ctx, ses.st, c, railID); rep != nil {
			return rep, nil
		}
		if railID == HandlerCryptoID {
			if rep := cp.checkIntent(ctx, ses, c, inst); rep != nil {
				return rep, nil
			}
		}
		if rep := cp.holdSpend(ctx, c, couponCredit(ses.st)); rep != nil {
			return rep, nil
		}
		if rep, err := cp.pay(ctx, ses, c, railID, inst); rep != nil || err != nil {
			return rep, err
		}
		// placeOrder marks c completed before the transaction that may
		// refuse it: a refusal answers with the checkout as it was.
		unplaced := *c
		rep, err := s.placeOrder(ctx, oc, ses, c)
		if errors.Is(err, store.ErrCouponSpent) {
			// Another order spent the coupon since this one was priced.
			return cp.paymentFailed(ctx, &unplaced, "the coupon's balance changed since the checkout was priced; review the checkout and complete again"), nil
		}
		if errors.Is(err, store.ErrHoldLapsed) {
			// The spend hold went (its payment was prepared again, or it
			// outlived its life): no order without the spending it counts.
			return cp.paymentFailed(ctx, &unplaced, "the spending reserved for this payment lapsed; prepare or complete the payment again"), nil
		}
		cp.placed = err == nil
		return rep, err
	})
	// A charge made before a lost race whose retry ended without an
	// order (the stock went, the checkout changed, storage failed) is
	// given back: the buyer pays for orders only.
	if cp.charged != nil && !cp.placed {
		if err := s.rails[cp.charged.rail].void(context.WithoutCancel(ctx), cp.charged.ref); err != nil {
			s.log.ErrorContext(ctx, "shop: void a charge that placed no order", "rail", cp.charged.rail, "ref", cp.charged.ref, "err", err)
		}
	}
	// Likewise the spend hold: only a placed order keeps it.
	if !cp.placed {
		cp.releaseHold(ctx)
	}
	s.cfg.Metrics.CheckoutCompleted(completionOutcome(cp.placed, rep))
	return rep
}

// notPayable: the hosted page's checkout stopped waiting for the buyer.
func notPayable() *Reply {
	return protoErr(http.StatusConflict, rpcAuth, "checkout_not_payable", "the checkout is no longer waiting for the buyer's payment")
}

// termsChanged: repricing changed what the hosted page showed the buyer.
func termsChanged() *Reply {
	return protoErr(http.StatusConflict, rpcAuth, "terms_changed", "the price changed; review the new total and pay again")
}

// confirmShown holds the hosted page to what the buyer saw: when the
// repriced checkout differs (a price or stock change since the page was
// drawn), nothing is charged and the repriced checkout is saved, still
// waiting for the buyer, so the page shows the new total.
func (cp *completion) confirmShown(ctx context.Context, ses *session[checkoutState], c *ucp.Checkout) (*Reply, error) {
	if cp.oc.ownerOverride == "" {
		return nil, nil
	}
	if cp.shown == nil {
		return termsChanged(), nil // not a form the page drew
	}
	h, err := termsHash(c)
	if err != nil {
		return internalError(), nil
	}
	if h == cp.shown.terms {
		// A session written since the page read it (the platform
		// updated it and escalated again) is not what the buyer
		// confirmed, even at the same terms: the page shows it again.
		// This attempt's read is the version its order commits on.
		if ses.row.Version != cp.shown.version {
			return termsChanged(), nil
		}
		return nil, nil
	}
	c.Status = ucp.CheckoutRequiresEscalation
	c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: "buyer_review_required", Severity: ucp.SeverityRequiresBuyerInput,
		Content: "the price changed; the buyer reviews the new total at continue_url"})
	ses.st.Checkout = *c
	if err := ses.save(ctx, cp.s, c.Status); err != nil {
		return nil, err
	}
	return termsChanged(), nil
}

// termsHash is mandate.CheckoutHash of a checkout: what is bought, at
// what price.
func termsHash(c *ucp.Checkout) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return mandate.CheckoutHash(b)
}

func concurrentModification() *Reply {
	r := protoErr(http.StatusConflict, rpcAuth, "concurrent_modification", "the checkout kept changing while it was being completed; retry")
	r.Err.RetryAfter = 1
	return r
}

// reprice prices the session's last inputs, with complete's payment,
// signals and attribution, against the live catalog. It returns the
// checkout and the selected instrument, or the reply when the checkout
// cannot complete as it stands.
func (cp *completion) reprice(ctx context.Context, st *checkoutState) (*ucp.Checkout, *ucp.PaymentInstrument, *Reply) {
	var prev checkoutInput
	if err := json.Unmarshal(st.Input, &prev); err != nil {
		return nil, nil, internalError()
	}
	if cp.in.Payment != nil {
		prev.Payment = cp.in.Payment
	}
	if cp.in.Signals != nil {
		prev.Signals = cp.in.Signals
	}
	if cp.in.Attribution != nil {
		prev.Attribution = cp.in.Attribution
	}
	c, err := cp.s.priceCheckout(ctx, cp.oc, &prev, st)
	if rep := cp.s.pricingFailure(ctx, cp.oc, err); rep != nil {
		return nil, nil, rep
	}
	if hasError(c.Messages) {
		// The checkout cannot complete as it now prices (stock went, the
		// request named a handler this store lacks): its errors say why.
		msgs := errorsOf(c.Messages)
		c.Messages = slices.DeleteFunc(c.Messages, func(m ucp.Message) bool { return m.Type == "error" })
		return nil, nil, cp.failed(ctx, c, msgs...)
	}
	return c, selectedInstrument(prev.Payment), nil
}

// chooseRail returns the handler id to charge through: the selected
// instrument's, the store's only rail, or "" when a fully discounted
// order needs none. It runs before authorize, so a refusal here verifies
// and consumes no mandate.
func (cp *completion) chooseRail(ctx context.Context, c *ucp.Checkout, inst *ucp.PaymentInstrument) (string, *Reply) {
	offered := cp.oc.shop.cfg.Rails
	id := ""
	switch {
	case inst != nil:
		id = inst.HandlerID
	case c.Totals[len(c.Totals)-1].Amount == 0:
	case len(offered) == 1:
		id = offered[0]
	default:
		c.Messages = slices.DeleteFunc(c.Messages, func(m ucp.Message) bool { return m.Code == "payment_selection_required" })
		return "", cp.failed(ctx, c, ucp.Message{Type: "error", Code: "payment_selection_required", Path: "$.payment.instruments",
			Content: "this store offers several payment handlers; complete with one selected instrument whose handler_id is one of " +
				fmt.Sprint(offered), Severity: ucp.SeverityRecoverable})
	}
	if id != "" && !slices.Contains(offered, id) {
		return "", cp.paymentFailed(ctx, c, "this store does not offer "+id)
	}
	return id, nil
}

// authorize checks what must hold before money moves: today the AP2
// checkout mandate. (The buyer's spend allowance belongs here too.)
func (cp *completion) authorize(ctx context.Context, st *checkoutState, c *ucp.Checkout, railID string) *Reply {
	// A session created under AP2 stays under AP2 (the lock), even if
	// this request negotiated less. The hosted page is exempt: it is the
	// buyer paying after an escalation the mandate already passed.
	oc := cp.oc
	if oc.ownerOverride != "" || !(st.AP2 || oc.neg.has(ucp.CapAP2Mandate) && oc.neg.platform != nil) {
		return nil
	}
	if rep := cp.checkMandate(ctx, c, railID); rep != nil {
		return rep
	}
	cp.mandateConsumed = true
	return nil
}

// checkMandate verifies ap2.checkout_mandate against the live checkout.
func (cp *completion) checkMandate(ctx context.Context, c *ucp.Checkout, railID string) *Reply {
	s, oc := cp.s, cp.oc
	live, err := s.signedCheckout(oc, c)
	if err != nil {
		return internalError()
	}
	token := ""
	if cp.in.AP2 != nil {
		token = cp.in.AP2.CheckoutMandate
	}
	auth, err := s.cfg.MandateVerifier.VerifyMandate(ctx, token, MandateInput{Shop: oc.shop.Slug, Live: live,
		Agent: oc.neg.platform, MerchantKeys: oc.neg.business.keys, HandlerID: railID, Consumed: cp.mandateConsumed})
	var me *mandate.Error
	switch {
	case err == nil:
		if auth != nil {
			cp.mandateID = auth.PaymentMandateID
		}
		return nil
	case errors.As(err, &me):
		return cp.failed(ctx, c, ucp.Message{Type: "error", Code: string(me.Code), Path: "$.ap2.checkout_mandate",
			Content: me.Reason, Severity: ucp.SeverityRecoverable})
	default:
		s.failure(ctx, "shop: mandate verification", err)
		return unavailable("mandate verification is unavailable")
	}
}

// pay charges through the chosen rail. It returns nothing once paid (or
// when no rail is needed); otherwise the reply, or the error of saving an
// escalation. An escalation is saved so the buyer finds the checkout at
// continue_url; a failure changes nothing.
func (cp *completion) pay(ctx context.Context, ses *session[checkoutState], c *ucp.Checkout, railID string, inst *ucp.PaymentInstrument) (*Reply, error) {
	if railID == "" {
		return nil, nil
	}
	r, ok := cp.s.rails[railID]
	if !ok {
		return internalError(), nil // the store offers a rail this build lacks
	}
	total := c.Totals[len(c.Totals)-1].Amount
	// The reference a rail dedupes on: this checkout, at this amount.
	p := &payment{checkout: c, instrument: inst, reference: c.ID + "/" + c.Currency + "/" + strconv.FormatInt(total, 10)}
	if railID == HandlerCardID && p.token() == "" {
		// A buyer's agent names no card: the buyer's saved one pays,
		// within the allowance held above.
		p.savedToken = cp.savedCardToken(ctx)
	}
	if prev := cp.charged; prev != nil {
		// Terms are compared only on a retry: hashing them costs a
		// canonical encoding the first attempt need not pay.
		same := prev.rail == railID && prev.amount == total
		if same {
			was, err1 := termsHash(prev.checkout)
			now, err2 := termsHash(c)
			if err1 != nil || err2 != nil {
				return internalError(), nil
			}
			same = was == now
		}
		if same {
			return nil, nil // charged on an earlier attempt of this request
		}
		// The retry sells something else: give the first charge back
		// before charging for what is sold now.
		if err := cp.s.rails[prev.rail].void(ctx, prev.ref); err != nil {
			return nil, err
		}
		cp.charged = nil
	}
	out := r.pay(ctx, p)
	switch out.result {
	case payPaid:
		cp.charged = &charge{rail: railID, ref: p.reference, amount: total, checkout: cloneTerms(c)}
		return nil, nil
	case payEscalated:
		c.Status = ucp.CheckoutRequiresEscalation
		c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: out.code, Content: out.content, Severity: ucp.SeverityRequiresBuyerInput})
		ses.st.Checkout = *c
		if err := ses.save(ctx, cp.s, c.Status); err != nil {
			return nil, err
		}
		return cp.s.checkoutReply(ctx, cp.oc, c, http.StatusOK), nil
	default:
		return cp.paymentFailed(ctx, c, out.content), nil
	}
}

// A completion that places no order answers by UCP's rule for
// ucp.status (checkout.md, Error Handling): it is the shape
// discriminator, "success" when the body is the checkout, "error" when
// the body carries error information instead, and then no resource
// (error_response.json: ucp, messages, continue_url, nothing else). Which
// of the two a refusal is:
//
//   - failed: the completion ran into the checkout's terms or its
//     payment (payment_failed, a mandate refused, no rail chosen). It is
//     a business outcome on the checkout: the checkout, ucp.status
//     "success", the error among its messages, as checkout.md's
//     eligibility_invalid example at completion answers. Nothing of the
//     request is kept, so the checkout is at the terms just priced with
//     its status and payment as stored: the instruments the request
//     sent are not echoed as if stored (a GET shows what this shows).
//   - refused: the buyer's money is not the caller's to spend as asked:
//     the buyer's spend allowance for the agent, the buyer's coupon
//     credit, the buyer's own crypto wallet. Nothing about the checkout
//     is at issue, nothing was tried, and the answer carries no
//     resource: the error envelope with the refusal.
//
// The Artos SDK (@artos-commerce/ucp-client 0.14.0) needs the second:
// its confirmPurchase reports a completion as an error only when
// ucp.status is "error", and as completed otherwise, whatever the
// checkout's status; answered with the checkout and "success", an
// allowance refusal would be reported to its agent as a purchase made.
// The spec allows either shape for an error, so the choice follows what
// the refusal is about, and the shape follows the spec.

// failed answers a completion that failed on the checkout with msgs:
// the checkout as stored, at the terms c was priced at. A crypto prepare
// creates a payment intent; refused, it creates none (refused).
func (cp *completion) failed(ctx context.Context, c *ucp.Checkout, msgs ...ucp.Message) *Reply {
	if cp.oc.Op == OpPrepareCheckoutPayment {
		return cp.refused(msgs...)
	}
	out := *c
	if cp.stored != nil {
		out.Status, out.Payment = cp.stored.Status, cp.stored.Payment
	}
	out.Messages = append(slices.Clone(c.Messages), msgs...)
	return cp.s.checkoutReply(ctx, cp.oc, &out, http.StatusOK)
}

// refused answers a completion (or a crypto prepare) refused for whose
// money it would spend: UCP's error envelope, without the checkout.
func (cp *completion) refused(msgs ...ucp.Message) *Reply {
	return cp.oc.errorEnvelope(http.StatusOK, msgs...)
}

// errorsOf are the error messages among msgs.
func errorsOf(msgs []ucp.Message) []ucp.Message {
	return slices.DeleteFunc(slices.Clone(msgs), func(m ucp.Message) bool { return m.Type != "error" })
}

// paymentFailed: the payment did not go through (declined, a rail this
// store does not offer, the prepared payment no longer matching).
func (cp *completion) paymentFailed(ctx context.Context, c *ucp.Checkout, content string) *Reply {
	return cp.failed(ctx, c, ucp.Message{Type: "error", Code: "payment_failed", Path: "$.payment.instruments",
		Content: content, Severity: ucp.SeverityRecoverable})
}
