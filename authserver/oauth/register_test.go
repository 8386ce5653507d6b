package oauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// mcpRemoteRegistration is the body mcp-remote 0.15 posts (with the
// metadata members it adds that this server ignores).
const mcpRemoteRegistration = `{"redirect_uris":["http://localhost:3334/oauth/callback"],"token_endpoint_auth_method":"none",
"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP CLI Proxy",
"client_uri":"https://github.com/modelcontextprotocol/mcp-cli","software_id":"2e6dc280-f3c3-4e01-99a7-8181dbd1d23d",
"software_version":"0.15.1","application_type":"native","scope":"purchase:complete offline_access openid profile"}`

type registered struct {
	Status                  int
	Header                  http.Header
	Error                   string   `json:"error"`
	Description             string   `json:"error_description"`
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
	SoftwareID              string   `json:"software_id"`
}

func (e *env) register(body string) registered {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url(oauth.PathRegister), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.doRegistration(req)
}

func (e *env) doRegistration(req *http.Request) registered {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out registered
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	json.Unmarshal(buf.Bytes(), &out)
	out.Status, out.Header = res.StatusCode, res.Header
	return out
}

func (e *env) manage(method, uri, token string) registered {
	e.t.Helper()
	req, _ := http.NewRequest(method, uri, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.doRegistration(req)
}

func withDCR(c *oauth.Config) { c.DynamicRegistration = true }

// TestRegisterMcpRemote: what mcp-remote registers is accepted (RFC 7591
// §3.2.1: 201, the client id, the accepted metadata and the RFC 7592
// management credentials; no secret), the metadata it does not know is
// ignored, unknown scopes are dropped, and the client then signs a buyer
// in with code + PKCE through x/oauth2 on any port of its redirect, the
// consent page flagging it as unverified and self-registered.
func TestRegisterMcpRemote(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDCR)
	res, err := http.Get(e.url(oauth.PathMetadata))
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	if md["registration_endpoint"] != e.url(oauth.PathRegister) {
		t.Fatalf("registration_endpoint %v", md["registration_endpoint"])
	}

	r := e.register(mcpRemoteRegistration)
	if r.Status != 201 || !strings.HasPrefix(r.ClientID, "ucpb_dcr_") || r.ClientSecret != "" || r.RegistrationAccessToken == "" ||
		r.RegistrationClientURI != e.url(oauth.PathRegister)+"/"+r.ClientID || r.ClientIDIssuedAt == 0 ||
		r.TokenEndpointAuthMethod != "none" || fmt.Sprint(r.GrantTypes) != "[authorization_code refresh_token]" ||
		fmt.Sprint(r.ResponseTypes) != "[code]" || r.ClientName != "MCP CLI Proxy" || r.Scope != "purchase:complete offline_access" ||
		r.SoftwareID != "" || fmt.Sprint(r.RedirectURIs) != "[http://localhost:3334/oauth/callback]" {
		t.Fatalf("registration %+v", r)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("registration response may be cached")
	}

	conf := e.oauth2Config(r.ClientID, "http://localhost:40123/oauth/callback", "purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent"))
	status, _, page, _ := b.open(authURL)
	if status != 200 || !strings.Contains(page, "MCP CLI Proxy") || !strings.Contains(page, "unverified, self-registered") {
		t.Fatalf("consent page %d: %s", status, page)
	}
	q := e.approve(b, authURL, nil)
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("token %+v %v", tok, err)
	}
	// The buyer's own page flags it too.
	if status, _, page, _ := b.open(e.url(oauth.PathAccount)); status != 200 || !strings.Contains(page, "MCP CLI Proxy") ||
		!strings.Contains(page, "(unverified, self-registered)") {
		t.Fatalf("account page %d: %s", status, page)
	}
	// A scope outside what it registered is refused.
	conf2 := e.oauth2Config(r.ClientID, "http://localhost:40123/oauth/callback", "orders:read")
	status, _, page, res2 := newBrowser(t).open(conf2.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if loc := res2.Header.Get("Location"); status != http.StatusSeeOther || !strings.Contains(loc, "invalid_scope") {
		t.Fatalf("unregistered scope: %d %s %s", status, loc, page)
	}
}

// TestRegisterRefusals: only public native clients with loopback
// redirects, within the bounds, and RFC 7591 §3.2.2 errors.
func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDCR)
	body := func(redirect string) string {
		b, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirect}})
		return string(b)
	}
	for _, uri := range []string{
		"http://localhost.evil.com/cb",
		"http://127.0.0.1@evil.example/cb",
		"http://evil.example@127.0.0.1/cb",
		"http://user:pw@localhost/cb",
		"http://[::ffff:127.0.0.1]/cb",
		"http://[0:0:0:0:0:0:0:1]/cb",
		"http://LOCALHOST/cb",
		"http://Localhost:3000/cb",
		"http://127.1/cb",
		"http://2130706433/cb",
		"http://127.0.0.2/cb",
		"http://0.0.0.0/cb",
		"http://localhost./cb",
		"http://localhost/cb#frag",
		"http://localhost/cb#",
		"http://localhost:0/cb",
		"http://localhost:65536/cb",
		"http://localhost:03000/cb",
		"http://localhost:/cb",
		"http://local%68ost/cb",
		"http://localhost\\@evil.example/cb",
		"https://localhost/cb",
		"https://app.example/cb",
		"http://app.example/cb",
		"com.example.app:/cb",
		"javascript:alert(1)",
		"//localhost/cb",
		"localhost/cb",
		"http:/localhost/cb",
		"http://localhost/" + strings.Repeat("a", 600),
		"",
	} {
		if r := e.register(body(uri)); r.Status != 400 || r.Error != "invalid_redirect_uri" || r.ClientID != "" {
			t.Errorf("redirect %q: %d %s %s", uri, r.Status, r.Error, r.Description)
		}
	}
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("http://localhost/cb%d", i)
	}
	manyBody, _ := json.Marshal(map[string]any{"redirect_uris": many})
	for name, tc := range map[string]struct{ body, code string }{
		"no redirect_uris":      {`{"client_name":"x"}`, "invalid_redirect_uri"},
		"too many redirects":    {string(manyBody), "invalid_redirect_uri"},
		"a confidential client": {`{"redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, "invalid_client_metadata"},
		"private_key_jwt":       {`{"redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
		"client_credentials":    {`{"redirect_uris":["http://localhost/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		"implicit":              {`{"redirect_uris":["http://localhost/cb"],"grant_types":["implicit"]}`, "invalid_client_metadata"},
		"token exchange":        {`{"redirect_uris":["http://localhost/cb"],"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:token-exchange"]}`, "invalid_client_metadata"},
		"refresh only":          {`{"redirect_uris":["http://localhost/cb"],"grant_types":["refresh_token"]}`, "invalid_client_metadata"},
		"response_type token":   {`{"redirect_uris":["http://localhost/cb"],"response_types":["code","token"]}`, "invalid_client_metadata"},
		"long name":             {`{"redirect_uris":["http://localhost/cb"],"client_name":"` + strings.Repeat("n", 101) + `"}`, "invalid_client_metadata"},
		"control characters":    {`{"redirect_uris":["http://localhost/cb"],"client_name":"a\u0007b"}`, "invalid_client_metadata"},
		"wrong type":            {`{"redirect_uris":"http://localhost/cb"}`, "invalid_client_metadata"},
		"not an object":         {`[1]`, "invalid_client_metadata"},
		"two objects":           {`{"redirect_uris":["http://localhost/cb"]}{}`, "invalid_client_metadata"},
		"too big":               {`{"redirect_uris":["http://localhost/cb"],"x":"` + strings.Repeat("a", 17<<10) + `"}`, "invalid_client_metadata"},
	} {
		if r := e.register(tc.body); r.Status != 400 || r.Error != tc.code || r.ClientID != "" {
			t.Errorf("%s: %d %s %s", name, r.Status, r.Error, r.Description)
		}
	}
	req, _ := http.NewRequest("POST", e.url(oauth.PathRegister), strings.NewReader(`redirect_uris=http://localhost/cb`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.doRegistration(req); r.Status != 400 || r.Error != "invalid_request" {
		t.Errorf("form body: %d %s", r.Status, r.Error)
	}
	// What is accepted: each loopback host, any port or none, defaults.
	for _, uri := range []string{"http://localhost/cb", "http://127.0.0.1:8080/oauth/callback", "http://[::1]:9/x?y=1", "http://localhost"} {
		if r := e.register(body(uri)); r.Status != 201 || fmt.Sprint(r.GrantTypes) != "[authorization_code]" || r.Scope != "" ||
			r.ClientName != "Unnamed app" {
			t.Errorf("redirect %q: %d %s %s %v", uri, r.Status, r.Error, r.Description, r.GrantTypes)
		}
	}
}

// TestRegistrationManagement: RFC 7592 read and delete with the
// registration access token; any other token, or a client that did not
// register itself, is 401; a deleted client's tokens are revoked.
func TestRegistrationManagement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDCR)
	r := e.register(mcpRemoteRegistration)
	other := e.register(mcpRemoteRegistration)
	if r.Status != 201 || other.Status != 201 {
		t.Fatalf("register: %+v %+v", r, other)
	}
	for name, tok := range map[string]string{"no token": "", "wrong token": "ucpb_rat_wrong", "another client's token": other.RegistrationAccessToken} {
		for _, m := range []string{"GET", "DELETE"} {
			got := e.manage(m, r.RegistrationClientURI, tok)
			if got.Status != 401 || got.Error != "invalid_token" || !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: %d %s", m, name, got.Status, got.Error)
			}
		}
	}
	if got := e.manage("GET", e.url(oauth.PathRegister+"/"+agentID), r.RegistrationAccessToken); got.Status != 401 {
		t.Errorf("an operator's client: %d", got.Status)
	}
	if got := e.manage("GET", e.url(oauth.PathRegister+"/ucpb_dcr_unknown"), r.RegistrationAccessToken); got.Status != 401 {
		t.Errorf("an unknown client: %d", got.Status)
	}
	if got := e.manage("PUT", r.RegistrationClientURI, r.RegistrationAccessToken); got.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT (update is not offered): %d", got.Status)
	}
	got := e.manage("GET", r.RegistrationClientURI, r.RegistrationAccessToken)
	if got.Status != 200 || got.ClientID != r.ClientID || got.ClientName != "MCP CLI Proxy" || got.RegistrationAccessToken != "" ||
		fmt.Sprint(got.RedirectURIs) != fmt.Sprint(r.RedirectURIs) {
		t.Fatalf("read: %+v", got)
	}

	// Tokens, then delete: they die, and the client is gone.
	conf := e.oauth2Config(r.ClientID, "http://localhost:5555/oauth/callback", "purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	q := e.approve(newBrowser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), nil)
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.manage("DELETE", r.RegistrationClientURI, r.RegistrationAccessToken); got.Status != 204 {
		t.Fatalf("delete: %d %s", got.Status, got.Error)
	}
	if _, err := e.as.ValidateAccessToken(t.Context(), tok.AccessToken); err == nil {
		t.Error("access token of a deleted client still valid")
	}
	code, body, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "client_id": {r.ClientID}, "refresh_token": {tok.RefreshToken}})
	if code != 401 || body["error"] != "invalid_client" {
		t.Errorf("refresh after delete: %d %v", code, body)
	}
	if got := e.manage("GET", r.RegistrationClientURI, r.RegistrationAccessToken); got.Status != 401 {
		t.Errorf("read after delete: %d", got.Status)
	}
	if got := e.manage("GET", other.RegistrationClientURI, other.RegistrationAccessToken); got.Status != 200 {
		t.Errorf("the other client: %d", got.Status)
	}
}

// TestRegisterRateLimited: registrations are limited per network, with
// 429, Retry-After and a JSON error the MCP SDK recognises.
func TestRegisterRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) {
		c.DynamicRegistration, c.DisableRateLimits = true, false
		c.RateLimits.RegisterPerNetwork = oauth.RateLimit{Rate: 1.0 / 3600, Burst: 2}
	})
	for i := range 2 {
		if r := e.register(mcpRemoteRegistration); r.Status != 201 {
			t.Fatalf("registration %d: %d %s", i, r.Status, r.Error)
		}
	}
	r := e.register(mcpRemoteRegistration)
	if r.Status != 429 || r.Error != "too_many_requests" || r.Header.Get("Retry-After") == "" || r.ClientID != "" {
		t.Fatalf("third registration: %d %s %q", r.Status, r.Error, r.Header.Get("Retry-After"))
	}
}

// TestRegisterOffByDefault: without Config.DynamicRegistration there is
// no endpoint and none is advertised.
func TestRegisterOffByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if r := e.register(mcpRemoteRegistration); r.Status != 404 && r.Status != 405 {
		t.Fatalf("register while off: %d", r.Status)
	}
	res, err := http.Get(e.url(oauth.PathMetadata))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var md map[string]any
	json.NewDecoder(res.Body).Decode(&md)
	if _, ok := md["registration_endpoint"]; ok {
		t.Fatal("registration_endpoint advertised while off")
	}
}
