package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The Artos SDK's protocol version (its UCP_VERSION), which its agent
// profile and UCP-Agent header carry.
const artosVersion = "2026-08-25"

// artosAPIKey is the platform key the SDK sends as X-API-Key.
const artosAPIKey = "test-platform.secret"

// artosBuyerToken is the buyer Ada's access token for artos-agent, an
// OAuth client of the test-platform application (purchase:complete).
const artosBuyerToken = "at_ada_artos_agent"

// artosAuth identifies the SDK's credentials the way
// guard.Guard.IdentifyProfile does (its own tests cover the real tokens):
// the platform key alone is the platform; artosBuyerToken alone is Ada
// through artos-agent (KindBuyer); the key with her bearer is the
// platform naming her (Dual, Artos platform+buyer). An unknown key or
// bearer is a 401. Without either, the harness's test headers apply.
var artosAuth = guard.IdentifyFunc(func(r *http.Request) (*guard.Principal, error) {
	key, auth := r.Header.Get("X-API-Key"), r.Header.Get("Authorization")
	if key == "" && auth == "" {
		return testAuth(r)
	}
	var p *guard.Principal
	if key != "" {
		if key != artosAPIKey {
			return nil, &guard.Error{Status: 401, Code: "invalid_token", Content: "unknown API key"}
		}
		p = &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "test-platform", Platform: "test-platform"}
	}
	if auth == "" {
		return p, nil
	}
	scheme, tok, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) != artosBuyerToken {
		return nil, &guard.Error{Status: 401, Code: "invalid_token", Content: "the API key or access token is not valid"}
	}
	if p != nil {
		p.Dual, p.BuyerID = true, "buyer_ada"
		return p, nil
	}
	return &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer, ClientID: "artos-agent",
		Platform: "test-platform", BuyerID: "buyer_ada", Scopes: []string{"purchase:complete", "offline_access"}}, nil
})

// exchange is one request the SDK made, as the server saw it.
type exchange struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Status       int
	Response     []byte
}

// wireRecorder records every request and response passing to h.
type wireRecorder struct {
	h  http.Handler
	mu sync.Mutex
	ex []*exchange
}

type captureWriter struct {
	http.ResponseWriter
	x *exchange
}

func (c *captureWriter) WriteHeader(s int) { c.x.Status = s; c.ResponseWriter.WriteHeader(s) }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.x.Status == 0 {
		c.x.Status = http.StatusOK
	}
	c.x.Response = append(c.x.Response, b...)
	return c.ResponseWriter.Write(b)
}

func (w *wireRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	x := &exchange{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	w.h.ServeHTTP(&captureWriter{rw, x}, r)
	w.mu.Lock()
	w.ex = append(w.ex, x)
	w.mu.Unlock()
}

func (w *wireRecorder) exchanges() []*exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ex)
}

// artosResult is what .ci/interop/artos.mjs prints.
type artosResult struct {
	OK  bool `json:"ok"`
	SDK struct {
		Name, Version, UCPVersion, Node string
	} `json:"sdk"`
	Steps    map[string]json.RawMessage `json:"steps"`
	Mandates []struct {
		Header                             map[string]any `json:"header"`
		ClaimNames                         []string       `json:"claimNames"`
		Merchant, JTI, CheckoutID          string
		CheckoutStatus                     string `json:"checkoutStatus"`
		Exp                                int64  `json:"exp"`
		EmbeddedMerchantAuthorizationValid bool   `json:"embeddedMerchantAuthorizationValid"`
	} `json:"mandates"`
}

// stepResult is the union of the fields artos.mjs reports per step.
type stepResult struct {
	OK           bool     `json:"ok"`
	Error        string   `json:"error"`
	ErrorName    string   `json:"errorName"`
	Kids         []string `json:"kids"`
	UCPStatus    string   `json:"ucpStatus"`
	UCPVersion   string   `json:"ucpVersion"`
	IsError      bool     `json:"isError"`
	IDs          []string `json:"ids"`
	ID           string   `json:"id"`
	Capabilities []string `json:"capabilities"`
	Status       string   `json:"status"`
	Currency     string   `json:"currency"`
	Total        int64    `json:"total"`
	Messages     []string `json:"messages"`
	Message      string   `json:"message"`
	Details      []struct {
		Type, Code, Content string
	} `json:"details"`
	ContinueURL                string `json:"continueUrl"`
	OrderID                    string `json:"orderId"`
	MerchantAuthorizationValid bool   `json:"merchantAuthorizationValid"`
	Verified                   bool   `json:"verified"`
	Outcome                    string `json:"outcome"`
	Code                       string `json:"code"`
	CheckoutID                 string `json:"checkoutId"`
	LineItems                  []struct {
		ID       string `json:"id"`
		Quantity int64  `json:"quantity"`
	} `json:"lineItems"`
	Checkout *stepResult `json:"checkout"`
}

func interopDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".ci", "interop")
}

// needArtos skips without node or the SDK unless UCPBRIDGE_REQUIRE_INTEROP
// is set, and returns the interop folder.
func needArtos(t *testing.T) string {
	t.Helper()
	dir := interopDir()
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "@artos-commerce", "ucp-client", "package.json"))
	if errNode != nil || errMods != nil {
		if os.Getenv("UCPBRIDGE_REQUIRE_INTEROP") != "" {
			t.Fatalf("interop required but unavailable (node: %v, @artos-commerce/ucp-client: %v)", errNode, errMods)
		}
		t.Skip("node or .ci/interop/node_modules/@artos-commerce missing: run `npm ci` in .ci/interop")
	}
	return dir
}

// runArtos runs `node artos.mjs <cmd>` with job on stdin and decodes its
// result into res.
func runArtos(t *testing.T, cmd string, job, res any) []byte {
	t.Helper()
	dir := needArtos(t)
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "node", filepath.Join(dir, "artos.mjs"), cmd)
	c.Dir = dir
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("node artos.mjs: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("artos.mjs %s output: %v\n%s", cmd, err, out)
	}
	return out
}

// TestArtosSDKInterop drives the stores with the real Artos Node SDK
// (@artos-commerce/ucp-client, pinned in .ci/interop/package.json): the
// catalog (global REST and MCP, per store), a cart, a checkout, the SDK's
// confirmPurchase over AP2 with the card rail, and a paid purchase made
// from the SDK's own primitives (transport, Ap2Signer, verifier) with the
// sandbox success token. The agent profile is an Artos one (version
// 2026-08-25) that publishes the SDK's signing key and negotiates the AP2
// mandates extension, so every completion below passed the server's
// checkout_mandate verification.
func TestArtosSDKInterop(t *testing.T) {
	t.Parallel()
	needArtos(t)
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Guard = artosAuth }})
	e.agent.set(func(a *agentServer) {
		a.version = artosVersion
		a.caps = append(a.caps, ucp.CapAP2Mandate)
	})
	rec := &wireRecorder{h: e.svc.Handler()}
	front := httptest.NewServer(rec)
	t.Cleanup(front.Close)

	priv, err := e.agent.key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	job := map[string]any{
		"baseUrl":    front.URL,
		"apiKey":     artosAPIKey,
		"profileUrl": e.agent.URL(),
		"agentJwk":   json.RawMessage(priv),
		"kid":        e.agent.key.KeyID(),
		"store":      "flower-shop",
		"item":       "bouquet_roses",
		"quantity":   1,
		"query":      "roses",
		"shippingAddress": map[string]any{"street_address": "1 rue de Rivoli", "address_locality": "Paris",
			"postal_code": "75001", "address_country": "FR"},
		// The SDK README's example destination, flat {country, postal_code}.
		"readmeAddress": map[string]any{"country": "US", "postal_code": "94016"},
	}
	res := &artosResult{}
	raw := runArtos(t, "purchase", job, res)
	t.Logf("SDK %s@%s (UCP_VERSION %s) on node %s", res.SDK.Name, res.SDK.Version, res.SDK.UCPVersion, res.SDK.Node)
	step := func(name string) *stepResult {
		t.Helper()
		b, ok := res.Steps[name]
		if !ok {
			t.Fatalf("artos.mjs ran no step %q:\n%s", name, raw)
		}
		s := &stepResult{}
		if err := json.Unmarshal(b, s); err != nil {
			t.Fatal(err)
		}
		if !s.OK {
			dumpWire(t, rec)
			t.Fatalf("SDK step %s threw %s: %s", name, s.ErrorName, s.Error)
		}
		return s
	}
	if res.SDK.UCPVersion != artosVersion {
		t.Fatalf("the SDK's UCP_VERSION is %q, want %q", res.SDK.UCPVersion, artosVersion)
	}

	// The store profile: the SDK reads its top-level keys.
	if s := step("storeProfile"); len(s.Kids) != 1 || s.Kids[0] == "" {
		t.Fatalf("the SDK found no store key: %+v", s)
	}

	// Catalog: global over REST and MCP, per store over MCP.
	for _, name := range []string{"globalSearch", "globalSearchMcp", "storeSearch", "globalLookup"} {
		s := step(name)
		if s.UCPStatus != "success" || !slices.Contains(s.IDs, "bouquet_roses") {
			t.Fatalf("%s: %+v", name, s)
		}
	}
	for _, name := range []string{"globalGetProduct", "storeGetProduct"} {
		if s := step(name); s.UCPStatus != "success" || s.ID != "bouquet_roses" {
			t.Fatalf("%s: %+v", name, s)
		}
	}
	if s := step("cart"); s.ID == "" || s.IsError || s.Total != 3500 {
		t.Fatalf("cart: %+v", s)
	}

	// The checkout the SDK created: AP2 negotiated, priced (35.00 roses
	// plus 6.90 courier), signed.
	co := step("createCheckout")
	if co.Status != ucp.CheckoutReadyForComplete || co.Currency != "EUR" || co.Total != 4190 ||
		!slices.Contains(co.Capabilities, ucp.CapAP2Mandate) || !co.MerchantAuthorizationValid {
		t.Fatalf("createCheckout: %+v", co)
	}

	// confirmPurchase: its card branch sends {handler_id, selected} with
	// no credential, so the store hands the buyer off to continue_url,
	// after accepting the SDK's checkout_mandate.
	cp := step("confirmPurchase")
	wantContinue := e.srv.URL + "/s/flower-shop/checkout-sessions/" + co.ID + "/continue?token="
	if cp.Outcome != "escalation_required" || !strings.HasPrefix(cp.ContinueURL, wantContinue) || cp.Checkout == nil ||
		cp.Checkout.Status != ucp.CheckoutRequiresEscalation || !slices.Contains(cp.Checkout.Messages, "buyer_payment_required") ||
		!cp.Checkout.MerchantAuthorizationValid {
		t.Fatalf("confirmPurchase: %+v checkout %+v", cp, cp.Checkout)
	}
	_, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+co.ID, nil, "X-Test-Client", "test-platform")
	if c := decode[ucp.Checkout](t, b); c.Status != ucp.CheckoutRequiresEscalation {
		t.Fatalf("the escalated checkout is %s: %s", c.Status, b)
	}

	// The SDK's primitives with the success token: the order is placed.
	if s := step("purchaseCheckout"); s.Status != ucp.CheckoutReadyForComplete || !s.MerchantAuthorizationValid {
		t.Fatalf("purchaseCheckout: %+v", s)
	}
	p := step("purchase")
	if !p.Verified || p.Status != ucp.CheckoutCompleted || p.UCPStatus != "success" || p.OrderID == "" || !p.MerchantAuthorizationValid {
		t.Fatalf("purchase: %+v", p)
	}
	if s := step("purchaseReplay"); s.OrderID != p.OrderID || s.Status != ucp.CheckoutCompleted {
		t.Fatalf("the replayed completion placed another order or failed: %+v (first %s)", s, p.OrderID)
	}
	o := step("getOrder")
	if o.ID != p.OrderID || o.IsError || o.Total != p.Total || len(o.LineItems) != 1 ||
		o.LineItems[0].ID != "bouquet_roses" || o.LineItems[0].Quantity != 1 {
		t.Fatalf("getOrder: %+v", o)
	}
	// The order over REST, with the harness's credential for the same
	// platform and with the SDK's key.
	for _, hdr := range [][]string{{"X-Test-Client", "test-platform"}, {"X-Test-Client", "", "X-API-Key", artosAPIKey}} {
		res, b := e.req("GET", "/s/flower-shop/orders/"+p.OrderID, nil, hdr...)
		wantStatus(t, res, b, http.StatusOK)
		ord := decode[ucp.Order](t, b)
		if ord.ID != p.OrderID || len(ord.LineItems) != 1 || ord.LineItems[0].Item.ID != "bouquet_roses" || ord.LineItems[0].Quantity.Total != 1 {
			t.Fatalf("order: %s", b)
		}
	}

	// The mandates sent (confirmPurchase's, the purchase's and its
	// replay's): compact ES256 with the agent's kid, Artos' claims, the
	// verbatim signed checkout inside.
	if len(res.Mandates) != 3 || res.Mandates[2].JTI != res.Mandates[1].JTI {
		t.Fatalf("want 3 mandates sent, the last a replay: %+v", res.Mandates)
	}
	now := time.Now().Unix()
	for i, m := range res.Mandates {
		want := []string{"checkout", "merchant", "jti", "exp"}
		if m.Header["alg"] != "ES256" || m.Header["kid"] != e.agent.key.KeyID() || len(m.Header) != 2 ||
			!slices.Equal(m.ClaimNames, want) || m.Merchant != "flower-shop" || !strings.HasPrefix(m.JTI, "m_") ||
			m.Exp < now || m.Exp > now+600 || !m.EmbeddedMerchantAuthorizationValid {
			t.Fatalf("mandate %d: %+v", i, m)
		}
	}
	if res.Mandates[0].CheckoutID != co.ID || res.Mandates[1].CheckoutID != p.ID || res.Mandates[0].JTI == res.Mandates[1].JTI {
		t.Fatalf("mandates bind %s and %s, want %s and %s", res.Mandates[0].CheckoutID, res.Mandates[1].CheckoutID, co.ID, p.ID)
	}

	// What the server received: the SDK's headers and stateless JSON-RPC.
	tools := map[string]int{}
	for _, x := range rec.exchanges() {
		if x.Status != http.StatusOK {
			dumpWire(t, rec)
			t.Fatalf("%s %s answered %d: %s", x.Method, x.Path, x.Status, x.Response)
		}
		if x.Header.Get("X-API-Key") != artosAPIKey || x.Header.Get("Authorization") != "" ||
			x.Header.Get("Mcp-Session-Id") != "" || x.Header.Get("Request-Id") == "" {
			t.Fatalf("%s %s headers: %v", x.Method, x.Path, x.Header)
		}
		profile, version, err := discovery.ParseUCPAgent(x.Header.Get("UCP-Agent"))
		if err != nil || profile != e.agent.URL() || version != artosVersion {
			t.Fatalf("UCP-Agent %q: %q %q %v", x.Header.Get("UCP-Agent"), profile, version, err)
		}
		if !strings.HasSuffix(x.Path, "/mcp") {
			continue
		}
		if x.Header.Get("Accept") != "application/json" {
			t.Fatalf("MCP Accept %q", x.Header.Get("Accept"))
		}
		var rpc struct {
			Method string `json:"method"`
			Params struct {
				Name      string `json:"name"`
				Arguments struct {
					Meta map[string]json.RawMessage `json:"meta"`
				} `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(x.Body, &rpc); err != nil || rpc.Method != "tools/call" || rpc.Params.Arguments.Meta["ucp-agent"] == nil {
			t.Fatalf("not a stateless tools/call with meta: %s", x.Body)
		}
		tools[rpc.Params.Name]++
		var out struct {
			Result struct {
				StructuredContent json.RawMessage `json:"structuredContent"`
			} `json:"result"`
		}
		if json.Unmarshal(x.Response, &out) != nil || len(out.Result.StructuredContent) == 0 {
			t.Fatalf("no structuredContent for %s: %s", rpc.Params.Name, x.Response)
		}
	}
	for _, name := range []string{"search_catalog", "lookup_catalog", "get_product", "create_cart", "get_cart",
		"create_checkout", "get_checkout", "complete_checkout", "get_order"} {
		if tools[name] == 0 {
			t.Fatalf("the SDK never called %s: %v", name, tools)
		}
	}

	// The SDK README's example (bouquet_roses to {country: "US",
	// postal_code: "94016"}): flower-shop ships there, so the checkout
	// the SDK creates is ready to complete (and TestArtosReadmeExample-
	// Completes completes one).
	if s := step("readmeAddress"); s.Status != ucp.CheckoutReadyForComplete || s.Total != 3500+690 || len(s.Messages) != 0 || !s.MerchantAuthorizationValid {
		t.Fatalf("the SDK README's example: %+v", s)
	}
}

// dumpWire logs every exchange, for diagnosing a refusal.
func dumpWire(t *testing.T, rec *wireRecorder) {
	t.Helper()
	for _, x := range rec.exchanges() {
		t.Logf("%s %s\nUCP-Agent: %s\n%s\n-> %d %s", x.Method, x.Path, x.Header.Get("UCP-Agent"), x.Body, x.Status, x.Response)
	}
}
