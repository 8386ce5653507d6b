package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Limits on what one session may hold: bounded work per request and no
// integer overflow in any total (100 lines x 10,000 units x 10^9 minor
// units stays far below 2^63).
const (
	maxLines    = 100
	maxQuantity = 10_000
	maxCodes    = 10
	// maxInstruments bounds payment.instruments.
	maxInstruments = 10
	// maxPrice bounds a catalog price (10^12 minor units), so no total
	// can overflow: 100 lines x 10^4 units x 10^12 < 2^63.
	maxPrice = 1_000_000_000_000
)

// lineInput is a requested line: only the item id and quantity are read
// (ucp.md §10.2); the rest comes from the catalog.
type lineInput struct {
	ID   string `json:"id,omitempty"`
	Item struct {
		ID string `json:"id"`
	} `json:"item"`
	// Quantity is kept raw: json.Number would also accept "5", and the
	// schema says integer.
	Quantity json.RawMessage `json:"quantity"`
}

// priced is the result of pricing a set of lines.
type priced struct {
	lines    []ucp.LineItem
	messages []ucp.Message
	// takes are the stock reservations completion makes.
	takes map[string]int64
	// subtotal is the items total before discounts.
	subtotal int64
}

// badRequest is a request the UCP request schema (or a bound of this
// store) refuses: a protocol error, 400 (MCP -32602), naming the field.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badField(format string, a ...any) *badRequest { return &badRequest{fmt.Sprintf(format, a...)} }

// envelopeError is a refusal that creates or changes nothing.
type envelopeError struct{ msgs []ucp.Message }

func (e *envelopeError) Error() string { return e.msgs[0].Content }

func refuse(code, path, format string, a ...any) *envelopeError {
	return &envelopeError{[]ucp.Message{{Type: "error", Code: code, Path: path,
		Content: fmt.Sprintf(format, a...), Severity: ucp.SeverityUnrecoverable}}}
}

// priceLines validates the requested lines and prices them from the
// catalog. prev keeps line ids stable across updates.
//
// Lines the request schema refuses are a protocol error (badRequest: 400,
// MCP -32602), like any malformed body: no lines, a line without an item
// id or a quantity, a quantity that is not an integer from 1 (line_item.json
// "minimum": 1) to maxQuantity, more than maxLines lines. What the store
// says about well-formed lines is a business outcome: an item it does not
// sell, or a product id with several variants, refuses the whole request
// (the error envelope: nothing is created or changed); a line short of
// stock is kept, with an out_of_stock error on it.
func (s *Service) priceLines(ctx context.Context, sh *shopInfo, in []lineInput, prev []ucp.LineItem) (*priced, error) {
	if len(in) == 0 {
		return nil, badField(`$.line_items is required and holds at least one line: [{"item":{"id":"<variant id>"},"quantity":1}]`)
	}
	if len(in) > maxLines {
		return nil, badField("$.line_items has more than %d lines", maxLines)
	}
	ids := make([]string, 0, len(in))
	qty := make([]int64, len(in))
	for i, l := range in {
		if l.Item.ID == "" {
			return nil, badField("$.line_items[%d].item.id is required: the id of the variant to buy", i)
		}
		q, ok := quantity(l.Quantity)
		if !ok {
			return nil, badField("$.line_items[%d].quantity is required and must be an integer from 1 to %d", i, maxQuantity)
		}
		qty[i] = q
		ids = append(ids, l.Item.ID)
	}
	variants, err := s.cfg.Store.Variants(ctx, sh.Slug, ids)
	if err != nil {
		return nil, err
	}
	for i, l := range in {
		if _, ok := variants[l.Item.ID]; ok {
			continue
		}
		v, err := s.soleVariant(ctx, sh, i, l.Item.ID)
		if err != nil {
			return nil, err
		}
		// A product id names its only variant: the line is that
		// variant's, as if the request had named it.
		in[i].Item.ID = v.ID
		variants[v.ID] = v
	}
	prevIDs := map[string]bool{}
	next := 0
	for _, p := range prev {
		prevIDs[p.ID] = true
		if n, err := strconv.Atoi(strings.TrimPrefix(p.ID, "li_")); err == nil && n > next {
			next = n
		}
	}
	out := &priced{takes: map[string]int64{}}
	used := map[string]bool{}
	want := map[string]int64{}
	for i, l := range in {
		v := variants[l.Item.ID]
		id := l.ID
		if id == "" {
			// Lines sent without ids keep the id of the previous line
			// selling the same item, so a full-replace update does not
			// renumber the cart.
			if j := slices.IndexFunc(prev, func(p ucp.LineItem) bool { return p.Item.ID == v.ID && !used[p.ID] }); j >= 0 {
				id = prev[j].ID
			}
		}
		if id == "" || !prevIDs[id] || used[id] {
			next++
			id = "li_" + strconv.Itoa(next)
		}
		used[id] = true
		amount := v.Price * qty[i] // bounded: see maxPrice
		if v.Price < 0 || v.Price > maxPrice {
			return nil, refuse("invalid_request", fmt.Sprintf("$.line_items[%d]", i), "line total out of range")
		}
		out.lines = append(out.lines, ucp.LineItem{
			ID:       id,
			Item:     ucp.Item{ID: v.ID, Title: v.Title, Price: v.Price, ImageURL: v.ImageURL},
			Quantity: qty[i],
			Totals:   []ucp.Total{{Type: ucp.TotalSubtotal, Amount: amount}, {Type: ucp.TotalTotal, Amount: amount}},
		})
		out.subtotal += amount
		want[v.ID] += qty[i]
		if v.Stock >= 0 {
			out.takes[v.ID] += qty[i]
		}
	}
	// Stock is judged per variant over all lines naming it.
	for i, l := range out.lines {
		v := variants[l.Item.ID]
		if v.Stock >= 0 && want[v.ID] > v.Stock {
			content := fmt.Sprintf("%s is out of stock", v.Title)
			if v.Stock > 0 {
				content = fmt.Sprintf("only %d of %s left", v.Stock, v.Title)
			}
			out.messages = append(out.messages, ucp.Message{Type: "error", Code: "out_of_stock",
				Path: fmt.Sprintf("$.line_items[%d]", i), Content: content, Severity: ucp.SeverityRecoverable})
		}
	}
	return out, nil
}

// quantity reads a line's quantity: a JSON integer (2.0 is one, as JSON
// Schema counts) from 1 to maxQuantity.
func quantity(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false // missing, null, a string, an object...
	}
	if q, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return q, q >= 1 && q <= maxQuantity
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < 1 || f > maxQuantity {
		return 0, false
	}
	return int64(f), true
}

// soleVariant resolves a line's item id that names no variant: a product
// id names the product's only variant. A product with several variants,
// or an id that names nothing, refuses the request with what to send
// instead (line i).
func (s *Service) soleVariant(ctx context.Context, sh *shopInfo, i int, id string) (*store.Variant, error) {
	path := fmt.Sprintf("$.line_items[%d].item.id", i)
	p, err := s.cfg.Store.Product(ctx, sh.Slug, id)
	if isNotFound(err) {
		return nil, refuse("item_unavailable", path, "item %q is not sold by %s: line items name a variant id, as search_catalog and get_product list them", id, sh.Name)
	} else if err != nil {
		return nil, err
	}
	rows, err := s.cfg.Store.ProductVariants(ctx, sh.Slug, p.ID)
	if err != nil {
		return nil, err
	}
	if len(rows) == 1 {
		return rows[0], nil
	}
	if len(rows) == 0 {
		return nil, refuse("item_unavailable", path, "%q (%s) has no variant for sale at %s", id, p.Title, sh.Name)
	}
	return nil, variantRequired(p, rows, path)
}

// maxListedVariants bounds the variants a variant_required message lists.
const maxListedVariants = 20

// variantRequired refuses a product id with several variants: it names
// the product and lists its variants, each id with its option values, for
// the caller to pick one.
func variantRequired(p *store.Product, rows []*store.Variant, path string) *envelopeError {
	var doc ucp.Product
	opts := map[string][]ucp.SelectedOption{}
	if json.Unmarshal(p.Doc, &doc) == nil {
		for _, v := range doc.Variants {
			opts[v.ID] = v.Options
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q (%s) is a product with %d variants; a line item names one variant: pick one of ", p.ID, p.Title, len(rows))
	for k, v := range rows {
		if k == maxListedVariants {
			fmt.Fprintf(&b, "; and %d more (get_product lists them all)", len(rows)-k)
			break
		}
		if k > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.ID)
		var vals []string
		for _, o := range opts[v.ID] {
			vals = append(vals, o.Name+": "+o.Label)
		}
		if v.Stock == 0 {
			vals = append(vals, "out of stock")
		}
		if len(vals) > 0 {
			b.WriteString(" (" + strings.Join(vals, ", ") + ")")
		}
	}
	b.WriteString(`, and send it as item.id`)
	return &envelopeError{[]ucp.Message{{Type: "error", Code: "variant_required", Path: path, Content: b.String(),
		Severity: ucp.SeverityUnrecoverable}}}
}

// discountsInput is the discounts member of a cart or checkout request.
type discountsInput struct {
	Codes []string `json:"codes"`
}

// discounted is the outcome of a request's discount codes.
type discounted struct {
	codes    []string // as sent (nil: none), kept for re-pricing
	applied  *ucp.Discounts
	totals   []ucp.Total // a discount entry per applied code
	messages []ucp.Message
}

// priceDiscounts bounds the codes a cart or checkout request sent (in nil:
// none) and applies them to the items subtotal.
func priceDiscounts(cfg Settings, in *discountsInput, subtotal int64) (*discounted, error) {
	var codes []string
	if in != nil {
		if len(in.Codes) > maxCodes {
			return nil, badField("$.discounts.codes has more than %d codes", maxCodes)
		}
		codes = in.Codes
	}
	d, totals, msgs := applyDiscounts(cfg, codes, subtotal)
	return &discounted{codes: codes, applied: d, totals: totals, messages: msgs}, nil
}

// applyDiscounts resolves discount codes against the items subtotal.
// Codes are case-insensitive; unknown or repeated codes get a warning and
// are kept in codes so the platform sees what it sent.
func applyDiscounts(cfg Settings, codes []string, subtotal int64) (*ucp.Discounts, []ucp.Total, []ucp.Message) {
	if len(codes) == 0 {
		return nil, nil, nil
	}
	d := &ucp.Discounts{Codes: codes}
	var totals []ucp.Total
	var msgs []ucp.Message
	left := subtotal
	seen := map[string]bool{}
	for i, raw := range codes {
		code := strings.ToUpper(strings.TrimSpace(raw))
		path := fmt.Sprintf("$.discounts.codes[%d]", i)
		rule, ok := cfg.Discounts[code]
		switch {
		case seen[code]:
			msgs = append(msgs, ucp.Message{Type: "warning", Code: "discount_code_already_applied", Path: path,
				Content: fmt.Sprintf("code %q is already applied", raw)})
			continue
		case !ok:
			msgs = append(msgs, ucp.Message{Type: "warning", Code: "discount_code_invalid", Path: path,
				Content: fmt.Sprintf("code %q is not valid at this store", raw)})
			continue
		}
		seen[code] = true
		amt := rule.Amount
		if rule.PercentBP > 0 {
			amt = mulDivRound(subtotal, rule.PercentBP, 10_000)
		}
		amt = min(amt, left)
		left -= amt
		d.Applied = append(d.Applied, ucp.AppliedDiscount{Code: raw, Title: rule.Title, Amount: amt, Method: "across"})
		totals = append(totals, ucp.Total{Type: ucp.TotalDiscount, DisplayText: rule.Title, Amount: -amt})
	}
	return d, totals, msgs
}

// mulDivRound is a*b/c rounded half up, for a, b >= 0 and c > 0, exact
// for any int64 inputs (the product is 128-bit).
func mulDivRound(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	lo, carry := bits.Add64(lo, uint64(c/2), 0)
	hi += carry
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// sumTotals appends the total entry: the sum of every other entry.
func sumTotals(entries []ucp.Total) []ucp.Total {
	var sum int64
	for _, t := range entries {
		sum += t.Amount
	}
	return append(entries, ucp.Total{Type: ucp.TotalTotal, Amount: sum})
}

func (s *Service) pricingFailure(ctx context.Context, oc *opCtx, err error) *Reply {
	var ee *envelopeError
	var br *badRequest
	switch {
	case err == nil:
		return nil
	case errors.As(err, &br):
		return invalidRequest("%s", br.msg)
	case errors.As(err, &ee):
		return oc.errorEnvelope(http.StatusOK, ee.msgs...)
	default:
		return s.storeFailure(ctx, err)
	}
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
	d, err := priceDiscounts(sh.cfg, in.Discounts, p.subtotal)
	if err != nil {
		return nil, err
	}
	st.Codes = d.codes
	c.Discounts = d.applied
	totals = append(totals, d.totals...)
	c.Messages = append(c.Messages, d.messages...)
	itemsAfterDiscount := p.subtotal
	for _, t := range d.totals {
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
	// The coupon is credit against what is owed, after tax.
	if totals, err = s.applyCoupon(ctx, oc, in, st, c, totals, p.subtotal); err != nil {
		return nil, err
	}
	c.Totals = sumTotals(totals)
	if in.Payment != nil && len(in.Payment.Instruments) > maxInstruments {
		return nil, badField("$.payment.instruments has more than %d instruments", maxInstruments)
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
