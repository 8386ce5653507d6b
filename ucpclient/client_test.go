package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const testProfile = "https://agent.example/.well-known/ucp"

// seen is one request the fake platform received.
type seen struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// fakePlatform answers every surface the client calls, records each
// request and lets a test script the answers.
type fakePlatform struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
	// answer, when set, replaces the default answer; n is the 1-based
	// request count.
	answer func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newFakePlatform(t *testing.T) *fakePlatform {
	f := &fakePlatform{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePlatform) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

func (f *fakePlatform) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, seen{r.Method, r.URL.Path, r.Header.Clone(), body})
	n := len(f.got)
	f.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if f.answer != nil && f.answer(w, r, n) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/catalog/search":
		io.WriteString(w, `{"ucp":{"version":"2026-04-08","status":"success"},"products":[{"id":"p1","title":"Tea"}]}`)
	case strings.HasSuffix(r.URL.Path, "/.well-known/ucp"):
		io.WriteString(w, `{"ucp":{"version":"2026-04-08","payment_handlers":{}},"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	default:
		var rpc struct {
			ID     string `json:"id"`
			Method string `json:"method"`
		}
		json.Unmarshal(body, &rpc)
		if rpc.Method == "tools/list" {
			io.WriteString(w, `{"jsonrpc":"2.0","id":"`+rpc.ID+`","result":{"tools":[{"name":"get_buyer_context","description":"who"}]}}`)
			return
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":"`+rpc.ID+`","result":{"content":[],"structuredContent":{"ucp":{"version":"2026-04-08","status":"success"},"id":"chk_1"}}}`)
	}
}

type staticBuyer struct{ tok string }

func (b staticBuyer) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: b.tok, TokenType: "Bearer"}, nil
}

// refreshingBuyer hands out "stale" until RefreshToken is called.
type refreshingBuyer struct {
	mu        sync.Mutex
	tok       string
	refreshes int
}

func (b *refreshingBuyer) Token() (*oauth2.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &oauth2.Token{AccessToken: b.tok}, nil
}

func (b *refreshingBuyer) RefreshToken(ctx context.Context) (*oauth2.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshes++
	b.tok = "fresh"
	return &oauth2.Token{AccessToken: b.tok}, nil
}

func newTestClient(t *testing.T, f *fakePlatform, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL:      f.srv.URL,
		APIKey:       "plat.secret",
		AgentProfile: testProfile,
		UCPVersion:   "2026-08-25",
		Retry:        RetryConfig{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{AgentProfile: testProfile},
		{BaseURL: "ftp://x", AgentProfile: testProfile},
		{BaseURL: "http://api.example", AgentProfile: testProfile},
		{BaseURL: "https://u:p@api.example", AgentProfile: testProfile},
		{BaseURL: "https://api.example"},
		{BaseURL: "https://api.example", AgentProfile: "https://x/\n"},
		{BaseURL: "https://api.example", AgentProfile: testProfile, APIKey: "a\r\nX: y"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(Config{BaseURL: "http://127.0.0.1:9/", AgentProfile: testProfile}); err != nil {
		t.Errorf("loopback http refused: %v", err)
	}
}

func TestUCPAgentHeader(t *testing.T) {
	f := newFakePlatform(t)
	c := newTestClient(t, f, nil)
	if got, want := c.UCPAgentHeader(), `ucp-version="2026-08-25", profile="`+testProfile+`"`; got != want {
		t.Fatalf("UCPAgentHeader = %q, want %q", got, want)
	}
	if _, err := c.CallStoreTool(context.Background(), "tea", "get_checkout", map[string]string{"id": "c1"}); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	profile, version, err := discovery.ParseUCPAgent(r.Header.Get("UCP-Agent"))
	if err != nil || profile != testProfile || version != "2026-08-25" {
		t.Fatalf("ParseUCPAgent = %q %q %v", profile, version, err)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Accept/Content-Type = %q/%q", r.Header.Get("Accept"), r.Header.Get("Content-Type"))
	}
	if len(r.Header.Get("Request-Id")) != 36 {
		t.Errorf("Request-Id = %q", r.Header.Get("Request-Id"))
	}
	var env struct {
		JSONRPC, Method string
		Params          struct {
			Name      string
			Arguments map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env.JSONRPC != "2.0" || env.Method != "tools/call" || env.Params.Name != "get_checkout" || string(env.Params.Arguments["id"]) != `"c1"` {
		t.Errorf("envelope = %s", r.Body)
	}
	var meta map[string]any
	json.Unmarshal(env.Params.Arguments["meta"], &meta)
	if meta["ucp-agent"].(map[string]any)["profile"] != testProfile {
		t.Errorf("meta = %v", meta)
	}
	if _, ok := meta["idempotency-key"]; ok {
		t.Errorf("a read carries an idempotency key: %v", meta)
	}

	// Without a version, only the profile member.
	c2 := newTestClient(t, f, func(cfg *Config) { cfg.UCPVersion = "" })
	if p, v, err := discovery.ParseUCPAgent(c2.UCPAgentHeader()); err != nil || p != testProfile || v != "" {
		t.Errorf("no version: %q %q %v", p, v, err)
	}
}

func TestResultsAndTypedErrors(t *testing.T) {
	f := newFakePlatform(t)
	c := newTestClient(t, f, nil)
	ctx := context.Background()

	res, err := c.GlobalSearch(ctx, &ucp.SearchRequest{Query: "tea"})
	if err != nil || len(res.Products) != 1 || res.Products[0].ID != "p1" {
		t.Fatalf("GlobalSearch = %+v, %v", res, err)
	}
	p, err := c.FetchStoreProfile(ctx, "tea")
	if err != nil || len(p.SigningKeys) != 1 {
		t.Fatalf("FetchStoreProfile (keys) = %+v, %v", p, err)
	}

	// JSON-RPC error.
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","error":{"code":-32001,"message":"invalid_profile_url: send meta","data":{"code":"invalid_profile_url"}}}`)
		return true
	}
	_, err = c.CallGlobalTool(ctx, "search_catalog", map[string]string{"query": "tea"})
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.RPCCode != -32001 || pe.Code != "invalid_profile_url" || pe.StatusCode != 200 {
		t.Fatalf("JSON-RPC error = %#v", err)
	}
	// HTTP error with a UCP body.
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"ucp":{"status":"error"},"messages":[{"type":"error","code":"wrong_store","content":"not yours"}]}`)
		return true
	}
	_, err = c.CallStoreTool(ctx, "tea", "get_order", map[string]string{"id": "o1"})
	if !errors.As(err, &pe) || pe.StatusCode != 403 || pe.Code != "wrong_store" || pe.RequestID == "" {
		t.Fatalf("HTTP error = %#v", err)
	}
	// HTTP 400 whose body is a JSON-RPC error (a schema violation): the
	// message reaches the caller.
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"invalid params: /checkout/fulfillment/methods/0/line_item_ids: got null, want array"}}`)
		return true
	}
	_, err = c.CallStoreTool(ctx, "tea", "create_checkout", map[string]any{"checkout": map[string]any{}})
	if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.RPCCode != -32602 || !strings.Contains(err.Error(), "line_item_ids: got null") {
		t.Fatalf("HTTP 400 JSON-RPC error = %v (%#v)", err, err)
	}
	// A business error envelope is a result from tool calls ...
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","result":{"structuredContent":{"ucp":{"status":"error"},"messages":[{"code":"out_of_stock"}]}}}`)
		return true
	}
	out, err := c.CallStoreTool(ctx, "tea", "create_checkout", map[string]any{"checkout": map[string]any{}})
	if err != nil || !strings.Contains(string(out), "out_of_stock") {
		t.Fatalf("business error = %s, %v", out, err)
	}
	// ... but missing structuredContent is an error.
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","result":{"isError":true,"content":[{"type":"text","text":"boom"}]}}`)
		return true
	}
	if _, err = c.CallStoreTool(ctx, "tea", "get_cart", nil); !errors.As(err, &pe) || pe.Content != "boom" {
		t.Fatalf("no structuredContent = %v", err)
	}
	// A tool error is an error even with structured content, unless
	// that is a UCP business-error envelope (a result, as above).
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","result":{"isError":true,"structuredContent":{"balance":0},"content":[{"type":"text","text":"wallet unavailable"}]}}`)
		return true
	}
	if out, err := c.CallStoreTool(ctx, "tea", "get_cart", nil); !errors.As(err, &pe) || pe.Content != "wallet unavailable" || string(pe.Body) != `{"balance":0}` {
		t.Fatalf("isError with structuredContent = %s, %v", out, err)
	}
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","result":{"isError":true,"structuredContent":{"ok":true}}}`)
		return true
	}
	if out, err := c.CallStoreTool(ctx, "tea", "get_cart", nil); !errors.As(err, &pe) || pe.Content != "the tool reported an error" {
		t.Fatalf("isError without text = %s, %v", out, err)
	}
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"jsonrpc":"2.0","id":"x","result":{"isError":true,"structuredContent":{"ucp":{"status":"error"},"messages":[{"code":"out_of_stock"}]}}}`)
		return true
	}
	if out, err := c.CallStoreTool(ctx, "tea", "create_checkout", map[string]any{"checkout": map[string]any{}}); err != nil || !strings.Contains(string(out), "out_of_stock") {
		t.Fatalf("isError with a UCP error envelope = %s, %v", out, err)
	}
	// GlobalSearch reports a UCP error envelope as an error (as Artos).
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.WriteString(w, `{"ucp":{"status":"error"},"messages":[{"code":"invalid_filter","content":"bad"}],"products":[]}`)
		return true
	}
	if _, err = c.GlobalSearch(ctx, nil); !errors.As(err, &pe) || pe.Code != "invalid_filter" {
		t.Fatalf("search error = %v", err)
	}
	// Bad arguments fail locally.
	if _, err := c.CallStoreTool(ctx, "tea", "get_cart", []int{1}); err == nil {
		t.Error("array args accepted")
	}
	if _, err := c.CallStoreTool(ctx, "../x", "get_cart", nil); err == nil {
		t.Error("bad slug accepted")
	}
}

func TestTransportErrorWrapped(t *testing.T) {
	f := newFakePlatform(t)
	c := newTestClient(t, f, nil)
	f.srv.Close()
	_, err := c.CallStoreTool(context.Background(), "tea", "get_checkout", map[string]string{"id": "c"})
	if err == nil || !strings.Contains(err.Error(), "store.get_checkout") {
		t.Fatalf("err = %v", err)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		t.Fatal("a transport error is not a ProtocolError")
	}
	var ue interface{ Timeout() bool }
	if !errors.As(err, &ue) {
		t.Errorf("the net error is not wrapped: %v", err)
	}
}

// The token engineer's source plugs in as Config.Buyer, refresh included.
var (
	_ BuyerTokens    = (*BuyerTokenSource)(nil)
	_ BuyerRefresher = (*BuyerTokenSource)(nil)
	_ BuyerTokens    = oauth2.StaticTokenSource(nil)
)

func TestConcurrentCalls(t *testing.T) {
	f := newFakePlatform(t)
	var mu sync.Mutex
	failed := map[string]bool{}
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		if k := r.Header.Get("Idempotency-Key"); !failed[k] { // each call's first attempt
			failed[k] = true
			w.WriteHeader(503)
			return true
		}
		return false
	}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Buyer = &refreshingBuyer{tok: "fresh"} })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if _, err := c.CallStoreTool(ctx, "tea", "create_cart", map[string]any{"cart": map[string]any{}}); err != nil {
				errs <- err
			}
			if _, err := c.CallAccountTool(ctx, "get_buyer_context", nil, WithIdempotencyKey(freshUUID())); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.requests()); n != 64 {
		t.Errorf("%d requests, want 64 (32 calls, each retried once)", n)
	}
}
