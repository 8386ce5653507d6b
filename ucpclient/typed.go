package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Typed helpers over CallStoreTool, CallGlobalTool and CallAccountTool.
// They send the UCP argument envelope ({id?, cart|checkout|catalog|
// location}, meta added by the transport) and decode the result into the
// ucp types. A UCP business-error envelope (ucp.status "error", or a
// resource result without an id) comes back as a *UCPError; refusals by
// the server (HTTP, JSON-RPC, isError tool results) stay *ProtocolError.

// UCPError is a UCP business-error envelope a tool answered with: no
// resource was returned (not_found, out_of_stock, invalid input, …).
type UCPError struct {
	// Op names the operation, e.g. "store.get_checkout".
	Op string
	// Messages are the envelope's messages, errors first as sent.
	Messages []ucp.Message
	// ContinueURL is set when the business hands the buyer over.
	ContinueURL string
	// Body is the envelope as received.
	Body json.RawMessage
}

// Code returns the code of the first error message (or of the first
// message when none is typed "error").
func (e *UCPError) Code() string {
	if m := e.first(); m != nil {
		return m.Code
	}
	return ""
}

func (e *UCPError) first() *ucp.Message {
	for i := range e.Messages {
		if e.Messages[i].Type == "error" {
			return &e.Messages[i]
		}
	}
	if len(e.Messages) > 0 {
		return &e.Messages[0]
	}
	return nil
}

func (e *UCPError) Error() string {
	var b strings.Builder
	b.WriteString("ucpclient: " + e.Op + ": UCP error")
	if m := e.first(); m != nil {
		if m.Code != "" {
			b.WriteString(" [" + m.Code + "]")
		}
		if m.Content != "" {
			b.WriteString(" " + m.Content)
		}
	}
	return b.String()
}

// ucpErrorOf returns the *UCPError raw is, or nil. requireID: the result
// is a resource, so one without an id is an error envelope too.
func ucpErrorOf(op string, raw json.RawMessage, requireID bool) *UCPError {
	var v struct {
		UCP struct {
			Status string `json:"status"`
		} `json:"ucp"`
		ID          *string       `json:"id"`
		Messages    []ucp.Message `json:"messages"`
		ContinueURL string        `json:"continue_url"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return nil // decoded (and refused) by the caller
	}
	if v.UCP.Status == ucp.StatusError || requireID && (v.ID == nil || *v.ID == "") && len(v.Messages) > 0 {
		return &UCPError{Op: op, Messages: v.Messages, ContinueURL: v.ContinueURL, Body: raw}
	}
	return nil
}

// decodeResult decodes a tool result into a T, or returns its *UCPError.
func decodeResult[T any](op string, raw json.RawMessage, requireID bool, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	if ue := ucpErrorOf(op, raw, requireID); ue != nil {
		return nil, ue
	}
	out := new(T)
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, &ProtocolError{Op: op, StatusCode: 200, Content: "result does not decode: " + err.Error(), Body: raw}
	}
	return out, nil
}

// resourceID checks a decoded resource has an id.
func resourceID(op, id string, raw json.RawMessage) error {
	if id == "" {
		return &ProtocolError{Op: op, StatusCode: 200, Content: "result has no id", Body: raw}
	}
	return nil
}

// ---- catalog ----

// SearchCatalog searches one store's catalog (slug), or every store's on
// the global endpoint when slug is "".
func (c *Client) SearchCatalog(ctx context.Context, slug string, req *ucp.SearchRequest, opts ...CallOption) (*ucp.SearchResponse, error) {
	if req == nil {
		req = &ucp.SearchRequest{}
	}
	raw, op, err := c.catalogTool(ctx, slug, "search_catalog", req, opts)
	return decodeResult[ucp.SearchResponse](op, raw, false, err)
}

// LookupCatalog looks products or variants up by id, in one store or
// (slug "") across every store.
func (c *Client) LookupCatalog(ctx context.Context, slug string, req *ucp.LookupRequest, opts ...CallOption) (*ucp.LookupResponse, error) {
	if req == nil || len(req.IDs) == 0 {
		return nil, errors.New("ucpclient: LookupCatalog: at least one id is required")
	}
	raw, op, err := c.catalogTool(ctx, slug, "lookup_catalog", req, opts)
	return decodeResult[ucp.LookupResponse](op, raw, false, err)
}

// GetProduct gets one product in full, in one store or (slug "") across
// every store. An unknown id is a *UCPError (not_found).
func (c *Client) GetProduct(ctx context.Context, slug string, req *ucp.ProductRequest, opts ...CallOption) (*ucp.ProductResponse, error) {
	if req == nil || req.ID == "" {
		return nil, errors.New("ucpclient: GetProduct: an id is required")
	}
	raw, op, err := c.catalogTool(ctx, slug, "get_product", req, opts)
	out, err := decodeResult[ucp.ProductResponse](op, raw, false, err)
	if err == nil && out.Product.ID == "" {
		return nil, &ProtocolError{Op: op, StatusCode: 200, Content: "result has no product", Body: raw}
	}
	return out, err
}

func (c *Client) catalogTool(ctx context.Context, slug, name string, req any, opts []CallOption) (json.RawMessage, string, error) {
	if slug == "" {
		raw, err := c.CallGlobalTool(ctx, name, req, opts...)
		return raw, "global." + name, err
	}
	raw, err := c.CallStoreTool(ctx, slug, name, struct {
		Catalog any `json:"catalog"`
	}{req}, opts...)
	return raw, "store." + name, err
}

// ---- cart and checkout ----

// ItemRef names the product variant of a request line.
type ItemRef struct {
	ID string `json:"id"`
}

// LineItemInput is a line as requests send it: only the item id and the
// quantity (the business prices it).
type LineItemInput struct {
	Item     ItemRef `json:"item"`
	Quantity int64   `json:"quantity"`
}

// Line returns the request line for quantity of variant id.
func Line(id string, quantity int64) LineItemInput {
	return LineItemInput{Item: ItemRef{ID: id}, Quantity: quantity}
}

// DiscountCodes are the discount codes a request submits.
type DiscountCodes struct {
	Codes []string `json:"codes"`
}

// CartInput is a cart as create_cart and update_cart send it. Update is a
// full replace: resend every line and member to keep.
type CartInput struct {
	LineItems   []LineItemInput   `json:"line_items"`
	Buyer       *ucp.Buyer        `json:"buyer,omitempty"`
	Context     *ucp.Context      `json:"context,omitempty"`
	Discounts   *DiscountCodes    `json:"discounts,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
}

// CheckoutInput is a checkout as create_checkout and update_checkout send
// it: lines or a CartID, and what is known already.
type CheckoutInput struct {
	CartID      string            `json:"cart_id,omitempty"`
	LineItems   []LineItemInput   `json:"line_items,omitempty"`
	Buyer       *ucp.Buyer        `json:"buyer,omitempty"`
	Context     *ucp.Context      `json:"context,omitempty"`
	Fulfillment *ucp.Fulfillment  `json:"fulfillment,omitempty"`
	Discounts   *DiscountCodes    `json:"discounts,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
}

// CompleteInput is what complete_checkout sends: the selected payment
// instrument and, when the checkout negotiated AP2, the mandates.
type CompleteInput struct {
	Payment     ucp.Payment       `json:"payment"`
	AP2         *ucp.AP2          `json:"ap2,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
}

type idArgs struct {
	ID string `json:"id"`
}

func needID(op, id string) error {
	if id == "" {
		return errors.New("ucpclient: " + op + ": an id is required")
	}
	return nil
}

func storeResource[T any](ctx context.Context, c *Client, slug, name string, args any, id func(*T) string, opts []CallOption) (*T, error) {
	op := "store." + name
	raw, err := c.CallStoreTool(ctx, slug, name, args, opts...)
	out, err := decodeResult[T](op, raw, true, err)
	if err != nil {
		return nil, err
	}
	if err := resourceID(op, id(out), raw); err != nil {
		return nil, err
	}
	return out, nil
}

func cartID(v *ucp.Cart) string         { return v.ID }
func checkoutID(v *ucp.Checkout) string { return v.ID }
func orderID(v *ucp.Order) string       { return v.ID }

// CreateCart creates a cart at a store.
func (c *Client) CreateCart(ctx context.Context, slug string, cart *CartInput, opts ...CallOption) (*ucp.Cart, error) {
	if cart == nil {
		return nil, errors.New("ucpclient: CreateCart: a cart is required")
	}
	return storeResource(ctx, c, slug, "create_cart", struct {
		Cart *CartInput `json:"cart"`
	}{cart}, cartID, opts)
}

// GetCart reads a cart.
func (c *Client) GetCart(ctx context.Context, slug, id string, opts ...CallOption) (*ucp.Cart, error) {
	if err := needID("GetCart", id); err != nil {
		return nil, err
	}
	return storeResource(ctx, c, slug, "get_cart", idArgs{id}, cartID, opts)
}

// UpdateCart replaces a cart's contents (a full replace).
func (c *Client) UpdateCart(ctx context.Context, slug, id string, cart *CartInput, opts ...CallOption) (*ucp.Cart, error) {
	if err := needID("UpdateCart", id); err != nil {
		return nil, err
	}
	if cart == nil {
		return nil, errors.New("ucpclient: UpdateCart: a cart is required")
	}
	return storeResource(ctx, c, slug, "update_cart", struct {
		ID   string     `json:"id"`
		Cart *CartInput `json:"cart"`
	}{id, cart}, cartID, opts)
}

// CancelCart cancels a cart; it returns the cart as it was.
func (c *Client) CancelCart(ctx context.Context, slug, id string, opts ...CallOption) (*ucp.Cart, error) {
	if err := needID("CancelCart", id); err != nil {
		return nil, err
	}
	return storeResource(ctx, c, slug, "cancel_cart", idArgs{id}, cartID, opts)
}

// CreateCheckout starts a checkout session at a store.
func (c *Client) CreateCheckout(ctx context.Context, slug string, checkout *CheckoutInput, opts ...CallOption) (*ucp.Checkout, error) {
	if checkout == nil {
		return nil, errors.New("ucpclient: CreateCheckout: a checkout is required")
	}
	return storeResource(ctx, c, slug, "create_checkout", struct {
		Checkout *CheckoutInput `json:"checkout"`
	}{checkout}, checkoutID, opts)
}

// GetCheckout reads a checkout session.
func (c *Client) GetCheckout(ctx context.Context, slug, id string, opts ...CallOption) (*ucp.Checkout, error) {
	if err := needID("GetCheckout", id); err != nil {
		return nil, err
	}
	return storeResource(ctx, c, slug, "get_checkout", idArgs{id}, checkoutID, opts)
}

// UpdateCheckout changes a checkout session. With LineItems it replaces
// every input: resend whatever should stay. A Context whose Eligibility
// holds "sh.artos.coupon" is the coupon attach (platform key and buyer
// bearer).
func (c *Client) UpdateCheckout(ctx context.Context, slug, id string, checkout *CheckoutInput, opts ...CallOption) (*ucp.Checkout, error) {
	if err := needID("UpdateCheckout", id); err != nil {
		return nil, err
	}
	if checkout == nil {
		return nil, errors.New("ucpclient: UpdateCheckout: a checkout is required")
	}
	return storeResource(ctx, c, slug, "update_checkout", struct {
		ID       string         `json:"id"`
		Checkout *CheckoutInput `json:"checkout"`
	}{id, checkout}, checkoutID, opts)
}

// CancelCheckout cancels a checkout session that is not completed.
func (c *Client) CancelCheckout(ctx context.Context, slug, id string, opts ...CallOption) (*ucp.Checkout, error) {
	if err := needID("CancelCheckout", id); err != nil {
		return nil, err
	}
	return storeResource(ctx, c, slug, "cancel_checkout", idArgs{id}, checkoutID, opts)
}

// CompleteCheckout places the order and pays. It spends the buyer's
// money: on a timeout, repeat it with the same WithIdempotencyKey. The
// returned checkout may be completed (Order set), requires_escalation
// (ContinueURL) or unchanged with a payment message; OutcomeOf tells them
// apart. ConfirmPurchase does the whole flow.
func (c *Client) CompleteCheckout(ctx context.Context, slug, id string, in *CompleteInput, opts ...CallOption) (*ucp.Checkout, error) {
	if err := needID("CompleteCheckout", id); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, errors.New("ucpclient: CompleteCheckout: a payment is required")
	}
	return storeResource(ctx, c, slug, "complete_checkout", struct {
		ID       string         `json:"id"`
		Checkout *CompleteInput `json:"checkout"`
	}{id, in}, checkoutID, opts)
}

// GetOrder reads an order placed at a store.
func (c *Client) GetOrder(ctx context.Context, slug, id string, opts ...CallOption) (*ucp.Order, error) {
	if err := needID("GetOrder", id); err != nil {
		return nil, err
	}
	return storeResource(ctx, c, slug, "get_order", idArgs{id}, orderID, opts)
}

// ---- locations ----

// Geo is a WGS 84 coordinate in decimal degrees.
type Geo struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// DistanceFilter matches locations within Max metres of Center.
type DistanceFilter struct {
	Center Geo     `json:"center"`
	Max    float64 `json:"max"`
}

// LocationFilters narrow a location search; every filter given must hold.
type LocationFilters struct {
	// OpenAt (RFC 3339) matches shops open at that instant; it is sent
	// as hours.open_at.
	OpenAt    string            `json:"-"`
	Amenities []string          `json:"amenities,omitempty"`
	Inventory []InventoryFilter `json:"inventory,omitempty"`
}

// MarshalJSON writes OpenAt as hours.open_at.
func (f LocationFilters) MarshalJSON() ([]byte, error) {
	type plain struct {
		Hours     *openAt           `json:"hours,omitempty"`
		Amenities []string          `json:"amenities,omitempty"`
		Inventory []InventoryFilter `json:"inventory,omitempty"`
	}
	p := plain{Amenities: f.Amenities, Inventory: f.Inventory}
	if f.OpenAt != "" {
		p.Hours = &openAt{f.OpenAt}
	}
	return json.Marshal(p)
}

type openAt struct {
	OpenAt string `json:"open_at"`
}

// InventoryFilter requires a variant or product to be available there.
type InventoryFilter struct {
	ID                 string `json:"id"`
	AvailabilityStatus string `json:"availability_status,omitempty"`
}

// LocationSearchRequest is search_locations' request; empty lists the
// store's shops.
type LocationSearchRequest struct {
	Query      string                 `json:"query,omitempty"`
	Distance   *DistanceFilter        `json:"distance,omitempty"`
	Filters    *LocationFilters       `json:"filters,omitempty"`
	Context    *ucp.Context           `json:"context,omitempty"`
	Pagination *ucp.PaginationRequest `json:"pagination,omitempty"`
}

// LocationLookupRequest is lookup_locations' request.
type LocationLookupRequest struct {
	IDs      []string         `json:"ids"`
	Distance *DistanceFilter  `json:"distance,omitempty"`
	Filters  *LocationFilters `json:"filters,omitempty"`
	Context  *ucp.Context     `json:"context,omitempty"`
}

// Location is a store's physical shop.
type Location struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Address        json.RawMessage   `json:"address,omitempty"`
	Geo            *Geo              `json:"geo,omitempty"`
	Amenities      []string          `json:"amenities,omitempty"`
	Timezone       string            `json:"timezone,omitempty"`
	Hours          []OpeningHours    `json:"hours,omitempty"`
	ExceptionHours []json.RawMessage `json:"exception_hours,omitempty"`
	// Inputs (lookup) are the requested ids this location answers.
	Inputs []ItemRef `json:"inputs,omitempty"`
}

// OpeningHours is one weekly opening, local time in the location's zone.
type OpeningHours struct {
	Day    string `json:"day"`
	Opens  string `json:"opens"`
	Closes string `json:"closes"`
}

// LocationsResponse is the result of the location tools.
type LocationsResponse struct {
	UCP        *ucp.Envelope   `json:"ucp"`
	Locations  []Location      `json:"locations"`
	Pagination *ucp.Pagination `json:"pagination,omitempty"`
	Messages   []ucp.Message   `json:"messages,omitempty"`
}

// SearchLocations finds a store's physical shops.
func (c *Client) SearchLocations(ctx context.Context, slug string, req *LocationSearchRequest, opts ...CallOption) (*LocationsResponse, error) {
	if req == nil {
		req = &LocationSearchRequest{}
	}
	raw, err := c.CallStoreTool(ctx, slug, "search_locations", struct {
		Location *LocationSearchRequest `json:"location"`
	}{req}, opts...)
	return decodeResult[LocationsResponse]("store.search_locations", raw, false, err)
}

// LookupLocations gets a store's shops by id.
func (c *Client) LookupLocations(ctx context.Context, slug string, req *LocationLookupRequest, opts ...CallOption) (*LocationsResponse, error) {
	if req == nil || len(req.IDs) == 0 {
		return nil, errors.New("ucpclient: LookupLocations: at least one id is required")
	}
	raw, err := c.CallStoreTool(ctx, slug, "lookup_locations", struct {
		Location *LocationLookupRequest `json:"location"`
	}{req}, opts...)
	return decodeResult[LocationsResponse]("store.lookup_locations", raw, false, err)
}

// ---- account tools (buyer bearer only) ----

// BuyerContext is get_buyer_context's result.
type BuyerContext struct {
	Profile               BuyerProfile  `json:"profile"`
	DefaultAddress        *BuyerAddress `json:"defaultAddress,omitempty"`
	OtherAddressLabels    []string      `json:"otherAddressLabels"`
	SavedCard             *SavedCard    `json:"savedCard,omitempty"`
	AgentClientID         string        `json:"agentClientId"`
	HasAgentAuthorization bool          `json:"hasAgentAuthorization"`
	// SpendingCaps is the calling agent's allowance, when one exists
	// (an expired one too).
	SpendingCaps *SpendingCaps `json:"spendingCaps,omitempty"`
}

// BuyerProfile is who the buyer is.
type BuyerProfile struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	Name       string `json:"name,omitempty"`
	Phone      string `json:"phone,omitempty"`
	SuiAddress string `json:"suiAddress,omitempty"`
}

// BuyerAddress is an address-book entry; Address is a UCP postal address.
type BuyerAddress struct {
	Label   string             `json:"label"`
	Default bool               `json:"default"`
	Address *ucp.PostalAddress `json:"address"`
}

// SavedCard is what an agent may know of the buyer's saved card.
type SavedCard struct {
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// SpendingCaps is an agent's spend allowance (integer minor units of
// Currency) and today's use of it.
type SpendingCaps struct {
	MaxPerOrderAmount    int64     `json:"maxPerOrderAmount"`
	DailyCapAmount       int64     `json:"dailyCapAmount"`
	SpentTodayAmount     int64     `json:"spentTodayAmount"`
	RemainingTodayAmount int64     `json:"remainingTodayAmount"`
	Currency             string    `json:"currency"`
	ExpiresAt            time.Time `json:"expiresAt"`
	AllowanceID          string    `json:"allowanceId,omitempty"`
}

// ListOrdersRequest pages list_my_orders (Limit 1-50; 0 means the
// server's default).
type ListOrdersRequest struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// OrderList is list_my_orders' result, newest first.
type OrderList struct {
	Orders     []OrderSummary `json:"orders"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// OrderSummary is one of the buyer's orders.
type OrderSummary struct {
	// OrderRef ("store/id") is what GetMyOrder takes.
	OrderRef      string             `json:"orderRef"`
	ID            string             `json:"id"`
	Store         string             `json:"store"`
	StoreName     string             `json:"storeName"`
	PlacedAt      time.Time          `json:"placedAt"`
	Currency      string             `json:"currency"`
	TotalAmount   int64              `json:"totalAmount"`
	Items         []OrderSummaryItem `json:"items"`
	PermalinkURL  string             `json:"permalinkUrl,omitempty"`
	PlacedBy      string             `json:"placedBy,omitempty"`
	AgentClientID string             `json:"agentClientId,omitempty"`
}

// OrderSummaryItem is one line of an order summary.
type OrderSummaryItem struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Quantity int64  `json:"quantity"`
}

// OrderDetail is get_my_order's result: the summary and the UCP order.
type OrderDetail struct {
	OrderSummary
	Order ucp.Order `json:"order"`
}

// AgentAuthorization is one agent the buyer authorized.
type AgentAuthorization struct {
	ClientID     string        `json:"clientId"`
	ClientName   string        `json:"clientName"`
	Scopes       []string      `json:"scopes"`
	SpendingCaps *SpendingCaps `json:"spendingCaps,omitempty"`
	UpdatedAt    time.Time     `json:"updatedAt"`
	IsCaller     bool          `json:"isCaller"`
}

// Revocation is revoke_agent_authorization's result.
type Revocation struct {
	ClientID      string `json:"clientId"`
	Revoked       bool   `json:"revoked"`
	GrantsRevoked int64  `json:"grantsRevoked"`
	// CallerRevoked: the caller revoked itself; its token no longer works.
	CallerRevoked bool `json:"callerRevoked"`
}

// SpendingLimitsUpdate lowers an agent's limits; at least one of the
// optional members is required, and none may be raised.
type SpendingLimitsUpdate struct {
	ClientID          string     `json:"client_id"`
	MaxPerOrderAmount *int64     `json:"max_per_order_amount,omitempty"`
	DailyCapAmount    *int64     `json:"daily_cap_amount,omitempty"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
}

// SpendingLimits is update_spending_limits' result: the limits in force.
type SpendingLimits struct {
	ClientID     string       `json:"clientId"`
	SpendingCaps SpendingCaps `json:"spendingCaps"`
}

func accountTool[T any](ctx context.Context, c *Client, name string, args any) (*T, error) {
	raw, err := c.CallAccountTool(ctx, name, args)
	return decodeResult[T]("account."+name, raw, false, err)
}

// GetBuyerContext returns the signed-in buyer's profile, addresses and
// the calling agent's allowance.
func (c *Client) GetBuyerContext(ctx context.Context) (*BuyerContext, error) {
	return accountTool[BuyerContext](ctx, c, "get_buyer_context", nil)
}

// ListMyOrders lists the buyer's orders at every store, newest first.
func (c *Client) ListMyOrders(ctx context.Context, req *ListOrdersRequest) (*OrderList, error) {
	return accountTool[OrderList](ctx, c, "list_my_orders", req)
}

// GetMyOrder reads one of the buyer's orders by its OrderRef (or bare id).
func (c *Client) GetMyOrder(ctx context.Context, orderRef string) (*OrderDetail, error) {
	if err := needID("GetMyOrder", orderRef); err != nil {
		return nil, err
	}
	return accountTool[OrderDetail](ctx, c, "get_my_order", struct {
		OrderID string `json:"order_id"`
	}{orderRef})
}

// ListMyAgentAuthorizations lists every agent the buyer authorized.
func (c *Client) ListMyAgentAuthorizations(ctx context.Context) ([]AgentAuthorization, error) {
	out, err := accountTool[struct {
		Authorizations []AgentAuthorization `json:"authorizations"`
	}](ctx, c, "list_my_agent_authorizations", nil)
	if err != nil {
		return nil, err
	}
	return out.Authorizations, nil
}

// RevokeAgentAuthorization ends an agent: its allowance, grants and
// tokens. Revoking the caller's own client id ends this client's token.
func (c *Client) RevokeAgentAuthorization(ctx context.Context, clientID string) (*Revocation, error) {
	if err := needID("RevokeAgentAuthorization", clientID); err != nil {
		return nil, err
	}
	return accountTool[Revocation](ctx, c, "revoke_agent_authorization", struct {
		ClientID string `json:"client_id"`
	}{clientID})
}

// UpdateSpendingLimits lowers an agent's per-order limit, daily cap or
// expiry (raising needs the buyer on the consent page).
func (c *Client) UpdateSpendingLimits(ctx context.Context, u *SpendingLimitsUpdate) (*SpendingLimits, error) {
	if u == nil || u.ClientID == "" {
		return nil, errors.New("ucpclient: UpdateSpendingLimits: a client id is required")
	}
	if u.MaxPerOrderAmount == nil && u.DailyCapAmount == nil && u.ExpiresAt == nil {
		return nil, errors.New("ucpclient: UpdateSpendingLimits: nothing to change")
	}
	return accountTool[SpendingLimits](ctx, c, "update_spending_limits", u)
}
