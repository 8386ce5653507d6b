package ucpclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// testCheckout is a store-signed checkout (EUR 33.00).
func testCheckout(t *testing.T, store *mandate.SigningKey) json.RawMessage {
	t.Helper()
	body := `{"id":"co_123","status":"ready_for_complete","currency":"EUR","ucp":{"version":"2026-04-08","status":"success"},` +
		`"line_items":[{"item":{"id":"bouquet_roses","title":"Roses <red> & white","price":1500},"quantity":2}],` +
		`"totals":[{"type":"subtotal","amount":3000},{"type":"fulfillment","amount":300},{"type":"total","amount":3300}]}`
	signed, err := mandate.AttachMerchantAuthorization([]byte(body), store)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func newTestSigner(t *testing.T) *Ap2Signer {
	t.Helper()
	k, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewAp2Signer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// compactParts decodes a compact JWS's header and claims without
// verifying.
func compactParts(t *testing.T, token string) (hdr, claims map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not compact: %s", token)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := json.Unmarshal(dec(parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(dec(parts[1])))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	return hdr, claims, dec(parts[2])
}

var mandateJTI = regexp.MustCompile(`^[mp]_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// verifyElsewhere checks a compact ES256 JWS with go-jose directly and with
// lestrrat-go/jwx, an independent JOSE implementation, and returns the
// payload.
func verifyElsewhere(t *testing.T, token string, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := obj.Verify(pub)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	p2, err := jws.Verify([]byte(token), jws.WithKey(jwa.ES256(), pub))
	if err != nil {
		t.Fatalf("jwx: %v", err)
	}
	if !bytes.Equal(p1, p2) {
		t.Fatal("the libraries disagree on the payload")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := obj.Verify(&other.PublicKey); err == nil {
		t.Fatal("go-jose verified with another key")
	}
	if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.ES256(), &other.PublicKey)); err == nil {
		t.Fatal("jwx verified with another key")
	}
	return p1
}

func TestMintCheckoutMandate(t *testing.T) {
	t.Parallel()
	storeKey, _ := mandate.GenerateSigningKey()
	checkout := testCheckout(t, storeKey)
	s := newTestSigner(t)
	agentKeys := mandate.NewKeySet(s.key.PublicJWK())
	now := time.Now()
	allowance := "3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b"

	tests := []struct {
		name          string
		opts          *MandateOptions
		wantTTL       time.Duration
		wantAllowance string
	}{
		{"defaults", nil, 300 * time.Second, ""},
		{"allowance uuid kept", &MandateOptions{PaymentMandateID: allowance, Now: now}, 300 * time.Second, allowance},
		{"rail id dropped", &MandateOptions{PaymentMandateID: "sh.artos.card", Now: now}, 300 * time.Second, ""},
		{"pm_ id dropped", &MandateOptions{PaymentMandateID: "pm_optional", Now: now}, 300 * time.Second, ""},
		{"ttl", &MandateOptions{TTL: time.Minute, Now: now, HandlerID: "artos.card"}, time.Minute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.MintCheckoutMandate(checkout, "flower-shop", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			hdr, claims, sig := compactParts(t, tok)
			if len(hdr) != 2 || hdr["alg"] != "ES256" || hdr["kid"] != s.KeyID() {
				t.Errorf("header %v", hdr)
			}
			if len(sig) != 64 {
				t.Errorf("signature is %d bytes, want raw r||s (64)", len(sig))
			}
			if claims["merchant"] != "flower-shop" || !mandateJTI.MatchString(claims["jti"].(string)) || !strings.HasPrefix(claims["jti"].(string), "m_") {
				t.Errorf("claims %v", claims)
			}
			exp, _ := claims["exp"].(json.Number).Int64()
			iat, _ := claims["iat"].(json.Number).Int64()
			if time.Duration(exp-iat)*time.Second != tt.wantTTL || iat < now.Unix()-5 || iat > time.Now().Unix()+1 {
				t.Errorf("iat %d exp %d, want a TTL of %v", iat, exp, tt.wantTTL)
			}
			if got, _ := claims["payment_mandate_id"].(string); got != tt.wantAllowance {
				t.Errorf("payment_mandate_id %q, want %q", got, tt.wantAllowance)
			}
			// The checkout claim is the body verbatim, merchant_authorization
			// included.
			payload := verifyElsewhere(t, tok, s.key.PublicKey())
			var raw struct{ Checkout json.RawMessage }
			if err := json.Unmarshal(payload, &raw); err != nil || !bytes.Equal(raw.Checkout, checkout) {
				t.Errorf("checkout claim is not verbatim:\n%s\n%s", raw.Checkout, checkout)
			}
			// The store's verifier accepts it, including the embedded
			// merchant_authorization.
			v, err := mandate.VerifyCheckoutMandate(t.Context(), tok, &mandate.VerifyOptions{
				AgentKeys: agentKeys, Merchant: "flower-shop", Checkout: checkout,
				MerchantKeys: mandate.NewKeySet(storeKey.PublicJWK()), HandlerID: "artos.card"})
			if err != nil {
				t.Fatal(err)
			}
			if v.Total.Amount != 3300 || v.Total.Currency != "EUR" || v.KeyID != s.KeyID() {
				t.Errorf("verified %+v", v)
			}
			// Another merchant, or changed terms, are refused.
			if _, err := mandate.VerifyCheckoutMandate(t.Context(), tok, &mandate.VerifyOptions{
				AgentKeys: agentKeys, Merchant: "kyoto-tea", Checkout: checkout}); !errors.Is(err, mandate.ErrMandateScopeMismatch) {
				t.Errorf("other merchant: %v", err)
			}
			changed := bytes.Replace(checkout, []byte(`"amount":3300`), []byte(`"amount":3301`), 1)
			if _, err := mandate.VerifyCheckoutMandate(t.Context(), tok, &mandate.VerifyOptions{
				AgentKeys: agentKeys, Merchant: "flower-shop", Checkout: changed}); !errors.Is(err, mandate.ErrMandateScopeMismatch) {
				t.Errorf("changed terms: %v", err)
			}
		})
	}

	for name, tc := range map[string]struct {
		checkout string
		merchant string
	}{
		"no merchant":  {string(checkout), ""},
		"not JSON":     {"nope", "flower-shop"},
		"no total":     {`{"id":"co","currency":"EUR","totals":[]}`, "flower-shop"},
		"no currency":  {`{"id":"co","totals":[{"type":"total","amount":1}]}`, "flower-shop"},
		"empty":        {``, "flower-shop"},
		"negative ttl": {string(checkout), "flower-shop"},
	} {
		opts := &MandateOptions{}
		if name == "negative ttl" {
			opts.TTL = -time.Second
		}
		if tok, err := s.MintCheckoutMandate(json.RawMessage(tc.checkout), tc.merchant, opts); err == nil {
			t.Errorf("%s: minted %s", name, tok)
		}
	}
}

func TestMintPaymentMandate(t *testing.T) {
	t.Parallel()
	storeKey, _ := mandate.GenerateSigningKey()
	checkout := testCheckout(t, storeKey)
	s := newTestSigner(t)
	agentKeys := mandate.NewKeySet(s.key.PublicJWK())
	allowance := "3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b"
	verify := func(tok string, live json.RawMessage) (*mandate.Verified, error) {
		return mandate.VerifyPaymentMandate(t.Context(), tok, &mandate.VerifyOptions{AgentKeys: agentKeys, Merchant: "flower-shop", Checkout: live})
	}

	t.Run("artos shape", func(t *testing.T) {
		tok, err := s.MintPaymentMandate(3300, "eur", "flower-shop", &MandateOptions{PaymentMandateID: allowance})
		if err != nil {
			t.Fatal(err)
		}
		hdr, claims, sig := compactParts(t, tok)
		if len(hdr) != 2 || hdr["alg"] != "ES256" || hdr["kid"] != s.KeyID() || len(sig) != 64 {
			t.Errorf("header %v, %d-byte signature", hdr, len(sig))
		}
		pay, _ := claims["payment"].(map[string]any)
		if pay["amount"] != json.Number("3300") || pay["currency"] != "EUR" || pay["merchant"] != "flower-shop" ||
			!strings.HasPrefix(claims["jti"].(string), "p_") || !mandateJTI.MatchString(claims["jti"].(string)) ||
			claims["payment_mandate_id"] != allowance || claims["checkout"] != nil {
			t.Errorf("claims %v", claims)
		}
		verifyElsewhere(t, tok, s.key.PublicKey())
		if v, err := verify(tok, checkout); err != nil || v.Claims.Payment.Amount != 3300 {
			t.Fatalf("%+v %v", v, err)
		}
		other := bytes.Replace(checkout, []byte(`"amount":3300`), []byte(`"amount":3299`), 1)
		if _, err := verify(tok, other); !errors.Is(err, mandate.ErrMandateScopeMismatch) {
			t.Errorf("another total: %v", err)
		}
	})
	t.Run("non-uuid allowance dropped", func(t *testing.T) {
		tok, err := s.MintPaymentMandate(3300, "EUR", "flower-shop", &MandateOptions{PaymentMandateID: "sh.artos.card"})
		if err != nil {
			t.Fatal(err)
		}
		if _, claims, _ := compactParts(t, tok); claims["payment_mandate_id"] != nil {
			t.Errorf("claims %v", claims)
		}
	})
	t.Run("bound to the checkout", func(t *testing.T) {
		tok, err := s.MintPaymentMandate(3300, "EUR", "flower-shop", &MandateOptions{Checkout: checkout})
		if err != nil {
			t.Fatal(err)
		}
		_, claims, _ := compactParts(t, tok)
		if claims["checkout_id"] != "co_123" || claims["checkout_hash"] == nil {
			t.Errorf("claims %v", claims)
		}
		if _, err := verify(tok, checkout); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MintPaymentMandate(3299, "EUR", "flower-shop", &MandateOptions{Checkout: checkout}); err == nil ||
			!strings.Contains(err.Error(), "33.00 EUR") {
			t.Errorf("amount other than the checkout's: %v", err)
		}
	})
	for name, tc := range map[string]struct {
		amount   int64
		currency string
		merchant string
	}{
		"negative":         {-1, "EUR", "flower-shop"},
		"unknown currency": {1, "SUI", "flower-shop"},
		"no currency":      {1, "", "flower-shop"},
		"no merchant":      {1, "EUR", ""},
	} {
		if tok, err := s.MintPaymentMandate(tc.amount, tc.currency, tc.merchant, nil); err == nil {
			t.Errorf("%s: minted %s", name, tok)
		}
	}
	if _, err := s.MintPaymentMandate(1, "EUR", "flower-shop", &MandateOptions{TTL: -1}); err == nil {
		t.Error("negative TTL accepted")
	}
}

func TestParseAp2Signer(t *testing.T) {
	t.Parallel()
	k, _ := mandate.GenerateSigningKey()
	jwk, err := k.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := k.MarshalPrivatePEM()
	for name, tc := range map[string]struct {
		key     []byte
		kid     string
		wantKid string
	}{
		"jwk keeps its kid": {jwk, "", k.KeyID()},
		"kid overrides":     {jwk, "agent_key_2026", "agent_key_2026"},
		"pem thumbprint":    {pemKey, "", k.KeyID()},
		"pem with kid":      {pemKey, "agent_key_2026", "agent_key_2026"},
	} {
		s, err := ParseAp2Signer(tc.key, tc.kid)
		if err != nil || s.KeyID() != tc.wantKid {
			t.Errorf("%s: %v, kid %v", name, err, s)
			continue
		}
		tok, err := s.MintPaymentMandate(1, "JPY", "kyoto-tea", nil)
		if err != nil {
			t.Fatal(err)
		}
		if hdr, _, _ := compactParts(t, tok); hdr["kid"] != tc.wantKid {
			t.Errorf("%s: header %v", name, hdr)
		}
		verifyElsewhere(t, tok, k.PublicKey())
	}
	if _, err := ParseAp2Signer([]byte(`{"kty":"EC"}`), "x"); err == nil {
		t.Error("a public JWK was accepted")
	}
	if _, err := NewAp2Signer(nil); err == nil {
		t.Error("nil key accepted")
	}
}

// signDetached signs payload as a detached JWS with the given extra
// protected headers (no kid unless given).
func signDetached(t *testing.T, key *ecdsa.PrivateKey, alg jose.SignatureAlgorithm, kid string, payload []byte) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.DetachedCompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withAuthorization(t *testing.T, checkout json.RawMessage, token string) json.RawMessage {
	t.Helper()
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(checkout, &obj); err != nil {
		t.Fatal(err)
	}
	if token == "" {
		delete(obj, "ap2")
	} else {
		obj["ap2"], _ = json.Marshal(map[string]string{"merchant_authorization": token})
	}
	b, _ := json.Marshal(obj)
	return b
}

func TestVerifyMerchantAuthorization(t *testing.T) {
	t.Parallel()
	storeKey, _ := mandate.GenerateSigningKey()
	otherKey, _ := mandate.GenerateSigningKey()
	checkout := testCheckout(t, storeKey)
	// The profile publishes the store key second under UCP's name and an
	// unrelated key first under the Artos name; kid picks the right one.
	profile := func(keys ...*mandate.SigningKey) *mandate.KeySet {
		var list []json.RawMessage
		for _, k := range keys {
			b, _ := json.Marshal(k.PublicJWK())
			list = append(list, b)
		}
		doc, _ := json.Marshal(map[string]any{"ucp": map[string]any{"version": "2026-04-08"}, "keys": list})
		ks, err := mandate.ParseKeySet(doc)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	both := profile(otherKey, storeKey)
	payload := func() []byte {
		obj := map[string]json.RawMessage{}
		_ = json.Unmarshal(checkout, &obj)
		delete(obj, "ap2")
		b, _ := mandate.CanonicalizeValue(obj)
		return b
	}()
	noKid := signDetached(t, storeKey.PrivateKey(), jose.ES256, "", payload)

	tests := []struct {
		name     string
		checkout json.RawMessage
		keys     *mandate.KeySet
		want     error // nil, ErrMerchantAuthorizationMissing or ErrMerchantAuthorizationInvalid
	}{
		{"valid, kid selects", checkout, both, nil},
		{"valid, one key", checkout, profile(storeKey), nil},
		{"re-serialised body still verifies (JCS)", withAuthorization(t, checkout, mustAuth(t, checkout)), both, nil},
		{"tampered total", bytes.Replace(checkout, []byte(`"amount":3300`), []byte(`"amount":1`), 1), both, mandate.ErrMerchantAuthorizationInvalid},
		{"tampered title", bytes.Replace(checkout, []byte(`Roses`), []byte(`Daisies`), 1), both, mandate.ErrMerchantAuthorizationInvalid},
		{"unknown kid", checkout, profile(otherKey), mandate.ErrMerchantAuthorizationInvalid},
		{"no keys", checkout, profile(), mandate.ErrMerchantAuthorizationInvalid},
		{"nil keys", checkout, nil, mandate.ErrMerchantAuthorizationInvalid},
		{"missing", withAuthorization(t, checkout, ""), both, mandate.ErrMerchantAuthorizationMissing},
		{"empty", withAuthorization(t, checkout, " "[:0]), both, mandate.ErrMerchantAuthorizationMissing},
		{"no kid, first key is the store's", withAuthorization(t, checkout, noKid), profile(storeKey, otherKey), nil},
		{"no kid, first key is another", withAuthorization(t, checkout, noKid), profile(otherKey, storeKey), mandate.ErrMerchantAuthorizationInvalid},
		{"payload segment present", withAuthorization(t, checkout, strings.Replace(mustAuth(t, checkout), "..", ".e30.", 1)), both, mandate.ErrMerchantAuthorizationInvalid},
		{"HS256 header", withAuthorization(t, checkout, "eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ..c2ln"), both, mandate.ErrMerchantAuthorizationInvalid},
		{"garbage", withAuthorization(t, checkout, "not-a-jws"), both, mandate.ErrMerchantAuthorizationInvalid},
		{"b64 false", withAuthorization(t, checkout, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","b64":false,"crit":["b64"]}`))+"..c2ln"), both, mandate.ErrMerchantAuthorizationInvalid},
		{"not JSON", json.RawMessage(`nope`), both, mandate.ErrMerchantAuthorizationInvalid},
	}
	for _, tt := range tests {
		err := VerifyMerchantAuthorization(tt.checkout, tt.keys)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func mustAuth(t *testing.T, checkout json.RawMessage) string {
	t.Helper()
	var v struct {
		AP2 struct {
			MerchantAuthorization string `json:"merchant_authorization"`
		} `json:"ap2"`
	}
	if err := json.Unmarshal(checkout, &v); err != nil {
		t.Fatal(err)
	}
	return v.AP2.MerchantAuthorization
}

// TestArtosVectors runs the Artos SDK's frozen AP2 verification vectors
// (@artos-commerce/ucp-client, installed by .ci/interop) and expects the
// same answers; it skips when the package is not installed.
func TestArtosVectors(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", ".ci", "interop", "node_modules", "@artos-commerce", "ucp-client", "test", "test-vectors", "ap2-verify.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("Artos SDK test vectors not installed (run the .ci/interop install)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		PublicJWK             json.RawMessage `json:"publicJwk"`
		MerchantAuthorization []struct {
			Name   string          `json:"name"`
			Body   json.RawMessage `json:"body"`
			Expect bool            `json:"expect"`
		} `json:"merchantAuthorization"`
		Detached []struct {
			Name    string `json:"name"`
			Token   string `json:"token"`
			Payload string `json:"payload"`
			Expect  bool   `json:"expect"`
		} `json:"detached"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	keys, err := mandate.ParseKeySet([]byte(`{"keys":[` + string(v.PublicJWK) + `]}`))
	if err != nil || keys.Len() != 1 {
		t.Fatalf("keys: %v", err)
	}
	if len(v.MerchantAuthorization) == 0 || len(v.Detached) == 0 {
		t.Fatal("the vector file has no cases")
	}
	for _, c := range v.MerchantAuthorization {
		if err := VerifyMerchantAuthorization(c.Body, keys); (err == nil) != c.Expect {
			t.Errorf("merchant_authorization %q: err = %v, Artos says valid=%v", c.Name, err, c.Expect)
		}
	}
	for _, c := range v.Detached {
		if err := VerifyDetachedJWS(c.Token, []byte(c.Payload), keys); (err == nil) != c.Expect {
			t.Errorf("detached %q: err = %v, Artos says valid=%v", c.Name, err, c.Expect)
		}
	}
}

// getJSON fetches url with the headers and returns the body.
func getJSON(t *testing.T, method, url, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, buf.Bytes()
}
