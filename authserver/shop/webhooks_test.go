package shop_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// hookReceiver records webhook requests and answers with the next status
// in its script (then 200).
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
	bod [][]byte
	ans []int
}

func newHookReceiver(t *testing.T, answers ...int) *hookReceiver {
	h := &hookReceiver{ans: answers}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.got = append(h.got, r.Clone(context.Background())) // the server keeps using r
		h.bod = append(h.bod, b)
		status := 200
		if len(h.ans) > 0 {
			status, h.ans = h.ans[0], h.ans[1:]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.got) }

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestOrderWebhook: placing an order queues the "order created" event;
// one delivery pass sends the full order, signed with the store's key,
// with Webhook-Id, Webhook-Timestamp and UCP-Agent naming the store.
func TestOrderWebhook(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	e := newEnv(t, &envOptions{dev: true}) // dev: the receiver is plain http on loopback
	e.agent.set(func(a *agentServer) { a.webhook = hook.srv.URL + "/ucp/orders" })
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 2)))
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	done := decode[ucp.Checkout](t, b)
	if done.Order == nil {
		t.Fatalf("%s", b)
	}
	n, err := e.svc.DeliverWebhooks(t.Context())
	if err != nil || n != 1 || hook.count() != 1 {
		t.Fatalf("delivered %d (%v), receiver saw %d", n, err, hook.count())
	}
	r, body := hook.got[0], hook.bod[0]
	o := decode[ucp.Order](t, body)
	if r.Method != "POST" || r.URL.Path != "/ucp/orders" || o.ID != done.Order.ID || o.CheckoutID != c.ID || len(o.LineItems) != 1 ||
		o.UCP == nil || o.UCP.Capabilities[ucp.CapOrder] == nil {
		t.Fatalf("%s %s: %s", r.Method, r.URL, body)
	}
	if !uuidRE.MatchString(r.Header.Get("Webhook-Id")) {
		t.Fatalf("Webhook-Id %q", r.Header.Get("Webhook-Id"))
	}
	if ts, err := strconv.ParseInt(r.Header.Get("Webhook-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Fatalf("Webhook-Timestamp %q", r.Header.Get("Webhook-Timestamp"))
	}
	if r.Header.Get("UCP-Agent") != `profile="`+e.srv.URL+`/s/flower-shop/.well-known/ucp"` {
		t.Fatalf("UCP-Agent %q", r.Header.Get("UCP-Agent"))
	}
	keys, _ := e.storeKeys("flower-shop")
	r.Body = io.NopCloser(bytes.NewReader(body))
	u, _ := url.Parse(hook.srv.URL)
	r.Host, r.URL.Host, r.URL.Scheme = u.Host, u.Host, "http"
	res, err := (&httpsig.Verifier{Keys: keys}).VerifyRequest(t.Context(), r, body)
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	for _, c := range []string{"@method", "@authority", "@path", "ucp-agent", "content-digest", "content-type"} {
		if !contains(res.Components, c) {
			t.Fatalf("signature does not cover %s: %v", c, res.Components)
		}
	}
	// Delivered once: the next pass has nothing.
	if n, _ := e.svc.DeliverWebhooks(t.Context()); n != 0 || hook.count() != 1 {
		t.Fatalf("redelivered: %d", n)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestOrderWebhookRetries: a failed delivery is retried later with the
// same Webhook-Id.
func TestOrderWebhookRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	hook := newHookReceiver(t, 500, 503)
	e := newEnv(t, &envOptions{dev: true, cfg: func(c *shop.Config) { c.Now = clock }})
	e.agent.set(func(a *agentServer) { a.webhook = hook.srv.URL + "/hooks" })
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	step := func(d time.Duration, wantDelivered, wantSeen int) {
		t.Helper()
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		n, err := e.svc.DeliverWebhooks(t.Context())
		if err != nil || n != wantDelivered || hook.count() != wantSeen {
			t.Fatalf("after %v: delivered %d (%v), seen %d", d, n, err, hook.count())
		}
	}
	step(time.Second, 0, 1)    // 500
	step(5*time.Second, 0, 1)  // backing off (10 s)
	step(10*time.Second, 0, 2) // 503
	step(10*time.Second, 0, 2) // backing off (20 s)
	step(20*time.Second, 1, 3) // 200
	step(time.Hour, 0, 3)      // done
	ids := map[string]bool{}
	for _, r := range hook.got {
		ids[r.Header.Get("Webhook-Id")] = true
	}
	if len(ids) != 1 {
		t.Fatalf("Webhook-Id changed across retries: %v", ids)
	}
}

// TestOrderWebhookOnlyWhenAsked: no webhook_url, or one that is not
// https outside dev, queues nothing.
func TestOrderWebhookOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	for _, tc := range []struct {
		name, url string
		dev       bool
	}{
		{"no webhook_url", "", true},
		{"plain http outside dev", hook.srv.URL + "/hooks", false},
		{"userinfo", "https://u:p@platform.example/hooks", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &envOptions{dev: tc.dev})
			e.agent.set(func(a *agentServer) { a.webhook = tc.url })
			c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
			e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
			if ws, err := e.store.ClaimWebhooks(t.Context(), time.Now().Add(time.Hour), time.Minute, 10); err != nil || len(ws) != 0 {
				t.Fatalf("queued %d (%v)", len(ws), err)
			}
		})
	}
	if hook.count() != 0 {
		t.Fatal("receiver was called")
	}
}

// TestOrderWebhookAfterHostedPayment: an order the buyer pays on the
// hosted page still reaches the platform that created the checkout.
func TestOrderWebhookAfterHostedPayment(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	e := newEnv(t, &envOptions{dev: true})
	e.agent.set(func(a *agentServer) { a.webhook = hook.srv.URL + "/hooks" })
	c := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("escalate_token"))
	esc := decode[ucp.Checkout](t, b)
	e.payOnHostedPage(esc.ContinueURL)
	if n, err := e.svc.DeliverWebhooks(t.Context()); err != nil || n != 1 {
		t.Fatalf("delivered %d (%v)", n, err)
	}
}
