package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

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

// completeCheckout re-prices the session against the live catalog, picks
// the rail, verifies the AP2 mandate when AP2 was negotiated, charges the
// sandbox rail and places the order, taking stock in the same transaction.
// Business failures return the checkout with messages and ucp.status
// "error" and change nothing.
func (s *Service) completeCheckout(ctx context.Context, oc *opCtx) *Reply {
	var in completeInput
	if len(oc.Body) > 0 {
		if rep := decodeBody(oc.Body, &in); rep != nil {
			return rep
		}
	}
	mandateChecked := false
	for attempt := 0; attempt < 4; attempt++ {
		sess, st, rep := s.loadCheckout(ctx, oc)
		if rep != nil {
			return rep
		}
		if terminal(st.Checkout.Status) {
			return oc.notModifiable(&st.Checkout)
		}
		var prev checkoutInput
		if err := json.Unmarshal(st.Input, &prev); err != nil {
			return internalError()
		}
		if in.Payment != nil {
			prev.Payment = in.Payment
		}
		if in.Signals != nil {
			prev.Signals = in.Signals
		}
		if in.Attribution != nil {
			prev.Attribution = in.Attribution
		}
		c, err := s.priceCheckout(ctx, oc, &prev, st)
		if rep := s.pricingFailure(ctx, oc, err); rep != nil {
			return rep
		}
		if hasError(c.Messages) {
			return s.checkoutReply(ctx, oc, c, http.StatusOK, ucp.StatusError)
		}
		total := c.Totals[len(c.Totals)-1].Amount
		inst := selectedInstrument(prev.Payment)
		rail := ""
		switch {
		case inst != nil:
			rail = inst.HandlerID
		case total == 0:
			// A fully discounted order needs no rail.
		case len(oc.shop.cfg.Rails) == 1:
			rail = oc.shop.cfg.Rails[0]
		default:
			// Checked before the mandate: nothing is verified or consumed.
			c.Status = ucp.CheckoutIncomplete
			c.Messages = slices.DeleteFunc(c.Messages, func(m ucp.Message) bool { return m.Code == "payment_selection_required" })
			c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: "payment_selection_required", Path: "$.payment.instruments",
				Content: "this store offers several payment handlers; complete with one selected instrument whose handler_id is one of " +
					fmt.Sprint(oc.shop.cfg.Rails), Severity: ucp.SeverityRecoverable})
			return s.checkoutReply(ctx, oc, c, http.StatusOK, ucp.StatusError)
		}
		if rail != "" && !slices.Contains(oc.shop.cfg.Rails, rail) {
			return paymentFailed(ctx, s, oc, c, "this store does not offer "+rail)
		}
		// A session created under AP2 stays under AP2 (the lock), even if
		// this request negotiated less. The hosted page is exempt: it is
		// the buyer paying after an escalation the mandate already passed.
		if oc.ownerOverride == "" && (st.AP2 || oc.neg.has(ucp.CapAP2Mandate) && oc.neg.platform != nil) {
			// A retry after a lost race re-checks the binding but must not
			// count the mandate this request already consumed as a replay.
			if rep := s.checkMandate(ctx, oc, c, &in, rail, mandateChecked); rep != nil {
				return rep
			}
			mandateChecked = true
		}
		var token string
		if inst != nil && inst.Credential != nil {
			token = inst.Credential.Token
		}
		switch rail {
		case "":
		case HandlerCardID:
			switch token {
			case TokenSuccess:
			case "", TokenEscalate:
				code, content := "buyer_payment_required", "the buyer pays at continue_url"
				if token == TokenEscalate {
					code, content = "requires_3ds", "the card issuer asks the buyer to authenticate at continue_url"
				}
				c.Status = ucp.CheckoutRequiresEscalation
				c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: code, Content: content, Severity: ucp.SeverityRequiresBuyerInput})
				st.Checkout = *c
				if err := s.saveCheckout(ctx, sess, st); errors.Is(err, store.ErrStale) {
					continue
				} else if err != nil {
					return s.storeFailure(ctx, err)
				}
				return s.checkoutReply(ctx, oc, c, http.StatusOK, ucp.StatusSuccess)
			default:
				content := "the card was declined"
				if token != TokenFail {
					content = "unknown sandbox card token; use success_token, fail_token or escalate_token"
				}
				return paymentFailed(ctx, s, oc, c, content)
			}
		case HandlerCryptoID:
			return paymentFailed(ctx, s, oc, c, "crypto settlement needs the buyer's own authorization, which this platform does not offer yet; pay with artos.card")
		default:
			return internalError() // priceCheckout refused unknown handlers
		}
		rep, retry := s.placeOrder(ctx, oc, sess, st, c, oc.BuyerType)
		if !retry {
			return rep
		}
	}
	r := protoErr(http.StatusConflict, rpcAuth, "concurrent_modification", "the checkout kept changing while it was being completed; retry")
	r.Err.RetryAfter = 1
	return r
}

func paymentFailed(ctx context.Context, s *Service, oc *opCtx, c *ucp.Checkout, content string) *Reply {
	c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: "payment_failed", Path: "$.payment.instruments",
		Content: content, Severity: ucp.SeverityRecoverable})
	return s.checkoutReply(ctx, oc, c, http.StatusOK, ucp.StatusError)
}

// checkMandate verifies ap2.checkout_mandate against the live checkout.
func (s *Service) checkMandate(ctx context.Context, oc *opCtx, c *ucp.Checkout, in *completeInput, rail string, consumed bool) *Reply {
	live, err := s.signedCheckout(oc, c, ucp.StatusSuccess)
	if err != nil {
		return internalError()
	}
	token := ""
	if in.AP2 != nil {
		token = in.AP2.CheckoutMandate
	}
	_, err = s.cfg.MandateVerifier.VerifyMandate(ctx, token, MandateInput{Shop: oc.shop.Slug, Live: live,
		Agent: oc.neg.platform, MerchantKeys: oc.neg.business.keys, HandlerID: rail, Consumed: consumed})
	var me *mandate.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &me):
		c.Messages = append(c.Messages, ucp.Message{Type: "error", Code: string(me.Code), Path: "$.ap2.checkout_mandate",
			Content: me.Reason, Severity: ucp.SeverityRecoverable})
		return s.checkoutReply(ctx, oc, c, http.StatusOK, ucp.StatusError)
	default:
		s.log.ErrorContext(ctx, "shop: mandate verification", "err", err)
		return unavailable("mandate verification is unavailable")
	}
}
