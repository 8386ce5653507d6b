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
	// fails; a rail that does not charge has no side effects. A rail
	// must treat p.reference as an idempotency key: the same reference
	// charged twice is one charge (a client retry after a lost response).
	pay(ctx context.Context, p *payment) payOutcome
	// void gives back a charge made under reference and not yet turned
	// into an order (completion lost a race and now sells other terms).
	void(ctx context.Context, reference string) error
}

// payment is one charge a completion asks of a rail.
type payment struct {
	checkout *ucp.Checkout
	// instrument is the selected one; nil when the platform sent none
	// and the store's only rail was chosen for it.
	instrument *ucp.PaymentInstrument
	// reference identifies what is charged: the checkout and its terms.
	reference string
	// savedToken is the buyer's saved card, charged when the instrument
	// carries no credential (a buyer-bound completion).
	savedToken string
}

// token is the instrument's credential token, or the buyer's saved card;
// "" when there is neither.
func (p *payment) token() string {
	if p.instrument == nil || p.instrument.Credential == nil || p.instrument.Credential.Token == "" {
		return p.savedToken
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

// defaultRails are the payment handlers this build has, whichever stores
// offer them.
var defaultRails = []rail{cardRail{}, cryptoRail{}}

func railByID(id string) (rail, bool) {
	for _, r := range defaultRails {
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

// void: the sandbox moves no money, so there is nothing to give back.
func (cardRail) void(context.Context, string) error { return nil }

// cryptoRail is the sandbox crypto rail (crypto.go): buyer-bound, paid
// by the settlement of a prepared intent.
type cryptoRail struct{}

func (cryptoRail) id() string { return HandlerCryptoID }

func (cryptoRail) handler() (string, ucp.PaymentHandler) {
	return HandlerCrypto, ucp.PaymentHandler{
		Entity: ucp.Entity{Version: ucp.Version, ID: HandlerCryptoID,
			Config: json.RawMessage(`{"environment":"sandbox","network":"sui","asset":"USDsui"}`)},
		AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type":"crypto"}`)},
	}
}

func (cryptoRail) void(context.Context, string) error { return nil }

// pay: the completion checked the instrument against the prepared
// intent (checkIntent), whose sandbox settlement is final the moment the
// agent submits it; the rail only confirms the token is a settlement
// reference at all.
func (cryptoRail) pay(_ context.Context, p *payment) payOutcome {
	if len(p.token()) != len("sim_")+64 {
		return failed("the credential token is not a sandbox settlement reference")
	}
	return payOutcome{result: payPaid}
}
