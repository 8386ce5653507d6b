package shop

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Sandbox card numbers the hosted continue page accepts. Any expiry date
// not in the past and any CVC of the right length (4 digits for American
// Express numbers, 3 otherwise) go with them. Any other number that passes
// the Luhn check is declined as an unknown sandbox card.
const (
	// SandboxCardSuccess pays.
	SandboxCardSuccess = "4242424242424242"
	// SandboxCardDeclined is declined by the issuer when the buyer
	// confirms the payment; nothing is charged.
	SandboxCardDeclined = "4000000000000002"
	// SandboxCard3DS asks the buyer to pass the 3-D Secure step before
	// the confirmation: completing it pays, failing it pays nothing.
	SandboxCard3DS = "4000002760003184"
)

// sandboxCards is the table the page prints for the buyer.
var sandboxCards = []struct{ Number, Outcome string }{
	{"4242 4242 4242 4242", "pays"},
	{"4000 0000 0000 0002", "is declined"},
	{"4000 0027 6000 3184", "asks for 3-D Secure"},
}

// cardState is where a card stands in the hosted flow; it decides the
// token the card rail is charged with.
type cardState string

const (
	cardPays          cardState = "pays"          // charged with TokenSuccess
	cardDeclines      cardState = "declines"      // charged with TokenFail: the rail declines
	cardNeeds3DS      cardState = "needs_3ds"     // the buyer authenticates first
	cardAuthenticated cardState = "authenticated" // passed 3-D Secure: charged with TokenSuccess
)

// railToken is the card rail's sandbox token for a card in state st; ""
// when the card cannot be charged yet.
func (st cardState) railToken() string {
	switch st {
	case cardPays, cardAuthenticated:
		return TokenSuccess
	case cardDeclines:
		return TokenFail
	}
	return ""
}

// cardInput is the card form as the buyer typed it.
type cardInput struct {
	Number, Expiry, CVC, Name string
}

// card is a card the page accepted: what it shows and how it pays. The
// number itself is not kept.
type card struct {
	Brand  string // "Visa", "Mastercard", "American Express", or "Card"
	Last4  string
	Expiry string // MM/YY
	State  cardState
}

// Label is how the page names the card: "Visa •••• 4242 (expires 12/30)".
func (c *card) Label() string {
	return c.Brand + " •••• " + c.Last4 + " (expires " + c.Expiry + ")"
}

// cardError is a card the page cannot take. Fields are the problems, by
// form field ("number", "expiry", "cvc", "name"), worded for the buyer;
// Declined is set instead when the card is well formed but the sandbox
// refuses it.
type cardError struct {
	Fields   []cardFieldError
	Declined string
}

// cardFieldError is one form field's problem.
type cardFieldError struct {
	Field, Reason string
}

func (e *cardError) Error() string {
	if e.Declined != "" {
		return "card declined: " + e.Declined
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "card: " + strings.Join(parts, "; ")
}

// Field returns the problem with field, "" when there is none.
func (e *cardError) Field(field string) string {
	for _, f := range e.Fields {
		if f.Field == field {
			return f.Reason
		}
	}
	return ""
}

// maxCardExpiryYears bounds how far ahead an expiry date may be; issuers do
// not print cards valid for longer, and a typo such as 99 is caught.
const maxCardExpiryYears = 20

// parseCard checks a card the buyer typed, at time now: the number (12 to
// 19 digits, spaces and dashes allowed, passing the Luhn check), the
// expiry (MM/YY, this month or later), the CVC (4 digits for American
// Express, 3 otherwise) and the optional cardholder name. Every field's
// problem is reported at once, as a *cardError; a well-formed number the
// sandbox does not know is a *cardError with Declined set.
func parseCard(in cardInput, now time.Time) (*card, error) {
	var bad []cardFieldError
	problem := func(field, reason string) { bad = append(bad, cardFieldError{Field: field, Reason: reason}) }

	number := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, in.Number)
	brand := ""
	switch {
	case number == "":
		problem("number", "Enter the card number.")
	case !allDigits(number):
		problem("number", "A card number has digits only.")
	case len(number) < 12 || len(number) > 19:
		problem("number", "A card number has 12 to 19 digits.")
	case !luhnValid(number):
		problem("number", "This card number is not valid; check the digits.")
	default:
		brand = cardBrand(number)
	}

	expiry, err := parseExpiry(in.Expiry, now)
	if err != "" {
		problem("expiry", err)
	}

	cvcLen := 3
	if brand == "American Express" {
		cvcLen = 4
	}
	cvc := strings.TrimSpace(in.CVC)
	switch {
	case cvc == "":
		problem("cvc", "Enter the security code (CVC).")
	case !allDigits(cvc) || (brand != "" && len(cvc) != cvcLen) || (brand == "" && (len(cvc) < 3 || len(cvc) > 4)):
		if brand == "American Express" {
			problem("cvc", "The security code of an American Express card is the 4 digits on its front.")
		} else {
			problem("cvc", fmt.Sprintf("The security code is the %d digits on the back of the card.", cvcLen))
		}
	}

	if name := strings.TrimSpace(in.Name); name != "" {
		if !store.ValidText(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			problem("name", "The cardholder name has characters a card cannot carry.")
		} else if utf8.RuneCountInString(name) > 100 {
			problem("name", "The cardholder name is longer than 100 characters.")
		}
	}
	if len(bad) > 0 {
		return nil, &cardError{Fields: bad}
	}

	c := &card{Brand: brand, Last4: number[len(number)-4:], Expiry: expiry}
	switch number {
	case SandboxCardSuccess:
		c.State = cardPays
	case SandboxCardDeclined:
		c.State = cardDeclines
	case SandboxCard3DS:
		c.State = cardNeeds3DS
	default:
		return nil, &cardError{Declined: "Your card was declined: unknown sandbox card. Use one of the test cards listed on this page."}
	}
	return c, nil
}

// parseExpiry reads MM/YY (also M/YY and MM/YYYY, spaces allowed around
// the slash) and returns it as MM/YY, or the problem in words. A card is
// valid through the last day of its expiry month, in UTC.
func parseExpiry(s string, now time.Time) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "Enter the expiry date as MM/YY."
	}
	mm, yy, ok := strings.Cut(s, "/")
	mm, yy = strings.TrimSpace(mm), strings.TrimSpace(yy)
	if !ok || !allDigits(mm) || !allDigits(yy) || len(mm) < 1 || len(mm) > 2 || (len(yy) != 2 && len(yy) != 4) {
		return "", "Write the expiry date as MM/YY, for example 04/29."
	}
	month, _ := strconv.Atoi(mm)
	year, _ := strconv.Atoi(yy)
	if len(yy) == 2 {
		year += 2000
	}
	if month < 1 || month > 12 {
		return "", "The expiry month is 01 to 12."
	}
	now = now.UTC()
	cur := now.Year()*12 + int(now.Month()) - 1
	exp := year*12 + month - 1
	switch {
	case exp < cur:
		return "", "This card has expired."
	case exp > cur+maxCardExpiryYears*12:
		return "", "The expiry date is too far in the future; check the year."
	}
	return fmt.Sprintf("%02d/%02d", month, year%100), ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// luhnValid is the Luhn (mod 10) check every card number passes; digits
// must be all ASCII digits.
func luhnValid(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// cardBrand names the card network by its number's leading digits (IIN
// ranges); the page shows it and the CVC length depends on it.
func cardBrand(number string) string {
	prefix := func(n int) int {
		v, _ := strconv.Atoi(number[:n])
		return v
	}
	switch {
	case number[0] == '4':
		return "Visa"
	case len(number) == 15 && (prefix(2) == 34 || prefix(2) == 37):
		return "American Express"
	case prefix(2) >= 51 && prefix(2) <= 55, prefix(4) >= 2221 && prefix(4) <= 2720:
		return "Mastercard"
	}
	return "Card"
}
