package mandate_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// chainSpec builds an AP2 v0.2 checkout delegate chain with every knob a
// refusal test needs. The zero value (after defaults) is valid.
type chainSpec struct {
	root, agent, merchant     *mandate.SigningKey
	closedSigner              *mandate.SigningKey // default agent
	checkoutSigner            *mandate.SigningKey // default merchant
	checkout                  string
	constraints               []any
	openVCT, closedVCT        string
	noCnf                     bool
	closedTyp                 string
	closedCnf                 bool
	checkoutHash              string
	aud, nonce                string
	noIat                     bool
	issuerJWTHash, bothHashes bool
	extraClosedDisclosure     bool
	duplicateDisclosure       bool
	sdAlg                     string
	iat                       int64
}

func disclosure(t testing.TB, parts ...any) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	arr := append([]any{base64.RawURLEncoding.EncodeToString(salt)}, parts...)
	b, err := json.Marshal(arr)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func signJWT(t testing.TB, k *mandate.SigningKey, typ string, claims any, withKid bool) string {
	kid := ""
	if withKid {
		kid = k.KeyID()
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.PrivateKey(), KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

func (c *chainSpec) build(t testing.TB, now time.Time) string {
	if c.closedSigner == nil {
		c.closedSigner = c.agent
	}
	if c.checkoutSigner == nil {
		c.checkoutSigner = c.merchant
	}
	if c.openVCT == "" {
		c.openVCT = mandate.VCTOpenCheckout
	}
	if c.closedVCT == "" {
		c.closedVCT = mandate.VCTClosedCheckout
	}
	if c.closedTyp == "" {
		c.closedTyp = "kb+sd-jwt"
	}
	if c.aud == "" {
		c.aud = "flower-shop"
	}
	if c.sdAlg == "" {
		c.sdAlg = "sha-256"
	}
	if c.iat == 0 {
		c.iat = now.Unix()
	}
	if c.constraints == nil {
		c.constraints = []any{
			map[string]any{"type": "checkout.allowed_merchants", "allowed": []any{map[string]any{"id": "flower-shop", "name": "Flowers"}}},
			map[string]any{"type": "checkout.line_items", "items": []any{map[string]any{"id": "r1", "quantity": 2,
				"acceptable_items": []any{map[string]any{"id": "bouquet_roses", "title": "Roses"}}}}},
		}
	}
	open := map[string]any{"vct": c.openVCT, "constraints": c.constraints, "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}
	if !c.noCnf {
		open["cnf"] = map[string]any{"jwk": c.agent.PublicJWK()}
	}
	dOpen := disclosure(t, open)
	openJWT := signJWT(t, c.root, "example+sd-jwt", map[string]any{
		"delegate_payload": []any{map[string]any{"...": mandate.Digest(dOpen)}}, "_sd_alg": "sha-256"}, true)
	openSD := openJWT + "~" + dOpen + "~"

	checkoutJWT := signJWT(t, c.checkoutSigner, "JWT", json.RawMessage(c.checkout), true)
	if c.checkoutHash == "" {
		c.checkoutHash = mandate.Digest(checkoutJWT)
	}
	dJWT := disclosure(t, "checkout_jwt", checkoutJWT)
	closedObj := map[string]any{"_sd": []any{mandate.Digest(dJWT)}, "vct": c.closedVCT, "checkout_hash": c.checkoutHash}
	if c.closedCnf {
		closedObj["cnf"] = map[string]any{"jwk": c.agent.PublicJWK()}
	}
	dClosed := disclosure(t, closedObj)
	claims := map[string]any{
		"delegate_payload": []any{map[string]any{"...": mandate.Digest(dClosed)}},
		"aud":              c.aud, "nonce": c.nonce, "_sd_alg": c.sdAlg,
	}
	if !c.noIat {
		claims["iat"] = c.iat
	}
	switch {
	case c.bothHashes:
		claims["sd_hash"] = mandate.Digest(openSD)
		claims["issuer_jwt_hash"] = mandate.Digest(openJWT)
	case c.issuerJWTHash:
		claims["issuer_jwt_hash"] = mandate.Digest(openJWT)
	default:
		claims["sd_hash"] = mandate.Digest(openSD)
	}
	closed := signJWT(t, c.closedSigner, c.closedTyp, claims, false) + "~" + dClosed + "~" + dJWT + "~"
	if c.extraClosedDisclosure {
		closed += disclosure(t, "note", "unreferenced") + "~"
	}
	if c.duplicateDisclosure {
		closed += dJWT + "~"
	}
	return openSD + "~" + closed
}

type sdFixture struct {
	root, agent, merchant, stranger *mandate.SigningKey
	checkout                        string
	now                             time.Time
}

func newSDFixture(t testing.TB) *sdFixture {
	gen := func() *mandate.SigningKey {
		k, err := mandate.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	co := strings.Replace(checkoutJSON, `"status"`, `"merchant": {"id": "flower-shop", "name": "Flowers"}, "status"`, 1)
	return &sdFixture{root: gen(), agent: gen(), merchant: gen(), stranger: gen(), checkout: co, now: time.Unix(1_790_000_000, 0)}
}

func (f *sdFixture) spec() *chainSpec {
	return &chainSpec{root: f.root, agent: f.agent, merchant: f.merchant, checkout: f.checkout}
}

func (f *sdFixture) opts() *mandate.SDJWTVerifyOptions {
	return &mandate.SDJWTVerifyOptions{
		RootKeys: mandate.NewKeySet(f.root.PublicJWK()), MerchantKeys: mandate.NewKeySet(f.merchant.PublicJWK()),
		Audience: "flower-shop", Checkout: []byte(f.checkout), Now: func() time.Time { return f.now },
	}
}

func TestVerifySDJWTCheckoutMandate(t *testing.T) {
	t.Parallel()
	f := newSDFixture(t)
	ctx := context.Background()
	m, err := mandate.VerifySDJWTCheckoutMandate(ctx, f.spec().build(t, f.now), f.opts())
	if err != nil {
		t.Fatalf("valid chain: %v", err)
	}
	if !strings.Contains(string(m.Checkout), `"chk_7f3a"`) || m.Reference == "" || m.OpenHash == "" {
		t.Fatalf("result %+v", m)
	}
	// issuer_jwt_hash instead of sd_hash is the other allowed binding.
	s := f.spec()
	s.issuerJWTHash = true
	if _, err := mandate.VerifySDJWTCheckoutMandate(ctx, s.build(t, f.now), f.opts()); err != nil {
		t.Fatalf("issuer_jwt_hash: %v", err)
	}
	// A wildcard requirement accepts any item.
	s = f.spec()
	s.constraints = []any{map[string]any{"type": "checkout.line_items", "items": []any{map[string]any{"id": "any", "quantity": 5}}}}
	if _, err := mandate.VerifySDJWTCheckoutMandate(ctx, s.build(t, f.now), f.opts()); err != nil {
		t.Fatalf("wildcard: %v", err)
	}
	// Greedy assignment fails but a matching exists: tulips (listed first)
	// take r1, then roses fit only r1, so tulips must move to r2.
	co := strings.Replace(f.checkout, `"quantity": 2,`, `"quantity": 1,`, 1)
	co = strings.Replace(co, `"line_items": [`, `"line_items": [{"id": "li_0", "item": {"id": "tulips", "title": "Tulips", "price": 100}, "quantity": 1, "totals": []},`, 1)
	s = f.spec()
	s.checkout = co
	s.constraints = []any{map[string]any{"type": "checkout.line_items", "items": []any{
		map[string]any{"id": "r1", "quantity": 1, "acceptable_items": []any{map[string]any{"id": "bouquet_roses"}, map[string]any{"id": "tulips"}}},
		map[string]any{"id": "r2", "quantity": 1, "acceptable_items": []any{map[string]any{"id": "tulips"}}},
	}}}
	o := f.opts()
	o.Checkout = []byte(co)
	if _, err := mandate.VerifySDJWTCheckoutMandate(ctx, s.build(t, f.now), o); err != nil {
		t.Fatalf("matching needs reassignment: %v", err)
	}
}

func TestVerifySDJWTRefusals(t *testing.T) {
	t.Parallel()
	f := newSDFixture(t)
	ctx := context.Background()
	cases := []struct {
		name string
		mod  func(s *chainSpec)
		opts func(o *mandate.SDJWTVerifyOptions)
		code mandate.Code
	}{
		{"root not trusted", func(s *chainSpec) { s.root = f.stranger }, nil, mandate.CodeMandateInvalidSignature},
		{"closed hop not by the cnf key", func(s *chainSpec) { s.closedSigner = f.stranger }, nil, mandate.CodeMandateInvalidSignature},
		{"checkout_jwt not by this merchant", func(s *chainSpec) { s.checkoutSigner = f.stranger }, nil, mandate.CodeMerchantAuthorizationInvalid},
		{"checkout_hash wrong", func(s *chainSpec) { s.checkoutHash = mandate.Digest("other") }, nil, mandate.CodeMandateScopeMismatch},
		{"open mandate without cnf", func(s *chainSpec) { s.noCnf = true }, nil, mandate.CodeAgentMissingKey},
		{"open vct wrong", func(s *chainSpec) { s.openVCT = "mandate.payment.open.1" }, nil, mandate.CodeMandateScopeMismatch},
		{"closed vct wrong", func(s *chainSpec) { s.closedVCT = "mandate.checkout.2" }, nil, mandate.CodeMandateScopeMismatch},
		{"closed typ not kb", func(s *chainSpec) { s.closedTyp = "JWT" }, nil, mandate.CodeMandateInvalidSignature},
		{"terminal hop with cnf", func(s *chainSpec) { s.closedCnf = true }, nil, mandate.CodeMandateInvalidSignature},
		{"unreferenced disclosure", func(s *chainSpec) { s.extraClosedDisclosure = true }, nil, mandate.CodeMandateInvalidSignature},
		{"duplicate disclosure", func(s *chainSpec) { s.duplicateDisclosure = true }, nil, mandate.CodeMandateInvalidSignature},
		{"closed hop without iat", func(s *chainSpec) { s.noIat = true }, nil, mandate.CodeMandateInvalidSignature},
		{"closed hop from the future", func(s *chainSpec) { s.iat = f.now.Add(10 * time.Minute).Unix() }, nil, mandate.CodeMandateExpired},
		{"both hash bindings", func(s *chainSpec) { s.bothHashes = true }, nil, mandate.CodeMandateInvalidSignature},
		{"sha-512 digests", func(s *chainSpec) { s.sdAlg = "sha-512" }, nil, mandate.CodeMandateInvalidSignature},
		{"other audience", func(s *chainSpec) { s.aud = "energy-sport" }, nil, mandate.CodeMandateScopeMismatch},
		{"nonce mismatch", func(s *chainSpec) { s.nonce = "n1" }, func(o *mandate.SDJWTVerifyOptions) { o.Nonce = "n2" }, mandate.CodeMandateScopeMismatch},
		{"open mandate expired", nil, func(o *mandate.SDJWTVerifyOptions) { o.Now = func() time.Time { return f.now.Add(2 * time.Hour) } }, mandate.CodeMandateExpired},
		{"unknown constraint type", func(s *chainSpec) {
			s.constraints = []any{map[string]any{"type": "checkout.max_weight", "kg": 1}}
		}, nil, mandate.CodeMandateScopeMismatch},
		{"merchant not allowed", func(s *chainSpec) {
			s.constraints = []any{map[string]any{"type": "checkout.allowed_merchants", "allowed": []any{map[string]any{"id": "energy-sport", "name": "Flowers"}}}}
		}, nil, mandate.CodeMandateScopeMismatch},
		{"item not acceptable", func(s *chainSpec) {
			s.constraints = []any{map[string]any{"type": "checkout.line_items", "items": []any{map[string]any{"id": "r", "quantity": 2, "acceptable_items": []any{map[string]any{"id": "gardenias"}}}}}}
		}, nil, mandate.CodeMandateScopeMismatch},
		{"more units than allowed", func(s *chainSpec) {
			s.constraints = []any{map[string]any{"type": "checkout.line_items", "items": []any{map[string]any{"id": "r", "quantity": 1, "acceptable_items": []any{map[string]any{"id": "bouquet_roses"}}}}}}
		}, nil, mandate.CodeMandateScopeMismatch},
		{"huge quantity is bounded", func(s *chainSpec) {
			s.checkout = strings.Replace(s.checkout, `"quantity": 2,`, `"quantity": 9000000000,`, 1)
			s.constraints = []any{map[string]any{"type": "checkout.line_items", "items": []any{map[string]any{"id": "r", "quantity": 9000000000}}}}
		}, func(o *mandate.SDJWTVerifyOptions) { o.Checkout = nil }, mandate.CodeMandateScopeMismatch},
		{"live checkout re-priced", nil, func(o *mandate.SDJWTVerifyOptions) {
			o.Checkout = edit(t, o.Checkout, func(m map[string]any) { setTotal(m, 1) })
		}, mandate.CodeMandateScopeMismatch},
	}
	for _, c := range cases {
		s := f.spec()
		if c.mod != nil {
			c.mod(s)
		}
		o := f.opts()
		if c.opts != nil {
			c.opts(o)
		}
		_, err := mandate.VerifySDJWTCheckoutMandate(ctx, s.build(t, f.now), o)
		var me *mandate.Error
		if !errors.As(err, &me) || me.Code != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
	for name, chain := range map[string]string{
		"empty":        "",
		"no separator": "a.b.c~",
		"two chains":   "a.b.c~~a.b.c~~a.b.c~",
		"not sd-jwt":   "a.b.c~~a.b.c",
	} {
		if _, err := mandate.VerifySDJWTCheckoutMandate(ctx, chain, f.opts()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSDJWTReplay(t *testing.T) {
	t.Parallel()
	f := newSDFixture(t)
	o := f.opts()
	o.Replay = mandate.NewMemoryReplayCache(0, o.Now)
	chain := f.spec().build(t, f.now)
	if _, err := mandate.VerifySDJWTCheckoutMandate(context.Background(), chain, o); err != nil {
		t.Fatal(err)
	}
	if _, err := mandate.VerifySDJWTCheckoutMandate(context.Background(), chain, o); !errors.Is(err, mandate.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
}

// TestAnyVerifier: a store accepts both forms through one interface.
func TestAnyVerifier(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sf := newSDFixture(t)
	ctx := context.Background()
	compactOpts := *f.opts()
	var v mandate.CheckoutMandateVerifier = &mandate.AnyVerifier{
		Compact: &mandate.CompactVerifier{Options: compactOpts},
		SDJWT:   &mandate.SDJWTVerifier{Options: *sf.opts()},
	}
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	a, err := v.VerifyCheckoutMandate(ctx, tok, f.checkout)
	if err != nil || a.Format != "jws" || !strings.HasPrefix(a.Reference, "m_") {
		t.Fatalf("compact: %+v %v", a, err)
	}
	a, err = v.VerifyCheckoutMandate(ctx, sf.spec().build(t, sf.now), []byte(sf.checkout))
	if err != nil || a.Format != "sd-jwt" {
		t.Fatalf("sd-jwt: %+v %v", a, err)
	}
	if _, err := v.VerifyCheckoutMandate(ctx, "", f.checkout); !errors.Is(err, mandate.ErrMandateRequired) {
		t.Fatalf("empty: %v", err)
	}
	onlyCompact := &mandate.AnyVerifier{Compact: &mandate.CompactVerifier{Options: compactOpts}}
	if _, err := onlyCompact.VerifyCheckoutMandate(ctx, sf.spec().build(t, sf.now), []byte(sf.checkout)); !errors.Is(err, mandate.ErrMandateInvalidSignature) {
		t.Fatalf("sd-jwt refused: %v", err)
	}
	onlySD := &mandate.AnyVerifier{SDJWT: &mandate.SDJWTVerifier{Options: *sf.opts()}}
	if _, err := onlySD.VerifyCheckoutMandate(ctx, tok, f.checkout); !errors.Is(err, mandate.ErrMandateInvalidSignature) {
		t.Fatalf("compact refused: %v", err)
	}
}

func TestResolveDisclosures(t *testing.T) {
	t.Parallel()
	sd := func(payload string, discs ...string) (map[string]any, error) {
		compact := "e30.e30.sig~"
		for _, d := range discs {
			compact += d + "~"
		}
		p, err := mandate.ParseSDJWT(compact)
		if err != nil {
			return nil, err
		}
		return p.Resolve([]byte(payload))
	}
	member := disclosure(t, "name", "Ada")
	element := disclosure(t, "x")
	got, err := sd(`{"_sd":["`+mandate.Digest(member)+`","decoy"],"list":[1,{"...":"`+mandate.Digest(element)+`"},{"...":"undisclosed"}],"_sd_alg":"sha-256"}`, member, element)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"list":[1,"x"],"name":"Ada"}` {
		t.Fatalf("resolved %s", b)
	}
	for name, c := range map[string]struct {
		payload string
		discs   []string
	}{
		"referenced twice":         {`{"_sd":["` + mandate.Digest(member) + `","` + mandate.Digest(member) + `"]}`, []string{member}},
		"element referenced twice": {`{"a":[{"...":"` + mandate.Digest(element) + `"},{"...":"` + mandate.Digest(element) + `"}]}`, []string{element}},
		"member used as element":   {`{"a":[{"...":"` + mandate.Digest(member) + `"}]}`, []string{member}},
		"element used as member":   {`{"_sd":["` + mandate.Digest(element) + `"]}`, []string{element}},
		"member already present":   {`{"name":"Bob","_sd":["` + mandate.Digest(member) + `"]}`, []string{member}},
		"unreferenced disclosure":  {`{}`, []string{member}},
		"_sd not an array":         {`{"_sd":"x"}`, nil},
		"payload not an object":    {`[]`, nil},
		"unsupported _sd_alg":      {`{"_sd_alg":"sha-512"}`, nil},
	} {
		if _, err := sd(c.payload, c.discs...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, compact := range map[string]string{
		"duplicate disclosure": "e30.e30.sig~" + member + "~" + member + "~",
		"no trailing tilde":    "e30.e30.sig",
		"reserved name":        "e30.e30.sig~" + disclosure(t, "_sd", 1) + "~",
		"not an array":         "e30.e30.sig~" + base64.RawURLEncoding.EncodeToString([]byte(`{"a":1}`)) + "~",
		"four elements":        "e30.e30.sig~" + base64.RawURLEncoding.EncodeToString([]byte(`["s","a",1,2]`)) + "~",
		"not a jwt":            "abc~",
	} {
		if _, err := mandate.ParseSDJWT(compact); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
