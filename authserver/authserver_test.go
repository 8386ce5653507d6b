package authserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
)

func call(t *testing.T, method, url, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:1/.well-known/ucp"`) // dev: unreachable profiles fall back
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// TestPlatform drives the composed platform API through the harness: the
// OAuth server, the guard and the stores answer on one host, with the
// seeded credentials.
func TestPlatform(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	ctx := t.Context()

	if code, _, b := call(t, "GET", p.MetadataURL, ""); code != 200 || !strings.Contains(string(b), `"issuer":"`+p.URL+`"`) {
		t.Fatalf("metadata: %d %s", code, b)
	}
	cc := &clientcredentials.Config{ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, TokenURL: p.TokenURL, Scopes: []string{"orders:read"}}
	if _, err := cc.Token(ctx); err != nil {
		t.Fatalf("merchant token: %v", err)
	}
	if len(p.Stores) != len(shop.DemoShops()) {
		t.Fatalf("stores %v", p.Stores)
	}

	// A purchase with the platform key, then the order with the key, and
	// a bad key refused with a challenge by the guard.
	key := []string{"X-API-Key", p.PlatformKey}
	code, _, b := call(t, "POST", p.StoreURL("flower-shop")+"/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`,
		append(key, "Idempotency-Key", "authserver-test-create-0001")...)
	var c struct{ ID string }
	if code != 201 || json.Unmarshal(b, &c) != nil {
		t.Fatalf("create: %d %s", code, b)
	}
	code, _, b = call(t, "POST", p.StoreURL("flower-shop")+"/checkout-sessions/"+c.ID+"/complete",
		`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`,
		append(key, "Idempotency-Key", "authserver-test-complete-01")...)
	var done struct{ Order struct{ ID string } }
	if code != 200 || json.Unmarshal(b, &done) != nil || done.Order.ID == "" {
		t.Fatalf("complete: %d %s", code, b)
	}
	order := p.StoreURL("flower-shop") + "/orders/" + done.Order.ID
	if code, _, b := call(t, "GET", order, "", key...); code != 200 || !strings.Contains(string(b), c.ID) {
		t.Fatalf("order: %d %s", code, b)
	}
	// The store's merchant reads it with its store-bound token and no
	// UCP-Agent (it is the business's own automation, not a platform); a
	// platform still names its profile.
	mt, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, b := call(t, "GET", order, "", "UCP-Agent", "", "Authorization", "Bearer "+mt.AccessToken); code != 200 || !strings.Contains(string(b), c.ID) {
		t.Fatalf("merchant order read without UCP-Agent: %d %s", code, b)
	}
	if code, _, b := call(t, "GET", order, "", append(key, "UCP-Agent", "")...); code != 400 || !strings.Contains(string(b), "invalid_profile_url") {
		t.Fatalf("platform order read without UCP-Agent: %d %s", code, b)
	}
	if code, h, _ := call(t, "GET", order, "", "X-API-Key", p.PlatformID+".wrong"); code != 401 ||
		!strings.Contains(h.Get("WWW-Authenticate"), `realm="`+p.URL+`"`) {
		t.Fatalf("bad key: %d %v", code, h)
	}

	// The buyer's consent flow through the harness, and the buyer's
	// bearer accepted by the stores.
	tok, err := p.BuyerToken(ctx, "purchase:complete dev.ucp.shopping.order:read offline_access", nil)
	if err != nil {
		t.Fatal(err)
	}
	al, _ := tok.Extra("allowance").(map[string]any)
	if tok.RefreshToken == "" || al["max_per_order"] != float64(5000) || al["daily_cap"] != float64(12050) || al["currency"] != "EUR" {
		t.Fatalf("buyer token %+v allowance %v", tok, al)
	}
	if code, _, b := call(t, "POST", p.StoreURL("flower-shop")+"/carts", `{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":2}]}`,
		"Authorization", "Bearer "+tok.AccessToken, "Idempotency-Key", "authserver-test-cart-000001"); code != 201 {
		t.Fatalf("buyer cart: %d %s", code, b)
	}
}

// TestNewRequiresStoreAndKeys: the composition refuses a config it
// cannot serve, with an error naming what is missing.
func TestNewRequiresStoreAndKeys(t *testing.T) {
	t.Parallel()
	_, err := authserver.New(authserver.Config{Issuer: "https://api.example"})
	if err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("%v", err)
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	_, err = authserver.New(authserver.Config{Issuer: "https://api.example/", Store: p.Store, Keys: &shop.MemoryKeys{}})
	if err == nil {
		t.Fatal("issuer with a trailing slash accepted")
	}
}
