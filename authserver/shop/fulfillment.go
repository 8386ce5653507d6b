package shop

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

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

// fulfillment resolves the fulfillment method: shipping (a destination
// and an option; a store that ships needs a destination before the
// checkout is ready, and the cheapest option is selected unless the
// platform chose another) or pickup at one of the store's locations
// (pickup). Either way every line goes by the one method. A store with
// locations also says which lines each location could hand over
// (available_methods).
func (s *Service) fulfillment(sh *shopInfo, in *checkoutInput, lines []ucp.LineItem, items int64) (*ucp.Fulfillment, *ucp.Total, []ucp.Message, error) {
	f, total, msgs, err := s.fulfillmentMethod(sh, in, lines, items)
	if err != nil {
		return nil, nil, nil, err
	}
	if avail := pickupAvailability(sh, lines); len(avail) > 0 {
		if f == nil {
			f = &ucp.Fulfillment{}
		}
		f.AvailableMethods = avail
	}
	return f, total, msgs, nil
}

func (s *Service) fulfillmentMethod(sh *shopInfo, in *checkoutInput, lines []ucp.LineItem, items int64) (*ucp.Fulfillment, *ucp.Total, []ucp.Message, error) {
	var dests []ucp.PostalAddress
	var selDest, selOpt string
	pickup := false
	if f := in.Fulfillment; f != nil {
		if len(f.Methods) > 1 {
			return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods", "one fulfillment method is supported (shipping or pickup, for every line)")
		}
		if len(f.Methods) == 1 {
			m := f.Methods[0]
			switch m.Type {
			case "", "shipping":
			case "pickup":
				if len(sh.cfg.Locations) == 0 {
					return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods[0].type", "this store has no shops to pick up from: only shipping is offered")
				}
				pickup = true
			default:
				return nil, nil, nil, refuse("invalid_request", "$.fulfillment.methods[0].type", "the method type is shipping or pickup")
			}
			dests, selDest = m.Destinations, m.SelectedDestinationID
			if len(m.Groups) > 0 {
				selOpt = m.Groups[0].SelectedOptionID
			}
		}
		selOpt = cmpOr(selOpt, f.SelectedOptionID)
		selDest = cmpOr(selDest, f.SelectedDestinationID)
		// The flat selection (Artos) naming one of the store's
		// locations picks up there, as the UCP location draft has it:
		// a location id in selected_destination_id means pickup.
		if len(f.Methods) == 0 && slices.ContainsFunc(sh.cfg.Locations, func(l StoreLocation) bool { return l.ID == selDest }) {
			pickup = true
		}
	}
	if pickup {
		// A pickup method's destinations are the store's (response-only):
		// the platform selects one by id.
		f, total, msgs := pickupMethod(sh, selDest, selOpt, lines)
		return f, total, msgs, nil
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
	shipTo := make([]ucp.Destination, len(dests))
	for i := range dests {
		if dests[i].ID == "" {
			dests[i].ID = fmt.Sprintf("dest_%d", i+1)
		}
		shipTo[i] = ucp.Destination{PostalAddress: dests[i]}
	}
	if selDest == "" {
		selDest = dests[0].ID
	}
	di := slices.IndexFunc(dests, func(d ucp.PostalAddress) bool { return d.ID == selDest })
	method := ucp.FulfillmentMethod{ID: "fm_1", Type: "shipping", LineItemIDs: lineIDs, Destinations: shipTo}
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

// defaultPickup is the pickup option of a store whose settings name none.
var defaultPickup = []ShippingOption{{ID: "in_store", Title: "In-store pickup"}}

// pickupMethod is the pickup method for lines: its destinations are the
// store's locations that carry every line's item, its group the store's
// pickup options. With one such location it is selected; with several
// the platform picks one (select_destination until it does). The
// fulfillment total names the location.
func pickupMethod(sh *shopInfo, selDest, selOpt string, lines []ucp.LineItem) (*ucp.Fulfillment, *ucp.Total, []ucp.Message) {
	lineIDs := make([]string, len(lines))
	for i, l := range lines {
		lineIDs[i] = l.ID
	}
	method := ucp.FulfillmentMethod{ID: "fm_1", Type: "pickup", LineItemIDs: lineIDs}
	f := &ucp.Fulfillment{Methods: []ucp.FulfillmentMethod{method}}
	fm := &f.Methods[0]
	var names []string
	for i := range sh.cfg.Locations {
		l := &sh.cfg.Locations[i]
		if !slices.ContainsFunc(lines, func(li ucp.LineItem) bool { return !l.carries(li.Item.ID) }) {
			fm.Destinations = append(fm.Destinations, l.summary())
			names = append(names, l.ID+" ("+l.Name+")")
		}
	}
	fail := func(code, path, format string, a ...any) (*ucp.Fulfillment, *ucp.Total, []ucp.Message) {
		return f, nil, []ucp.Message{{Type: "error", Code: code, Path: path, Content: fmt.Sprintf(format, a...), Severity: ucp.SeverityRecoverable}}
	}
	if len(fm.Destinations) == 0 {
		return fail("pickup_unavailable", "$.fulfillment.methods[0]",
			"no shop carries every item of this checkout; choose shipping, or pick up fewer items (available_methods says which shop has which)")
	}
	group := ucp.FulfillmentGroup{ID: "fg_1", LineItemIDs: lineIDs}
	opts := sh.cfg.Pickup
	if len(opts) == 0 {
		opts = defaultPickup
	}
	for _, o := range opts {
		group.Options = append(group.Options, ucp.FulfillmentOption{ID: o.ID, Title: o.Title, Description: o.Description,
			Totals: []ucp.Total{{Type: ucp.TotalSubtotal, Amount: o.Amount}, {Type: ucp.TotalTotal, Amount: o.Amount}}})
	}
	oi := 0
	if selOpt != "" {
		if oi = slices.IndexFunc(group.Options, func(o ucp.FulfillmentOption) bool { return o.ID == selOpt }); oi < 0 {
			fm.Groups = []ucp.FulfillmentGroup{group}
			return fail("invalid_option", "$.fulfillment.methods[0].groups[0].selected_option_id", "unknown pickup option %.64q", selOpt)
		}
	}
	group.SelectedOptionID = group.Options[oi].ID
	fm.Groups = []ucp.FulfillmentGroup{group}
	const destPath = "$.fulfillment.methods[0].selected_destination_id"
	if selDest == "" {
		if len(fm.Destinations) > 1 {
			return fail("select_destination", destPath, "choose where to pick up: %s", strings.Join(names, ", "))
		}
		selDest = fm.Destinations[0].ID
	}
	di := slices.IndexFunc(fm.Destinations, func(d ucp.Destination) bool { return d.ID == selDest })
	if di < 0 {
		if li := slices.IndexFunc(sh.cfg.Locations, func(l StoreLocation) bool { return l.ID == selDest }); li >= 0 {
			l := &sh.cfg.Locations[li]
			var missing []string
			for _, li := range lines {
				if !l.carries(li.Item.ID) {
					missing = append(missing, li.Item.Title)
				}
			}
			return fail("pickup_unavailable", destPath, "%s does not carry %s; pick up at %s", l.Name, joinAnd(missing), strings.Join(names, ", "))
		}
		return fail("invalid_destination", destPath, "no shop %.64q; pick up at %s", selDest, strings.Join(names, ", "))
	}
	fm.SelectedDestinationID = selDest
	return f, &ucp.Total{Type: ucp.TotalFulfillment, DisplayText: group.Options[oi].Title + " at " + fm.Destinations[di].Name,
		Amount: group.Options[oi].Totals[0].Amount}, nil
}

// pickupAvailability is the fulfillment extension's available_methods
// for a store with locations: per location that carries any of the
// lines, which ones it could hand over, with a sentence a platform can
// use as it stands.
func pickupAvailability(sh *shopInfo, lines []ucp.LineItem) []json.RawMessage {
	var out []json.RawMessage
	for i := range sh.cfg.Locations {
		l := &sh.cfg.Locations[i]
		var ids, titles []string
		for _, li := range lines {
			if l.carries(li.Item.ID) {
				ids, titles = append(ids, li.ID), append(titles, li.Item.Title)
			}
		}
		if len(ids) == 0 {
			continue
		}
		what := joinAnd(titles) + " can be picked up at " + l.Name + "."
		if len(ids) == len(lines) && len(lines) > 1 {
			what = "Every item can be picked up at " + l.Name + "."
		}
		b, err := json.Marshal(struct {
			Type          string   `json:"type"`
			LineItemIDs   []string `json:"line_item_ids"`
			FulfillableOn string   `json:"fulfillable_on"`
			Description   string   `json:"description"`
		}{"pickup", ids, "now", what})
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

// joinAnd joins words as a sentence lists them: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
