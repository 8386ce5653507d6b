package authserver_test

import (
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// TestMerchantWebhookSettings drives the store's webhook settings with
// real credentials through the composed platform: the demo merchant's
// client_credentials token (bound to flower-shop by the token endpoint)
// sets and reads its store's order events URL; the same token at another
// store, a token of the same merchant without orders:read, the platform
// key and no credential are refused by the guard.
func TestMerchantWebhookSettings(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	ctx := t.Context()
	token := func(scopes ...string) string {
		t.Helper()
		cc := &clientcredentials.Config{ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, TokenURL: p.TokenURL, Scopes: scopes}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("merchant token %v: %v", scopes, err)
		}
		return "Bearer " + tok.AccessToken
	}
	reader, completer := token("orders:read"), token("purchase:complete")
	own := p.StoreURL(authserver.DemoMerchantStore) + "/settings/webhooks"

	const hook = `{"order_events_url":"https://hooks.flower-shop.example/ucp/orders"}`
	if code, _, b := call(t, "PUT", own, hook, "Authorization", reader); code != 200 || string(b) != hook {
		t.Fatalf("PUT: %d %s", code, b)
	}
	if code, _, b := call(t, "GET", own, "", "Authorization", reader); code != 200 || string(b) != hook {
		t.Fatalf("GET: %d %s", code, b)
	}
	for _, tc := range []struct {
		name, url, auth string
		status          int
		code            string
	}{
		{"the merchant at another store", p.StoreURL("kyoto-tea") + "/settings/webhooks", reader, 403, "wrong_store"},
		{"the merchant without orders:read", own, completer, 403, "insufficient_scope"},
		{"the platform key", own, "", 403, "forbidden"},
		{"anonymous", own, "-", 401, "identity_required"},
	} {
		hdr := []string{"Authorization", tc.auth}
		switch tc.auth {
		case "":
			hdr = []string{"X-API-Key", p.PlatformKey}
		case "-":
			hdr = nil
		}
		for _, m := range []string{"GET", "PUT"} {
			code, _, b := call(t, m, tc.url, `{"order_events_url":"https://attacker.example/orders"}`, hdr...)
			if code != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
				t.Fatalf("%s, %s: %d %s", tc.name, m, code, b)
			}
		}
	}
	if code, _, b := call(t, "GET", own, "", "Authorization", reader); code != 200 || string(b) != hook {
		t.Fatalf("after the refusals: %d %s", code, b)
	}
}
