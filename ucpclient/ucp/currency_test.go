package ucp

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestCurrencyExponent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code string
		want int
	}{
		// Every code with minor unit 0.
		{"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0},
		{"KMF", 0}, {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0},
		{"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0},
		// Every code with minor unit 3.
		{"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3},
		{"TND", 3},
		// Every code with minor unit 4.
		{"CLF", 4}, {"UYW", 4},
		// Minor unit 2, including codes other sources get wrong and the
		// most recent additions.
		{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CHF", 2}, {"CNY", 2}, {"INR", 2},
		{"HUF", 2}, {"TWD", 2}, {"IDR", 2}, {"COP", 2}, {"MGA", 2}, {"MRU", 2},
		{"IRR", 2}, {"LBP", 2}, {"SLE", 2}, {"VES", 2}, {"VED", 2}, {"ZWG", 2},
		{"XCG", 2}, {"XAD", 2}, {"STN", 2}, {"BYN", 2}, {"USN", 2}, {"MXV", 2},
		{"AED", 2}, {"ZMW", 2}, {"CHE", 2}, {"CHW", 2}, {"BOV", 2}, {"COU", 2},
	} {
		got, ok := CurrencyExponent(tc.code)
		if !ok || got != tc.want {
			t.Errorf("CurrencyExponent(%q) = %d, %v; want %d, true", tc.code, got, ok, tc.want)
		}
	}
}

func TestCurrencyExponentUnknown(t *testing.T) {
	t.Parallel()
	for _, code := range []string{
		"", "usd", "Usd", "eur", "jpy", "XYZ", "US", "USDD", " USD", "USD ", "U$D", "ÉUR",
		// No minor unit in ISO 4217.
		"XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA", "XBB", "XBC", "XBD", "XTS", "XXX",
		// Withdrawn, no longer in List One.
		"ANG", "BGN", "CUC", "HRK", "SLL", "ZWL", "VEF", "MRO", "STD", "BYR", "LTL", "EEK", "DEM", "USS",
	} {
		if got, ok := CurrencyExponent(code); ok {
			t.Errorf("CurrencyExponent(%q) = %d, true; want false", code, got)
		}
	}
}

// TestISO4217Table checks the table's shape against the published census of
// List One (2026-01-01): 178 codes, by minor unit 17×0, 139×2, 7×3, 2×4 and
// 13×N.A.
func TestISO4217Table(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool, len(iso4217))
	count := map[int]int{}
	for i, e := range iso4217 {
		if len(e.code) != 3 || strings.Trim(e.code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Errorf("entry %d: code %q is not three upper-case ASCII letters", i, e.code)
		}
		if seen[e.code] {
			t.Errorf("entry %d: duplicate code %q", i, e.code)
		}
		seen[e.code] = true
		if i > 0 && iso4217[i-1].code >= e.code {
			t.Errorf("entry %d: %q does not sort after %q", i, e.code, iso4217[i-1].code)
		}
		switch e.exp {
		case noMinorUnit, 0, 2, 3, 4:
		default:
			t.Errorf("%s: exponent %d is not one ISO uses", e.code, e.exp)
		}
		count[int(e.exp)]++
		// The binary search must find every entry.
		got, ok := CurrencyExponent(e.code)
		if want := e.exp != noMinorUnit; ok != want || (ok && got != int(e.exp)) {
			t.Errorf("CurrencyExponent(%q) = %d, %v; table has %d", e.code, got, ok, e.exp)
		}
	}
	if len(iso4217) != 178 {
		t.Errorf("table has %d codes; List One 2026-01-01 has 178", len(iso4217))
	}
	want := map[int]int{0: 17, 2: 139, 3: 7, 4: 2, noMinorUnit: 13}
	for exp, n := range want {
		if count[exp] != n {
			t.Errorf("%d codes with exponent %d; want %d", count[exp], exp, n)
		}
	}
}

func TestParseMinor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount, currency string
		want             int64
	}{
		{"125", "EUR", 12500},
		{"125.5", "EUR", 12550},
		{"125.50", "EUR", 12550},
		{"125.05", "EUR", 12505},
		{" 7 ", "EUR", 700},
		{"\t7.1\n", "USD", 710},
		{"0", "EUR", 0},
		{"0.00", "EUR", 0},
		{"0.01", "EUR", 1},
		{"007.10", "EUR", 710},
		{"10000000000000", "EUR", 1_000_000_000_000_000},
		{"10000000000000.00", "USD", 1_000_000_000_000_000},
		{"9999999999999.99", "USD", 999_999_999_999_999},
		{"125", "JPY", 125},
		{"0", "JPY", 0},
		{"1000000000000000", "KRW", 1_000_000_000_000_000},
		{"00001000000000000000", "VND", 1_000_000_000_000_000},
		{"1.234", "BHD", 1234},
		{"1.2", "BHD", 1200},
		{"125", "KWD", 125000},
		{"0.001", "OMR", 1},
		{"1000000000000", "TND", 1_000_000_000_000_000},
		{"1.2345", "CLF", 12345},
		{"1", "CLF", 10000},
		{"0.0001", "UYW", 1},
		{"100000000000", "CLF", 1_000_000_000_000_000},
	} {
		got, err := ParseMinor(tc.amount, tc.currency)
		if err != nil || got != tc.want {
			t.Errorf("ParseMinor(%q, %q) = %d, %v; want %d", tc.amount, tc.currency, got, err, tc.want)
		}
	}
}

func TestParseMinorRefuses(t *testing.T) {
	t.Parallel()
	const (
		eurHint = "enter an amount like 125 or 125.50"
		jpyHint = "enter a whole amount like 125"
		bhdHint = "enter an amount like 125 or 125.500"
		clfHint = "enter an amount like 125 or 125.5000"
	)
	for _, tc := range []struct {
		amount, currency string
		reason           string // the exact Reason
	}{
		{"", "EUR", eurHint},
		{"   ", "EUR", eurHint},
		{"-5", "EUR", eurHint},
		{"+5", "EUR", eurHint},
		{"-0", "EUR", eurHint},
		{"1e3", "EUR", eurHint},
		{"1E3", "EUR", eurHint},
		{"1,000", "EUR", eurHint},
		{"1,50", "EUR", eurHint},
		{"1 000", "EUR", eurHint},
		{"1_000", "EUR", eurHint},
		{"1'000", "EUR", eurHint},
		{".5", "EUR", eurHint},
		{"5.", "EUR", eurHint},
		{".", "EUR", eurHint},
		{"1.2.3", "EUR", eurHint},
		{"1..2", "EUR", eurHint},
		{"€5", "EUR", eurHint},
		{"5 EUR", "EUR", eurHint},
		{"0x10", "EUR", eurHint},
		{"NaN", "EUR", eurHint},
		{"Inf", "EUR", eurHint},
		{"\u0661\u0662\u0663", "EUR", eurHint}, // Arabic-Indic digits
		{"\uff11\uff12", "EUR", eurHint},       // full-width digits
		{"12\x00", "EUR", eurHint},
		{"125.505", "EUR", "EUR amounts have at most 2 decimal places: " + eurHint},
		{"0.001", "USD", "USD amounts have at most 2 decimal places: enter an amount like 125 or 125.50"},
		{"10000000000000.01", "EUR", "the amount is too large: the most is 10000000000000.00"},
		{"10000000000001", "EUR", "the amount is too large: the most is 10000000000000.00"},
		{"99999999999999999999999999", "EUR", "the amount is too large: the most is 10000000000000.00"},

		{"125.5", "JPY", "JPY amounts have no decimal places: " + jpyHint},
		{"125.0", "JPY", "JPY amounts have no decimal places: " + jpyHint},
		{"-125", "JPY", jpyHint},
		{"5.", "JPY", jpyHint},
		{"", "JPY", jpyHint},
		{"1000000000000001", "JPY", "the amount is too large: the most is 1000000000000000"},

		{"1.2345", "BHD", "BHD amounts have at most 3 decimal places: " + bhdHint},
		{".234", "BHD", bhdHint},
		{"1,234", "KWD", "enter an amount like 125 or 125.500"},
		{"1000000000000.001", "BHD", "the amount is too large: the most is 1000000000000.000"},

		{"1.23456", "CLF", "CLF amounts have at most 4 decimal places: " + clfHint},
		{"-1", "CLF", clfHint},
		{"100000000000.0001", "CLF", "the amount is too large: the most is 100000000000.0000"},

		{"125", "XYZ", `unknown ISO 4217 currency code "XYZ"`},
		{"125", "", `unknown ISO 4217 currency code ""`},
		{"125", "eur", `unknown ISO 4217 currency code "eur"; codes are upper case, like "EUR"`},
		{"125", "usd ", `unknown ISO 4217 currency code "usd "`},
		{"125", "ANG", `unknown ISO 4217 currency code "ANG"`},
		{"125", "XAU", `ISO 4217 code "XAU" has no minor unit and cannot be used for amounts`},
		{"125", "XXX", `ISO 4217 code "XXX" has no minor unit and cannot be used for amounts`},
		{"", "XTS", `ISO 4217 code "XTS" has no minor unit and cannot be used for amounts`},
	} {
		got, err := ParseMinor(tc.amount, tc.currency)
		var ae *AmountError
		if !errors.As(fmt.Errorf("wrapped: %w", err), &ae) {
			t.Errorf("ParseMinor(%q, %q) = %d, %v; want an *AmountError", tc.amount, tc.currency, got, err)
			continue
		}
		if got != 0 {
			t.Errorf("ParseMinor(%q, %q) returned %d with its error; want 0", tc.amount, tc.currency, got)
		}
		if ae.Currency != tc.currency || ae.Reason != tc.reason {
			t.Errorf("ParseMinor(%q, %q) error = {Currency: %q, Reason: %q}; want {%q, %q}",
				tc.amount, tc.currency, ae.Currency, ae.Reason, tc.currency, tc.reason)
		}
	}
}

func TestAmountErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := ParseMinor("12.345", "EUR")
	if want := "ucp: EUR amount: EUR amounts have at most 2 decimal places: enter an amount like 125 or 125.50"; err == nil || err.Error() != want {
		t.Errorf("error = %v; want %q", err, want)
	}
	_, err = ParseMinor("1", "")
	if want := `ucp: amount: unknown ISO 4217 currency code ""`; err == nil || err.Error() != want {
		t.Errorf("error = %v; want %q", err, want)
	}
}

func TestFormatMinor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{12550, "EUR", "125.50"},
		{12500, "EUR", "125.00"},
		{0, "EUR", "0.00"},
		{1, "EUR", "0.01"},
		{10, "EUR", "0.10"},
		{-5, "EUR", "-0.05"},
		{-100, "EUR", "-1.00"},
		{-12550, "USD", "-125.50"},
		{125, "JPY", "125"},
		{0, "JPY", "0"},
		{-7, "KRW", "-7"},
		{1234, "BHD", "1.234"},
		{1, "KWD", "0.001"},
		{-1200, "OMR", "-1.200"},
		{12345, "CLF", "1.2345"},
		{1, "UYW", "0.0001"},
		{-10000, "CLF", "-1.0000"},
		// Unknown and no-minor-unit codes display with 2 decimals.
		{12550, "XYZ", "125.50"},
		{12550, "", "125.50"},
		{12550, "jpy", "125.50"},
		{5, "XAU", "0.05"},
		// The int64 extremes.
		{math.MaxInt64, "EUR", "92233720368547758.07"},
		{math.MinInt64, "EUR", "-92233720368547758.08"},
		{math.MinInt64 + 1, "EUR", "-92233720368547758.07"},
		{math.MaxInt64, "JPY", "9223372036854775807"},
		{math.MinInt64, "JPY", "-9223372036854775808"},
		{math.MaxInt64, "BHD", "9223372036854775.807"},
		{math.MinInt64, "BHD", "-9223372036854775.808"},
		{math.MaxInt64, "CLF", "922337203685477.5807"},
		{math.MinInt64, "CLF", "-922337203685477.5808"},
		{math.MinInt64, "XYZ", "-92233720368547758.08"},
	} {
		if got := FormatMinor(tc.amount, tc.currency); got != tc.want {
			t.Errorf("FormatMinor(%d, %q) = %q; want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}

func TestParseFormatRoundTrip(t *testing.T) {
	t.Parallel()
	// Typed amounts and their canonical display.
	for _, tc := range []struct{ amount, currency, want string }{
		{"125", "EUR", "125.00"},
		{"125.5", "EUR", "125.50"},
		{" 007.05 ", "EUR", "7.05"},
		{"0", "EUR", "0.00"},
		{"000", "JPY", "0"},
		{"0125", "JPY", "125"},
		{"1.2", "BHD", "1.200"},
		{"1.234", "BHD", "1.234"},
		{"12", "CLF", "12.0000"},
		{"10000000000000", "EUR", "10000000000000.00"},
	} {
		m, err := ParseMinor(tc.amount, tc.currency)
		if err != nil {
			t.Errorf("ParseMinor(%q, %q): %v", tc.amount, tc.currency, err)
			continue
		}
		if got := FormatMinor(m, tc.currency); got != tc.want {
			t.Errorf("FormatMinor(ParseMinor(%q, %q)) = %q; want %q", tc.amount, tc.currency, got, tc.want)
		}
	}

	// Minor units survive Format then Parse, at the edges and at random.
	values := []int64{0, 1, 5, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 12345, maxMinor - 1, maxMinor}
	for p := int64(1); p <= maxMinor; p *= 10 {
		values = append(values, p-1, p, p+1)
	}
	r := rand.New(rand.NewPCG(4217, 2026))
	for range 2000 {
		values = append(values, r.Int64N(maxMinor+1), r.Int64N(1_000_000))
	}
	for _, cur := range []string{"JPY", "EUR", "BHD", "CLF"} {
		for _, v := range values {
			if v > maxMinor {
				continue
			}
			s := FormatMinor(v, cur)
			got, err := ParseMinor(s, cur)
			if err != nil || got != v {
				t.Fatalf("ParseMinor(FormatMinor(%d, %s) = %q) = %d, %v", v, cur, s, got, err)
			}
		}
	}
}

var fuzzAmountRE = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?$`)

// fuzzCurrencies are the currencies FuzzParseMinor picks from: one for each
// exponent and some it must refuse.
var fuzzCurrencies = []string{"JPY", "EUR", "BHD", "CLF", "XAU", "XYZ", "eur", ""}

// FuzzParseMinor checks ParseMinor against an independent oracle (a regular
// expression and math/big), and that whatever it accepts round-trips
// through FormatMinor to the canonical spelling of the same amount.
func FuzzParseMinor(f *testing.F) {
	for _, seed := range []string{
		"125", "125.5", "125.50", "1.234", "1.2345", " 7 ", "0", "007.10", "", ".5", "5.", "-1",
		"+1", "1e3", "1,000", "1 000", "10000000000000.00", "10000000000000.01",
		"1000000000000000", "99999999999999999999999", "1.2.3", "\u00a012\u00a0", "\u0661\u0662",
	} {
		for sel := range len(fuzzCurrencies) {
			f.Add(seed, uint8(sel))
		}
	}
	limit := big.NewInt(maxMinor)
	f.Fuzz(func(t *testing.T, amount string, sel uint8) {
		cur := fuzzCurrencies[int(sel)%len(fuzzCurrencies)]
		got, err := ParseMinor(amount, cur)

		exp, known := CurrencyExponent(cur)
		// Oracle: what ParseMinor should accept, and its value.
		var want *big.Int
		var canon string
		if m := fuzzAmountRE.FindStringSubmatch(strings.TrimSpace(amount)); known && m != nil && len(m[2]) <= exp {
			frac := m[2] + strings.Repeat("0", exp-len(m[2]))
			want, _ = new(big.Int).SetString(m[1]+frac, 10)
			if want.Cmp(limit) > 0 {
				want = nil
			}
			canon = strings.TrimLeft(m[1], "0")
			if canon == "" {
				canon = "0"
			}
			if exp > 0 {
				canon += "." + frac
			}
		}

		if err != nil {
			var ae *AmountError
			if !errors.As(err, &ae) || ae.Currency != cur || ae.Reason == "" || got != 0 {
				t.Fatalf("ParseMinor(%q, %q) = %d, %#v; want 0 and an *AmountError for %q", amount, cur, got, err, cur)
			}
			if want != nil {
				t.Fatalf("ParseMinor(%q, %q) refused (%v); oracle accepts %s", amount, cur, err, want)
			}
			return
		}
		if want == nil {
			t.Fatalf("ParseMinor(%q, %q) = %d; oracle refuses", amount, cur, got)
		}
		if !want.IsInt64() || want.Int64() != got {
			t.Fatalf("ParseMinor(%q, %q) = %d; want %s", amount, cur, got, want)
		}
		s := FormatMinor(got, cur)
		if s != canon {
			t.Fatalf("FormatMinor(ParseMinor(%q, %q)) = %q; want %q", amount, cur, s, canon)
		}
		if again, err := ParseMinor(s, cur); err != nil || again != got {
			t.Fatalf("ParseMinor(%q, %q) = %d, %v; want %d", s, cur, again, err, got)
		}
	})
}
