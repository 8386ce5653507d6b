package shop

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestLuhn(t *testing.T) {
	t.Parallel()
	for _, n := range []string{SandboxCardSuccess, SandboxCardDeclined, SandboxCard3DS, "378282246310005", "5555555555554444", "79927398713"} {
		if !luhnValid(n) {
			t.Errorf("%s fails the Luhn check", n)
		}
	}
	for _, n := range []string{"4242424242424241", "4000000000000001", "79927398710", "1234567812345678"} {
		if luhnValid(n) {
			t.Errorf("%s passes the Luhn check", n)
		}
	}
}

// TestParseCard: each field's rule, every problem reported at once, and
// the sandbox outcomes. The clock is fixed: 15 March 2026.
func TestParseCard(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	ok := func(number, expiry, cvc string) cardInput { return cardInput{Number: number, Expiry: expiry, CVC: cvc} }

	for _, tc := range []struct {
		in    cardInput
		state cardState
		brand string
		exp   string
	}{
		{ok("4242 4242 4242 4242", "12/30", "123"), cardPays, "Visa", "12/30"},
		{ok("4000-0000-0000-0002", "3/26", "999"), cardDeclines, "Visa", "03/26"}, // valid through the end of this month
		{ok("4000002760003184", " 04 / 2027 ", "000"), cardNeeds3DS, "Visa", "04/27"},
	} {
		c, err := parseCard(tc.in, now)
		if err != nil || c.State != tc.state || c.Brand != tc.brand || c.Expiry != tc.exp || c.Last4 != tc.in.Number[len(tc.in.Number)-4:] {
			t.Errorf("%+v: %+v %v", tc.in, c, err)
		}
	}

	for _, tc := range []struct {
		in    cardInput
		field string
		want  string
	}{
		{ok("", "12/30", "123"), "number", "Enter the card number."},
		{ok("4242 4242 4242 424x", "12/30", "123"), "number", "digits only"},
		{ok("42424242424", "12/30", "123"), "number", "12 to 19 digits"},
		{ok("42424242424242424242", "12/30", "123"), "number", "12 to 19 digits"},
		{ok("4242424242424241", "12/30", "123"), "number", "not valid"},
		{ok(SandboxCardSuccess, "", "123"), "expiry", "Enter the expiry date"},
		{ok(SandboxCardSuccess, "1230", "123"), "expiry", "MM/YY"},
		{ok(SandboxCardSuccess, "12/3", "123"), "expiry", "MM/YY"},
		{ok(SandboxCardSuccess, "00/30", "123"), "expiry", "01 to 12"},
		{ok(SandboxCardSuccess, "02/26", "123"), "expiry", "expired"},
		{ok(SandboxCardSuccess, "12/25", "123"), "expiry", "expired"},
		{ok(SandboxCardSuccess, "04/47", "123"), "expiry", "too far"},
		{ok(SandboxCardSuccess, "12/30", ""), "cvc", "Enter the security code"},
		{ok(SandboxCardSuccess, "12/30", "12"), "cvc", "3 digits"},
		{ok(SandboxCardSuccess, "12/30", "1234"), "cvc", "3 digits"},
		{ok(SandboxCardSuccess, "12/30", "12a"), "cvc", "3 digits"},
		{ok("378282246310005", "12/30", "123"), "cvc", "4 digits"},
		{cardInput{Number: SandboxCardSuccess, Expiry: "12/30", CVC: "123", Name: strings.Repeat("é", 101)}, "name", "100 characters"},
		{cardInput{Number: SandboxCardSuccess, Expiry: "12/30", CVC: "123", Name: "Ada\x00"}, "name", "characters"},
	} {
		_, err := parseCard(tc.in, now)
		var ce *cardError
		if !errors.As(err, &ce) || !strings.Contains(ce.Field(tc.field), tc.want) {
			t.Errorf("%+v: %v, want %s: %q", tc.in, err, tc.field, tc.want)
		}
	}

	// Every field's problem at once, so the buyer fixes them in one go.
	_, err := parseCard(cardInput{Number: "1", Expiry: "x", CVC: "y"}, now)
	var ce *cardError
	if !errors.As(err, &ce) || len(ce.Fields) != 3 || ce.Declined != "" {
		t.Fatalf("%v", err)
	}

	// An American Express number takes a 4-digit CVC; a valid number the
	// sandbox does not know is declined, not malformed.
	for _, in := range []cardInput{ok("3782 822463 10005", "12/30", "1234"), ok("5555 5555 5555 4444", "12/30", "123")} {
		_, err = parseCard(in, now)
		if !errors.As(err, &ce) || len(ce.Fields) != 0 || !strings.Contains(ce.Declined, "unknown sandbox card") {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

func TestCardBrand(t *testing.T) {
	t.Parallel()
	for n, want := range map[string]string{"4242424242424242": "Visa", "5555555555554444": "Mastercard", "2223003122003222": "Mastercard",
		"378282246310005": "American Express", "371449635398431": "American Express", "6011111111111117": "Card"} {
		if got := cardBrand(n); got != want {
			t.Errorf("%s: %s, want %s", n, got, want)
		}
	}
}

// TestCardRailTokens: the hosted flow charges the card rail with the
// API's sandbox tokens, so the rail decides the outcome as it does for
// the API; a card still waiting for 3-D Secure cannot be charged.
func TestCardRailTokens(t *testing.T) {
	t.Parallel()
	for st, want := range map[cardState]payResult{cardPays: payPaid, cardAuthenticated: payPaid, cardDeclines: payFailed} {
		tok := st.railToken()
		p := &payment{instrument: cardInstrument(tok)}
		if got := (cardRail{}).pay(t.Context(), p); got.result != want {
			t.Errorf("%s: %v, want %v", st, got.result, want)
		}
	}
	if cardNeeds3DS.railToken() != "" {
		t.Error("an unauthenticated 3-D Secure card has a rail token")
	}
}

func cardInstrument(token string) *ucp.PaymentInstrument {
	return &ucp.PaymentInstrument{HandlerID: HandlerCardID, Type: "card", Selected: true, Credential: &ucp.Credential{Type: "token", Token: token}}
}
