package account_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
)

// wantRefusal checks a protocol-level refusal: the HTTP status, the
// JSON-RPC error echoing the request id with the code in data, and for
// 401 the challenge naming the account's resource metadata.
func (e *env) wantRefusal(res *http.Response, out *rpcResponse, b []byte, status int, code, id string) {
	e.t.Helper()
	if res.StatusCode != status || out == nil || out.Error == nil || out.Error.Code != -32000 || out.Error.Data.Code != code ||
		out.Error.Message == "" || string(out.ID) != id {
		e.t.Fatalf("want HTTP %d %s (id %s), got HTTP %d %s", status, code, id, res.StatusCode, b)
	}
	ch := res.Header.Get("WWW-Authenticate")
	// An error code only when a token was sent (RFC 6750 §3.1, UCP
	// identity linking): none when the request carried no credential.
	if status == http.StatusUnauthorized && (!strings.HasPrefix(ch, `Bearer realm="`+e.p.URL+`"`) ||
		strings.Contains(ch, `error="`) != (code != "identity_required") ||
		!strings.Contains(ch, `resource_metadata="`+e.p.URL+account.PathResourceMetadata+`"`)) {
		e.t.Fatalf("challenge %q", ch)
	}
}

// TestUnauthenticatedGets401 holds for every JSON-RPC method, initialize
// and tools/list included (that is how a client discovers where to sign
// the buyer in), and for a GET.
func TestUnauthenticatedGets401(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":"list","method":"tools/list"}`,
		toolCall("get_buyer_context", nil),
	} {
		res, out, b := e.post(body)
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		json.Unmarshal([]byte(body), &req)
		e.wantRefusal(res, out, b, http.StatusUnauthorized, "identity_required", string(req.ID))
	}
	res, out, b := e.send(http.MethodGet, nil)
	e.wantRefusal(res, out, b, http.StatusUnauthorized, "identity_required", "null")
	// With the bearer, a GET (a server-sent event stream) and a DELETE
	// (ending a session) have nothing to do on a stateless server.
	tok := e.ada("orders:read")
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if res, _, _ := e.send(m, nil, "Authorization", tok); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Fatalf("%s: HTTP %d", m, res.StatusCode)
		}
	}
}

// TestCredentialsRefused: only a buyer's bearer, alone, reads the
// account; every other credential is refused before any tool runs, with
// a status and a sentence that say what would work.
func TestCredentialsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada := e.ada("purchase:complete orders:read")
	cc := &clientcredentials.Config{ClientID: e.p.MerchantID, ClientSecret: e.p.MerchantSecret, TokenURL: e.p.TokenURL, Scopes: []string{"orders:read"}}
	merchant, err := cc.Token(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	body := toolCall("get_buyer_context", nil)

	res, out, b := e.post(body, "Authorization", "ucpb_at_not-a-token")
	e.wantRefusal(res, out, b, http.StatusUnauthorized, "invalid_token", `"call-1"`)

	res, out, b = e.post(body, "X-API-Key", e.p.PlatformKey)
	e.wantRefusal(res, out, b, http.StatusForbidden, "forbidden", `"call-1"`)
	if !strings.Contains(out.Error.Message, "buyer's bearer token") {
		t.Fatalf("the platform key's refusal does not say what works: %q", out.Error.Message)
	}

	// The key with the buyer's bearer (Artos platform+buyer mode) is
	// never run as the platform or as the buyer here.
	res, out, b = e.post(body, "X-API-Key", e.p.PlatformKey, "Authorization", ada)
	e.wantRefusal(res, out, b, http.StatusForbidden, "credential_conflict", `"call-1"`)

	res, out, b = e.post(body, "Authorization", merchant.AccessToken)
	e.wantRefusal(res, out, b, http.StatusForbidden, "forbidden", `"call-1"`)

	// The account acts on everything the buyer has: a grant that lets
	// the agent shop reads and manages it; one that reads orders reads
	// the orders only; a catalog-only grant gets nothing.
	if bc := ok[account.BuyerContext](e, e.ada("purchase:complete"), "get_buyer_context", nil); bc.Profile.ID != e.p.BuyerID {
		t.Fatalf("%+v", bc)
	}
	reads := e.ada("orders:read")
	ok[account.OrderList](e, reads, "list_my_orders", nil)
	for _, tool := range []string{"get_buyer_context", "list_my_addresses", "list_my_agent_authorizations"} {
		res, out, b := e.post(toolCall(tool, nil), "Authorization", reads)
		e.wantRefusal(res, out, b, http.StatusForbidden, "insufficient_scope", `"call-1"`)
	}
	res, out, b = e.post(toolCall("revoke_agent_authorization", map[string]any{"client_id": authserver.DemoAgentClientID}), "Authorization", reads)
	e.wantRefusal(res, out, b, http.StatusForbidden, "insufficient_scope", `"call-1"`)
	browse := e.ada("dev.ucp.shopping.catalog.search:read")
	for _, tool := range []string{"get_buyer_context", "list_my_orders"} {
		res, out, b := e.post(toolCall(tool, nil), "Authorization", browse)
		e.wantRefusal(res, out, b, http.StatusForbidden, "insufficient_scope", `"call-1"`)
	}
	// The buyer comes from the bearer, never from the arguments.
	e.refused(ada, "get_buyer_context", map[string]any{"buyer_id": "buyer_bob"}, "")
	e.refused(ada, "list_my_orders", map[string]any{"buyer_id": "buyer_bob"}, "")
}

// TestResourceBoundTokens: a token issued for another resource (a store)
// is refused with 401 invalid_token; one for the account or for the
// whole API is good here (RFC 8707).
func TestResourceBoundTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := e.p.OAuth2Config("orders:read")
	bound := func(resource string) string {
		return e.token(conf, nil, oauth2.SetAuthURLParam("resource", resource))
	}
	res, out, b := e.post(toolCall("list_my_orders", nil), "Authorization", bound(e.p.StoreURL("flower-shop")))
	e.wantRefusal(res, out, b, http.StatusUnauthorized, "invalid_token", `"call-1"`)
	if !strings.Contains(out.Error.Message, "another resource") {
		t.Fatalf("%q", out.Error.Message)
	}
	for _, resource := range []string{e.endpoint, e.p.URL} {
		ok[account.OrderList](e, bound(resource), "list_my_orders", nil)
	}
}

// TestBodyBounded: a body over 64 KiB is refused whole with 413 before
// anything reads it as JSON, whether or not it declares its length.
func TestBodyBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ada("orders:read")
	big := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_buyer_context","arguments":{"pad":"` +
		strings.Repeat("x", account.DefaultMaxBody) + `"}}}`
	res, out, b := e.post(big, "Authorization", tok)
	if res.StatusCode != http.StatusRequestEntityTooLarge || out == nil || out.Error == nil || out.Error.Data.Code != "payload_too_large" {
		t.Fatalf("declared length: HTTP %d %s", res.StatusCode, b)
	}
	// Chunked: no Content-Length to judge by.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte(big)); pw.Close() }()
	res, out, b = e.send(http.MethodPost, pr, "Authorization", tok)
	if res.StatusCode != http.StatusRequestEntityTooLarge || out == nil || out.Error == nil || out.Error.Data.Code != "payload_too_large" {
		t.Fatalf("chunked: HTTP %d %s", res.StatusCode, b)
	}
}

// TestResourceMetadata: the RFC 9728 document is served at the path
// inserted before /account/mcp, next to (and not shadowed by) the
// stores' documents.
func TestResourceMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	get := func(path string) (*http.Response, []byte) {
		res, err := http.Get(e.p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, b := get(account.PathResourceMetadata)
	var md shop.ResourceMetadata
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &md) != nil {
		t.Fatalf("HTTP %d %s", res.StatusCode, b)
	}
	if md.Resource != e.endpoint || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != e.p.URL ||
		strings.Join(md.BearerMethodsSupported, ",") != "header" || strings.Join(md.ScopesSupported, " ") != strings.Join(account.DefaultScopes(), " ") {
		t.Fatalf("metadata %s", b)
	}
	if u, err := url.Parse(md.Resource); err != nil || e.p.URL+"/.well-known/oauth-protected-resource"+u.Path != e.p.URL+account.PathResourceMetadata {
		t.Fatalf("the metadata path is not the well-known prefix inserted before the resource path")
	}
	// The stores' documents are still the stores'.
	res, b = get(shop.PathResourceMetadata + "/s/flower-shop/mcp")
	if err := json.Unmarshal(b, &md); res.StatusCode != http.StatusOK || err != nil || md.Resource != e.p.StoreURL("flower-shop")+"/mcp" {
		t.Fatalf("store metadata: HTTP %d %s", res.StatusCode, b)
	}
	if res, _ := get(shop.PathResourceMetadata + "/account/other"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("a resource that does not exist: HTTP %d", res.StatusCode)
	}
}
