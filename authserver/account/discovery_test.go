package account_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// challenges records the WWW-Authenticate of every 401 a client gets.
type challenges struct {
	mu   sync.Mutex
	seen []string
}

func (c *challenges) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && res.StatusCode == http.StatusUnauthorized {
		c.mu.Lock()
		c.seen = append(c.seen, res.Header.Get("WWW-Authenticate"))
		c.mu.Unlock()
	}
	return res, err
}

// sdkTool calls a tool through the go-sdk and decodes its structured
// content; a tool error fails the test.
func sdkTool[T any](t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *T {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %v", name, res.Content)
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v: %s", name, err, raw)
	}
	return &v
}

// TestGoSDKDiscoveryAndTools drives /account/mcp with the official MCP Go
// SDK as an MCP host would: without a token it gets the 401; the
// challenge names the protected-resource metadata, which names the
// authorization server, whose metadata gives the endpoints; the SDK then
// runs the authorization code flow with PKCE and the resource indicator
// (the buyer signing in on the consent page), retries with the bearer,
// lists the seven tools with their schemas and runs each.
func TestGoSDKDiscoveryAndTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.ctx()
	client := mcp.NewClient(&mcp.Implementation{Name: "ucpbridge-test", Version: "0.0.1"}, nil)

	// No token: initialize is refused with the challenge.
	rec := &challenges{}
	if _, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.endpoint, HTTPClient: &http.Client{Transport: rec}}, nil); err == nil {
		t.Fatal("connected without a token")
	}
	if len(rec.seen) == 0 {
		t.Fatal("the SDK got no 401")
	}
	parsed, err := oauthex.ParseWWWAuthenticate(rec.seen[:1])
	if err != nil || len(parsed) != 1 || parsed[0].Scheme != "bearer" {
		t.Fatalf("challenge %q: %v", rec.seen[0], err)
	}
	ch := parsed[0].Params
	if ch["realm"] != e.p.URL || ch["error"] != "" || ch["resource_metadata"] != e.p.URL+account.PathResourceMetadata {
		t.Fatalf("challenge %q", rec.seen[0])
	}

	// Discovery by hand with the SDK's own functions, which check what
	// clients check: the metadata's resource is the endpoint, the issuer
	// is the authorization server's URL.
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, ch["resource_metadata"], e.endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prm.AuthorizationServers, []string{e.p.URL}) || !slices.Equal(prm.BearerMethodsSupported, []string{"header"}) {
		t.Fatalf("metadata %+v", prm)
	}
	for _, s := range []string{"purchase:complete", "orders:read", "offline_access"} {
		if !slices.Contains(prm.ScopesSupported, s) {
			t.Errorf("scopes_supported %v lacks %s", prm.ScopesSupported, s)
		}
	}
	asm, err := auth.GetAuthServerMetadata(ctx, prm.AuthorizationServers[0], http.DefaultClient)
	if err != nil || asm == nil || asm.Issuer != e.p.URL || !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		t.Fatalf("authorization server metadata %+v: %v", asm, err)
	}

	// The SDK authorizes by itself: 401, metadata, PKCE, the buyer's
	// sign-in (the browser part), the code exchange, the retry.
	var signIns atomic.Int32
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: e.p.AgentClientID},
		RedirectURL:         "http://127.0.0.1:43123/callback", // loopback, any port: never dialled
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			signIns.Add(1)
			u, err := url.Parse(args.URL)
			if err != nil {
				return nil, err
			}
			if q := u.Query(); q.Get("resource") != e.endpoint || q.Get("code_challenge_method") != "S256" {
				t.Errorf("authorization URL %s: want resource %s and S256", args.URL, e.endpoint)
			}
			loc, err := e.p.SignIn(ctx, args.URL, nil)
			if err != nil {
				return nil, err
			}
			q := loc.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.endpoint, OAuthHandler: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if n := signIns.Load(); n != 1 {
		t.Fatalf("%d sign-ins, want 1", n)
	}
	ts, _ := h.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.p.Server.OAuth.ValidateAccessToken(ctx, tok.AccessToken)
	if err != nil || info.Resource != e.endpoint || info.BuyerID != e.p.BuyerID {
		t.Fatalf("the SDK's token: %+v %v (want Ada's, bound to %s)", info, err, e.endpoint)
	}

	// tools/list: the seven tools, each with real schemas and honest
	// annotations.
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTools := map[string]struct{ readOnly, destructive bool }{
		"get_buyer_context": {true, false}, "list_my_addresses": {true, false}, "list_my_orders": {true, false},
		"get_my_order": {true, false}, "list_my_agent_authorizations": {true, false},
		"revoke_agent_authorization": {false, true}, "update_spending_limits": {false, false},
	}
	if len(list.Tools) != len(wantTools) {
		t.Fatalf("%d tools, want %d", len(list.Tools), len(wantTools))
	}
	for _, tool := range list.Tools {
		want, found := wantTools[tool.Name]
		if !found {
			t.Errorf("unexpected tool %s", tool.Name)
			continue
		}
		in, _ := tool.InputSchema.(map[string]any)
		out, _ := tool.OutputSchema.(map[string]any)
		if in["type"] != "object" || in["additionalProperties"] != false || out["type"] != "object" || out["properties"] == nil {
			t.Errorf("%s: schemas %v / %v", tool.Name, tool.InputSchema, tool.OutputSchema)
		}
		a := tool.Annotations
		if a == nil || a.ReadOnlyHint != want.readOnly || a.DestructiveHint == nil || *a.DestructiveHint != want.destructive ||
			!a.IdempotentHint || a.OpenWorldHint == nil || *a.OpenWorldHint || tool.Description == "" {
			t.Errorf("%s: annotations %+v", tool.Name, a)
		}
	}

	// Each tool through the SDK.
	bc := sdkTool[account.BuyerContext](t, cs, "get_buyer_context", nil)
	if bc.Profile.ID != e.p.BuyerID || bc.Profile.Email != e.p.BuyerEmail || bc.Profile.Name != "Ada Lovelace" ||
		bc.DefaultAddress == nil || bc.DefaultAddress.Label != "home" || !slices.Equal(bc.OtherAddressLabels, []string{"office"}) ||
		bc.SavedCard == nil || bc.SavedCard.Last4 != "4242" || bc.AgentClientID != e.p.AgentClientID ||
		!bc.HasAgentAuthorization || bc.SpendingCaps == nil || bc.SpendingCaps.DailyCapAmount != 12050 {
		t.Fatalf("get_buyer_context: %+v", bc)
	}
	if addrs := sdkTool[account.Addresses](t, cs, "list_my_addresses", nil); len(addrs.Addresses) != 2 {
		t.Fatalf("list_my_addresses: %+v", addrs)
	}
	if ol := sdkTool[account.OrderList](t, cs, "list_my_orders", map[string]any{"limit": 5}); len(ol.Orders) != 0 || ol.NextCursor != "" {
		t.Fatalf("list_my_orders: %+v", ol)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_my_order", Arguments: map[string]any{"order_id": "flower-shop/ord_none"}})
	if err != nil || !res.IsError {
		t.Fatalf("get_my_order of no order: %+v %v", res, err)
	}
	other := e.addAgent("other-agent", "Other agent")
	e.token(other, &authservertest.Consent{})
	auths := sdkTool[account.AgentAuthorizations](t, cs, "list_my_agent_authorizations", nil)
	if len(auths.Authorizations) != 2 {
		t.Fatalf("list_my_agent_authorizations: %+v", auths)
	}
	lim := sdkTool[account.SpendingLimits](t, cs, "update_spending_limits", map[string]any{"client_id": e.p.AgentClientID, "daily_cap_amount": 10000})
	if lim.SpendingCaps.DailyCapAmount != 10000 || lim.SpendingCaps.MaxPerOrderAmount != 5000 {
		t.Fatalf("update_spending_limits: %+v", lim)
	}
	rv := sdkTool[account.Revocation](t, cs, "revoke_agent_authorization", map[string]any{"client_id": "other-agent"})
	if !rv.Revoked || rv.GrantsRevoked != 1 || rv.CallerRevoked {
		t.Fatalf("revoke_agent_authorization: %+v", rv)
	}
	if n := signIns.Load(); n != 1 {
		t.Fatalf("the SDK signed in %d times", n)
	}
}
