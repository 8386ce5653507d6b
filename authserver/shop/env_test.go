package shop_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// agentServer publishes a platform profile the test can change.
type agentServer struct {
	srv *httptest.Server
	key *mandate.SigningKey

	mu      sync.Mutex
	version string
	caps    []string
	status  int    // non-zero: answer with this status
	raw     string // non-empty: serve this body
	webhook string // the order capability's config.webhook_url
	hits    int
}

func (a *agentServer) URL() string { return a.srv.URL + "/.well-known/ucp" }

func (a *agentServer) set(f func(a *agentServer)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

func newAgentServer(t *testing.T) *agentServer {
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	a := &agentServer{key: key, version: ucp.Version, caps: []string{ucp.CapCheckout, ucp.CapCart, ucp.CapOrder,
		ucp.CapCatalogSearch, ucp.CapCatalogLookup, ucp.CapFulfillment, ucp.CapDiscount}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.hits++
		if a.status != 0 {
			w.WriteHeader(a.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if a.raw != "" {
			io.WriteString(w, a.raw)
			return
		}
		caps := map[string][]ucp.Capability{}
		for _, c := range a.caps {
			cp := ucp.Capability{Entity: ucp.Entity{Version: ucp.Version, Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/schema.json"}}
			switch c {
			case ucp.CapFulfillment, ucp.CapAP2Mandate:
				cp.Extends = ucp.Extends{ucp.CapCheckout}
			case ucp.CapDiscount:
				cp.Extends = ucp.Extends{ucp.CapCheckout, ucp.CapCart}
			case ucp.CapOrder:
				if a.webhook != "" {
					cp.Config, _ = json.Marshal(map[string]string{"webhook_url": a.webhook})
				}
			}
			caps[c] = []ucp.Capability{cp}
		}
		jwk, _ := json.Marshal(a.key.PublicJWK())
		json.NewEncoder(w).Encode(&ucp.Profile{UCP: ucp.ProfileUCP{Version: a.version,
			Services:     map[string][]ucp.Service{ucp.ServiceShopping: {{Entity: ucp.Entity{Version: ucp.Version, Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/mcp.json"}, Transport: "mcp"}}},
			Capabilities: caps, PaymentHandlers: map[string][]ucp.PaymentHandler{}}, SigningKeys: []json.RawMessage{jwk}})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

type envOptions struct {
	store store.Commerce // default: a fresh SQLite store
	dev   bool
	cfg   func(*shop.Config)
}

type env struct {
	t     *testing.T
	svc   *shop.Service
	srv   *httptest.Server
	store store.Commerce
	agent *agentServer
	keys  *shop.MemoryKeys
}

// testAuth authenticates by test headers: X-Test-Client names the
// platform (its key); with X-Test-Buyer and X-Test-Scopes it is a buyer
// token of that client, owned by the platform X-Test-Platform names;
// X-Test-Store makes it a merchant token of that store; X-Test-Client:
// bad is a bad credential.
var testAuth = guard.IdentifyFunc(func(r *http.Request) (*guard.Principal, error) {
	c := r.Header.Get("X-Test-Client")
	switch c {
	case "":
		return guard.Anonymous(), nil
	case "bad":
		return nil, &guard.Error{Status: 401, Code: "invalid_token", Content: "bad"}
	}
	p := &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: c, Platform: c,
		BuyerID: r.Header.Get("X-Test-Buyer"), Scopes: strings.Fields(r.Header.Get("X-Test-Scopes"))}
	switch {
	case p.BuyerID != "":
		p.Kind, p.Credential, p.Platform = guard.KindBuyer, guard.CredentialBearer, r.Header.Get("X-Test-Platform")
	case r.Header.Get("X-Test-Store") != "":
		p.Kind, p.Credential, p.Platform, p.Store = guard.KindMerchant, guard.CredentialBearer, "", r.Header.Get("X-Test-Store")
	}
	return p, nil
})

func newEnv(t *testing.T, o *envOptions) *env {
	t.Helper()
	if o == nil {
		o = &envOptions{}
	}
	st := o.store
	if st == nil {
		st = sqlstoretest.SQLite(t)
	}
	if err := shop.Seed(context.Background(), st, shop.DemoShops(), time.Now()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, agent: newAgentServer(t), keys: &shop.MemoryKeys{}}
	e.srv = httptest.NewUnstartedServer(nil)
	cfg := shop.Config{
		BaseURL:  "http://" + e.srv.Listener.Addr().String(),
		Store:    st,
		Keys:     e.keys,
		Profiles: &discovery.Fetcher{AllowInsecureLoopback: true},
		Guard:    testAuth,
		// platform-a is registered with the env's agent profile, so
		// order webhooks may go there; platform-b with none.
		Accounts: testAccounts{"platform-a": e.agent.URL()},
		Dev:      o.dev,
		// Off unless a test turns them on (ratelimit_test.go): the
		// other tests' call rates are not what they test.
		DisableRateLimits: true,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	svc, err := shop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.srv.Config.Handler = svc.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// req is one REST call. hdr pairs override the defaults (UCP-Agent for
// the env's platform, X-Test-Client platform-a, a fresh Idempotency-Key on
// POST and PUT); an empty value removes the header.
func (e *env) req(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.reqTo(e.srv.URL, method, path, body, hdr...)
}

// reqTo is req against another instance's base URL.
func (e *env) reqTo(base, method, path string, body any, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("UCP-Agent", `profile="`+e.agent.URL()+`"`)
	r.Header.Set("X-Test-Client", "platform-a")
	r.Header.Set("Request-Id", uuid())
	if rd != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost || method == http.MethodPut {
		r.Header.Set("Idempotency-Key", uuid())
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
		} else {
			r.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, b
}

// checkout decodes a checkout body, failing the test on a non-checkout.
func decode[T any](t *testing.T, b []byte) *T {
	t.Helper()
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
	return v
}

func wantStatus(t *testing.T, res *http.Response, body []byte, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, want, body)
	}
}

// line is a request line item.
func line(id string, qty int) map[string]any {
	return map[string]any{"item": map[string]any{"id": id}, "quantity": qty}
}

func lines(l ...map[string]any) map[string]any { return map[string]any{"line_items": l} }

// createCheckout creates a checkout in slug and returns it.
func (e *env) createCheckout(slug string, body any, hdr ...string) *ucp.Checkout {
	e.t.Helper()
	res, b := e.req("POST", "/s/"+slug+"/checkout-sessions", body, hdr...)
	wantStatus(e.t, res, b, http.StatusCreated)
	return decode[ucp.Checkout](e.t, b)
}

// frShipping is a French destination for the flower shop.
var frShipping = map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": []any{map[string]any{
	"street_address": "1 rue de Rivoli", "address_locality": "Paris", "postal_code": "75001", "address_country": "FR"}}}}}

var usShipping = map[string]any{"methods": []any{map[string]any{"type": "shipping", "destinations": []any{map[string]any{
	"street_address": "1 Main St", "address_locality": "Boulder", "address_region": "CO", "postal_code": "80301", "address_country": "US"}}}}}

func cardPayment(token string) map[string]any {
	return map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{
		"handler_id": shop.HandlerCardID, "type": "card", "selected": true,
		"credential": map[string]any{"type": "token", "token": token}}}}}
}

// messageCodes lists the codes of messages.
func messageCodes(msgs []ucp.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Code)
	}
	return out
}

// checkTotals asserts the UCP totals invariants.
func checkTotals(t *testing.T, totals []ucp.Total) {
	t.Helper()
	var sub, tot, sum int64
	nsub, ntot := 0, 0
	for _, x := range totals {
		switch x.Type {
		case ucp.TotalSubtotal:
			nsub++
			sub = x.Amount
		case ucp.TotalTotal:
			ntot++
			tot = x.Amount
			continue
		case ucp.TotalDiscount, ucp.TotalItemsDiscount:
			if x.Amount > 0 {
				t.Fatalf("positive discount %+v", x)
			}
		default:
			if x.Amount < 0 {
				t.Fatalf("negative %s %+v", x.Type, x)
			}
		}
		sum += x.Amount
	}
	if nsub != 1 || ntot != 1 {
		t.Fatalf("want exactly one subtotal and one total: %+v", totals)
	}
	if sum != tot || tot < 0 || sub < 0 {
		t.Fatalf("totals do not sum: %+v", totals)
	}
}

// racingStore simulates a concurrent writer (e.g. the owner's own
// update_checkout, or the hosted page) that lands between completion's read
// of the session and its CompleteSession, for the first `races` calls.
type racingStore struct {
	store.Commerce
	races int32
	n     atomic.Int32
}

func (r *racingStore) CompleteSession(ctx context.Context, s *store.Session, o *store.Order, takes []store.StockTake) error {
	if r.n.Add(1) <= r.races {
		if cur, err := r.Commerce.Session(ctx, s.Kind, s.ShopSlug, s.ID); err == nil {
			cur.UpdatedAt = time.Now()
			if err := r.Commerce.UpdateSession(ctx, cur); err != nil {
				return err
			}
		}
	}
	return r.Commerce.CompleteSession(ctx, s, o, takes)
}

func checkoutStatus(t *testing.T, b []byte) (string, []string) {
	t.Helper()
	c := decode[ucp.Checkout](t, b)
	return c.Status, messageCodes(c.Messages)
}

// backends are SQLite and, with UCPBRIDGE_TEST_PG, PostgreSQL.
func backends(t *testing.T) map[string]func(t *testing.T) store.Commerce {
	return map[string]func(t *testing.T) store.Commerce{
		"sqlite": func(t *testing.T) store.Commerce { return sqlstoretest.SQLite(t) },
		"postgres": func(t *testing.T) store.Commerce {
			s := sqlstoretest.Postgres(t)
			if s == nil {
				t.Skip(sqlstoretest.EnvPG + " is not set")
			}
			return s
		},
	}
}

// allow gives buyer an allowance for client, as the consent page does.
func (e *env) allow(buyer, client string, maxPerOrder, dailyCap int64, currency string) string {
	e.t.Helper()
	al := oauth.Allowance{ID: uuid(), MaxPerOrder: maxPerOrder, DailyCap: dailyCap, Currency: currency, ExpiresAt: time.Now().Add(24 * time.Hour)}
	raw, _ := json.Marshal(al)
	cs, ok := e.store.(interface {
		SaveConsent(ctx context.Context, c *store.Consent) error
	})
	if !ok {
		e.t.Fatal("the env's store keeps no consents")
	}
	if err := cs.SaveConsent(context.Background(), &store.Consent{BuyerID: buyer, ClientID: client, Scope: "purchase:complete",
		Allowance: raw, UpdatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return al.ID
}

// wantIdentityRequired: an anonymous call is a 401 whose challenge points
// at the store's protected-resource metadata, with the identity_required
// code.
func wantIdentityRequired(t *testing.T, e *env, method, path string, body any) {
	t.Helper()
	res, b := e.req(method, path, body, "X-Test-Client", "")
	wantStatus(t, res, b, http.StatusUnauthorized)
	ch := res.Header.Get("WWW-Authenticate")
	if !strings.Contains(ch, `resource_metadata="`+e.srv.URL+"/.well-known/oauth-protected-resource/s/") || !strings.HasPrefix(ch, "Bearer ") ||
		strings.Contains(ch, "error=") {
		t.Fatalf("%s %s: challenge %q", method, path, ch)
	}
	// Both UCP shapes: the flat protocol error and the messages the
	// identity-linking examples send.
	var refusal struct {
		Code     string
		Messages []ucp.Message
	}
	if json.Unmarshal(b, &refusal) != nil || refusal.Code != "identity_required" || len(refusal.Messages) != 1 || refusal.Messages[0].Code != "identity_required" {
		t.Fatalf("%s %s: %s", method, path, b)
	}
}

// testAccounts registers platforms with a profile URL; it knows no
// buyers.
type testAccounts map[string]string

func (a testAccounts) Client(_ context.Context, id string) (*store.Client, error) {
	if p, ok := a[id]; ok {
		return &store.Client{ID: id, Role: store.RolePlatform, Platform: id, Profile: p}, nil
	}
	return nil, store.ErrNotFound
}

func (testAccounts) Buyer(context.Context, string) (*store.Buyer, error) {
	return nil, store.ErrNotFound
}

// dualAuth is testAuth plus X-Test-Dual: platform-a's key with the named
// buyer's bearer (Artos platform+buyer).
var dualAuth = guard.IdentifyFunc(func(r *http.Request) (*guard.Principal, error) {
	if b := r.Header.Get("X-Test-Dual"); b != "" {
		return &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey,
			ClientID: "platform-a", Platform: "platform-a", BuyerID: b, Dual: true, Scopes: strings.Fields(cmp.Or(r.Header.Get("X-Test-Scopes"), "purchase:complete"))}, nil
	}
	return testAuth(r)
})
