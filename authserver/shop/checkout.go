package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// checkoutState is what a checkout session stores: the checkout as served
// (without the per-response ucp and ap2 members) plus private state.
type checkoutState struct {
	Checkout ucp.Checkout `json:"checkout"`
	// Token authorises the hosted continue page (continue_url).
	Token string `json:"token"`
	// Codes are the discount codes as sent, re-applied on each pricing.
	Codes []string `json:"codes,omitempty"`
	// Input is the last create/update request (credentials removed), kept
	// so completion can re-price against the live catalog.
	Input json.RawMessage `json:"input"`
	// Agent is the platform profile the checkout was created under; later
	// calls must name the same one (ucp.md §1.2 identity binding).
	Agent string `json:"agent,omitempty"`
	// AP2 records that the AP2 mandates extension was negotiated at
	// creation: the session is locked to it, whatever later requests
	// negotiate (ap2-mandates.md).
	AP2 bool `json:"ap2,omitempty"`
	// Webhook is where the platform asked order events to go, kept for
	// completions that carry no platform profile (the hosted page).
	Webhook string `json:"webhook,omitempty"`
	// ClientID and BuyerID are the client and buyer of the credential
	// that created the checkout, recorded on orders the hosted page
	// places (it runs with no credential of its own).
	ClientID string `json:"client_id,omitempty"`
	BuyerID  string `json:"buyer_id,omitempty"`
	// Intent is the prepared crypto payment (crypto.go).
	Intent *cryptoIntent `json:"intent,omitempty"`
	// Coupon is the buyer's coupon credit the pricing applied (coupons.go).
	Coupon *couponState `json:"coupon,omitempty"`
}

// checkoutInput is what create and update read. Unknown and response-only
// members are ignored (ucp.md §10.2).
type checkoutInput struct {
	LineItems   []lineInput       `json:"line_items"`
	CartID      string            `json:"cart_id,omitempty"`
	Buyer       *ucp.Buyer        `json:"buyer,omitempty"`
	Context     *ucp.Context      `json:"context,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
	Payment     *ucp.Payment      `json:"payment,omitempty"`
	Fulfillment *fulfillmentInput `json:"fulfillment,omitempty"`
	// ShippingAddress is the Artos SDK's flat destination.
	ShippingAddress *artosAddress   `json:"shipping_address,omitempty"`
	Discounts       *discountsInput `json:"discounts,omitempty"`
	AP2             *ucp.AP2        `json:"ap2,omitempty"`
}

// putCheckout creates (no id) or fully replaces a checkout session.
func (s *Service) putCheckout(ctx context.Context, oc *opCtx) *Reply {
	var in checkoutInput
	if rep := decodeInput(oc.Body, &in); rep != nil {
		return rep
	}
	if oc.Op == OpCreateCheckout {
		return s.createCheckout(ctx, oc, &in)
	}
	return checkouts.update(ctx, s, oc, nil, func(ses *session[checkoutState]) (*Reply, error) {
		st := ses.st
		if terminal(st.Checkout.Status) {
			return oc.notModifiable(&st.Checkout), nil
		}
		in := in
		if partial(oc.Body) {
			// An update without line_items (the Artos SDK's coupon attach
			// sends only context) replaces the members it names, each
			// whole, and keeps the others as stored. Whole members: a
			// context without eligibility drops the coupon claim, a new
			// buyer keeps nothing of the old one.
			var merged, body map[string]json.RawMessage
			if err := json.Unmarshal(st.Input, &merged); err != nil || merged == nil {
				return internalError(), nil
			}
			if err := json.Unmarshal(oc.Body, &body); err != nil {
				return invalidRequest("malformed request body"), nil
			}
			// Go's decoder matches member names without regard to case,
			// this merge by exact name: "Context" would slip past the
			// stored "context" and the older one would win. Names are
			// UCP's, exactly.
			for k := range body {
				if m, ok := inputMembers[strings.ToLower(k)]; ok && m != k {
					return invalidRequest("member %.64q: UCP member names are case-sensitive; send %q", k, m), nil
				}
			}
			maps.Copy(merged, body)
			b, err := json.Marshal(merged)
			if err != nil {
				return internalError(), nil
			}
			in = checkoutInput{}
			if rep := decodeInput(b, &in); rep != nil {
				return rep, nil
			}
		}
		c, err := s.priceCheckout(ctx, oc, &in, st)
		if rep := s.pricingFailure(ctx, oc, err); rep != nil {
			return rep, nil
		}
		st.Checkout = *c
		st.Input = storedInput(&in)
		if err := ses.save(ctx, s, st.Checkout.Status); err != nil {
			return nil, err
		}
		return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusOK), nil
	})
}

func (s *Service) createCheckout(ctx context.Context, oc *opCtx, in *checkoutInput) *Reply {
	var cart *session[cartState]
	if in.CartID != "" {
		// cart.md: the cart's contents (lines, buyer, context) initialise
		// the checkout and win over the payload; a cart already converted
		// into a checkout still open gets that checkout back.
		var rep *Reply
		if cart, rep = carts.load(ctx, s, oc, in.CartID); rep != nil {
			return rep
		}
		if id := cart.st.CheckoutID; id != "" {
			if prev, rep := checkouts.load(ctx, s, oc, id); rep == nil && !terminal(prev.st.Checkout.Status) {
				return s.checkoutReply(ctx, oc, &prev.st.Checkout, http.StatusOK)
			}
		}
		in.LineItems = nil
		for _, l := range cart.st.Cart.LineItems {
			li := lineInput{Quantity: json.RawMessage(fmt.Sprint(l.Quantity))}
			li.Item.ID = l.Item.ID
			in.LineItems = append(in.LineItems, li)
		}
		if cart.st.Cart.Buyer != nil {
			in.Buyer = cart.st.Cart.Buyer
		}
		if cart.st.Cart.Context != nil {
			in.Context = cart.st.Cart.Context
		}
	}
	now := s.now()
	st := &checkoutState{Token: newID(""), Agent: oc.Agent, AP2: oc.neg.has(ucp.CapAP2Mandate) && oc.neg.platform != nil,
		Webhook: s.webhookURL(ctx, oc)}
	if p := oc.Principal; p != nil {
		st.ClientID, st.BuyerID = p.ClientID, p.BuyerID
	}
	st.Checkout.ID = newID("chk_")
	st.Checkout.ExpiresAt = expiresAt(now.Add(s.cfg.CheckoutTTL))
	c, err := s.priceCheckout(ctx, oc, in, st)
	if rep := s.pricingFailure(ctx, oc, err); rep != nil {
		return rep
	}
	st.Checkout = *c
	st.Input = storedInput(in)
	doc, err := json.Marshal(st)
	if err != nil {
		return internalError()
	}
	sess := &store.Session{Kind: store.KindCheckout, ShopSlug: oc.shop.Slug, ID: st.Checkout.ID, Owner: oc.owner(),
		Status: st.Checkout.Status, Doc: doc, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.CheckoutTTL)}
	if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
		return s.storeFailure(ctx, err)
	}
	if cart != nil {
		cart.st.CheckoutID = st.Checkout.ID
		if err := cart.save(ctx, s, cartActive); err != nil {
			// The checkout stands; a later conversion of the cart makes
			// another one.
			s.log.WarnContext(ctx, "shop: link cart to checkout", "cart", in.CartID, "err", err)
		}
	}
	return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusCreated)
}

func (s *Service) links(slug string) []ucp.Link {
	base := s.storeURL(slug) + "/policies/"
	return []ucp.Link{
		{Type: "privacy_policy", URL: base + "privacy", Title: "Privacy policy"},
		{Type: "terms_of_service", URL: base + "terms", Title: "Terms of service"},
		{Type: "refund_policy", URL: base + "refunds", Title: "Refund policy"},
	}
}

func (s *Service) continueURL(slug, id, token string) string {
	return s.storeURL(slug) + "/checkout-sessions/" + id + "/continue?token=" + token
}

func terminal(status string) bool {
	return status == ucp.CheckoutCompleted || status == ucp.CheckoutCanceled
}

func (s *Service) getCheckout(ctx context.Context, oc *opCtx) *Reply {
	ses, rep := checkouts.load(ctx, s, oc, oc.ID)
	if rep != nil {
		return rep
	}
	return s.checkoutReply(ctx, oc, &ses.st.Checkout, http.StatusOK)
}

// notModifiable refuses a change to a completed or canceled checkout: 409
// on REST (a client error, as checkers expect), a result on MCP.
func (oc *opCtx) notModifiable(c *ucp.Checkout) *Reply {
	return oc.errorEnvelope(http.StatusConflict, ucp.Message{Type: "error", Code: "checkout_" + c.Status,
		Content: "the checkout session is " + c.Status + " and can no longer change", Severity: ucp.SeverityUnrecoverable})
}

func (s *Service) cancelCheckout(ctx context.Context, oc *opCtx) *Reply {
	return checkouts.update(ctx, s, oc, nil, func(ses *session[checkoutState]) (*Reply, error) {
		c := &ses.st.Checkout
		if terminal(c.Status) {
			return oc.notModifiable(c), nil
		}
		c.Status = ucp.CheckoutCanceled
		c.ContinueURL = ""
		c.Messages = nil
		if err := ses.save(ctx, s, c.Status); err != nil {
			return nil, err
		}
		return s.checkoutReply(ctx, oc, c, http.StatusOK), nil
	})
}

// checkoutReply serialises a checkout with its envelope and signs it:
// ap2.merchant_authorization covers JCS(checkout minus ap2), envelope
// included. Its ucp.status is "success", whatever its messages say: a
// body carrying the checkout is the payload, and "error" is for bodies
// that carry none (checkout.md, Error Handling; oc.errorEnvelope).
func (s *Service) checkoutReply(ctx context.Context, oc *opCtx, c *ucp.Checkout, status int) *Reply {
	b, err := s.signedCheckout(oc, c)
	if err != nil {
		s.log.ErrorContext(ctx, "shop: sign checkout", "err", err)
		return internalError()
	}
	return &Reply{Status: status, Body: b}
}

func (s *Service) signedCheckout(oc *opCtx, c *ucp.Checkout) ([]byte, error) {
	out := *c
	out.UCP = oc.neg.envelope(checkoutCaps...)
	out.UCP.PaymentHandlers = oc.neg.paymentHandlers()
	unsigned, err := json.Marshal(&out)
	if err != nil {
		return nil, err
	}
	sig, err := mandate.SignMerchantAuthorization(unsigned, oc.neg.business.key)
	if err != nil {
		return nil, err
	}
	// ap2 is the struct's last member and was absent: appending it to the
	// object equals marshalling again, for half the work.
	tail, err := json.Marshal(sig)
	if err != nil || len(unsigned) < 2 || unsigned[len(unsigned)-1] != '}' {
		return nil, errors.New("shop: unexpected checkout encoding")
	}
	body := make([]byte, 0, len(unsigned)+len(tail)+40)
	body = append(body, unsigned[:len(unsigned)-1]...)
	body = append(body, `,"ap2":{"merchant_authorization":`...)
	body = append(body, tail...)
	return append(body, "}}"...), nil
}

// storedInput is the request kept for re-pricing, without payment
// credentials: those are used at complete and never stored.
func storedInput(in *checkoutInput) json.RawMessage {
	c := *in
	if in.Payment != nil {
		p := *in.Payment
		p.Instruments = slices.Clone(p.Instruments)
		for i := range p.Instruments {
			p.Instruments[i].Credential = nil
		}
		c.Payment = &p
	}
	c.AP2 = nil
	b, _ := json.Marshal(&c)
	return b
}

// partial reports whether an update body leaves out line_items: UCP
// 2026-04-08 updates replace the whole checkout, but a body without any
// lines cannot mean "empty the basket" (a checkout needs lines), so it is
// read as the older partial shape some clients send.
func partial(body json.RawMessage) bool {
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		return false
	}
	_, ok := members["line_items"]
	return !ok
}

// inputMembers maps checkoutInput's member names, lowercased, to their
// exact spelling.
var inputMembers = func() map[string]string {
	out := map[string]string{}
	t := reflect.TypeFor[checkoutInput]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[strings.ToLower(name)] = name
		}
	}
	return out
}()
