package ucpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestSmokeAgainstPlatform: search and create a checkout on the real
// platform API with the platform key.
func TestSmokeAgainstPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      p.URL,
		APIKey:       p.PlatformKey,
		AgentProfile: "http://127.0.0.1:9/.well-known/ucp", // dev rules: unreachable means the store's own capabilities
		UCPVersion:   "2026-08-25",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.GlobalSearch(ctx, &ucp.SearchRequest{Query: "tea"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Products) == 0 {
		t.Fatal("no products")
	}
	prod := res.Products[0]
	if prod.Store == nil || len(prod.Variants) == 0 {
		t.Fatalf("product without store or variants: %+v", prod)
	}
	slug, variant := prod.Store.Slug, prod.Variants[0].ID

	// The same through the global MCP endpoint.
	out, err := c.CallGlobalTool(ctx, "search_catalog", map[string]any{"query": "tea"})
	if err != nil {
		t.Fatal(err)
	}
	var sr ucp.SearchResponse
	if err := json.Unmarshal(out, &sr); err != nil || len(sr.Products) == 0 {
		t.Fatalf("global MCP search: %s, %v", out, err)
	}

	prof, err := c.FetchStoreProfile(ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	if prof.UCP.Version == "" {
		t.Errorf("store profile without version: %s", prof.Raw)
	}

	out, err = c.CallStoreTool(ctx, slug, "create_checkout", map[string]any{
		"checkout": map[string]any{"line_items": []any{map[string]any{"item": map[string]any{"id": variant}, "quantity": 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var chk struct {
		ID  string `json:"id"`
		UCP struct {
			Status string `json:"status"`
		} `json:"ucp"`
		Currency string `json:"currency"`
	}
	if err := json.Unmarshal(out, &chk); err != nil || chk.ID == "" || chk.UCP.Status == "error" {
		t.Fatalf("create_checkout: %s, %v", out, err)
	}
	out, err = c.CallStoreTool(ctx, slug, "get_checkout", map[string]any{"id": chk.ID})
	if err != nil || !json.Valid(out) {
		t.Fatalf("get_checkout: %s, %v", out, err)
	}

	// Buyer-bound without a buyer: refused locally.
	var be *ucpclient.BuyerRequiredError
	if _, err := c.ListAccountTools(ctx); !errors.As(err, &be) {
		t.Fatalf("ListAccountTools without a buyer: %v", err)
	}

	// With a buyer token: the account tools, bearer only.
	tok, err := p.BuyerToken(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey,
		AgentProfile: "http://127.0.0.1:9/.well-known/ucp", Buyer: oauth2.StaticTokenSource(tok)})
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cb.ListAccountTools(ctx)
	if err != nil || len(tools) == 0 {
		t.Fatalf("ListAccountTools: %v, %v", tools, err)
	}
	if _, err := cb.CallAccountTool(ctx, "get_buyer_context", nil); err != nil {
		t.Fatalf("get_buyer_context: %v", err)
	}

	// A revoked or bogus bearer gets the challenge relayed.
	var got *ucpclient.Challenge
	cx, _ := ucpclient.New(ucpclient.Config{BaseURL: p.URL, AgentProfile: "http://127.0.0.1:9/.well-known/ucp",
		Buyer:           oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bogus"}),
		OnAuthChallenge: func(_ context.Context, ch *ucpclient.Challenge) error { got = ch; return nil }})
	_, err = cx.ListAccountTools(ctx)
	var ae *ucpclient.AuthChallengeError
	if !errors.As(err, &ae) || got == nil || ae.Challenge.Scheme != "Bearer" {
		t.Fatalf("bogus bearer: %v (hook got %+v)", err, got)
	}
	t.Logf("challenge: %+v", ae.Challenge)
}
