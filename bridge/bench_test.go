package bridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The benchmarks run the same catalog search ("roses", every store)
// against an authservertest platform on loopback:
//
//   - DirectUCPCall: search_catalog on the platform's /mcp with ucpclient;
//   - BridgeToolCall: the agent's search_products through the bridge,
//     the official go-sdk client talking to it over stdio pipes (the
//     bridge then makes the same ucpclient call);
//   - BridgeToolCallHTTP: the same over streamable HTTP (loopback);
//   - BridgeInProcess: the JSON-RPC message handed to the bridge's
//     mcp-go server directly (no transport, no client);
//   - BridgeToolCallHTTPFront: the production HTTP path, the go-sdk
//     client with a buyer bearer issued for the bridge's resource, through
//     HTTPFront (bearer guard, cached RFC 8693 exchange, body limit);
//   - BridgeHTTPFrontLeanClient: the same front with a lean JSON-RPC
//     client (one POST, the result decoded like ucpclient decodes the
//     platform's), to tell the bridge's cost from the agent SDK's: the
//     go-sdk client allocates a 32 KiB decoder buffer per message it
//     decodes (segmentio/encoding via its internal/json), ~150 KB per
//     call, which the GC then charges to the bridge and the platform
//     sharing this process.
//
// Every variant sends the platform the same single search_catalog call
// (platform key, no buyer token: the routing table gives the catalog to
// the platform credential) over http.DefaultTransport's keep-alive pool.
//
// Each reports its median (p50-µs) and p99 (p99-µs) per op next to
// ns/op (the mean). BenchmarkBridgeVsDirect runs all four on one platform
// with one agent profile so the platform does the same work.

var searchArgs = map[string]any{"query": "roses"}

// reportLatency reports the median and p99 of the per-op durations.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[(len(d)*99)/100].Nanoseconds())/1e3, "p99-µs")
}

func timed(b *testing.B, op func() error) {
	d := make([]time.Duration, 0, max(b.N, 1))
	for b.Loop() {
		t0 := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	reportLatency(b, d)
}

func callOK(b *testing.B, cs *mcp.ClientSession) func() error {
	return func() error {
		res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: "search_products", Arguments: searchArgs})
		if err == nil && res.IsError {
			b.Fatalf("tool error: %s", text(res))
		}
		return err
	}
}

func benchDirect(b *testing.B, p *authservertest.Platform, profile string) {
	c, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey, AgentProfile: profile,
		HTTPClient: &http.Client{Transport: http.DefaultTransport}})
	if err != nil {
		b.Fatal(err)
	}
	req := &ucp.SearchRequest{Query: "roses"}
	timed(b, func() error {
		_, err := c.CallGlobalTool(b.Context(), "search_catalog", req)
		return err
	})
}

func benchStdio(b *testing.B, br *bridge.Bridge) {
	timed(b, callOK(b, startStdio(b, br)))
}

func benchHTTP(b *testing.B, br *bridge.Bridge) {
	srv := httptest.NewServer(server.NewStreamableHTTPServer(br.MCPServer(), server.WithStateLess(true)))
	b.Cleanup(srv.Close)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(b.Context(),
		&mcp.StreamableClientTransport{Endpoint: srv.URL, DisableStandaloneSSE: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	timed(b, callOK(b, cs))
}

func benchInProcess(b *testing.B, br *bridge.Bridge) {
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_products","arguments":{"query":"roses"}}}`)
	s := br.MCPServer()
	timed(b, func() error {
		s.HandleMessage(b.Context(), msg)
		return nil
	})
}

// bearerRT adds the agent's bearer to every request.
type bearerRT struct{ auth string }

func (rt bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", rt.auth)
	return http.DefaultTransport.RoundTrip(r)
}

// startFront serves br through its HTTPFront on loopback and returns the
// MCP endpoint and a buyer bearer issued for it (RFC 8707 resource).
// After the run it checks that the bearer was exchanged once (the cache
// answered every other call), so each tool call made exactly the one
// platform request the direct call makes.
func startFront(b *testing.B, p *authservertest.Platform, br *bridge.Bridge) (endpoint, bearer string) {
	srv := httptest.NewUnstartedServer(nil)
	endpoint = "http://" + srv.Listener.Addr().String() + "/mcp"
	if err := p.AddBridgeResource(b.Context(), endpoint); err != nil {
		b.Fatal(err)
	}
	h, err := br.HTTPHandler(bridge.HTTPOptions{PublicURL: endpoint, HTTPClient: &http.Client{Transport: http.DefaultTransport}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if n := h.(*bridge.HTTPFront).Exchanger().Exchanges(); n != 1 {
			b.Errorf("%d token exchanges for one bearer", n)
		}
		h.(io.Closer).Close()
	})
	srv.Config.Handler = h
	srv.Start()
	b.Cleanup(srv.Close)
	conf := p.OAuth2Config("purchase:complete")
	verifier := oauth2.GenerateVerifier()
	res := oauth2.SetAuthURLParam("resource", endpoint)
	loc, err := p.SignIn(b.Context(), conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier), res), nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := conf.Exchange(b.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier), res)
	if err != nil {
		b.Fatal(err)
	}
	return endpoint, tok.AccessToken
}

func benchHTTPFront(b *testing.B, p *authservertest.Platform, br *bridge.Bridge) {
	endpoint, bearer := startFront(b, p, br)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(b.Context(),
		&mcp.StreamableClientTransport{Endpoint: endpoint, DisableStandaloneSSE: true,
			HTTPClient: &http.Client{Transport: bearerRT{"Bearer " + bearer}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	timed(b, callOK(b, cs))
}

// benchHTTPFrontLean is an agent that speaks MCP 2026-07-28 by hand: the
// request the go-sdk client sends (same _meta and headers), the response
// decoded the way ucpclient decodes the platform's.
func benchHTTPFrontLean(b *testing.B, p *authservertest.Platform, br *bridge.Bridge) {
	endpoint, bearer := startFront(b, p, br)
	hc := &http.Client{Transport: http.DefaultTransport}
	var id int
	timed(b, func() error {
		id++
		body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"_meta":{` +
			`"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},` +
			`"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"search_products","arguments":{"query":"roses"}}}`
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, endpoint, bytes.NewReader([]byte(body)))
		if err != nil {
			return err
		}
		h := req.Header
		h.Set("Content-Type", "application/json")
		h.Set("Accept", "application/json, text/event-stream")
		h.Set("Authorization", "Bearer "+bearer)
		h.Set("Mcp-Protocol-Version", "2026-07-28")
		h.Set("Mcp-Method", "tools/call")
		h.Set("Mcp-Name", "search_products")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		var rr struct {
			Result *struct {
				IsError           bool            `json:"isError"`
				StructuredContent json.RawMessage `json:"structuredContent"`
				Content           []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(data, &rr); err != nil || res.StatusCode != http.StatusOK || rr.Result == nil ||
			rr.Result.IsError || len(rr.Result.StructuredContent) == 0 {
			return fmt.Errorf("HTTP %d: %.300s", res.StatusCode, data)
		}
		return nil
	})
}

func BenchmarkBridgeVsDirect(b *testing.B) {
	p := authservertest.Start(b, nil)
	br, cfg := newBridge(b, p, http.DefaultTransport, "", nil)
	b.Run("DirectUCPCall", func(b *testing.B) { benchDirect(b, p, cfg.AgentProfile) })
	b.Run("BridgeToolCall", func(b *testing.B) { benchStdio(b, br) })
	b.Run("BridgeToolCallHTTP", func(b *testing.B) { benchHTTP(b, br) })
	b.Run("BridgeInProcess", func(b *testing.B) { benchInProcess(b, br) })
	b.Run("BridgeToolCallHTTPFront", func(b *testing.B) { benchHTTPFront(b, p, br) })
	b.Run("BridgeHTTPFrontLeanClient", func(b *testing.B) { benchHTTPFrontLean(b, p, br) })
}

// BenchmarkBridgeToolCall is search_products through the bridge over
// stdio, on its own platform.
func BenchmarkBridgeToolCall(b *testing.B) {
	p := authservertest.Start(b, nil)
	br, _ := newBridge(b, p, http.DefaultTransport, "", nil)
	benchStdio(b, br)
}

// BenchmarkDirectUCPCall is the same search with ucpclient directly, on
// its own platform, with an agent profile served the same way.
func BenchmarkDirectUCPCall(b *testing.B) {
	p := authservertest.Start(b, nil)
	_, cfg := newBridge(b, p, http.DefaultTransport, "", nil)
	benchDirect(b, p, cfg.AgentProfile)
}
