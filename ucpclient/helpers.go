package ucpclient

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The helpers below are the Artos SDK's (@artos-commerce/ucp-client
// 0.14.0) toMinorUnits, grandTotal, currencyOf, isUcpError, messageOf and
// asAllowanceId, in Go, plus CheckTotals, the totals sanity guard its
// confirmPurchase lacks.

// AmountError is the error ToMinorUnits returns for an amount or currency
// it refuses; match it with errors.As. It is ucp.AmountError.
type AmountError = ucp.AmountError

// ToMinorUnits converts a decimal amount in major units ("12.50") into an
// int64 count of the currency's minor units (1250), by the currency's ISO
// 4217 exponent, using integer arithmetic only: USD "12.5" is 1250, JPY
// "125" is 125, BHD "1.234" is 1234. It is ucp.ParseMinor, the one
// currency table of the SDK; the currency code is upper-cased first.
//
// Unlike the Artos SDK's toMinorUnits, which takes a JavaScript number and
// rounds, ToMinorUnits never rounds: more decimals than the currency has
// ("12.345" USD, "1.5" JPY) are refused, as are signs, exponents,
// thousands separators, amounts above 10^15 minor units and codes ISO 4217
// does not list with a minor unit (the SDK's "SUI" included). Every error
// is an *AmountError.
func ToMinorUnits(amount, currency string) (int64, error) {
	return ucp.ParseMinor(amount, strings.ToUpper(strings.TrimSpace(currency)))
}

// CheckoutBody is a checkout the helpers read: the JSON body as a store
// returned it, or the decoded *ucp.Checkout.
type CheckoutBody interface {
	json.RawMessage | []byte | *ucp.Checkout
}

// totalsView is what the helpers read from a checkout body: tolerant
// where ucp.Checkout is strict (amounts are json.Number, totals may carry a
// currency as the Artos API's do).
type totalsView struct {
	Currency string `json:"currency"`
	Totals   []struct {
		Type     string      `json:"type"`
		Amount   json.Number `json:"amount"`
		Currency string      `json:"currency"`
	} `json:"totals"`
}

// viewOf reads the totals of a checkout in either form; ok is false when a
// JSON body is not an object of that shape.
func viewOf[T CheckoutBody](checkout T) (v totalsView, ok bool) {
	switch c := any(checkout).(type) {
	case *ucp.Checkout:
		if c == nil {
			return v, false
		}
		v.Currency = c.Currency
		for _, t := range c.Totals {
			v.Totals = append(v.Totals, struct {
				Type     string      `json:"type"`
				Amount   json.Number `json:"amount"`
				Currency string      `json:"currency"`
			}{Type: t.Type, Amount: json.Number(fmt.Sprint(t.Amount))})
		}
		return v, true
	case json.RawMessage:
		return decodeView(c)
	case []byte:
		return decodeView(c)
	}
	return v, false
}

func decodeView(b []byte) (v totalsView, ok bool) {
	if err := json.Unmarshal(b, &v); err != nil {
		return totalsView{}, false
	}
	return v, true
}

// GrandTotal returns the amount, in minor units, of the checkout's totals
// entry of type "total", or 0 when there is none or the body cannot be
// read (the Artos SDK's grandTotal). An amount that is not an integer
// counts as absent. Use CheckTotals before trusting it for money.
func GrandTotal[T CheckoutBody](checkout T) int64 {
	v, _ := viewOf(checkout)
	for _, t := range v.Totals {
		if t.Type == ucp.TotalTotal {
			n, err := t.Amount.Int64()
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// CurrencyOf returns the checkout's currency: the top-level currency,
// else the first totals entry's currency, else "USD" (the Artos SDK's
// currencyOf, upper-cased).
func CurrencyOf[T CheckoutBody](checkout T) string {
	v, _ := viewOf(checkout)
	if v.Currency != "" {
		return strings.ToUpper(v.Currency)
	}
	if len(v.Totals) > 0 && v.Totals[0].Currency != "" {
		return strings.ToUpper(v.Totals[0].Currency)
	}
	return "USD"
}

// IsUCPError reports whether a UCP response body says it is an error:
// ucp.status is "error" (the Artos SDK's isUcpError). A body that is not
// JSON is not a UCP error; it is no UCP response at all.
func IsUCPError(body []byte) bool {
	var v struct {
		UCP struct {
			Status string `json:"status"`
		} `json:"ucp"`
	}
	return json.Unmarshal(body, &v) == nil && v.UCP.Status == ucp.StatusError
}

// MessageOf returns the content of the first of a UCP response's
// messages, or "" (the Artos SDK's messageOf).
func MessageOf(body []byte) string {
	var v struct {
		Messages []ucp.Message `json:"messages"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.Messages) == 0 {
		return ""
	}
	return v.Messages[0].Content
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// AsAllowanceID returns id when it is a UUID, the only form a buyer's
// allowance id (payment_mandate_id) takes, and "" otherwise (the Artos
// SDK's asAllowanceId). Callers often pass a rail id such as
// "sh.artos.card" or "pm_…" where an allowance id goes; a store would
// refuse the mandate (mandate_scope_mismatch), so it is dropped instead.
func AsAllowanceID(id string) string {
	id = strings.TrimSpace(id)
	if !uuidPattern.MatchString(id) {
		return ""
	}
	return id
}

// TotalsError is a checkout whose totals do not add up, so that it must
// not be completed without the buyer looking at it. Match it with
// errors.As.
type TotalsError struct {
	// Reason says what is wrong, for logs and for the buyer.
	Reason string
}

func (e *TotalsError) Error() string { return "ucpclient: checkout totals: " + e.Reason }

// CheckTotals is the totals sanity guard run before completing a checkout
// without the buyer: it returns a *TotalsError unless
//
//   - there is exactly one "total" entry and at most one "subtotal";
//   - every amount is an integer count of minor units;
//   - subtotal, fulfillment, tax, fee and total are not negative;
//   - total = subtotal − discounts + fulfillment + tax + fees, where a
//     discount ("discount", "items_discount") reduces the total by its
//     absolute value, whichever sign the store writes it with;
//   - every total that names a currency names the checkout's;
//   - there is no entry of a type it does not know, whose effect on the
//     total it could not check.
//
// A checkout that fails it may still be right: show it to the buyer
// (continue_url) rather than complete it autonomously.
func CheckTotals[T CheckoutBody](checkout T) error {
	v, ok := viewOf(checkout)
	if !ok {
		return &TotalsError{Reason: "the checkout is not a JSON object with totals"}
	}
	var (
		sum, total        int64
		totals, subtotals int
		overflow          bool
	)
	add := func(n int64) {
		if (n > 0 && sum > math.MaxInt64-n) || (n < 0 && sum < math.MinInt64-n) {
			overflow = true
			return
		}
		sum += n
	}
	for _, t := range v.Totals {
		n, err := t.Amount.Int64()
		if err != nil {
			return &TotalsError{Reason: fmt.Sprintf("the %s amount %q is not an integer count of minor units", t.Type, t.Amount)}
		}
		if t.Currency != "" && v.Currency != "" && !strings.EqualFold(t.Currency, v.Currency) {
			return &TotalsError{Reason: fmt.Sprintf("the %s is in %s but the checkout in %s", t.Type, t.Currency, v.Currency)}
		}
		switch t.Type {
		case ucp.TotalTotal:
			totals++
			total = n
			if n < 0 {
				return &TotalsError{Reason: "the total is negative"}
			}
			continue
		case ucp.TotalSubtotal:
			subtotals++
		case ucp.TotalFulfillment, ucp.TotalTax, ucp.TotalFee:
		case ucp.TotalDiscount, ucp.TotalItemsDiscount:
			if n == math.MinInt64 {
				return &TotalsError{Reason: "a discount is out of range"}
			}
			if n > 0 {
				n = -n
			}
			add(n)
			continue
		default:
			return &TotalsError{Reason: fmt.Sprintf("unknown totals entry %q; its effect on the total cannot be checked", t.Type)}
		}
		if n < 0 {
			return &TotalsError{Reason: fmt.Sprintf("the %s is negative", t.Type)}
		}
		add(n)
	}
	switch {
	case totals == 0:
		return &TotalsError{Reason: "there is no total"}
	case totals > 1:
		return &TotalsError{Reason: "there is more than one total"}
	case subtotals > 1:
		return &TotalsError{Reason: "there is more than one subtotal"}
	case overflow:
		return &TotalsError{Reason: "the amounts overflow"}
	case sum != total:
		cur := CurrencyOf(checkout)
		return &TotalsError{Reason: fmt.Sprintf("the entries add up to %s %s but the total is %s %s",
			ucp.FormatMinor(sum, cur), cur, ucp.FormatMinor(total, cur), cur)}
	}
	return nil
}
