package ucpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestWithCredentialsCopiesEveryField keeps Client.withCredentials in step
// with Client: a field added to Client must be copied (or listed here).
func TestWithCredentialsCopiesEveryField(t *testing.T) {
	c, err := New(Config{BaseURL: "https://api.example", APIKey: "k", AgentProfile: "https://agent.example/.well-known/ucp",
		UCPVersion: "2026-04-08", OnAuthChallenge: func(context.Context, *Challenge) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	c.signer = &httpsig.Signer{} // identity only: every field non-zero
	c.imageClient = &http.Client{}
	c.respSig = newRespVerifier(VerifyResponsesIfKeys)
	buyer := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "b"})
	d := c.withCredentials("other", buyer)
	if d.apiKey != "other" || d.buyer != buyer {
		t.Fatal("credentials not replaced")
	}
	skip := map[string]bool{"apiKey": true, "buyer": true, "rpcID": true}
	cv, dv := reflect.ValueOf(c).Elem(), reflect.ValueOf(d).Elem()
	for i := range cv.NumField() {
		f := cv.Type().Field(i)
		if skip[f.Name] {
			continue
		}
		a, b := cv.Field(i), dv.Field(i)
		if a.IsZero() {
			t.Errorf("give Client.%s a non-zero value in this test", f.Name)
		}
		same := a.Kind() == reflect.Func && a.IsNil() == b.IsNil() && (a.IsNil() || a.Pointer() == b.Pointer())
		if a.Kind() != reflect.Func {
			same = reflect.DeepEqual(reflect.NewAt(f.Type, a.Addr().UnsafePointer()).Elem().Interface(),
				reflect.NewAt(f.Type, b.Addr().UnsafePointer()).Elem().Interface())
		}
		if !same {
			t.Errorf("withCredentials does not copy Client.%s", f.Name)
		}
	}
}

type restSeen struct {
	method, path string
	header       http.Header
	body         string
}

// restRecorder is a business that serves a profile whose REST endpoint is
// {URL}/api and answers every call with an empty checkout.
func restRecorder(t *testing.T) (*httptest.Server, func() []restSeen) {
	var mu sync.Mutex
	var log []restSeen
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/ucp" {
			w.Write([]byte(`{"ucp":{"version":"2026-04-08","services":{"dev.ucp.shopping":[{"version":"2026-04-08","transport":"rest","endpoint":"` +
				srv.URL + `/api/"}]},"capabilities":{"dev.ucp.shopping.checkout":[{"version":"2026-04-08"}]},"payment_handlers":{}}}`))
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		log = append(log, restSeen{r.Method, r.URL.EscapedPath(), r.Header.Clone(), string(b)})
		mu.Unlock()
		w.Write([]byte(`{"ucp":{"version":"2026-04-08"},"id":"x","products":[],"product":{"id":"p"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []restSeen {
		mu.Lock()
		defer mu.Unlock()
		out := log
		log = nil
		return out
	}
}

// TestBusinessRESTRouting: every REST operation's method, path, body,
// credential headers and idempotency key, on a business of the same
// origin as BaseURL (so the platform key and the buyer token may go).
func TestBusinessRESTRouting(t *testing.T) {
	srv, take := restRecorder(t)
	ctx := context.Background()
	newBiz := func(buyer bool) *Business {
		cfg := Config{BaseURL: srv.URL, APIKey: "pk", AgentProfile: "https://agent.example/.well-known/ucp"}
		if buyer {
			cfg.Buyer = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bt"})
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Business(ctx, srv.URL+"/.well-known/ucp", &BusinessOptions{AllowInsecureLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		if b.Endpoint() != srv.URL+"/api" {
			t.Fatalf("endpoint %q", b.Endpoint())
		}
		return b
	}
	obj := map[string]any{"line_items": []any{}}
	coupon := map[string]any{"context": map[string]any{"eligibility": []string{couponClaim}}}
	type tc struct {
		name        string
		buyer       bool
		call        func(*Business) error
		method      string
		path        string
		key, bearer bool
		idem        bool
		body        bool
	}
	raw := func(f func(*Business) (json.RawMessage, error)) func(*Business) error {
		return func(b *Business) error { _, err := f(b); return err }
	}
	cases := []tc{
		{name: "search", call: func(b *Business) error { _, err := b.SearchCatalog(ctx, nil); return err }, method: "POST", path: "/api/catalog/search", key: true, body: true},
		{name: "lookup", call: func(b *Business) error { _, err := b.LookupCatalog(ctx, nil); return err }, method: "POST", path: "/api/catalog/lookup", key: true, body: true},
		{name: "product", call: func(b *Business) error { _, err := b.GetProduct(ctx, nil); return err }, method: "POST", path: "/api/catalog/product", key: true, body: true},
		{name: "create cart", call: raw(func(b *Business) (json.RawMessage, error) { return b.CreateCart(ctx, obj) }), method: "POST", path: "/api/carts", key: true, idem: true, body: true},
		{name: "get cart", call: raw(func(b *Business) (json.RawMessage, error) { return b.GetCart(ctx, "c/1") }), method: "GET", path: "/api/carts/c%2F1", key: true},
		{name: "update cart", call: raw(func(b *Business) (json.RawMessage, error) { return b.UpdateCart(ctx, "c1", obj) }), method: "PUT", path: "/api/carts/c1", key: true, idem: true, body: true},
		{name: "cancel cart", call: raw(func(b *Business) (json.RawMessage, error) { return b.CancelCart(ctx, "c1") }), method: "POST", path: "/api/carts/c1/cancel", key: true, idem: true},
		{name: "create checkout", call: raw(func(b *Business) (json.RawMessage, error) { return b.CreateCheckout(ctx, obj) }), method: "POST", path: "/api/checkout-sessions", key: true, idem: true, body: true},
		{name: "get checkout", call: raw(func(b *Business) (json.RawMessage, error) { return b.GetCheckout(ctx, "k1") }), method: "GET", path: "/api/checkout-sessions/k1", key: true},
		{name: "update checkout", call: raw(func(b *Business) (json.RawMessage, error) { return b.UpdateCheckout(ctx, "k1", obj) }), method: "PUT", path: "/api/checkout-sessions/k1", key: true, idem: true, body: true},
		{name: "update checkout coupon", buyer: true, call: raw(func(b *Business) (json.RawMessage, error) { return b.UpdateCheckout(ctx, "k1", coupon) }), method: "PUT", path: "/api/checkout-sessions/k1", key: true, bearer: true, idem: true, body: true},
		{name: "complete card", call: raw(func(b *Business) (json.RawMessage, error) { return b.CompleteCheckout(ctx, "k1", obj) }), method: "POST", path: "/api/checkout-sessions/k1/complete", key: true, idem: true, body: true},
		{name: "complete with buyer", buyer: true, call: raw(func(b *Business) (json.RawMessage, error) { return b.CompleteCheckout(ctx, "k1", obj) }), method: "POST", path: "/api/checkout-sessions/k1/complete", bearer: true, idem: true, body: true},
		{name: "complete crypto", buyer: true, call: raw(func(b *Business) (json.RawMessage, error) { return b.CompleteCheckout(ctx, "k1", obj, WithCrypto()) }), method: "POST", path: "/api/checkout-sessions/k1/complete", bearer: true, idem: true, body: true},
		{name: "cancel checkout", call: raw(func(b *Business) (json.RawMessage, error) { return b.CancelCheckout(ctx, "k1") }), method: "POST", path: "/api/checkout-sessions/k1/cancel", key: true, idem: true},
		{name: "get order", buyer: true, call: raw(func(b *Business) (json.RawMessage, error) { return b.GetOrder(ctx, "o1") }), method: "GET", path: "/api/orders/o1", key: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBiz(tc.buyer)
			take()
			if err := tc.call(b); err != nil {
				t.Fatal(err)
			}
			got := take()
			if len(got) != 1 {
				t.Fatalf("%d requests", len(got))
			}
			r := got[0]
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("%s %s, want %s %s", r.method, r.path, tc.method, tc.path)
			}
			if k := r.header.Get("X-API-Key"); (k == "pk") != tc.key || (k != "" && k != "pk") {
				t.Errorf("X-API-Key %q, want present %v", k, tc.key)
			}
			if a := r.header.Get("Authorization"); (a == "Bearer bt") != tc.bearer || (a != "" && a != "Bearer bt") {
				t.Errorf("Authorization %q, want present %v", a, tc.bearer)
			}
			if tc.bearer && !tc.key && r.header.Get("X-API-Key") != "" {
				t.Error("buyer-bound call carried X-API-Key")
			}
			if (r.header.Get("Idempotency-Key") != "") != tc.idem {
				t.Errorf("Idempotency-Key %q, want present %v", r.header.Get("Idempotency-Key"), tc.idem)
			}
			if (r.body != "") != tc.body || (tc.body && r.header.Get("Content-Type") != "application/json") {
				t.Errorf("body %q content type %q, want body %v", r.body, r.header.Get("Content-Type"), tc.body)
			}
			if r.header.Get("UCP-Agent") != `profile="https://agent.example/.well-known/ucp"` || len(r.header.Get("Request-Id")) != 36 {
				t.Errorf("UCP headers: %v", r.header)
			}
		})
	}

	// A buyer-bound call without a buyer fails before any I/O.
	b := newBiz(false)
	take()
	_, err := b.CompleteCheckout(ctx, "k1", obj, WithCrypto())
	var br *BuyerRequiredError
	if !errors.As(err, &br) || br.Op != "rest.complete_checkout" {
		t.Fatalf("crypto without buyer: %v", err)
	}
	if _, err := b.GetCheckout(ctx, ""); err == nil {
		t.Error("empty id accepted")
	}
	if n := len(take()); n != 0 {
		t.Errorf("%d requests sent for local failures", n)
	}
	// A profile hosted elsewhere whose REST endpoint names the platform's
	// origin does not inherit the platform's credentials.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ucp":{"version":"2026-04-08","services":{"dev.ucp.shopping":[{"version":"2026-04-08","transport":"rest","endpoint":"` +
			srv.URL + `/api"}]},"payment_handlers":{}}}`))
	}))
	defer other.Close()
	bc, err := New(Config{BaseURL: srv.URL, APIKey: "pk", AgentProfile: "https://agent.example/.well-known/ucp",
		Buyer: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bt"})})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := bc.Business(ctx, other.URL+"/.well-known/ucp", &BusinessOptions{AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	take()
	if _, err := ob.CompleteCheckout(ctx, "k1", obj); err != nil {
		t.Fatal(err)
	}
	if got := take(); len(got) != 1 || got[0].header.Get("X-API-Key") != "" || got[0].header.Get("Authorization") != "" || ob.HasBuyerToken() {
		t.Errorf("foreign profile inherited platform credentials: %+v", got)
	}

	// A non-object body is refused locally.
	if _, err := b.CreateCheckout(ctx, []int{1}); err == nil || !strings.Contains(err.Error(), "object") {
		t.Errorf("array body: %v", err)
	}
}

// TestBusinessFlowerShop: the platform's own store, found by its profile
// URL, over REST with the platform key (same origin as BaseURL).
func TestBusinessFlowerShop(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	// Responses must be signed by the store (REST calls to the
	// platform's own stores are store calls for the verifier).
	c, err := New(Config{BaseURL: p.URL, APIKey: p.PlatformKey, AgentProfile: "http://127.0.0.1:9/.well-known/ucp", UCPVersion: "2026-08-25",
		VerifyResponses: VerifyResponsesRequired})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := c.Business(ctx, p.StoreURL("flower-shop")+"/.well-known/ucp", &BusinessOptions{AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Endpoint() != p.StoreURL("flower-shop") {
		t.Fatalf("endpoint %q", b.Endpoint())
	}
	sr, err := b.SearchCatalog(ctx, &ucp.SearchRequest{Query: "roses"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Products) == 0 || len(sr.Products[0].Variants) == 0 {
		t.Fatalf("no products: %+v", sr)
	}
	raw, err := b.CreateCheckout(ctx, map[string]any{"line_items": []any{map[string]any{"item": map[string]string{"id": sr.Products[0].Variants[0].ID}, "quantity": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var co ucp.Checkout
	if err := json.Unmarshal(raw, &co); err != nil || co.ID == "" || IsUCPError(raw) {
		t.Fatalf("create: %s, %v", raw, err)
	}
	got, err := b.GetCheckout(ctx, co.ID)
	if err != nil || !strings.Contains(string(got), co.ID) {
		t.Fatalf("get: %s, %v", got, err)
	}

	// The same call with the response altered on the way is refused.
	tc, err := New(Config{BaseURL: p.URL, APIKey: p.PlatformKey, AgentProfile: "http://127.0.0.1:9/.well-known/ucp", UCPVersion: "2026-08-25",
		VerifyResponses: VerifyResponsesRequired, HTTPClient: &http.Client{Transport: tamperCheckouts{http.DefaultTransport}}})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := tc.Business(ctx, p.StoreURL("flower-shop")+"/.well-known/ucp", &BusinessOptions{AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tb.GetCheckout(ctx, co.ID)
	var se *ResponseSignatureError
	if !errors.As(err, &se) || se.Op != "rest.get_checkout" {
		t.Fatalf("tampered REST response: %v, want *ResponseSignatureError", err)
	}
}

// tamperCheckouts rewrites checkout response bodies in transit.
type tamperCheckouts struct{ next http.RoundTripper }

func (t tamperCheckouts) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/checkout-sessions/") {
		return res, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	b = bytes.Replace(b, []byte(`"currency"`), []byte(`"currencY"`), 1)
	res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	res.Header.Del("Content-Length")
	return res, nil
}

// TestWithBuyer: WithBuyer swaps the buyer only and keeps the platform key
// and the shared pipeline.
func TestWithBuyer(t *testing.T) {
	c, err := New(Config{BaseURL: "https://api.example", APIKey: "k", AgentProfile: "https://agent.example/.well-known/ucp"})
	if err != nil {
		t.Fatal(err)
	}
	buyer := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "b"})
	d := c.WithBuyer(buyer)
	if d.apiKey != "k" || d.buyer != buyer || d.rc != c.rc || !d.HasBuyerToken() || c.HasBuyerToken() {
		t.Fatalf("WithBuyer: %+v", d)
	}
	if c.WithBuyer(nil).HasBuyerToken() {
		t.Fatal("WithBuyer(nil) has a buyer")
	}
}
