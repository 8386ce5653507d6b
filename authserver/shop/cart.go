package shop

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Cart session statuses (carts have no status on the wire).
const (
	cartActive   = "active"
	cartCanceled = "canceled"
)

type cartState struct {
	Cart ucp.Cart `json:"cart"`
	// CheckoutID is the checkout the cart became, if any.
	CheckoutID string `json:"checkout_id,omitempty"`
}

type cartInput struct {
	LineItems   []lineInput       `json:"line_items"`
	Buyer       *ucp.Buyer        `json:"buyer,omitempty"`
	Context     *ucp.Context      `json:"context,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
	Discounts   *discountsInput   `json:"discounts,omitempty"`
}

// priceCart prices a cart: lines, discounts, no shipping or tax (those
// need a checkout).
func (s *Service) priceCart(ctx context.Context, sh *shopInfo, in *cartInput, prev *ucp.Cart) (*ucp.Cart, error) {
	p, err := s.priceLines(ctx, sh, in.LineItems, prev.LineItems)
	if err != nil {
		return nil, err
	}
	c := &ucp.Cart{ID: prev.ID, LineItems: p.lines, Buyer: in.Buyer, Context: in.Context, Signals: in.Signals,
		Attribution: in.Attribution, Currency: sh.Currency, Messages: p.messages, ExpiresAt: prev.ExpiresAt}
	totals := []ucp.Total{{Type: ucp.TotalSubtotal, Amount: p.subtotal}}
	d, err := priceDiscounts(sh.cfg, in.Discounts, p.subtotal)
	if err != nil {
		return nil, err
	}
	c.Discounts = d.applied
	c.Messages = append(c.Messages, d.messages...)
	c.Totals = sumTotals(append(totals, d.totals...))
	return c, nil
}

func (s *Service) putCart(ctx context.Context, oc *opCtx) *Reply {
	var in cartInput
	if rep := decodeInput(oc.Body, &in); rep != nil {
		return rep
	}
	if oc.Op == OpCreateCart {
		now := s.now()
		prev := &ucp.Cart{ID: newID("cart_"), ExpiresAt: expiresAt(now.Add(s.cfg.CheckoutTTL))}
		c, err := s.priceCart(ctx, oc.shop, &in, prev)
		if rep := s.pricingFailure(ctx, oc, err); rep != nil {
			return rep
		}
		doc, _ := json.Marshal(cartState{Cart: *c})
		sess := &store.Session{Kind: store.KindCart, ShopSlug: oc.shop.Slug, ID: c.ID, Owner: oc.owner(), Status: cartActive,
			Doc: doc, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.CheckoutTTL)}
		if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
			return s.storeFailure(ctx, err)
		}
		return s.cartReply(oc, c, http.StatusCreated)
	}
	return carts.update(ctx, s, oc, nil, func(ses *session[cartState]) (*Reply, error) {
		c, err := s.priceCart(ctx, oc.shop, &in, &ses.st.Cart)
		if rep := s.pricingFailure(ctx, oc, err); rep != nil {
			return rep, nil
		}
		ses.st.Cart = *c
		if err := ses.save(ctx, s, cartActive); err != nil {
			return nil, err
		}
		return s.cartReply(oc, c, http.StatusOK), nil
	})
}

func (s *Service) getCart(ctx context.Context, oc *opCtx) *Reply {
	ses, rep := carts.load(ctx, s, oc, oc.ID)
	if rep != nil {
		return rep
	}
	return s.cartReply(oc, &ses.st.Cart, http.StatusOK)
}

func (s *Service) cancelCart(ctx context.Context, oc *opCtx) *Reply {
	return carts.update(ctx, s, oc, nil, func(ses *session[cartState]) (*Reply, error) {
		if err := ses.save(ctx, s, cartCanceled); err != nil {
			return nil, err
		}
		return s.cartReply(oc, &ses.st.Cart, http.StatusOK), nil
	})
}

func (s *Service) cartReply(oc *opCtx, c *ucp.Cart, status int) *Reply {
	out := *c
	out.UCP = oc.neg.envelope(ucp.CapCart, ucp.CapDiscount)
	return payload(status, &out)
}
