package bridge_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// frontWire records every request the bridge sends the platform: the
// token endpoint (the exchange) and the API (the tools), headers and
// bodies, so a test can tell where the buyer's bearer went.
type frontWire struct {
	mu   sync.Mutex
	reqs []frontReq
}

type frontReq struct {
	Path   string
	Header http.Header
	Body   string
}

func (w *frontWire) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, frontReq{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	w.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// responses records the bodies of the responses (the MCP client's side).
type responses struct {
	mu     sync.Mutex
	bodies []string
}

func (rr *responses) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	rr.mu.Lock()
	rr.bodies = append(rr.bodies, string(b))
	for k, vs := range res.Header {
		rr.bodies = append(rr.bodies, k+": "+strings.Join(vs, ", "))
	}
	rr.mu.Unlock()
	return res, nil
}

func (rr *responses) contains(s string) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for _, b := range rr.bodies {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// platformBearers are the bearer tokens the bridge sent the platform API.
func (w *frontWire) platformBearers() map[string]bool {
	out := map[string]bool{}
	for _, r := range w.all() {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			out[tok] = true
		}
	}
	return out
}

func (w *frontWire) all() []frontReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]frontReq(nil), w.reqs...)
}

// exchanges counts the token-exchange requests among the recorded ones.
func (w *frontWire) exchanges() int {
	n := 0
	for _, r := range w.all() {
		if strings.Contains(r.Body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange") {
			n++
		}
	}
	return n
}

type frontE2E struct {
	p    *authservertest.Platform
	url  string // the bridge's MCP endpoint, its RFC 8707 resource
	wire *frontWire
	srv  *httptest.Server
}

// startFrontE2E serves a real bridge over HTTP against authservertest,
// its URL registered as a protected resource of the demo platform.
func startFrontE2E(t *testing.T) *frontE2E {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	e := &frontE2E{url: "http://" + srv.Listener.Addr().String() + "/mcp", wire: &frontWire{}, srv: srv}
	e.p = authservertest.Start(t, &authservertest.Options{BridgeResources: []string{e.url}})
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: e.wire}
	b, err := bridge.New(bridge.Config{PlatformURL: e.p.URL, APIKey: e.p.PlatformKey,
		AgentProfile: strings.TrimSuffix(e.url, "/mcp") + "/.well-known/ucp", SigningKey: key, HTTPClient: hc,
		Crypto: ucpclient.SandboxSettler{}}) // as dev configures it
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.HTTPHandler(bridge.HTTPOptions{PublicURL: e.url, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.(io.Closer).Close() })
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// signInHandler is the go-sdk's own OAuth client (RFC 9728 discovery from
// the 401, RFC 8414, PKCE, resource=<PRM resource>) with the demo agent as
// a preregistered public client; the browser is authservertest's consent
// form, posted over HTTP with a spending limit of 40.00 EUR per order.
// The authorization URLs it is sent to are appended to authURLs.
func signInHandler(t *testing.T, p *authservertest.Platform, authURLs *[]string) *auth.AuthorizationCodeHandler {
	t.Helper()
	return signInWith(t, p, &authservertest.Allowance{MaxPerOrder: "40", DailyCap: "100", Currency: "EUR", Days: 7}, authURLs)
}

// signInWith is signInHandler with the spending limit a; authURLs may be
// nil.
func signInWith(t *testing.T, p *authservertest.Platform, a *authservertest.Allowance, authURLs *[]string) *auth.AuthorizationCodeHandler {
	t.Helper()
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: p.AgentClientID},
		RedirectURL:         "http://127.0.0.1:43117/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			if authURLs != nil {
				*authURLs = append(*authURLs, args.URL)
			}
			loc, err := p.SignIn(ctx, args.URL, &authservertest.Consent{Allowance: a})
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
	return h
}

func e2eConnect(t *testing.T, endpoint string, hc *http.Client, h auth.OAuthHandler) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "sdk-agent", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, OAuthHandler: h, DisableStandaloneSSE: true, MaxRetries: -1}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, tr, nil)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func e2eCall(t *testing.T, s *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func e2eText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestHTTPFrontEndToEnd: the official MCP Go SDK signs the buyer in
// through the real OAuth flow for the bridge's resource, and the bridge
// shops with the exchanged platform token; the buyer's bearer never
// reaches the platform API.
func TestHTTPFrontEndToEnd(t *testing.T) {
	e := startFrontE2E(t)
	var authURLs []string
	oh := signInHandler(t, e.p, &authURLs)
	seen := &responses{}
	s, err := e2eConnect(t, e.url, &http.Client{Transport: seen}, oh)
	if err != nil {
		t.Fatal(err)
	}
	// The SDK found the AS through the bridge's 401 and metadata, and
	// asked for the bridge's resource and scopes.
	if len(authURLs) != 1 {
		t.Fatalf("sign-ins: %d", len(authURLs))
	}
	au, _ := url.Parse(authURLs[0])
	scopes := strings.Fields(au.Query().Get("scope"))
	slices.Sort(scopes)
	if au.Query().Get("resource") != e.url || strings.Join(scopes, " ") != "orders:read purchase:complete" ||
		!strings.HasPrefix(authURLs[0], e.p.AuthorizeURL) {
		t.Fatalf("authorization URL %s", authURLs[0])
	}
	ts, err := oh.TokenSource(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}

	tools, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	for _, n := range []string{"search_products", "confirm_purchase", "get_buyer_context"} {
		if !names[n] {
			t.Fatalf("tool %s missing from %v", n, names)
		}
	}
	if res := e2eCall(t, s, "search_products", map[string]any{"store_slug": "flower-shop", "query": "roses"}); res.IsError {
		t.Fatalf("search_products: %s", e2eText(res))
	}
	res := e2eCall(t, s, "get_buyer_context", map[string]any{})
	if res.IsError || !strings.Contains(e2eText(res), e.p.BuyerEmail) {
		t.Fatalf("get_buyer_context: %s", e2eText(res))
	}
	if n := e.wire.exchanges(); n != 1 {
		t.Fatalf("%d exchanges for one session", n)
	}
	// The exchanged token went to the platform API, never back to the
	// MCP client.
	exchanged := e.wire.platformBearers()
	if len(exchanged) != 1 || exchanged[bearer.AccessToken] {
		t.Fatalf("platform bearers: %d (the buyer's own among them: %v)", len(exchanged), exchanged[bearer.AccessToken])
	}
	for tok := range exchanged {
		if seen.contains(tok) {
			t.Fatal("the exchanged platform token was returned to the MCP client")
		}
	}
	// The agent profile is served beside the endpoint, without a token.
	pr, err := http.Get(strings.TrimSuffix(e.url, "/mcp") + "/.well-known/ucp")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK || !strings.Contains(string(pb), "signing_keys") {
		t.Fatalf("profile: %d %s", pr.StatusCode, pb)
	}
	// Where the bearer went: in the body of the exchange only.
	for _, r := range e.wire.all() {
		inHeaders := false
		for _, vs := range r.Header {
			for _, v := range vs {
				inHeaders = inHeaders || strings.Contains(v, bearer.AccessToken)
			}
		}
		if inHeaders {
			t.Fatalf("the buyer's bearer was sent in a header to %s", r.Path)
		}
		if strings.Contains(r.Body, url.QueryEscape(bearer.AccessToken)) || strings.Contains(r.Body, bearer.AccessToken) {
			if !strings.Contains(r.Body, "token-exchange") || r.Path != "/ucp/oauth2/token" {
				t.Fatalf("the buyer's bearer was sent to %s", r.Path)
			}
		}
	}
}

// TestHTTPFrontRefusesTokensForAnotherResource: a buyer token issued for
// no resource (or another one) is not exchanged: 401 invalid_token.
func TestHTTPFrontRefusesTokensForAnotherResource(t *testing.T) {
	e := startFrontE2E(t)
	tok, err := e.p.BuyerToken(t.Context(), "purchase:complete", nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	tok.SetAuthHeader(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wa := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(wa, `error="invalid_token"`) || !strings.Contains(wa, "resource_metadata=") {
		t.Fatalf("%d %q", res.StatusCode, wa)
	}
}

// TestHTTPFrontRevokedGrant: two calls share one exchange; once the buyer
// revokes the token, the platform refuses the cached exchanged token, the
// bridge evicts it, the tool reports it, and the next request is 401.
func TestHTTPFrontRevokedGrant(t *testing.T) {
	e := startFrontE2E(t)
	var authURLs []string
	oh := signInHandler(t, e.p, &authURLs)
	s, err := e2eConnect(t, e.url, nil, oh)
	if err != nil {
		t.Fatal(err)
	}
	// Listing discovers the account tools (with the buyer's token).
	if _, err := s.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if res := e2eCall(t, s, "get_buyer_context", map[string]any{}); res.IsError {
			t.Fatalf("get_buyer_context: %s", e2eText(res))
		}
	}
	if n := e.wire.exchanges(); n != 1 {
		t.Fatalf("two calls, %d exchanges", n)
	}
	ts, _ := oh.TokenSource(t.Context())
	bearer, _ := ts.Token()
	// RFC 7009 revocation by the agent (a public client names itself).
	form := url.Values{"token": {bearer.AccessToken}, "client_id": {e.p.AgentClientID}}
	r, err := http.PostForm(e.p.URL+"/ucp/oauth2/revoke", form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	if res := e2eCall(t, s, "get_buyer_context", map[string]any{}); !res.IsError {
		t.Fatalf("a revoked token still reads the account: %s", e2eText(res))
	}
	// The next request: exchanged again, refused, 401 invalid_token.
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	(&oauth2.Token{AccessToken: bearer.AccessToken}).SetAuthHeader(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}
