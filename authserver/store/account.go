package store

import "encoding/json"

// AccountDoc is the buyer account document kept in Buyer.Account: what
// the buyer account tools show and what a buyer-bound card payment
// charges when the agent sends no card.
type AccountDoc struct {
	Name       string         `json:"name,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	SuiAddress string         `json:"suiAddress,omitempty"`
	Addresses  []SavedAddress `json:"addresses,omitempty"`
	Card       *SavedCard     `json:"card,omitempty"`
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
