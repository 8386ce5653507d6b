package ucp

import "encoding/json"

// Price is an amount in minor units of Currency.
type Price struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// PriceRange bounds a product's variant prices.
type PriceRange struct {
	Min Price `json:"min"`
	Max Price `json:"max"`
}

// Description is a product text in one or more formats.
type Description struct {
	Plain    string `json:"plain,omitempty"`
	Markdown string `json:"markdown,omitempty"`
	HTML     string `json:"html,omitempty"`
}

// Media is an image or video of a product.
type Media struct {
	Type    string `json:"type"`
	URL     string `json:"url"`
	AltText string `json:"alt_text,omitempty"`
}

// ProductOption is an option axis (Size, Color) and its values.
type ProductOption struct {
	Name   string        `json:"name"`
	Values []OptionValue `json:"values"`
}

// OptionValue is one value of an option axis.
type OptionValue struct {
	ID    string `json:"id,omitempty"`
	Label string `json:"label"`
}

// SelectedOption is a variant's (or a request's) value on one axis.
type SelectedOption struct {
	Name  string `json:"name"`
	ID    string `json:"id,omitempty"`
	Label string `json:"label"`
}

// Availability says whether a variant can be bought now.
type Availability struct {
	Available bool   `json:"available"`
	Status    string `json:"status,omitempty"` // in_stock|backorder|preorder|out_of_stock|discontinued
}

// Seller names who sells a variant (global catalog results).
type Seller struct {
	Name  string `json:"name,omitempty"`
	Links []Link `json:"links,omitempty"`
}

// InputCorrelation maps a lookup id to the variant it resolved to.
type InputCorrelation struct {
	ID    string `json:"id"`
	Match string `json:"match,omitempty"` // exact|featured
}

// Variant is a purchasable unit; its ID is what line items name.
type Variant struct {
	ID           string             `json:"id"`
	SKU          string             `json:"sku,omitempty"`
	Title        string             `json:"title"`
	Description  Description        `json:"description"`
	Price        Price              `json:"price"`
	ListPrice    *Price             `json:"list_price,omitempty"`
	Availability *Availability      `json:"availability,omitempty"`
	Options      []SelectedOption   `json:"options,omitempty"`
	Media        []Media            `json:"media,omitempty"`
	Seller       *Seller            `json:"seller,omitempty"`
	Inputs       []InputCorrelation `json:"inputs,omitempty"`
	Metadata     json.RawMessage    `json:"metadata,omitempty"`
}

// Product is a catalog product with its variants.
type Product struct {
	ID          string           `json:"id"`
	Handle      string           `json:"handle,omitempty"`
	Title       string           `json:"title"`
	Description Description      `json:"description"`
	URL         string           `json:"url,omitempty"`
	Categories  []Category       `json:"categories,omitempty"`
	PriceRange  PriceRange       `json:"price_range"`
	Media       []Media          `json:"media,omitempty"`
	Options     []ProductOption  `json:"options,omitempty"`
	Variants    []Variant        `json:"variants"`
	Tags        []string         `json:"tags,omitempty"`
	Selected    []SelectedOption `json:"selected,omitempty"`
	Metadata    json.RawMessage  `json:"metadata,omitempty"`
	// Store is the store selling the product, on a catalog spanning
	// several stores (ucpbridge's cross-store catalog; UCP products are
	// open to such members): where to go on to its checkout.
	Store *StoreRef `json:"store,omitempty"`
}

// StoreRef names one store of a cross-store catalog.
type StoreRef struct {
	// Slug is the store's name in the platform's paths.
	Slug string `json:"slug"`
	Name string `json:"name,omitempty"`
	// URL is the store's UCP REST endpoint (checkout sessions are
	// URL + "/checkout-sessions"); MCP its MCP endpoint; Profile its
	// business profile (/.well-known/ucp).
	URL     string `json:"url"`
	MCP     string `json:"mcp,omitempty"`
	Profile string `json:"profile,omitempty"`
}

// Category is a product category.
type Category struct {
	Value    string `json:"value"`
	Taxonomy string `json:"taxonomy,omitempty"`
}

// SearchFilters narrow catalog results.
type SearchFilters struct {
	Categories []string     `json:"categories,omitempty"`
	Price      *PriceFilter `json:"price,omitempty"`
}

// PriceFilter bounds prices in minor units.
type PriceFilter struct {
	Min *int64 `json:"min,omitempty"`
	Max *int64 `json:"max,omitempty"`
}

// PaginationRequest asks for a page.
type PaginationRequest struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// Pagination describes the page returned.
type Pagination struct {
	Cursor      string `json:"cursor,omitempty"`
	HasNextPage bool   `json:"has_next_page"`
	TotalCount  *int   `json:"total_count,omitempty"`
}

// SearchRequest is the catalog search body.
type SearchRequest struct {
	Query      string             `json:"query,omitempty"`
	Context    *Context           `json:"context,omitempty"`
	Filters    *SearchFilters     `json:"filters,omitempty"`
	Pagination *PaginationRequest `json:"pagination,omitempty"`
	Sort       string             `json:"sort,omitempty"` // Artos: price_asc|price_desc
}

// SearchResponse is the catalog search result.
type SearchResponse struct {
	UCP        *Envelope   `json:"ucp"`
	Products   []Product   `json:"products"`
	Pagination *Pagination `json:"pagination,omitempty"`
	Messages   []Message   `json:"messages,omitempty"`
}

// LookupRequest is the catalog lookup body.
type LookupRequest struct {
	IDs     []string       `json:"ids"`
	Filters *SearchFilters `json:"filters,omitempty"`
	Context *Context       `json:"context,omitempty"`
}

// LookupResponse is the catalog lookup result.
type LookupResponse struct {
	UCP      *Envelope `json:"ucp"`
	Products []Product `json:"products"`
	Messages []Message `json:"messages,omitempty"`
}

// ProductRequest is the get_product body.
type ProductRequest struct {
	ID          string           `json:"id"`
	Selected    []SelectedOption `json:"selected,omitempty"`
	Preferences []string         `json:"preferences,omitempty"`
	Context     *Context         `json:"context,omitempty"`
}

// ProductResponse is the get_product result.
type ProductResponse struct {
	UCP      *Envelope `json:"ucp"`
	Product  Product   `json:"product"`
	Messages []Message `json:"messages,omitempty"`
}
