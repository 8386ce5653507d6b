package oauth_test

// Regression tests from the security review of the restructured OAuth
// server: each failed before its fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// TestReviewHangupIsNotAnError: a caller that goes away cancels the
// request's context, which fails the store call in flight; that is logged
// at debug, not as a server error anyone can flood the log with.
func TestReviewHangupIsNotAnError(t *testing.T) {
	t.Parallel()
	log := &levels{}
	e := newEnv(t, func(c *oauth.Config) { c.Logger = slog.New(log) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := url.Values{"response_type": {"code"}, "client_id": {agentID}, "redirect_uri": {"http://127.0.0.1/callback"}, "state": {"s"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	r := httptest.NewRequestWithContext(ctx, "GET", oauth.PathAuthorize+"?"+q.Encode(), nil)
	e.as.ServeHTTP(httptest.NewRecorder(), r)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {agentID}, "code": {"x"}, "code_verifier": {strings.Repeat("a", 43)}}
	r = httptest.NewRequestWithContext(ctx, "POST", oauth.PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	e.as.ServeHTTP(httptest.NewRecorder(), r)
	if log.errors() {
		t.Fatal("a caller hanging up was logged as an error")
	}
	if log.n == 0 {
		t.Fatal("nothing logged: the store call did not fail as the test expects")
	}
}

// TestReviewLongState: state and resource come back in the page and the
// redirect, so they are bounded.
func TestReviewLongState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, k := range []string{"state", "resource"} {
		q := url.Values{"response_type": {"code"}, "client_id": {agentID}, "redirect_uri": {"http://127.0.0.1/callback"}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		q.Set(k, "https://a.example/"+strings.Repeat("x", 4096))
		status, _, body, res := newBrowser(t).open(e.url(oauth.PathAuthorize) + "?" + q.Encode())
		if status != 400 || res.Header.Get("Location") != "" || !strings.Contains(body, "limited to") {
			t.Errorf("%s of 4 KiB: %d", k, status)
		}
	}
}

// TestReviewCIMDSlotsPerNetwork: one network naming slow documents holds
// at most a few fetch slots; the next gets a 503 page at once.
func TestReviewCIMDSlotsPerNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	var mu sync.Mutex
	started := 0
	arrived := make(chan struct{}, 16)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		started++
		mu.Unlock()
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer free()
	authURL := func(id string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1/cb"}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		return e.url(oauth.PathAuthorize) + "?" + q.Encode()
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { newBrowser(t).open(authURL(fmt.Sprintf("%s/c%d.json", slow.URL, i))) })
	}
	for range 4 {
		<-arrived
	}
	status, _, body, _ := newBrowser(t).open(authURL(slow.URL + "/c9.json"))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Errorf("a fifth slow fetch from one network: %d", status)
	}
	free()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if started != 4 {
		t.Errorf("%d fetches reached the document host, want 4", started)
	}
}

// TestReviewCIMDPageShowsNoDocumentText: reasons name a document's
// entries by position; the author's text never appears on our page.
func TestReviewCIMDPageShowsNoDocumentText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const lure = "Your account is locked. Call 1-555-0100 or sign in at evil.example/unlock"
	var docURL string
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := map[string]any{"client_id": docURL, "redirect_uris": []string{"http://127.0.0.1/cb", lure}}
		if r.URL.Path == "/auth.json" {
			d["redirect_uris"] = []string{"http://127.0.0.1/cb"}
			d["token_endpoint_auth_method"] = lure
		}
		json.NewEncoder(w).Encode(d)
	}))
	defer doc.Close()
	for _, path := range []string{"/client.json", "/auth.json"} {
		docURL = doc.URL + path
		q := url.Values{"response_type": {"code"}, "client_id": {docURL}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		status, _, body, _ := newBrowser(t).open(e.url(oauth.PathAuthorize) + "?" + q.Encode())
		if status != 400 || strings.Contains(body, "locked") {
			t.Errorf("%s: %d, the page shows the document's text", path, status)
		}
	}
}

// TestReviewPublicClientBucketPerNetwork: a public client "authenticates"
// by naming its id, so requests that prove nothing (junk refresh tokens)
// never charge its bucket, from any network; only the per-IP limit
// applies to them (TestPublicClientBucketNeedsProof has the full story).
// A confidential client's bucket stays per client, whatever the network.
func TestReviewPublicClientBucketPerNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DisableRateLimits = false
		c.RateLimits = oauth.RateLimits{PerClient: oauth.RateLimit{Rate: 0.001, Burst: 3}, PerIP: oauth.RateLimit{Rate: 1e6, Burst: 1e6}}
	})
	post := func(ip string, form url.Values) int {
		r := httptest.NewRequest("POST", oauth.PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		e.as.ServeHTTP(w, r)
		return w.Code
	}
	junk := url.Values{"grant_type": {"refresh_token"}, "client_id": {agentID}, "refresh_token": {"junk"}}
	for _, ip := range []string{"203.0.113.9", "198.51.100.7"} {
		for i := range 6 {
			if code := post(ip, junk); code == http.StatusTooManyRequests {
				t.Fatalf("junk refresh %d from %s charged the public client's bucket", i, ip)
			}
		}
	}
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}}
	for range 3 {
		post("203.0.113.9", cc)
	}
	if code := post("198.51.100.7", cc); code != http.StatusTooManyRequests {
		t.Fatalf("a confidential client's bucket is per network: %d", code)
	}
}
