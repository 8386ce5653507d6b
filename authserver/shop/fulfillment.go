package shop

import (
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
