package ucpclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func ExampleNew() {
	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      "https://api.artos.example",
		APIKey:       "plat_123.s3cret", // the platform's X-API-Key
		AgentProfile: "https://agent.example/.well-known/ucp",
		UCPVersion:   "2026-08-25",
		// Buyer: a token source (e.g. ucpclient.NewBuyerTokenSource) for
		// buyer-bound calls; nil is an anonymous or card-only session.
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.UCPAgentHeader())
	fmt.Println(c.HasBuyerToken())

	// Buyer-bound calls fail locally, before any I/O, without a buyer.
	_, err = c.ListAccountTools(context.Background())
	var br *ucpclient.BuyerRequiredError
	fmt.Println(errors.As(err, &br))
	// Output:
	// ucp-version="2026-08-25", profile="https://agent.example/.well-known/ucp"
	// false
	// true
}

func ExampleClient_GlobalSearch() {
	// A stand-in for the platform API.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ucp":{"version":"2026-04-08","status":"success"},
			"products":[{"id":"chawan","title":"Raku Tea Bowl",
			"price_range":{"min":{"amount":5400,"currency":"JPY"},"max":{"amount":5400,"currency":"JPY"}}}]}`)
	}))
	defer api.Close()

	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      api.URL,
		APIKey:       "plat_123.s3cret",
		AgentProfile: "https://agent.example/.well-known/ucp",
	})
	if err != nil {
		log.Fatal(err)
	}
	maxPrice := int64(10000) // minor units: 100.00
	res, err := c.GlobalSearch(context.Background(), &ucp.SearchRequest{
		Query:   "tea bowl",
		Filters: &ucp.SearchFilters{Price: &ucp.PriceFilter{Max: &maxPrice}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range res.Products {
		fmt.Println(p.ID, p.Title, ucp.FormatMinor(p.PriceRange.Min.Amount, p.PriceRange.Min.Currency), p.PriceRange.Min.Currency)
	}
	// Output:
	// chawan Raku Tea Bowl 5400 JPY
}

// Signing every request (RFC 9421): the platform publishes the public key
// under the same kid in its UCP profile; each attempt, retries included,
// is signed afresh.
func ExampleConfig_signer() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := httpsig.NewSigner(key, "agent-2026", nil)
	if err != nil {
		log.Fatal(err)
	}

	// A stand-in business that checks the signature.
	verifier := &httpsig.Verifier{Keys: exampleKeys{"agent-2026": {Key: &key.PublicKey, KeyID: "agent-2026"}}}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if res, err := verifier.VerifyRequest(r.Context(), r, body); err == nil {
			fmt.Println("verified signature by", res.KeyID)
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"ucp":{"status":"success"},"id":"chk_1"}}}`)
	}))
	defer api.Close()

	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      api.URL,
		APIKey:       "plat_123.s3cret",
		AgentProfile: "https://agent.example/.well-known/ucp",
		Signer:       signer,
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.CallStoreTool(context.Background(), "kyoto-tea", "create_checkout",
		map[string]any{"checkout": map[string]any{"line_items": []any{}}})
	fmt.Println(err)
	// Output:
	// verified signature by agent-2026
	// <nil>
}

type exampleKeys map[string]*jose.JSONWebKey

func (k exampleKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if j, ok := k[kid]; ok {
		return j, nil
	}
	return nil, errors.New("unknown key")
}
