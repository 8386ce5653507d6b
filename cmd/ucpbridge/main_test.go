package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"golang.org/x/oauth2/clientcredentials"
)

// TestDev starts `ucpbridge dev` on a random port, uses the seeded
// merchant, restarts on the same data dir (seeding again must not fail),
// and shuts down cleanly on cancel.
func TestDev(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var orderPath string
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"dev", "--addr", "127.0.0.1:0", "--bridge-addr", "127.0.0.1:0", "--data-dir", dir}, pw, io.Discard)
			pw.Close()
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		go io.Copy(io.Discard, pr)
		base := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(line)
		if base == "" {
			t.Fatalf("no URL in %q", line)
		}
		res, err := http.Get(base + "/.well-known/oauth-authorization-server")
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("metadata: %v", err)
		}
		res.Body.Close()
		cc := &clientcredentials.Config{ClientID: authserver.DemoMerchantID, ClientSecret: authserver.DemoMerchantSecret, TokenURL: base + "/ucp/oauth2/token", Scopes: []string{"orders:read"}}
		if tok, err := cc.Token(ctx); err != nil || !strings.HasPrefix(tok.AccessToken, "ucpb_at_") {
			t.Fatalf("seeded merchant: %v", err)
		}
		// The stores: the platform key authenticates, a bad key gets a
		// challenge, and orders survive a restart.
		call := func(method, path, key, body string) (int, http.Header, []byte) {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:1/.well-known/ucp"`) // dev: falls back
			req.Header.Set("Idempotency-Key", fmt.Sprintf("key-%d-%s-%d", round, path, time.Now().UnixNano()))
			if key != "" {
				req.Header.Set("X-API-Key", key)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, res.Header, b
		}
		if round == 0 {
			code, _, b := call("POST", "/s/flower-shop/checkout-sessions", authserver.DemoPlatformKey, `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)
			var c struct{ ID string }
			if code != 201 || json.Unmarshal(b, &c) != nil {
				t.Fatalf("%d %s", code, b)
			}
			code, _, b = call("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", authserver.DemoPlatformKey,
				`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`)
			var done struct{ Order struct{ ID string } }
			if code != 200 || json.Unmarshal(b, &done) != nil || done.Order.ID == "" {
				t.Fatalf("%d %s", code, b)
			}
			orderPath = "/s/flower-shop/orders/" + done.Order.ID
			if code, h, b := call("GET", orderPath, authserver.DemoPlatformID+".wrong-secret", ""); code != 401 || h.Get("WWW-Authenticate") == "" {
				t.Fatalf("bad key: %d %s", code, b)
			}
		}
		if code, _, b := call("GET", orderPath, authserver.DemoPlatformKey, ""); code != 200 || !strings.Contains(string(b), `"checkout_id"`) {
			t.Fatalf("round %d: order: %d %s", round, code, b)
		}
		if _, _, b := call("GET", orderPath, "", ""); strings.Contains(string(b), `"checkout_id"`) {
			t.Fatalf("anonymous caller read the platform's order: %s", b)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("dev did not stop")
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	if err := run(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("no command accepted")
	}
	if err := run(context.Background(), []string{"bogus"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// TestServe: serve runs without the dev allowances: a plain-http platform
// profile is refused instead of tolerated.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bad := range [][]string{
		{"serve"},
		{"serve", "--issuer", "http://api.example.com", "--db", dir + "/db", "--keys-dir", dir, "--seal-key", dir + "/seal"},
		{"serve", "--issuer", "https://api.example.com/", "--db", dir + "/db", "--keys-dir", dir, "--seal-key", dir + "/seal"},
	} {
		if err := run(context.Background(), bad, io.Discard, io.Discard); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
	ln := "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", ln, "--issuer", "http://127.0.0.1", "--db", dir + "/db", "--keys-dir", dir + "/keys",
			"--seal-key", dir + "/seal", "--seed-demo"}, pw, io.Discard)
		pw.Close()
	}()
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(first)
	post := func(path, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:1/.well-known/ucp"`)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, b
	}
	// No dev allowances: a plain-http profile is refused (the catalog is
	// open to anonymous callers, so the profile is what decides).
	if res, b := post("/s/flower-shop/catalog/search", `{"query":"roses"}`); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "invalid_profile_url") {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	// A checkout needs a credential; the challenge names the issuer's
	// protected-resource metadata.
	res, b := post("/s/flower-shop/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/s/flower-shop"`) {
		t.Fatalf("%d %s %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
