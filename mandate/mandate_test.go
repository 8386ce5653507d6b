package mandate_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/mandate"
)

func TestMintCheckoutMandateShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, err := mandate.MintCheckoutMandate(f.agent, f.params())
	if err != nil {
		t.Fatal(err)
	}
	seg := segments(tok)
	if len(seg) != 3 || seg[1] == "" {
		t.Fatalf("not compact: %q", tok)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(seg[0])
	if want := `{"alg":"ES256","kid":"` + f.agent.KeyID() + `"}`; string(hdr) != want {
		t.Fatalf("header %s, want %s (Artos: no typ)", hdr, want)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(seg[1])
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c["jti"].(string), "m_") || c["merchant"] != storeSlug {
		t.Fatalf("claims %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 300 || int64(iat) != f.now.Unix() {
		t.Fatalf("exp-iat = %v, want 300 (Artos default)", exp-iat)
	}
	// The embedded checkout is the verbatim body, merchant signature and all.
	var emb map[string]any
	b, _ := json.Marshal(c["checkout"])
	json.Unmarshal(b, &emb)
	if emb["ap2"].(map[string]any)["merchant_authorization"] == "" || emb["id"] != "chk_7f3a" {
		t.Fatalf("embedded checkout %v", emb)
	}
	if !strings.Contains(string(raw), `Roses & <Baby's breath>`) {
		t.Fatalf("embedded checkout was HTML-escaped: %s", raw)
	}
	wantHash, _ := mandate.CheckoutHash(f.checkout)
	if c["checkout_hash"] != wantHash || c["checkout_id"] != "chk_7f3a" || c["handler_id"] != "artos.card" {
		t.Fatalf("binding claims %v", c)
	}
	if tot := c["total"].(map[string]any); tot["amount"] != 11305.0 || tot["currency"] != "EUR" {
		t.Fatalf("total %v", tot)
	}
}

func TestMintPaymentMandateShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, err := mandate.MintPaymentMandate(f.agent, f.params())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(segments(tok)[1])
	var c struct {
		Payment  map[string]any  `json:"payment"`
		JTI      string          `json:"jti"`
		Checkout json.RawMessage `json:"checkout"`
		Total    any             `json:"total"`
	}
	json.Unmarshal(raw, &c)
	if c.Payment["amount"] != 11305.0 || c.Payment["currency"] != "EUR" || c.Payment["merchant"] != storeSlug {
		t.Fatalf("payment %v", c.Payment)
	}
	if !strings.HasPrefix(c.JTI, "p_") || c.Checkout != nil || c.Total != nil {
		t.Fatalf("payment mandate claims: %s", raw)
	}
}

func TestMintRejectsBadParams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, p := range map[string]*mandate.Params{
		"nil":              nil,
		"no checkout":      {Merchant: storeSlug},
		"no merchant":      {Checkout: f.checkout},
		"non-uuid pm id":   {Checkout: f.checkout, Merchant: storeSlug, PaymentMandateID: "sh.artos.card"},
		"negative ttl":     {Checkout: f.checkout, Merchant: storeSlug, TTL: -time.Second},
		"float total":      {Checkout: edit(t, f.checkout, func(m map[string]any) { setTotal(m, 113.05) }), Merchant: storeSlug},
		"no total":         {Checkout: edit(t, f.checkout, func(m map[string]any) { m["totals"] = []any{} }), Merchant: storeSlug},
		"no id":            {Checkout: edit(t, f.checkout, func(m map[string]any) { delete(m, "id") }), Merchant: storeSlug},
		"checkout not obj": {Checkout: []byte(`"x"`), Merchant: storeSlug},
	} {
		if _, err := mandate.MintCheckoutMandate(f.agent, p); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
}

func TestVerifyCheckoutMandate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok, err := mandate.MintCheckoutMandate(f.agent, f.params())
	if err != nil {
		t.Fatal(err)
	}
	v, err := mandate.VerifyCheckoutMandate(ctx, tok, f.opts())
	if err != nil {
		t.Fatalf("valid mandate refused: %v", err)
	}
	if v.KeyID != f.agent.KeyID() || v.Total != (mandate.Amount{Amount: 11305, Currency: "EUR"}) {
		t.Fatalf("verified %+v", v)
	}
	// The live checkout may change outside its terms (status, messages).
	o := f.opts()
	o.Checkout = edit(t, f.checkout, func(m map[string]any) {
		m["status"] = "complete_in_progress"
		m["messages"] = []any{}
	})
	if _, err := mandate.VerifyCheckoutMandate(ctx, tok, o); err != nil {
		t.Fatalf("non-term change refused: %v", err)
	}
}

// TestVerifyMandateRefusals has one case per check; each fails if its check
// is removed.
func TestVerifyMandateRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	mint := func(mod func(p *mandate.Params)) string {
		p := f.params()
		if mod != nil {
			mod(p)
		}
		tok, err := mandate.MintCheckoutMandate(f.agent, p)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(nil)
	payTok, _ := mandate.MintPaymentMandate(f.agent, f.params())
	impostor, _ := mandate.GenerateSigningKey()
	sameKid, _ := mandate.NewSigningKey(impostor.PrivateKey(), f.agent.KeyID())
	forgedSig, _ := mandate.MintCheckoutMandate(sameKid, f.params())
	unknownKid, _ := mandate.MintCheckoutMandate(impostor, f.params())
	claims := payloadOf(t, good)

	// A mandate for a re-priced checkout: signed by the store, so only the
	// terms binding can catch it.
	repriced, _ := mandate.AttachMerchantAuthorization(edit(t, []byte(checkoutJSON), func(m map[string]any) { setTotal(m, 100) }), f.store)
	stale := mint(func(p *mandate.Params) { p.Checkout = repriced })

	// A checkout forged by the agent (not signed by the store) but with the
	// live terms: only the merchant_authorization re-check catches it.
	unsigned := []byte(checkoutJSON)
	unsignedTok := mint(func(p *mandate.Params) { p.Checkout = unsigned })

	type tc struct {
		name  string
		token string
		opts  func(o *mandate.VerifyOptions)
		code  mandate.Code
	}
	cases := []tc{
		{"no mandate", "", nil, mandate.CodeMandateRequired},
		{"garbage", "abc", nil, mandate.CodeMandateInvalidSignature},
		{"two segments", "a.b", nil, mandate.CodeMandateInvalidSignature},
		{"signature by impostor with the agent's kid", forgedSig, nil, mandate.CodeMandateInvalidSignature},
		{"tampered payload", swapPayload(t, good, strings.Replace(claims, storeSlug, "flower-shap", 1)), nil, mandate.CodeMandateInvalidSignature},
		{"alg none", rawToken(`{"alg":"none","kid":"`+f.agent.KeyID()+`"}`, claims, nil), nil, mandate.CodeMandateInvalidSignature},
		{"HS256 keyed with the public key", hmacToken(t, f, claims), nil, mandate.CodeMandateInvalidSignature},
		{"ES384 not allowed for mandates", rawToken(`{"alg":"ES384","kid":"`+f.agent.KeyID()+`"}`, claims, make([]byte, 96)), nil, mandate.CodeMandateInvalidSignature},
		{"b64 false", rawToken(`{"alg":"ES256","kid":"`+f.agent.KeyID()+`","b64":false,"crit":["b64"]}`, claims, make([]byte, 64)), nil, mandate.CodeMandateInvalidSignature},
		{"no kid", resign(t, f.agent, claims, ""), nil, mandate.CodeAgentMissingKey},
		{"unknown kid", unknownKid, nil, mandate.CodeAgentMissingKey},
		{"claims not an object", resign(t, f.agent, `[1]`, f.agent.KeyID()), nil, mandate.CodeMandateInvalidSignature},
		{"no jti", resign(t, f.agent, dropClaim(t, claims, "jti"), f.agent.KeyID()), nil, mandate.CodeMandateInvalidSignature},
		{"no exp", resign(t, f.agent, dropClaim(t, claims, "exp"), f.agent.KeyID()), nil, mandate.CodeMandateInvalidSignature},
		{"float exp", resign(t, f.agent, setClaim(t, claims, "exp", 1.5), f.agent.KeyID()), nil, mandate.CodeMandateInvalidSignature},
		{"expired", good, func(o *mandate.VerifyOptions) {
			o.Now = func() time.Time { return f.now.Add(5*time.Minute + mandate.DefaultLeeway + time.Second) }
		}, mandate.CodeMandateExpired},
		{"issued in the future", good, func(o *mandate.VerifyOptions) { o.Now = func() time.Time { return f.now.Add(-time.Minute) } }, mandate.CodeMandateExpired},
		{"lifetime too long", mint(func(p *mandate.Params) { p.TTL = 24 * time.Hour }), nil, mandate.CodeMandateExpired},
		{"lifetime too long without iat", resign(t, f.agent, setClaim(t, dropClaim(t, claims, "iat"), "exp", f.now.Add(2*time.Hour).Unix()), f.agent.KeyID()), nil, mandate.CodeMandateExpired},
		{"exp before iat", resign(t, f.agent, setClaim(t, setClaim(t, claims, "iat", f.now.Add(10*time.Second).Unix()), "exp", f.now.Add(5*time.Second).Unix()), f.agent.KeyID()), nil, mandate.CodeMandateExpired},
		{"no kid, resolver answers anything", resign(t, f.agent, claims, ""), func(o *mandate.VerifyOptions) { o.AgentKeys = anyKey{f.agent} }, mandate.CodeAgentMissingKey},
		{"checkout and payment in one mandate", resign(t, f.agent, setClaim(t, claims, "payment", map[string]any{"amount": 11305, "currency": "EUR", "merchant": storeSlug}), f.agent.KeyID()), nil, mandate.CodeMandateScopeMismatch},
		{"other merchant", good, func(o *mandate.VerifyOptions) { o.Merchant = "energy-sport" }, mandate.CodeMandateScopeMismatch},
		{"other audience", good, func(o *mandate.VerifyOptions) { o.Audience = "https://other.example" }, mandate.CodeMandateScopeMismatch},
		{"aud required but absent", mint(func(p *mandate.Params) { p.Audience = "" }), func(o *mandate.VerifyOptions) { o.RequireAudience = true }, mandate.CodeMandateScopeMismatch},
		{"other rail", good, func(o *mandate.VerifyOptions) { o.HandlerID = "artos.crypto" }, mandate.CodeMandateScopeMismatch},
		{"stale terms", stale, nil, mandate.CodeMandateScopeMismatch},
		{"live checkout re-priced", good, func(o *mandate.VerifyOptions) {
			o.Checkout = edit(t, f.checkout, func(m map[string]any) { setTotal(m, 99999) })
		}, mandate.CodeMandateScopeMismatch},
		{"quantity changed", good, func(o *mandate.VerifyOptions) {
			o.Checkout = edit(t, f.checkout, func(m map[string]any) { m["line_items"].([]any)[0].(map[string]any)["quantity"] = 3 })
		}, mandate.CodeMandateScopeMismatch},
		{"other checkout id", good, func(o *mandate.VerifyOptions) {
			o.Checkout = edit(t, f.checkout, func(m map[string]any) { m["id"] = "chk_other" })
		}, mandate.CodeMandateScopeMismatch},
		{"checkout_hash claim wrong", resign(t, f.agent, setClaim(t, claims, "checkout_hash", "AAAA"), f.agent.KeyID()), nil, mandate.CodeMandateScopeMismatch},
		{"checkout_id claim wrong", resign(t, f.agent, setClaim(t, claims, "checkout_id", "chk_x"), f.agent.KeyID()), nil, mandate.CodeMandateScopeMismatch},
		{"total claim wrong", resign(t, f.agent, setClaim(t, claims, "total", map[string]any{"amount": 1, "currency": "EUR"}), f.agent.KeyID()), nil, mandate.CodeMandateScopeMismatch},
		{"payment_mandate_id not a uuid", resign(t, f.agent, setClaim(t, claims, "payment_mandate_id", "pm_optimistic"), f.agent.KeyID()), nil, mandate.CodeMandateScopeMismatch},
		{"payment mandate used as checkout mandate", payTok, nil, mandate.CodeMandateScopeMismatch},
		{"embedded checkout not signed by the store", unsignedTok, nil, mandate.CodeMerchantAuthorizationMissing},
	}
	for _, c := range cases {
		o := f.opts()
		if c.opts != nil {
			c.opts(o)
		}
		_, err := mandate.VerifyCheckoutMandate(ctx, c.token, o)
		var me *mandate.Error
		if !errors.As(err, &me) || me.Code != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
}

func TestVerifyPaymentMandate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	p := f.params()
	p.PaymentMandateID = "5b0e5a3e-8f7a-4c53-9d3b-2f1f6a0e7c11"
	tok, err := mandate.MintPaymentMandate(f.agent, p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := mandate.VerifyPaymentMandate(ctx, tok, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if v.Claims.PaymentMandateID != p.PaymentMandateID || v.Claims.Payment.Amount != 11305 {
		t.Fatalf("claims %+v", v.Claims)
	}
	checkoutTok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	claims := payloadOf(t, tok)
	for name, c := range map[string]struct {
		token string
		opts  func(o *mandate.VerifyOptions)
	}{
		"amount differs from live total": {tok, func(o *mandate.VerifyOptions) {
			o.Checkout = edit(t, f.checkout, func(m map[string]any) { setTotal(m, 11306) })
		}},
		"currency differs":              {resign(t, f.agent, setClaim(t, claims, "payment", map[string]any{"amount": 11305, "currency": "USD", "merchant": storeSlug}), f.agent.KeyID()), nil},
		"other merchant":                {resign(t, f.agent, setClaim(t, claims, "payment", map[string]any{"amount": 11305, "currency": "EUR", "merchant": "x"}), f.agent.KeyID()), nil},
		"checkout mandate":              {checkoutTok, nil},
		"payment with a checkout claim": {resign(t, f.agent, setClaim(t, claims, "checkout", json.RawMessage(f.checkout)), f.agent.KeyID()), nil},
		"Artos-shaped, wrong amount":    {resign(t, f.agent, `{"payment":{"amount":11304,"currency":"EUR","merchant":"flower-shop"},"jti":"p_1","exp":`+jsonInt(f.now.Add(time.Minute).Unix())+`}`, f.agent.KeyID()), nil},
	} {
		o := f.opts()
		if c.opts != nil {
			c.opts(o)
		}
		if _, err := mandate.VerifyPaymentMandate(ctx, c.token, o); !errors.Is(err, mandate.ErrMandateScopeMismatch) {
			t.Errorf("%s: got %v, want scope mismatch", name, err)
		}
	}
}

func TestReplayIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	o := f.opts()
	o.Replay = mandate.NewMemoryReplayCache(0, o.Now)
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	if _, err := mandate.VerifyCheckoutMandate(ctx, tok, o); err != nil {
		t.Fatal(err)
	}
	_, err := mandate.VerifyCheckoutMandate(ctx, tok, o)
	if !errors.Is(err, mandate.ErrReplayed) || !errors.Is(err, mandate.ErrMandateExpired) {
		t.Fatalf("replay: %v", err)
	}
	// A forged token must not consume its jti.
	o2 := f.opts()
	o2.Replay = mandate.NewMemoryReplayCache(0, o.Now)
	good, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	bad := swapSig(t, good)
	if _, err := mandate.VerifyCheckoutMandate(ctx, bad, o2); err == nil {
		t.Fatal("forged accepted")
	}
	if _, err := mandate.VerifyCheckoutMandate(ctx, good, o2); err != nil {
		t.Fatalf("forgery burned the jti: %v", err)
	}
}

type brokenStore struct{}

func (brokenStore) Use(context.Context, string, time.Time) error { return errors.New("db down") }

func TestReplayStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.opts()
	o.Replay = brokenStore{}
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	_, err := mandate.VerifyCheckoutMandate(context.Background(), tok, o)
	var me *mandate.Error
	if err == nil || errors.As(err, &me) {
		t.Fatalf("want a non-UCP (503) error, got %v", err)
	}
}

func TestMemoryReplayCacheBounds(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	c := mandate.NewMemoryReplayCache(2, func() time.Time { return now })
	ctx := context.Background()
	c.Use(ctx, "a", now.Add(time.Second))
	c.Use(ctx, "b", now.Add(time.Hour))
	if err := c.Use(ctx, "c", now.Add(time.Hour)); !errors.Is(err, mandate.ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(2 * time.Second) // "a" expired: swept, room for "c"
	if err := c.Use(ctx, "c", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ctx, "b", now.Add(time.Hour)); !errors.Is(err, mandate.ErrReplayed) {
		t.Fatalf("b: %v", err)
	}
}

func TestVerifyOptionsRequired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	for name, o := range map[string]*mandate.VerifyOptions{
		"nil":         nil,
		"no keys":     {Merchant: storeSlug, Checkout: f.checkout},
		"no merchant": {AgentKeys: f.agentKeys, Checkout: f.checkout},
		"no checkout": {AgentKeys: f.agentKeys, Merchant: storeSlug},
	} {
		if _, err := mandate.VerifyCheckoutMandate(context.Background(), tok, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestVerifyArtosShapedMandate: the Artos SDK mints only checkout,
// merchant, jti, exp (and payment_mandate_id) in insertion order, with no
// iat/aud/binding claims. Those mandates must verify.
func TestVerifyArtosShapedMandate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	claims := `{"checkout":` + string(f.checkout) + `,"merchant":"flower-shop","jti":"m_0d9c6e52-4b8e-4f4e-9a38-1f0e9c7d3a21","exp":` +
		jsonInt(f.now.Add(300*time.Second).Unix()) + `,"payment_mandate_id":"5b0e5a3e-8f7a-4c53-9d3b-2f1f6a0e7c11"}`
	tok := resign(t, f.agent, claims, f.agent.KeyID())
	if _, err := mandate.VerifyCheckoutMandate(context.Background(), tok, f.opts()); err != nil {
		t.Fatalf("Artos checkout mandate: %v", err)
	}
	pay := `{"payment":{"amount":11305,"currency":"EUR","merchant":"flower-shop"},"jti":"p_1d9c6e52-4b8e-4f4e-9a38-1f0e9c7d3a21","exp":` +
		jsonInt(f.now.Add(300*time.Second).Unix()) + `}`
	if _, err := mandate.VerifyPaymentMandate(context.Background(), resign(t, f.agent, pay, f.agent.KeyID()), f.opts()); err != nil {
		t.Fatalf("Artos payment mandate: %v", err)
	}
}

// anyKey is a resolver that returns its key whatever kid is asked, as a
// careless "first key" resolver would.
type anyKey struct{ k *mandate.SigningKey }

func (a anyKey) Key(context.Context, string) (*jose.JSONWebKey, error) {
	j := a.k.PublicJWK()
	return &j, nil
}

// --- token surgery helpers ---

func payloadOf(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(segments(tok)[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func swapPayload(t *testing.T, tok, payload string) string {
	s := segments(tok)
	return s[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + s[2]
}

func swapSig(t *testing.T, tok string) string {
	s := segments(tok)
	sig, _ := base64.RawURLEncoding.DecodeString(s[2])
	sig[10] ^= 1
	return s[0] + "." + s[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func rawToken(header, payload string, sig []byte) string {
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hmacToken is the classic key-confusion forgery: HS256 keyed with the
// verifier's public key bytes.
func hmacToken(t *testing.T, f *fixture, claims string) string {
	pub, _ := json.Marshal(f.agent.PublicJWK())
	input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"`+f.agent.KeyID()+`"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, pub)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// resign signs arbitrary claims text with key under kid (no kid header
// when kid is empty).
func resign(t *testing.T, key *mandate.SigningKey, claims, kid string) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: key.PrivateKey(), KeyID: kid}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
	return tok
}

func dropClaim(t *testing.T, claims, name string) string {
	var m map[string]json.RawMessage
	json.Unmarshal([]byte(claims), &m)
	delete(m, name)
	b, _ := json.Marshal(m)
	return string(b)
}

func setClaim(t *testing.T, claims, name string, v any) string {
	var m map[string]json.RawMessage
	json.Unmarshal([]byte(claims), &m)
	m[name], _ = json.Marshal(v)
	b, _ := json.Marshal(m)
	return string(b)
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
