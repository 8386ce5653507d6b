package authserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// The bridge / authorization-server contract: a buyer's token issued for
// a platform's bridge (its RFC 8707 resource) is exchanged by that
// platform (RFC 8693) for a token for the platform API that speaks for
// the same buyer within the same allowance and acts for that platform.

const (
	bridgeA = "http://127.0.0.1:1/mcp"       // the demo platform's bridge
	bridgeB = "https://bridge.b.example/mcp" // another platform's bridge
)

type exchangeEnv struct {
	t      *testing.T
	p      *authservertest.Platform
	keyB   string // platform B's API key
	idB    string
	nonce  int
	bearer func(resource, scope string, al *authservertest.Allowance) string
}

func newExchangeEnv(t *testing.T) *exchangeEnv {
	t.Helper()
	p := authservertest.Start(t, &authservertest.Options{BridgeResources: []string{bridgeA}})
	ctx := t.Context()
	e := &exchangeEnv{t: t, p: p, idB: "platform-b"}
	secret, hash := oauth.NewClientSecret()
	if err := p.Store.CreateClient(ctx, &store.Client{ID: e.idB, Type: store.ClientWeb, Name: "Platform B", Role: store.RolePlatform,
		Platform: e.idB, SecretHash: hash, GrantTypes: []string{"client_credentials", oauth.GrantTypeTokenExchange}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.keyB = e.idB + "." + secret
	if err := p.Server.OAuth.RegisterResource(ctx, e.idB, bridgeB); err != nil {
		t.Fatal(err)
	}
	return e
}

// buyerToken signs the demo buyer in for the demo agent with resource.
func (e *exchangeEnv) buyerToken(resource, scope string, al *authservertest.Allowance) *oauth2.Token {
	e.t.Helper()
	ctx := e.t.Context()
	conf := e.p.OAuth2Config(strings.Fields(scope)...)
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", resource))
	}
	loc, err := e.p.SignIn(ctx, conf.AuthCodeURL("state", opts...), &authservertest.Consent{Allowance: al})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type exchangeResult struct {
	Status          int
	Error           string `json:"error"`
	Description     string `json:"error_description"`
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	RefreshToken    string `json:"refresh_token"`
}

// exchange posts a token exchange with the platform key's halves as
// HTTP Basic client authentication, as the bridge does.
func (e *exchangeEnv) exchange(key, subject string, extra url.Values) exchangeResult {
	e.t.Helper()
	form := url.Values{"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {subject},
		"subject_token_type": {oauth.TokenTypeAccessToken}}
	for k, v := range extra {
		if len(v) == 0 || v[0] == "" {
			form.Del(k)
			continue
		}
		form[k] = v
	}
	req, _ := http.NewRequest("POST", e.p.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		i := strings.LastIndexByte(key, '.')
		req.SetBasicAuth(url.QueryEscape(key[:i]), url.QueryEscape(key[i+1:]))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out exchangeResult
	json.NewDecoder(res.Body).Decode(&out)
	out.Status = res.StatusCode
	if res.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("token response without Cache-Control: no-store")
	}
	return out
}

func (e *exchangeEnv) mustExchange(key, subject string, extra url.Values) exchangeResult {
	e.t.Helper()
	out := e.exchange(key, subject, extra)
	if out.Status != 200 || out.AccessToken == "" {
		e.t.Fatalf("exchange: HTTP %d %s: %s", out.Status, out.Error, out.Description)
	}
	return out
}

func (e *exchangeEnv) refused(label string, out exchangeResult, status int, code string) {
	e.t.Helper()
	if out.Status != status || out.Error != code || out.AccessToken != "" {
		e.t.Errorf("%s: HTTP %d %q (%s), want %d %q", label, out.Status, out.Error, out.Description, status, code)
	}
}

func (e *exchangeEnv) key(n string) string {
	e.nonce++
	return fmt.Sprintf("exchange-%s-%012d", n, e.nonce)
}

// createCheckout creates a flower-shop checkout of n roses (35.00 EUR
// each) with the demo platform key.
func (e *exchangeEnv) createCheckout(n int) string {
	e.t.Helper()
	code, _, b := call(e.t, "POST", e.p.StoreURL("flower-shop")+"/checkout-sessions",
		fmt.Sprintf(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":%d}]}`, n),
		"X-API-Key", e.p.PlatformKey, "Idempotency-Key", e.key("create"))
	var c struct{ ID string }
	if code != 201 || json.Unmarshal(b, &c) != nil || c.ID == "" {
		e.t.Fatalf("create: %d %s", code, b)
	}
	return c.ID
}

// complete completes a checkout with a bearer alone (buyer-bound) and
// returns the status and body.
func (e *exchangeEnv) complete(id, bearer string) (int, string) {
	e.t.Helper()
	code, _, b := call(e.t, "POST", e.p.StoreURL("flower-shop")+"/checkout-sessions/"+id+"/complete",
		`{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}`,
		"Authorization", "Bearer "+bearer, "Idempotency-Key", e.key("complete"))
	return code, string(b)
}

func ordered(code int, body string) bool {
	return code == 200 && strings.Contains(body, `"order"`) && !strings.Contains(body, `"status":"error"`)
}

// accountCall calls a buyer account tool with a bearer.
func (e *exchangeEnv) accountCall(bearer, tool string) (int, string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool)
	code, _, b := call(e.t, "POST", e.p.URL+"/account/mcp", body, "Authorization", "Bearer "+bearer, "Accept", "application/json, text/event-stream")
	return code, string(b)
}

// TestTokenExchangeHappyPath: the bridge's exchange with the platform key
// gives a token for the platform API: same buyer, same grant and
// allowance, acting for the platform; it works at the account MCP and on
// a buyer-bound completion of a checkout the platform created with its
// key, and spend through any exchanged token counts against the one
// allowance.
func TestTokenExchangeHappyPath(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	ctx := t.Context()
	al := &authservertest.Allowance{MaxPerOrder: "50", DailyCap: "60", Currency: "EUR", Days: 30}
	sub := e.buyerToken(bridgeA, "purchase:complete dev.ucp.shopping.order:read offline_access", al)

	// The bearer the bridge holds is refused at the platform API: it was
	// issued for the bridge.
	if code, body := e.complete(e.createCheckout(1), sub.AccessToken); code != 401 || !strings.Contains(body, "another resource") {
		t.Fatalf("bridge token at the platform API: %d %s", code, body)
	}
	if code, body := e.accountCall(sub.AccessToken, "get_buyer_context"); code != 401 {
		t.Fatalf("bridge token at the account MCP: %d %s", code, body)
	}

	x := e.mustExchange(e.p.PlatformKey, sub.AccessToken, nil)
	if x.IssuedTokenType != oauth.TokenTypeAccessToken || x.TokenType != "Bearer" || x.RefreshToken != "" ||
		x.Scope != "purchase:complete dev.ucp.shopping.order:read offline_access" || x.ExpiresIn <= 0 || x.ExpiresIn > 3600 {
		t.Fatalf("exchange response %+v", x)
	}
	info, err := e.p.Server.OAuth.ValidateAccessToken(ctx, x.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	subInfo, _ := e.p.Server.OAuth.ValidateAccessToken(ctx, sub.AccessToken)
	if info.BuyerID != e.p.BuyerID || info.ClientID != e.p.AgentClientID || info.GrantID != subInfo.GrantID ||
		info.Platform != e.p.PlatformID || info.Resource != e.p.URL || info.ExpiresAt.After(subInfo.ExpiresAt) {
		t.Fatalf("exchanged token %+v (subject %+v)", info, subInfo)
	}

	// The account MCP takes it.
	if code, body := e.accountCall(x.AccessToken, "get_buyer_context"); code != 200 || strings.Contains(body, `"isError":true`) || strings.Contains(body, `"error"`) {
		t.Fatalf("exchanged token at the account MCP: %d %s", code, body)
	}
	// A checkout the platform created with its key is completed by the
	// exchanged token (same platform), within the allowance.
	id := e.createCheckout(1)
	if code, body := e.complete(id, x.AccessToken); !ordered(code, body) {
		t.Fatalf("completion with the exchanged token: %d %s", code, body)
	}
	// A second exchange spends from the same allowance: 35 + 35 > 60.
	x2 := e.mustExchange(e.p.PlatformKey, sub.AccessToken, url.Values{"resource": {e.p.URL}, "scope": {"purchase:complete"}})
	if x2.Scope != "purchase:complete" {
		t.Fatalf("narrowed scope %q", x2.Scope)
	}
	if code, body := e.complete(e.createCheckout(1), x2.AccessToken); ordered(code, body) || !strings.Contains(body, oauth.CodeSpendCapExceeded) {
		t.Fatalf("second order over the shared daily cap: %d %s", code, body)
	}
}

// TestTokenExchangeAcrossPlatforms: a buyer token for one platform's
// bridge is useless to another platform, and a token exchanged by
// another platform cannot complete the first platform's checkout.
func TestTokenExchangeAcrossPlatforms(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	subA := e.buyerToken(bridgeA, "purchase:complete", nil)
	e.refused("platform B exchanging A's bridge token", e.exchange(e.keyB, subA.AccessToken, nil), 400, "invalid_grant")
	subB := e.buyerToken(bridgeB, "purchase:complete", nil)
	e.refused("platform A exchanging B's bridge token", e.exchange(e.p.PlatformKey, subB.AccessToken, nil), 400, "invalid_grant")

	// B's own exchange works, and acts for B: the checkout platform A
	// created with its key is not B's to complete.
	xb := e.mustExchange(e.keyB, subB.AccessToken, nil)
	info, err := e.p.Server.OAuth.ValidateAccessToken(t.Context(), xb.AccessToken)
	if err != nil || info.Platform != e.idB {
		t.Fatalf("B's exchanged token %+v %v", info, err)
	}
	id := e.createCheckout(1)
	if code, body := e.complete(id, xb.AccessToken); ordered(code, body) || !strings.Contains(body, "not_found") {
		t.Fatalf("platform A's checkout completed by a token acting for B: %d %s", code, body)
	}
	xa := e.mustExchange(e.p.PlatformKey, subA.AccessToken, nil)
	if code, body := e.complete(id, xa.AccessToken); !ordered(code, body) {
		t.Fatalf("platform A's checkout with A's exchanged token: %d %s", code, body)
	}
}

// TestTokenExchangeRefusals: every refusal of the contract, with the
// OAuth error JSON RFC 8693 §2.2.2 names.
func TestTokenExchangeRefusals(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	ctx := t.Context()
	sub := e.buyerToken(bridgeA, "purchase:complete dev.ucp.shopping.order:read", nil)

	// Client authentication.
	e.refused("no client authentication", e.exchange("", sub.AccessToken, nil), 401, "invalid_client")
	e.refused("wrong secret", e.exchange(e.p.PlatformID+".ucpb_cs_wrong", sub.AccessToken, nil), 401, "invalid_client")
	e.refused("a merchant's client", e.exchange(e.p.MerchantID+"."+e.p.MerchantSecret, sub.AccessToken, nil), 401, "invalid_client")
	public := e.exchange("", sub.AccessToken, url.Values{"client_id": {e.p.AgentClientID}})
	e.refused("the public agent client itself", public, 401, "invalid_client")

	// The request.
	e.refused("no subject_token", e.exchange(e.p.PlatformKey, "", nil), 400, "invalid_request")
	e.refused("no subject_token_type", e.exchange(e.p.PlatformKey, sub.AccessToken, url.Values{"subject_token_type": {""}}), 400, "invalid_request")
	e.refused("a refresh token type", e.exchange(e.p.PlatformKey, sub.AccessToken,
		url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}), 400, "invalid_request")
	e.refused("an actor token", e.exchange(e.p.PlatformKey, sub.AccessToken, url.Values{"actor_token": {sub.AccessToken},
		"actor_token_type": {oauth.TokenTypeAccessToken}}), 400, "invalid_request")

	// The target.
	for _, res := range []string{bridgeA, e.p.StoreURL("flower-shop"), "https://api.example", e.p.URL + "/account/mcp"} {
		e.refused("resource "+res, e.exchange(e.p.PlatformKey, sub.AccessToken, url.Values{"resource": {res}}), 400, "invalid_target")
	}
	e.refused("audience elsewhere", e.exchange(e.p.PlatformKey, sub.AccessToken, url.Values{"audience": {"https://api.example"}}), 400, "invalid_target")

	// The scope: any widening, and unknown scopes.
	for _, sc := range []string{"purchase:complete offline_access", "dev.ucp.shopping.order:manage", "orders:read", "nonsense"} {
		e.refused("scope "+sc, e.exchange(e.p.PlatformKey, sub.AccessToken, url.Values{"scope": {sc}}), 400, "invalid_scope")
	}

	// The subject.
	e.refused("unknown subject", e.exchange(e.p.PlatformKey, "ucpb_at_made-up", nil), 400, "invalid_grant")
	e.refused("a refresh token as subject", e.exchange(e.p.PlatformKey, "ucpb_rt_x", nil), 400, "invalid_grant")
	api := e.buyerToken(e.p.URL, "purchase:complete", nil)
	e.refused("a token for the platform API", e.exchange(e.p.PlatformKey, api.AccessToken, nil), 400, "invalid_grant")
	none := e.buyerToken("", "purchase:complete", nil)
	e.refused("a token for no resource", e.exchange(e.p.PlatformKey, none.AccessToken, nil), 400, "invalid_grant")
	// An app-only token of the platform (client_credentials).
	cc := e.exchange(e.p.PlatformKey, "", url.Values{"grant_type": {"client_credentials"}, "subject_token_type": {""}})
	if cc.Status != 200 {
		t.Fatalf("platform client_credentials: %+v", cc)
	}
	e.refused("an app-only token", e.exchange(e.p.PlatformKey, cc.AccessToken, nil), 400, "invalid_grant")

	// An exchanged token is not exchanged again.
	x := e.mustExchange(e.p.PlatformKey, sub.AccessToken, nil)
	e.refused("an exchanged token", e.exchange(e.p.PlatformKey, x.AccessToken, nil), 400, "invalid_grant")

	// A platform application without the grant type.
	secret, hash := oauth.NewClientSecret()
	if err := e.p.Store.CreateClient(ctx, &store.Client{ID: "platform-old", Type: store.ClientWeb, Name: "Old", Role: store.RolePlatform,
		Platform: "platform-old", SecretHash: hash, GrantTypes: []string{"client_credentials"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.refused("a platform without the grant type", e.exchange("platform-old."+secret, sub.AccessToken, nil), 400, "unauthorized_client")

	// Revoked subject.
	e.revoke(sub.AccessToken)
	e.refused("a revoked subject", e.exchange(e.p.PlatformKey, sub.AccessToken, nil), 400, "invalid_grant")
}

// revoke revokes a token of the demo agent at the revocation endpoint.
func (e *exchangeEnv) revoke(tok string) {
	e.t.Helper()
	res, err := http.PostForm(e.p.URL+oauth.PathRevoke, url.Values{"token": {tok}, "client_id": {e.p.AgentClientID}})
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		e.t.Fatalf("revoke: HTTP %d", res.StatusCode)
	}
}

// TestTokenExchangeDiesWithSubject: revoking the subject's grant (the
// buyer revokes the agent), or the subject token alone, kills the
// exchanged token on its next use; the refresh of the subject's grant
// cannot widen what the exchange gave either.
func TestTokenExchangeDiesWithSubject(t *testing.T) {
	t.Parallel()
	e := newExchangeEnv(t)
	ctx := t.Context()

	sub := e.buyerToken(bridgeA, "purchase:complete dev.ucp.shopping.order:read offline_access", nil)
	x := e.mustExchange(e.p.PlatformKey, sub.AccessToken, url.Values{"scope": {"purchase:complete"}})
	if code, body := e.accountCall(x.AccessToken, "list_my_agent_authorizations"); code != 200 {
		t.Fatalf("before: %d %s", code, body)
	}
	// Scope cannot widen through refresh: the exchange issued no refresh
	// token, and refreshing the subject's grant keeps the grant's scope.
	if x.RefreshToken != "" {
		t.Fatal("exchange issued a refresh token")
	}
	// The buyer revokes the agent: both tokens die.
	if _, err := e.p.Server.OAuth.RevokeAuthorization(ctx, e.p.BuyerID, e.p.AgentClientID); err != nil {
		t.Fatal(err)
	}
	for label, tok := range map[string]string{"subject": sub.AccessToken, "exchanged": x.AccessToken} {
		if _, err := e.p.Server.OAuth.ValidateAccessToken(ctx, tok); err == nil {
			t.Errorf("%s token alive after the buyer revoked the agent", label)
		}
	}
	if code, _ := e.accountCall(x.AccessToken, "list_my_agent_authorizations"); code != 401 {
		t.Errorf("exchanged token after revocation: HTTP %d", code)
	}

	// Revoking the subject access token alone (RFC 7009) kills the
	// exchanged token too.
	sub2 := e.buyerToken(bridgeA, "purchase:complete", nil)
	x2 := e.mustExchange(e.p.PlatformKey, sub2.AccessToken, nil)
	e.revoke(sub2.AccessToken)
	if _, err := e.p.Server.OAuth.ValidateAccessToken(ctx, x2.AccessToken); err == nil {
		t.Error("exchanged token alive after its subject was revoked")
	}
}

// TestTokenExchangeExpiry: the exchanged token never outlives its
// subject: exchanged near the subject's end, it ends with it.
func TestTokenExchangeExpiry(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true, BridgeResources: []string{bridgeA},
		Config: func(c *authserver.Config) { c.Now = clock }})
	e := &exchangeEnv{t: t, p: p}
	ctx := t.Context()
	sub := e.buyerToken(bridgeA, "purchase:complete", nil)
	subInfo, err := p.Server.OAuth.ValidateAccessToken(ctx, sub.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	advance(subInfo.ExpiresAt.Sub(clock()) - 10*time.Minute)
	x := e.mustExchange(p.PlatformKey, sub.AccessToken, nil)
	info, err := p.Server.OAuth.ValidateAccessToken(ctx, x.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !info.ExpiresAt.Equal(subInfo.ExpiresAt) || x.ExpiresIn > 600 || x.ExpiresIn < 590 {
		t.Fatalf("exchanged token expires %v (in %d s), subject %v", info.ExpiresAt, x.ExpiresIn, subInfo.ExpiresAt)
	}
	advance(10 * time.Minute)
	if _, err := p.Server.OAuth.ValidateAccessToken(ctx, x.AccessToken); err == nil {
		t.Fatal("exchanged token outlived its subject")
	}
	e.refused("an expired subject", e.exchange(p.PlatformKey, sub.AccessToken, nil), 400, "invalid_grant")
}
