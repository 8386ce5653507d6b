package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// bannerURL waits for a banner line matching re and returns its group.
func bannerURL(t *testing.T, r *running, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(r.banner.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v in the banner:\n%s", re, r.banner.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDevBridge: dev on random ports prints a bridge URL that answers as
// an OAuth-protected resource of the platform it also printed, with a
// ready mcp-remote line and desktop config; an MCP client that registers
// itself (RFC 7591, as mcp-remote does) signs the buyer in for the
// bridge's resource through the consent page and shops through the
// bridge, which exchanges the buyer's token with the demo platform key:
// account tools, a card purchase within the allowance, one over it.
func TestDevBridge(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	mcpURL := bannerURL(t, d, regexp.MustCompile(`MCP bridge\s+(http://127\.0\.0\.1:\d+/mcp)`))
	cfgLine := bannerURL(t, d, regexp.MustCompile(`desktop agent config: (\{.*\})`))
	if !strings.Contains(d.banner.String(), "npx -y mcp-remote@0.15.1 "+mcpURL) {
		t.Fatalf("no mcp-remote line:\n%s", d.banner.String())
	}
	var desk struct {
		MCPServers map[string]struct {
			Command string
			Args    []string
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(cfgLine), &desk); err != nil || desk.MCPServers["ucpbridge"].Command != "npx" ||
		strings.Join(desk.MCPServers["ucpbridge"].Args, " ") != "-y mcp-remote@0.15.1 "+mcpURL {
		t.Fatalf("desktop config %q: %v", cfgLine, err)
	}
	for _, s := range []string{authserver.DemoBuyerEmail, authserver.DemoBuyerPassword, authserver.DemoPlatformKey} {
		if !strings.Contains(d.banner.String(), s) {
			t.Fatalf("banner lacks %q", s)
		}
	}

	// The bridge's RFC 9728 metadata names itself and the platform; the
	// platform's RFC 8414 metadata offers registration.
	origin := strings.TrimSuffix(mcpURL, "/mcp")
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	code, _, b := do(t, "GET", origin+"/.well-known/oauth-protected-resource/mcp", "")
	if code != 200 || json.Unmarshal([]byte(b), &prm) != nil || prm.Resource != mcpURL || len(prm.AuthorizationServers) != 1 ||
		prm.AuthorizationServers[0] != d.base {
		t.Fatalf("bridge metadata: %d %s", code, b)
	}
	var asm struct {
		Issuer               string `json:"issuer"`
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	code, _, b = do(t, "GET", d.base+"/.well-known/oauth-authorization-server", "")
	if code != 200 || json.Unmarshal([]byte(b), &asm) != nil || asm.Issuer != d.base || asm.RegistrationEndpoint == "" {
		t.Fatalf("AS metadata: %d %s", code, b)
	}
	code, h, _ := do(t, "POST", mcpURL, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Accept", "application/json, text/event-stream")
	if code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `resource_metadata="`+origin+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("anonymous MCP call: %d %q", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := do(t, "GET", origin+"/healthz", ""); code != 200 {
		t.Fatalf("bridge healthz %d", code)
	}

	// An MCP client registering itself, signing the buyer in.
	p := harness(d.base)
	oh, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "test agent", RedirectURIs: []string{"http://localhost:43118/oauth/callback"},
			TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}}},
		RedirectURL: "http://localhost:43118/oauth/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			loc, err := p.SignIn(ctx, args.URL, &authservertest.Consent{
				Allowance: &authservertest.Allowance{MaxPerOrder: "100", DailyCap: "200", Currency: "EUR", Days: 7}})
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
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "dev-test-agent", Version: "1"}, nil)
	bearers := &bearerLog{next: http.DefaultTransport}
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL, OAuthHandler: oh, DisableStandaloneSSE: true, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: bearers}}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "search_products", Arguments: map[string]any{"store_slug": "flower-shop", "query": "roses"}})
	if err != nil || res.IsError || !strings.Contains(toolText(res), "bouquet_roses") {
		t.Fatalf("search_products: %v %s", err, toolText(res))
	}
	// The buyer is connected: the bridge exchanged the buyer's token
	// for a platform token with the demo platform's key.
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "get_connection_status", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(toolText(res), `"buyer_connected":true`) {
		t.Fatalf("get_connection_status: %v %s\n%s", err, toolText(res), d.logs)
	}
	// Listing discovers the buyer's account tools at the platform, and
	// one answers with the buyer's account.
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	for _, n := range []string{"search_products", "confirm_purchase", "get_buyer_context"} {
		if !names[n] {
			t.Fatalf("no %s among %v", n, names)
		}
	}
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "get_buyer_context", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(toolText(res), "Ada") {
		t.Fatalf("get_buyer_context: %v %s", err, toolText(res))
	}
	// A purchase on the buyer's saved card within the allowance: the
	// store verifies the bridge's mandates against the agent profile the
	// bridge serves on its own listener. Then one over the cap.
	purchase := func(qty int) map[string]any {
		t.Helper()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "create_checkout", Arguments: map[string]any{"store_slug": "flower-shop",
			"items": []any{map[string]any{"id": "bouquet_roses", "quantity": qty}}}})
		var co struct{ ID string }
		if err != nil || res.IsError || json.Unmarshal([]byte(mustMarshal(t, res.StructuredContent)), &co) != nil || co.ID == "" {
			t.Fatalf("create_checkout: %v %s", err, toolText(res))
		}
		res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "confirm_purchase", Arguments: map[string]any{"store_slug": "flower-shop", "checkout_id": co.ID}})
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.Unmarshal([]byte(mustMarshal(t, res.StructuredContent)), &out)
		return out
	}
	if out := purchase(1); out["outcome"] != "completed" || out["order_id"] == "" {
		t.Fatalf("purchase: %v\n%s", out, d.logs)
	}
	if out := purchase(9); out["outcome"] != "allowance_refused" {
		t.Fatalf("over the cap: %v", out)
	}
	// Neither the platform nor the bridge logged the buyer's bearer.
	s.Close()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	tokens := bearers.all()
	if len(tokens) == 0 {
		t.Fatal("no bearer seen")
	}
	for _, tok := range tokens {
		if strings.Contains(d.logs.String(), tok) {
			t.Fatalf("the buyer's bearer is in the log")
		}
	}
}

// bearerLog records the bearer tokens a client sends.
type bearerLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (b *bearerLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		b.mu.Lock()
		b.seen = append(b.seen, tok)
		b.mu.Unlock()
	}
	return b.next.RoundTrip(r)
}

func (b *bearerLog) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func toolText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestBridgeCommand: `ucpbridge bridge` over HTTP against a dev platform
// (whose bridge is off) serves the protected-resource metadata for its
// --public-url and challenges anonymous calls; it refuses to start
// without a platform or key.
func TestBridgeCommand(t *testing.T) {
	t.Parallel()
	d := startCmd(t, "dev", "--addr", "127.0.0.1:0", "--bridge-addr", "off", "--data-dir", t.TempDir())
	if strings.Contains(d.banner.String(), "MCP bridge") {
		t.Fatal("bridge started with --bridge-addr off")
	}
	keyFile := t.TempDir() + "/agent.jwk"
	if err := run(t.Context(), []string{"keys", "generate", "--out", keyFile}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	b := startCmd(t, "bridge", "--platform", d.base, "--api-key", authserver.DemoPlatformKey, "--addr", "127.0.0.1:0", "--agent-key", keyFile)
	mcpURL := regexp.MustCompile(`MCP at (http://127\.0\.0\.1:\d+/mcp)`).FindStringSubmatch(b.banner.String())
	if mcpURL == nil {
		t.Fatalf("banner %q", b.banner.String())
	}
	origin := strings.TrimSuffix(mcpURL[1], "/mcp")
	code, _, body := do(t, "GET", origin+"/.well-known/oauth-protected-resource/mcp", "")
	if code != 200 || !strings.Contains(body, `"resource":"`+mcpURL[1]+`"`) || !strings.Contains(body, `"authorization_servers":["`+d.base+`"]`) {
		t.Fatalf("%d %s", code, body)
	}
	code, _, body = do(t, "GET", origin+"/.well-known/ucp", "")
	if code != 200 || !strings.Contains(body, "signing_keys") {
		t.Fatalf("agent profile: %d %s", code, body)
	}
	if code, _, _ := do(t, "POST", mcpURL[1], `{}`); code != http.StatusUnauthorized {
		t.Fatalf("anonymous call: %d", code)
	}
	for _, bad := range [][]string{{"bridge"}, {"bridge", "--platform", d.base}, {"bridge", "--platform", "http://example.com", "--api-key", "a.b"}} {
		if err := run(t.Context(), bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestBridgeStdio: `ucpbridge bridge --stdio` speaks MCP on its stdin
// and stdout (logs on stderr only) against a dev platform, and serves
// the agent profile stores verify its mandates with on --addr.
func TestBridgeStdio(t *testing.T) {
	t.Parallel()
	d := startCmd(t, "dev", "--addr", "127.0.0.1:0", "--bridge-addr", "off", "--data-dir", t.TempDir())
	ctx, cancel := context.WithCancel(t.Context())
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runBridgeIO(ctx, []string{"--stdio", "--platform", d.base, "--api-key", authserver.DemoPlatformKey, "--addr", "127.0.0.1:0",
			"--token-file", t.TempDir() + "/tokens.json"}, c2sR, s2cW, logs)
		s2cW.Close()
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "stdio-test-agent", Version: "1"}, nil)
	s, err := c.Connect(ctx, &mcp.IOTransport{Reader: s2cR, Writer: c2sW}, nil)
	if err != nil {
		cancel()
		t.Fatalf("connect: %v (logs %s)", err, logs)
	}
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "search_products", Arguments: map[string]any{"store_slug": "flower-shop", "query": "roses"}})
	if err != nil || res.IsError || !strings.Contains(toolText(res), "bouquet_roses") {
		t.Fatalf("search_products: %v %s", err, toolText(res))
	}
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "get_connection_status", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(toolText(res), `"buyer_connected":false`) || !strings.Contains(toolText(res), `"transport":"stdio"`) {
		t.Fatalf("get_connection_status: %v %s", err, toolText(res))
	}
	s.Close()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stdio bridge did not stop")
	}
	if !strings.Contains(logs.String(), "agent_profile=http://127.0.0.1:") && !strings.Contains(logs.String(), `"agent_profile":"http://127.0.0.1:`) {
		t.Fatalf("logs: %s", logs)
	}
}

// TestDevAgentKey: dev's bridge key is made once (0600) and read back on
// the next start (a stable kid); a damaged file stops the start instead of
// being replaced.
func TestDevAgentKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := loadOrCreateAgentKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadOrCreateAgentKey(dir)
	if err != nil || k2.KeyID() != k1.KeyID() {
		t.Fatalf("second start: %v, kid %q != %q", err, k2.KeyID(), k1.KeyID())
	}
	path := dir + "/bridge-agent.jwk"
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
	os.WriteFile(path, []byte("{not a key"), 0o600)
	if _, err := loadOrCreateAgentKey(dir); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "{not a key" {
		t.Fatal("a damaged key file was replaced")
	}
}
