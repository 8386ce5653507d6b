package shop

import (
	"context"
	"encoding/json"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Simulated card tokens (the card rail is a sandbox: no PSP is called).
const (
	TokenSuccess  = "success_token"
	TokenFail     = "fail_token"
	TokenEscalate = "escalate_token"
)

// Payment handler (rail) names and instance ids, as Artos publishes them.
const (
	HandlerCard     = "sh.artos.card"
	HandlerCardID   = "artos.card"
	HandlerCrypto   = "sh.artos.crypto"
	HandlerCryptoID = "artos.crypto"
)

// rail is a payment handler the store can charge through.
type rail interface {
	// id is the handler instance id instruments name (handler_id).
	id() string
	// handler is the rail's entry in the business profile, under its
	// handler name.
	handler() (name string, h ucp.PaymentHandler)
	// pay charges the checkout, or decides the buyer must step in, or
	// fails; a rail that does not charge has no side effects.
	pay(ctx context.Context, p *payment) payOutcome
}

// payment is one charge a completion asks of a rail.
type payment struct {
	checkout *ucp.Checkout
	// instrument is the selected one; nil when the platform sent none
	// and the store's only rail was chosen for it.
	instrument *ucp.PaymentInstrument
}

// token is the instrument's credential token, "" when there is none.
func (p *payment) token() string {
	if p.instrument == nil || p.instrument.Credential == nil {
		return ""
	}
	return p.instrument.Credential.Token
}

type payResult int

const (
	payFailed    payResult = iota // nothing was charged
	payPaid                       // charged: place the order
	payEscalated                  // the buyer pays at continue_url
)

// payOutcome is what a rail made of a payment: for payEscalated, code and
// content are the message asking for the buyer; for payFailed, content
// says why (the message is payment_failed).
type payOutcome struct {
	result        payResult
	code, content string
}

func failed(content string) payOutcome {
	return payOutcome{result: payFailed, content: content}
}

// rails are the payment handlers this build has, whichever stores offer them.
var rails = []rail{cardRail{}, cryptoRail{}}

func railByID(id string) (rail, bool) {
	for _, r := range rails {
		if r.id() == id {
			return r, true
		}
	}
	return nil, false
}

// cardRail is the sandbox card: the token decides the outcome.
type cardRail struct{}

func (cardRail) id() string { return HandlerCardID }

func (cardRail) handler() (string, ucp.PaymentHandler) {
	return HandlerCard, ucp.PaymentHandler{
		Entity: ucp.Entity{Version: ucp.Version, ID: HandlerCardID,
			Config: json.RawMessage(`{"environment":"sandbox","tokens":{"success":"success_token","decline":"fail_token","challenge":"escalate_token"}}`)},
		AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type":"card","constraints":{"brands":["visa","mastercard","amex"]}}`)},
	}
}

func (cardRail) pay(_ context.Context, p *payment) payOutcome {
	switch p.token() {
	case TokenSuccess:
		return payOutcome{result: payPaid}
	case "":
		return payOutcome{result: payEscalated, code: "buyer_payment_required", content: "the buyer pays at continue_url"}
	case TokenEscalate:
		return payOutcome{result: payEscalated, code: "requires_3ds", content: "the card issuer asks the buyer to authenticate at continue_url"}
	case TokenFail:
		return failed("the card was declined")
	default:
		return failed("unknown sandbox card token; use success_token, fail_token or escalate_token")
	}
}

// cryptoRail is advertised but cannot settle yet.
type cryptoRail struct{}

func (cryptoRail) id() string { return HandlerCryptoID }

func (cryptoRail) handler() (string, ucp.PaymentHandler) {
	return HandlerCrypto, ucp.PaymentHandler{
		Entity: ucp.Entity{Version: ucp.Version, ID: HandlerCryptoID,
			Config: json.RawMessage(`{"environment":"sandbox","network":"sui","asset":"USDsui"}`)},
		AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type":"crypto"}`)},
	}
}

func (cryptoRail) pay(context.Context, *payment) payOutcome {
	return failed("crypto settlement needs the buyer's own authorization, which this platform does not offer yet; pay with artos.card")
}
