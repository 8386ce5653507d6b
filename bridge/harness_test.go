package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// wireCall is one request the recording transport saw.
type wireCall struct {
	Path, Tool             string
	APIKey, Bearer, Signed bool
}

// recorder records which credentials went on each platform request.
type recorder struct {
	mu    sync.Mutex
	calls []wireCall
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	w := wireCall{Path: r.URL.Path, APIKey: r.Header.Get("X-API-Key") != "",
		Bearer: strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "),
		Signed: r.Header.Get("Signature-Input") != "" && r.Header.Get("Signature") != ""}
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		var rpc struct {
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(b, &rpc) == nil {
			w.Tool = rpc.Params.Name
		}
	}
	rt.mu.Lock()
	rt.calls = append(rt.calls, w)
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (rt *recorder) since(n int) []wireCall {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]wireCall(nil), rt.calls[n:]...)
}

func (rt *recorder) len() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.calls)
}

// harness is a bridge over stdio (in-memory pipes) against a platform,
// with the official go-sdk client as the agent.
type harness struct {
	p       *authservertest.Platform
	b       *bridge.Bridge
	rt      *recorder
	session *mcp.ClientSession
	cfg     bridge.Config
}

type harnessOptions struct {
	platform  *authservertest.Platform
	allowance *authservertest.Allowance // nil: no buyer token file
	scope     string
	config    func(*bridge.Config)
}

// newBridge builds a bridge whose agent profile is served on loopback.
func newBridge(t testing.TB, p *authservertest.Platform, rt http.RoundTripper, tokenFile string, edit func(*bridge.Config)) (*bridge.Bridge, bridge.Config) {
	t.Helper()
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	var profile http.Handler = http.NotFoundHandler()
	var mu sync.Mutex
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := profile
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	cfg := bridge.Config{PlatformURL: p.URL, APIKey: p.PlatformKey, AgentProfile: ps.URL + "/.well-known/ucp",
		SigningKey: key, HTTPClient: &http.Client{Transport: rt}, Crypto: ucpclient.SandboxSettler{},
		AllowInsecureLoopback: true, ClientID: p.AgentClientID, TokenFile: tokenFile}
	if edit != nil {
		edit(&cfg)
	}
	b, err := bridge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	profile = b.ProfileHandler()
	mu.Unlock()
	return b, cfg
}

// startStdio serves b over pipes and connects a go-sdk client.
func startStdio(t testing.TB, b *bridge.Bridge) *mcp.ClientSession {
	return startStdioWith(t, b, nil)
}

func startStdioWith(t testing.TB, b *bridge.Bridge, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- b.ServeStdio(ctx, c2sR, s2cW) }()
	client := mcp.NewClient(&mcp.Implementation{Name: "bridge-test-agent", Version: "1.0.0"}, opts)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: s2cR, Writer: c2sW}, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		cancel()
		c2sW.Close()
		s2cW.Close()
		<-done
	})
	return cs
}

func startHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	p := o.platform
	if p == nil {
		p = authservertest.Start(t, nil)
	}
	tokenFile := filepath.Join(t.TempDir(), "buyer.json")
	if o.allowance != nil {
		scope := o.scope
		if scope == "" {
			scope = "purchase:complete offline_access"
		}
		tok, err := p.BuyerToken(t.Context(), scope, o.allowance)
		if err != nil {
			t.Fatal(err)
		}
		if err := (&ucpclient.FileTokenStore{Path: tokenFile}).Save(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	rt := &recorder{}
	b, cfg := newBridge(t, p, rt, tokenFile, o.config)
	return &harness{p: p, b: b, rt: rt, session: startStdio(t, b), cfg: cfg}
}

// call calls a tool and returns the result (tool errors included).
func (h *harness) call(t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := h.session.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

// ok calls a tool that must succeed and decodes its structured content.
func (h *harness) ok(t *testing.T, name string, args map[string]any) map[string]any {
	t.Helper()
	res := h.call(t, name, args)
	if res.IsError {
		t.Fatalf("%s(%v): tool error: %s", name, args, text(res))
	}
	return structured(t, res)
}

func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structured content: %s", b)
	}
	return m
}

func text(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}

func lines(id string, q int) []any {
	return []any{map[string]any{"id": id, "quantity": q}}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
