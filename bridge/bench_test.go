package bridge_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

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
//     mcp-go server directly (no transport, no client).
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

func BenchmarkBridgeVsDirect(b *testing.B) {
	p := authservertest.Start(b, nil)
	br, cfg := newBridge(b, p, http.DefaultTransport, "", nil)
	b.Run("DirectUCPCall", func(b *testing.B) { benchDirect(b, p, cfg.AgentProfile) })
	b.Run("BridgeToolCall", func(b *testing.B) { benchStdio(b, br) })
	b.Run("BridgeToolCallHTTP", func(b *testing.B) { benchHTTP(b, br) })
	b.Run("BridgeInProcess", func(b *testing.B) { benchInProcess(b, br) })
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
