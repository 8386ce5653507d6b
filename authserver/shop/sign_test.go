package shop_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
