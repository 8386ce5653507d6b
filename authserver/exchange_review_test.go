package authserver_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestTokenExchangeSecurityReview: the questions a reviewer asks of the
// exchange, as tests.
func TestTokenExchangeSecurityReview(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	sub := e.buyerToken(bridgeA, "purchase:complete dev.ucp.shopping.order:read offline_access", nil)

	// The platform's id without its secret is no authentication.
	e.refused("platform id, no secret", e.exchange("", sub.AccessToken, url.Values{"client_id": {e.p.PlatformID}}), 401, "invalid_client")

	// Scopes cannot widen through exchange then refresh: the exchange
	// issues no refresh token; an exchanged token is no refresh token;
	// the platform cannot refresh the agent's grant.
	x := e.mustExchange(e.p.PlatformKey, sub.AccessToken, url.Values{"scope": {"dev.ucp.shopping.order:read"}})
	if x.RefreshToken != "" || x.Scope != "dev.ucp.shopping.order:read" {
		t.Fatalf("narrowed exchange %+v", x)
	}
	e.refused("re-exchanging the narrowed token for more", e.exchange(e.p.PlatformKey, x.AccessToken,
		url.Values{"scope": {"purchase:complete"}}), 400, "invalid_grant")
	refresh := func(key, rt string, extra url.Values) exchangeResult {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "subject_token": {""}, "subject_token_type": {""}}
		for k, v := range extra {
			f[k] = v
		}
		return e.exchange(key, "", f)
	}
	if r := refresh(e.p.PlatformKey, x.AccessToken, nil); r.Status == 200 || r.AccessToken != "" {
		t.Errorf("an exchanged access token used as a refresh token: %+v", r)
	}
	if r := refresh(e.p.PlatformKey, sub.RefreshToken, nil); r.Status == 200 || r.AccessToken != "" {
		t.Errorf("the platform refreshing the agent's grant: %+v", r)
	}
	// The narrowed token cannot complete a purchase.
	if code, body := e.complete(e.createCheckout(1), x.AccessToken); ordered(code, body) {
		t.Errorf("a token narrowed to order:read completed a purchase: %s", body)
	}

	// The bridge token stays refused at the platform API next to the
	// platform key too (platform+buyer mode keeps the bearer's resource).
	code, _, b := call(t, "POST", e.p.StoreURL("flower-shop")+"/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`,
		"X-API-Key", e.p.PlatformKey, "Authorization", "Bearer "+sub.AccessToken, "Idempotency-Key", e.key("dual"))
	if code != 401 || !strings.Contains(string(b), "another resource") {
		t.Errorf("bridge token with the platform key: %d %s", code, b)
	}
	// Another platform's key with this platform's exchanged token is a
	// credential conflict.
	full := e.mustExchange(e.p.PlatformKey, sub.AccessToken, nil)
	code, _, b = call(t, "POST", e.p.StoreURL("flower-shop")+"/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`,
		"X-API-Key", e.keyB, "Authorization", "Bearer "+full.AccessToken, "Idempotency-Key", e.key("dual-b"))
	if code != 401 {
		t.Errorf("platform B's key with A's exchanged token: %d %s", code, b)
	}
}
