package account_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// env is the whole platform in process, with the account at endpoint.
type env struct {
	t        *testing.T
	p        *authservertest.Platform
	endpoint string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	p := authservertest.Start(t, nil)
	return &env{t: t, p: p, endpoint: p.URL + account.Path}
}

func (e *env) ctx() context.Context { return e.t.Context() }

// token runs the consent page for conf's client with c (nil: the demo
// buyer, the default allowance) and returns the access token. extra are
// authorization parameters (a resource) sent to the token endpoint too.
func (e *env) token(conf *oauth2.Config, c *authservertest.Consent, extra ...oauth2.AuthCodeOption) string {
	e.t.Helper()
	verifier := oauth2.GenerateVerifier()
	loc, err := e.p.SignIn(e.ctx(), conf.AuthCodeURL("state", append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)...), c)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := conf.Exchange(e.ctx(), loc.Query().Get("code"), append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, extra...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.AccessToken
}

// ada is a token of the demo agent for Ada with scope (and, when it
// spends, the default allowance: 50.00 EUR per order, 120.50 a day).
func (e *env) ada(scope string) string {
	e.t.Helper()
	return e.token(e.p.OAuth2Config(strings.Fields(scope)...), nil)
}

// addBuyer creates a buyer who can sign in with email and password.
func (e *env) addBuyer(id, email, password string, doc store.AccountDoc) *authservertest.Consent {
	e.t.Helper()
	raw, _ := json.Marshal(doc)
	if err := e.p.Store.CreateBuyer(e.ctx(), &store.Buyer{ID: id, Email: email, PasswordHash: oauth.HashPassword(password),
		Account: raw, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return &authservertest.Consent{Email: email, Password: password}
}

// addAgent registers another public agent client of the demo platform.
func (e *env) addAgent(id, name string) *oauth2.Config {
	e.t.Helper()
	if err := e.p.Store.CreateClient(e.ctx(), &store.Client{ID: id, Type: store.ClientInstalled, Name: name,
		Platform: authserver.DemoPlatformID, RedirectURIs: authserver.DemoAgentRedirects,
		GrantTypes: []string{"authorization_code", "refresh_token"}, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	conf := e.p.OAuth2Config()
	conf.ClientID = id
	return conf
}

// rpcResponse is a JSON-RPC response as the wire carries it.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result *struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Code    string `json:"code"`
			Content string `json:"content"`
		} `json:"data"`
	} `json:"error"`
}

// post sends body to the account endpoint the way the Artos SDK does (a
// bare POST, Accept: application/json); hdr are header pairs, and
// "Authorization" takes a bare token.
func (e *env) post(body string, hdr ...string) (*http.Response, *rpcResponse, []byte) {
	e.t.Helper()
	return e.send(http.MethodPost, bytes.NewBufferString(body), hdr...)
}

func (e *env) send(method string, body io.Reader, hdr ...string) (*http.Response, *rpcResponse, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx(), method, e.endpoint, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		v := hdr[i+1]
		if hdr[i] == "Authorization" {
			v = "Bearer " + v
		}
		req.Header.Set(hdr[i], v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out rpcResponse
	if json.Unmarshal(b, &out) != nil {
		return res, nil, b
	}
	return res, &out, b
}

// toolCall is a stateless tools/call body (no initialize, no session).
func toolCall(name string, args any) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "call-1", "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args}})
	return string(b)
}

// call runs a tool with tok and returns its result, failing the test on
// anything but HTTP 200 with a result.
func (e *env) call(tok, name string, args any) *rpcResponse {
	e.t.Helper()
	res, out, b := e.post(toolCall(name, args), "Authorization", tok)
	if res.StatusCode != http.StatusOK || out == nil || out.Result == nil {
		e.t.Fatalf("%s: HTTP %d %s", name, res.StatusCode, b)
	}
	return out
}

// ok runs a tool that must succeed and decodes its structured content.
func ok[T any](e *env, tok, name string, args any) *T {
	e.t.Helper()
	out := e.call(tok, name, args)
	if out.Result.IsError {
		e.t.Fatalf("%s: tool error %s", name, out.Result.Content[0].Text)
	}
	var v T
	if err := json.Unmarshal(out.Result.StructuredContent, &v); err != nil {
		e.t.Fatalf("%s: %v: %s", name, err, out.Result.StructuredContent)
	}
	// The text mirrors the structured content, for clients that read
	// only text.
	if len(out.Result.Content) != 1 || !jsonEqual(out.Result.Content[0].Text, string(out.Result.StructuredContent)) {
		e.t.Fatalf("%s: the text content does not mirror the structured content: %+v", name, out.Result.Content)
	}
	return &v
}

// refused runs a tool that must answer with a tool error (isError) whose
// text starts with code; it returns the text.
func (e *env) refused(tok, name string, args any, code string) string {
	e.t.Helper()
	out := e.call(tok, name, args)
	if !out.Result.IsError || len(out.Result.Content) == 0 {
		e.t.Fatalf("%s %v: want a tool error %s, got %s", name, args, code, out.Result.StructuredContent)
	}
	text := out.Result.Content[0].Text
	if !strings.HasPrefix(text, code) {
		e.t.Fatalf("%s %v: tool error %q, want code %s", name, args, text, code)
	}
	return text
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// storeReq calls a store's REST API with tok (the platform's demo profile
// URL points nowhere; dev mode tolerates that).
func (e *env) storeReq(method, path, tok string, body any) (int, []byte) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(e.ctx(), method, e.p.URL+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:9/.well-known/ucp"`)
	req.Header.Set("Idempotency-Key", rand.Text())
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// buy places an order at flower-shop with the buyer's bearer alone: the
// checkout is created and completed with a card instrument carrying no
// card, so the buyer's saved card pays within the allowance. It returns
// the checkout as completed (or refused).
func (e *env) buy(tok, item string, qty int) *ucp.Checkout {
	e.t.Helper()
	status, b := e.storeReq(http.MethodPost, "/s/flower-shop/checkout-sessions", tok,
		map[string]any{"line_items": []any{map[string]any{"item": map[string]any{"id": item}, "quantity": qty}}})
	var c ucp.Checkout
	if status != http.StatusCreated || json.Unmarshal(b, &c) != nil || c.ID == "" {
		e.t.Fatalf("create checkout: HTTP %d %s", status, b)
	}
	status, b = e.storeReq(http.MethodPost, "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", tok,
		map[string]any{"payment": map[string]any{"instruments": []any{
			map[string]any{"id": "i1", "handler_id": "artos.card", "type": "card", "selected": true}}}})
	c = ucp.Checkout{}
	if status != http.StatusOK || json.Unmarshal(b, &c) != nil {
		e.t.Fatalf("complete checkout: HTTP %d %s", status, b)
	}
	return &c
}

func total(c *ucp.Checkout) int64 { return c.Totals[len(c.Totals)-1].Amount }

// placeOrder stores an order as a store places one (a completed checkout
// session and its order in one transaction), at a chosen time: the
// paging tests need many orders at several stores, in currencies no one
// allowance covers.
func (e *env) placeOrder(shop, id, buyer, client string, at time.Time, amount int64, currency string) {
	e.t.Helper()
	ctx := e.ctx()
	ses := &store.Session{Kind: store.KindCheckout, ShopSlug: shop, ID: "chk_" + id, Owner: "platform:demo-platform|buyer:" + buyer,
		Status: "ready_for_complete", Doc: json.RawMessage(`{}`), CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(6 * time.Hour)}
	if err := e.p.Store.CreateSession(ctx, ses); err != nil {
		e.t.Fatal(err)
	}
	doc, _ := json.Marshal(ucp.Order{ID: id, CheckoutID: ses.ID, PermalinkURL: e.p.StoreURL(shop) + "/orders/" + id, Currency: currency,
		LineItems: []ucp.OrderLineItem{{ID: "li_1", Item: ucp.Item{ID: "thing", Title: "Thing " + id, Price: amount},
			Quantity: ucp.OrderLineQuantity{Original: 1, Total: 1}, Totals: []ucp.Total{{Type: "subtotal", Amount: amount}}, Status: "processing"}},
		Totals: []ucp.Total{{Type: "subtotal", Amount: amount}, {Type: "total", Amount: amount}}})
	ses.Status, ses.UpdatedAt = "completed", at
	if err := e.p.Store.CompleteSession(ctx, ses, &store.Order{ShopSlug: shop, ID: id, CheckoutID: ses.ID, Owner: ses.Owner,
		ClientID: client, BuyerID: buyer, BuyerType: "agent", Doc: doc, CreatedAt: at}, nil); err != nil {
		e.t.Fatal(err)
	}
}
