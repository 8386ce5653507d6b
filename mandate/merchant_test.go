package mandate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/mandate"
)

func merchantAuth(t *testing.T, checkout []byte) string {
	t.Helper()
	var m struct {
		AP2 struct {
			MerchantAuthorization string `json:"merchant_authorization"`
		} `json:"ap2"`
	}
	if err := json.Unmarshal(checkout, &m); err != nil {
		t.Fatal(err)
	}
	return m.AP2.MerchantAuthorization
}

func setMerchantAuth(t *testing.T, checkout []byte, v any) []byte {
	return edit(t, checkout, func(m map[string]any) {
		ap2, _ := m["ap2"].(map[string]any)
		if ap2 == nil {
			ap2 = map[string]any{}
			m["ap2"] = ap2
		}
		if v == nil {
			delete(ap2, "merchant_authorization")
		} else {
			ap2["merchant_authorization"] = v
		}
	})
}

func TestMerchantAuthorizationShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := merchantAuth(t, f.checkout)
	seg := segments(tok)
	if len(seg) != 3 || seg[1] != "" {
		t.Fatalf("not detached compact: %q", tok)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(seg[0])
	if want := `{"alg":"ES256","kid":"` + f.store.KeyID() + `"}`; string(hdr) != want {
		t.Fatalf("header %s, want %s", hdr, want)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(seg[2])
	if len(sig) != 64 {
		t.Fatalf("ES256 signature must be raw r||s (64 bytes), got %d", len(sig))
	}
	// The payload is JCS(checkout minus ap2): verify by hand with go-jose.
	payload, err := mandate.Canonicalize([]byte(checkoutJSON))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseDetached(tok, payload, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if err := jws.DetachedVerify(payload, f.store.PublicKey()); err != nil {
		t.Fatalf("detached payload is not JCS(checkout minus ap2): %v", err)
	}
}

func TestVerifyMerchantAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := mandate.VerifyMerchantAuthorization(ctx, f.checkout, f.storeKeys); err != nil {
		t.Fatalf("valid: %v", err)
	}
	// Re-serialisation (key order, whitespace, escaping) must not matter.
	reserialised := edit(t, f.checkout, func(map[string]any) {})
	if err := mandate.VerifyMerchantAuthorization(ctx, reserialised, f.storeKeys); err != nil {
		t.Fatalf("re-serialised: %v", err)
	}
	// Other ap2 members are outside the payload.
	extra := edit(t, f.checkout, func(m map[string]any) { m["ap2"].(map[string]any)["checkout_mandate"] = "x.y.z" })
	if err := mandate.VerifyMerchantAuthorization(ctx, extra, f.storeKeys); err != nil {
		t.Fatalf("extra ap2 member: %v", err)
	}

	other, _ := mandate.GenerateSigningKey()
	spoofed, _ := mandate.NewSigningKey(other.PrivateKey(), f.store.KeyID())
	spoofedSig, _ := mandate.SignMerchantAuthorization(f.checkout, spoofed)
	tok := merchantAuth(t, f.checkout)
	hdrSig := segments(tok)
	payload := base64.RawURLEncoding.EncodeToString([]byte(checkoutJSON))

	hmacTok := forge(t, `{"alg":"HS256","kid":"`+f.store.KeyID()+`"}`, nil)
	rsTok := forge(t, `{"alg":"RS256","kid":"`+f.store.KeyID()+`"}`, nil)
	noneTok := forge(t, `{"alg":"none","kid":"`+f.store.KeyID()+`"}`, nil)
	noKid := forge(t, `{"alg":"ES256"}`, nil)
	b64false := forge(t, `{"alg":"ES256","kid":"`+f.store.KeyID()+`","b64":false,"crit":["b64"]}`, nil)

	// A genuine RFC 7797 (b64:false) signature over the right payload:
	// valid JWS, but not the UCP form.
	unencoded, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.store.PrivateKey(), KeyID: f.store.KeyID()}},
		(&jose.SignerOptions{}).WithBase64(false))
	jcsPayload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	obj, err := unencoded.Sign(jcsPayload)
	if err != nil {
		t.Fatal(err)
	}
	realB64false, _ := obj.DetachedCompactSerialize()

	cases := []struct {
		name     string
		checkout []byte
		code     mandate.Code
	}{
		{"tampered total", edit(t, f.checkout, func(m map[string]any) { setTotal(m, 1) }), mandate.CodeMerchantAuthorizationInvalid},
		{"tampered line item title", edit(t, f.checkout, func(m map[string]any) {
			m["line_items"].([]any)[0].(map[string]any)["item"].(map[string]any)["title"] = "Roses"
		}), mandate.CodeMerchantAuthorizationInvalid},
		{"ucp envelope is covered", edit(t, f.checkout, func(m map[string]any) { m["ucp"].(map[string]any)["version"] = "2026-01-23" }), mandate.CodeMerchantAuthorizationInvalid},
		{"added member", edit(t, f.checkout, func(m map[string]any) { m["continue_url"] = "https://evil.example" }), mandate.CodeMerchantAuthorizationInvalid},
		{"missing", setMerchantAuth(t, f.checkout, nil), mandate.CodeMerchantAuthorizationMissing},
		{"empty", setMerchantAuth(t, f.checkout, ""), mandate.CodeMerchantAuthorizationMissing},
		{"no ap2 at all", []byte(checkoutJSON), mandate.CodeMerchantAuthorizationMissing},
		{"spoofed kid", setMerchantAuth(t, f.checkout, spoofedSig), mandate.CodeMerchantAuthorizationInvalid},
		{"unknown kid", setMerchantAuth(t, f.checkout, forge(t, `{"alg":"ES256","kid":"nope"}`, []byte(hdrSig[2]))), mandate.CodeMerchantAuthorizationInvalid},
		{"payload segment present", setMerchantAuth(t, f.checkout, hdrSig[0]+"."+payload+"."+hdrSig[2]), mandate.CodeMerchantAuthorizationInvalid},
		{"HS256 header", setMerchantAuth(t, f.checkout, hmacTok), mandate.CodeMerchantAuthorizationInvalid},
		{"RS256 header", setMerchantAuth(t, f.checkout, rsTok), mandate.CodeMerchantAuthorizationInvalid},
		{"alg none", setMerchantAuth(t, f.checkout, noneTok), mandate.CodeMerchantAuthorizationInvalid},
		{"no kid", setMerchantAuth(t, f.checkout, noKid), mandate.CodeMerchantAuthorizationInvalid},
		{"b64 false", setMerchantAuth(t, f.checkout, b64false), mandate.CodeMerchantAuthorizationInvalid},
		{"b64 false, validly signed", setMerchantAuth(t, f.checkout, realB64false), mandate.CodeMerchantAuthorizationInvalid},
		{"trailing newline", setMerchantAuth(t, f.checkout, tok+"\n"), mandate.CodeMerchantAuthorizationInvalid},
		{"no kid, resolver answers anything", setMerchantAuth(t, f.checkout, noKidSigned(t, f)), mandate.CodeMerchantAuthorizationInvalid},
		{"not a string", setMerchantAuth(t, f.checkout, 42), mandate.CodeMerchantAuthorizationInvalid},
		{"garbage", setMerchantAuth(t, f.checkout, "a..b..c"), mandate.CodeMerchantAuthorizationInvalid},
		{"duplicate member", []byte(`{"id":"x","id":"y","ap2":{"merchant_authorization":"` + tok + `"}}`), mandate.CodeMerchantAuthorizationInvalid},
		{"not an object", []byte(`[]`), mandate.CodeMerchantAuthorizationInvalid},
	}
	for _, tc := range cases {
		var keys mandate.KeyResolver = f.storeKeys
		if strings.HasPrefix(tc.name, "no kid, resolver") {
			keys = anyKey{f.store}
		}
		err := mandate.VerifyMerchantAuthorization(ctx, tc.checkout, keys)
		var me *mandate.Error
		if !errors.As(err, &me) || me.Code != tc.code {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}

// forge builds a detached token with the given raw header and signature
// bytes (random when nil).
func forge(t *testing.T, header string, sig []byte) string {
	t.Helper()
	if sig == nil {
		sig = make([]byte, 64)
		rand.Read(sig)
	} else {
		sig, _ = base64.RawURLEncoding.DecodeString(string(sig))
	}
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + ".." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVerifyMerchantAuthorizationES384 covers a store that signs with a
// P-384 key: UCP allows ES256, ES384 and ES512 for merchant_authorization.
func TestVerifyMerchantAuthorizationES384(t *testing.T) {
	t.Parallel()
	priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: priv, KeyID: "p384"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	obj, _ := signer.Sign(payload)
	det, _ := obj.DetachedCompactSerialize()
	checkout := setMerchantAuth(t, []byte(checkoutJSON), det)
	keys := mandate.NewKeySet(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "p384"})
	if err := mandate.VerifyMerchantAuthorization(context.Background(), checkout, keys); err != nil {
		t.Fatal(err)
	}
}

func TestAttachKeepsOtherMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := []byte(strings.Replace(checkoutJSON, `"status"`, `"ap2": {"other": "keep"}, "status"`, 1))
	out, err := mandate.AttachMerchantAuthorization(in, f.store)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"other":"keep"`) || !strings.Contains(string(out), `Roses & <Baby's breath>`) {
		t.Fatalf("lost or escaped members: %s", out)
	}
	if err := mandate.VerifyMerchantAuthorization(context.Background(), out, f.storeKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := mandate.AttachMerchantAuthorization([]byte(`{"id":1,"ap2":"x"}`), f.store); err == nil {
		t.Fatal("non-object ap2 accepted")
	}
}

func noKidSigned(t *testing.T, f *fixture) string {
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.store.PrivateKey()}, nil)
	payload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	obj, _ := s.Sign(payload)
	det, _ := obj.DetachedCompactSerialize()
	return det
}

// TestSignaturesAreDeterministic: RFC 6979 signing makes a checkout served
// twice (or over REST and MCP) byte-identical, and a different checkout
// gets a different signature that still verifies.
func TestSignaturesAreDeterministic(t *testing.T) {
	t.Parallel()
	k, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	a := []byte(`{"id":"chk_1","totals":[{"type":"total","amount":100}]}`)
	b := []byte(`{"id":"chk_1","totals":[{"type":"total","amount":101}]}`)
	s1, err := mandate.SignMerchantAuthorization(a, k)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := mandate.SignMerchantAuthorization(a, k)
	s3, _ := mandate.SignMerchantAuthorization(b, k)
	if s1 != s2 {
		t.Fatalf("same payload, different signatures:\n%s\n%s", s1, s2)
	}
	if s1 == s3 {
		t.Fatal("different payloads, same signature")
	}
	keys := mandate.NewKeySet(k.PublicJWK())
	for _, c := range []struct {
		body []byte
		sig  string
	}{{a, s1}, {b, s3}} {
		var m map[string]any
		json.Unmarshal(c.body, &m)
		m["ap2"] = map[string]string{"merchant_authorization": c.sig}
		signed, _ := json.Marshal(m)
		if err := mandate.VerifyMerchantAuthorization(context.Background(), signed, keys); err != nil {
			t.Fatal(err)
		}
	}
}
