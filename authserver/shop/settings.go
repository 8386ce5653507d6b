package shop

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Settings is a store's settings document (store.Shop.Config).
type Settings struct {
	// Rails are the payment handler instance ids the store accepts.
	Rails []string `json:"rails"`
	// TaxBP is the sales-tax rate in basis points on the discounted items
	// plus shipping; 0 means prices include tax and no tax line is shown.
	TaxBP    int64  `json:"tax_bp,omitempty"`
	TaxLabel string `json:"tax_label,omitempty"`
	// RequireShipping makes a shipping destination mandatory before the
	// checkout is ready.
	RequireShipping bool             `json:"require_shipping,omitempty"`
	ShipTo          []string         `json:"ship_to,omitempty"` // ISO 3166-1 alpha-2
	Shipping        []ShippingOption `json:"shipping,omitempty"`
	// Discounts maps upper-cased codes to rules.
	Discounts map[string]DiscountRule `json:"discounts,omitempty"`
	// RequireSignedCompletion accepts complete_checkout only from the
	// signed trust tier (a verified RFC 9421 request signature).
	RequireSignedCompletion bool `json:"require_signed_completion,omitempty"`
	// Webhooks are the merchant's own (webhook_settings.go).
	Webhooks WebhookSettings `json:"webhooks,omitzero"`
	// Locations are the store's physical shops (locations.go): found
	// with search_locations and lookup_locations, and the destinations
	// of pickup.
	Locations []StoreLocation `json:"locations,omitempty"`
	// Pickup are the pickup options, cheapest first; none means one free
	// in-store pickup.
	Pickup []ShippingOption `json:"pickup,omitempty"`
}

type ShippingOption struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Amount      int64  `json:"amount"`
	// FreeOver waives the fee when the discounted items total reaches it.
	FreeOver int64 `json:"free_over,omitempty"`
}

type DiscountRule struct {
	Title     string `json:"title"`
	PercentBP int64  `json:"percent_bp,omitempty"` // off the items subtotal
	Amount    int64  `json:"amount,omitempty"`     // fixed, capped at what is left
}

// parseShopConfig reads a store's settings. Rails this build does not
// have are dropped (logged by the caller through dropped): a store keeps
// serving with the rails it can charge through. checkShopConfig refuses
// them when settings are written.
func parseShopConfig(raw json.RawMessage) (c Settings, dropped []string, err error) {
	c, err = decodeShopConfig(raw)
	if err != nil {
		return c, nil, err
	}
	known := c.Rails[:0:0]
	for _, id := range c.Rails {
		if _, ok := railByID(id); ok {
			known = append(known, id)
		} else {
			dropped = append(dropped, id)
		}
	}
	if c.Rails = known; len(known) == 0 {
		return c, dropped, errors.New("store configuration: no payment rail this build can charge through")
	}
	return c, dropped, nil
}

// checkShopConfig validates settings about to be written: a rail this
// build cannot charge through would be offered, then fail at completion.
func checkShopConfig(raw json.RawMessage) error {
	c, err := decodeShopConfig(raw)
	if err != nil {
		return err
	}
	for _, id := range c.Rails {
		if _, ok := railByID(id); !ok {
			return fmt.Errorf("store configuration: unknown payment rail %q", id)
		}
	}
	return checkLocations(c.Locations)
}

func decodeShopConfig(raw json.RawMessage) (Settings, error) {
	var c Settings
	if len(raw) == 0 {
		return c, errors.New("store has no configuration")
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("store configuration: %w", err)
	}
	if len(c.Rails) == 0 {
		return c, errors.New("store configuration: no payment rails")
	}
	if c.TaxBP < 0 || c.TaxBP > 10_000 {
		return c, errors.New("store configuration: tax_bp out of range")
	}
	for _, o := range slices.Concat(c.Shipping, c.Pickup) {
		if o.Amount < 0 || o.FreeOver < 0 {
			return c, errors.New("store configuration: negative shipping or pickup amount")
		}
	}
	for code, d := range c.Discounts {
		if code != strings.ToUpper(code) || d.PercentBP < 0 || d.PercentBP > 10_000 || d.Amount < 0 {
			return c, fmt.Errorf("store configuration: bad discount %q", code)
		}
	}
	return c, nil
}
