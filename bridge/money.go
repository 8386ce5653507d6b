package bridge

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// MinorUnits converts a price given in major units (a JSON number such as
// 12.5, or a decimal string "12.50") into integer minor units of
// currency by its ISO 4217 exponent: USD 12.5 is 1250, JPY 1500 is 1500.
// It never rounds: more decimals than the currency has, a sign, NaN,
// infinities, exponents and amounts above 10^15 minor units are refused
// with an *ucp.AmountError (ucp.ParseMinor does the arithmetic).
//
// A JSON number reaches the bridge as a float64; it is written back in
// its shortest round-trip form, which is the decimal the client sent for
// any amount of up to 15 significant digits, so the conversion stays
// exact.
func MinorUnits(amount any, currency string) (int64, error) {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	var s string
	switch v := amount.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, &ucp.AmountError{Currency: cur, Reason: "the amount is not a number"}
		}
		if v < 0 {
			return 0, &ucp.AmountError{Currency: cur, Reason: "the amount cannot be negative"}
		}
		if v >= 1e16 {
			return 0, &ucp.AmountError{Currency: cur, Reason: "the amount is too large"}
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	default:
		return 0, &ucp.AmountError{Currency: cur, Reason: "the amount must be a number or a decimal string"}
	}
	if strings.HasPrefix(strings.TrimSpace(s), "-") {
		return 0, &ucp.AmountError{Currency: cur, Reason: "the amount cannot be negative"}
	}
	return ucp.ParseMinor(s, cur)
}
