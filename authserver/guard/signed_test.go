package guard_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/yaronf/httpsign"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

const platformKID = "platform-2026"

// platform is a UCP platform: a P-256 key published in a profile served
// on loopback.
type platform struct {
	priv    *ecdsa.PrivateKey
	profile string // the profile URL, as UCP-Agent names it
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{priv: newKey(t)}
	jwk, err := jose.JSONWebKey{Key: &p.priv.PublicKey, KeyID: platformKID, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"ucp":{"version":"2026-04-08","services":{},"capabilities":{},"payment_handlers":{}},"signing_keys":[` + string(jwk) + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/ucp" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, doc)
	}))
	t.Cleanup(srv.Close)
	p.profile = srv.URL + "/.well-known/ucp"
	return p
}

func (p *platform) signer(t *testing.T, opts *httpsig.SignerOptions) *httpsig.Signer {
	t.Helper()
	s, err := httpsig.NewSigner(p.priv, platformKID, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// outcome is what the store-side handler saw.
type outcome struct {
	caller *guard.SignedCaller
	err    error
	body   []byte // what the handler read after Verify
}

// target serves a handler that verifies each request and then reads its
// body, as a store handler would. profileOf says where the profile URL
// comes from (UCP-Agent by default).
type target struct {
	url  string
	seen chan outcome
}

func newTarget(t *testing.T, cfg guard.SignatureConfig, profileOf func(*http.Request) string) *target {
	t.Helper()
	if cfg.Profiles == nil {
		cfg.Profiles = &discovery.Fetcher{AllowInsecureLoopback: true}
	}
	v, err := guard.NewSignatureVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if profileOf == nil {
		profileOf = func(r *http.Request) string {
			p, _, _ := discovery.ParseUCPAgent(r.Header.Get("UCP-Agent"))
			return p
		}
	}
	tg := &target{seen: make(chan outcome, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o outcome
		o.caller, o.err = v.Verify(r.Context(), r, profileOf(r))
		o.body, _ = io.ReadAll(r.Body)
		tg.seen <- o
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	tg.url = srv.URL
	return tg
}

func (tg *target) do(t *testing.T, req *http.Request) outcome {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return <-tg.seen
}

// ucpRequest is a UCP request naming profile in UCP-Agent, with an
// idempotency key on writes.
func ucpRequest(t *testing.T, method, url, profile string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if profile != "" {
		req.Header.Set("UCP-Agent", `profile="`+profile+`"`)
	}
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", "0f7e2a4c-5b8d-4e1f-9a3b-6c2d8e4f1a7b")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func sign(t *testing.T, s *httpsig.Signer, req *http.Request, body []byte) *http.Request {
	t.Helper()
	if err := s.SignRequest(req, body); err != nil {
		t.Fatal(err)
	}
	return req
}

var checkoutBody = []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":2}]}`)

// wantRefused asserts a *guard.Error with status and code.
func wantRefused(t *testing.T, o outcome, status int, code string) *guard.Error {
	t.Helper()
	var ge *guard.Error
	if !errors.As(o.err, &ge) {
		t.Fatalf("want a *guard.Error %d %s, got caller %+v, err %v", status, code, o.caller, o.err)
	}
	if ge.Status != status || ge.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", ge.Status, ge.Code, ge.Content, status, code)
	}
	if ge.Content == "" {
		t.Fatal("refusal without a sentence")
	}
	if o.caller != nil {
		t.Fatal("a refusal came with a caller")
	}
	return ge
}

// TestSignedRequestVerifies: a UCP-signed POST verifies against the key in
// the profile its UCP-Agent names, the verified profile URL is returned,
// and the handler still reads the body as sent.
func TestSignedRequestVerifies(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	tg := newTarget(t, guard.SignatureConfig{}, nil)
	req := sign(t, p.signer(t, nil), ucpRequest(t, "POST", tg.url+"/s/flower-shop/checkout-sessions", p.profile, checkoutBody), checkoutBody)
	o := tg.do(t, req)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.caller.Profile != p.profile || o.caller.KeyID != platformKID || o.caller.Label != "sig1" || o.caller.Created.IsZero() {
		t.Fatalf("caller %+v", o.caller)
	}
	for _, c := range []string{"@method", "@authority", "@path", "ucp-agent", "idempotency-key", "content-digest", "content-type"} {
		if !slices.Contains(o.caller.Components, c) {
			t.Fatalf("components %v lack %s", o.caller.Components, c)
		}
	}
	if !bytes.Equal(o.body, checkoutBody) {
		t.Fatalf("handler read %q after verification, want %q", o.body, checkoutBody)
	}

	// A GET with a query and no body verifies too.
	req = sign(t, p.signer(t, nil), ucpRequest(t, "GET", tg.url+"/s/flower-shop/orders/ord_1?expand=lines", p.profile, nil), nil)
	if o := tg.do(t, req); o.err != nil || o.caller == nil {
		t.Fatalf("GET: %+v", o)
	}
}

// TestSignedRequestByIndependentSigner: a request signed with
// yaronf/httpsign directly (no ucpbridge code on the signing side, and a
// sha-512 Content-Digest) verifies.
func TestSignedRequestByIndependentSigner(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	tg := newTarget(t, guard.SignatureConfig{}, nil)
	req := ucpRequest(t, "POST", tg.url+"/s/flower-shop/checkout-sessions", p.profile, checkoutBody)
	rc := io.NopCloser(bytes.NewReader(checkoutBody))
	digest, err := httpsign.GenerateContentDigestHeader(&rc, []string{httpsign.DigestSha512})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Digest", digest)
	s, err := httpsign.NewP256Signer(*p.priv, httpsign.NewSignConfig().SignAlg(false).SetKeyID(platformKID),
		httpsign.Headers("@method", "@authority", "@path", "ucp-agent", "idempotency-key", "content-digest", "content-type"))
	if err != nil {
		t.Fatal(err)
	}
	input, sig, err := httpsign.SignRequest("sig1", *s, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Signature-Input", input)
	req.Header.Set("Signature", sig)
	o := tg.do(t, req)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.caller.Profile != p.profile || !bytes.Equal(o.body, checkoutBody) {
		t.Fatalf("%+v body %q", o.caller, o.body)
	}
}

// TestSignedMCPRequestProfileFromMeta: an MCP POST carries its profile in
// the JSON-RPC meta, not in a header; the caller passes it in, and the
// signed Content-Digest is what binds it.
func TestSignedMCPRequestProfileFromMeta(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	fromMeta := func(r *http.Request) string {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var rpc struct {
			Params struct {
				Arguments struct {
					Meta struct {
						Agent struct{ Profile string } `json:"ucp-agent"`
					}
				}
			}
		}
		json.Unmarshal(b, &rpc)
		return rpc.Params.Arguments.Meta.Agent.Profile
	}
	tg := newTarget(t, guard.SignatureConfig{}, fromMeta)
	rpc := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_checkout","arguments":{"meta":{"ucp-agent":{"profile":"` + p.profile + `"}},"id":"chk_1"}}}`)
	req := ucpRequest(t, "POST", tg.url+"/s/flower-shop/mcp", "", rpc)
	o := tg.do(t, sign(t, p.signer(t, nil), req, rpc))
	if o.err != nil || o.caller.Profile != p.profile || !bytes.Equal(o.body, rpc) {
		t.Fatalf("%+v", o)
	}
}

// TestUnsignedRequestIsNotSigned: without Signature-Input and Signature,
// Verify reports nothing (nil, nil) and leaves the body alone.
func TestUnsignedRequestIsNotSigned(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	tg := newTarget(t, guard.SignatureConfig{}, nil)
	o := tg.do(t, ucpRequest(t, "POST", tg.url+"/s/flower-shop/checkout-sessions", p.profile, checkoutBody))
	if o.err != nil || o.caller != nil {
		t.Fatalf("unsigned request: %+v", o)
	}
	if !bytes.Equal(o.body, checkoutBody) {
		t.Fatalf("body %q", o.body)
	}
}

// TestSignatureRefusals: each way a signature can fail is refused with its
// own code and status, never reported as "not signed".
func TestSignatureRefusals(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	other := newPlatform(t) // the same kid, another key
	// A profile host that hangs up on every connection: a transport
	// failure, with no port left closed for another test to reuse.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	deadURL := "http://" + ln.Addr().String() + "/.well-known/ucp"

	type build func(t *testing.T, url string) *http.Request
	post := func(t *testing.T, url, profile string) *http.Request {
		return ucpRequest(t, "POST", url+"/s/flower-shop/checkout-sessions", profile, checkoutBody)
	}
	// signedPost is a well-signed request: the refusal comes from the
	// verifier's configuration.
	signedPost := func(t *testing.T, url string) *http.Request {
		return sign(t, p.signer(t, nil), post(t, url, p.profile), checkoutBody)
	}
	cases := []struct {
		name   string
		cfg    guard.SignatureConfig
		from   func(*http.Request) string
		req    build
		status int
		code   string
	}{
		{name: "wrong key", status: 401, code: guard.CodeSignatureInvalid, req: func(t *testing.T, url string) *http.Request {
			s, _ := httpsig.NewSigner(other.priv, platformKID, nil)
			return sign(t, s, post(t, url, p.profile), checkoutBody)
		}},
		{name: "tampered body", status: 400, code: guard.CodeDigestMismatch, req: func(t *testing.T, url string) *http.Request {
			req := sign(t, p.signer(t, nil), post(t, url, p.profile), checkoutBody)
			tampered := bytes.Replace(checkoutBody, []byte(`"quantity":2`), []byte(`"quantity":9`), 1)
			req.Body, req.ContentLength, req.GetBody = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered)), nil
			return req
		}},
		{name: "content-digest not covered", status: 401, code: guard.CodeCoverageInsufficient, req: func(t *testing.T, url string) *http.Request {
			s := p.signer(t, &httpsig.SignerOptions{Components: []string{"@method", "@authority", "@path", "ucp-agent", "idempotency-key", "content-type"}})
			return sign(t, s, post(t, url, p.profile), checkoutBody)
		}},
		{name: "query not covered", status: 401, code: guard.CodeCoverageInsufficient, req: func(t *testing.T, url string) *http.Request {
			s := p.signer(t, &httpsig.SignerOptions{Components: []string{"@method", "@authority", "@path", "ucp-agent"}})
			return sign(t, s, ucpRequest(t, "GET", url+"/s/flower-shop/orders/ord_1?buyer=someone-else", p.profile, nil), nil)
		}},
		{name: "UCP-Agent added after signing", status: 401, code: guard.CodeCoverageInsufficient, req: func(t *testing.T, url string) *http.Request {
			req := sign(t, p.signer(t, nil), post(t, url, ""), checkoutBody)
			req.Header.Set("UCP-Agent", `profile="`+p.profile+`"`)
			return req
		}},
		{name: "created too old", status: 401, code: guard.CodeSignatureExpired,
			cfg: guard.SignatureConfig{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			req: signedPost},
		{name: "created in the future", status: 401, code: guard.CodeSignatureInvalid,
			cfg: guard.SignatureConfig{Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }},
			req: signedPost},
		{name: "no created", status: 401, code: guard.CodeSignatureInvalid, req: func(t *testing.T, url string) *http.Request {
			return sign(t, p.signer(t, &httpsig.SignerOptions{OmitCreated: true}), post(t, url, p.profile), checkoutBody)
		}},
		{name: "expires passed", status: 401, code: guard.CodeSignatureExpired,
			cfg: guard.SignatureConfig{Now: func() time.Time { return time.Now().Add(2 * time.Minute) }},
			req: func(t *testing.T, url string) *http.Request {
				req := ucpRequest(t, "GET", url+"/s/flower-shop/orders/ord_1", p.profile, nil)
				s, err := httpsign.NewP256Signer(*p.priv,
					httpsign.NewSignConfig().SignAlg(false).SetKeyID(platformKID).SetExpires(time.Now().Add(30*time.Second).Unix()),
					httpsign.Headers("@method", "@authority", "@path", "ucp-agent"))
				if err != nil {
					t.Fatal(err)
				}
				input, sig, err := httpsign.SignRequest("sig1", *s, req)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Signature-Input", input)
				req.Header.Set("Signature", sig)
				return req
			}},
		{name: "unknown keyid", status: 401, code: guard.CodeKeyNotFound, req: func(t *testing.T, url string) *http.Request {
			s, _ := httpsig.NewSigner(p.priv, "retired-2025", nil)
			return sign(t, s, post(t, url, p.profile), checkoutBody)
		}},
		{name: "no profile named", status: 401, code: guard.CodeKeyNotFound, req: func(t *testing.T, url string) *http.Request {
			return sign(t, p.signer(t, nil), post(t, url, ""), checkoutBody)
		}},
		{name: "Signature without Signature-Input", status: 401, code: guard.CodeSignatureMissing, req: func(t *testing.T, url string) *http.Request {
			req := sign(t, p.signer(t, nil), post(t, url, p.profile), checkoutBody)
			req.Header.Del("Signature-Input")
			return req
		}},
		{name: "unreachable profile", status: 424, code: discovery.CodeProfileUnreachable, req: func(t *testing.T, url string) *http.Request {
			return sign(t, p.signer(t, nil), post(t, url, deadURL), checkoutBody)
		}},
		{name: "profile that is not served", status: 424, code: discovery.CodeProfileUnreachable, req: func(t *testing.T, url string) *http.Request {
			return sign(t, p.signer(t, nil), post(t, url, strings.TrimSuffix(p.profile, "/.well-known/ucp")+"/nowhere"), checkoutBody)
		}},
		{name: "loopback http profile outside dev", status: 400, code: discovery.CodeInvalidProfileURL,
			cfg: guard.SignatureConfig{Profiles: &discovery.Fetcher{}},
			req: signedPost},
		{name: "body over the limit", status: 413, code: "payload_too_large", cfg: guard.SignatureConfig{MaxBody: 16},
			req: signedPost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, tc.cfg, tc.from)
			wantRefused(t, tg.do(t, tc.req(t, tg.url)), tc.status, tc.code)
		})
	}
}

// TestSignatureRefusalUnwraps: a refusal carries the typed cause, so a
// caller (or its log) can tell what httpsig or discovery decided.
func TestSignatureRefusalUnwraps(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	tg := newTarget(t, guard.SignatureConfig{}, nil)
	s, _ := httpsig.NewSigner(p.priv, "retired-2025", nil)
	o := tg.do(t, sign(t, s, ucpRequest(t, "POST", tg.url+"/s/x/carts", p.profile, checkoutBody), checkoutBody))
	if !errors.Is(o.err, httpsig.ErrKeyNotFound) {
		t.Fatalf("%v does not unwrap to httpsig.ErrKeyNotFound", o.err)
	}
}

// TestSignatureWithoutCreatedWhenAgeUnbounded: with MaxAge negative, a
// signature without created (which UCP allows) verifies.
func TestSignatureWithoutCreatedWhenAgeUnbounded(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	tg := newTarget(t, guard.SignatureConfig{MaxAge: -1}, nil)
	req := sign(t, p.signer(t, &httpsig.SignerOptions{OmitCreated: true}), ucpRequest(t, "POST", tg.url+"/s/x/carts", p.profile, checkoutBody), checkoutBody)
	if o := tg.do(t, req); o.err != nil || o.caller == nil || !o.caller.Created.IsZero() {
		t.Fatalf("%+v", o)
	}
}

// TestNewSignatureVerifierNeedsProfiles: the fetcher is required.
func TestNewSignatureVerifierNeedsProfiles(t *testing.T) {
	t.Parallel()
	if _, err := guard.NewSignatureVerifier(guard.SignatureConfig{}); err == nil {
		t.Fatal("no error without Profiles")
	}
}
