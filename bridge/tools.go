package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// handlerFunc is a tool body: a returned error becomes a tool error
// (isError with a ToolError), never a JSON-RPC error.
type handlerFunc func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error)

func (b *Bridge) handle(name string, h handlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := h(ctx, req)
		if err != nil {
			return b.errorResult(ctx, name, err), nil
		}
		return res, nil
	}
}

func bind(req mcp.CallToolRequest, v any) error {
	if err := req.BindArguments(v); err != nil {
		return badInput("the arguments do not match the tool's input schema: " + err.Error())
	}
	return nil
}

func (b *Bridge) add(t mcp.Tool, h handlerFunc) {
	b.static[t.Name] = true
	b.srv.AddTool(t, b.handle(t.Name, h))
}

func (b *Bridge) registerTools() {
	b.catalogTools()
	b.cartTools()
	b.checkoutTools()
	b.confirmTool()
	b.orderTools()
	b.locationTools()
	b.statusTools()
}

// ---- where a store-scoped call goes ----

// target is a store on the platform (slug) or a business found by its
// profile URL (biz).
type target struct {
	slug string
	biz  *ucpclient.Business
}

type where struct {
	StoreSlug   string `json:"store_slug,omitempty"`
	BusinessURL string `json:"business_url,omitempty"`
}

// target resolves store_slug / business_url; required: one must be set.
func (b *Bridge) target(ctx context.Context, w where, required bool) (*target, error) {
	switch {
	case w.StoreSlug != "" && w.BusinessURL != "":
		return nil, badInput("give store_slug or business_url, not both")
	case w.BusinessURL != "":
		biz, err := b.client(ctx).Business(ctx, w.BusinessURL, &ucpclient.BusinessOptions{Fetcher: b.fetcher,
			AllowInsecureLoopback: b.cfg.AllowInsecureLoopback})
		if err != nil {
			return nil, err
		}
		return &target{biz: biz}, nil
	case w.StoreSlug != "":
		return &target{slug: w.StoreSlug}, nil
	case required:
		return nil, badInput("store_slug is required (or business_url for a business outside the platform); search_products results name the store of each product")
	}
	return &target{}, nil
}

// storeCall calls a store tool on the platform and returns its
// structured content; a UCP error envelope is a *ucpclient.UCPError.
func (b *Bridge) storeCall(ctx context.Context, slug, tool string, args any, requireID bool, opts ...ucpclient.CallOption) (json.RawMessage, error) {
	raw, err := b.client(ctx).CallStoreTool(ctx, slug, tool, args, opts...)
	if err != nil {
		return nil, err
	}
	if err := ucpEnvelopeError("store."+tool, raw, requireID); err != nil {
		return nil, err
	}
	return raw, nil
}

// globalCall calls a cross-store tool on the platform (/mcp), as
// storeCall does a store's.
func (b *Bridge) globalCall(ctx context.Context, tool string, args any) (json.RawMessage, error) {
	raw, err := b.client(ctx).CallGlobalTool(ctx, tool, args)
	if err != nil {
		return nil, err
	}
	if err := ucpEnvelopeError("global."+tool, raw, false); err != nil {
		return nil, err
	}
	return raw, nil
}

func resourceOf(raw json.RawMessage, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	if err := ucpEnvelopeError("rest", raw, true); err != nil {
		return nil, err
	}
	return raw, nil
}

// ---- catalog ----

type priceFilterIn struct {
	Min      any    `json:"min,omitempty"`
	Max      any    `json:"max,omitempty"`
	Currency string `json:"currency,omitempty"`
}

type filtersIn struct {
	Price      *priceFilterIn `json:"price,omitempty"`
	Categories []string       `json:"categories,omitempty"`
}

type paginationIn struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

type searchIn struct {
	where
	Query      string        `json:"query,omitempty"`
	Filters    *filtersIn    `json:"filters,omitempty"`
	Sort       string        `json:"sort,omitempty"`
	Pagination *paginationIn `json:"pagination,omitempty"`
}

// searchFilters converts the flat filters to UCP's, prices to minor units.
func searchFilters(f *filtersIn) (*ucp.SearchFilters, *ucp.Context, error) {
	if f == nil {
		return nil, nil, nil
	}
	out := &ucp.SearchFilters{Categories: f.Categories}
	var uctx *ucp.Context
	if p := f.Price; p != nil && (p.Min != nil || p.Max != nil) {
		if p.Currency == "" {
			return nil, nil, badInput("filters.price.currency is required with a price bound (e.g. \"USD\"), so the amount can be converted exactly")
		}
		pf := &ucp.PriceFilter{}
		if p.Min != nil {
			v, err := MinorUnits(p.Min, p.Currency)
			if err != nil {
				return nil, nil, err
			}
			pf.Min = &v
		}
		if p.Max != nil {
			v, err := MinorUnits(p.Max, p.Currency)
			if err != nil {
				return nil, nil, err
			}
			pf.Max = &v
		}
		if pf.Min != nil && pf.Max != nil && *pf.Min > *pf.Max {
			return nil, nil, badInput("filters.price.min is above filters.price.max")
		}
		out.Price = pf
		uctx = &ucp.Context{Currency: strings.ToUpper(strings.TrimSpace(p.Currency))}
	}
	return out, uctx, nil
}

var (
	filtersProp = object(obj{
		"price": object(obj{
			"min":      amountProp,
			"max":      amountProp,
			"currency": obj{"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO 4217 code of min and max, e.g. USD, EUR, JPY. Required with min or max."},
		}),
		"categories": obj{"type": "array", "maxItems": 20, "items": obj{"type": "string", "maxLength": 200}},
	})
	paginationProp = object(obj{
		"limit":  obj{"type": "integer", "minimum": 1, "maximum": 100},
		"cursor": obj{"type": "string", "maxLength": 1024, "description": "pagination.cursor of the previous page."},
	})
	productsOut = openObject(obj{"products": obj{"type": []string{"array", "null"}, "items": obj{"type": "object"}},
		"pagination": obj{"type": "object"}, "messages": messagesOut}, "products")
	productOut = openObject(obj{"product": obj{"type": "object"}, "messages": messagesOut}, "product")
)

func (b *Bridge) catalogTools() {
	b.add(newTool("search_products", "Search products",
		"Search products across every store on the platform (or one store with store_slug, or any UCP business with business_url). "+
			"Each product names its store (product.store.slug): use that slug for view_product, create_cart and create_checkout. "+
			"Prices in results are integer minor units (1250 with currency USD is $12.50). Price filters are in MAJOR units with their currency, "+
			"e.g. filters:{price:{max:100,currency:\"USD\"}}. Use pagination.cursor from the result for the next page.",
		object(obj{
			"query":        obj{"type": "string", "maxLength": 500, "description": "Free text, e.g. \"red roses\"."},
			"store_slug":   storeSlugProp,
			"business_url": businessURLProp,
			"filters":      filtersProp,
			"sort":         obj{"type": "string", "enum": []string{"relevance", "price_asc", "price_desc"}},
			"pagination":   paginationProp,
		}), productsOut, annotations("Search products", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in searchIn
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			filters, uctx, err := searchFilters(in.Filters)
			if err != nil {
				return nil, err
			}
			sr := &ucp.SearchRequest{Query: in.Query, Filters: filters, Context: uctx}
			if in.Sort != "relevance" {
				sr.Sort = in.Sort
			}
			if in.Pagination != nil {
				sr.Pagination = &ucp.PaginationRequest{Limit: in.Pagination.Limit, Cursor: in.Pagination.Cursor}
			}
			tg, err := b.target(ctx, in.where, false)
			if err != nil {
				return nil, err
			}
			var raw json.RawMessage
			switch {
			case tg.biz != nil:
				res, err := tg.biz.SearchCatalog(ctx, sr)
				if err != nil {
					return nil, err
				}
				return structResult(res, fmt.Sprintf("%d products.", len(res.Products)))
			case tg.slug != "":
				raw, err = b.storeCall(ctx, tg.slug, "search_catalog", obj{"catalog": sr}, false)
			default:
				raw, err = b.globalCall(ctx, "search_catalog", sr)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		})

	b.add(newTool("lookup_products", "Look up products",
		"Resolve products by id, handle, SKU or barcode across every store (or one store / business). Returns the products found, each with its store; "+
			"ids that match nothing are simply absent. Prices are integer minor units.",
		object(obj{
			"ids":          obj{"type": "array", "minItems": 1, "maxItems": 50, "items": obj{"type": "string", "minLength": 1, "maxLength": 256}},
			"store_slug":   storeSlugProp,
			"business_url": businessURLProp,
		}, "ids"), productsOut, annotations("Look up products", true, false, true, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				where
				IDs []string `json:"ids"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			lr := &ucp.LookupRequest{IDs: in.IDs}
			tg, err := b.target(ctx, in.where, false)
			if err != nil {
				return nil, err
			}
			var raw json.RawMessage
			switch {
			case tg.biz != nil:
				res, err := tg.biz.LookupCatalog(ctx, lr)
				if err != nil {
					return nil, err
				}
				return structResult(res, "")
			case tg.slug != "":
				raw, err = b.storeCall(ctx, tg.slug, "lookup_catalog", obj{"catalog": lr}, false)
			default:
				raw, err = b.globalCall(ctx, "lookup_catalog", lr)
			}
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		})

	productHandler := func(global bool) handlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				where
				ID       string               `json:"id"`
				Selected []ucp.SelectedOption `json:"selected,omitempty"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			pr := &ucp.ProductRequest{ID: in.ID, Selected: in.Selected}
			if global {
				raw, err := b.globalCall(ctx, "get_product", pr)
				if err != nil {
					return nil, err
				}
				return rawResult(raw, ""), nil
			}
			tg, err := b.target(ctx, in.where, true)
			if err != nil {
				return nil, err
			}
			if tg.biz != nil {
				res, err := tg.biz.GetProduct(ctx, pr)
				if err != nil {
					return nil, err
				}
				return structResult(res, "")
			}
			raw, err := b.storeCall(ctx, tg.slug, "get_product", obj{"catalog": pr}, false)
			if err != nil {
				return nil, err
			}
			return rawResult(raw, ""), nil
		}
	}
	b.add(newTool("view_product", "View a product",
		"Full detail of one product in one store: variants (their ids go into create_cart / create_checkout items), options, prices in minor units, availability. "+
			"Pass selected option values to resolve a variant.",
		object(obj{"store_slug": storeSlugProp, "business_url": businessURLProp, "id": str("Product or variant id."), "selected": selectedProp}, "id"),
		productOut, annotations("View a product", true, false, true, true)), productHandler(false))
	b.add(newTool("get_product_global", "Get a product from any store",
		"Full detail of a product by id without knowing its store; the result names the store (product.store.slug) to buy from.",
		object(obj{"id": str("Product or variant id."), "selected": selectedProp}, "id"),
		productOut, annotations("Get a product from any store", true, false, true, true)), productHandler(true))
}
