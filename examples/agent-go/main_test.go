package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// newBridge builds a bridge for p whose agent profile is served on
// loopback, the buyer's tokens (stdio) in tokenFile.
func newBridge(t *testing.T, p *authservertest.Platform, tokenFile string, edit func(*bridge.Config)) *bridge.Bridge {
	t.Helper()
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var profile http.Handler = http.NotFoundHandler()
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := profile
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	cfg := bridge.Config{PlatformURL: p.URL, APIKey: p.PlatformKey, AgentProfile: ps.URL + "/.well-known/ucp",
		SigningKey: key, Crypto: ucpclient.SandboxSettler{}, AllowInsecureLoopback: true,
		ClientID: p.AgentClientID, TokenFile: tokenFile}
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
	return b
}

// stdioTransport serves b over in-memory pipes, as `ucpbridge bridge
// --stdio` serves its stdin and stdout, and returns the agent's end.
func stdioTransport(t *testing.T, b *bridge.Bridge) mcp.Transport {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- b.ServeStdio(ctx, c2sR, s2cW) }()
	t.Cleanup(func() {
		cancel()
		c2sW.Close()
		s2cW.Close()
		<-done
	})
	return &mcp.IOTransport{Reader: s2cR, Writer: c2sW}
}

// buyerFile signs the demo buyer in (consent form over HTTP) and saves
// the tokens where the stdio bridge reads them.
func buyerFile(t *testing.T, p *authservertest.Platform) string {
	t.Helper()
	tok, err := p.BuyerToken(t.Context(), "purchase:complete offline_access", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "buyer.json")
	if err := (&ucpclient.FileTokenStore{Path: f}).Save(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	return f
}

func baseConfig() config {
	return config{Store: "flower-shop", Query: "roses", Quantity: 1, PaymentMethod: "artos.card",
		Ship: map[string]string{"first_name": "Ada", "last_name": "Lovelace", "street_address": "10 Rue de Rivoli",
			"address_locality": "Paris", "postal_code": "75001", "address_country": "FR"}}
}

var orderLine = regexp.MustCompile(`(?m)^order    (ord_\S+): 41\.90 EUR$`)

// TestRunStdio: the agent on the go-sdk client shops through the bridge
// over stdio with a connected buyer: tools listed, search, cart, checkout
// with a shipping address, confirm_purchase on the card; the order is
// placed (the buyer's saved card, within the 50.00 EUR per-order limit).
func TestRunStdio(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := baseConfig()
	cfg.Transport = stdioTransport(t, newBridge(t, p, buyerFile(t, p), nil))
	var out bytes.Buffer
	if err := run(testCtx(t), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !orderLine.MatchString(out.String()) || !regexp.MustCompile(`(?m)^tools    \d+: .*confirm_purchase`).MatchString(out.String()) {
		t.Fatalf("%s", out.String())
	}
}

// TestRunStdioSpendCap: three bouquets are over the per-order limit: the
// bridge's refusal (which limit) is the error, and no order is printed.
func TestRunStdioSpendCap(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := baseConfig()
	cfg.Quantity = 3
	cfg.Transport = stdioTransport(t, newBridge(t, p, buyerFile(t, p), nil))
	var out bytes.Buffer
	err := run(testCtx(t), cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "allowance_refused") || !strings.Contains(err.Error(), "50.00 EUR") ||
		strings.Contains(out.String(), "\norder ") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// TestRunStdioConnect: no buyer yet: the example calls connect_account,
// the bridge signs the buyer in (loopback PKCE, the consent form posted
// over HTTP), and the purchase goes through.
func TestRunStdioConnect(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	var signIns int
	b := newBridge(t, p, filepath.Join(t.TempDir(), "buyer.json"), func(c *bridge.Config) { c.OpenBrowser = consent(t, p, &signIns) })
	cfg := baseConfig()
	cfg.Transport = stdioTransport(t, b)
	var out bytes.Buffer
	if err := run(testCtx(t), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !orderLine.MatchString(out.String()) || !strings.Contains(out.String(), "\naccount  connected (") || signIns != 1 {
		t.Fatalf("%d sign-ins\n%s", signIns, out.String())
	}
}

// TestRunStdioNoClient: a bridge that cannot sign the buyer in (no OAuth
// client configured) answers connect_account with a tool error, which
// the example reports; nothing is bought.
func TestRunStdioNoClient(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	b := newBridge(t, p, "", func(c *bridge.Config) { c.ClientID = "" })
	cfg := baseConfig()
	cfg.Transport = stdioTransport(t, b)
	var out bytes.Buffer
	err := run(testCtx(t), cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "connect_account") || strings.Contains(out.String(), "\norder ") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// startHTTPBridge serves a bridge for p over streamable HTTP on a random
// port (its MCP endpoint registered as the demo platform's resource) and
// returns the endpoint URL.
func startHTTPBridge(t *testing.T, p *authservertest.Platform) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	if err := p.AddBridgeResource(t.Context(), base+"/mcp"); err != nil {
		t.Fatal(err)
	}
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Config{PlatformURL: p.URL, APIKey: p.PlatformKey, AgentProfile: base + "/.well-known/ucp",
		SigningKey: key, Crypto: ucpclient.SandboxSettler{}, AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.HTTPHandler(bridge.HTTPOptions{PublicURL: base + "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return base + "/mcp"
}

// consent plays the buyer's browser: the consent form posted over HTTP,
// then the redirect to the agent's loopback callback followed.
func consent(t *testing.T, p *authservertest.Platform, signedIn *int) func(string) error {
	ctx := t.Context()
	return func(authURL string) error {
		*signedIn++
		go func() {
			loc, err := p.SignIn(ctx, authURL, nil)
			if err != nil {
				t.Errorf("consent: %v", err)
				return
			}
			if res, err := http.Get(loc.String()); err == nil {
				res.Body.Close()
			}
		}()
		return nil
	}
}

// TestRunHTTP: over streamable HTTP the bridge challenges the agent
// (401 with its RFC 9728 metadata); the go-sdk's OAuth handler signs the
// buyer in through the demo agent client (PKCE, resource = the bridge),
// the bridge exchanges the token (RFC 8693) and the order is placed.
func TestRunHTTP(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := baseConfig()
	cfg.MCPURL, cfg.ClientID = startHTTPBridge(t, p), p.AgentClientID
	var signIns int
	cfg.OpenBrowser = consent(t, p, &signIns)
	var out bytes.Buffer
	if err := run(testCtx(t), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !orderLine.MatchString(out.String()) || signIns != 1 {
		t.Fatalf("%d sign-ins\n%s", signIns, out.String())
	}
}

// TestRunHTTPRegistered: with no client id the agent registers itself
// (RFC 7591, as mcp-remote does) before the sign-in.
func TestRunHTTPRegistered(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{DynamicRegistration: true})
	cfg := baseConfig()
	cfg.MCPURL = startHTTPBridge(t, p)
	var signIns int
	cfg.OpenBrowser = consent(t, p, &signIns)
	var out bytes.Buffer
	if err := run(testCtx(t), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !orderLine.MatchString(out.String()) || signIns != 1 {
		t.Fatalf("%d sign-ins\n%s", signIns, out.String())
	}
}

// testCtx bounds a run, so a hung session fails the test with a
// deadline error instead of the package timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRunStdioCommand spawns the real `ucpbridge bridge --stdio` (built
// from ./cmd/ucpbridge) as -stdio does, with the buyer's tokens in its
// token file, and buys through it.
func TestRunStdioCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "ucpbridge")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/ucpbridge")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := authservertest.Start(t, nil)
	cfg := baseConfig()
	cfg.Command = []string{bin, "bridge", "--stdio", "--platform", p.URL, "--api-key", p.PlatformKey,
		"--addr", "127.0.0.1:0", "--client-id", p.AgentClientID, "--token-file", buyerFile(t, p)}
	var out bytes.Buffer
	if err := run(testCtx(t), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !orderLine.MatchString(out.String()) {
		t.Fatalf("%s", out.String())
	}
}
