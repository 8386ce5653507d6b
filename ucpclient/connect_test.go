package ucpclient_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// connectFakeAS is a minimal RFC 8414 authorization server: authorize
// redirects at once with a code, state and iss (iss overridable); token
// checks PKCE S256, redirect_uri and resource.
type connectFakeAS struct {
	*httptest.Server
	wrongIss  bool
	mu        sync.Mutex
	challenge string // code_challenge of the last authorization request
	redirect  string
	resource  string // resource on authorize
	tokenForm url.Values
}

func newConnectFakeAS(t *testing.T) *connectFakeAS {
	as := &connectFakeAS{}
	mux := http.NewServeMux()
	as.Server = httptest.NewServer(mux)
	t.Cleanup(as.Close)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize",
			"token_endpoint": as.URL + "/token", "code_challenge_methods_supported": []string{"S256"},
			"authorization_response_iss_parameter_supported": true})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("state") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		as.mu.Lock()
		as.challenge, as.redirect, as.resource = q.Get("code_challenge"), q.Get("redirect_uri"), q.Get("resource")
		as.mu.Unlock()
		iss := as.URL
		if as.wrongIss {
			iss = "https://evil.example"
		}
		v := url.Values{"code": {"the-code"}, "state": {q.Get("state")}, "iss": {iss}}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+v.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		as.mu.Lock()
		as.tokenForm = r.PostForm
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		ok := base64.RawURLEncoding.EncodeToString(sum[:]) == as.challenge && r.PostForm.Get("redirect_uri") == as.redirect &&
			r.PostForm.Get("code") == "the-code"
		as.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer","refresh_token":"rt","expires_in":3600}`)
	})
	return as
}

// connectFollow is an OpenBrowser for the fake server: it follows the
// authorization URL's redirect to the loopback listener, altering the
// redirect with tamper first when set.
func connectFollow(t *testing.T, tamper func(*url.URL)) func(string) error {
	return func(authURL string) error {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noRedirect.Get(authURL)
		if err != nil {
			return err
		}
		res.Body.Close()
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(loc.String(), "http://127.0.0.1:") {
			return fmt.Errorf("redirect to %s, not a 127.0.0.1 listener", loc)
		}
		if tamper != nil {
			tamper(loc)
		}
		res, err = http.Get(loc.String())
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
}

func TestConnectFakeAS(t *testing.T) {
	as := newConnectFakeAS(t)
	store := &ucpclient.MemoryTokenStore{}
	tok, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", Issuer: as.URL, AllowLoopback: true,
		Resource: "https://shop.example/account/mcp", OpenBrowser: connectFollow(t, nil), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at" || tok.RefreshToken != "rt" {
		t.Fatalf("token %+v", tok)
	}
	if saved, _ := store.Load(t.Context()); saved == nil || saved.RefreshToken != "rt" {
		t.Fatalf("stored %+v", saved)
	}
	if as.resource != "https://shop.example/account/mcp" || as.tokenForm.Get("resource") != as.resource {
		t.Fatalf("resource on authorize %q, on token %q", as.resource, as.tokenForm.Get("resource"))
	}
	if as.tokenForm.Get("client_id") != "agent" || as.tokenForm.Get("grant_type") != "authorization_code" {
		t.Fatalf("token form %v", as.tokenForm)
	}
	// The listener is closed once Connect returns.
	if _, err := http.Get(as.redirect); err == nil {
		t.Fatalf("listener %s still open", as.redirect)
	}
}

func TestConnectRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, code string
		wrongIss   bool
		tamper     func(*url.URL)
	}{
		{name: "state", code: "state_mismatch", tamper: func(u *url.URL) { q := u.Query(); q.Set("state", "forged"); u.RawQuery = q.Encode() }},
		{name: "iss", code: "iss_mismatch", wrongIss: true},
		{name: "missing iss", code: "iss_mismatch", tamper: func(u *url.URL) { q := u.Query(); q.Del("iss"); u.RawQuery = q.Encode() }},
		{name: "denied", code: "access_denied", tamper: func(u *url.URL) {
			q := u.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			u.RawQuery = q.Encode()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newConnectFakeAS(t)
			as.wrongIss = tc.wrongIss
			_, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", Issuer: as.URL, AllowLoopback: true,
				OpenBrowser: connectFollow(t, tc.tamper)})
			var ce *ucpclient.ConnectError
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("err %v, want a *ConnectError %s", err, tc.code)
			}
			if as.tokenForm != nil {
				t.Fatal("the code was exchanged after a refused redirect")
			}
		})
	}
}

func TestConnectRefusesServerWithoutS256(t *testing.T) {
	md := &ucpclient.AuthServerMetadata{Issuer: "https://auth.example", AuthorizationEndpoint: "https://auth.example/a", TokenEndpoint: "https://auth.example/t"}
	opened := false
	_, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", Metadata: md,
		OpenBrowser: func(string) error { opened = true; return nil }})
	var de *ucpclient.DiscoveryError
	if !errors.As(err, &de) || opened {
		t.Fatalf("err %v, browser opened %v", err, opened)
	}
}

func TestConnectTimesOut(t *testing.T) {
	as := newConnectFakeAS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var listener string
	_, err := ucpclient.Connect(ctx, ucpclient.ConnectOptions{ClientID: "agent", Issuer: as.URL, AllowLoopback: true,
		OpenBrowser: func(u string) error {
			pu, _ := url.Parse(u)
			listener = pu.Query().Get("redirect_uri")
			return nil // the buyer never comes back
		}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if _, err := http.Get(listener); err == nil {
		t.Fatalf("listener %s still open after the timeout", listener)
	}
}

func TestDiscoverAuthServerRefusals(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":"https://other.example","authorization_endpoint":"x","token_endpoint":"y"}`)
	})
	mux.HandleFunc("GET /prm-empty", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"resource":"r","authorization_servers":[]}`)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/account/mcp", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"resource":"https://elsewhere.example/account/mcp","authorization_servers":[%q]}`, "https://auth.example")
	})
	var de *ucpclient.DiscoveryError
	if _, err := ucpclient.DiscoverAuthServer(t.Context(), srv.Client(), "", srv.URL+"/.well-known/oauth-protected-resource/account/mcp"); !errors.As(err, &de) || !strings.Contains(err.Error(), "resource") {
		t.Fatalf("metadata for another resource: %v", err)
	}
	if _, err := ucpclient.DiscoverAuthServer(t.Context(), srv.Client(), srv.URL, ""); !errors.As(err, &de) || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("issuer mismatch: %v", err)
	}
	if _, err := ucpclient.DiscoverAuthServer(t.Context(), srv.Client(), "", srv.URL+"/prm-empty"); !errors.As(err, &de) {
		t.Fatalf("no authorization_servers: %v", err)
	}
	if _, err := ucpclient.DiscoverAuthServer(t.Context(), srv.Client(), "http://auth.example", ""); !errors.As(err, &de) {
		t.Fatalf("plain http issuer off this machine: %v", err)
	}
	// The default client refuses loopback (a challenge's URL is the
	// server's word, not the caller's).
	if _, err := ucpclient.DiscoverAuthServer(t.Context(), nil, srv.URL, ""); !errors.As(err, &de) {
		t.Fatalf("loopback through the default client: %v", err)
	}
}

// connectSignIn is an OpenBrowser that plays the buyer on the platform's
// real consent page and follows its redirect to Connect's listener.
func connectSignIn(t *testing.T, p *authservertest.Platform) func(string) error {
	return func(authURL string) error {
		loc, err := p.SignIn(t.Context(), authURL, nil)
		if err != nil {
			return err
		}
		res, err := http.Get(loc.String())
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
}

var resourceMetadataParam = regexp.MustCompile(`resource_metadata="([^"]+)"`)

// countingTransport counts token endpoint requests.
type countingTransport struct {
	n    atomic.Int32
	path string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == c.path {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestConnectAuthservertest(t *testing.T) {
	p := authservertest.Start(t, nil)
	ctx := t.Context()

	// A buyer call without a token: the 401's challenge names the
	// protected resource metadata, which leads to the authorization server.
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	res, err := http.Post(p.URL+"/account/mcp", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	m := resourceMetadataParam.FindStringSubmatch(res.Header.Get("WWW-Authenticate"))
	if res.StatusCode != http.StatusUnauthorized || m == nil {
		t.Fatalf("HTTP %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}

	store := &ucpclient.FileTokenStore{Path: filepath.Join(t.TempDir(), "buyer.json")}
	tok, err := ucpclient.Connect(ctx, ucpclient.ConnectOptions{ClientID: p.AgentClientID, ResourceMetadata: m[1],
		AllowLoopback: true, OpenBrowser: connectSignIn(t, p), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token %+v", tok)
	}
	// The token opens the account MCP server.
	call := func(access string) int {
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/account/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+access)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := call(tok.AccessToken); code == http.StatusUnauthorized {
		t.Fatalf("the signed-in token is refused: HTTP %d", code)
	}

	// The source refreshes against the real server: rotation persisted,
	// concurrent callers share one refresh.
	md, err := ucpclient.DiscoverAuthServer(ctx, http.DefaultClient, p.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{path: strings.TrimPrefix(md.TokenEndpoint, p.URL)}
	src, err := ucpclient.NewBuyerTokenSource(ctx, md.OAuth2Config(p.AgentClientID, ""), store,
		&ucpclient.BuyerTokenOptions{HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	toks := make([]*oauth2.Token, 16)
	for i := range toks {
		wg.Go(func() {
			tk, err := src.RefreshToken(ctx)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tk
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	refreshed := toks[0]
	if refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatal("RefreshToken returned the old token")
	}
	// Concurrent callers shared one refresh rather than each spending the
	// refresh token (the server's reuse detection would revoke the family).
	if n := ct.n.Load(); n != 1 {
		t.Fatalf("%d refresh requests for 16 concurrent callers", n)
	}
	saved, _ := store.Load(ctx)
	last, _ := src.Token()
	if saved.RefreshToken != last.RefreshToken || saved.AccessToken != last.AccessToken {
		t.Fatal("the rotated refresh token is not the stored one")
	}
	if code := call(last.AccessToken); code == http.StatusUnauthorized {
		t.Fatalf("the refreshed token is refused: HTTP %d", code)
	}
	// A refresh token the server does not know is a typed invalid_grant.
	// (A just-rotated one would get the server's grace-window answer.)
	stale := &ucpclient.MemoryTokenStore{}
	stale.Save(ctx, &oauth2.Token{RefreshToken: "not-a-refresh-token"})
	old, err := ucpclient.NewBuyerTokenSource(ctx, md.OAuth2Config(p.AgentClientID, ""), stale, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Token()
	var re *ucpclient.RefreshError
	if !errors.As(err, &re) || re.Code() != "invalid_grant" || !re.SignInRequired() {
		t.Fatalf("spent refresh token: %v", err)
	}
}

func TestConnectAuthservertestIssuer(t *testing.T) {
	p := authservertest.Start(t, nil)
	tok, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: p.AgentClientID, Issuer: p.URL,
		Scopes: []string{"orders:read", "offline_access"}, AllowLoopback: true, OpenBrowser: connectSignIn(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" {
		t.Fatalf("token %+v", tok)
	}
}

// TestConnectCallbackPageArrives: a real browser follows the redirect on
// its own, while Connect goes on with the code. The sign-in page must
// still reach it whole: Connect used to close the listener as soon as it
// had the code, and the browser got a reset connection instead.
func TestConnectCallbackPageArrives(t *testing.T) {
	as := newConnectFakeAS(t)
	for i := range 20 {
		page := make(chan error, 1)
		browser := func(authURL string) error {
			go func() {
				noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				res, err := noRedirect.Get(authURL)
				if err != nil {
					page <- err
					return
				}
				res.Body.Close()
				res, err = http.Get(res.Header.Get("Location"))
				if err != nil {
					page <- err
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil && !strings.Contains(string(body), "Signed in") {
					err = fmt.Errorf("page %q", body)
				}
				page <- err
			}()
			return nil
		}
		if _, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", Issuer: as.URL, AllowLoopback: true,
			OpenBrowser: browser}); err != nil {
			t.Fatal(err)
		}
		if err := <-page; err != nil {
			t.Fatalf("attempt %d: the browser did not get the page: %v", i, err)
		}
	}
}
