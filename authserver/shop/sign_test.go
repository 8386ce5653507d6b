package shop_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// TestReviewSignatureRequestMintsKeysForUnknownStores (security review, finding 6):
// Signing a response for /s/<anything>/ asks the KeySource for that
// slug; FileKeys (what serve uses) generates and writes a key file for
// every slug an anonymous caller invents (disk and memory growth, and the
// response of a non-existent store comes signed).
func TestReviewSignatureRequestMintsKeysForUnknownStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Keys = &shop.FileKeys{Dir: dir} }})
	for i := range 3 {
		slug := fmt.Sprintf("no-such-store-%d", i)
		res, b := e.req("GET", "/s/"+slug+"/.well-known/ucp", nil, "Accept-Signature", `sig1=("@status")`, "X-Test-Client", "", "UCP-Agent", "")
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("setup: %d %s", res.StatusCode, b)
		}
		if _, err := os.Stat(filepath.Join(dir, slug+".jwk")); err == nil {
			t.Fatalf("an anonymous request for unknown store %q wrote a signing key to disk (signed: %v)", slug, res.Header.Get("Signature") != "")
		}
	}
}

// TestSignedResponses: a platform that asks (Accept-Signature, or a signed
// request) gets RFC 9421-signed responses that verify with the store's
// published key; others get none.
func TestSignedResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, _ := e.storeKeys("flower-shop")
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	verify := func(res *http.Response, body []byte) {
		t.Helper()
		res.Body = io.NopCloser(bytes.NewReader(body))
		v := &httpsig.Verifier{Keys: keys, RequireCreated: true, MaxAge: time.Minute}
		r, err := v.VerifyResponse(t.Context(), res, body)
		if err != nil {
			t.Fatalf("%v\n%v", err, res.Header)
		}
		if !slices.Contains(r.Components, "@status") || !slices.Contains(r.Components, "content-digest") {
			t.Fatalf("%v", r.Components)
		}
	}
	res, b := e.req("POST", "/s/flower-shop/checkout-sessions/"+c.ID+"/complete", cardPayment("success_token"),
		"Accept-Signature", `sig1=("@status" "content-digest" "content-type");keyid="x"`)
	wantStatus(t, res, b, http.StatusOK)
	verify(res, b)
	// MCP responses are signed the same way.
	rpc := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_checkout","arguments":{"meta":{"ucp-agent":{"profile":"` + e.agent.URL() + `"}},"id":"` + c.ID + `"}}}`
	res, b = e.req("POST", "/s/flower-shop/mcp", rpc, "Accept", "application/json, text/event-stream", "Accept-Signature", `sig1=("@status")`, "Idempotency-Key", "")
	wantStatus(t, res, b, http.StatusOK)
	verify(res, b)
	// Tampered bodies fail.
	res, b = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, "Accept-Signature", `sig1=("@status")`)
	b2 := bytes.Replace(b, []byte(`"completed"`), []byte(`"canceled"`), 1)
	res.Body = io.NopCloser(bytes.NewReader(b2))
	if _, err := (&httpsig.Verifier{Keys: keys}).VerifyResponse(t.Context(), res, b2); err == nil {
		t.Fatal("tampered response verified")
	}
	res, _ = e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil)
	if res.Header.Get("Signature") != "" {
		t.Fatal("signed without being asked")
	}
}

// verifyResponse checks a store response with httpsig against the store's
// published keys and returns what verified.
func verifyResponse(t *testing.T, keys httpsig.KeyResolver, res *http.Response, body []byte, v *httpsig.Verifier) *httpsig.Result {
	t.Helper()
	if v == nil {
		v = &httpsig.Verifier{}
	}
	v.Keys = keys
	res.Body = io.NopCloser(bytes.NewReader(body))
	r, err := v.VerifyResponse(t.Context(), res, body)
	if err != nil {
		t.Fatalf("%v\n%v", err, res.Header)
	}
	return r
}

// TestSignedResponseHonoursAcceptSignature: the response signature takes
// the label, nonce and tag Accept-Signature asks for, covers the asked-for
// components that are in UCP's response set and nothing else it names, and
// sends neither the requested keyid nor an alg.
func TestSignedResponseHonoursAcceptSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, _ := e.storeKeys("flower-shop")
	c := e.createCheckout("flower-shop", lines(line("bouquet_roses", 1)))
	const nonce = "n-7f3a9c2e41d8"
	res, b := e.req("GET", "/s/flower-shop/checkout-sessions/"+c.ID, nil, "Accept-Signature",
		`resp=("@status" "content-type" "@method";req "date" "content-digest" "x-store" "@authority");keyid="not-the-store-key";alg="rsa-pss-sha512";created;nonce="`+nonce+`";tag="ucp-response";expires`)
	wantStatus(t, res, b, http.StatusOK)
	nonceSeen := ""
	r := verifyResponse(t, keys, res, b, &httpsig.Verifier{RequireCreated: true, MaxAge: time.Minute,
		Nonce: func(_ context.Context, n string) error { nonceSeen = n; return nil }})
	if r.Label != "resp" || nonceSeen != nonce || r.Nonce != nonce || r.Tag != "ucp-response" {
		t.Fatalf("label %q nonce %q tag %q; Signature-Input: %s", r.Label, r.Nonce, r.Tag, res.Header.Get("Signature-Input"))
	}
	if !slices.Equal(r.Components, []string{"@status", "content-digest", "content-type"}) {
		t.Fatalf("covered %v, want UCP's response set only", r.Components)
	}
	if r.Expires.IsZero() || !r.Expires.After(r.Created) {
		t.Fatalf("expires %v, created %v", r.Expires, r.Created)
	}
	input := res.Header.Get("Signature-Input")
	if strings.Contains(input, "alg=") || strings.Contains(input, "not-the-store-key") {
		t.Fatalf("Signature-Input %s carries an alg or the requested keyid", input)
	}
}

// TestSignedResponseOneSignature: only the first Accept-Signature member
// is signed, however many are asked for.
func TestSignedResponseOneSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, _ := e.storeKeys("flower-shop")
	var members []string
	for i := range 50 {
		members = append(members, fmt.Sprintf(`s%d=("@status");nonce="%d"`, i, i))
	}
	res, b := e.req("GET", "/s/flower-shop/.well-known/ucp", nil, "Accept-Signature", strings.Join(members, ", "))
	wantStatus(t, res, b, http.StatusOK)
	if in := res.Header.Get("Signature-Input"); !strings.HasPrefix(in, "s0=") || strings.Contains(in, "s1=") {
		t.Fatalf("Signature-Input %s", in)
	}
	if r := verifyResponse(t, keys, res, b, nil); r.Label != "s0" || r.Nonce != "0" {
		t.Fatalf("%+v", r)
	}
}

// TestSignedResponseDefaults: a request the store cannot honour (an
// Accept-Signature that is not a dictionary, a nonce too long to echo)
// still gets the UCP default signature: sig1, no nonce, the UCP set.
func TestSignedResponseDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, _ := e.storeKeys("flower-shop")
	for _, accept := range []string{
		`("@status"`,
		`sig2=("@status");nonce="` + strings.Repeat("n", 300) + `"`,
		`sig2="@status"`,
	} {
		res, b := e.req("GET", "/s/flower-shop/.well-known/ucp", nil, "Accept-Signature", accept)
		wantStatus(t, res, b, http.StatusOK)
		r := verifyResponse(t, keys, res, b, nil)
		if r.Label != "sig1" || r.Nonce != "" || !slices.Equal(r.Components, []string{"@status", "content-digest", "content-type"}) {
			t.Fatalf("Accept-Signature %.40s: %+v", accept, r)
		}
	}
}

// TestSignedEmptyResponseCoversAskedDigest: a response without content
// (an MCP notification's 202) covers @status only, unless the platform
// asks for content-digest, which then proves the content empty.
func TestSignedEmptyResponseCoversAskedDigest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys, _ := e.storeKeys("flower-shop")
	notify := `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	for _, tc := range []struct {
		accept string
		want   []string
	}{
		{`sig1=("@status" "content-digest" "content-type")`, []string{"@status", "content-digest"}}, // no Content-Type to cover
		{`sig1=("@status")`, []string{"@status"}},
	} {
		res, b := e.req("POST", "/s/flower-shop/mcp", notify, "Accept", "application/json, text/event-stream",
			"Accept-Signature", tc.accept, "Idempotency-Key", "")
		wantStatus(t, res, b, http.StatusAccepted)
		if len(b) != 0 {
			t.Fatalf("setup: a notification answered %q", b)
		}
		r := verifyResponse(t, keys, res, b, nil)
		if !slices.Equal(r.Components, tc.want) {
			t.Fatalf("Accept-Signature %s: covered %v, want %v", tc.accept, r.Components, tc.want)
		}
		digest := res.Header.Get("Content-Digest")
		if slices.Contains(tc.want, "content-digest") != (digest == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:") {
			t.Fatalf("Accept-Signature %s: Content-Digest %q", tc.accept, digest)
		}
	}
}
