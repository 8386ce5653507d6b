package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// TestDev starts `ucpbridge dev` on a random port, uses the seeded
// merchant, restarts on the same data dir (seeding again must not fail),
// and shuts down cleanly on cancel.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"dev", "--addr", "127.0.0.1:0", "--data-dir", dir}, pw, io.Discard)
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
		cc := &clientcredentials.Config{ClientID: DevMerchantID, ClientSecret: DevMerchantSecret, TokenURL: base + "/ucp/oauth2/token", Scopes: []string{"orders:read"}}
		if tok, err := cc.Token(ctx); err != nil || !strings.HasPrefix(tok.AccessToken, "ucpb_at_") {
			t.Fatalf("seeded merchant: %v", err)
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
	if err := run(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("no command accepted")
	}
	if err := run(context.Background(), []string{"bogus"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}
