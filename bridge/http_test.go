package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// fakePlatform is the platform API as the test tool calls it: it accepts
// only tokens the fake AS issued for live subjects, and records every
// Authorization header it receives.
type fakePlatform struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string
}

func newFakePlatform(t *testing.T, a *fakeAS) *fakePlatform {
	p := &fakePlatform{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		p.mu.Lock()
		p.got = append(p.got, h)
		p.mu.Unlock()
		tok, _ := strings.CutPrefix(h, "Bearer ")
		if !a.valid(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePlatform) headers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// testMCPServer stands in for the bridge's tools: account_call needs the
// buyer and calls the platform with the buyer's (exchanged) token, the way
// ucpclient does, evicting the token when the platform refuses it; saw_auth
// reports whether the tool could see an Authorization header.
func testMCPServer(platformURL string) *server.MCPServer {
	s := server.NewMCPServer("test-bridge", "1.0.0", server.WithToolCapabilities(false), server.WithRecovery())
	s.AddTool(mcpgo.NewTool("account_call", mcpgo.WithDescription("calls the platform as the buyer")),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			b := buyerFromContext(ctx)
			if b == nil {
				return mcpgo.NewToolResultError("connect your account"), nil
			}
			tok, err := b.Token()
			if err != nil {
				return mcpgo.NewToolResultError(err.Error()), nil
			}
			hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, platformURL+"/account", nil)
			tok.SetAuthHeader(hr)
			res, err := http.DefaultClient.Do(hr)
			if err != nil {
				return mcpgo.NewToolResultError(err.Error()), nil
			}
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized {
				EvictBuyer(ctx)
				return mcpgo.NewToolResultError("the platform refused the buyer's token"), nil
			}
			return mcpgo.NewToolResultText("ok"), nil
		})
	s.AddTool(mcpgo.NewTool("saw_auth"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		if req.Header.Get("Authorization") != "" {
			return mcpgo.NewToolResultText("yes"), nil
		}
		return mcpgo.NewToolResultText("no"), nil
	})
	s.AddTool(mcpgo.NewTool("boom"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		panic("tool exploded")
	})
	return s
}

type frontEnv struct {
	as       *fakeAS
	platform *fakePlatform
	front    *HTTPFront
	srv      *httptest.Server
	url      string // the MCP endpoint
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newFrontEnv(t *testing.T, mod func(*HTTPOptions)) *frontEnv {
	t.Helper()
	e := &frontEnv{as: newFakeAS(t), logs: &syncBuffer{}}
	e.platform = newFakePlatform(t, e.as)
	e.srv = httptest.NewUnstartedServer(nil)
	e.url = "http://" + e.srv.Listener.Addr().String() + "/mcp"
	opts := HTTPOptions{PublicURL: e.url, Issuer: e.as.srv.URL,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&opts)
	}
	f, err := NewHTTPFront(testMCPServer(e.platform.srv.URL), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("panic") {
			panic("profile exploded")
		}
		io.WriteString(w, `{"ucp":{}}`)
	}), e.as.id+"."+e.as.sec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e.front = f
	e.srv.Config.Handler = f
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// bearerClient sends tok on every request.
func bearerClient(tok string) *http.Client {
	return oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}))
}

// sdkConnect connects the official MCP Go SDK client over streamable HTTP.
func sdkConnect(t *testing.T, url string, hc *http.Client, h *recordingAuth) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "sdk-agent", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}
	if h != nil {
		tr.OAuthHandler = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, tr, nil)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// recordingAuth is an SDK OAuthHandler that records the challenge the
// transport hands it and declines to sign in.
type recordingAuth struct {
	status int
	header []string
}

func (h *recordingAuth) TokenSource(context.Context) (oauth2.TokenSource, error) { return nil, nil }
func (h *recordingAuth) Authorize(_ context.Context, _ *http.Request, res *http.Response) error {
	defer res.Body.Close()
	h.status, h.header = res.StatusCode, res.Header.Values("WWW-Authenticate")
	return errors.New("sign-in declined by the test")
}

func callTool(t *testing.T, s *mcp.ClientSession, name string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestHTTPNoTokenChallengesWithMetadata(t *testing.T) {
	e := newFrontEnv(t, nil)
	h := &recordingAuth{}
	if _, err := sdkConnect(t, e.url, nil, h); err == nil {
		t.Fatal("connected without a token")
	}
	if h.status != http.StatusUnauthorized {
		t.Fatalf("status %d", h.status)
	}
	chs, err := oauthex.ParseWWWAuthenticate(h.header)
	if err != nil || len(chs) != 1 || chs[0].Scheme != "bearer" {
		t.Fatalf("challenge %q: %v", h.header, err)
	}
	prmURL := chs[0].Params["resource_metadata"]
	if prmURL != strings.Replace(e.url, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1) {
		t.Fatalf("resource_metadata = %q", prmURL)
	}
	if _, ok := chs[0].Params["error"]; ok {
		t.Fatalf("a request without a token got an error code: %q", h.header)
	}
	if chs[0].Params["scope"] != "purchase:complete orders:read" {
		t.Fatalf("scope = %q", chs[0].Params["scope"])
	}
	// The SDK's own metadata fetch checks resource == the endpoint URL.
	for _, u := range []string{prmURL, strings.TrimSuffix(prmURL, "/mcp")} {
		prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), u, e.url, nil)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != e.as.srv.URL ||
			strings.Join(prm.BearerMethodsSupported, ",") != "header" ||
			strings.Join(prm.ScopesSupported, " ") != "purchase:complete orders:read" {
			t.Fatalf("metadata %+v", prm)
		}
	}
	if e.as.count() != 0 {
		t.Fatal("an exchange without a token")
	}
}

func TestHTTPExchangedTokenReachesToolsNeverTheBearer(t *testing.T) {
	e := newFrontEnv(t, nil)
	s, err := sdkConnect(t, e.url, bearerClient("good-buyer-bearer"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tools, err := s.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 3 {
		t.Fatalf("tools %v %v", tools, err)
	}
	if res := callTool(t, s, "account_call"); res.IsError || text(res) != "ok" {
		t.Fatalf("account_call: %s", text(res))
	}
	if res := callTool(t, s, "saw_auth"); text(res) != "no" {
		t.Fatal("a tool handler saw the MCP client's Authorization header")
	}
	// One exchange for the whole session (initialize, list, two calls).
	if e.as.count() != 1 {
		t.Fatalf("%d exchanges", e.as.count())
	}
	// The platform got the exchanged token only; the subject token went
	// to the token endpoint only.
	for _, h := range e.platform.headers() {
		if h != "Bearer pt-1" {
			t.Fatalf("platform got %q", h)
		}
	}
	if len(e.platform.headers()) != 1 {
		t.Fatalf("platform calls %d", len(e.platform.headers()))
	}
	// Neither token is logged.
	for _, secret := range []string{"good-buyer-bearer", "pt-1", e.as.sec} {
		if strings.Contains(e.logs.String(), secret) {
			t.Fatalf("log holds %q", secret)
		}
	}
}

func TestHTTPRefusedTokenIsInvalidToken(t *testing.T) {
	e := newFrontEnv(t, nil)
	h := &recordingAuth{}
	if _, err := sdkConnect(t, e.url, bearerClient("foreign-resource-token"), h); err == nil {
		t.Fatal("connected with a refused token")
	}
	chs, _ := oauthex.ParseWWWAuthenticate(h.header)
	if h.status != http.StatusUnauthorized || len(chs) != 1 || chs[0].Params["error"] != "invalid_token" ||
		chs[0].Params["resource_metadata"] != e.front.PRMURL() {
		t.Fatalf("%d %q", h.status, h.header)
	}
	if len(e.platform.headers()) != 0 {
		t.Fatal("the platform was called")
	}
}

func TestHTTPCacheAndRevocation(t *testing.T) {
	e := newFrontEnv(t, nil)
	s, err := sdkConnect(t, e.url, bearerClient("good-revocable"), nil)
	if err != nil {
		t.Fatal(err)
	}
	callTool(t, s, "account_call")
	callTool(t, s, "account_call")
	if e.as.count() != 1 {
		t.Fatalf("two calls, %d exchanges", e.as.count())
	}
	// The buyer revokes the grant: the cached exchanged token dies with it.
	e.as.revoke("good-revocable")
	if res := callTool(t, s, "account_call"); !res.IsError {
		t.Fatal("a revoked grant still works")
	}
	if e.front.Exchanger().Len() != 0 {
		t.Fatal("the refused token was not evicted")
	}
	// The next request exchanges again, is refused: 401 invalid_token.
	res := post(t, e.url, "good-revocable", `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if e.as.count() != 2 {
		t.Fatalf("exchanges %d", e.as.count())
	}
}

func post(t *testing.T, url, tok, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func TestHTTPBodyLimit(t *testing.T) {
	e := newFrontEnv(t, func(o *HTTPOptions) { o.MaxBodyBytes = 4096 })
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	if res := post(t, e.url, "good-a", big, nil); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("with Content-Length: %d", res.StatusCode)
	}
	// Chunked (no Content-Length): read up to the limit, then 413.
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer good-a")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d", res.StatusCode)
	}
	// Under the limit it is served.
	if res := post(t, e.url, "good-a", initBody, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("small body: %d", res.StatusCode)
	}
}

func TestHTTPMalformedCredentials(t *testing.T) {
	e := newFrontEnv(t, func(o *HTTPOptions) { o.MaxTokenBytes = 64 })
	cases := []struct {
		name   string
		hdr    map[string]string
		url    string
		status int
		errc   string // error in WWW-Authenticate, "" for none
	}{
		{"basic scheme", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, e.url, 401, ""},
		{"too long", map[string]string{"Authorization": "Bearer good" + strings.Repeat("a", 100)}, e.url, 400, "invalid_request"},
		{"bad characters", map[string]string{"Authorization": `Bearer good",x="y`}, e.url, 401, "invalid_token"},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, e.url, 401, "invalid_token"},
		{"token in the URL", map[string]string{"Authorization": "Bearer good-a"}, e.url + "?access_token=good-a", 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := post(t, tc.url, "", initBody, tc.hdr)
			wa := res.Header.Get("WWW-Authenticate")
			if res.StatusCode != tc.status {
				t.Fatalf("status %d", res.StatusCode)
			}
			chs, err := oauthex.ParseWWWAuthenticate([]string{wa})
			if err != nil || len(chs) != 1 || chs[0].Params["error"] != tc.errc || chs[0].Params["resource_metadata"] != e.front.PRMURL() {
				t.Fatalf("challenge %q (%v)", wa, err)
			}
			if strings.Contains(wa, `x="y`) {
				t.Fatal("request text echoed into the challenge")
			}
		})
	}
	// Two Authorization headers.
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(initBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Authorization", "Bearer good-a")
	req.Header.Add("Authorization", "Bearer good-b")
	res, _ := http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("two headers: %d", res.StatusCode)
	}
	if e.as.count() != 0 {
		t.Fatal("a malformed credential reached the token endpoint")
	}
}

func TestHTTPAuthorizationServerDownIs503(t *testing.T) {
	e := newFrontEnv(t, nil)
	e.as.srv.Close()
	res := post(t, e.url, "good-a", initBody, nil)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("%d", res.StatusCode)
	}
	if len(e.platform.headers()) != 0 {
		t.Fatal("the platform was called")
	}
}

func TestHTTPDiscoveryAndMisconfiguration(t *testing.T) {
	// Discovered: the front found /token in the fake AS's metadata (the
	// env sets no TokenEndpoint).
	e := newFrontEnv(t, nil)
	if res := post(t, e.url, "good-a", initBody, nil); res.StatusCode != http.StatusOK || e.as.count() != 1 {
		t.Fatalf("%d, %d exchanges", res.StatusCode, e.as.count())
	}
	// An issuer that is not byte-identical to the metadata's: 503, no exchange.
	e2 := newFrontEnv(t, func(o *HTTPOptions) { o.Issuer += "/" })
	if res := post(t, e2.url, "good-a", initBody, nil); res.StatusCode != http.StatusServiceUnavailable || e2.as.count() != 0 {
		t.Fatalf("%d, %d exchanges", res.StatusCode, e2.as.count())
	}
	// Wrong client secret: the bridge's fault, 503, never 401.
	e3 := newFrontEnv(t, func(o *HTTPOptions) { o.ExchangeClientID, o.ExchangeClientSecret = "plat", "wrong" })
	if res := post(t, e3.url, "good-a", initBody, nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%d", res.StatusCode)
	}
}

func TestHTTPAllowAnonymous(t *testing.T) {
	e := newFrontEnv(t, func(o *HTTPOptions) { o.AllowAnonymous = true })
	s, err := sdkConnect(t, e.url, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := callTool(t, s, "account_call"); !res.IsError || text(res) != "connect your account" {
		t.Fatalf("%s", text(res))
	}
	// A token that is sent is still checked.
	if res := post(t, e.url, "bad-x", initBody, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%d", res.StatusCode)
	}
}

func TestHTTPPanicsRecovered(t *testing.T) {
	e := newFrontEnv(t, nil)
	res, err := http.Get(strings.TrimSuffix(e.url, "/mcp") + "/.well-known/ucp?panic=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("%d", res.StatusCode)
	}
	s, err := sdkConnect(t, e.url, bearerClient("good-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "boom", Arguments: map[string]any{}})
	if err == nil && !r.IsError {
		t.Fatal("a panicking tool succeeded")
	}
	// The server lives on.
	if res := callTool(t, s, "saw_auth"); text(res) != "no" {
		t.Fatal(text(res))
	}
}

func TestHTTPDNSRebindingGuard(t *testing.T) {
	e := newFrontEnv(t, nil)
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(initBody))
	req.Host = "evil.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer good-a")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("rebinding Host: %d", r.StatusCode)
	}
}

// TestHTTPLegacySessionsWithMCPGoClient: mcp-go's client on the 2025-11-25
// path gets a session id, and an idle session expires: its id is then 404
// (the client starts a new session; 401 would wrongly send it to sign in).
func TestHTTPLegacySessionsWithMCPGoClient(t *testing.T) {
	e := newFrontEnv(t, func(o *HTTPOptions) { o.SessionIdleTTL = 100 * time.Millisecond })
	c, err := mcpclient.NewStreamableHttpClient(e.url,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer good-legacy"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mcpclient.WithProtocolVersion(mcpgo.ProtocolVersion20251125)(c)
	if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: mcpgo.ProtocolVersion20251125,
		ClientInfo:      mcpgo.Implementation{Name: "mcp-go", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	sid := c.GetSessionId()
	if !strings.HasPrefix(sid, "mcp-session-") {
		t.Fatalf("session id %q", sid)
	}
	res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "account_call"}})
	if err != nil || res.IsError {
		t.Fatalf("%v %v", res, err)
	}
	// Unknown ids are 404.
	if r := post(t, e.url, "good-legacy", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		map[string]string{"Mcp-Session-Id": "mcp-session-00000000-0000-0000-0000-000000000000", "Mcp-Protocol-Version": "2025-11-25"}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown session: %d", r.StatusCode)
	}
	// Idle past the TTL: the sweeper (every second at least) forgets it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := post(t, e.url, "good-legacy", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`,
			map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})
		if r.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still alive: %d", r.StatusCode)
		}
		// Polling touches the session: wait out the TTL between polls.
		time.Sleep(300 * time.Millisecond)
	}
	// The mcp-go client sees the session as terminated.
	if _, err := c.ListTools(ctx, mcpgo.ListToolsRequest{}); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewHTTPFrontValidates(t *testing.T) {
	ms := testMCPServer("http://127.0.0.1:1")
	good := HTTPOptions{PublicURL: "http://127.0.0.1:8081/mcp", Issuer: "http://127.0.0.1:8080"}
	if f, err := NewHTTPFront(ms, nil, "id.secret", good); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	for name, mod := range map[string]func(*HTTPOptions){
		"no public url":     func(o *HTTPOptions) { o.PublicURL = "" },
		"http non-loopback": func(o *HTTPOptions) { o.PublicURL = "http://bridge.example.com/mcp" },
		"quote in url":      func(o *HTTPOptions) { o.PublicURL = `http://127.0.0.1:8081/m"cp` },
		"query":             func(o *HTTPOptions) { o.PublicURL = "http://127.0.0.1:8081/mcp?x=1" },
		"no issuer":         func(o *HTTPOptions) { o.Issuer = "" },
		"offline_access":    func(o *HTTPOptions) { o.Scopes = []string{"purchase:complete", "offline_access"} },
		"scope with quote":  func(o *HTTPOptions) { o.Scopes = []string{`a"b`} },
	} {
		o := good
		mod(&o)
		if f, err := NewHTTPFront(ms, nil, "id.secret", o); err == nil {
			f.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewHTTPFront(ms, nil, "no-dot", good); err == nil {
		t.Error("an API key without a secret half accepted")
	}
}

// BenchmarkHTTPFrontToolCall measures a tool call through the front with
// a cached exchange against the same call made anonymously: the
// difference is the guard (token check, cache lookup, header strip).
func BenchmarkHTTPFrontToolCall(b *testing.B) {
	for _, mode := range []string{"bearer-cached", "anonymous"} {
		b.Run(mode, func(b *testing.B) {
			e := newFrontEnvB(b, mode == "anonymous")
			var hc *http.Client
			if mode != "anonymous" {
				hc = bearerClient("good-bench")
			}
			c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: e.url, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "saw_auth", Arguments: map[string]any{}}); err != nil {
					b.Fatal(err)
				}
			}
			if mode != "anonymous" && e.as.count() != 1 {
				b.Fatalf("%d exchanges", e.as.count())
			}
		})
	}
}

func newFrontEnvB(b *testing.B, anonymous bool) *frontEnv {
	a := &fakeAS{id: "plat", sec: "ucpb_cs_secret", revoked: map[string]bool{}, issued: map[string]string{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", a.token)
	a.srv = httptest.NewServer(mux)
	b.Cleanup(a.srv.Close)
	e := &frontEnv{as: a}
	e.srv = httptest.NewUnstartedServer(nil)
	e.url = "http://" + e.srv.Listener.Addr().String() + "/mcp"
	f, err := NewHTTPFront(testMCPServer("http://127.0.0.1:1"), nil, a.id+"."+a.sec,
		HTTPOptions{PublicURL: e.url, Issuer: a.srv.URL, TokenEndpoint: a.srv.URL + "/token", AllowAnonymous: anonymous})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	e.front = f
	e.srv.Config.Handler = f
	e.srv.Start()
	b.Cleanup(e.srv.Close)
	return e
}

// TestHTTPRebindingGuardAdmitsThePublicHost: behind a reverse proxy on the
// same host, requests arrive on a loopback socket carrying the public
// Host; that one is admitted, any other name is still 403.
func TestHTTPRebindingGuardAdmitsThePublicHost(t *testing.T) {
	a := newFakeAS(t)
	srv := httptest.NewUnstartedServer(nil)
	f, err := NewHTTPFront(testMCPServer("http://127.0.0.1:1"), nil, a.id+"."+a.sec,
		HTTPOptions{PublicURL: "https://agent.example.com/mcp", Issuer: a.srv.URL, TokenEndpoint: a.srv.URL + "/token"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv.Config.Handler = f
	srv.Start()
	defer srv.Close()
	for host, want := range map[string]int{
		"agent.example.com": http.StatusOK, "AGENT.example.com:443": http.StatusOK, "localhost": http.StatusOK,
		"evil.example": http.StatusForbidden, "agent.example.com.evil.example": http.StatusForbidden,
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(initBody))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer good-a")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
}

// TestHTTPExchangeFailuresLoggedOncePerInterval: a flood against a
// platform whose authorization server is down is a 503 for every request
// but one log line per failLogEvery, which says how many it left out.
func TestHTTPExchangeFailuresLoggedOncePerInterval(t *testing.T) {
	e := newFrontEnv(t, nil)
	e.as.srv.Close()
	for i := range 30 {
		if res := post(t, e.url, fmt.Sprintf("made-up-%d", i), initBody, nil); res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	if n := strings.Count(e.logs.String(), "bridge: token exchange"); n != 1 {
		t.Fatalf("%d failure lines for 30 failures:\n%s", n, e.logs.String())
	}
	var th throttle
	now := time.Now()
	if ok, n := th.allow(now, time.Second); !ok || n != 0 {
		t.Fatal("first event held back")
	}
	for range 3 {
		if ok, _ := th.allow(now.Add(time.Millisecond), time.Second); ok {
			t.Fatal("event inside the interval logged")
		}
	}
	if ok, n := th.allow(now.Add(time.Second), time.Second); !ok || n != 3 {
		t.Fatalf("after the interval: %v, %d held back", ok, n)
	}
}
