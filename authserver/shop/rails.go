package shop

import (
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

type rail struct {
	name    string
	handler ucp.PaymentHandler
}

func railHandler(id string) (rail, bool) {
	switch id {
	case HandlerCardID:
		return rail{HandlerCard, ucp.PaymentHandler{
			Entity: ucp.Entity{Version: ucp.Version, ID: HandlerCardID,
				Config: json.RawMessage(`{"environment":"sandbox","tokens":{"success":"success_token","decline":"fail_token","challenge":"escalate_token"}}`)},
			AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type":"card","constraints":{"brands":["visa","mastercard","amex"]}}`)},
		}}, true
	case HandlerCryptoID:
		return rail{HandlerCrypto, ucp.PaymentHandler{
			Entity: ucp.Entity{Version: ucp.Version, ID: HandlerCryptoID,
				Config: json.RawMessage(`{"environment":"sandbox","network":"sui","asset":"USDsui"}`)},
			AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type":"crypto"}`)},
		}}, true
	}
	return rail{}, false
}
