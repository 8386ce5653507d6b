package ucpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

func ExampleClient_ConfirmPurchase() {
	// A stand-in for a store on the platform API: it signs its checkout
	// (merchant_authorization) with the key its profile publishes, and
	// places the order on complete_checkout.
	storeKey, _ := mandate.GenerateSigningKey()
	api := httptest.NewServer(exampleStore(storeKey))
	defer api.Close()

	// The agent's AP2 key; its UCP profile (AgentProfile) must publish
	// the public half under the same kid for the store to accept mandates.
	agentKey, _ := mandate.GenerateSigningKey()
	signer, err := ucpclient.NewAp2Signer(agentKey)
	if err != nil {
		log.Fatal(err)
	}
	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      api.URL,
		APIKey:       "plat_123.s3cret",
		AgentProfile: "https://agent.example/.well-known/ucp",
	})
	if err != nil {
		log.Fatal(err)
	}
	out, err := c.ConfirmPurchase(context.Background(), ucpclient.ConfirmInput{
		Store:      "flower-shop",
		CheckoutID: "chk_1",
		Signer:     signer,
		MaxSpend:   5000, // the agent's own ceiling: 50.00 in the checkout's currency
		// PaymentMethod: "artos.crypto", Crypto: ucpclient.SandboxSettler{}
		// (with a Buyer) pays with the crypto rail.
	})
	if err != nil {
		log.Fatal(err) // transport or protocol failure
	}
	switch out.Kind {
	case ucpclient.OutcomeCompleted:
		fmt.Println("order", out.Order.ID)
	case ucpclient.OutcomeEscalationRequired:
		fmt.Println("the buyer continues at", out.ContinueURL)
	case ucpclient.OutcomePaymentSelectionRequired:
		fmt.Println("choose one of", out.Rails)
	case ucpclient.OutcomeAllowanceRefused:
		fmt.Println("refused by", out.Refusal.Limit)
	default:
		fmt.Println(out.Kind, out.Code, out.Message)
	}
	// Output:
	// order ord_1
}

// exampleStore serves /s/flower-shop/.well-known/ucp and the store's MCP
// tools get_checkout and complete_checkout.
func exampleStore(key *mandate.SigningKey) http.Handler {
	checkout := map[string]any{
		"ucp": map[string]any{"version": "2026-04-08", "status": "success",
			"payment_handlers": map[string]any{"sh.artos.card": []any{map[string]any{"id": "artos.card"}}}},
		"id": "chk_1", "status": "ready_for_complete", "currency": "EUR",
		"line_items": []any{map[string]any{"id": "li_1", "item": map[string]any{"id": "bouquet_roses", "price": 3500}, "quantity": 1}},
		"totals": []any{map[string]any{"type": "subtotal", "amount": 3500},
			map[string]any{"type": "fulfillment", "amount": 690}, map[string]any{"type": "total", "amount": 4190}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /s/flower-shop/.well-known/ucp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ucp": map[string]any{"version": "2026-04-08"},
			"signing_keys": []any{key.PublicJWK()}})
	})
	mux.HandleFunc("POST /s/flower-shop/mcp", func(w http.ResponseWriter, r *http.Request) {
		var rpc struct {
			ID     json.RawMessage `json:"id"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&rpc)
		if rpc.Params.Name == "complete_checkout" {
			checkout["status"] = "completed"
			checkout["order"] = map[string]any{"id": "ord_1", "permalink_url": "https://shop.example/orders/ord_1"}
		}
		b, _ := json.Marshal(checkout)
		signed, _ := mandate.AttachMerchantAuthorization(b, key)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[],"structuredContent":%s}}`, rpc.ID, signed)
	})
	return mux
}
