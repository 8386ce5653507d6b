package authserver_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// TestDynamicRegistrationToBridge is the zero-configuration sign-in of a
// local agent, as mcp-remote does it: register (RFC 7591), then code +
// PKCE with resource=<bridge URL> and prompt=consent, the buyer sets a
// spending limit, the client gets tokens; the bridge's platform then
// exchanges the token (RFC 8693) and buys within that limit.
func TestDynamicRegistrationToBridge(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{DynamicRegistration: true, BridgeResources: []string{bridgeA}})
	ctx := t.Context()
	code, _, b := call(t, "POST", p.RegisterURL(), `{"redirect_uris":["http://localhost:3334/oauth/callback"],"token_endpoint_auth_method":"none",
		"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP CLI Proxy"}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if code != 201 || json.Unmarshal(b, &reg) != nil || reg.ClientID == "" {
		t.Fatalf("register: %d %s", code, b)
	}
	conf := &oauth2.Config{ClientID: reg.ClientID, RedirectURL: "http://localhost:41000/oauth/callback",
		Scopes:   []string{"purchase:complete", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	resource := oauth2.SetAuthURLParam("resource", bridgeA)
	loc, err := p.SignIn(ctx, conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier), resource, oauth2.SetAuthURLParam("prompt", "consent")),
		&authservertest.Consent{Allowance: &authservertest.Allowance{MaxPerOrder: "40", DailyCap: "40", Currency: "EUR", Days: 1}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), resource)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("tokens %+v %v", tok, err)
	}
	if al, _ := tok.Extra("allowance").(map[string]any); al["max_per_order"] != float64(4000) {
		t.Fatalf("allowance %v", tok.Extra("allowance"))
	}
	// The bridge exchanges it and completes a checkout it created with
	// the platform key; a second order would pass the buyer's limit.
	e := &exchangeEnv{t: t, p: p}
	x := e.mustExchange(p.PlatformKey, tok.AccessToken, url.Values{"resource": {p.URL}})
	if code, body := e.complete(e.createCheckout(1), x.AccessToken); !ordered(code, body) {
		t.Fatalf("completion: %d %s", code, body)
	}
	if code, body := e.complete(e.createCheckout(1), x.AccessToken); ordered(code, body) || !strings.Contains(body, oauth.CodeSpendCapExceeded) {
		t.Fatalf("second completion over the limit: %d %s", code, body)
	}
	// A refreshed token is still for the bridge, and still exchangeable.
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	e.mustExchange(p.PlatformKey, next.AccessToken, nil)
	if code, body := e.complete(e.createCheckout(1), next.AccessToken); code != 401 {
		t.Fatalf("the refreshed bridge token at the platform API: %d %s", code, body)
	}
}
