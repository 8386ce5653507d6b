package shop_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestBusinessProfile: the store profile's shape and hosting rules.
func TestBusinessProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, b := e.req("GET", "/s/energy-sport/.well-known/ucp", nil)
	wantStatus(t, res, b, http.StatusOK)
	cc := res.Header.Get("Cache-Control")
	if !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=300") {
		t.Fatalf("Cache-Control %q", cc)
	}
	p := decode[ucp.Profile](t, b)
	if p.UCP.Version != ucp.Version {
		t.Fatal(p.UCP.Version)
	}
	svcs := p.UCP.Services[ucp.ServiceShopping]
	if len(svcs) != 2 || svcs[0].Endpoint != e.srv.URL+"/s/energy-sport" || svcs[1].Transport != "mcp" || svcs[1].Endpoint != e.srv.URL+"/s/energy-sport/mcp" {
		t.Fatalf("%+v", svcs)
	}
	for _, c := range []string{ucp.CapCheckout, ucp.CapCart, ucp.CapOrder, ucp.CapCatalogSearch, ucp.CapCatalogLookup, ucp.CapAP2Mandate, ucp.CapIdentityLinking} {
		if len(p.UCP.Capabilities[c]) != 1 {
			t.Fatalf("missing %s", c)
		}
	}
	var il struct {
		Scopes map[string]json.RawMessage `json:"scopes"`
	}
	if json.Unmarshal(p.UCP.Capabilities[ucp.CapIdentityLinking][0].Config, &il) != nil || len(il.Scopes) == 0 {
		t.Fatal("identity linking without config.scopes")
	}
	if p.UCP.PaymentHandlers["sh.artos.card"][0].ID != "artos.card" || p.UCP.PaymentHandlers["sh.artos.crypto"][0].ID != "artos.crypto" {
		t.Fatalf("%+v", p.UCP.PaymentHandlers)
	}
	// signing_keys (UCP) and keys (Artos SDK, draft) carry the store key.
	key, _ := e.keys.ShopKey(t.Context(), "energy-sport")
	var raw struct {
		SigningKeys []map[string]any `json:"signing_keys"`
		Keys        []map[string]any `json:"keys"`
	}
	json.Unmarshal(b, &raw)
	if len(raw.SigningKeys) != 1 || len(raw.Keys) != 1 || raw.SigningKeys[0]["kid"] != key.KeyID() || raw.Keys[0]["kid"] != key.KeyID() || raw.SigningKeys[0]["d"] != nil {
		t.Fatalf("%s", b)
	}
	if ks, err := mandate.ParseKeySet(b); err != nil || ks.Len() != 1 {
		t.Fatalf("%v", err)
	}
	res, b = e.req("GET", "/s/nowhere/.well-known/ucp", nil)
	wantStatus(t, res, b, http.StatusNotFound)
	// The apex profile offers the cross-store catalog only.
	res, b = e.req("GET", "/.well-known/ucp", nil)
	wantStatus(t, res, b, http.StatusOK)
	apex := decode[ucp.Profile](t, b)
	if apex.UCP.Capabilities[ucp.CapCatalogSearch] == nil || apex.UCP.Capabilities[ucp.CapCheckout] != nil {
		t.Fatalf("%s", b)
	}
}

// TestNegotiation: discovery and negotiation errors (ucp.md §1.4).
func TestNegotiation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	create := func(hdr ...string) (*http.Response, []byte) {
		return e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)), hdr...)
	}
	flat := func(t *testing.T, b []byte, code string) {
		t.Helper()
		var v struct{ Code, Content string }
		if json.Unmarshal(b, &v) != nil || v.Code != code || v.Content == "" {
			t.Fatalf("want %s: %s", code, b)
		}
	}
	t.Run("missing UCP-Agent", func(t *testing.T) {
		res, b := create("UCP-Agent", "")
		wantStatus(t, res, b, http.StatusBadRequest)
		flat(t, b, "invalid_profile_url")
	})
	t.Run("not a dictionary", func(t *testing.T) {
		res, b := create("UCP-Agent", "https://x.example/.well-known/ucp")
		wantStatus(t, res, b, http.StatusBadRequest)
		flat(t, b, "invalid_profile_url")
	})
	t.Run("plain http outside loopback", func(t *testing.T) {
		res, b := create("UCP-Agent", `profile="http://agent.example/.well-known/ucp"`)
		wantStatus(t, res, b, http.StatusBadRequest)
		flat(t, b, "invalid_profile_url")
	})
	t.Run("unreachable", func(t *testing.T) {
		res, b := create("UCP-Agent", `profile="http://127.0.0.1:1/.well-known/ucp"`)
		wantStatus(t, res, b, http.StatusFailedDependency)
		flat(t, b, "profile_unreachable")
	})
	t.Run("malformed", func(t *testing.T) {
		a := newAgentServer(t)
		a.set(func(a *agentServer) { a.raw = `{"ucp":` })
		res, b := create("UCP-Agent", `profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusUnprocessableEntity)
		flat(t, b, "profile_malformed")
	})
	t.Run("version unsupported", func(t *testing.T) {
		a := newAgentServer(t)
		a.set(func(a *agentServer) { a.version = "2026-01-23" })
		res, b := create("UCP-Agent", `profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusUnprocessableEntity)
		flat(t, b, "version_unsupported")
	})
	t.Run("Artos version accepted", func(t *testing.T) {
		a := newAgentServer(t)
		a.set(func(a *agentServer) { a.version = "2026-08-25" })
		res, b := create("UCP-Agent", `ucp-version="2026-08-25", profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusCreated)
		if c := decode[ucp.Checkout](t, b); c.UCP.Version != ucp.Version {
			t.Fatalf("served %s", c.UCP.Version)
		}
	})
	t.Run("capabilities incompatible", func(t *testing.T) {
		a := newAgentServer(t)
		a.set(func(a *agentServer) { a.caps = []string{ucp.CapCatalogSearch} })
		res, b := create("UCP-Agent", `profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusOK)
		env := decode[ucp.ErrorResponse](t, b)
		if env.UCP.Status != "error" || env.Messages[0].Code != "capabilities_incompatible" || env.ContinueURL == "" {
			t.Fatalf("%s", b)
		}
		// The catalog still works for that platform.
		res, b = e.req("POST", "/s/flower-shop/catalog/search", `{"query":"roses"}`, "UCP-Agent", `profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusOK)
	})
	t.Run("intersection echoed", func(t *testing.T) {
		a := newAgentServer(t)
		a.set(func(a *agentServer) { a.caps = []string{ucp.CapCheckout} })
		res, b := create("UCP-Agent", `profile="`+a.URL()+`"`)
		wantStatus(t, res, b, http.StatusCreated)
		c := decode[ucp.Checkout](t, b)
		if len(c.UCP.Capabilities) != 1 || c.UCP.Capabilities[ucp.CapCheckout] == nil {
			t.Fatalf("only checkout was negotiated: %v", c.UCP.Capabilities)
		}
	})
	t.Run("profile cached", func(t *testing.T) {
		a := newAgentServer(t)
		for range 3 {
			res, b := create("UCP-Agent", `profile="`+a.URL()+`"`)
			wantStatus(t, res, b, http.StatusCreated)
		}
		var hits int
		a.set(func(a *agentServer) { hits = a.hits })
		if hits != 1 {
			t.Fatalf("profile fetched %d times", hits)
		}
	})
}

// TestDevFallback: with Dev on, an unreachable platform profile falls back
// to the store's own capabilities instead of failing.
func TestDevFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{dev: true})
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)),
		"UCP-Agent", `profile="http://127.0.0.1:1/.well-known/ucp"`)
	wantStatus(t, res, b, http.StatusCreated)
	// An unusable URL is still refused.
	res, b = e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1)), "UCP-Agent", `profile="ftp://x"`)
	wantStatus(t, res, b, http.StatusBadRequest)
}

// TestReviewProfileCacheNeverRefreshed (security review, finding 12):
// The business profile is cached per store forever: a store whose
// rails change (PutSeedShop) keeps advertising the old handlers in its
// profile and in every signed checkout's ucp.payment_handlers, while
// pricing reads the new settings and refuses them.
func TestReviewProfileCacheNeverRefreshed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.req("GET", "/s/energy-sport/.well-known/ucp", nil)
	es := shop.DemoShops()[0]
	es.Config.Rails = []string{shop.HandlerCardID}
	if err := shop.PutSeedShop(t.Context(), e.store, es, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := lines(line("rr2-10", 1))
	body["fulfillment"] = usShipping
	c := e.createCheckout("energy-sport", body)
	if _, ok := c.UCP.PaymentHandlers[shop.HandlerCrypto]; ok {
		t.Fatalf("checkout advertises %s after the store dropped it (stale profile cache)", shop.HandlerCrypto)
	}
}
