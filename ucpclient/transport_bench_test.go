package ucpclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// BenchmarkCallOverhead compares a store tool call through the client
// (routing, envelope, headers, retry wrapper, decoding) with a bare
// net/http POST of the same JSON-RPC body and headers to the same server
// (the same bytes on the wire, so the ratio is the client's own cost).
//
//	go test ./ucpclient -run '^$' -bench CallOverhead -benchmem -count 5
func BenchmarkCallOverhead(b *testing.B) {
	resp := []byte(`{"jsonrpc":"2.0","id":"1","result":{"structuredContent":{"ucp":{"version":"2026-04-08","status":"success"},"id":"chk_1"}}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	}))
	defer srv.Close()
	args := map[string]any{"id": "chk_1"}
	ctx := context.Background()

	b.Run("bare", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport}
		body := []byte(`{"jsonrpc":"2.0","id":"0f8e0d8c-4e43-4c55-9a5a-4a3c6f7e2b11","method":"tools/call","params":{"name":"get_checkout","arguments":{"id":"chk_1","meta":{"ucp-agent":{"profile":"https://agent.example/.well-known/ucp"}}}}}`)
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/s/tea/mcp", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			req.Header.Set("UCP-Agent", `profile="https://agent.example/.well-known/ucp"`)
			req.Header.Set("Request-Id", "0f8e0d8c-4e43-4c55-9a5a-4a3c6f7e2b12")
			req.Header.Set("X-API-Key", "plat.secret")
			res, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			data, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var out struct { // what any caller must do to get the result
				Result struct {
					StructuredContent json.RawMessage `json:"structuredContent"`
				} `json:"result"`
			}
			if err := json.Unmarshal(data, &out); err != nil || len(out.Result.StructuredContent) == 0 {
				b.Fatal(err)
			}
		}
	})
	newClient := func(b *testing.B, s *httpsig.Signer) *Client {
		c, err := New(Config{BaseURL: srv.URL, APIKey: "plat.secret", AgentProfile: testProfile,
			HTTPClient: &http.Client{Transport: http.DefaultTransport}, Signer: s})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	b.Run("client", func(b *testing.B) {
		c := newClient(b, nil)
		for b.Loop() {
			if _, err := c.CallStoreTool(ctx, "tea", "get_checkout", args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client-signed", func(b *testing.B) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, _ := httpsig.NewSigner(priv, "k1", nil)
		c := newClient(b, s)
		for b.Loop() {
			if _, err := c.CallStoreTool(ctx, "tea", "get_checkout", args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
