package shop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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
	ShippingAddress *artosAddress `json:"shipping_address,omitempty"`
	Discounts       *struct {
		Codes []string `json:"codes"`
	} `json:"discounts,omitempty"`
	AP2 *ucp.AP2 `json:"ap2,omitempty"`
}

// artosAddress is a postal address that also takes the Artos SDK's
// `country` (its README's shape) for address_country.
type artosAddress struct {
	ucp.PostalAddress
	Country string `json:"country,omitempty"`
}

type fulfillmentInput struct {
	Methods []struct {
		Type                  string              `json:"type"`
		Destinations          []ucp.PostalAddress `json:"destinations"`
		SelectedDestinationID string              `json:"selected_destination_id"`
		Groups                []struct {
			SelectedOptionID string `json:"selected_option_id"`
		} `json:"groups"`
	} `json:"methods"`
	// Artos' flat selection.
	SelectedOptionID      string `json:"selected_option_id"`
	SelectedDestinationID string `json:"selected_destination_id"`
}

func decodeBody(body json.RawMessage, v any) *Reply {
	if len(body) == 0 {
		return invalidRequest("a request body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return invalidRequest("malformed request body: %s", jsonErrText(err))
	}
	if dec.More() {
		return invalidRequest("malformed request body: trailing data")
	}
	return nil
}

// jsonErrText names the offending field without echoing input.
func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s", "$."+te.Field, te.Type.String())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	return "not a JSON object"
}

func newID(prefix string) string {
	b := make([]byte, 15)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// putCheckout creates (no id) or fully replaces a checkout session.
func (s *Service) putCheckout(ctx context.Context, oc *opCtx) *Reply {
	var in checkoutInput
	if rep := decodeBody(oc.Body, &in); rep != nil {
		return rep
	}
	if oc.Op == OpCreateCheckout {
		return s.createCheckout(ctx, oc, &in)
	}
	for attempt := 0; ; attempt++ {
		sess, st, rep := s.loadCheckout(ctx, oc)
		if rep != nil {
			return rep
		}
		if terminal(st.Checkout.Status) {
			return oc.notModifiable(&st.Checkout)
		}
		c, err := s.priceCheckout(ctx, oc, &in, st)
		if rep := s.pricingFailure(ctx, oc, err); rep != nil {
			return rep
		}
		st.Checkout = *c
		st.Input = storedInput(&in)
		if err := s.saveCheckout(ctx, sess, st); errors.Is(err, store.ErrStale) && attempt < 3 {
			continue
		} else if err != nil {
			return s.storeFailure(ctx, err)
		}
		return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusOK, ucp.StatusSuccess)
	}
}

func (s *Service) createCheckout(ctx context.Context, oc *opCtx, in *checkoutInput) *Reply {
	var cartSess *store.Session
	var cart *cartState
	if in.CartID != "" {
		// cart.md: the cart's contents (lines, buyer, context) initialise
		// the checkout and win over the payload; a cart already converted
		// into a checkout still open gets that checkout back.
		var rep *Reply
		if cartSess, cart, rep = s.loadCart(ctx, oc, in.CartID); rep != nil {
			return rep
		}
		if cart.CheckoutID != "" {
			prev := *oc
			prev.Request = &Request{Op: OpGetCheckout, Shop: oc.Shop, ID: cart.CheckoutID, Agent: oc.Agent, Principal: oc.Principal}
			if _, st, rep := s.loadCheckout(ctx, &prev); rep == nil && !terminal(st.Checkout.Status) {
				return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusOK, ucp.StatusSuccess)
			}
		}
		in.LineItems = nil
		for _, l := range cart.Cart.LineItems {
			li := lineInput{Quantity: json.RawMessage(fmt.Sprint(l.Quantity))}
			li.Item.ID = l.Item.ID
			in.LineItems = append(in.LineItems, li)
		}
		if cart.Cart.Buyer != nil {
			in.Buyer = cart.Cart.Buyer
		}
		if cart.Cart.Context != nil {
			in.Context = cart.Cart.Context
		}
	}
	now := s.now()
	st := &checkoutState{Token: newID(""), Agent: oc.Agent, AP2: oc.neg.has(ucp.CapAP2Mandate) && oc.neg.platform != nil,
		Webhook: s.webhookURL(oc.neg)}
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
		cart.CheckoutID = st.Checkout.ID
		if err := s.saveCart(ctx, cartSess, cart, cartActive); err != nil {
			// The checkout stands; a later conversion of the cart makes
			// another one.
			s.log.WarnContext(ctx, "shop: link cart to checkout", "cart", in.CartID, "err", err)
		}
	}
	return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusCreated, ucp.StatusSuccess)
}

func (s *Service) pricingFailure(ctx context.Context, oc *opCtx, err error) *Reply {
	var ee *envelopeError
	var br *badRequest
	switch {
	case err == nil:
		return nil
	case errors.As(err, &br):
		return invalidRequest("malformed request body: %s", br.msg)
	case errors.As(err, &ee):
		return oc.errorEnvelope(http.StatusOK, ee.msgs...)
	default:
		return s.storeFailure(ctx, err)
	}
}

func (s *Service) storeFailure(ctx context.Context, err error) *Reply {
	s.log.ErrorContext(ctx, "shop: storage", "err", err)
	return unavailable("the store is temporarily unavailable")
}

// priceCheckout builds the checkout for input in over the state st holds
// (id, expiry, previous lines). It is deterministic for one catalog state.
func (s *Service) priceCheckout(ctx context.Context, oc *opCtx, in *checkoutInput, st *checkoutState) (*ucp.Checkout, error) {
	sh := oc.shop
	p, err := s.priceLines(ctx, sh, in.LineItems, st.Checkout.LineItems)
	if err != nil {
		return nil, err
	}
	c := &ucp.Checkout{
		ID:          st.Checkout.ID,
		LineItems:   p.lines,
		Buyer:       in.Buyer,
		Context:     in.Context,
		Signals:     in.Signals,
		Attribution: in.Attribution,
		Currency:    sh.Currency,
		Links:       s.links(sh.Slug),
		Messages:    p.messages,
		ExpiresAt:   st.Checkout.ExpiresAt,
	}
	totals := []ucp.Total{{Type: ucp.TotalSubtotal, Amount: p.subtotal}}
	var codes []string
	if in.Discounts != nil {
		if len(in.Discounts.Codes) > maxCodes {
			return nil, refuse("invalid_request", "$.discounts.codes", "at most %d discount codes", maxCodes)
		}
		codes = in.Discounts.Codes
	}
	st.Codes = codes
	d, dt, dm := applyDiscounts(sh.cfg, codes, p.subtotal)
	c.Discounts = d
	totals = append(totals, dt...)
	c.Messages = append(c.Messages, dm...)
	itemsAfterDiscount := p.subtotal
	for _, t := range dt {
		itemsAfterDiscount += t.Amount
	}
	f, ship, fm, err := s.fulfillment(sh, in, c.LineItems, itemsAfterDiscount)
	if err != nil {
		return nil, err
	}
	c.Fulfillment = f
	c.Messages = append(c.Messages, fm...)
	if ship != nil {
		totals = append(totals, *ship)
	}
	if sh.cfg.TaxBP > 0 {
		base := itemsAfterDiscount
		if ship != nil {
			base += ship.Amount
		}
		label := sh.cfg.TaxLabel
		if label == "" {
			label = "Tax"
		}
		totals = append(totals, ucp.Total{Type: ucp.TotalTax, DisplayText: label, Amount: mulDivRound(base, sh.cfg.TaxBP, 10_000)})
	}
	c.Totals = sumTotals(totals)
	if in.Payment != nil && len(in.Payment.Instruments) > maxInstruments {
		return nil, refuse("invalid_request", "$.payment.instruments", "at most %d payment instruments", maxInstruments)
	}
	pay, pm := s.payment(sh, in.Payment)
	c.Payment = pay
	c.Messages = append(c.Messages, pm...)
	c.Status = ucp.CheckoutReadyForComplete
	if hasError(c.Messages) {
		c.Status = ucp.CheckoutIncomplete
	} else if len(sh.cfg.Rails) > 1 && selectedInstrument(pay) == nil {
		c.Status = ucp.CheckoutIncomplete
		c.Messages = append(c.Messages, ucp.Message{Type: "info", Code: "payment_selection_required", Path: "$.payment.instruments",
			Content: "choose a payment handler: " + strings.Join(sh.cfg.Rails, ", ")})
	}
	c.ContinueURL = s.continueURL(sh.Slug, c.ID, st.Token)
	return c, nil
}

func hasError(msgs []ucp.Message) bool {
	return slices.ContainsFunc(msgs, func(m ucp.Message) bool { return m.Type == "error" })
}

// fulfillment resolves the shipping destination and option. A store that
// ships needs a destination before the checkout is ready; the cheapest
// option is selected unless the platform chose another.
func (s *Service) fulfillment(sh *shopInfo, in *checkoutInput, lines []ucp.LineItem, items int64) (*ucp.Fulfillment, *ucp.Total, []ucp.Message, error) {
	var dests []ucp.PostalAddress
	var selDest, selOpt string
	if f := in.Fulfillment; f != nil {
		if len(f.Methods) > 1 {
			return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods", "one fulfillment method is supported")
		}
		if len(f.Methods) == 1 {
			m := f.Methods[0]
			if m.Type != "" && m.Type != "shipping" {
				return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods[0].type", "only shipping is offered")
			}
			dests, selDest = m.Destinations, m.SelectedDestinationID
			if len(m.Groups) > 0 {
				selOpt = m.Groups[0].SelectedOptionID
			}
		}
		selOpt = cmpOr(selOpt, f.SelectedOptionID)
		selDest = cmpOr(selDest, f.SelectedDestinationID)
	}
	if len(dests) == 0 && in.ShippingAddress != nil {
		a := in.ShippingAddress.PostalAddress
		a.AddressCountry = cmpOr(a.AddressCountry, in.ShippingAddress.Country)
		dests = []ucp.PostalAddress{a}
	}
	if len(dests) > 10 {
		return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods[0].destinations", "at most 10 destinations")
	}
	var msgs []ucp.Message
	if len(dests) == 0 {
		if sh.cfg.RequireShipping {
			msgs = append(msgs, ucp.Message{Type: "error", Code: "field_required", Path: "$.fulfillment",
				Content: "a shipping destination is required", Severity: ucp.SeverityRecoverable})
		}
		return nil, nil, msgs, nil
	}
	lineIDs := make([]string, len(lines))
	for i, l := range lines {
		lineIDs[i] = l.ID
	}
	for i := range dests {
		if dests[i].ID == "" {
			dests[i].ID = fmt.Sprintf("dest_%d", i+1)
		}
	}
	if selDest == "" {
		selDest = dests[0].ID
	}
	di := slices.IndexFunc(dests, func(d ucp.PostalAddress) bool { return d.ID == selDest })
	method := ucp.FulfillmentMethod{ID: "fm_1", Type: "shipping", LineItemIDs: lineIDs, Destinations: dests}
	f := &ucp.Fulfillment{Methods: []ucp.FulfillmentMethod{method}}
	if di < 0 {
		msgs = append(msgs, ucp.Message{Type: "error", Code: "invalid_destination", Path: "$.fulfillment.methods[0].selected_destination_id",
			Content: "the selected destination is not among the destinations", Severity: ucp.SeverityRecoverable})
		return f, nil, msgs, nil
	}
	f.Methods[0].SelectedDestinationID = selDest
	country := strings.ToUpper(dests[di].AddressCountry)
	if len(sh.cfg.ShipTo) > 0 && !slices.Contains(sh.cfg.ShipTo, country) {
		msgs = append(msgs, ucp.Message{Type: "error", Code: "address_undeliverable",
			Path:    fmt.Sprintf("$.fulfillment.methods[0].destinations[%d].address_country", di),
			Content: "this store ships to " + strings.Join(sh.cfg.ShipTo, ", "), Severity: ucp.SeverityRecoverable})
		return f, nil, msgs, nil
	}
	group := ucp.FulfillmentGroup{ID: "fg_1", LineItemIDs: lineIDs}
	for _, o := range sh.cfg.Shipping {
		amt := o.Amount
		if o.FreeOver > 0 && items >= o.FreeOver {
			amt = 0
		}
		group.Options = append(group.Options, ucp.FulfillmentOption{ID: o.ID, Title: o.Title, Description: o.Description,
			Totals: []ucp.Total{{Type: ucp.TotalSubtotal, Amount: amt}, {Type: ucp.TotalTotal, Amount: amt}}})
	}
	if len(group.Options) == 0 {
		f.Methods[0].Groups = []ucp.FulfillmentGroup{group}
		return f, nil, msgs, nil
	}
	oi := 0
	if selOpt != "" {
		oi = slices.IndexFunc(group.Options, func(o ucp.FulfillmentOption) bool { return o.ID == selOpt })
		if oi < 0 {
			msgs = append(msgs, ucp.Message{Type: "error", Code: "invalid_option", Path: "$.fulfillment.methods[0].groups[0].selected_option_id",
				Content: "unknown shipping option " + selOpt, Severity: ucp.SeverityRecoverable})
			f.Methods[0].Groups = []ucp.FulfillmentGroup{group}
			return f, nil, msgs, nil
		}
	}
	group.SelectedOptionID = group.Options[oi].ID
	f.Methods[0].Groups = []ucp.FulfillmentGroup{group}
	amt := group.Options[oi].Totals[0].Amount
	return f, &ucp.Total{Type: ucp.TotalFulfillment, DisplayText: "Shipping", Amount: amt}, msgs, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// payment keeps the instruments the platform listed, minus credentials
// (never echoed), and checks they name this store's handlers.
func (s *Service) payment(sh *shopInfo, in *ucp.Payment) (*ucp.Payment, []ucp.Message) {
	if in == nil || len(in.Instruments) == 0 {
		return nil, nil
	}
	var msgs []ucp.Message
	out := &ucp.Payment{}
	for i, inst := range in.Instruments {
		inst.Credential = nil
		if !slices.Contains(sh.cfg.Rails, inst.HandlerID) {
			msgs = append(msgs, ucp.Message{Type: "error", Code: "payment_handler_invalid",
				Path:    fmt.Sprintf("$.payment.instruments[%d].handler_id", i),
				Content: fmt.Sprintf("handler %q is not offered; use one of %s", inst.HandlerID, strings.Join(sh.cfg.Rails, ", ")), Severity: ucp.SeverityRecoverable})
		}
		if inst.ID == "" {
			inst.ID = fmt.Sprintf("instr_%d", i+1)
		}
		out.Instruments = append(out.Instruments, inst)
	}
	return out, msgs
}

// selectedInstrument is the instrument marked selected, or the only one.
func selectedInstrument(p *ucp.Payment) *ucp.PaymentInstrument {
	if p == nil {
		return nil
	}
	for i := range p.Instruments {
		if p.Instruments[i].Selected {
			return &p.Instruments[i]
		}
	}
	if len(p.Instruments) == 1 {
		return &p.Instruments[0]
	}
	return nil
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

// loadCheckout reads a session the caller owns. Another owner's session
// is reported as not found, so ids cannot be probed. An expired session
// is canceled on the way.
func (s *Service) loadCheckout(ctx context.Context, oc *opCtx) (*store.Session, *checkoutState, *Reply) {
	sess, err := s.cfg.Store.Session(ctx, store.KindCheckout, oc.shop.Slug, oc.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.Owner != oc.owner()) {
		m := notFound("checkout session")
		m.Path = "$.id"
		return nil, nil, oc.errorEnvelope(http.StatusOK, m)
	}
	if err != nil {
		return nil, nil, s.storeFailure(ctx, err)
	}
	st := &checkoutState{}
	if err := json.Unmarshal(sess.Doc, st); err != nil {
		s.log.ErrorContext(ctx, "shop: corrupt checkout document", "id", sess.ID, "err", err)
		return nil, nil, internalError()
	}
	if oc.ownerOverride == "" && st.Agent != "" && oc.Agent != st.Agent {
		return nil, nil, protoErr(http.StatusForbidden, rpcAuth, "profile_not_trusted",
			"this checkout session belongs to another platform profile (UCP-Agent)")
	}
	if !terminal(st.Checkout.Status) && !s.now().Before(sess.ExpiresAt) {
		st.Checkout.Status = ucp.CheckoutCanceled
		st.Checkout.ContinueURL = ""
		st.Checkout.Messages = []ucp.Message{{Type: "info", Code: "expired", Content: "the checkout session expired"}}
		if err := s.saveCheckout(ctx, sess, st); err != nil && !errors.Is(err, store.ErrStale) {
			return nil, nil, s.storeFailure(ctx, err)
		}
	}
	return sess, st, nil
}

func (s *Service) saveCheckout(ctx context.Context, sess *store.Session, st *checkoutState) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sess.Doc, sess.Status, sess.UpdatedAt = doc, st.Checkout.Status, s.now()
	return s.cfg.Store.UpdateSession(ctx, sess)
}

func (s *Service) getCheckout(ctx context.Context, oc *opCtx) *Reply {
	_, st, rep := s.loadCheckout(ctx, oc)
	if rep != nil {
		return rep
	}
	return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusOK, ucp.StatusSuccess)
}

// notModifiable refuses a change to a completed or canceled checkout: 409
// on REST (a client error, as checkers expect), a result on MCP.
func (oc *opCtx) notModifiable(c *ucp.Checkout) *Reply {
	return oc.errorEnvelope(http.StatusConflict, ucp.Message{Type: "error", Code: "checkout_" + c.Status,
		Content: "the checkout session is " + c.Status + " and can no longer change", Severity: ucp.SeverityUnrecoverable})
}

func (s *Service) cancelCheckout(ctx context.Context, oc *opCtx) *Reply {
	for attempt := 0; ; attempt++ {
		sess, st, rep := s.loadCheckout(ctx, oc)
		if rep != nil {
			return rep
		}
		if terminal(st.Checkout.Status) {
			return oc.notModifiable(&st.Checkout)
		}
		st.Checkout.Status = ucp.CheckoutCanceled
		st.Checkout.ContinueURL = ""
		st.Checkout.Messages = nil
		if err := s.saveCheckout(ctx, sess, st); errors.Is(err, store.ErrStale) && attempt < 3 {
			continue
		} else if err != nil {
			return s.storeFailure(ctx, err)
		}
		return s.checkoutReply(ctx, oc, &st.Checkout, http.StatusOK, ucp.StatusSuccess)
	}
}

// checkoutReply serialises a checkout with its envelope and signs it:
// ap2.merchant_authorization covers JCS(checkout minus ap2), envelope
// included.
func (s *Service) checkoutReply(ctx context.Context, oc *opCtx, c *ucp.Checkout, status int, ucpStatus string) *Reply {
	b, err := s.signedCheckout(oc, c, ucpStatus)
	if err != nil {
		s.log.ErrorContext(ctx, "shop: sign checkout", "err", err)
		return internalError()
	}
	return &Reply{Status: status, Body: b}
}

func (s *Service) signedCheckout(oc *opCtx, c *ucp.Checkout, ucpStatus string) ([]byte, error) {
	out := *c
	out.UCP = oc.neg.envelope(checkoutCaps...)
	out.UCP.Status = ucpStatus
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

// expiresAt renders a session expiry.
func expiresAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }

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
