package bridge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	list, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// TestConnectAccount: over stdio, connect_account signs the buyer in
// (loopback PKCE; the "browser" posts the consent form), stores the
// tokens in the token file, and the account tools are discovered: the
// client is told the list changed and sees them on the next tools/list.
func TestConnectAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "buyer.json")
	ctx := t.Context()
	signedIn := make(chan error, 1)
	b, _ := newBridge(t, p, &recorder{}, tokenFile, func(c *bridge.Config) {
		c.OpenBrowser = func(authURL string) error {
			go func() {
				loc, err := p.SignIn(ctx, authURL, &authservertest.Consent{})
				if err == nil {
					var res *http.Response
					if res, err = http.Get(loc.String()); err == nil {
						res.Body.Close()
					}
				}
				signedIn <- err
			}()
			return nil
		}
	})
	changed := make(chan struct{}, 8)
	cs := startStdioWith(t, b, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	if names := toolNames(t, cs); slices.Contains(names, "get_buyer_context") {
		t.Fatalf("account tools before sign-in: %v", names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "connect_account", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("connect_account: %v %s", err, text(res))
	}
	if err := <-signedIn; err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no tools/list_changed notification")
	}
	if names := toolNames(t, cs); !slices.Contains(names, "get_buyer_context") {
		t.Fatalf("account tools after sign-in: %v", names)
	}
	tok, err := (&ucpclient.FileTokenStore{Path: tokenFile}).Load(ctx)
	if err != nil || tok == nil || tok.RefreshToken == "" {
		t.Fatalf("token file: %+v %v", tok, err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_buyer_context", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(text(res), p.BuyerEmail) {
		t.Fatalf("get_buyer_context: %v %s", err, text(res))
	}
}

// TestHTTPBuyerFromContext: over streamable HTTP the buyer comes per
// request from ContextWithBuyer (as the HTTP front puts the exchanged
// token there); connect_account is not offered, and a request without a
// buyer gets the sign-in hint.
func TestHTTPBuyerFromContext(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, nil)
	ctx := t.Context()
	tok, err := p.BuyerToken(ctx, "purchase:complete", nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := &recorder{}
	b, _ := newBridge(t, p, rt, "", nil)
	h := server.NewStreamableHTTPServer(b.MCPServer(), server.WithStateLess(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Buyer") == "yes" {
			r = r.WithContext(bridge.ContextWithBuyer(r.Context(), oauth2.StaticTokenSource(tok)))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	connect := func(buyer bool) *mcp.ClientSession {
		hc := &http.Client{Transport: headerRT{buyer: buyer}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "http-agent", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	anon := connect(false)
	res, err := anon.CallTool(ctx, &mcp.CallToolParams{Name: "get_my_order", Arguments: map[string]any{"order_id": "x"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "sign in") || strings.Contains(text(res), "connect_account") {
		t.Fatalf("no buyer over HTTP: %v %s", err, text(res))
	}
	buyer := connect(true)
	names := toolNames(t, buyer)
	if slices.Contains(names, "connect_account") || !slices.Contains(names, "get_buyer_context") {
		t.Fatalf("HTTP tools: %v", names)
	}
	res, err = buyer.CallTool(ctx, &mcp.CallToolParams{Name: "get_connection_status", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("status: %v %s", err, text(res))
	}
	if st := structured(t, res); st["buyer_connected"] != true || st["transport"] != "http" {
		t.Fatalf("status: %v", st)
	}
	// The request without the buyer still has none (no leak between requests).
	res, err = anon.CallTool(ctx, &mcp.CallToolParams{Name: "get_buyer_context", Arguments: map[string]any{}})
	if err != nil || !res.IsError {
		t.Fatalf("anonymous get_buyer_context: %v %s", err, text(res))
	}
}

type headerRT struct{ buyer bool }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.buyer {
		r = r.Clone(r.Context())
		r.Header.Set("X-Test-Buyer", "yes")
	}
	return http.DefaultTransport.RoundTrip(r)
}
