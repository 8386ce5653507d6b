package mandate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// FuzzCanonicalize: whatever it accepts, the output is valid JSON with the
// same value, and canonicalising it again changes nothing.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{checkoutJSON, `{"b":1,"a":[1e21,-0,0.1]}`, `"\u2028<&>"`, `{"\ud83d\ude00":1,"\uff10":2}`, `[1e400]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := mandate.Canonicalize(in)
		if err != nil {
			return
		}
		again, err := mandate.Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) != nil {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("output is not JSON: %q", out)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("value changed: %q -> %q", in, out)
		}
	})
}

// FuzzVerifyCheckoutMandate: no input panics, and anything accepted
// carries exactly the claims that were signed.
func FuzzVerifyCheckoutMandate(f *testing.F) {
	fx := newFixture(f)
	good, err := mandate.MintCheckoutMandate(fx.agent, fx.params())
	if err != nil {
		f.Fatal(err)
	}
	want := payloadOf2(good)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := mandate.VerifyCheckoutMandate(context.Background(), tok, fx.opts())
		if err != nil {
			return
		}
		if payloadOf2(tok) != want || v.Claims.Merchant != storeSlug {
			t.Fatalf("accepted a token with other claims: %q", tok)
		}
	})
}

// FuzzVerifyMerchantAuthorization: no checkout panics the verifier, and a
// checkout it accepts has the signed terms.
func FuzzVerifyMerchantAuthorization(f *testing.F) {
	fx := newFixture(f)
	want, _ := mandate.Canonicalize([]byte(checkoutJSON))
	f.Add(fx.checkout)
	f.Add([]byte(`{"ap2":{"merchant_authorization":"a..b"}}`))
	f.Add([]byte(`{"ap2":null}`))
	f.Fuzz(func(t *testing.T, checkout []byte) {
		if mandate.VerifyMerchantAuthorization(context.Background(), checkout, fx.storeKeys) != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(checkout, &m); err != nil {
			t.Fatalf("accepted non-object %q", checkout)
		}
		delete(m, "ap2")
		b, _ := json.Marshal(m)
		got, err := mandate.Canonicalize(b)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("accepted a checkout with other terms: %q", checkout)
		}
	})
}

func payloadOf2(tok string) string {
	seg := segments(tok)
	if len(seg) != 3 {
		return ""
	}
	b, _ := base64.RawURLEncoding.DecodeString(seg[1])
	return string(b)
}

// FuzzVerifySDJWTCheckoutMandate: delegate chains are parsed from
// attacker input (disclosures, nested references, constraints); nothing
// may panic or loop, and whatever is accepted names the signed checkout.
func FuzzVerifySDJWTCheckoutMandate(f *testing.F) {
	fx := newSDFixture(f)
	good := fx.spec().build(f, fx.now)
	f.Add(good)
	f.Add("a.b.c~~a.b.c~")
	f.Add("e30.e30.e30~WyJzIiwiYSIsMV0~~e30.e30.e30~")
	opts := fx.opts()
	f.Fuzz(func(t *testing.T, chain string) {
		m, err := mandate.VerifySDJWTCheckoutMandate(context.Background(), chain, opts)
		if err == nil && !bytes.Contains(m.Checkout, []byte(`"chk_7f3a"`)) {
			t.Fatalf("accepted a chain for another checkout: %q", chain)
		}
	})
}
