package shop

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// placeOrder completes the session and stores the order, taking stock, in
// one transaction. A lost race (the session changed, or another order took
// the last units first) comes back as the store's error: the caller reloads
// and judges again, and the re-pricing reports any shortage.
func (s *Service) placeOrder(ctx context.Context, oc *opCtx, ses *session[checkoutState], c *ucp.Checkout) (*Reply, error) {
	now := s.now()
	orderID := newID("ord_")
	permalink := s.storeURL(oc.shop.Slug) + "/orders/" + orderID
	o := ucp.Order{ID: orderID, CheckoutID: c.ID, PermalinkURL: permalink, Currency: c.Currency, Totals: c.Totals,
		Attribution: c.Attribution, Fulfillment: ucp.OrderFulfillment{Expectations: []ucp.Expectation{}, Events: []ucp.FulfillmentEvent{}}}
	var all []ucp.LineQuantity
	takes := map[string]int64{}
	for _, l := range c.LineItems {
		o.LineItems = append(o.LineItems, ucp.OrderLineItem{ID: l.ID, Item: l.Item, Totals: l.Totals, Status: "processing",
			Quantity: ucp.OrderLineQuantity{Original: l.Quantity, Total: l.Quantity}})
		all = append(all, ucp.LineQuantity{ID: l.ID, Quantity: l.Quantity})
		takes[l.Item.ID] += l.Quantity
	}
	if f := c.Fulfillment; f != nil && len(f.Methods) == 1 && len(f.Methods[0].Groups) == 1 {
		m, g := f.Methods[0], f.Methods[0].Groups[0]
		if i := slices.IndexFunc(m.Destinations, func(d ucp.Destination) bool { return d.ID == m.SelectedDestinationID }); i >= 0 {
			d := m.Destinations[i]
			dest := d.PostalAddress
			desc := ""
			if j := slices.IndexFunc(g.Options, func(o ucp.FulfillmentOption) bool { return o.ID == g.SelectedOptionID }); j >= 0 {
				desc = g.Options[j].Title
			}
			if m.Type == "pickup" {
				// The pickup location: its address under its id, and
				// its name in the description.
				if d.Address != nil {
					dest = *d.Address
				}
				dest.ID = d.ID
				desc += " at " + d.Name
			}
			o.Fulfillment.Expectations = append(o.Fulfillment.Expectations, ucp.Expectation{ID: "exp_1", LineItems: all,
				MethodType: cmpOr(m.Type, "shipping"), Destination: &dest, Description: desc})
		}
	}
	doc, err := json.Marshal(o)
	if err != nil {
		return internalError(), nil
	}
	c.Status = ucp.CheckoutCompleted
	c.Order = &ucp.OrderConfirmation{ID: orderID, PermalinkURL: permalink}
	c.ContinueURL = ""
	c.Messages = nil
	ses.st.Checkout = *c
	sdoc, err := json.Marshal(ses.st)
	if err != nil {
		return internalError(), nil
	}
	sess := ses.row
	sess.Doc, sess.Status, sess.UpdatedAt = sdoc, c.Status, now
	row := &store.Order{ShopSlug: oc.shop.Slug, ID: orderID, CheckoutID: c.ID, Owner: sess.Owner, HoldID: oc.holdID, Redeem: oc.redeem,
		BuyerType: oc.BuyerType, Doc: doc, CreatedAt: now, WebhookURLs: s.orderWebhookURLs(ctx, oc, ses.st.Webhook)}
	if p := oc.Principal; p != nil {
		row.ClientID, row.BuyerID = p.ClientID, p.BuyerID
		if p.BuyerID == "" && strings.Contains(sess.Owner, "|buyer:") {
			// The platform completing a checkout its buyer claimed: the
			// order is still the buyer's, who must find it.
			row.BuyerID = ses.st.BuyerID
		}
	}
	if oc.ownerOverride != "" {
		// The hosted page runs with no principal: the order is placed
		// for the client and buyer that created the checkout.
		row.ClientID, row.BuyerID = ses.st.ClientID, ses.st.BuyerID
	}
	var list []store.StockTake
	for _, l := range c.LineItems {
		if q, ok := takes[l.Item.ID]; ok {
			list = append(list, store.StockTake{VariantID: l.Item.ID, Quantity: q})
			delete(takes, l.Item.ID)
		}
	}
	if err := s.cfg.Store.CompleteSession(ctx, sess, row, list); err != nil {
		return nil, err
	}
	return s.checkoutReply(ctx, oc, c, http.StatusOK), nil
}

func (s *Service) getOrder(ctx context.Context, oc *opCtx) *Reply {
	o, err := s.cfg.Store.Order(ctx, oc.shop.Slug, oc.ID)
	if err == nil && !oc.mayReadOrder(o) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		m := notFound("order")
		m.Path = "$.id"
		return oc.errorEnvelope(http.StatusOK, m)
	}
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	var out ucp.Order
	if err := json.Unmarshal(o.Doc, &out); err != nil {
		return internalError()
	}
	out.UCP = oc.neg.envelope(ucp.CapOrder)
	return payload(http.StatusOK, &out)
}

// mayReadOrder asks the guard whether the caller may read order o; the
// hosted page acts for the order's own session owner.
func (oc *opCtx) mayReadOrder(o *store.Order) bool {
	if oc.ownerOverride != "" {
		return o.Owner == oc.ownerOverride
	}
	return oc.Principal.MayReadOrder(guard.OrderParty{Owner: o.Owner, ClientID: o.ClientID, BuyerID: o.BuyerID, Store: o.ShopSlug})
}
