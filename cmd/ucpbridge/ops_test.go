package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// syncBuffer is a bytes.Buffer the server's goroutines may log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a command started in process by startCmd.
type running struct {
	base   string // the first http://127.0.0.1:port URL printed
	banner *syncBuffer
	logs   *syncBuffer
	stop   func() error // cancels the command's context and waits for it
}

// startCmd runs `ucpbridge args…` in process until the test ends and
// waits for its first stdout line (printed once it listens).
func startCmd(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{banner: &syncBuffer{}, logs: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, r.logs)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("%v: %v (logs: %s)", args, err, r.logs)
	}
	r.banner.Write([]byte(line))
	go io.Copy(r.banner, br)
	r.base = regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(line)
	if r.base == "" {
		r.base = "http://" + regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(line)
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(20 * time.Second):
				stopErr = fmt.Errorf("%v did not stop", args)
			}
		})
		return stopErr
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func startDev(t *testing.T, extra ...string) *running {
	return startCmd(t, append([]string{"dev", "--addr", "127.0.0.1:0", "--bridge-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--no-rate-limit"}, extra...)...)
}

// harness points authservertest's browser helpers at a running dev.
func harness(base string) *authservertest.Platform {
	return &authservertest.Platform{URL: base, AuthorizeURL: base + oauth.PathAuthorize, TokenURL: base + oauth.PathToken,
		MetadataURL: base + oauth.PathMetadata, PlatformID: authserver.DemoPlatformID, PlatformKey: authserver.DemoPlatformKey,
		MerchantID: authserver.DemoMerchantID, MerchantSecret: authserver.DemoMerchantSecret,
		AgentClientID: authserver.DemoAgentClientID, AgentRedirect: "http://127.0.0.1/callback",
		BuyerID: authserver.DemoBuyerID, BuyerEmail: authserver.DemoBuyerEmail, BuyerPassword: authserver.DemoBuyerPassword}
}

// do sends one request; hdr holds header name, value pairs.
func do(t *testing.T, method, u, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

var idemSeq struct {
	sync.Mutex
	n int
}

func idemKey() string {
	idemSeq.Lock()
	defer idemSeq.Unlock()
	idemSeq.n++
	return fmt.Sprintf("ops-test-%d-%d", time.Now().UnixNano(), idemSeq.n)
}

const agentHeader = `profile="http://127.0.0.1:1/.well-known/ucp"` // dev: unreachable profiles are tolerated

// buy creates a flower-shop checkout and completes it with cred (header
// pairs) and returns the completion's status and body.
func buy(t *testing.T, base string, qty int, cred ...string) (int, string) {
	t.Helper()
	h := append([]string{"UCP-Agent", agentHeader, "Idempotency-Key", idemKey()}, cred...)
	code, _, b := do(t, "POST", base+"/s/flower-shop/checkout-sessions",
		`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":`+strconv.Itoa(qty)+`}],"shipping_address":{"country":"FR","postal_code":"75011"}}`, h...)
	var c struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(b), &c) != nil {
		t.Fatalf("create checkout: %d %s", code, b)
	}
	h[3] = idemKey()
	code, _, b = do(t, "POST", base+"/s/flower-shop/checkout-sessions/"+c.ID+"/complete",
		`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`, h...)
	return code, b
}

// metric reads one sample from /metrics; -1 when absent.
func metric(t *testing.T, metricsURL, name string, labels ...string) float64 {
	t.Helper()
	code, _, body := do(t, "GET", metricsURL, "")
	if code != 200 {
		t.Fatalf("metrics: %d %s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return v
		}
	}
	return -1
}

// TestMetrics: dev serves /metrics on its listener; the counters move
// with tokens, completions, allowance refusals, webhook deliveries and
// requests (labelled by route pattern, not by path).
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	ctx := context.Background()
	m := d.base + "/metrics"

	// A token (client_credentials) and a webhook receiver for the
	// merchant's store.
	cc := &clientcredentials.Config{ClientID: authserver.DemoMerchantID, ClientSecret: authserver.DemoMerchantSecret,
		TokenURL: d.base + oauth.PathToken, Scopes: []string{"orders:read"}}
	mtok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(t, m, "ucpbridge_tokens_issued_total", `grant_type="client_credentials"`); v != 1 {
		t.Fatalf("tokens issued %v", v)
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer hook.Close()
	if code, _, b := do(t, "PUT", d.base+"/s/flower-shop/settings/webhooks", `{"order_events_url":"`+hook.URL+`/orders"}`,
		"Authorization", "Bearer "+mtok.AccessToken); code != 200 {
		t.Fatalf("webhook settings: %d %s", code, b)
	}

	// A completed order with the platform key.
	if code, b := buy(t, d.base, 1, "X-API-Key", authserver.DemoPlatformKey); code != 200 || !strings.Contains(b, `"order"`) {
		t.Fatalf("complete: %d %s", code, b)
	}
	if v := metric(t, m, "ucpbridge_checkout_completions_total", `outcome="completed"`); v != 1 {
		t.Fatalf("completions %v", v)
	}

	// A buyer over the allowance (50 EUR per order): refused, counted.
	tok, err := harness(d.base).BuyerToken(ctx, "purchase:complete", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(t, m, "ucpbridge_tokens_issued_total", `grant_type="authorization_code"`); v != 1 {
		t.Fatalf("code tokens %v", v)
	}
	if code, b := buy(t, d.base, 9, "Authorization", "Bearer "+tok.AccessToken); code == 200 && strings.Contains(b, `"order"`) {
		t.Fatalf("over the allowance: %d %s", code, b)
	}
	if v := metric(t, m, "ucpbridge_allowance_refusals_total"); v != 1 {
		t.Fatalf("allowance refusals %v", v)
	}
	if v := metric(t, m, "ucpbridge_checkout_completions_total", `outcome="refused"`); v != 1 {
		t.Fatalf("refused completions %v", v)
	}

	// Requests are labelled by the pattern that matched.
	if v := metric(t, m, "ucpbridge_http_requests_total", `route="POST /s/{slug}/checkout-sessions/{id}/complete"`, `code="200"`); v < 1 {
		t.Fatalf("route-labelled requests %v:\n%s", v, grepMetric(t, m, "ucpbridge_http_requests_total"))
	}
	do(t, "GET", d.base+"/no/such/path/"+idemKey(), "")
	if body := grepMetric(t, m, "ucpbridge_http_requests_total"); strings.Contains(body, "/no/such/path") {
		t.Fatalf("a raw path became a label:\n%s", body)
	}

	// The order's webhook is delivered by the background worker (every
	// second).
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, m, "ucpbridge_webhook_deliveries_total", `result="delivered"`) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no webhook delivery counted:\n%s", grepMetric(t, m, "ucpbridge_webhook"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepMetric(t *testing.T, u, name string) string {
	_, _, body := do(t, "GET", u, "")
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestNoSecretsLogged drives requests carrying every kind of secret
// through serve-style JSON logs at debug level (the most verbose) and
// greps the whole log for them: passwords, client secrets, API keys,
// authorization codes, access and refresh tokens, cookies.
func TestNoSecretsLogged(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--log-format", "json", "--log-level", "debug")
	ctx := context.Background()
	h := harness(d.base)

	var secrets []string
	// The consent flow: a password posted, a code in a redirect, tokens.
	conf := h.OAuth2Config("purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	loc, err := h.SignIn(ctx, conf.AuthCodeURL("state-xyz", oauth2.S256ChallengeOption(verifier)), nil)
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, authserver.DemoBuyerPassword, code, verifier, tok.AccessToken, tok.RefreshToken)
	// The code again (a replay, refused), the refresh token used.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("replayed code accepted")
	}
	// A wrong password (the throttled path logs), with a cookie.
	wrong := "wrong-password-" + idemKey()
	form := url.Values{"email": {authserver.DemoBuyerEmail}, "password": {wrong}}
	do(t, "POST", d.base+oauth.PathAuthorize+"?"+url.Values{"client_id": {"demo-agent"}}.Encode(), form.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Cookie", "ucpb_session=cookie-secret-value-123")
	secrets = append(secrets, wrong, "cookie-secret-value-123")
	// Client secrets: the merchant's, and a wrong one; the platform key,
	// and a wrong one; a bogus bearer.
	cc := &clientcredentials.Config{ClientID: authserver.DemoMerchantID, ClientSecret: authserver.DemoMerchantSecret,
		TokenURL: d.base + oauth.PathToken, Scopes: []string{"orders:read"}}
	mtok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc.ClientSecret = "ucpb_cs_wrong-secret-" + idemKey()
	cc.Token(ctx)
	secrets = append(secrets, authserver.DemoMerchantSecret, cc.ClientSecret, mtok.AccessToken)
	buy(t, d.base, 1, "X-API-Key", authserver.DemoPlatformKey)
	badKey := authserver.DemoPlatformID + ".ucpb_cs_wrong-" + idemKey()
	do(t, "GET", d.base+"/s/flower-shop/orders/nope", "", "X-API-Key", badKey)
	badBearer := "ucpb_at_bogus-" + idemKey()
	do(t, "GET", d.base+"/s/flower-shop/orders/nope", "", "Authorization", "Bearer "+badBearer)
	secrets = append(secrets, authserver.DemoPlatformSecret, strings.TrimPrefix(badKey, authserver.DemoPlatformID+"."), badBearer)
	// Revocation and introspection with secrets in the form.
	do(t, "POST", d.base+"/ucp/oauth2/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {"demo-agent"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	// A buyer call with the (now revoked) bearer.
	do(t, "POST", d.base+"/s/flower-shop/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`,
		"Authorization", "Bearer "+tok.AccessToken, "UCP-Agent", agentHeader, "Idempotency-Key", idemKey())

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"route":"POST /ucp/oauth2/token"`) ||
		!strings.Contains(logs, `"request_id":`) {
		t.Fatalf("no access log lines:\n%s", logs)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the list")
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %q", s)
		}
	}
	for _, word := range []string{"Authorization", "X-Api-Key", "X-API-Key", "Cookie", "password="} {
		if strings.Contains(logs, word) {
			t.Errorf("the log mentions %q", word)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}
