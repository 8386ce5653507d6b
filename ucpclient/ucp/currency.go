package ucp

import (
	"slices"
	"strconv"
	"strings"
)

// Money in UCP is always a signed int64 count of the currency's minor units
// (cents for EUR, yen for JPY, fils for BHD), never a float. The functions
// below are the one place that knows how many minor units make a major unit:
// CurrencyExponent looks the exponent up, ParseMinor turns what a person
// typed into minor units, and FormatMinor turns minor units back into a
// decimal string for display.

// maxMinor is the largest amount, in minor units, that ParseMinor accepts:
// 10^15, e.g. 10 000 000 000 000.00 EUR. It leaves room to add many such
// amounts in an int64 without overflow.
const maxMinor int64 = 1_000_000_000_000_000

// noMinorUnit marks the codes for which ISO 4217 publishes the minor unit as
// "N.A.": precious metals, bond-market and other units of account, the
// testing code and "no currency". An amount in them cannot be expressed in
// minor units, so for money they count as unknown.
const noMinorUnit = -1

// iso4217Entry is one code of List One and its minor unit, or noMinorUnit.
type iso4217Entry struct {
	code string
	exp  int8
}

// iso4217 is ISO 4217 List One ("Current Currency & Funds", published by the
// maintenance agency SIX) in the edition published 2026-01-01, i.e. as of
// amendment 180, with each code's minor unit (CcyMnrUnts). That edition
// lists 178 distinct codes: 17 with minor unit 0, 139 with 2, 7 with 3, 2
// with 4 and 13 with N.A. Recent changes it reflects: VED added
// (amendment 170), SLE replacing SLL (171-175), HRK withdrawn (174), ZWG
// replacing ZWL (177), CUC moved to the historic list (178), XCG replacing
// ANG from 2025-03-31 (176), XAD added (179) and BGN withdrawn on
// 2026-01-01 when Bulgaria adopted the euro (180).
//
// The exponents are ISO's, not CLDR's display digits: HUF, TWD, IDR, COP,
// MGA and MRU are 2, ISK is 0, IQD is 3. Keep the array sorted by code;
// lookups use binary search and a test checks the order. It is never
// modified.
var iso4217 = [...]iso4217Entry{
	{"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"AOA", 2}, {"ARS", 2},
	{"AUD", 2}, {"AWG", 2}, {"AZN", 2},
	{"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BHD", 3}, {"BIF", 0}, {"BMD", 2},
	{"BND", 2}, {"BOB", 2}, {"BOV", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2},
	{"BWP", 2}, {"BYN", 2}, {"BZD", 2},
	{"CAD", 2}, {"CDF", 2}, {"CHE", 2}, {"CHF", 2}, {"CHW", 2}, {"CLF", 4},
	{"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"COU", 2}, {"CRC", 2}, {"CUP", 2},
	{"CVE", 2}, {"CZK", 2},
	{"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2},
	{"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2},
	{"FJD", 2}, {"FKP", 2},
	{"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2}, {"GNF", 0},
	{"GTQ", 2}, {"GYD", 2},
	{"HKD", 2}, {"HNL", 2}, {"HTG", 2}, {"HUF", 2},
	{"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0},
	{"JMD", 2}, {"JOD", 3}, {"JPY", 0},
	{"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2}, {"KRW", 0},
	{"KWD", 3}, {"KYD", 2}, {"KZT", 2},
	{"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3},
	{"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2},
	{"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2}, {"MWK", 2}, {"MXN", 2},
	{"MXV", 2}, {"MYR", 2}, {"MZN", 2},
	{"NAD", 2}, {"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2},
	{"OMR", 3},
	{"PAB", 2}, {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2},
	{"PYG", 0},
	{"QAR", 2},
	{"RON", 2}, {"RSD", 2}, {"RUB", 2}, {"RWF", 0},
	{"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2}, {"SGD", 2},
	{"SHP", 2}, {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2},
	{"SVC", 2}, {"SYP", 2}, {"SZL", 2},
	{"THB", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2},
	{"TTD", 2}, {"TWD", 2}, {"TZS", 2},
	{"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2},
	{"UYW", 4}, {"UZS", 2},
	{"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0},
	{"WST", 2},
	{"XAD", 2}, {"XAF", 0}, {"XAG", noMinorUnit}, {"XAU", noMinorUnit},
	{"XBA", noMinorUnit}, {"XBB", noMinorUnit}, {"XBC", noMinorUnit},
	{"XBD", noMinorUnit}, {"XCD", 2}, {"XCG", 2}, {"XDR", noMinorUnit},
	{"XOF", 0}, {"XPD", noMinorUnit}, {"XPF", 0}, {"XPT", noMinorUnit},
	{"XSU", noMinorUnit}, {"XTS", noMinorUnit}, {"XUA", noMinorUnit},
	{"XXX", noMinorUnit},
	{"YER", 2},
	{"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
}

// lookupISO4217 returns the table entry's exponent (possibly noMinorUnit)
// and whether code is in List One at all.
func lookupISO4217(code string) (int, bool) {
	i, found := slices.BinarySearchFunc(iso4217[:], code, func(e iso4217Entry, c string) int {
		return strings.Compare(e.code, c)
	})
	if !found {
		return 0, false
	}
	return int(iso4217[i].exp), true
}

// CurrencyExponent returns the ISO 4217 minor-unit exponent of code: the
// number of decimal places of its major unit, so an amount of n minor units
// is n / 10^exponent major units (USD 2, JPY 0, BHD 3, CLF 4). code must be
// an upper-case three-letter code from the current List One. It reports
// false for anything else: lower case, historic or made-up codes, "", and
// the codes ISO lists without a minor unit (XAU, XAG, XPT, XPD, XDR, XSU,
// XUA, XBA-XBD, XTS, XXX), which cannot express money in minor units.
func CurrencyExponent(code string) (int, bool) {
	exp, ok := lookupISO4217(code)
	if !ok || exp == noMinorUnit {
		return 0, false
	}
	return exp, true
}

// AmountError reports an amount that ParseMinor refused. Reason is a
// sentence meant for the person who typed the amount, for example "enter an
// amount like 125 or 125.50"; Currency is the currency code as given.
// Match it with errors.As.
type AmountError struct {
	Currency string
	Reason   string
}

func (e *AmountError) Error() string {
	if e.Currency == "" {
		return "ucp: amount: " + e.Reason
	}
	return "ucp: " + e.Currency + " amount: " + e.Reason
}

// ParseMinor parses an amount in major units as a person types it ("125",
// "125.5", "125.50"; white space around it, as strings.TrimSpace removes,
// is ignored) into minor units of
// currency, using integer arithmetic only. The amount is ASCII digits with
// at most one decimal point that has digits on both sides, and at most
// CurrencyExponent(currency) decimals: EUR "125.5" is 12550, BHD "1.234" is
// 1234, JPY "125" is 125 but JPY "125.5" is refused. Signs, exponents,
// thousands separators, inner spaces, ".5", "5." and "" are refused, as are
// results above 10^15 minor units. Every error is an *AmountError; an
// unknown currency (see CurrencyExponent) is one too.
func ParseMinor(amount, currency string) (int64, error) {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return 0, &AmountError{Currency: currency, Reason: unknownCurrencyReason(currency)}
	}
	bad := func(reason string) (int64, error) {
		return 0, &AmountError{Currency: currency, Reason: reason}
	}

	s := strings.TrimSpace(amount)
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" || (hasPoint && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return bad(amountExample(exp))
	}
	if len(frac) > exp {
		if exp == 0 {
			return bad(currency + " amounts have no decimal places: " + amountExample(exp))
		}
		return bad(currency + " amounts have at most " + strconv.Itoa(exp) +
			" decimal places: " + amountExample(exp))
	}

	// v is at most maxMinor before each step, so v*10+9 cannot overflow.
	var v int64
	tooLarge := func() (int64, error) {
		return bad("the amount is too large: the most is " + FormatMinor(maxMinor, currency))
	}
	for i := 0; i < len(whole); i++ {
		v = v*10 + int64(whole[i]-'0')
		if v > maxMinor {
			return tooLarge()
		}
	}
	for i := 0; i < exp; i++ {
		v *= 10
		if i < len(frac) {
			v += int64(frac[i] - '0')
		}
		if v > maxMinor {
			return tooLarge()
		}
	}
	return v, nil
}

// FormatMinor formats amount minor units of currency as a major-unit decimal
// string without the code, with exactly CurrencyExponent(currency)
// decimals: 12550 EUR is "125.50", 125 JPY is "125", -5 EUR is "-0.05",
// 1234 BHD is "1.234". It covers the whole int64 range. For a currency
// CurrencyExponent does not know it uses 2 decimals; that is only for
// display, never a reason to accept the currency.
func FormatMinor(amount int64, currency string) string {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		exp = 2
	}
	u := uint64(amount)
	if amount < 0 {
		u = -u // two's complement: exact for math.MinInt64 too
	}
	digits := strconv.FormatUint(u, 10)
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp+1-len(digits)) + digits
	}
	var b strings.Builder
	b.Grow(len(digits) + 2)
	if amount < 0 {
		b.WriteByte('-')
	}
	point := len(digits) - exp
	b.WriteString(digits[:point])
	if exp > 0 {
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	return b.String()
}

// amountExample is the hint shown for a malformed amount, adapted to the
// currency's exponent.
func amountExample(exp int) string {
	if exp == 0 {
		return "enter a whole amount like 125"
	}
	return "enter an amount like 125 or 125.5" + strings.Repeat("0", exp-1)
}

func unknownCurrencyReason(code string) string {
	reason := "unknown ISO 4217 currency code " + strconv.Quote(code)
	if exp, ok := lookupISO4217(code); ok && exp == noMinorUnit {
		return "ISO 4217 code " + strconv.Quote(code) +
			" has no minor unit and cannot be used for amounts"
	}
	if up := strings.ToUpper(code); up != code {
		if _, ok := CurrencyExponent(up); ok {
			reason += "; codes are upper case, like " + strconv.Quote(up)
		}
	}
	return reason
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
