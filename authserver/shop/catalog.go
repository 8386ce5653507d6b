package shop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const (
	defaultPageSize = 10
	maxPageSize     = 50
	// maxOffset bounds how deep a price-sorted search pages (the store
	// skips that many rows).
	maxOffset           = 10_000
	maxLookupIDs        = 100
	maxFilterCategories = 20
	// maxSelections bounds get_product's selected and preferences.
	maxSelections = 20
)

// cursor is the opaque pagination token: a keyset position, or an offset
// into a sorted result.
type cursor struct {
	Shop   string `json:"s,omitempty"`
	ID     string `json:"i,omitempty"`
	Offset int    `json:"o,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	// The cursor is ours only by convention: it is unsigned, so what it
	// carries is checked like any other input before it reaches the store.
	if err != nil || json.Unmarshal(b, &c) != nil || c.Offset < 0 || c.Offset > maxOffset || !store.ValidText(c.Shop) || !store.ValidText(c.ID) ||
		len(c.Shop) > 64 || len(c.ID) > 255 {
		return c, false
	}
	return c, true
}

func (s *Service) searchCatalog(ctx context.Context, oc *opCtx) *Reply {
	var req ucp.SearchRequest
	if len(oc.Body) == 0 {
		return noSearchInput()
	}
	if rep := decodeBody(oc.Body, &req); rep != nil {
		return rep
	}
	if len(req.Query) > 500 {
		return invalidRequest("the query is longer than 500 characters")
	}
	terms := strings.Fields(strings.ToLower(req.Query))
	if len(terms) > 20 {
		return invalidRequest("the query has more than 20 words")
	}
	if len(terms) == 0 && !hasFilter(req.Filters) {
		return noSearchInput()
	}
	limit := defaultPageSize
	var cur cursor
	if p := req.Pagination; p != nil {
		if p.Limit < 0 {
			return invalidRequest("pagination.limit must be positive")
		}
		if p.Limit > 0 {
			limit = min(p.Limit, maxPageSize)
		}
		if p.Cursor != "" {
			var ok bool
			if cur, ok = decodeCursor(p.Cursor); !ok {
				return invalidRequest("pagination.cursor is not a cursor this server issued")
			}
		}
	}
	q := store.ProductQuery{Terms: terms, Limit: limit + 1}
	if oc.shop != nil {
		q.ShopSlug = oc.shop.Slug
	}
	if f := req.Filters; f != nil {
		if len(f.Categories) > maxFilterCategories {
			return invalidRequest("at most %d categories", maxFilterCategories)
		}
		q.Categories = f.Categories
		if f.Price != nil {
			if (f.Price.Min != nil && *f.Price.Min < 0) || (f.Price.Max != nil && *f.Price.Max < 0) {
				return invalidRequest("price filters are non-negative minor units")
			}
			q.MinPrice, q.MaxPrice = f.Price.Min, f.Price.Max
			if req.Context != nil {
				q.Currency = strings.ToUpper(req.Context.Currency)
			}
		}
	}
	switch req.Sort {
	case "", "relevance":
		q.AfterShop, q.AfterID = cur.Shop, cur.ID
	case "price_asc", "price_desc":
		q.Order, q.Offset = req.Sort, cur.Offset
	default:
		return invalidRequest("sort must be relevance, price_asc or price_desc")
	}
	page, err := s.cfg.Store.SearchProducts(ctx, q)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		if q.Order == "" {
			last := page[limit-1]
			next = cursor{Shop: last.ShopSlug, ID: last.ID}.encode()
		} else if cur.Offset+limit <= maxOffset {
			next = cursor{Offset: cur.Offset + limit}.encode()
		}
	}
	resp := ucp.SearchResponse{UCP: oc.neg.envelope(oc.info.capability), Products: []ucp.Product{},
		Pagination: &ucp.Pagination{HasNextPage: next != "", Cursor: next}}
	switch {
	case q.MinPrice == nil && q.MaxPrice == nil:
	case oc.shop == nil && q.Currency == "":
		resp.Messages = append(resp.Messages, ucp.Message{Type: "warning", Code: "currency_ambiguous", Path: "$.filters.price",
			Content: "price bounds were applied in each store's own currency; set context.currency to compare like with like"})
	case oc.shop != nil && q.Currency != "" && q.Currency != oc.shop.Currency:
		resp.Messages = append(resp.Messages, ucp.Message{Type: "info", Code: "currency_mismatch", Path: "$.context.currency",
			Content: "this store prices in " + oc.shop.Currency + ", so no product matches a price bound in " + q.Currency})
	}
	for _, p := range page {
		view, err := s.productView(ctx, oc, p)
		if err != nil {
			return s.storeFailure(ctx, err)
		}
		resp.Products = append(resp.Products, *view)
	}
	return payload(http.StatusOK, &resp)
}

// noSearchInput refuses a search without an input. search.md: a request
// MUST include at least one of a query, filters or an extension's input,
// and the store SHOULD reject one without; the bindings answer a missing
// required parameter with 400 (catalog/rest.md) and, on MCP, a JSON-RPC
// invalid-params error (catalog/mcp.md: tool inputs are validated). These
// stores define no extension input, so a query with a word in it, or a
// category or price filter, is what a search needs.
func noSearchInput() *Reply {
	return invalidRequest("a search needs an input: a query with at least one word, or filters " +
		"(categories, or a price with min or max); to browse everything, filter on a price from 0: " +
		`{"filters":{"price":{"min":0}}}`)
}

// hasFilter reports whether filters narrow anything: a category, or a
// price bound.
func hasFilter(f *ucp.SearchFilters) bool {
	return f != nil && (len(f.Categories) > 0 || f.Price != nil && (f.Price.Min != nil || f.Price.Max != nil))
}

// productView renders a stored product with live prices and availability;
// the cross-store catalog also names the seller.
func (s *Service) productView(ctx context.Context, oc *opCtx, p *store.Product) (*ucp.Product, error) {
	var doc ucp.Product
	if err := json.Unmarshal(p.Doc, &doc); err != nil {
		return nil, fmt.Errorf("product %s/%s: %w", p.ShopSlug, p.ID, err)
	}
	rows, err := s.cfg.Store.ProductVariants(ctx, p.ShopSlug, p.ID)
	if err != nil {
		return nil, err
	}
	byID := map[string]*store.Variant{}
	for _, v := range rows {
		byID[v.ID] = v
	}
	var seller *ucp.Seller
	if oc.shop == nil {
		// The cross-store catalog says which store sells each product,
		// as members of its own (store: slug, URL, endpoints), and as the
		// Artos SDK reads it (metadata.store) and UCP's variant seller.
		u := s.storeURL(p.ShopSlug)
		doc.Store = &ucp.StoreRef{Slug: p.ShopSlug, URL: u, MCP: u + "/mcp", Profile: u + "/.well-known/ucp"}
		sh, err := s.cfg.Store.Shop(ctx, p.ShopSlug)
		if err != nil {
			return nil, err
		}
		doc.Store.Name = sh.Name
		seller = &ucp.Seller{Name: sh.Name, Links: []ucp.Link{{Type: "ucp_profile", URL: doc.Store.Profile, Title: sh.Slug}}}
		doc.Metadata = json.RawMessage(fmt.Sprintf(`{"store":%q}`, p.ShopSlug))
	}
	var vs []ucp.Variant
	for _, v := range doc.Variants {
		row, ok := byID[v.ID]
		if !ok {
			continue
		}
		v.Price = ucp.Price{Amount: row.Price, Currency: p.Currency}
		v.Availability = &ucp.Availability{Available: row.Stock != 0, Status: "in_stock"}
		if row.Stock == 0 {
			v.Availability.Status = "out_of_stock"
		}
		v.Seller = seller
		vs = append(vs, v)
	}
	doc.Variants = vs
	if len(vs) > 0 {
		lo, hi := vs[0].Price, vs[0].Price
		for _, v := range vs[1:] {
			if v.Price.Amount < lo.Amount {
				lo = v.Price
			}
			if v.Price.Amount > hi.Amount {
				hi = v.Price
			}
		}
		doc.PriceRange = ucp.PriceRange{Min: lo, Max: hi}
	}
	if doc.Variants == nil {
		doc.Variants = []ucp.Variant{}
	}
	return &doc, nil
}

// shopsFor is the one store of a per-store call, or every store.
func (s *Service) shopsFor(ctx context.Context, oc *opCtx) ([]string, error) {
	if oc.shop != nil {
		return []string{oc.shop.Slug}, nil
	}
	all, err := s.cfg.Store.Shops(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(all))
	for i, sh := range all {
		out[i] = sh.Slug
	}
	return out, nil
}

// resolve finds the product an id names: a product id, or a variant id
// (then variantID is set).
func (s *Service) resolve(ctx context.Context, shops []string, id string) (p *store.Product, variantID string, err error) {
	for _, slug := range shops {
		p, err = s.cfg.Store.Product(ctx, slug, id)
		if err == nil {
			return p, "", nil
		}
		if !isNotFound(err) {
			return nil, "", err
		}
		vs, err := s.cfg.Store.Variants(ctx, slug, []string{id})
		if err != nil {
			return nil, "", err
		}
		if v, ok := vs[id]; ok {
			p, err = s.cfg.Store.Product(ctx, slug, v.ProductID)
			if err != nil {
				return nil, "", err
			}
			return p, id, nil
		}
	}
	return nil, "", nil
}

func (s *Service) lookupCatalog(ctx context.Context, oc *opCtx) *Reply {
	var req ucp.LookupRequest
	if rep := decodeBody(oc.Body, &req); rep != nil {
		return rep
	}
	if len(req.IDs) == 0 {
		return invalidRequest("ids must hold at least one identifier")
	}
	if len(req.IDs) > maxLookupIDs {
		return protoErr(http.StatusBadRequest, rpcParams, "request_too_large", fmt.Sprintf("at most %d ids per lookup", maxLookupIDs))
	}
	// lookup.md: duplicate identifiers are looked up once.
	seenID := map[string]bool{}
	req.IDs = slices.DeleteFunc(req.IDs, func(id string) bool { dup := seenID[id]; seenID[id] = true; return dup })
	shops, err := s.shopsFor(ctx, oc)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	resp := ucp.LookupResponse{UCP: oc.neg.envelope(oc.info.capability), Products: []ucp.Product{}}
	index := map[string]int{} // shop/product -> position in resp.Products
	inputs := map[string]map[string][]ucp.InputCorrelation{}
	for i, id := range req.IDs {
		p, variantID, err := s.resolve(ctx, shops, id)
		if err != nil {
			return s.storeFailure(ctx, err)
		}
		if p == nil {
			resp.Messages = append(resp.Messages, ucp.Message{Type: "warning", Code: "not_found", Path: fmt.Sprintf("$.ids[%d]", i),
				Content: fmt.Sprintf("no product or variant %q", id)})
			continue
		}
		key := p.ShopSlug + "/" + p.ID
		if _, ok := index[key]; !ok {
			view, err := s.productView(ctx, oc, p)
			if err != nil {
				return s.storeFailure(ctx, err)
			}
			index[key] = len(resp.Products)
			resp.Products = append(resp.Products, *view)
			inputs[key] = map[string][]ucp.InputCorrelation{}
		}
		view := &resp.Products[index[key]]
		target, match := variantID, "exact"
		if target == "" && len(view.Variants) > 0 {
			// A product id resolves to its featured variant: the first
			// one available, else the first.
			target, match = view.Variants[0].ID, "featured"
			for _, v := range view.Variants {
				if v.Availability != nil && v.Availability.Available {
					target = v.ID
					break
				}
			}
		}
		if target != "" {
			inputs[key][target] = append(inputs[key][target], ucp.InputCorrelation{ID: id, Match: match})
		}
	}
	// Lookup responses list the variants the ids resolved to, each with
	// the ids that led there (lookup_variant.inputs is required). Filters
	// apply after resolution: variants outside them go, and so does a
	// product left with none.
	for key, pos := range index {
		p := &resp.Products[pos]
		p.Variants = slices.DeleteFunc(p.Variants, func(v ucp.Variant) bool {
			return inputs[key][v.ID] == nil || !admits(req.Filters, p, &v)
		})
		for j := range p.Variants {
			p.Variants[j].Inputs = inputs[key][p.Variants[j].ID]
		}
	}
	resp.Products = slices.DeleteFunc(resp.Products, func(p ucp.Product) bool { return len(p.Variants) == 0 })
	return payload(http.StatusOK, &resp)
}

func (s *Service) getProduct(ctx context.Context, oc *opCtx) *Reply {
	var req ucp.ProductRequest
	if rep := decodeBody(oc.Body, &req); rep != nil {
		return rep
	}
	if req.ID == "" {
		return invalidRequest("catalog.id is required")
	}
	if len(req.Selected) > maxSelections || len(req.Preferences) > maxSelections {
		return invalidRequest("at most %d selected options and %d preferences", maxSelections, maxSelections)
	}
	shops, err := s.shopsFor(ctx, oc)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	p, variantID, err := s.resolve(ctx, shops, req.ID)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	if p == nil {
		m := notFound("product")
		m.Path = "$.id"
		return oc.errorEnvelope(http.StatusOK, m)
	}
	view, err := s.productView(ctx, oc, p)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	// lookup.md: a variant id is featured first and decides the
	// selection (a conflicting `selected` is ignored); otherwise the
	// selections, relaxed per preferences, pick the featured variant and
	// product.selected reports what survived.
	fi := -1
	switch {
	case variantID != "":
		fi = slices.IndexFunc(view.Variants, func(v ucp.Variant) bool { return v.ID == variantID })
		if fi >= 0 {
			view.Selected = view.Variants[fi].Options
		}
	case len(req.Selected) > 0:
		var eff []ucp.SelectedOption
		fi, eff = featured(view.Variants, req.Selected, req.Preferences)
		view.Selected = nil
		for _, o := range eff {
			// In the catalog's spelling of the surviving selection.
			if k := slices.IndexFunc(view.Variants[fi].Options, func(v ucp.SelectedOption) bool { return strings.EqualFold(v.Name, o.Name) }); k >= 0 {
				o = view.Variants[fi].Options[k]
			}
			view.Selected = append(view.Selected, o)
		}
		if len(eff) == 0 && fi >= 0 {
			view.Selected = view.Variants[fi].Options
		}
	default:
		fi, _ = featured(view.Variants, nil, nil)
		if fi >= 0 {
			view.Selected = view.Variants[fi].Options
		}
	}
	if fi > 0 {
		f := view.Variants[fi]
		view.Variants = append([]ucp.Variant{f}, slices.Delete(slices.Clone(view.Variants), fi, fi+1)...)
	}
	return payload(http.StatusOK, &ucp.ProductResponse{UCP: oc.neg.envelope(oc.info.capability), Product: *view})
}

// featured picks the variant matching the selections (an available one
// when several do), relaxing them until one matches: first options the
// preferences do not name, from the end of the selection, then named ones
// from the end of preferences. It returns the variant's index (-1 when
// there are none) and the selections that survived.
func featured(vs []ucp.Variant, sel []ucp.SelectedOption, prefs []string) (int, []ucp.SelectedOption) {
	if len(vs) == 0 {
		return -1, nil
	}
	sel = slices.Clone(sel)
	for {
		best := -1
		for i := range vs {
			if matchesAll(vs[i].Options, sel) {
				if best < 0 {
					best = i
				}
				if vs[i].Availability != nil && vs[i].Availability.Available {
					best = i
					break
				}
			}
		}
		if best >= 0 {
			return best, sel
		}
		if len(sel) == 0 {
			return 0, nil
		}
		named := func(o ucp.SelectedOption) bool {
			return slices.ContainsFunc(prefs, func(p string) bool { return strings.EqualFold(p, o.Name) })
		}
		drop := -1
		for k := len(sel) - 1; k >= 0; k-- {
			if !named(sel[k]) {
				drop = k
				break
			}
		}
		for j := len(prefs) - 1; drop < 0 && j >= 0; j-- {
			drop = slices.IndexFunc(sel, func(o ucp.SelectedOption) bool { return strings.EqualFold(o.Name, prefs[j]) })
		}
		sel = slices.Delete(sel, drop, drop+1)
	}
}

func matchesAll(have, want []ucp.SelectedOption) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h ucp.SelectedOption) bool {
			return strings.EqualFold(h.Name, w.Name) && (strings.EqualFold(h.Label, w.Label) || (w.ID != "" && h.ID == w.ID))
		}) {
			return false
		}
	}
	return true
}

// admits reports whether a resolved variant passes lookup filters:
// categories (any of, on the product) and price bounds (minor units).
func admits(f *ucp.SearchFilters, p *ucp.Product, v *ucp.Variant) bool {
	if f == nil {
		return true
	}
	if len(f.Categories) > 0 && !slices.ContainsFunc(p.Categories, func(c ucp.Category) bool { return slices.Contains(f.Categories, c.Value) }) {
		return false
	}
	if pf := f.Price; pf != nil {
		if pf.Min != nil && v.Price.Amount < *pf.Min || pf.Max != nil && v.Price.Amount > *pf.Max {
			return false
		}
	}
	return true
}
