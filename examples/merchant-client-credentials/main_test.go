package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// delivery is one webhook request as the platform sent it.
type delivery struct {
	header http.Header
	body   []byte
}

// tap fronts the receiver like a tunnel: the platform calls the tap's URL
// (so the signature covers it), the tap forwards to the receiver and keeps
// a copy of every delivery.
type tap struct {
	srv    *httptest.Server
	mu     sync.Mutex
	target string
	seen   []delivery
}

func newTap(t *testing.T) *tap {
	tp := &tap{}
	tp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tp.mu.Lock()
		tp.seen = append(tp.seen, delivery{r.Header.Clone(), body})
		target := tp.target
		tp.mu.Unlock()
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	}))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *tap) first() delivery {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.seen[0]
}

// lineWriter hands each output line to a channel.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan string
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf.Write(p)
	for {
		line, err := lw.buf.ReadString('\n')
		if err != nil {
			lw.buf.WriteString(line)
			return len(p), nil
		}
		lw.ch <- strings.TrimSuffix(line, "\n")
	}
}

func waitLine(t *testing.T, ch <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-ch:
			t.Log(l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line matching %s", re)
		}
	}
}

// TestRun runs the merchant integration against the platform in process:
// it registers its webhook (behind a tap, as behind a tunnel), an order is
// placed at flower-shop, and the signed webhook arrives, verifies and
// the order is read with the merchant's token. A delivery whose body was
// changed in transit is refused (401) and not acted on; so are an
// unsigned one and one signed over another URL. On exit the previous
// webhook setting is back.
func TestRun(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	tp := newTap(t)
	lw := &lineWriter{ch: make(chan string, 64)}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := config{BaseURL: p.URL, ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, Store: "flower-shop",
		Listen: "127.0.0.1:0", PublicURL: tp.srv.URL + "/hooks/orders",
		OnReady: func(addr, _ string) {
			tp.mu.Lock()
			tp.target = "http://" + addr
			tp.mu.Unlock()
			close(ready)
		}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, lw) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	waitLine(t, lw.ch, regexp.MustCompile(`^webhook http://127\.0\.0\.1:\d+/hooks/orders registered for flower-shop \(was unset\)$`))

	id := placeOrder(t, p)
	m := waitLine(t, lw.ch, regexp.MustCompile(`^order (\S+) verified \(webhook \S+\): 1 line\(s\), 41\.90 EUR$`))
	if m[1] != id {
		t.Fatalf("webhook for %s, placed %s", m[1], id)
	}

	d := tp.first()
	send := func(h http.Header, body []byte, path string) int {
		req, _ := http.NewRequest(http.MethodPost, tp.srv.URL+path, bytes.NewReader(body))
		req.Header = h.Clone()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// The same delivery again (a retry): acknowledged, not handled twice.
	if code := send(d.header, d.body, "/hooks/orders"); code != http.StatusNoContent {
		t.Fatalf("retry: HTTP %d", code)
	}
	// A body changed in transit: the recomputed digest differs.
	tampered := bytes.Replace(d.body, []byte(`"amount":4190`), []byte(`"amount":1`), 1)
	if bytes.Equal(tampered, d.body) {
		t.Fatalf("no total to tamper with in %s", d.body)
	}
	if code := send(d.header, tampered, "/hooks/orders"); code != http.StatusUnauthorized {
		t.Fatalf("tampered body: HTTP %d", code)
	}
	waitLine(t, lw.ch, regexp.MustCompile(`^refused webhook \S+: .*digest`))
	// A tampered body with a digest recomputed to match: the signature
	// covers the digest.
	h := d.header.Clone()
	h.Set("Content-Digest", digest(tampered))
	if code := send(h, tampered, "/hooks/orders"); code != http.StatusUnauthorized {
		t.Fatalf("re-digested body: HTTP %d", code)
	}
	waitLine(t, lw.ch, regexp.MustCompile(`^refused webhook `))
	// No signature at all.
	h = d.header.Clone()
	h.Del("Signature")
	h.Del("Signature-Input")
	if code := send(h, d.body, "/hooks/orders"); code != http.StatusUnauthorized {
		t.Fatalf("unsigned: HTTP %d", code)
	}
	waitLine(t, lw.ch, regexp.MustCompile(`^refused webhook .*signature_missing|^refused webhook .*no Signature`))

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := webhookSettingOf(t, p); got != `{"order_events_url":null}` {
		t.Fatalf("after exit: %s", got)
	}
}

// TestRunBadSecret: a wrong client secret stops before anything is
// registered, with the OAuth error.
func TestRunBadSecret(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	err := run(t.Context(), config{BaseURL: p.URL, ClientID: p.MerchantID, ClientSecret: "wrong", Store: "flower-shop",
		Listen: "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("%v", err)
	}
}

// TestRunWrongStore: the token is bound to flower-shop; another store's
// settings are refused and the error says so.
func TestRunWrongStore(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	err := run(t.Context(), config{BaseURL: p.URL, ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, Store: "kyoto-tea",
		Listen: "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "wrong_store") {
		t.Fatalf("%v", err)
	}
}

func digest(body []byte) string {
	h := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(h[:]) + ":"
}

// placeOrder buys one bouquet at flower-shop with the platform key and
// the sandbox card token (the README's purchase by hand).
func placeOrder(t *testing.T, p *authservertest.Platform) string {
	t.Helper()
	call := func(path, body string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, p.StoreURL("flower-shop")+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", p.PlatformKey)
		req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:9/.well-known/ucp"`)
		k := make([]byte, 16)
		_, _ = rand.Read(k)
		req.Header.Set("Idempotency-Key", hex.EncodeToString(k))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		b, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(b, &v); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s: HTTP %d %s", path, res.StatusCode, b)
		}
		return v
	}
	co := call("/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}],`+
		`"fulfillment":{"methods":[{"type":"shipping","destinations":[{"street_address":"10 Rue de Rivoli","address_locality":"Paris","postal_code":"75001","address_country":"FR"}]}]}}`)
	done := call("/checkout-sessions/"+co["id"].(string)+"/complete",
		`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`)
	order, _ := done["order"].(map[string]any)
	id, _ := order["id"].(string)
	if id == "" {
		t.Fatalf("no order: %v", done)
	}
	return id
}

func webhookSettingOf(t *testing.T, p *authservertest.Platform) string {
	t.Helper()
	cc := &clientcredentials.Config{ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, TokenURL: p.TokenURL, Scopes: []string{"orders:read"}}
	res, err := cc.Client(t.Context()).Get(p.StoreURL("flower-shop") + "/settings/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return strings.TrimSpace(string(b))
}
