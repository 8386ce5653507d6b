package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

type itemIn struct {
	ID       string `json:"id"`
	Quantity int64  `json:"quantity"`
}

func lineItems(items []itemIn) []ucpclient.LineItemInput {
	out := make([]ucpclient.LineItemInput, 0, len(items))
	for _, it := range items {
		out = append(out, ucpclient.Line(it.ID, it.Quantity))
	}
	return out
}

var (
	cartOut = openObject(obj{"id": obj{"type": "string"}, "line_items": obj{"type": "array"}, "currency": obj{"type": "string"},
		"totals": totalsOut, "messages": messagesOut}, "id")
	checkoutOut = openObject(obj{"id": obj{"type": "string"}, "status": obj{"type": "string"}, "currency": obj{"type": "string"},
		"line_items": obj{"type": "array"}, "totals": totalsOut, "messages": messagesOut,
		"continue_url": obj{"type": "string"}, "fulfillment": obj{"type": "object"}}, "id")
	buyerProp = object(obj{
		"first_name": obj{"type": "string", "maxLength": 200}, "last_name": obj{"type": "string", "maxLength": 200},
		"email": obj{"type": "string", "maxLength": 320}, "phone_number": obj{"type": "string", "maxLength": 50},
	})
	addressProp = object(obj{
		"first_name": obj{"type": "string", "maxLength": 200}, "last_name": obj{"type": "string", "maxLength": 200},
		"street_address": obj{"type": "string", "maxLength": 500}, "extended_address": obj{"type": "string", "maxLength": 500},
		"address_locality": obj{"type": "string", "maxLength": 200, "description": "City."},
		"address_region":   obj{"type": "string", "maxLength": 200, "description": "State or region code, e.g. CO."},
		"postal_code":      obj{"type": "string", "maxLength": 50},
		"address_country":  obj{"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2, e.g. US."},
		"phone_number":     obj{"type": "string", "maxLength": 50},
	}, "address_country")
	storeIDIn = func(idDesc string) obj {
		return object(obj{"store_slug": storeSlugProp, "business_url": businessURLProp, "id": str(idDesc)}, "id")
	}
)

func (b *Bridge) cartTools() {
	b.add(newTool("create_cart", "Create a cart",
		"Create a cart at one store with variant ids and quantities. A cart is a basket, not a purchase: nothing is reserved or charged. "+
			"Returns the cart with its id, lines and totals (minor units). Next: create_checkout with cart_id to buy it. There is no cross-store cart.",
		object(obj{"store_slug": storeSlugProp, "business_url": businessURLProp, "items": itemsProp}, "items"),
		cartOut, annotations("Create a cart", false, false, false, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				where
				Items []itemIn `json:"items"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			tg, err := b.target(ctx, in.where, true)
			if err != nil {
				return nil, err
			}
			cart := &ucpclient.CartInput{LineItems: lineItems(in.Items)}
			var raw json.RawMessage
			if tg.biz != nil {
				raw, err = resourceOf(tg.biz.CreateCart(ctx, cart))
			} else {
				raw, err = b.storeCall(ctx, tg.slug, "create_cart", obj{"cart": cart}, true)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, "Cart created. Next: create_checkout with cart_id."), nil
		})

	b.add(newTool("update_cart", "Replace a cart's lines",
		"Replace every line of a cart (a full replace: resend the lines to keep). Returns the updated cart.",
		object(obj{"store_slug": storeSlugProp, "business_url": businessURLProp, "id": str("Cart id."), "items": itemsProp}, "id", "items"),
		cartOut, annotations("Replace a cart's lines", false, true, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				where
				ID    string   `json:"id"`
				Items []itemIn `json:"items"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			tg, err := b.target(ctx, in.where, true)
			if err != nil {
				return nil, err
			}
			cart := &ucpclient.CartInput{LineItems: lineItems(in.Items)}
			var raw json.RawMessage
			if tg.biz != nil {
				raw, err = resourceOf(tg.biz.UpdateCart(ctx, in.ID, cart))
			} else {
				raw, err = b.storeCall(ctx, tg.slug, "update_cart", obj{"id": in.ID, "cart": cart}, true)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		})

	b.add(newTool("view_cart", "View a cart", "Read a cart: its lines and totals (minor units).",
		storeIDIn("Cart id."), cartOut, annotations("View a cart", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return b.readResource(ctx, req, "get_cart", func(biz *ucpclient.Business, id string) (json.RawMessage, error) {
				return biz.GetCart(ctx, id)
			})
		})
}

// readResource is view_cart, view_checkout and get_order.
func (b *Bridge) readResource(ctx context.Context, req mcp.CallToolRequest, tool string, rest func(*ucpclient.Business, string) (json.RawMessage, error)) (*mcp.CallToolResult, error) {
	var in struct {
		where
		ID string `json:"id"`
	}
	if err := bind(req, &in); err != nil {
		return nil, err
	}
	tg, err := b.target(ctx, in.where, true)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if tg.biz != nil {
		raw, err = resourceOf(rest(tg.biz, in.ID))
	} else {
		raw, err = b.storeCall(ctx, tg.slug, tool, obj{"id": in.ID}, true)
	}
	if err != nil {
		return nil, err
	}
	return rawResult(raw, ""), nil
}

type fulfillmentIn struct {
	SelectedOptionID      string `json:"selected_option_id,omitempty"`
	SelectedDestinationID string `json:"selected_destination_id,omitempty"`
}

type checkoutIn struct {
	where
	ID              string             `json:"id,omitempty"`
	CartID          string             `json:"cart_id,omitempty"`
	Items           []itemIn           `json:"items,omitempty"`
	Buyer           *ucp.Buyer         `json:"buyer,omitempty"`
	ShippingAddress *ucp.PostalAddress `json:"shipping_address,omitempty"`
	Fulfillment     *fulfillmentIn     `json:"fulfillment,omitempty"`
	DiscountCodes   []string           `json:"discount_codes,omitempty"`
}

// checkoutBody is the UCP checkout a create or update sends.
type checkoutBody struct {
	CartID      string                    `json:"cart_id,omitempty"`
	LineItems   []ucpclient.LineItemInput `json:"line_items,omitempty"`
	Buyer       *ucp.Buyer                `json:"buyer,omitempty"`
	Fulfillment map[string]any            `json:"fulfillment,omitempty"`
	Discounts   *ucpclient.DiscountCodes  `json:"discounts,omitempty"`
}

// fulfillment builds the fulfillment member: a shipping destination and
// the flat option/destination choice.
func fulfillmentBody(addr *ucp.PostalAddress, f *fulfillmentIn) map[string]any {
	if addr == nil && f == nil {
		return nil
	}
	out := map[string]any{}
	if addr != nil {
		m := map[string]any{"type": "shipping", "destinations": []any{addr}}
		if f != nil && f.SelectedOptionID != "" {
			m["groups"] = []any{map[string]any{"selected_option_id": f.SelectedOptionID}}
		}
		out["methods"] = []any{m}
	}
	if f != nil {
		if f.SelectedOptionID != "" {
			out["selected_option_id"] = f.SelectedOptionID
		}
		if f.SelectedDestinationID != "" {
			out["selected_destination_id"] = f.SelectedDestinationID
		}
	}
	return out
}

// carryOver fills what an update does not change from the current
// checkout, since a UCP update is a full replace.
func carryOver(body *checkoutBody, cur *ucp.Checkout) {
	if len(body.LineItems) == 0 {
		for _, l := range cur.LineItems {
			if l.ParentID == "" {
				body.LineItems = append(body.LineItems, ucpclient.Line(l.Item.ID, l.Quantity))
			}
		}
	}
	if body.Buyer == nil {
		body.Buyer = cur.Buyer
	}
	if body.Discounts == nil && cur.Discounts != nil && len(cur.Discounts.Codes) > 0 {
		body.Discounts = &ucpclient.DiscountCodes{Codes: cur.Discounts.Codes}
	}
	if body.Fulfillment == nil && cur.Fulfillment != nil && len(cur.Fulfillment.Methods) > 0 {
		var methods []any
		for _, m := range cur.Fulfillment.Methods {
			mm := map[string]any{"type": m.Type}
			if len(m.Destinations) > 0 {
				mm["destinations"] = m.Destinations
			}
			if m.SelectedDestinationID != "" {
				mm["selected_destination_id"] = m.SelectedDestinationID
			}
			var groups []any
			for _, g := range m.Groups {
				if g.SelectedOptionID != "" {
					groups = append(groups, map[string]any{"selected_option_id": g.SelectedOptionID})
				}
			}
			if groups != nil {
				mm["groups"] = groups
			}
			methods = append(methods, mm)
		}
		body.Fulfillment = map[string]any{"methods": methods}
	}
}

// selectFulfillment applies a flat option/destination choice to the
// fulfillment carried over from the checkout (its destinations kept).
func selectFulfillment(body *checkoutBody, f *fulfillmentIn) {
	if body.Fulfillment == nil {
		body.Fulfillment = fulfillmentBody(nil, f)
		return
	}
	methods, _ := body.Fulfillment["methods"].([]any)
	for _, m := range methods {
		mm, ok := m.(map[string]any)
		if !ok {
			continue
		}
		if f.SelectedOptionID != "" {
			mm["groups"] = []any{map[string]any{"selected_option_id": f.SelectedOptionID}}
		}
		if f.SelectedDestinationID != "" {
			mm["selected_destination_id"] = f.SelectedDestinationID
		}
	}
	if len(methods) == 0 {
		body.Fulfillment = fulfillmentBody(nil, f)
	}
}

func checkoutSummary(raw json.RawMessage) string {
	var v struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		ContinueURL string `json:"continue_url"`
	}
	_ = json.Unmarshal(raw, &v)
	total, cur := ucpclient.GrandTotal(raw), ucpclient.CurrencyOf(raw)
	s := fmt.Sprintf("Checkout %s: status %s, total %s %s.", v.ID, v.Status, ucp.FormatMinor(total, cur), cur)
	switch v.Status {
	case "ready_for_complete":
		s += " Next: confirm_purchase (ask the buyer to confirm first)."
	case "incomplete":
		s += " Next: update_checkout with what the messages ask for (e.g. shipping_address)."
	case "requires_escalation":
		s += " The buyer must continue at continue_url."
	}
	return s
}

func (b *Bridge) checkoutTools() {
	inProps := obj{
		"store_slug": storeSlugProp, "business_url": businessURLProp,
		"items": itemsProp, "buyer": buyerProp,
		"shipping_address": addressProp,
		"fulfillment": object(obj{
			"selected_option_id":      obj{"type": "string", "maxLength": 256, "description": "A shipping option id from fulfillment.methods[].groups[].options[]."},
			"selected_destination_id": obj{"type": "string", "maxLength": 256, "description": "A destination id (a saved address, or a pickup location)."},
		}),
		"discount_codes": obj{"type": "array", "maxItems": 10, "items": obj{"type": "string", "minLength": 1, "maxLength": 100}},
	}
	createProps := obj{"cart_id": obj{"type": "string", "maxLength": 256, "description": "Buy this cart (create_cart); or give items."}}
	for k, v := range inProps {
		createProps[k] = v
	}
	b.add(newTool("create_checkout", "Start a checkout",
		"Start a checkout at one store, from a cart (cart_id) or from items directly. Add the buyer and a shipping_address when the store ships. "+
			"Returns the checkout: id, status, totals in minor units, messages saying what is missing. Nothing is charged. "+
			"Next: update_checkout until status is ready_for_complete, then confirm_purchase.",
		object(createProps), checkoutOut, annotations("Start a checkout", false, false, false, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in checkoutIn
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			if in.CartID == "" && len(in.Items) == 0 {
				return nil, badInput("give cart_id (from create_cart) or items")
			}
			tg, err := b.target(ctx, in.where, true)
			if err != nil {
				return nil, err
			}
			body := &checkoutBody{CartID: in.CartID, LineItems: lineItems(in.Items), Buyer: in.Buyer,
				Fulfillment: fulfillmentBody(in.ShippingAddress, in.Fulfillment)}
			if len(in.DiscountCodes) > 0 {
				body.Discounts = &ucpclient.DiscountCodes{Codes: in.DiscountCodes}
			}
			var raw json.RawMessage
			if tg.biz != nil {
				raw, err = resourceOf(tg.biz.CreateCheckout(ctx, body))
			} else {
				raw, err = b.storeCall(ctx, tg.slug, "create_checkout", obj{"checkout": body}, true)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, checkoutSummary(raw)), nil
		})

	updateProps := obj{"id": str("Checkout id.")}
	for k, v := range inProps {
		updateProps[k] = v
	}
	b.add(newTool("update_checkout", "Update a checkout",
		"Change a checkout: items, buyer, shipping_address, the shipping option (fulfillment.selected_option_id) or discount codes. "+
			"Only what you pass changes; the rest is kept. Returns the checkout with new totals (minor units) and status. Nothing is charged.",
		object(updateProps, "id"), checkoutOut, annotations("Update a checkout", false, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in checkoutIn
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			tg, err := b.target(ctx, in.where, true)
			if err != nil {
				return nil, err
			}
			var curRaw json.RawMessage
			if tg.biz != nil {
				curRaw, err = resourceOf(tg.biz.GetCheckout(ctx, in.ID))
			} else {
				curRaw, err = b.storeCall(ctx, tg.slug, "get_checkout", obj{"id": in.ID}, true)
			}
			if err != nil {
				return nil, err
			}
			var cur ucp.Checkout
			if err := json.Unmarshal(curRaw, &cur); err != nil {
				return nil, &ucpclient.ProtocolError{Op: "get_checkout", StatusCode: 200, Content: "the checkout does not decode"}
			}
			body := &checkoutBody{LineItems: lineItems(in.Items), Buyer: in.Buyer}
			if in.ShippingAddress != nil {
				body.Fulfillment = fulfillmentBody(in.ShippingAddress, in.Fulfillment)
			}
			if len(in.DiscountCodes) > 0 {
				body.Discounts = &ucpclient.DiscountCodes{Codes: in.DiscountCodes}
			}
			carryOver(body, &cur)
			if in.ShippingAddress == nil && in.Fulfillment != nil {
				selectFulfillment(body, in.Fulfillment)
			}
			var raw json.RawMessage
			if tg.biz != nil {
				raw, err = resourceOf(tg.biz.UpdateCheckout(ctx, in.ID, body))
			} else {
				raw, err = b.storeCall(ctx, tg.slug, "update_checkout", obj{"id": in.ID, "checkout": body}, true)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, checkoutSummary(raw)), nil
		})

	b.add(newTool("view_checkout", "View a checkout",
		"Read a checkout: status, lines, totals (minor units), fulfillment options, messages. Use it before confirm_purchase to show the buyer the final total.",
		storeIDIn("Checkout id."), checkoutOut, annotations("View a checkout", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := b.readResource(ctx, req, "get_checkout", func(biz *ucpclient.Business, id string) (json.RawMessage, error) {
				return biz.GetCheckout(ctx, id)
			})
			if err == nil {
				if raw, ok := res.StructuredContent.(json.RawMessage); ok {
					res.Content = []mcp.Content{mcp.NewTextContent(checkoutSummary(raw) + "\n" + string(raw))}
				}
			}
			return res, err
		})
}
