package ucpclient_test

// Independent security review of issue 11 (ucpclient). Each test below
// states a property the issue or README promises; each failed before the
// fix it now guards.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// A caller-supplied Config.HTTPClient (an ordinary *http.Client, the
// obvious thing to pass for a proxy, custom TLS or a timeout) follows
// redirects, and Go only strips Authorization/Cookie on a cross-host
// redirect: the platform's X-API-Key is forwarded to whatever host the
// 307 names. The SDK must not send the platform key to a redirect target
// whatever client it is given.
func TestReview11CustomHTTPClientForwardsAPIKeyOnRedirect(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if k := r.Header.Get("X-API-Key"); k != "" {
			leaked = append(leaked, "X-API-Key="+k)
		}
		if a := r.Header.Get("Authorization"); a != "" {
			leaked = append(leaked, "Authorization="+a)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ucp":{"version":"2026-04-08","status":"success"},"products":[]}`)
	}))
	defer thief.Close()
	// "localhost" is another host than "127.0.0.1" for Go's redirect
	// header policy, as a third party's host would be.
	thiefURL := strings.Replace(thief.URL, "127.0.0.1", "localhost", 1)
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thiefURL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer platform.Close()

	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:      platform.URL,
		APIKey:       "plat.secret-platform-key",
		AgentProfile: "https://agent.example/.well-known/ucp",
		HTTPClient:   &http.Client{},
		Retry:        ucpclient.RetryConfig{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.GlobalSearch(t.Context(), &ucp.SearchRequest{})
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("credentials sent to the redirect target %s: %v", thiefURL, leaked)
	}
}

// RFC 9207 §2.4: a client that supports the iss parameter MUST compare
// it whenever it is present. Connect only looks at iss when the server's
// metadata advertises authorization_response_iss_parameter_supported, so
// an authorization response naming another issuer (a mix-up) is accepted
// and its code exchanged.
func TestReview11ConnectAcceptsForeignIssWhenNotAdvertised(t *testing.T) {
	as := newConnectFakeAS(t)
	as.wrongIss = true // the redirect carries iss=https://evil.example
	md := &ucpclient.AuthServerMetadata{
		Issuer:                        as.URL,
		AuthorizationEndpoint:         as.URL + "/authorize",
		TokenEndpoint:                 as.URL + "/token",
		CodeChallengeMethodsSupported: []string{"S256"},
		// AuthorizationResponseISSSupport: false (not advertised)
	}
	_, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", Metadata: md,
		HTTPClient: http.DefaultClient, OpenBrowser: connectFollow(t, nil)})
	var ce *ucpclient.ConnectError
	if !errors.As(err, &ce) || ce.Code != "iss_mismatch" {
		t.Fatalf("Connect accepted an authorization response with iss=https://evil.example for issuer %s: err %v", as.URL, err)
	}
	if as.tokenForm != nil {
		t.Fatal("the code of a mixed-up response was exchanged")
	}
}

// stubTransport answers from a map of URL -> JSON body and records every
// URL asked for.
type review11Stub struct {
	mu    sync.Mutex
	asked []string
	docs  map[string]string
}

func (s *review11Stub) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.asked = append(s.asked, r.URL.String())
	s.mu.Unlock()
	body, ok := s.docs[r.URL.String()]
	if !ok {
		return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body)),
		Header: http.Header{"Content-Type": {"application/json"}}, Request: r}, nil
}

func review11ASMetadata(issuer string) string {
	b, _ := json.Marshal(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
		"token_endpoint": issuer + "/token", "code_challenge_methods_supported": []string{"S256"}})
	return string(b)
}

// The RFC 9728 protected resource metadata decides which authorization
// server the buyer signs in at, yet DiscoverAuthServer fetches it over
// plain http from a non-loopback host (the issuer and endpoints are held
// to https-or-loopback, the document that names them is not): anyone on
// the path can substitute authorization_servers.
func TestReview11DiscoverFetchesResourceMetadataOverPlainHTTP(t *testing.T) {
	stub := &review11Stub{docs: map[string]string{
		"http://shop.example/.well-known/oauth-protected-resource/account/mcp": `{"resource":"http://shop.example/account/mcp","authorization_servers":["https://as.attacker.example"]}`,
		"https://as.attacker.example/.well-known/oauth-authorization-server":   review11ASMetadata("https://as.attacker.example"),
	}}
	md, err := ucpclient.DiscoverAuthServer(t.Context(), &http.Client{Transport: stub}, "",
		"http://shop.example/.well-known/oauth-protected-resource/account/mcp")
	if err == nil {
		t.Fatalf("resource metadata over plain http off loopback accepted; buyer would sign in at %s (fetched %v)", md.Issuer, stub.asked)
	}
}

// RFC 9728 §3.3: metadata obtained from a challenge's resource_metadata
// must name the resource the client called. DiscoverAuthServer checks the
// resource only when the URL has the well-known shape; any other URL may
// vouch for any resource (here, a third party's document claims to be
// the metadata of another site's API), and Connect then asks for a token
// bound to that resource.
func TestReview11DiscoverAcceptsMetadataForAnotherResource(t *testing.T) {
	stub := &review11Stub{docs: map[string]string{
		"https://third-party.example/prm":                                    `{"resource":"https://api.platform.example/account/mcp","authorization_servers":["https://as.attacker.example"]}`,
		"https://as.attacker.example/.well-known/oauth-authorization-server": review11ASMetadata("https://as.attacker.example"),
	}}
	md, err := ucpclient.DiscoverAuthServer(t.Context(), &http.Client{Transport: stub}, "", "https://third-party.example/prm")
	if err == nil {
		t.Fatalf("metadata at https://third-party.example/prm accepted for resource %q (issuer %s)", md.Resource, md.Issuer)
	}
}

// README: "a missing or bad signature is a *ResponseSignatureError, never
// a silent pass". With VerifyResponsesRequired, a Business on the
// platform's own origin whose REST endpoint is not under {base}/s/{slug}
// (e.g. the platform's own profile at {base}/.well-known/ucp naming
// {base} as endpoint) gets neither a platform-store check (no slug) nor a
// business-keys check (same origin): its unsigned responses are returned.
func TestReview11SameOriginBusinessSkipsRequiredResponseSignature(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/.well-known/ucp":
			fmt.Fprintf(w, `{"ucp":{"version":%q,"services":{"dev.ucp.shopping":[{"version":%q,"spec":"https://ucp.dev/specification/overview","transport":"rest","endpoint":%q}]},"capabilities":{},"payment_handlers":{}}}`,
				ucp.Version, ucp.Version, srv.URL+"/api")
		case strings.HasPrefix(r.URL.Path, "/api/checkout-sessions/"):
			// Unsigned, although the request asked for a signature.
			fmt.Fprintf(w, `{"ucp":{"version":%q,"status":"success"},"id":"co_1","status":"ready_for_complete","currency":"USD","totals":[{"type":"total","amount":1}]}`, ucp.Version)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	c, err := ucpclient.New(ucpclient.Config{
		BaseURL:         srv.URL,
		APIKey:          "plat.key",
		AgentProfile:    "https://agent.example/.well-known/ucp",
		VerifyResponses: ucpclient.VerifyResponsesRequired,
		Retry:           ucpclient.RetryConfig{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Business(t.Context(), srv.URL+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.GetCheckout(t.Context(), "co_1")
	var rse *ucpclient.ResponseSignatureError
	if !errors.As(err, &rse) {
		t.Fatalf("VerifyResponsesRequired: unsigned response returned as a result (err %v, body %s)", err, res)
	}
}

// Connect with a caller-supplied Metadata skips the https-or-loopback
// rule DiscoverAuthServer enforces: the authorization code, the PKCE
// verifier (and a client secret) go to a plain-http token endpoint off
// loopback. The issue: "tokens and codes never cross a network in the
// clear".
func TestReview11ConnectMetadataPlainHTTPTokenEndpoint(t *testing.T) {
	stub := &review11Stub{docs: map[string]string{
		"http://as.example/token": `{"access_token":"at","token_type":"Bearer","refresh_token":"rt","expires_in":3600}`,
	}}
	md := &ucpclient.AuthServerMetadata{Issuer: "http://as.example", AuthorizationEndpoint: "http://as.example/authorize",
		TokenEndpoint: "http://as.example/token", CodeChallengeMethodsSupported: []string{"S256"}}
	open := func(authURL string) error {
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		q := u.Query()
		go func() {
			res, err := http.Get(q.Get("redirect_uri") + "?" + url.Values{"code": {"c"}, "state": {q.Get("state")}}.Encode())
			if err == nil {
				res.Body.Close()
			}
		}()
		return nil
	}
	_, err := ucpclient.Connect(t.Context(), ucpclient.ConnectOptions{ClientID: "agent", ClientSecret: "s3cret", Metadata: md,
		HTTPClient: &http.Client{Transport: stub}, OpenBrowser: open})
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if err == nil || len(stub.asked) > 0 {
		t.Fatalf("code exchanged over plain http off loopback: err %v, requests %v", err, stub.asked)
	}
}
