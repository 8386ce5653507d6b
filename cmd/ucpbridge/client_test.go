package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

// TestClientAdd registers a platform, its app and a merchant in a serve
// database, then uses the printed credentials against `serve`.
func TestClientAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := dir + "/db"
	add := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"client", "add", "--db", db}, args...), &out, io.Discard)
		return out.String(), err
	}
	// The stores exist once serve seeded them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1", "--db", db, "--keys-dir", dir + "/keys",
			"--seal-key", dir + "/seal", "--seed-demo"}, pw, io.Discard)
		pw.Close()
	}()
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	base := "http://" + regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(first)

	out, err := add("--role", "platform", "--id", "acme", "--profile", "https://acme.example/.well-known/ucp", "--cimd", "https://acme.example/agent.json")
	key := regexp.MustCompile(`X-API-Key: (\S+)`).FindStringSubmatch(out)
	if err != nil || key == nil || !strings.HasPrefix(key[1], "acme.ucpb_cs_") {
		t.Fatalf("platform: %v %q", err, out)
	}
	if _, err := add("--role", "app", "--id", "acme-agent", "--platform", "acme", "--redirect", "http://127.0.0.1/cb"); err != nil {
		t.Fatal(err)
	}
	out, err = add("--role", "merchant", "--id", "flowers-bot", "--store", "flower-shop")
	secret := regexp.MustCompile(`(ucpb_cs_\S+)`).FindString(out)
	if err != nil || secret == "" {
		t.Fatalf("merchant: %v %q", err, out)
	}
	for _, bad := range [][]string{
		{"--role", "platform", "--id", "acme"},                                               // taken
		{"--role", "platform", "--id", "rival", "--cimd", "https://acme.example/agent.json"}, // another's CIMD URL
		{"--role", "merchant", "--id", "m2", "--store", "no-such-store"},
		{"--role", "app", "--id", "a2", "--platform", "flowers-bot", "--redirect", "http://127.0.0.1/cb"}, // not a platform
		{"--role", "app", "--id", "a3"},
		{"--role", "platform", "--id", "p2", "--profile", "http://acme.example/p"},
		{"--role", "owner", "--id", "x"},
		{"--role", "platform", "--id", "bad id"},
		{"--role", "merchant", "--id", "m3", "--store", "flower-shop", "--cimd", "https://acme.example/m3.json"}, // a platform's flag
		{"--role", "app", "--id", "a4", "--redirect", "http://127.0.0.1/cb", "--profile", "https://acme.example/p"},
		{"--role", "app", "--id", "a5", "--redirect", "com.example.app:/cb", "--store", "flower-shop"},
	} {
		if _, err := add(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	st, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"acme-agent": "acme", "https://acme.example/agent.json": "acme", "flowers-bot": ""} {
		if got, _ := st.ClientPlatform(context.Background(), id); got != want {
			t.Errorf("ClientPlatform(%s) = %q, want %q", id, got, want)
		}
	}
	if c, err := st.Client(context.Background(), "flowers-bot"); err != nil || c.Role != store.RoleMerchant || c.Store != "flower-shop" {
		t.Fatalf("merchant record %+v %v", c, err)
	}
	st.Close()

	// The platform's key works at the stores; the merchant's secret is no
	// key, and its token is bound to its store.
	call := func(path, hdr, val string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set(hdr, val)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Past the guard, serve wants a platform profile (none is sent): 400
	// invalid_profile_url means the credential was accepted.
	if s := call("/s/flower-shop/checkout-sessions/chk_nope", "X-API-Key", key[1]); s != http.StatusBadRequest {
		t.Fatalf("platform key: HTTP %d", s)
	}
	if s := call("/s/flower-shop/checkout-sessions/chk_nope", "X-API-Key", "flowers-bot."+secret); s != http.StatusUnauthorized {
		t.Fatalf("merchant secret as a key: HTTP %d", s)
	}
	cc := &clientcredentials.Config{ClientID: "flowers-bot", ClientSecret: secret, TokenURL: base + "/ucp/oauth2/token", Scopes: []string{"orders:read"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A store's own merchant needs no platform profile: past the guard,
	// an unknown order is a UCP not_found envelope (HTTP 200).
	req, _ := http.NewRequest("GET", base+"/s/flower-shop/orders/ord_nope", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"not_found"`) {
		t.Fatalf("merchant at its store: HTTP %d %s", res.StatusCode, body)
	}
	if s := call("/s/kyoto-tea/orders/ord_nope", "Authorization", "Bearer "+tok.AccessToken); s != http.StatusForbidden {
		t.Fatalf("merchant at another store: HTTP %d", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
