package mandate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// BenchmarkMint mints a checkout mandate embedding a ~1.5 KB checkout:
// terms hash (JCS), claims, ES256.
func BenchmarkMint(b *testing.B) {
	f := newFixture(b)
	p := f.params()
	for b.Loop() {
		if _, err := mandate.MintCheckoutMandate(f.agent, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify verifies that mandate: ES256, claims, time, audience,
// and the terms binding to the live checkout (two JCS passes).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	o := f.opts()
	o.MerchantKeys = nil
	ctx := context.Background()
	for b.Loop() {
		if _, err := mandate.VerifyCheckoutMandate(ctx, tok, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintVerify is the pair the performance goal is stated for.
func BenchmarkMintVerify(b *testing.B) {
	f := newFixture(b)
	p, o := f.params(), f.opts()
	o.MerchantKeys = nil
	ctx := context.Background()
	for b.Loop() {
		tok, err := mandate.MintCheckoutMandate(f.agent, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mandate.VerifyCheckoutMandate(ctx, tok, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWithMerchantAuthorization adds UCP step 4, the store
// re-verifying its own signature inside the embedded checkout: a second
// ECDSA verify.
func BenchmarkVerifyWithMerchantAuthorization(b *testing.B) {
	f := newFixture(b)
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	o := f.opts()
	ctx := context.Background()
	for b.Loop() {
		if _, err := mandate.VerifyCheckoutMandate(ctx, tok, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintVerifyPaymentMandate: the small payment mandate.
func BenchmarkMintVerifyPaymentMandate(b *testing.B) {
	f := newFixture(b)
	p, o := f.params(), f.opts()
	ctx := context.Background()
	for b.Loop() {
		tok, err := mandate.MintPaymentMandate(f.agent, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mandate.VerifyPaymentMandate(ctx, tok, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSAP256SignVerify is the floor: one P-256 sign and one
// verify of a SHA-256 over the same checkout bytes.
func BenchmarkRawECDSAP256SignVerify(b *testing.B) {
	f := newFixture(b)
	priv := f.agent.PrivateKey()
	for b.Loop() {
		h := sha256.Sum256(f.checkout)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			b.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], sig) {
			b.Fatal("verify")
		}
	}
}
