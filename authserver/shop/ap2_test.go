package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// storeKeys reads a store's keys from its published profile, as a
// platform would.
func (e *env) storeKeys(slug string) (*mandate.KeySet, []byte) {
	e.t.Helper()
	_, b := e.req("GET", "/s/"+slug+"/.well-known/ucp", nil)
	ks, err := mandate.ParseKeySet(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return ks, b
}

// verifyWithJWX checks a checkout's merchant_authorization with an
// independent JOSE library and an independent JCS: jwx over gowebpki/jcs
// of the body minus ap2, key from the profile JSON.
func verifyWithJWX(t *testing.T, body, profile []byte) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	var ap2 struct {
		MerchantAuthorization string `json:"merchant_authorization"`
	}
	json.Unmarshal(obj["ap2"], &ap2)
	delete(obj, "ap2")
	rest, _ := json.Marshal(obj)
	payload, err := jcs.Transform(rest)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		SigningKeys []json.RawMessage `json:"signing_keys"`
	}
	json.Unmarshal(profile, &p)
	key, err := jwk.ParseKey(p.SigningKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ap2.MerchantAuthorization, "..") {
		t.Fatalf("not detached: %q", ap2.MerchantAuthorization)
	}
	if _, err := jws.Verify([]byte(ap2.MerchantAuthorization), jws.WithKey(jwa.ES256(), key), jws.WithDetachedPayload(payload)); err != nil {
		t.Fatalf("jwx rejects merchant_authorization: %v\n%s", err, body)
	}
}

// TestMerchantAuthorizationEverywhere: every checkout response, whatever
// the operation or outcome, is signed, and the signature verifies with
// mandate and with jwx.
func TestMerchantAuthorizationEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, profile := e.storeKeys("flower-shop")
	var bodies [][]byte
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions", lines(line("bouquet_roses", 1), line("gardenias", 1)))
	wantStatus(t, res, b, http.StatusCreated)
	bodies = append(bodies, b)
	c := decode[ucp.Checkout](t, b)
	base := "/s/flower-shop/checkout-sessions/" + c.ID
	upd := lines(line("bouquet_roses", 2))
	upd["fulfillment"] = frShipping
	upd["discounts"] = map[string]any{"codes": []string{"spring15"}}
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"GET", base, nil},
		{"PUT", base, upd},
		{"POST", base + "/complete", cardPayment("fail_token")},
		{"POST", base + "/complete", cardPayment("escalate_token")},
		{"POST", base + "/complete", cardPayment("success_token")},
		{"GET", base, nil},
	} {
		_, b := e.req(r.method, r.path, r.body)
		bodies = append(bodies, b)
	}
	c2 := e.createCheckout("flower-shop", lines(line("tulip_bunch", 1)))
	_, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c2.ID+"/cancel", nil)
	bodies = append(bodies, b)
	for i, b := range bodies {
		if err := mandate.VerifyMerchantAuthorization(t.Context(), b, keys); err != nil {
			t.Fatalf("response %d: %v\n%s", i, err, b)
		}
		verifyWithJWX(t, b, profile)
	}
	// Tampering with anything covered, the envelope included, breaks it.
	for _, tamper := range []func(m map[string]any){
		func(m map[string]any) { m["totals"].([]any)[0].(map[string]any)["amount"] = 1.0 },
		func(m map[string]any) { m["ucp"].(map[string]any)["version"] = "2026-01-23" },
	} {
		var m map[string]any
		json.Unmarshal(bodies[len(bodies)-2], &m)
		tamper(m)
		tb, _ := json.Marshal(m)
		if err := mandate.VerifyMerchantAuthorization(t.Context(), tb, keys); err == nil {
			t.Fatal("tampered checkout verified")
		}
	}
}

// ap2Env negotiates the AP2 mandates extension with a platform whose
// profile publishes the agent key.
func ap2Env(t *testing.T) *env {
	e := newEnv(t, nil)
	e.agent.set(func(a *agentServer) { a.caps = append(a.caps, ucp.CapAP2Mandate) })
	return e
}

func mint(t *testing.T, e *env, slug string, checkout []byte) string {
	t.Helper()
	tok, err := mandate.MintCheckoutMandate(e.agent.key, &mandate.Params{Checkout: checkout, Merchant: slug})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withMandate(body map[string]any, tok string) map[string]any {
	body["ap2"] = map[string]any{"checkout_mandate": tok}
	return body
}

func TestAP2Mandates(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
		t.Fatalf("AP2 not negotiated: %v", c.UCP.Capabilities)
	}
	base := "/s/flower-shop/checkout-sessions/" + c.ID
	_, got := e.req("GET", base, nil)

	t.Run("required", func(t *testing.T) {
		_, b := e.req("POST", base+"/complete", cardPayment("success_token"))
		r := decode[ucp.Checkout](t, b)
		if r.Status == ucp.CheckoutCompleted || r.UCP.Status != "success" || r.ID != c.ID || r.Payment != nil ||
			!slices.Contains(messageCodes(r.Messages), "mandate_required") {
			t.Fatalf("%s", b)
		}
	})
	t.Run("foreign key", func(t *testing.T) {
		other, _ := mandate.GenerateSigningKey()
		tok, _ := mandate.MintCheckoutMandate(other, &mandate.Params{Checkout: got, Merchant: "flower-shop"})
		_, b := e.req("POST", base+"/complete", withMandate(cardPayment("success_token"), tok))
		r := decode[ucp.Checkout](t, b)
		if r.Status == ucp.CheckoutCompleted || !slices.ContainsFunc(r.Messages, func(m ucp.Message) bool {
			return strings.HasPrefix(m.Code, "mandate_") || m.Code == "agent_missing_key"
		}) {
			t.Fatalf("%s", b)
		}
	})
	t.Run("other merchant", func(t *testing.T) {
		_, b := e.req("POST", base+"/complete", withMandate(cardPayment("success_token"), mint(t, e, "energy-sport", got)))
		if r := decode[ucp.Checkout](t, b); r.Status == ucp.CheckoutCompleted {
			t.Fatalf("%s", b)
		}
	})
	t.Run("stale terms", func(t *testing.T) {
		stale := mint(t, e, "flower-shop", got)
		e.req("PUT", base, lines(line("bouquet_roses", 2)))
		defer e.req("PUT", base, lines(line("bouquet_roses", 1)))
		_, b := e.req("POST", base+"/complete", withMandate(cardPayment("success_token"), stale))
		r := decode[ucp.Checkout](t, b)
		if r.Status == ucp.CheckoutCompleted || !slices.Contains(messageCodes(r.Messages), "mandate_scope_mismatch") {
			t.Fatalf("%s", b)
		}
	})
	t.Run("valid, then replayed", func(t *testing.T) {
		_, cur := e.req("GET", base, nil)
		tok := mint(t, e, "flower-shop", cur)
		_, b := e.req("POST", base+"/complete", withMandate(cardPayment("success_token"), tok))
		if r := decode[ucp.Checkout](t, b); r.Status != ucp.CheckoutCompleted {
			t.Fatalf("%s", b)
		}
		// The same mandate on an identical new checkout is refused: a
		// mandate is single use (and bound to its checkout id).
		c2 := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
		_, b = e.req("POST", "/s/flower-shop/checkout-sessions/"+c2.ID+"/complete", withMandate(cardPayment("success_token"), tok))
		if r := decode[ucp.Checkout](t, b); r.Status == ucp.CheckoutCompleted {
			t.Fatalf("%s", b)
		}
	})
}

// TestPaymentSelectionConsumesNoMandate: a multi-rail completion without
// a rail is refused before the mandate is checked, so the same mandate
// completes once a rail is chosen.
func TestPaymentSelectionConsumesNoMandate(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	body := lines(line("rr2-10", 1))
	body["fulfillment"] = usShipping
	c := e.createCheckout("energy-sport", body)
	base := "/s/energy-sport/checkout-sessions/" + c.ID
	_, cur := e.req("GET", base, nil)
	tok := mint(t, e, "energy-sport", cur)
	_, b := e.req("POST", base+"/complete", withMandate(map[string]any{}, tok))
	if r := decode[ucp.Checkout](t, b); !slices.Contains(messageCodes(r.Messages), "payment_selection_required") || r.Status != ucp.CheckoutIncomplete {
		t.Fatalf("%s", b)
	}
	_, b = e.req("POST", base+"/complete", withMandate(cardPayment("success_token"), tok))
	if r := decode[ucp.Checkout](t, b); r.Status != ucp.CheckoutCompleted {
		t.Fatalf("the mandate was consumed by the refused attempt: %s", b)
	}
}

// TestMandateSingleUseAcrossInstances: two instances on one database
// share the replay record, so a mandate used on one is refused on the
// other.
func TestMandateSingleUseAcrossInstances(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	other, err := shop.New(shop.Config{BaseURL: e.srv.URL, Store: e.store, Keys: e.keys,
		Profiles: &discovery.Fetcher{AllowInsecureLoopback: true}, Guard: testAuth})
	if err != nil {
		t.Fatal(err)
	}
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	_, cur := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	tok := mint(t, e, "flower-shop", cur)
	body, _ := json.Marshal(withMandate(cardPayment("fail_token"), tok))
	// Instance two consumes it (a declined card still uses the mandate).
	rep := other.Do(t.Context(), &shop.Request{Op: shop.OpCompleteCheckout, Shop: "flower-shop", ID: c.ID, Body: body,
		Agent: e.agent.URL(), IdempotencyKey: uuid(), Principal: &guard.Principal{Kind: guard.KindPlatform, Tier: guard.TierToken, Credential: guard.CredentialAPIKey, ClientID: "platform-a", Platform: "platform-a"}})
	if rep.Err != nil || !strings.Contains(string(rep.Body), "payment_failed") {
		t.Fatalf("%+v %s", rep.Err, rep.Body)
	}
	// Instance one refuses the replay.
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", withMandate(cardPayment("success_token"), tok))
	if r := decode[ucp.Checkout](t, b); r.Status == ucp.CheckoutCompleted || !slices.Contains(messageCodes(r.Messages), "mandate_expired") {
		t.Fatalf("%s", b)
	}
}

// switchProfiles serves whichever platform profile the test sets.
type switchProfiles struct {
	mu sync.Mutex
	p  *ucp.Profile
}

func (s *switchProfiles) Fetch(context.Context, string) (*ucp.Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, nil
}

// TestAP2LockSurvivesProfileChange: a checkout created under AP2 still
// needs a mandate after the platform's profile stops offering AP2.
func TestAP2LockSurvivesProfileChange(t *testing.T) {
	t.Parallel()
	key, _ := mandate.GenerateSigningKey()
	jwk, _ := json.Marshal(key.PublicJWK())
	profile := func(caps ...string) *ucp.Profile {
		m := map[string][]ucp.Capability{}
		for _, c := range caps {
			m[c] = []ucp.Capability{{Entity: ucp.Entity{Version: ucp.Version}}}
		}
		p := &ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version, Capabilities: m}, SigningKeys: []json.RawMessage{jwk}}
		p.Raw, _ = json.Marshal(p)
		return p
	}
	sp := &switchProfiles{p: profile(ucp.CapCheckout, ucp.CapAP2Mandate)}
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Profiles = sp }})
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
		t.Fatal("setup: AP2 not negotiated")
	}
	sp.mu.Lock()
	sp.p = profile(ucp.CapCheckout)
	sp.mu.Unlock()
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"))
	if r := decode[ucp.Checkout](t, b); r.Status == ucp.CheckoutCompleted || !slices.Contains(messageCodes(r.Messages), "mandate_required") {
		t.Fatalf("%s", b)
	}
}

// TestCheckoutBoundToProfile: the platform that created a checkout under
// one profile cannot use it under another.
func TestCheckoutBoundToProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	other := newAgentServer(t)
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, "UCP-Agent", `profile="`+other.URL()+`"`)
	wantStatus(t, res, b, http.StatusForbidden)
	if !strings.Contains(string(b), "profile_not_trusted") {
		t.Fatalf("%s", b)
	}
}

// TestReviewAP2LockBypassedBySwitchingProfile (security review, finding 2):
// AP2 lock (ucp.md §4 "once active the session is locked") and identity
// binding (§1.2): an authenticated platform creates the checkout under an
// AP2 profile, then completes naming another profile without AP2, and no
// mandate is asked for.
func TestReviewAP2LockBypassedBySwitchingProfile(t *testing.T) {
	t.Parallel()
	e := ap2Env(t)
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	if c.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
		t.Fatal("setup: AP2 not negotiated")
	}
	plain := newAgentServer(t) // same platform, a profile without AP2
	_, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment(shop.TokenSuccess),
		"UCP-Agent", `profile="`+plain.URL()+`"`)
	if st, _ := checkoutStatus(t, b); st == ucp.CheckoutCompleted {
		t.Fatalf("AP2-negotiated checkout completed without a mandate by switching UCP-Agent: %s", b)
	}
}

// TestReviewMandateRefusedAsReplayAfterOneLostRace (security review, finding 5):
// A valid AP2 mandate is consumed on the first attempt; when that
// attempt loses a race (ErrStale) the retry loop re-verifies the same
// mandate and refuses it as replayed.
func TestReviewMandateRefusedAsReplayAfterOneLostRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{store: &racingStore{Commerce: sqlstoretest.SQLite(t), races: 1}})
	e.agent.set(func(a *agentServer) { a.caps = append(a.caps, ucp.CapAP2Mandate) })
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	base := "/s/flower-shop/checkout-sessions/" + c.ID
	_, cur := e.req("GET", base, nil)
	_, b := e.req("POST", base+"/complete", withMandate(cardPayment(shop.TokenSuccess), mint(t, e, "flower-shop", cur)))
	if st, codes := checkoutStatus(t, b); st != ucp.CheckoutCompleted {
		t.Fatalf("valid mandate refused after one concurrent no-op write (%v): %s", codes, b)
	}
}
