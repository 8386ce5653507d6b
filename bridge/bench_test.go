package bridge_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// reportLatency reports the median and p99 of the per-op durations.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[(len(d)*99)/100].Microseconds()), "p99-µs")
}

// BenchmarkBridgeVsDirect runs the same catalog search against one
// platform (authservertest, loopback) two ways: BridgeToolCall is the
// agent's search_products through the bridge's MCP server (go-sdk client
// over stdio pipes, the bridge calling the platform's /mcp with the
// platform key); DirectUCPCall is search_catalog made with ucpclient
// directly with the same agent profile. Each reports its median and p99 per op.
func BenchmarkBridgeVsDirect(b *testing.B) {
	p := authservertest.Start(b, nil)
	// One agent profile for both, so the platform does the same work.
	br, cfg := newBridge(b, p, http.DefaultTransport, "", nil)
	b.Run("BridgeToolCall", func(b *testing.B) {
		cs := startStdio(b, br)
		ctx := b.Context()
		args := map[string]any{"query": "roses"}
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "search_products", Arguments: args})
			if err != nil || res.IsError {
				b.Fatalf("%v %v", err, res)
			}
			d = append(d, time.Since(t0))
		}
		reportLatency(b, d)
	})
	b.Run("DirectUCPCall", func(b *testing.B) {
		c, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey, AgentProfile: cfg.AgentProfile,
			HTTPClient: &http.Client{Transport: http.DefaultTransport}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		req := &ucp.SearchRequest{Query: "roses"}
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.CallGlobalTool(ctx, "search_catalog", req); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		reportLatency(b, d)
	})
}
