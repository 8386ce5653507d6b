package store

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrCouponSpent: CompleteSession was asked to redeem more of a coupon
// than its balance holds (or a coupon the buyer no longer has). Nothing
// was changed.
var ErrCouponSpent = errors.New("store: coupon balance too low")

// AccountDoc is the buyer account document kept in Buyer.Account: what
// the buyer account tools show and what a buyer-bound card payment
// charges when the agent sends no card.
type AccountDoc struct {
	Name       string         `json:"name,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	SuiAddress string         `json:"suiAddress,omitempty"`
	Addresses  []SavedAddress `json:"addresses,omitempty"`
	Card       *SavedCard     `json:"card,omitempty"`
	// Coupons are reusable store credit (Artos coupons): redeemable at
	// any store in their currency, one per order, up to the balance.
	Coupons []SavedCoupon `json:"coupons,omitempty"`
}

// SavedCoupon is a buyer's coupon. Amounts are minor units of Currency.
type SavedCoupon struct {
	ID          string    `json:"id"`
	Title       string    `json:"title,omitempty"`
	Balance     int64     `json:"balance"`
	Currency    string    `json:"currency"`
	MinSubtotal int64     `json:"minSubtotal,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// CouponRedemption takes Amount off a buyer's coupon; CompleteSession
// applies it with the order (Order.Redeem).
type CouponRedemption struct {
	BuyerID  string
	CouponID string
	Amount   int64
}

// SavedAddress is an address-book entry; Address is a UCP postal
// address object.
type SavedAddress struct {
	Label   string          `json:"label"`
	Default bool            `json:"default,omitempty"`
	Address json.RawMessage `json:"address"`
}

// SavedCard is the buyer's saved card, as a sandbox token: the secret
// never leaves the platform, and the agent never sees more than brand
// and last four digits.
type SavedCard struct {
	Token string `json:"token"`
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// ParseAccount reads a buyer's account document; an empty one is the
// zero document.
func ParseAccount(raw json.RawMessage) (*AccountDoc, error) {
	var a AccountDoc
	if len(raw) == 0 {
		return &a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
