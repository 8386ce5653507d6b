// Package mcpremote_test is the CI check behind examples/mcp-remote: the
// real ucpbridge binary in dev mode on random ports, and mcp-remote 0.15.1
// (from .ci/interop/node_modules) in front of its bridge, headless: the
// BROWSER script .ci/mcp-remote/consent-browser.mjs signs the buyer in on
// the consent page over HTTP. It skips without node or the npm package
// unless UCPBRIDGE_REQUIRE_INTEROP is set (CI sets it once `npm ci` ran).
package mcpremote_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needMCPRemote returns node and mcp-remote's entry point, or skips (fails
// when interop is required).
func needMCPRemote(t *testing.T) (node, proxy string) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("UCPBRIDGE_REQUIRE_INTEROP") != "" {
			t.Fatalf("UCPBRIDGE_REQUIRE_INTEROP is set but %s (run: cd .ci/interop && npm ci)", why)
		}
		t.Skip(why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	proxy = filepath.Join(repoRoot(t), ".ci", "interop", "node_modules", "mcp-remote", "dist", "proxy.js")
	if _, err := os.Stat(proxy); err != nil {
		skip("mcp-remote is not installed in .ci/interop/node_modules")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(proxy), "..", "package.json"))
	var pkg struct {
		Version string `json:"version"`
	}
	if err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != "0.15.1" {
		t.Fatalf("mcp-remote in .ci/interop is %q, want 0.15.1 (run: cd .ci/interop && npm ci)", pkg.Version)
	}
	return node, proxy
}

// devStack is `ucpbridge dev` running as a child process.
type devStack struct {
	platform, mcp string
}

var (
	listeningRe = regexp.MustCompile(`^ucpbridge dev: listening on \S+ as (http://\S+)$`)
	bridgeRe    = regexp.MustCompile(`^\s+MCP bridge\s+(http://\S+/mcp)\b`)
)

// startDev builds the binary and starts dev on random ports, parsing the
// URLs from its banner.
func startDev(t *testing.T, ctx context.Context) *devStack {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ucpbridge")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ucpbridge")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ucpbridge: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dev", "--addr", "127.0.0.1:0", "--bridge-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // one stream, read below
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan *devStack, 1)
	var banner strings.Builder
	var mu sync.Mutex
	go func() {
		s, sent := &devStack{}, false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			banner.WriteString(line + "\n")
			mu.Unlock()
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				s.platform = m[1]
			}
			if m := bridgeRe.FindStringSubmatch(line); m != nil {
				s.mcp = m[1]
			}
			if s.platform != "" && s.mcp != "" && !sent {
				found <- s
				sent = true
			}
		}
	}()
	select {
	case s := <-found:
		return s
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no platform and bridge URLs in dev's banner:\n%s", banner.String())
	}
	return nil
}

// rpc is a JSON-RPC session over mcp-remote's stdio.
type rpc struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Scanner
	id  int
}

func (c *rpc) notify(method string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatal(err)
	}
}

// call sends a request and returns its result, skipping notifications.
func (c *rpc) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.id++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatal(err)
	}
	for c.out.Scan() {
		var m struct {
			ID     *int            `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(c.out.Bytes(), &m); err != nil {
			c.t.Fatalf("mcp-remote wrote a line that is not JSON-RPC: %s", c.out.Bytes())
		}
		if m.ID == nil {
			continue // a notification (tools/list_changed)
		}
		if *m.ID != c.id || m.Error != nil {
			c.t.Fatalf("%s: %s", method, c.out.Bytes())
		}
		return m.Result
	}
	c.t.Fatalf("%s: mcp-remote closed its stdout (%v)", method, c.out.Err())
	return nil
}

// tool calls a tool and returns its structured content; a tool error
// fails the test.
func (c *rpc) tool(name string, args map[string]any) map[string]any {
	c.t.Helper()
	var res struct {
		IsError           bool            `json:"isError"`
		Content           json.RawMessage `json:"content"`
		StructuredContent map[string]any  `json:"structuredContent"`
	}
	raw := c.call("tools/call", map[string]any{"name": name, "arguments": args})
	if err := json.Unmarshal(raw, &res); err != nil || res.IsError || res.StructuredContent == nil {
		c.t.Fatalf("%s: %s", name, raw)
	}
	return res.StructuredContent
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMCPRemote: `npx mcp-remote <bridge URL>` with no flags against dev:
// mcp-remote registers itself (RFC 7591), the buyer signs in and allows
// (the BROWSER script), the tools are listed, and one purchase through
// confirm_purchase places an order the platform then has.
func TestMCPRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and node")
	}
	node, proxy := needMCPRemote(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dev := startDev(t, ctx)

	cfgDir := t.TempDir()
	browserLog := filepath.Join(t.TempDir(), "browser.log")
	cmd := exec.CommandContext(ctx, node, proxy, dev.mcp, fmt.Sprint(freePort(t)))
	cmd.Env = []string{"BROWSER=" + filepath.Join(repoRoot(t), ".ci", "mcp-remote", "consent-browser.mjs"),
		"CONSENT_BROWSER_LOG=" + browserLog, "MCP_REMOTE_CONFIG_DIR=" + cfgDir}
	// No desktop: the open package's xdg-open falls back to $BROWSER.
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT":
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	var stderrMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderrMu.Lock(); defer stderrMu.Unlock(); return stderr.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			stderrMu.Lock()
			b, _ := os.ReadFile(browserLog)
			t.Logf("mcp-remote stderr:\n%s\nbrowser log:\n%s", stderr.String(), b)
			stderrMu.Unlock()
		}
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	c := &rpc{t: t, in: stdin, out: sc}

	init := c.call("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "ucpbridge-ci", "version": "1.0.0"}})
	if !strings.Contains(string(init), `"name":"ucpbridge"`) {
		t.Fatalf("initialize: %s", init)
	}
	c.notify("notifications/initialized")

	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(c.call("tools/list", map[string]any{}), &list); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range list.Tools {
		names[tl.Name] = true
	}
	for _, n := range []string{"search_products", "create_cart", "create_checkout", "confirm_purchase", "get_connection_status", "get_buyer_context"} {
		if !names[n] {
			t.Fatalf("tools/list has no %s: %v", n, names)
		}
	}

	// mcp-remote registered itself: its client is a dynamically registered one.
	infos, _ := filepath.Glob(filepath.Join(cfgDir, "*", "*_client_info.json"))
	if len(infos) != 1 {
		t.Fatalf("client info files: %v", infos)
	}
	var ci struct {
		ClientID string `json:"client_id"`
	}
	if b, err := os.ReadFile(infos[0]); err != nil || json.Unmarshal(b, &ci) != nil || ci.ClientID == "" || ci.ClientID == "demo-agent" {
		t.Fatalf("registered client: %+v %v", ci, err)
	}

	st := c.tool("get_connection_status", map[string]any{})
	if st["buyer_connected"] != true {
		t.Fatalf("status: %v", st)
	}
	found := c.tool("search_products", map[string]any{"query": "roses", "store_slug": "flower-shop"})
	if b, _ := json.Marshal(found); !strings.Contains(string(b), "bouquet_roses") {
		t.Fatalf("search: %s", b)
	}
	co := c.tool("create_checkout", map[string]any{"store_slug": "flower-shop",
		"items": []any{map[string]any{"id": "bouquet_roses", "quantity": 1}},
		"shipping_address": map[string]any{"first_name": "Ada", "last_name": "Lovelace", "street_address": "10 Rue de Rivoli",
			"address_locality": "Paris", "postal_code": "75001", "address_country": "FR"}})
	if co["status"] != "ready_for_complete" {
		t.Fatalf("checkout: %v", co)
	}
	pr := c.tool("confirm_purchase", map[string]any{"store_slug": "flower-shop", "checkout_id": co["id"], "payment_method": "artos.card"})
	orderID, _ := pr["order_id"].(string)
	if pr["outcome"] != "completed" || orderID == "" || pr["total"] != float64(4190) || pr["currency"] != "EUR" {
		t.Fatalf("confirm_purchase: %v", pr)
	}

	// The platform has the order: read it as the platform that placed it.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, dev.platform+"/s/flower-shop/orders/"+orderID, nil)
	req.Header.Set("X-API-Key", "demo-platform.ucpb_cs_demo-platform-key-for-local-development-only")
	req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:9/.well-known/ucp"`)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+orderID+`"`) {
		t.Fatalf("order %s: HTTP %d %s", orderID, res.StatusCode, body)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
