package account

import (
	"encoding/json"
	"time"
)

// The tools' results, in Artos's field names (camelCase) where Artos
// names them. Amounts are integer minor units of their currency.

// BuyerContext is get_buyer_context's result.
type BuyerContext struct {
	Profile Profile `json:"profile"`
	// DefaultAddress is the address marked default, or the first one
	// when none is; absent when the address book is empty.
	DefaultAddress     *Address   `json:"defaultAddress,omitempty"`
	OtherAddressLabels []string   `json:"otherAddressLabels"`
	SavedCard          *SavedCard `json:"savedCard,omitempty"`
	// AgentClientID is the calling agent's OAuth client id (what
	// revoke_agent_authorization and update_spending_limits take).
	AgentClientID string `json:"agentClientId"`
	// HasAgentAuthorization: the calling agent holds a spending
	// allowance that has not expired.
	HasAgentAuthorization bool `json:"hasAgentAuthorization"`
	// SpendingCaps is the calling agent's allowance, present whenever
	// one exists (an expired one too, so the agent can say why it cannot
	// pay).
	SpendingCaps *SpendingCaps `json:"spendingCaps,omitempty"`
}

// Profile is who the buyer is.
type Profile struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	Name       string `json:"name,omitempty"`
	Phone      string `json:"phone,omitempty"`
	SuiAddress string `json:"suiAddress,omitempty"`
}

// Address is an address-book entry; Address is a UCP postal address.
type Address struct {
	Label   string          `json:"label"`
	Default bool            `json:"default"`
	Address json.RawMessage `json:"address"`
}

// SavedCard is what an agent may know of the buyer's saved card: never
// the token.
type SavedCard struct {
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// SpendingCaps is an agent's spend allowance and today's use of it.
type SpendingCaps struct {
	MaxPerOrderAmount int64 `json:"maxPerOrderAmount"`
	DailyCapAmount    int64 `json:"dailyCapAmount"`
	// SpentTodayAmount counts today's (UTC) orders and the payments in
	// flight that hold part of the cap.
	SpentTodayAmount     int64     `json:"spentTodayAmount"`
	RemainingTodayAmount int64     `json:"remainingTodayAmount"`
	Currency             string    `json:"currency"`
	ExpiresAt            time.Time `json:"expiresAt"`
	// AllowanceID is the payment_mandate_id an AP2 mandate may name.
	AllowanceID string `json:"allowanceId,omitempty"`
}

// Addresses is list_my_addresses' result.
type Addresses struct {
	Addresses []Address `json:"addresses"`
}

// OrderList is list_my_orders' result.
type OrderList struct {
	Orders []OrderSummary `json:"orders"`
	// NextCursor, when present, fetches the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// OrderSummary is one order in a list.
type OrderSummary struct {
	// OrderRef is "store/id", what get_my_order takes.
	OrderRef     string      `json:"orderRef"`
	ID           string      `json:"id"`
	Store        string      `json:"store"`
	StoreName    string      `json:"storeName"`
	PlacedAt     time.Time   `json:"placedAt"`
	Currency     string      `json:"currency"`
	TotalAmount  int64       `json:"totalAmount"`
	Items        []OrderItem `json:"items"`
	PermalinkURL string      `json:"permalinkUrl,omitempty"`
	// PlacedBy is "agent" (through an agent's token) or "human" (the
	// buyer on the hosted payment page).
	PlacedBy string `json:"placedBy,omitempty"`
	// AgentClientID is the client the order was placed through.
	AgentClientID string `json:"agentClientId,omitempty"`
}

// OrderItem is one line of an order summary.
type OrderItem struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Quantity int64  `json:"quantity"`
}

// OrderDetail is get_my_order's result: the summary and the UCP order
// itself (line items, totals, fulfillment with the destination and its
// events).
type OrderDetail struct {
	OrderSummary
	Order json.RawMessage `json:"order"`
}

// AgentAuthorizations is list_my_agent_authorizations' result.
type AgentAuthorizations struct {
	Authorizations []AgentAuthorization `json:"authorizations"`
}

// AgentAuthorization is one agent the buyer authorized.
type AgentAuthorization struct {
	ClientID   string   `json:"clientId"`
	ClientName string   `json:"clientName"`
	Scopes     []string `json:"scopes"`
	// SpendingCaps is present when the agent may spend.
	SpendingCaps *SpendingCaps `json:"spendingCaps,omitempty"`
	UpdatedAt    time.Time     `json:"updatedAt"`
	// IsCaller: this is the agent making the call.
	IsCaller bool `json:"isCaller"`
}

// Revocation is revoke_agent_authorization's result.
type Revocation struct {
	ClientID string `json:"clientId"`
	Revoked  bool   `json:"revoked"`
	// GrantsRevoked counts the sign-ins (each with its tokens) ended
	// now; 0 when the agent was already revoked.
	GrantsRevoked int64 `json:"grantsRevoked"`
	// CallerRevoked: the caller revoked itself; its token no longer
	// works.
	CallerRevoked bool `json:"callerRevoked"`
}

// SpendingLimits is update_spending_limits' result: the limits now in
// force.
type SpendingLimits struct {
	ClientID     string       `json:"clientId"`
	SpendingCaps SpendingCaps `json:"spendingCaps"`
}
