package httpsig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// An agent signs a UCP request; the store verifies it with the key the
// agent publishes in its profile.
func Example() {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := httpsig.NewSigner(priv, "agent-key-1", nil)

	body := []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)
	req, _ := http.NewRequest("POST", "https://api.example.com/s/flower-shop/checkout-sessions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("UCP-Agent", `profile="https://agent.example/.well-known/ucp"`)
	req.Header.Set("Idempotency-Key", "0b4c7f0e-5d0a-4e43-9b37-7f1f0d2f4a11")
	if err := signer.SignRequest(req, body); err != nil {
		panic(err)
	}
	in := req.Header.Get("Signature-Input")
	fmt.Println(in[:strings.Index(in, ";created")])

	keys := keys{"agent-key-1": {Key: &priv.PublicKey, KeyID: "agent-key-1"}}
	v := &httpsig.Verifier{Keys: keys}
	_, err := v.VerifyRequest(context.Background(), req, body)
	fmt.Println(err)

	_, err = v.VerifyRequest(context.Background(), req, []byte(`{"line_items":[]}`))
	fmt.Println(err.(*httpsig.Error).Code, err.(*httpsig.Error).Status())
	// Output:
	// sig1=("@method" "@authority" "@path" "ucp-agent" "idempotency-key" "content-digest" "content-type")
	// <nil>
	// digest_mismatch 400
}
