package httpsig_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// node runs .ci/interop/<script>.mjs <cmd> with in as JSON on stdin and
// decodes its JSON answer into out. The Node side is
// dhensby/http-message-signatures, an RFC 9421 implementation that shares
// nothing with httpsign. Without node or its modules the test skips, unless
// UCPBRIDGE_REQUIRE_INTEROP is set (CI sets it when node is present).
func node(t *testing.T, script, cmd string, in, out any) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "interop")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "http-message-signatures"))
	if errNode != nil || errMods != nil {
		if os.Getenv("UCPBRIDGE_REQUIRE_INTEROP") != "" {
			t.Fatalf("interop required but unavailable (node: %v, modules: %v); run npm ci in .ci/interop", errNode, errMods)
		}
		t.Skip("node or .ci/interop/node_modules missing: run `npm ci` in .ci/interop")
	}
	b, _ := json.Marshal(in)
	c := exec.Command("node", filepath.Join(dir, script+".mjs"), cmd)
	c.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	res, err := c.Output()
	if err != nil {
		t.Fatalf("node %s %s: %v: %s", script, cmd, err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("node answer %q: %v", res, err)
	}
}

type nodeVerdict struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func jwkMap(t *testing.T, k jose.JSONWebKey) map[string]any {
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func headerMap(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return m
}

func TestInteropNodeVerifiesOurRequest(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	body := []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":2}]}`)
	req := ucpRequest(t, http.MethodPost, "https://API.Example.com:443/s/flower-shop/checkout-sessions?lang=fr", body)
	if err := a.signer.SignRequest(req, body); err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &a.priv.PublicKey, KeyID: "agent-2026"}
	in := map[string]any{
		"method": req.Method, "url": "https://" + req.Host + req.URL.RequestURI(), "headers": headerMap(req.Header),
		"body": string(body), "jwks": map[string]any{"keys": []any{jwkMap(t, pub)}},
		"requiredComponents": httpsig.RequestComponents(req, true),
	}
	var v nodeVerdict
	node(t, "httpsig", "verify", in, &v)
	if !v.OK {
		t.Fatalf("Node refused our signature: %s (Signature-Input %s)", v.Error, req.Header.Get("Signature-Input"))
	}
	// The harness must be able to say no.
	in["body"] = string(body) + " "
	node(t, "httpsig", "verify", in, &v)
	if v.OK {
		t.Fatal("Node accepted a tampered body: the interop harness proves nothing")
	}
}

func TestInteropWeVerifyNodeRequest(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	body := `{"payment":{"instruments":[{"handler_id":"artos.card","selected":true}]}}`
	url := "https://api.example.com/s/flower-shop/checkout-sessions/chk_1/complete?x=1"
	req := ucpRequest(t, http.MethodPost, url, []byte(body))
	priv := jose.JSONWebKey{Key: a.priv, KeyID: "agent-2026"}
	components := httpsig.RequestComponents(req, true)
	var signed struct {
		Headers map[string]string `json:"headers"`
	}
	node(t, "httpsig", "sign", map[string]any{
		"method": "POST", "url": url, "headers": headerMap(req.Header), "body": body,
		"jwk": jwkMap(t, priv), "keyid": "agent-2026", "label": "sig1", "components": components,
	}, &signed)
	for k, v := range signed.Headers {
		req.Header.Set(k, v)
	}
	res, err := (&httpsig.Verifier{Keys: a.keys}).VerifyRequest(context.Background(), req, []byte(body))
	if err != nil {
		t.Fatalf("we refuse Node's signature %q: %v", req.Header.Get("Signature-Input"), err)
	}
	if len(res.Components) != len(components) {
		t.Fatalf("components %v", res.Components)
	}
	req.Header.Set("Idempotency-Key", "replayed-under-another-key")
	if _, err := (&httpsig.Verifier{Keys: a.keys}).VerifyRequest(context.Background(), req, []byte(body)); err == nil {
		t.Fatal("accepted Node's signature after the idempotency key changed")
	}
}

func TestInteropResponses(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	body := []byte(`{"id":"chk_1","status":"completed"}`)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := a.signer.SignResponse(200, h, body); err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &a.priv.PublicKey, KeyID: "agent-2026"}
	var v nodeVerdict
	node(t, "httpsig", "verify-response", map[string]any{
		"status": 200, "headers": headerMap(h), "body": string(body),
		"jwks": map[string]any{"keys": []any{jwkMap(t, pub)}}, "requiredComponents": httpsig.ResponseComponents(true),
	}, &v)
	if !v.OK {
		t.Fatalf("Node refused our response signature: %s", v.Error)
	}
	var signed struct {
		Headers map[string]string `json:"headers"`
	}
	node(t, "httpsig", "sign-response", map[string]any{
		"status": 201, "headers": map[string]string{"content-type": "application/json"}, "body": string(body),
		"jwk": jwkMap(t, jose.JSONWebKey{Key: a.priv, KeyID: "agent-2026"}), "keyid": "agent-2026", "label": "sig1",
		"components": httpsig.ResponseComponents(true),
	}, &signed)
	res := &http.Response{StatusCode: 201, Header: http.Header{}}
	for k, val := range signed.Headers {
		res.Header.Set(k, val)
	}
	if _, err := (&httpsig.Verifier{Keys: a.keys}).VerifyResponse(context.Background(), res, body); err != nil {
		t.Fatalf("we refuse Node's response signature: %v", err)
	}
}
