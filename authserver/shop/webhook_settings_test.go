package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const settingsPath = "/s/flower-shop/settings/webhooks"

// merchantOf is the headers of store's merchant token with scopes, and no
// UCP-Agent: a merchant managing its store names no platform profile.
func merchantOf(store string, scopes ...string) []string {
	h := []string{"X-Test-Client", store + "-bot", "X-Test-Store", store, "UCP-Agent", ""}
	if len(scopes) > 0 {
		h = append(h, "X-Test-Scopes", strings.Join(scopes, " "))
	}
	return h
}

var flowerMerchant = merchantOf("flower-shop", "orders:read")

type settingsBody struct {
	OrderEventsURL *string `json:"order_events_url"`
}

func (e *env) webhookSettings(hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.req("GET", settingsPath, nil, hdr...)
}

func (e *env) putWebhookSettings(body any, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.req("PUT", settingsPath, body, hdr...)
}

func orderEvents(u string) map[string]any { return map[string]any{"order_events_url": u} }

// shopConfig is the store's stored settings document as a map.
func shopConfig(t *testing.T, st store.Commerce, slug string) map[string]any {
	t.Helper()
	sh, err := st.Shop(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(sh.Config, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestWebhookSettingsMerchant: the store's merchant (orders:read, no
// platform profile) reads the settings (none at first), sets the order
// events URL, reads it back, and removes it with null; the rest of the
// settings document is untouched throughout.
func TestWebhookSettingsMerchant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	before := shopConfig(t, e.store, "flower-shop")
	get := func() *string {
		t.Helper()
		res, b := e.webhookSettings(flowerMerchant...)
		wantStatus(t, res, b, http.StatusOK)
		if res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type %q", res.Header.Get("Content-Type"))
		}
		return decode[settingsBody](t, b).OrderEventsURL
	}
	res, b := e.webhookSettings(flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	if string(b) != `{"order_events_url":null}` {
		t.Fatalf("initial settings: %s", b)
	}

	const hook = "https://hooks.merchant.example/ucp/orders?src=flower"
	res, b = e.putWebhookSettings(orderEvents(hook), flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	if got := decode[settingsBody](t, b).OrderEventsURL; got == nil || *got != hook {
		t.Fatalf("PUT answered %s", b)
	}
	if got := get(); got == nil || *got != hook {
		t.Fatalf("GET after PUT: %v", got)
	}
	after := shopConfig(t, e.store, "flower-shop")
	if w, _ := after["webhooks"].(map[string]any); w["order_events_url"] != hook {
		t.Fatalf("stored document: %v", after)
	}
	delete(after, "webhooks")
	if !equalJSON(t, before, after) {
		t.Fatalf("the rest of the settings changed:\nbefore %v\nafter  %v", before, after)
	}

	res, b = e.putWebhookSettings(`{"order_events_url":null}`, flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	if string(b) != `{"order_events_url":null}` || get() != nil {
		t.Fatalf("after null: %s", b)
	}
	if now := shopConfig(t, e.store, "flower-shop"); !equalJSON(t, before, now) {
		t.Fatalf("removing the URL left %v, want %v", now, before)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// TestWebhookSettingsRefused: only the store's own merchant with
// orders:read reads or changes its settings. Anonymous callers get 401
// with the challenge; a platform key, a buyer (even with orders:read),
// another store's merchant (wrong_store) and a merchant token without
// orders:read (insufficient_scope) get 403; nothing is written.
func TestWebhookSettingsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	before := shopConfig(t, e.store, "flower-shop")
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"anonymous", []string{"X-Test-Client", "", "UCP-Agent", ""}, http.StatusUnauthorized, "identity_required"},
		{"platform key", nil, http.StatusForbidden, "forbidden"},
		{"buyer with orders:read", []string{"X-Test-Client", "demo-agent", "X-Test-Platform", "platform-a", "X-Test-Buyer", "buyer_ada",
			"X-Test-Scopes", "orders:read purchase:complete"}, http.StatusForbidden, "forbidden"},
		{"another store's merchant", merchantOf("kyoto-tea", "orders:read"), http.StatusForbidden, "wrong_store"},
		{"merchant without orders:read", merchantOf("flower-shop", "purchase:complete"), http.StatusForbidden, "insufficient_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []func(...string) (*http.Response, []byte){
				e.webhookSettings,
				func(h ...string) (*http.Response, []byte) {
					return e.putWebhookSettings(orderEvents("https://attacker.example/orders"), h...)
				},
			} {
				res, b := call(tc.hdr...)
				wantStatus(t, res, b, tc.status)
				var pe struct{ Code, Content string }
				if json.Unmarshal(b, &pe) != nil || pe.Code != tc.code || pe.Content == "" {
					t.Fatalf("%s", b)
				}
				ch := res.Header.Get("WWW-Authenticate")
				switch tc.code {
				case "identity_required":
					if !strings.Contains(ch, `resource_metadata="`+e.srv.URL+"/.well-known/oauth-protected-resource/s/flower-shop") ||
						!strings.Contains(pe.Content, "merchant token") {
						t.Fatalf("challenge %q, body %s", ch, b)
					}
				case "insufficient_scope":
					if !strings.Contains(ch, `scope="orders:read"`) {
						t.Fatalf("challenge %q", ch)
					}
				}
			}
		})
	}
	if now := shopConfig(t, e.store, "flower-shop"); !equalJSON(t, before, now) {
		t.Fatalf("a refused caller changed the settings: %v", now)
	}
	// An unknown store is 404 for its would-be merchant.
	res, b := e.req("GET", "/s/no-such-store/settings/webhooks", nil, merchantOf("no-such-store", "orders:read")...)
	wantStatus(t, res, b, http.StatusNotFound)
}

// TestWebhookSettingsBadInput: every malformed body or unusable URL is a
// 400 with a code and a message saying what is wrong (never echoing the
// URL), and nothing is stored.
func TestWebhookSettingsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // not dev: https only
	before := shopConfig(t, e.store, "flower-shop")
	for _, tc := range []struct {
		name, body, code, says string
	}{
		{"no body", "", "invalid_request", "a request body is required"},
		{"not JSON", `{"order_events_url":`, "invalid_request", "malformed request body"},
		{"not an object", `["https://m.example/o"]`, "invalid_request", "malformed request body"},
		{"null body", `null`, "invalid_request", "must be a JSON object"},
		{"member missing", `{}`, "invalid_request", "order_events_url is required"},
		{"unknown member", `{"order_events_url":"https://m.example/o","secret":"x"}`, "invalid_request", `unknown member "secret"`},
		{"misspelt member", `{"order_event_url":"https://m.example/o"}`, "invalid_request", `unknown member "order_event_url"`},
		{"not a string", `{"order_events_url":42}`, "invalid_request", "must be a string or null"},
		{"empty", `{"order_events_url":""}`, "invalid_webhook_url", "is empty (null removes it)"},
		{"plain http", `{"order_events_url":"http://m.example/o"}`, "invalid_webhook_url", "must use https"},
		{"plain http to loopback outside dev", `{"order_events_url":"http://127.0.0.1:9/o"}`, "invalid_webhook_url", "must use https"},
		{"relative", `{"order_events_url":"/orders"}`, "invalid_webhook_url", "must use https"},
		{"no host", `{"order_events_url":"https:///orders"}`, "invalid_webhook_url", "must have a host"},
		{"user information", `{"order_events_url":"https://u:p@m.example/o"}`, "invalid_webhook_url", "must not contain user information"},
		{"fragment", `{"order_events_url":"https://m.example/o#x"}`, "invalid_webhook_url", "must not contain a fragment"},
		{"space", `{"order_events_url":"https://m.example/a b"}`, "invalid_webhook_url", "contains spaces"},
		{"too long", `{"order_events_url":"https://m.example/` + strings.Repeat("a", 2048) + `"}`, "invalid_webhook_url", "longer than 2048 bytes"},
		{"private address", `{"order_events_url":"https://10.1.2.3/o"}`, "invalid_webhook_url", "private (RFC 1918) address"},
		{"link-local (metadata service)", `{"order_events_url":"https://169.254.169.254/latest"}`, "invalid_webhook_url", "link-local address"},
		{"ULA", `{"order_events_url":"https://[fd00::1]/o"}`, "invalid_webhook_url", "unique local (ULA) address"},
		{"loopback outside dev", `{"order_events_url":"https://127.0.0.1/o"}`, "invalid_webhook_url", "loopback"},
		{"localhost outside dev", `{"order_events_url":"https://localhost/o"}`, "invalid_webhook_url", "loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := e.putWebhookSettings(tc.body, flowerMerchant...)
			wantStatus(t, res, b, http.StatusBadRequest)
			var pe struct{ Code, Content string }
			if json.Unmarshal(b, &pe) != nil || pe.Code != tc.code || !strings.Contains(pe.Content, tc.says) {
				t.Fatalf("%s", b)
			}
			if strings.Contains(pe.Content, "m.example") {
				t.Fatalf("the message echoes the URL: %s", pe.Content)
			}
		})
	}
	if now := shopConfig(t, e.store, "flower-shop"); !equalJSON(t, before, now) {
		t.Fatalf("a refused update changed the settings: %v", now)
	}
	res, b := e.putWebhookSettings(`{"order_events_url":"https://m.example/o"}`, append(flowerMerchant, "Content-Type", "text/plain")...)
	wantStatus(t, res, b, http.StatusUnsupportedMediaType)

	// The platform's own API host is no receiver (a self-addressed
	// request carrying the store's signature), whatever the spelling.
	api := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.BaseURL = "https://api.ucpbridge.example" }})
	for _, u := range []string{"https://api.ucpbridge.example/s/flower-shop/carts", "https://API.ucpbridge.example:443/x", "https://api.ucpbridge.example./x"} {
		res, b := api.putWebhookSettings(orderEvents(u), flowerMerchant...)
		wantStatus(t, res, b, http.StatusBadRequest)
		if !strings.Contains(string(b), "points at this platform's own API") {
			t.Fatalf("%s: %s", u, b)
		}
	}
	res, b = api.putWebhookSettings(orderEvents("https://hooks.ucpbridge.example/x"), flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)

	// In dev, plain http to loopback is accepted (local receivers); other
	// plain http is not.
	dev := newEnv(t, &envOptions{dev: true})
	res, b = dev.putWebhookSettings(orderEvents("http://127.0.0.1:9/o"), flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	res, b = dev.putWebhookSettings(orderEvents("http://m.example/o"), flowerMerchant...)
	wantStatus(t, res, b, http.StatusBadRequest)
	if !strings.Contains(string(b), "plain http only to a loopback host") {
		t.Fatalf("%s", b)
	}
}

// TestWebhookSettingsKeepTheDocument: the update rewrites only
// webhooks.order_events_url; members this build does not know, at the
// top level and inside webhooks, survive a set and a removal.
func TestWebhookSettingsKeepTheDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := e.store.UpdateShopConfig(t.Context(), "flower-shop", func(c json.RawMessage) (json.RawMessage, error) {
		var doc map[string]any
		if err := json.Unmarshal(c, &doc); err != nil {
			return nil, err
		}
		doc["loyalty_program"] = map[string]any{"points_per_eur": 3}
		doc["webhooks"] = map[string]any{"refund_events_url": "https://m.example/refunds"}
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := shopConfig(t, e.store, "flower-shop")
	res, b := e.putWebhookSettings(orderEvents("https://m.example/orders"), flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	got := shopConfig(t, e.store, "flower-shop")
	if w, _ := got["webhooks"].(map[string]any); w["refund_events_url"] != "https://m.example/refunds" || w["order_events_url"] != "https://m.example/orders" {
		t.Fatalf("webhooks: %v", got["webhooks"])
	}
	delete(got["webhooks"].(map[string]any), "order_events_url")
	if !equalJSON(t, want, got) {
		t.Fatalf("set: got %v\nwant %v", got, want)
	}
	res, b = e.putWebhookSettings(`{"order_events_url":null}`, flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	if got := shopConfig(t, e.store, "flower-shop"); !equalJSON(t, want, got) {
		t.Fatalf("removed: got %v\nwant %v", got, want)
	}
}

// TestWebhookSettingsConcurrent: concurrent PUTs, racing other writers
// of the same settings document, lose nothing: every other writer's
// member is there at the end, the rails are intact, and the URL is one
// of those PUT. On SQLite and, with UCPBRIDGE_TEST_PG, PostgreSQL.
func TestWebhookSettingsConcurrent(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, &envOptions{store: open(t)})
			before := shopConfig(t, e.store, "flower-shop")
			const n = 12
			var wg sync.WaitGroup
			put := map[string]bool{}
			for i := range n {
				u := fmt.Sprintf("https://m%d.example/orders", i)
				put[u] = true
				wg.Go(func() {
					res, b := e.putWebhookSettings(orderEvents(u), flowerMerchant...)
					if res.StatusCode != http.StatusOK {
						t.Errorf("PUT %d: %s", res.StatusCode, b)
					}
				})
				wg.Go(func() {
					err := e.store.UpdateShopConfig(context.Background(), "flower-shop", func(c json.RawMessage) (json.RawMessage, error) {
						var doc map[string]json.RawMessage
						if err := json.Unmarshal(c, &doc); err != nil {
							return nil, err
						}
						doc[fmt.Sprintf("other_%02d", i)] = json.RawMessage(`true`)
						return json.Marshal(doc)
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got := shopConfig(t, e.store, "flower-shop")
			for i := range n {
				if got[fmt.Sprintf("other_%02d", i)] != true {
					t.Fatalf("member other_%02d lost: %v", i, got)
				}
				delete(got, fmt.Sprintf("other_%02d", i))
			}
			w, _ := got["webhooks"].(map[string]any)
			u, _ := w["order_events_url"].(string)
			if !put[u] {
				t.Fatalf("order_events_url %q", u)
			}
			delete(got, "webhooks")
			if !equalJSON(t, before, got) {
				t.Fatalf("settings changed: %v\nwant %v", got, before)
			}
			res, b := e.webhookSettings(flowerMerchant...)
			if g := decode[settingsBody](t, b).OrderEventsURL; res.StatusCode != 200 || g == nil || *g != u {
				t.Fatalf("GET: %s, stored %q", b, u)
			}
		})
	}
}

// verifyStoreWebhook checks a delivery as a receiver would: the store's
// key from its profile verifies the RFC 9421 signature over the body.
func verifyStoreWebhook(t *testing.T, e *env, hook *hookReceiver, r *http.Request, body []byte) {
	t.Helper()
	keys, _ := e.storeKeys("flower-shop")
	r.Body = io.NopCloser(bytes.NewReader(body))
	u, _ := url.Parse(hook.srv.URL)
	r.Host, r.URL.Host, r.URL.Scheme = u.Host, u.Host, "http"
	res, err := (&httpsig.Verifier{Keys: keys}).VerifyRequest(t.Context(), r, body)
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	for _, c := range []string{"@method", "@authority", "@path", "content-digest", "content-type"} {
		if !slices.Contains(res.Components, c) {
			t.Fatalf("signature does not cover %s: %v", c, res.Components)
		}
	}
	if r.Header.Get("UCP-Agent") != `profile="`+e.srv.URL+`/s/flower-shop/.well-known/ucp"` || !uuidRE.MatchString(r.Header.Get("Webhook-Id")) {
		t.Fatalf("headers %v", r.Header)
	}
}

// TestMerchantOrderEvents: an order placed at the store is delivered to
// the merchant's order events URL and to the platform's webhook: two
// deliveries with their own Webhook-Id, the same order, each signed with
// the store's key. Once removed, the URL gets nothing more.
func TestMerchantOrderEvents(t *testing.T) {
	t.Parallel()
	platform, merchant := newHookReceiver(t), newHookReceiver(t)
	e := newEnv(t, &envOptions{dev: true}) // dev: the receivers are plain http on loopback
	e.agent.set(func(a *agentServer) { a.webhook = platform.srv.URL + "/platform/orders" })
	res, b := e.putWebhookSettings(orderEvents(merchant.srv.URL+"/merchant/orders"), flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)

	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 2)))
	_, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	done := decode[ucp.Checkout](t, b)
	if done.Order == nil {
		t.Fatalf("%s", b)
	}
	if n, err := e.svc.DeliverWebhooks(t.Context()); err != nil || n != 2 || platform.count() != 1 || merchant.count() != 1 {
		t.Fatalf("delivered %d (%v); platform saw %d, merchant %d", n, err, platform.count(), merchant.count())
	}
	for _, tc := range []struct {
		hook *hookReceiver
		path string
	}{{merchant, "/merchant/orders"}, {platform, "/platform/orders"}} {
		r, body := tc.hook.got[0], tc.hook.bod[0]
		o := decode[ucp.Order](t, body)
		if r.Method != "POST" || r.URL.Path != tc.path || o.ID != done.Order.ID || o.CheckoutID != c.ID || len(o.LineItems) != 1 {
			t.Fatalf("%s %s: %s", r.Method, r.URL, body)
		}
		verifyStoreWebhook(t, e, tc.hook, r, body)
	}
	if merchant.got[0].Header.Get("Webhook-Id") == platform.got[0].Header.Get("Webhook-Id") {
		t.Fatal("both deliveries carry one Webhook-Id")
	}

	// A platform whose webhook the store does not honour (platform-b has
	// no registered profile, so the one it names is not its own): the
	// merchant still hears of the order; of one paid on the hosted page
	// too.
	other := []string{"X-Test-Client", "platform-b"}
	c = e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), other...)
	e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), other...)
	c = e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), other...)
	_, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("escalate_token"), other...)
	e.payOnHostedPage(decode[ucp.Checkout](t, b).ContinueURL)
	if n, err := e.svc.DeliverWebhooks(t.Context()); err != nil || n != 2 || merchant.count() != 3 || platform.count() != 1 {
		t.Fatalf("delivered %d (%v); platform saw %d, merchant %d", n, err, platform.count(), merchant.count())
	}

	// Removed: the next order queues nothing for the merchant.
	res, b = e.putWebhookSettings(`{"order_events_url":null}`, flowerMerchant...)
	wantStatus(t, res, b, http.StatusOK)
	c = e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)), other...)
	e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), other...)
	if n, err := e.svc.DeliverWebhooks(t.Context()); err != nil || n != 0 || merchant.count() != 3 {
		t.Fatalf("after removal: delivered %d (%v), merchant saw %d", n, err, merchant.count())
	}
	// Another store's orders never reach this merchant.
	body := lines(line("energy-gels-12", 1))
	body["fulfillment"] = usShipping
	c = e.createCheckout("energy-sport", body, other...)
	if _, b = e.req("POST", "/s/energy-sport/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"), other...); decode[ucp.Checkout](t, b).Order == nil {
		t.Fatalf("energy-sport order: %s", b)
	}
	if ws, err := e.store.ClaimWebhooks(t.Context(), time.Now().Add(time.Hour), time.Minute, 10); err != nil || len(ws) != 0 {
		t.Fatalf("queued %d (%v)", len(ws), err)
	}
}

// TestMerchantOrderEventsRecheckedAtOrderTime: a URL stored by a dev
// server (plain http to loopback) is not used by an instance outside
// dev; the order is placed anyway and nothing is queued.
func TestMerchantOrderEventsRecheckedAtOrderTime(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	e := newEnv(t, nil)
	err := e.store.UpdateShopConfig(t.Context(), "flower-shop", func(c json.RawMessage) (json.RawMessage, error) {
		var doc map[string]any
		json.Unmarshal(c, &doc)
		doc["webhooks"] = map[string]any{"order_events_url": hook.srv.URL + "/orders"}
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	if decode[ucp.Checkout](t, b).Order == nil {
		t.Fatalf("%s", b)
	}
	if ws, err := e.store.ClaimWebhooks(t.Context(), time.Now().Add(time.Hour), time.Minute, 10); err != nil || len(ws) != 0 {
		t.Fatalf("queued %d (%v)", len(ws), err)
	}
}

// TestWebhookSettingsNotMCPTools: the settings are the merchant's REST
// endpoints; the store's MCP endpoint, which every agent lists, offers
// only the UCP tools.
func TestWebhookSettingsNotMCPTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tool := range e.listTools("/s/flower-shop/mcp") {
		if tool.Name == string(shop.OpGetWebhookSettings) || tool.Name == string(shop.OpUpdateWebhookSettings) {
			t.Fatalf("the store's MCP endpoint lists %s", tool.Name)
		}
	}
}
