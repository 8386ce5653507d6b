package httpsig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// FuzzVerifyRequest mutates the signature headers and the body of a
// signed request: nothing panics, and nothing but the signed body is
// accepted.
func FuzzVerifyRequest(f *testing.F) {
	a := newAgent(f)
	body := []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)
	req := ucpRequest(f, http.MethodPost, "https://api.example.com/s/flower-shop/carts", body)
	if err := a.signer.SignRequest(req, body); err != nil {
		f.Fatal(err)
	}
	in, sig, digest := req.Header.Get("Signature-Input"), req.Header.Get("Signature"), req.Header.Get("Content-Digest")
	f.Add(in, sig, digest, body)
	f.Add(`sig1=();keyid="agent-2026"`, `sig1=:AAAA:`, "", []byte(nil))
	f.Add(`a=("@method");keyid="x", b=("@path")`, `b=:=:`, "sha-512=:AA==:", []byte("x"))
	v := &httpsig.Verifier{Keys: a.keys}
	f.Fuzz(func(t *testing.T, in, sig, digest string, b []byte) {
		r := ucpRequest(t, http.MethodPost, "https://api.example.com/s/flower-shop/carts", b)
		r.Header.Set("Signature-Input", in)
		r.Header.Set("Signature", sig)
		r.Header.Set("Content-Digest", digest)
		if _, err := v.VerifyRequest(context.Background(), r, b); err == nil && !bytes.Equal(b, body) {
			t.Fatalf("accepted another body %q", b)
		}
	})
}

func benchBody() []byte {
	return []byte(`{"line_items":[` + strings.Repeat(`{"item":{"id":"bouquet_roses"},"quantity":1},`, 22) + `{"item":{"id":"x"},"quantity":1}]}`)
}

// BenchmarkSignVerifyPOST1KB signs and verifies a UCP POST with a ~1 KB
// JSON body: digest, component selection, httpsign base, ECDSA.
func BenchmarkSignVerifyPOST1KB(b *testing.B) {
	a := newAgent(b)
	body := benchBody()
	v := &httpsig.Verifier{Keys: a.keys}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	// Re-signing replaces the signature headers, so one request serves
	// every iteration and only signing and verifying are measured.
	req := ucpRequest(b, http.MethodPost, "https://api.example.com/s/flower-shop/checkout-sessions?x=1", body)
	for b.Loop() {
		if err := a.signer.SignRequest(req, body); err != nil {
			b.Fatal(err)
		}
		if _, err := v.VerifyRequest(ctx, req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSAP256SignVerify is the floor: one P-256 sign and one
// verify over the SHA-256 of the same body.
func BenchmarkRawECDSAP256SignVerify(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := benchBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		h := sha256.Sum256(body)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			b.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], sig) {
			b.Fatal("verify")
		}
	}
}
