package mandate_test

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// These tests cross-check against lestrrat-go/jwx, a JOSE implementation
// that shares no code with go-jose.

func TestInteropJWXVerifiesOurMandates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, mint := range map[string]func(*mandate.SigningKey, *mandate.Params) (string, error){
		"checkout": mandate.MintCheckoutMandate, "payment": mandate.MintPaymentMandate,
	} {
		tok, err := mint(f.agent, f.params())
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.ES256(), f.agent.PublicKey()))
		if err != nil {
			t.Fatalf("%s: jwx rejects our mandate: %v", name, err)
		}
		if string(payload) != payloadOf(t, tok) {
			t.Fatalf("%s: payload differs", name)
		}
	}
}

func TestInteropJWXVerifiesOurMerchantAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	payload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	det := merchantAuth(t, f.checkout)
	if _, err := jws.Verify([]byte(det), jws.WithKey(jwa.ES256(), f.store.PublicKey()), jws.WithDetachedPayload(payload)); err != nil {
		t.Fatalf("jwx rejects our merchant_authorization: %v", err)
	}
}

func TestInteropWeVerifyJWXMerchantAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	payload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, f.store.KeyID()); err != nil {
		t.Fatal(err)
	}
	det, err := jws.Sign(nil, jws.WithKey(jwa.ES256(), f.store.PrivateKey(), jws.WithProtectedHeaders(hdr)), jws.WithDetachedPayload(payload))
	if err != nil {
		t.Fatal(err)
	}
	checkout := setMerchantAuth(t, []byte(checkoutJSON), string(det))
	if err := mandate.VerifyMerchantAuthorization(context.Background(), checkout, f.storeKeys); err != nil {
		t.Fatalf("jwx-made merchant_authorization %s: %v", det, err)
	}
	// And a jwx-made compact mandate over Artos claims.
	claims := `{"checkout":` + string(f.checkout) + `,"merchant":"flower-shop","jti":"m_jwx","exp":` + jsonInt(f.now.Unix()+300) + `}`
	ah := jws.NewHeaders()
	ah.Set(jws.KeyIDKey, f.agent.KeyID())
	tok, err := jws.Sign([]byte(claims), jws.WithKey(jwa.ES256(), f.agent.PrivateKey(), jws.WithProtectedHeaders(ah)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mandate.VerifyCheckoutMandate(context.Background(), string(tok), f.opts()); err != nil {
		t.Fatalf("jwx-made mandate: %v", err)
	}
}
