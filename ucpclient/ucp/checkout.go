package ucp

import "encoding/json"

// Version is the protocol version these types describe and servers built
// on them serve.
const Version = "2026-04-08"

// Status values of the response envelope.
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Capability names of the shopping service (2026-04-08).
const (
	CapCheckout        = "dev.ucp.shopping.checkout"
	CapCart            = "dev.ucp.shopping.cart"
	CapOrder           = "dev.ucp.shopping.order"
	CapCatalogSearch   = "dev.ucp.shopping.catalog.search"
	CapCatalogLookup   = "dev.ucp.shopping.catalog.lookup"
	CapFulfillment     = "dev.ucp.shopping.fulfillment"
	CapDiscount        = "dev.ucp.shopping.discount"
	CapBuyerConsent    = "dev.ucp.shopping.buyer_consent"
	CapAP2Mandate      = "dev.ucp.shopping.ap2_mandate"
	CapIdentityLinking = "dev.ucp.common.identity_linking"
	ServiceShopping    = "dev.ucp.shopping"
)

// Checkout statuses.
const (
	CheckoutIncomplete         = "incomplete"
	CheckoutRequiresEscalation = "requires_escalation"
	CheckoutReadyForComplete   = "ready_for_complete"
	CheckoutCompleteInProgress = "complete_in_progress"
	CheckoutCompleted          = "completed"
	CheckoutCanceled           = "canceled"
)

// Envelope is the `ucp` member of every response: the negotiated version,
// the capabilities relevant to the operation and, on checkouts, the
// resolved payment handlers.
type Envelope struct {
	Version         string                      `json:"version"`
	Status          string                      `json:"status,omitempty"`
	Capabilities    map[string][]Capability     `json:"capabilities,omitempty"`
	PaymentHandlers map[string][]PaymentHandler `json:"payment_handlers,omitempty"`
}

// ErrorResponse is the envelope for outcomes where no resource exists or
// was created. It travels with HTTP 200 (REST) or as a tool result (MCP).
type ErrorResponse struct {
	UCP         Envelope  `json:"ucp"`
	Messages    []Message `json:"messages"`
	ContinueURL string    `json:"continue_url,omitempty"`
}

// Message is one entry of `messages`: type "error", "warning" or "info".
type Message struct {
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	Path        string `json:"path,omitempty"` // RFC 9535 JSONPath
	ContentType string `json:"content_type,omitempty"`
	Content     string `json:"content"`
	// Severity is required on errors: recoverable, requires_buyer_input,
	// requires_buyer_review or unrecoverable.
	Severity     string `json:"severity,omitempty"`
	Presentation string `json:"presentation,omitempty"` // warnings: notice|disclosure
}

// Message severities.
const (
	SeverityRecoverable        = "recoverable"
	SeverityRequiresBuyerInput = "requires_buyer_input"
	SeverityRequiresReview     = "requires_buyer_review"
	SeverityUnrecoverable      = "unrecoverable"
)

// Total is one entry of `totals`; Amount is signed, in minor units.
type Total struct {
	Type        string      `json:"type"`
	DisplayText string      `json:"display_text,omitempty"`
	Amount      int64       `json:"amount"`
	Lines       []TotalLine `json:"lines,omitempty"`
}

// TotalLine itemises a Total.
type TotalLine struct {
	DisplayText string `json:"display_text"`
	Amount      int64  `json:"amount"`
}

// Well-known total types.
const (
	TotalSubtotal      = "subtotal"
	TotalItemsDiscount = "items_discount"
	TotalDiscount      = "discount"
	TotalFulfillment   = "fulfillment"
	TotalTax           = "tax"
	TotalFee           = "fee"
	TotalTotal         = "total"
)

// Item is the product a line refers to. Requests carry only ID.
type Item struct {
	ID       string `json:"id"`
	Title    string `json:"title,omitempty"`
	Price    int64  `json:"price"`
	ImageURL string `json:"image_url,omitempty"`
}

// LineItem is one checkout or cart line.
type LineItem struct {
	ID       string  `json:"id,omitempty"`
	Item     Item    `json:"item"`
	Quantity int64   `json:"quantity"`
	Totals   []Total `json:"totals"`
	ParentID string  `json:"parent_id,omitempty"`
}

// Buyer is who is buying.
type Buyer struct {
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// Context holds non-binding hints from the platform.
type Context struct {
	AddressCountry string   `json:"address_country,omitempty"`
	AddressRegion  string   `json:"address_region,omitempty"`
	PostalCode     string   `json:"postal_code,omitempty"`
	Intent         string   `json:"intent,omitempty"`
	Language       string   `json:"language,omitempty"`
	Currency       string   `json:"currency,omitempty"`
	Eligibility    []string `json:"eligibility,omitempty"`
}

// Link is a policy or information link.
type Link struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Title string `json:"title,omitempty"`
}

// PostalAddress is a postal address; destinations add an ID.
type PostalAddress struct {
	ID              string `json:"id,omitempty"`
	StreetAddress   string `json:"street_address,omitempty"`
	ExtendedAddress string `json:"extended_address,omitempty"`
	AddressLocality string `json:"address_locality,omitempty"`
	AddressRegion   string `json:"address_region,omitempty"`
	AddressCountry  string `json:"address_country,omitempty"`
	PostalCode      string `json:"postal_code,omitempty"`
	FirstName       string `json:"first_name,omitempty"`
	LastName        string `json:"last_name,omitempty"`
	PhoneNumber     string `json:"phone_number,omitempty"`
}

// Fulfillment is the fulfillment extension's checkout member.
type Fulfillment struct {
	Methods          []FulfillmentMethod `json:"methods,omitempty"`
	AvailableMethods []json.RawMessage   `json:"available_methods,omitempty"`
}

// FulfillmentMethod is one way lines reach the buyer.
type FulfillmentMethod struct {
	ID                    string             `json:"id"`
	Type                  string             `json:"type"`                    // shipping|pickup
	LineItemIDs           []string           `json:"line_item_ids,omitempty"` // omitted, not null, when a request leaves it out
	Destinations          []Destination      `json:"destinations,omitempty"`
	SelectedDestinationID string             `json:"selected_destination_id,omitempty"`
	Groups                []FulfillmentGroup `json:"groups,omitempty"`
}

// Destination is one of a fulfillment method's destinations
// (fulfillment_destination.json): a shipping destination, a postal
// address with an id; or, for pickup, a retail location
// (retail_location.json): id, name and the location's address. Type is
// "business_location" on retail locations, the discriminator the UCP
// draft and the Artos API add; 2026-04-08 allows the extra member.
type Destination struct {
	PostalAddress
	Type    string         `json:"type,omitempty"`
	Name    string         `json:"name,omitempty"`
	Address *PostalAddress `json:"address,omitempty"`
}

// FulfillmentGroup is a shipment of some lines with its options.
type FulfillmentGroup struct {
	ID               string              `json:"id"`
	LineItemIDs      []string            `json:"line_item_ids"`
	Options          []FulfillmentOption `json:"options,omitempty"`
	SelectedOptionID string              `json:"selected_option_id,omitempty"`
}

// FulfillmentOption is a shipping speed or carrier choice.
type FulfillmentOption struct {
	ID          string  `json:"id"`
	Title       string  `json:"title"`
	Description string  `json:"description,omitempty"`
	Carrier     string  `json:"carrier,omitempty"`
	Totals      []Total `json:"totals"`
}

// Discounts is the discount extension's member.
type Discounts struct {
	Codes   []string          `json:"codes,omitempty"`
	Applied []AppliedDiscount `json:"applied,omitempty"`
}

// AppliedDiscount is a discount in effect.
type AppliedDiscount struct {
	Code        string       `json:"code,omitempty"`
	Title       string       `json:"title"`
	Amount      int64        `json:"amount"`
	Automatic   bool         `json:"automatic"`
	Method      string       `json:"method,omitempty"` // each|across
	Allocations []Allocation `json:"allocations,omitempty"`
}

// Allocation says where a discount landed.
type Allocation struct {
	Path   string `json:"path"`
	Amount int64  `json:"amount"`
}

// Payment carries instruments.
type Payment struct {
	Instruments []PaymentInstrument `json:"instruments,omitempty"`
}

// PaymentInstrument is a way to pay through a handler instance.
type PaymentInstrument struct {
	ID             string          `json:"id,omitempty"`
	HandlerID      string          `json:"handler_id"`
	Type           string          `json:"type,omitempty"`
	Selected       bool            `json:"selected,omitempty"`
	Display        json.RawMessage `json:"display,omitempty"`
	BillingAddress *PostalAddress  `json:"billing_address,omitempty"`
	// Credential is request-only: servers never echo it.
	Credential *Credential `json:"credential,omitempty"`
}

// Credential is a payment credential; only tokens are accepted at checkout.
type Credential struct {
	Type  string `json:"type,omitempty"`
	Token string `json:"token,omitempty"`
}

// AP2 is the AP2 mandates extension's member.
type AP2 struct {
	MerchantAuthorization string `json:"merchant_authorization,omitempty"`
	CheckoutMandate       string `json:"checkout_mandate,omitempty"`
	PaymentMandate        string `json:"payment_mandate,omitempty"`
}

// OrderConfirmation is set on a completed checkout.
type OrderConfirmation struct {
	ID           string `json:"id"`
	Label        string `json:"label,omitempty"`
	PermalinkURL string `json:"permalink_url"`
}

// Checkout is a checkout session as a business returns it.
type Checkout struct {
	UCP         *Envelope          `json:"ucp,omitempty"`
	ID          string             `json:"id"`
	LineItems   []LineItem         `json:"line_items"`
	Buyer       *Buyer             `json:"buyer,omitempty"`
	Context     *Context           `json:"context,omitempty"`
	Signals     map[string]any     `json:"signals,omitempty"`
	Attribution map[string]string  `json:"attribution,omitempty"`
	Status      string             `json:"status"`
	Currency    string             `json:"currency"`
	Totals      []Total            `json:"totals"`
	Messages    []Message          `json:"messages,omitempty"`
	Links       []Link             `json:"links"`
	ExpiresAt   string             `json:"expires_at,omitempty"`
	ContinueURL string             `json:"continue_url,omitempty"`
	Payment     *Payment           `json:"payment,omitempty"`
	Order       *OrderConfirmation `json:"order,omitempty"`
	Fulfillment *Fulfillment       `json:"fulfillment,omitempty"`
	Discounts   *Discounts         `json:"discounts,omitempty"`
	AP2         *AP2               `json:"ap2,omitempty"`
}

// Cart is a cart as a business returns it.
type Cart struct {
	UCP         *Envelope         `json:"ucp,omitempty"`
	ID          string            `json:"id"`
	LineItems   []LineItem        `json:"line_items"`
	Buyer       *Buyer            `json:"buyer,omitempty"`
	Context     *Context          `json:"context,omitempty"`
	Signals     map[string]any    `json:"signals,omitempty"`
	Attribution map[string]string `json:"attribution,omitempty"`
	Currency    string            `json:"currency"`
	Totals      []Total           `json:"totals"`
	Messages    []Message         `json:"messages,omitempty"`
	Links       []Link            `json:"links,omitempty"`
	ContinueURL string            `json:"continue_url,omitempty"`
	ExpiresAt   string            `json:"expires_at,omitempty"`
	Discounts   *Discounts        `json:"discounts,omitempty"`
}

// Order is a placed order's full current snapshot.
type Order struct {
	UCP          *Envelope         `json:"ucp,omitempty"`
	ID           string            `json:"id"`
	CheckoutID   string            `json:"checkout_id"`
	Label        string            `json:"label,omitempty"`
	PermalinkURL string            `json:"permalink_url"`
	LineItems    []OrderLineItem   `json:"line_items"`
	Fulfillment  OrderFulfillment  `json:"fulfillment"`
	Adjustments  []json.RawMessage `json:"adjustments,omitempty"`
	Currency     string            `json:"currency"`
	Totals       []Total           `json:"totals"`
	Messages     []Message         `json:"messages,omitempty"`
	Attribution  map[string]string `json:"attribution,omitempty"`
}

// OrderLineItem is a line of an order with its fulfilment quantities.
type OrderLineItem struct {
	ID       string            `json:"id"`
	Item     Item              `json:"item"`
	Quantity OrderLineQuantity `json:"quantity"`
	Totals   []Total           `json:"totals"`
	Status   string            `json:"status"` // processing|partial|fulfilled|removed
	ParentID string            `json:"parent_id,omitempty"`
}

// OrderLineQuantity tracks a line's units.
type OrderLineQuantity struct {
	Original  int64 `json:"original,omitempty"`
	Total     int64 `json:"total"`
	Fulfilled int64 `json:"fulfilled"`
}

// OrderFulfillment holds promises and what happened.
type OrderFulfillment struct {
	Expectations []Expectation      `json:"expectations"`
	Events       []FulfillmentEvent `json:"events"`
}

// Expectation is a fulfilment promise to the buyer.
type Expectation struct {
	ID          string         `json:"id"`
	LineItems   []LineQuantity `json:"line_items"`
	MethodType  string         `json:"method_type"`
	Destination *PostalAddress `json:"destination"`
	Description string         `json:"description,omitempty"`
}

// LineQuantity names some units of a line.
type LineQuantity struct {
	ID       string `json:"id"`
	Quantity int64  `json:"quantity"`
}

// FulfillmentEvent is an append-only fulfilment event.
type FulfillmentEvent struct {
	ID         string         `json:"id"`
	OccurredAt string         `json:"occurred_at"`
	Type       string         `json:"type"`
	LineItems  []LineQuantity `json:"line_items"`
}
