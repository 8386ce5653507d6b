package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// PostgreSQL text refuses NUL and bytes that are not UTF-8 (SQLSTATE
// 22021): such a request would fail as a storage error (503, logged as
// one) instead of the malformed request it is. Do refuses it up front,
// so no operation, on any store, ever sees such text.

// cleanJSON reports whether a JSON body can only decode to storable text:
// it is UTF-8 (encoding/json would silently turn other bytes into U+FFFD;
// refusing them keeps one rule for the whole request) and no string or key
// holds a \u0000 escape. A raw NUL is left to the decoder, which refuses
// it as a syntax error.
func cleanJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u0000`))
		if j < 0 {
			return true
		}
		j += i
		// The backslash escapes only if it is not itself escaped: an odd
		// run of backslashes ending here.
		n := 0
		for k := j - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return false
		}
		i = j + 1
	}
}

// refuseBadBytes is Do's first check on what a binding passed in.
func (s *Service) refuseBadBytes(ctx context.Context, req *Request) *Reply {
	var what string
	switch {
	case !store.ValidText(req.Shop):
		what = "the store slug"
	case !store.ValidText(req.ID):
		what = "the id"
	case !store.ValidText(req.Agent):
		what = "the platform profile URL"
	case !cleanJSON(req.Body):
		what = "the request body"
	default:
		return nil
	}
	s.log.DebugContext(ctx, "shop: refused text that is not storable", "op", req.Op, "where", what)
	return invalidRequest("%s holds a NUL character or bytes that are not UTF-8", what)
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

// Bounds on the free-form input a session stores. Sessions are kept for
// SessionRetention after they end, so without bounds anyone could store
// a megabyte per call for a month (20 calls once grew a database by
// 50 MB). Every string a create, update or complete request can make the
// store keep has a bound here; a request over any of them is refused as a
// whole (400 invalid_request naming the field) before anything is stored.
//
// The largest checkout within these bounds stores a session document of
// about 190 KB (TestFieldBoundsLargestSession measures it), most of it the
// 100 lines, 10 destinations and 10 payment instruments pricing allows,
// kept both as priced and as the input re-priced on completion.
const (
	// signals and attribution: at most maxFreeFormKeys members, keys of
	// at most maxFreeFormKey bytes, each value at most maxFreeFormValue
	// bytes as JSON and the whole object at most maxFreeForm bytes as
	// JSON (what the store keeps).
	maxFreeFormKeys  = 32
	maxFreeFormKey   = 64
	maxFreeFormValue = 512
	maxFreeForm      = 4096
	// maxIDLen bounds ids a caller names: items (as the catalog cursor
	// does), lines, carts, destinations, options, instruments and
	// handlers.
	maxIDLen = 255
	// maxTextLen bounds names, e-mail addresses, address lines and
	// context hints.
	maxTextLen = 256
	// maxShortLen bounds codes: countries, postal codes, phone numbers,
	// languages, currencies, types, discount codes.
	maxShortLen = 64
	// maxEligibility bounds context.eligibility.
	maxEligibility = 16
	// maxGroups bounds fulfillment groups per method (one is read).
	maxGroups = 10
	// maxDisplay bounds a payment instrument's display object as JSON.
	maxDisplay = 1024
)

// fieldError is input over a bound: the JSON path of the field and what
// is wrong with it.
type fieldError struct {
	Path   string
	Reason string
}

func (e *fieldError) Error() string { return e.Path + " " + e.Reason }

// boundedInput is a request object a session is built from.
type boundedInput interface {
	checkBounds() *fieldError
}

// decodeInput decodes a create, update or complete body and checks its
// bounds, so no stored field is ever larger than its bound.
func decodeInput(body json.RawMessage, v boundedInput) *Reply {
	if rep := decodeBody(body, v); rep != nil {
		return rep
	}
	if err := v.checkBounds(); err != nil {
		return invalidRequest("%s", err.Error())
	}
	return nil
}

// bounds collects the first field over its bound.
type bounds struct{ err *fieldError }

func (b *bounds) fail(path, format string, a ...any) {
	if b.err == nil {
		b.err = &fieldError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
}

func (b *bounds) text(path, s string, max int) {
	if len(s) > max {
		b.fail(path, "is longer than %d bytes", max)
	}
}

// freeForm bounds signals and attribution. Keys are checked in order, so
// the error names the same key on every try.
func freeForm[V any](b *bounds, path string, m map[string]V) {
	if b.err != nil || m == nil {
		return
	}
	if len(m) > maxFreeFormKeys {
		b.fail(path, "has more than %d members", maxFreeFormKeys)
		return
	}
	keys := slices.Sorted(maps.Keys(m))
	for _, k := range keys {
		if len(k) > maxFreeFormKey {
			b.fail(path, "has a member name longer than %d bytes", maxFreeFormKey)
			return
		}
	}
	for _, k := range keys {
		v, err := json.Marshal(m[k])
		if err != nil || len(v) > maxFreeFormValue {
			b.fail(fmt.Sprintf("%s[%q]", path, k), "is larger than %d bytes as JSON", maxFreeFormValue)
			return
		}
	}
	if all, err := json.Marshal(m); err != nil || len(all) > maxFreeForm {
		b.fail(path, "is larger than %d bytes as JSON", maxFreeForm)
	}
}

// lines checks what line_item.json requires of each line (an item id, an
// integer quantity from 1) and this store's bounds, with priceLines'
// words: a body is refused the same way wherever it is read (the MCP
// binding reads it before Do, to answer a schema violation as REST does).
// No lines at all is priceLines' to refuse: a cart conversion sends none.
func (b *bounds) lines(ls []lineInput) {
	if len(ls) > maxLines {
		b.fail("$.line_items", "has more than %d lines", maxLines)
	}
	for i, l := range ls {
		b.text(fmt.Sprintf("$.line_items[%d].id", i), l.ID, maxIDLen)
		b.text(fmt.Sprintf("$.line_items[%d].item.id", i), l.Item.ID, maxIDLen)
		if l.Item.ID == "" {
			b.fail(fmt.Sprintf("$.line_items[%d].item.id", i), "is required: the id of the variant to buy")
		}
		if _, ok := quantity(l.Quantity); !ok {
			b.fail(fmt.Sprintf("$.line_items[%d].quantity", i), "is required and must be an integer from 1 to %d", maxQuantity)
		}
	}
}

func (b *bounds) buyer(by *ucp.Buyer) {
	if by == nil {
		return
	}
	b.text("$.buyer.first_name", by.FirstName, maxTextLen)
	b.text("$.buyer.last_name", by.LastName, maxTextLen)
	b.text("$.buyer.email", by.Email, maxTextLen)
	b.text("$.buyer.phone_number", by.PhoneNumber, maxShortLen)
}

func (b *bounds) context(c *ucp.Context) {
	if c == nil {
		return
	}
	b.text("$.context.address_country", c.AddressCountry, maxShortLen)
	b.text("$.context.address_region", c.AddressRegion, maxTextLen)
	b.text("$.context.postal_code", c.PostalCode, maxShortLen)
	b.text("$.context.intent", c.Intent, maxTextLen)
	b.text("$.context.language", c.Language, maxShortLen)
	b.text("$.context.currency", c.Currency, maxShortLen)
	if len(c.Eligibility) > maxEligibility {
		b.fail("$.context.eligibility", "has more than %d entries", maxEligibility)
	}
	for i, e := range c.Eligibility {
		b.text(fmt.Sprintf("$.context.eligibility[%d]", i), e, maxShortLen)
	}
}

func (b *bounds) address(path string, a *ucp.PostalAddress) {
	if a == nil {
		return
	}
	b.text(path+".id", a.ID, maxIDLen)
	b.text(path+".street_address", a.StreetAddress, maxTextLen)
	b.text(path+".extended_address", a.ExtendedAddress, maxTextLen)
	b.text(path+".address_locality", a.AddressLocality, maxTextLen)
	b.text(path+".address_region", a.AddressRegion, maxTextLen)
	b.text(path+".address_country", a.AddressCountry, maxShortLen)
	b.text(path+".postal_code", a.PostalCode, maxShortLen)
	b.text(path+".first_name", a.FirstName, maxTextLen)
	b.text(path+".last_name", a.LastName, maxTextLen)
	b.text(path+".phone_number", a.PhoneNumber, maxShortLen)
}

// payment bounds what is kept of the instruments; credentials are never
// stored (storedInput drops them).
func (b *bounds) payment(p *ucp.Payment) {
	if p == nil {
		return
	}
	for i, in := range p.Instruments {
		path := fmt.Sprintf("$.payment.instruments[%d]", i)
		b.text(path+".id", in.ID, maxIDLen)
		b.text(path+".handler_id", in.HandlerID, maxIDLen)
		b.text(path+".type", in.Type, maxShortLen)
		if len(in.Display) > maxDisplay {
			b.fail(path+".display", "is larger than %d bytes as JSON", maxDisplay)
		}
		b.address(path+".billing_address", in.BillingAddress)
	}
}

func (b *bounds) fulfillment(f *fulfillmentInput) {
	if f == nil {
		return
	}
	for i, m := range f.Methods {
		path := fmt.Sprintf("$.fulfillment.methods[%d]", i)
		b.text(path+".type", m.Type, maxShortLen)
		b.text(path+".selected_destination_id", m.SelectedDestinationID, maxIDLen)
		for j := range m.Destinations {
			b.address(fmt.Sprintf("%s.destinations[%d]", path, j), &m.Destinations[j])
		}
		if len(m.Groups) > maxGroups {
			b.fail(path+".groups", "has more than %d entries", maxGroups)
		}
		for j, g := range m.Groups {
			b.text(fmt.Sprintf("%s.groups[%d].selected_option_id", path, j), g.SelectedOptionID, maxIDLen)
		}
	}
	b.text("$.fulfillment.selected_option_id", f.SelectedOptionID, maxIDLen)
	b.text("$.fulfillment.selected_destination_id", f.SelectedDestinationID, maxIDLen)
}

func (b *bounds) discounts(d *discountsInput) {
	if d == nil {
		return
	}
	for i, c := range d.Codes {
		b.text(fmt.Sprintf("$.discounts.codes[%d]", i), c, maxShortLen)
	}
}

func (in *checkoutInput) checkBounds() *fieldError {
	var b bounds
	b.lines(in.LineItems)
	b.text("$.cart_id", in.CartID, maxIDLen)
	b.buyer(in.Buyer)
	b.context(in.Context)
	freeForm(&b, "$.signals", in.Signals)
	freeForm(&b, "$.attribution", in.Attribution)
	b.payment(in.Payment)
	b.fulfillment(in.Fulfillment)
	if a := in.ShippingAddress; a != nil {
		b.address("$.shipping_address", &a.PostalAddress)
		b.text("$.shipping_address.country", a.Country, maxShortLen)
	}
	b.discounts(in.Discounts)
	return b.err
}

func (in *cartInput) checkBounds() *fieldError {
	var b bounds
	b.lines(in.LineItems)
	b.buyer(in.Buyer)
	b.context(in.Context)
	freeForm(&b, "$.signals", in.Signals)
	freeForm(&b, "$.attribution", in.Attribution)
	b.discounts(in.Discounts)
	return b.err
}

func (in *completeInput) checkBounds() *fieldError {
	var b bounds
	b.payment(in.Payment)
	freeForm(&b, "$.signals", in.Signals)
	freeForm(&b, "$.attribution", in.Attribution)
	return b.err
}
