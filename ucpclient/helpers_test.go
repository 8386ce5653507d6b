package ucpclient

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestToMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount, currency string
		want             int64
		wantErr          string // substring of the error; "" means success
	}{
		// Two decimals.
		{"12.50", "USD", 1250, ""},
		{"12.5", "USD", 1250, ""},
		{"12", "EUR", 1200, ""},
		{"0.01", "EUR", 1, ""},
		{"0", "EUR", 0, ""},
		{" 7.25 ", "usd", 725, ""}, // trimmed, code upper-cased
		{"12.345", "USD", 0, "at most 2 decimal places"},
		// Zero decimals.
		{"125", "JPY", 125, ""},
		{"1000", "KRW", 1000, ""},
		{"125.5", "JPY", 0, "no decimal places"},
		{"125.0", "JPY", 0, "no decimal places"},
		// Three decimals.
		{"1.234", "BHD", 1234, ""},
		{"1.2", "KWD", 1200, ""},
		{"0.005", "TND", 5, ""},
		{"1.2345", "OMR", 0, "at most 3 decimal places"},
		// Four (CLF).
		{"1.2345", "CLF", 12345, ""},
		// Bad input.
		{"", "USD", 0, "enter an amount"},
		{"-1", "USD", 0, "enter an amount"},
		{"+1", "USD", 0, "enter an amount"},
		{"1e3", "USD", 0, "enter an amount"},
		{"1,000.00", "USD", 0, "enter an amount"},
		{".5", "USD", 0, "enter an amount"},
		{"5.", "USD", 0, "enter an amount"},
		{"1 000", "USD", 0, "enter an amount"},
		{"NaN", "USD", 0, "enter an amount"},
		{"10000000000000.01", "USD", 0, "too large"},
		{"10000000000000.00", "USD", 1_000_000_000_000_000, ""},
		{"99999999999999999999999", "JPY", 0, "too large"},
		{"1", "SUI", 0, "unknown ISO 4217 currency"}, // the Artos table's 9-decimal SUI is not money here
		{"1", "XAU", 0, "no minor unit"},
		{"1", "", 0, "unknown ISO 4217 currency"},
		{"1", "DOLLARS", 0, "unknown ISO 4217 currency"},
	}
	for _, tt := range tests {
		got, err := ToMinorUnits(tt.amount, tt.currency)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("ToMinorUnits(%q, %q) = %d, %v; want %d", tt.amount, tt.currency, got, err, tt.want)
			}
			continue
		}
		var ae *AmountError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) || got != 0 {
			t.Errorf("ToMinorUnits(%q, %q) = %d, %v; want *AmountError containing %q", tt.amount, tt.currency, got, err, tt.wantErr)
		}
	}
}

func TestGrandTotalAndCurrencyOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		total      int64
		currency   string
	}{
		{"total entry", `{"currency":"EUR","totals":[{"type":"subtotal","amount":3000},{"type":"total","amount":3300}]}`, 3300, "EUR"},
		{"no total", `{"currency":"JPY","totals":[{"type":"subtotal","amount":3000}]}`, 0, "JPY"},
		{"no totals", `{"currency":"BHD"}`, 0, "BHD"},
		{"currency from first total", `{"totals":[{"type":"total","amount":5,"currency":"kwd"}]}`, 5, "KWD"},
		{"default USD", `{"totals":[]}`, 0, "USD"},
		{"fractional amount counts as absent", `{"totals":[{"type":"total","amount":12.5}]}`, 0, "USD"},
		{"not JSON", `nope`, 0, "USD"},
		{"not an object", `[1,2]`, 0, "USD"},
		{"empty", ``, 0, "USD"},
	}
	for _, tt := range tests {
		raw := json.RawMessage(tt.body)
		if got := GrandTotal(raw); got != tt.total {
			t.Errorf("%s: GrandTotal = %d, want %d", tt.name, got, tt.total)
		}
		if got := GrandTotal([]byte(tt.body)); got != tt.total {
			t.Errorf("%s: GrandTotal([]byte) = %d, want %d", tt.name, got, tt.total)
		}
		if got := CurrencyOf(raw); got != tt.currency {
			t.Errorf("%s: CurrencyOf = %q, want %q", tt.name, got, tt.currency)
		}
	}
	c := &ucp.Checkout{Currency: "EUR", Totals: []ucp.Total{{Type: "subtotal", Amount: 10}, {Type: "total", Amount: 12}}}
	if GrandTotal(c) != 12 || CurrencyOf(c) != "EUR" {
		t.Errorf("*ucp.Checkout: %d %s", GrandTotal(c), CurrencyOf(c))
	}
	var nilCheckout *ucp.Checkout
	if GrandTotal(nilCheckout) != 0 || CurrencyOf(nilCheckout) != "USD" {
		t.Error("nil *ucp.Checkout")
	}
}

func TestIsUCPErrorAndMessageOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		isError bool
		message string
	}{
		{`{"ucp":{"version":"2026-04-08","status":"error"},"messages":[{"type":"error","code":"spend_cap_exceeded","content":"too much"}]}`, true, "too much"},
		{`{"ucp":{"status":"success"},"id":"co_1","messages":[{"type":"info","content":"hi"},{"content":"second"}]}`, false, "hi"},
		{`{"ucp":{}}`, false, ""},
		{`{"status":"error"}`, false, ""},
		{`not json`, false, ""},
		{``, false, ""},
		{`{"ucp":{"status":"ERROR"}}`, false, ""},
	}
	for _, tt := range tests {
		if got := IsUCPError([]byte(tt.body)); got != tt.isError {
			t.Errorf("IsUCPError(%s) = %v", tt.body, got)
		}
		if got := MessageOf(json.RawMessage(tt.body)); got != tt.message {
			t.Errorf("MessageOf(%s) = %q, want %q", tt.body, got, tt.message)
		}
	}
}

func TestAsAllowanceID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b":   "3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b",
		" 3F2B8C1E-9D4A-4E6B-8F1A-2C3D4E5F6A7B ": "3F2B8C1E-9D4A-4E6B-8F1A-2C3D4E5F6A7B",
		"sh.artos.card":                          "",
		"pm_optional_allowance":                  "",
		"":                                       "",
		"3f2b8c1e9d4a4e6b8f1a2c3d4e5f6a7b":       "",
	} {
		if got := AsAllowanceID(in); got != want {
			t.Errorf("AsAllowanceID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckTotals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, totals string
		wantErr      string // "" means the totals add up
	}{
		{"subtotal and total", `[{"type":"subtotal","amount":3000},{"type":"total","amount":3000}]`, ""},
		{"everything", `[{"type":"subtotal","amount":10000},{"type":"discount","amount":-1000},{"type":"fulfillment","amount":500},{"type":"tax","amount":950},{"type":"fee","amount":50},{"type":"total","amount":10500}]`, ""},
		{"positive discount", `[{"type":"subtotal","amount":10000},{"type":"items_discount","amount":1000},{"type":"total","amount":9000}]`, ""},
		{"zero total, fully discounted", `[{"type":"subtotal","amount":500},{"type":"discount","amount":-500},{"type":"total","amount":0}]`, ""},
		{"only a total", `[{"type":"total","amount":0}]`, ""},
		{"totals naming the currency", `[{"type":"subtotal","amount":5,"currency":"eur"},{"type":"total","amount":5,"currency":"EUR"}]`, ""},
		{"total too low", `[{"type":"subtotal","amount":3000},{"type":"total","amount":1}]`, "add up to 30.00 EUR but the total is 0.01 EUR"},
		{"total too high", `[{"type":"subtotal","amount":3000},{"type":"tax","amount":300},{"type":"total","amount":3400}]`, "add up to"},
		{"negative tax", `[{"type":"subtotal","amount":3000},{"type":"tax","amount":-300},{"type":"total","amount":2700}]`, "tax is negative"},
		{"negative fulfillment", `[{"type":"subtotal","amount":3000},{"type":"fulfillment","amount":-1},{"type":"total","amount":2999}]`, "fulfillment is negative"},
		{"negative subtotal", `[{"type":"subtotal","amount":-5},{"type":"total","amount":-5}]`, "negative"},
		{"negative total", `[{"type":"subtotal","amount":100},{"type":"discount","amount":-200},{"type":"total","amount":-100}]`, "total is negative"},
		{"no total", `[{"type":"subtotal","amount":3000}]`, "no total"},
		{"two totals", `[{"type":"subtotal","amount":1},{"type":"total","amount":1},{"type":"total","amount":1}]`, "more than one total"},
		{"two subtotals", `[{"type":"subtotal","amount":1},{"type":"subtotal","amount":1},{"type":"total","amount":2}]`, "more than one subtotal"},
		{"unknown type", `[{"type":"subtotal","amount":1},{"type":"surprise","amount":1},{"type":"total","amount":2}]`, `unknown totals entry "surprise"`},
		{"fractional", `[{"type":"subtotal","amount":1.5},{"type":"total","amount":1.5}]`, "not an integer"},
		{"other currency", `[{"type":"subtotal","amount":1,"currency":"USD"},{"type":"total","amount":1}]`, "in USD but the checkout in EUR"},
		{"overflow", `[{"type":"subtotal","amount":9223372036854775807},{"type":"tax","amount":9223372036854775807},{"type":"total","amount":1}]`, "overflow"},
		{"min int discount", `[{"type":"subtotal","amount":1},{"type":"discount","amount":-9223372036854775808},{"type":"total","amount":1}]`, "out of range"},
	}
	for _, tt := range tests {
		raw := json.RawMessage(`{"id":"co_1","currency":"EUR","totals":` + tt.totals + `}`)
		err := CheckTotals(raw)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var te *TotalsError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want *TotalsError containing %q", tt.name, err, tt.wantErr)
		}
	}
	for _, bad := range []string{``, `nope`, `[]`, `{"totals":{}}`} {
		var te *TotalsError
		if err := CheckTotals([]byte(bad)); !errors.As(err, &te) {
			t.Errorf("CheckTotals(%q) = %v", bad, err)
		}
	}
	ok := &ucp.Checkout{Currency: "JPY", Totals: []ucp.Total{{Type: "subtotal", Amount: 1000}, {Type: "tax", Amount: 100}, {Type: "total", Amount: 1100}}}
	if err := CheckTotals(ok); err != nil {
		t.Error(err)
	}
	ok.Totals[2].Amount = math.MaxInt64
	if err := CheckTotals(ok); err == nil {
		t.Error("a wrong *ucp.Checkout total passed")
	}
	var nilCheckout *ucp.Checkout
	if err := CheckTotals(nilCheckout); err == nil {
		t.Error("nil checkout passed")
	}
}
