package shop_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// testClock is a settable clock for the rate-limit tests: buckets refill
// only when the test says so.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitedEnv is an env with rate limits on and a clock the test moves.
// Loopback is a trusted proxy, so X-Forwarded-For names the caller.
func limitedEnv(t *testing.T, rl shop.RateLimits, cfg func(*shop.Config)) (*env, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Now()}
	st := sqlstoretest.SQLite(t)
	e := newEnv(t, &envOptions{store: st, cfg: func(c *shop.Config) {
		c.DisableRateLimits = false
		c.RateLimits = rl
		c.Now = clk.Now
		c.ClientIP = &clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
		if cfg != nil {
			cfg(c)
		}
	}})
	return e, clk
}

// wantRateLimited asserts the REST refusal: 429, Retry-After, the flat
// UCP protocol error.
func wantRateLimited(t *testing.T, res *http.Response, b []byte, retryAfter string) {
	t.Helper()
	catProtoErr(t, res, b, http.StatusTooManyRequests, "rate_limited")
	if got := res.Header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
	if p := decode[map[string]string](t, b); (*p)["content"] == "" {
		t.Fatalf("no content: %s", b)
	}
}

// TestRateLimitPerCredentialREST: a platform key over its burst gets 429
// with Retry-After; another platform, and a buyer token of the same
// client, have buckets of their own; the bucket refills at the rate.
func TestRateLimitPerCredentialREST(t *testing.T) {
	t.Parallel()
	e, clk := limitedEnv(t, shop.RateLimits{Credential: ratelimit.Limit{Rate: 0.5, Burst: 3}}, nil)
	create := func(hdr ...string) (*http.Response, []byte) {
		return e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)), hdr...)
	}
	for range 3 {
		res, b := create()
		wantStatus(t, res, b, http.StatusCreated)
	}
	before := cartSessions(t, e.store.(*sqlstore.Store), "checkout")
	res, b := create()
	wantRateLimited(t, res, b, "2") // one token at 0.5/s
	if n := cartSessions(t, e.store.(*sqlstore.Store), "checkout"); n != before {
		t.Fatalf("a refused create stored a checkout (%d -> %d)", before, n)
	}
	// Reads are charged too: the bucket is the caller's, not the operation's.
	res, b = e.req("POST", "/s/flower-shop/catalog/search", map[string]any{"query": "roses"})
	wantRateLimited(t, res, b, "2")

	res, b = create("X-Test-Client", "platform-b")
	wantStatus(t, res, b, http.StatusCreated)
	// A buyer's token through platform-a's app is the (client, buyer)
	// pair: one app's buyers do not share the app's bucket, nor each other's.
	for _, buyer := range []string{"ada", "bob"} {
		for range 3 {
			res, b = create("X-Test-Buyer", buyer, "X-Test-Scopes", "purchase:complete")
			wantStatus(t, res, b, http.StatusCreated)
		}
		res, b = create("X-Test-Buyer", buyer, "X-Test-Scopes", "purchase:complete")
		wantRateLimited(t, res, b, "2")
	}

	clk.Add(2 * time.Second)
	res, b = create()
	wantStatus(t, res, b, http.StatusCreated)
	res, b = create()
	wantRateLimited(t, res, b, "2")
}

// TestRateLimitMCP: the same bucket over MCP refuses with HTTP 429 and the
// UCP JSON-RPC error (-32000, data.code rate_limited, data.retry_after).
func TestRateLimitMCP(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t, shop.RateLimits{Credential: ratelimit.Limit{Rate: 0.25, Burst: 2}}, nil)
	args := func() map[string]any { return e.mcpArgs("checkout", lines(line("bouquet_roses", 1))) }
	for range 2 {
		e.mcpCall("flower-shop", "create_checkout", args())
	}
	// REST and MCP share the credential's bucket.
	res, b := e.req("POST", "/s/flower-shop/catalog/search", map[string]any{"query": "roses"})
	wantRateLimited(t, res, b, "4")
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "create_checkout", args())
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
	if got := res.Header.Get("Retry-After"); got != "4" {
		t.Fatalf("Retry-After %q, want 4", got)
	}
	var raw struct {
		Error struct {
			Data struct {
				RetryAfter int `json:"retry_after"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &raw) != nil || raw.Error.Data.RetryAfter != 4 {
		t.Fatalf("error.data.retry_after missing: %s", b)
	}
	// The cross-store catalog's MCP endpoint is charged to the same bucket.
	res, out, b = e.mcpCallRaw("/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses"}))
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
	// Another credential is served.
	e.mcpCall("flower-shop", "create_checkout", args(), "X-Test-Client", "platform-b")
}

// TestRateLimitAnonymousPerNetwork: anonymous callers are limited per
// client network (through the trusted proxy's X-Forwarded-For): two
// addresses do not share a bucket, one IPv6 /64 does.
func TestRateLimitAnonymousPerNetwork(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t, shop.RateLimits{Anonymous: ratelimit.Limit{Rate: 1, Burst: 2}}, nil)
	search := func(from string) (*http.Response, []byte) {
		return e.req("POST", "/catalog/search", map[string]any{"query": "roses"}, "X-Test-Client", "", "X-Forwarded-For", from)
	}
	for _, from := range []string{"192.0.2.1", "192.0.2.2", "2001:db8:1:2::1"} {
		for range 2 {
			res, b := search(from)
			wantStatus(t, res, b, http.StatusOK)
		}
		res, b := search(from)
		wantRateLimited(t, res, b, "1")
	}
	res, b := search("2001:db8:1:2::ffff") // the same /64
	wantRateLimited(t, res, b, "1")
	res, b = search("2001:db8:1:3::1")
	wantStatus(t, res, b, http.StatusOK)
	// A credential is not charged to its network.
	res, b = e.req("POST", "/catalog/search", map[string]any{"query": "roses"}, "X-Forwarded-For", "192.0.2.1")
	wantStatus(t, res, b, http.StatusOK)
	// MCP carries the caller's address too.
	mcpSearch := func(from string) (*http.Response, *rpcResponse, []byte) {
		return e.mcpCallRaw("/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses"}), "X-Test-Client", "", "X-Forwarded-For", from)
	}
	for range 2 {
		res, out, b := mcpSearch("192.0.2.50")
		mustResult(t, "search_catalog", res, out, b)
	}
	res, out, b := mcpSearch("192.0.2.50")
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
	res, out, b = mcpSearch("192.0.2.51")
	mustResult(t, "search_catalog", res, out, b)
}

// TestRateLimitForwardedForNeedsTrustedProxy: without trusted proxies the
// socket peer is the caller, so a forged X-Forwarded-For mints no fresh
// buckets. The handler is called directly with a RemoteAddr per caller.
func TestRateLimitForwardedForNeedsTrustedProxy(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t, shop.RateLimits{Anonymous: ratelimit.Limit{Rate: 1, Burst: 2}}, func(c *shop.Config) { c.ClientIP = nil })
	search := func(remote, forged string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/catalog/search", strings.NewReader(`{"query":"roses"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", forged)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		e.svc.Handler().ServeHTTP(w, r)
		return w
	}
	for i, forged := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		w := search("198.51.100.7:40000", forged)
		if want := map[bool]int{true: 200, false: 429}[i < 2]; w.Code != want {
			t.Fatalf("call %d forging %s: HTTP %d, want %d: %s", i+1, forged, w.Code, want, w.Body)
		}
	}
	if w := search("198.51.100.8:40000", ""); w.Code != http.StatusOK {
		t.Fatalf("another peer: HTTP %d: %s", w.Code, w.Body)
	}
}

// TestRateLimitProfileAndHostedPage: the business profile and the hosted
// checkout page take no credential and are limited per network, each in
// its own form (a UCP protocol error; a page for a person).
func TestRateLimitProfileAndHostedPage(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t, shop.RateLimits{Anonymous: ratelimit.Limit{Rate: 0.5, Burst: 2}}, nil)
	for _, path := range []string{"/.well-known/ucp", "/s/flower-shop/.well-known/ucp"} {
		from := "192.0.2." + map[bool]string{true: "10", false: "11"}[path == "/.well-known/ucp"]
		for range 2 {
			res, b := e.req("GET", path, nil, "X-Forwarded-For", from)
			wantStatus(t, res, b, http.StatusOK)
		}
		res, b := e.req("GET", path, nil, "X-Forwarded-For", from)
		wantRateLimited(t, res, b, "2")
	}

	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)), "X-Forwarded-For", "192.0.2.20")
	for i := range 3 {
		res, b := e.req("GET", strings.TrimPrefix(c.ContinueURL, e.srv.URL), nil, "X-Forwarded-For", "192.0.2.20", "X-Test-Client", "")
		if i < 2 {
			wantStatus(t, res, b, http.StatusOK)
			continue
		}
		wantStatus(t, res, b, http.StatusTooManyRequests)
		if res.Header.Get("Retry-After") != "2" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("hosted page refusal: Retry-After %q, Content-Type %q", res.Header.Get("Retry-After"), res.Header.Get("Content-Type"))
		}
	}
	// Submitting the form is charged to the same network.
	res, b := e.req("POST", strings.TrimPrefix(c.ContinueURL, e.srv.URL), "token=x", "X-Forwarded-For", "192.0.2.20",
		"Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, res, b, http.StatusTooManyRequests)
}

// TestRateLimitFailedCredentials: bad credentials are counted per network;
// past the burst the network is refused before the guard runs, so garbage
// keys cost no credential lookups.
func TestRateLimitFailedCredentials(t *testing.T) {
	t.Parallel()
	var identified atomic.Int64
	e, _ := limitedEnv(t, shop.RateLimits{Anonymous: ratelimit.Limit{Rate: 0.5, Burst: 3}}, func(c *shop.Config) {
		c.Guard = guard.IdentifyFunc(func(r *http.Request) (*guard.Principal, error) {
			identified.Add(1)
			if r.Header.Get("X-Test-Client") == "down" {
				return nil, &guard.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Content: "down", RetryAfter: 1}
			}
			return testAuth.Identify(r)
		})
	})
	search := func(from, client string) (*http.Response, []byte) {
		return e.req("POST", "/s/flower-shop/catalog/search", map[string]any{"query": "roses"}, "X-Forwarded-For", from, "X-Test-Client", client)
	}
	for range 3 {
		res, b := search("192.0.2.1", "bad")
		wantStatus(t, res, b, http.StatusUnauthorized)
	}
	n := identified.Load()
	res, b := search("192.0.2.1", "bad")
	wantRateLimited(t, res, b, "2")
	if identified.Load() != n {
		t.Fatal("the guard ran for a network over its failed-credential budget")
	}
	// Over MCP as well.
	res, out, b := e.mcpCallRaw("/s/flower-shop/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "x"}),
		"X-Forwarded-For", "192.0.2.1", "X-Test-Client", "bad")
	wantRPCError(t, res, out, b, http.StatusTooManyRequests, -32000, "rate_limited")
	// A credential store that is down is nobody's failure.
	for range 5 {
		res, b = search("192.0.2.3", "down")
		wantStatus(t, res, b, http.StatusServiceUnavailable)
	}
	// Another network is judged on its own; failures do not touch the
	// anonymous budget.
	res, b = search("192.0.2.2", "bad")
	wantStatus(t, res, b, http.StatusUnauthorized)
	for range 3 {
		res, b = search("192.0.2.2", "")
		wantStatus(t, res, b, http.StatusOK)
	}
}

// TestRateLimitDefaultsOn: a zero Config limits with DefaultRateLimits
// (the 41st anonymous call from one address in a burst is refused).
func TestRateLimitDefaultsOn(t *testing.T) {
	t.Parallel()
	def := shop.DefaultRateLimits()
	if def.Anonymous != (ratelimit.Limit{Rate: 10, Burst: 40}) || def.Credential != (ratelimit.Limit{Rate: 50, Burst: 200}) {
		t.Fatalf("defaults %+v", def)
	}
	e, _ := limitedEnv(t, shop.RateLimits{}, nil)
	for i := range 41 {
		res, b := e.req("POST", "/catalog/search", map[string]any{"query": "roses"}, "X-Test-Client", "", "X-Forwarded-For", "192.0.2.1")
		if i < 40 {
			wantStatus(t, res, b, http.StatusOK)
		} else {
			wantRateLimited(t, res, b, "1")
		}
	}
}

func TestRateLimitInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, rl := range []shop.RateLimits{
		{Anonymous: ratelimit.Limit{Rate: -1, Burst: 1}},
		{Credential: ratelimit.Limit{Rate: 5, Burst: 0}},
	} {
		_, err := shop.New(shop.Config{BaseURL: "http://127.0.0.1:1", Store: sqlstoretest.SQLite(t), Keys: &shop.MemoryKeys{}, RateLimits: rl})
		var le *ratelimit.LimitError
		if !errors.As(err, &le) {
			t.Errorf("%+v: %v, want a *ratelimit.LimitError", rl, err)
		}
	}
}

// TestRateLimitPlatformHarness: the platform wires the stores' limits
// through authserver.Config.DisableRateLimits. The default harness (which
// sets it) is not slowed past any burst; with it off, the real guard's
// API key is charged to its client.
func TestRateLimitPlatformHarness(t *testing.T) {
	t.Parallel()
	search := func(t *testing.T, p *authservertest.Platform, key string, from ...string) int {
		r, _ := http.NewRequest("POST", p.StoreURL("flower-shop")+"/catalog/search", strings.NewReader(`{"query":"roses"}`))
		r.Header.Set("Content-Type", "application/json")
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		if len(from) > 0 {
			r.Header.Set("X-Forwarded-For", from[0])
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Error(err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
		// Twice the default bursts, far faster than the default rates
		// refill them, from 8 callers at once.
		def := shop.DefaultRateLimits()
		var refused atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 2 * def.Credential.Burst / 8 {
					if search(t, p, p.PlatformKey) != http.StatusOK {
						refused.Add(1)
					}
				}
				for range 2 * def.Anonymous.Burst / 8 {
					if search(t, p, "") != http.StatusOK {
						refused.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := refused.Load(); n > 0 {
			t.Fatalf("the default harness refused %d of %d calls", n, 2*(def.Credential.Burst+def.Anonymous.Burst))
		}
	})
	t.Run("limits on", func(t *testing.T) {
		t.Parallel()
		p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true, Config: func(c *authserver.Config) {
			c.DisableRateLimits = false
			c.Shop.RateLimits = shop.RateLimits{Credential: ratelimit.Limit{Rate: 1e-3, Burst: 2}, Anonymous: ratelimit.Limit{Rate: 1e-3, Burst: 1}}
			c.OAuth.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}})
		for i, want := range []int{200, 200, 429} {
			if code := search(t, p, p.PlatformKey); code != want {
				t.Fatalf("platform call %d: HTTP %d, want %d", i+1, code, want)
			}
		}
		// The OAuth server's trusted proxies name anonymous callers for
		// the stores too.
		for _, c := range []struct {
			from string
			want int
		}{{"192.0.2.1", 200}, {"192.0.2.1", 429}, {"192.0.2.2", 200}} {
			if code := search(t, p, "", c.from); code != c.want {
				t.Fatalf("anonymous from %s: HTTP %d, want %d", c.from, code, c.want)
			}
		}
	})
}
