package bridge

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/ucpbridge/ucpbridge/ucpclient"
)

var (
	orderOut     = openObject(obj{"id": obj{"type": "string"}, "line_items": obj{"type": "array"}, "totals": totalsOut, "currency": obj{"type": "string"}}, "id")
	locationsOut = openObject(obj{"locations": obj{"type": "array", "items": obj{"type": "object"}}, "pagination": obj{"type": "object"}, "messages": messagesOut}, "locations")
	geoProp      = object(obj{
		"center": object(obj{"latitude": obj{"type": "number", "minimum": -90, "maximum": 90}, "longitude": obj{"type": "number", "minimum": -180, "maximum": 180}}, "latitude", "longitude"),
		"max":    obj{"type": "number", "exclusiveMinimum": 0, "maximum": 20000, "description": "Kilometres."},
	}, "center")
)

func (b *Bridge) orderTools() {
	b.add(newTool("get_order", "Get a store order",
		"Read an order placed at a store (store-scoped, with the platform's credential): lines, fulfilment status, totals in minor units. "+
			"For the buyer's own orders across stores use get_my_order.",
		storeIDIn("Order id."), orderOut, annotations("Get a store order", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return b.readResource(ctx, req, "get_order", func(biz *ucpclient.Business, id string) (json.RawMessage, error) {
				return biz.GetOrder(ctx, id)
			})
		})

	b.add(newTool("get_my_order", "Get one of the buyer's orders",
		"The connected buyer's own order, at any store: items, totals, address, tracking. Needs the buyer's connected account.",
		object(obj{"order_id": str("The order id (or order reference) from confirm_purchase or list_my_orders.")}, "order_id"),
		openObject(obj{}), annotations("Get one of the buyer's orders", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return b.proxyAccountTool(ctx, "get_my_order", req.GetArguments())
		})
}

func (b *Bridge) locationTools() {
	b.add(newTool("search_locations", "Find a store's shops",
		"Find a store's physical shops (pickup points): by text, near a point (distance.center + max km), with pagination. "+
			"A location id can be used as fulfillment.selected_destination_id for pickup in update_checkout.",
		object(obj{"store_slug": storeSlugProp, "query": obj{"type": "string", "maxLength": 200}, "distance": geoProp, "pagination": paginationProp}, "store_slug"),
		locationsOut, annotations("Find a store's shops", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				StoreSlug  string                    `json:"store_slug"`
				Query      string                    `json:"query,omitempty"`
				Distance   *ucpclient.DistanceFilter `json:"distance,omitempty"`
				Pagination *paginationIn             `json:"pagination,omitempty"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			loc := obj{}
			if in.Query != "" {
				loc["query"] = in.Query
			}
			if in.Distance != nil {
				loc["distance"] = in.Distance
			}
			if in.Pagination != nil {
				loc["pagination"] = in.Pagination
			}
			raw, err := b.storeCall(ctx, in.StoreSlug, "search_locations", obj{"location": loc}, false)
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		})
	b.add(newTool("lookup_locations", "Get a store's shops by id",
		"Read a store's shops by location id (opening hours, address, amenities).",
		object(obj{"store_slug": storeSlugProp, "ids": obj{"type": "array", "minItems": 1, "maxItems": 50, "items": obj{"type": "string", "minLength": 1, "maxLength": 256}}}, "store_slug", "ids"),
		locationsOut, annotations("Get a store's shops by id", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				StoreSlug string   `json:"store_slug"`
				IDs       []string `json:"ids"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			raw, err := b.storeCall(ctx, in.StoreSlug, "lookup_locations", obj{"location": obj{"ids": in.IDs}}, false)
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		})
}
