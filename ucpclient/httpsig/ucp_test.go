package httpsig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/yaronf/httpsign"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

const agentHeader = `profile="https://agent.example/.well-known/ucp", ucp-version="2026-04-08"`

type agent struct {
	priv   *ecdsa.PrivateKey
	signer *httpsig.Signer
	keys   keys
}

func newAgent(t testing.TB) *agent {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpsig.NewSigner(priv, "agent-2026", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{priv: priv, signer: s, keys: keys{"agent-2026": {Key: &priv.PublicKey, KeyID: "agent-2026"}}}
}

func ucpRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("UCP-Agent", agentHeader)
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", "7c1f3b1e-6a55-4a0e-9d2b-1f4b7d2e8c90")
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// TestSignedRequestOverHTTP signs with the UCP profile and verifies on a
// real server, so Go's transport and server handling of Host, path and
// headers are in the loop.
func TestSignedRequestOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	var got *httpsig.Result
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		v := &httpsig.Verifier{Keys: a.keys}
		got, verr = v.VerifyRequest(r.Context(), r, body)
	}))
	defer srv.Close()
	body := []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`)
	// Upper-case host and no path: the signer must normalise both.
	url := strings.Replace(srv.URL, "127.0.0.1", "LOCALHOST", 1) + "?store=flower-shop"
	req := ucpRequest(t, http.MethodPost, url, body)
	if err := a.signer.SignRequest(req, body); err != nil {
		t.Fatal(err)
	}
	input := req.Header.Get("Signature-Input")
	if strings.Contains(input, "alg=") || !strings.HasPrefix(input, `sig1=("@method" "@authority" "@path" "@query" "ucp-agent" "idempotency-key" "content-digest" "content-type");created=`) || !strings.HasSuffix(input, `;keyid="agent-2026"`) {
		t.Fatalf("Signature-Input %s", input)
	}
	if req.Host != strings.TrimPrefix(strings.ToLower(url[:strings.Index(url, "?")]), "http://") || req.URL.Path != "/" {
		t.Fatalf("not normalised: host %q path %q", req.Host, req.URL.Path)
	}
	if d := req.Header.Get("Content-Digest"); d != "sha-256=:"+sha256b64(body)+":" {
		t.Fatalf("Content-Digest %s", d)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if verr != nil {
		t.Fatalf("server refused: %v", verr)
	}
	if got.KeyID != "agent-2026" || got.Label != "sig1" || len(got.Components) != 8 {
		t.Fatalf("result %+v", got)
	}
	// GET without body or idempotency key: the minimal set.
	get := ucpRequest(t, http.MethodGet, srv.URL+"/orders/ord_1", nil)
	if err := a.signer.SignRequest(get, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(get.Header.Get("Signature-Input"), `sig1=("@method" "@authority" "@path" "ucp-agent");`) {
		t.Fatalf("GET Signature-Input %s", get.Header.Get("Signature-Input"))
	}
	res, _ = http.DefaultClient.Do(get)
	res.Body.Close()
	if verr != nil {
		t.Fatalf("GET refused: %v", verr)
	}
}

// TestVerifyRefusals: each case breaks one thing and must fail with its
// code.
func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	ctx := context.Background()
	body := []byte(`{"payment":{"instruments":[{"handler_id":"artos.card"}]}}`)
	signed := func() (*http.Request, []byte) {
		req := ucpRequest(t, http.MethodPost, "https://api.example.com/s/flower-shop/checkout-sessions/chk_1/complete?x=1", body)
		if err := a.signer.SignRequest(req, body); err != nil {
			t.Fatal(err)
		}
		return req, bytes.Clone(body)
	}
	now := time.Now()
	other := newAgent(t)
	cases := []struct {
		name   string
		mutate func(r *http.Request, b []byte) []byte
		v      func(v *httpsig.Verifier)
		code   httpsig.Code
		status int
	}{
		{"body tampered", func(r *http.Request, b []byte) []byte { return bytes.Replace(b, []byte("card"), []byte("cash"), 1) }, nil, httpsig.CodeDigestMismatch, 400},
		{"body appended", func(r *http.Request, b []byte) []byte { return append(b, ' ') }, nil, httpsig.CodeDigestMismatch, 400},
		{"digest with no sha-256 or sha-512", func(r *http.Request, b []byte) []byte { r.Header.Set("Content-Digest", "md5=:AAAA:"); return b }, nil, httpsig.CodeDigestMismatch, 400},
		{"digest not a dictionary", func(r *http.Request, b []byte) []byte { r.Header.Set("Content-Digest", "sha-256=(("); return b }, nil, httpsig.CodeDigestMismatch, 400},
		{"digest header removed", func(r *http.Request, b []byte) []byte { r.Header.Del("Content-Digest"); return b }, nil, httpsig.CodeDigestMismatch, 400},
		{"digest recomputed for new body", func(r *http.Request, b []byte) []byte {
			nb := []byte(`{"payment":{}}`)
			r.Header.Set("Content-Digest", "sha-256=:"+sha256b64(nb)+":")
			return nb
		}, nil, httpsig.CodeSignatureInvalid, 401},
		{"method changed", func(r *http.Request, b []byte) []byte { r.Method = http.MethodPut; return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"path changed", func(r *http.Request, b []byte) []byte {
			r.URL.Path = "/s/flower-shop/checkout-sessions/chk_2/complete"
			return b
		}, nil, httpsig.CodeSignatureInvalid, 401},
		{"query changed", func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "x=2"; return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"authority changed", func(r *http.Request, b []byte) []byte { r.Host = "evil.example.com"; return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"ucp-agent changed", func(r *http.Request, b []byte) []byte {
			r.Header.Set("UCP-Agent", `profile="https://evil.example/.well-known/ucp"`)
			return b
		}, nil, httpsig.CodeSignatureInvalid, 401},
		{"idempotency key changed", func(r *http.Request, b []byte) []byte { r.Header.Set("Idempotency-Key", "other"); return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"content-type changed", func(r *http.Request, b []byte) []byte { r.Header.Set("Content-Type", "text/plain"); return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"signature bytes flipped", func(r *http.Request, b []byte) []byte {
			s := r.Header.Get("Signature")
			r.Header.Set("Signature", s[:10]+flip(s[10])+s[11:])
			return b
		}, nil, httpsig.CodeSignatureInvalid, 401},
		{"no signature", func(r *http.Request, b []byte) []byte {
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
			return b
		}, nil, httpsig.CodeSignatureMissing, 401},
		{"malformed Signature-Input", func(r *http.Request, b []byte) []byte { r.Header.Set("Signature-Input", "sig1=((("); return b }, nil, httpsig.CodeSignatureInvalid, 401},
		{"unknown key", nil, func(v *httpsig.Verifier) {
			v.Keys = keys{"other-kid": {Key: &other.priv.PublicKey, KeyID: "other-kid"}}
		}, httpsig.CodeKeyNotFound, 401},
		{"key of another agent under the same kid", nil, func(v *httpsig.Verifier) {
			v.Keys = keys{"agent-2026": {Key: &other.priv.PublicKey, KeyID: "agent-2026"}}
		}, httpsig.CodeSignatureInvalid, 401},
		{"encryption key", nil, func(v *httpsig.Verifier) {
			v.Keys = keys{"agent-2026": {Key: &a.priv.PublicKey, KeyID: "agent-2026", Use: "enc"}}
		}, httpsig.CodeKeyNotFound, 401},
		{"created in the future", nil, func(v *httpsig.Verifier) { v.Now = func() time.Time { return now.Add(-10 * time.Minute) } }, httpsig.CodeSignatureInvalid, 401},
		{"too old for MaxAge", nil, func(v *httpsig.Verifier) {
			v.MaxAge = time.Minute
			v.Now = func() time.Time { return now.Add(10 * time.Minute) }
		}, httpsig.CodeSignatureInvalid, 401},
		{"uncovered ucp-agent", func(r *http.Request, b []byte) []byte {
			resign(t, a, r, b, []string{"@method", "@authority", "@path", "@query", "idempotency-key", "content-digest", "content-type"})
			return b
		}, nil, httpsig.CodeCoverageInsufficient, 401},
		{"uncovered body", func(r *http.Request, b []byte) []byte {
			resign(t, a, r, nil, []string{"@method", "@authority", "@path", "@query", "ucp-agent", "idempotency-key"})
			return b
		}, nil, httpsig.CodeDigestMismatch, 400},
		{"uncovered body, digest present", func(r *http.Request, b []byte) []byte {
			resign(t, a, r, b, []string{"@method", "@authority", "@path", "@query", "ucp-agent", "idempotency-key"})
			return b
		}, nil, httpsig.CodeCoverageInsufficient, 401},
		{"nonce required", nil, func(v *httpsig.Verifier) { v.Nonce = func(context.Context, string) error { return nil } }, httpsig.CodeSignatureInvalid, 401},
	}
	for _, c := range cases {
		req, b := signed()
		if c.mutate != nil {
			b = c.mutate(req, b)
		}
		v := &httpsig.Verifier{Keys: a.keys}
		if c.v != nil {
			c.v(v)
		}
		_, err := v.VerifyRequest(ctx, req, b)
		var e *httpsig.Error
		if !errors.As(err, &e) || e.Code != c.code || e.Status() != c.status {
			t.Errorf("%s: got %v, want %s (%d)", c.name, err, c.code, c.status)
		}
	}
}

func TestExpiresAndAlgParameter(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	ctx := context.Background()
	now := time.Now()
	// Peers may send expires and alg (Node's default); both are honoured.
	sign := func(alg bool, expires int64) *http.Request {
		req := ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
		cfg := httpsign.NewSignConfig().SignAlg(alg).SetKeyID("agent-2026").SetExpires(expires)
		s, err := httpsign.NewP256Signer(*a.priv, cfg, httpsign.Headers("@method", "@authority", "@path", "ucp-agent"))
		if err != nil {
			t.Fatal(err)
		}
		in, sig, err := httpsign.SignRequest("sig1", *s, req)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Signature-Input", in)
		req.Header.Set("Signature", sig)
		return req
	}
	v := &httpsig.Verifier{Keys: a.keys}
	if _, err := v.VerifyRequest(ctx, sign(true, now.Add(time.Minute).Unix()), nil); err != nil {
		t.Fatalf("alg + expires from a peer: %v", err)
	}
	if _, err := v.VerifyRequest(ctx, sign(false, now.Add(-5*time.Minute).Unix()), nil); !errors.Is(err, httpsig.ErrSignatureInvalid) {
		t.Fatalf("expired: %v", err)
	}
	// alg naming another algorithm than the key's.
	req := sign(true, 0)
	req.Header.Set("Signature-Input", strings.Replace(req.Header.Get("Signature-Input"), "ecdsa-p256-sha256", "ed25519", 1))
	if _, err := v.VerifyRequest(ctx, req, nil); !errors.Is(err, httpsig.ErrAlgorithmUnsupported) {
		t.Fatalf("alg mismatch: %v", err)
	}
}

// TestSecondLabelAccepted: with several signatures, one that covers the
// required set and verifies is enough (UCP: try each).
func TestSecondLabelAccepted(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	req := ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
	if err := a.signer.SignRequest(req, nil); err != nil {
		t.Fatal(err)
	}
	in, sig := req.Header.Get("Signature-Input"), req.Header.Get("Signature")
	req.Header.Set("Signature-Input", `proxy=("@method");keyid="proxy", `+in)
	req.Header.Set("Signature", `proxy=:AAAA:, `+sig)
	res, err := (&httpsig.Verifier{Keys: a.keys}).VerifyRequest(context.Background(), req, nil)
	if err != nil || res.Label != "sig1" {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestNonceHookSeesVerifiedNoncesOnly(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	seen := map[string]bool{}
	var mu sync.Mutex
	v := &httpsig.Verifier{Keys: a.keys, Nonce: func(_ context.Context, n string) error {
		mu.Lock()
		defer mu.Unlock()
		if seen[n] {
			return errors.New("replayed")
		}
		seen[n] = true
		return nil
	}}
	mk := func() *http.Request {
		req := ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
		cfg := httpsign.NewSignConfig().SignAlg(false).SetKeyID("agent-2026").SetNonce("n-1")
		s, _ := httpsign.NewP256Signer(*a.priv, cfg, httpsign.Headers("@method", "@authority", "@path", "ucp-agent"))
		in, sig, _ := httpsign.SignRequest("sig1", *s, req)
		req.Header.Set("Signature-Input", in)
		req.Header.Set("Signature", sig)
		return req
	}
	forged := mk()
	forged.Method = http.MethodDelete
	if _, err := v.VerifyRequest(context.Background(), forged, nil); err == nil {
		t.Fatal("forged request verified")
	}
	if len(seen) != 0 {
		t.Fatal("a forged signature's nonce was recorded")
	}
	if _, err := v.VerifyRequest(context.Background(), mk(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyRequest(context.Background(), mk(), nil); !errors.Is(err, httpsig.ErrSignatureInvalid) {
		t.Fatalf("replay: %v", err)
	}
}

func TestSignedResponse(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	body := []byte(`{"status":"completed"}`)
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	if err := a.signer.SignResponse(http.StatusOK, rec.Header(), body); err != nil {
		t.Fatal(err)
	}
	rec.WriteHeader(http.StatusOK)
	rec.Write(body)
	res := rec.Result()
	if !strings.HasPrefix(res.Header.Get("Signature-Input"), `sig1=("@status" "content-digest" "content-type");created=`) {
		t.Fatalf("Signature-Input %s", res.Header.Get("Signature-Input"))
	}
	v := &httpsig.Verifier{Keys: a.keys, RequireCreated: true}
	if _, err := v.VerifyResponse(context.Background(), res, body); err != nil {
		t.Fatal(err)
	}
	res.StatusCode = http.StatusCreated
	if _, err := v.VerifyResponse(context.Background(), res, body); !errors.Is(err, httpsig.ErrSignatureInvalid) {
		t.Fatalf("status changed: %v", err)
	}
}

func TestSignerRefusals(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	req := ucpRequest(t, http.MethodPost, "https://api.example.com/carts", []byte(`{}`))
	req.Header.Del("Content-Type")
	if err := a.signer.SignRequest(req, []byte(`{}`)); err == nil {
		t.Error("body without Content-Type signed")
	}
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if _, err := httpsig.NewSigner(p521, "k", nil); err == nil {
		t.Error("P-521 accepted")
	}
	if _, err := httpsig.NewSigner(a.priv, "", nil); err == nil {
		t.Error("empty keyid accepted")
	}
	// Re-signing replaces rather than appends (retries re-sign).
	req = ucpRequest(t, http.MethodGet, "https://api.example.com/x", nil)
	a.signer.SignRequest(req, nil)
	a.signer.SignRequest(req, nil)
	if len(req.Header.Values("Signature")) != 1 || len(req.Header.Values("Signature-Input")) != 1 {
		t.Error("re-signing duplicated the signature headers")
	}
}

func TestNormalizeAuthority(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, scheme, want string }{
		{"Example.COM", "https", "example.com"},
		{"example.com:443", "https", "example.com"},
		{"example.com:80", "http", "example.com"},
		{"example.com:443", "http", "example.com:443"},
		{"example.com:80", "https", "example.com:80"},
		{"example.com:8443", "https", "example.com:8443"},
		{"EXAMPLE.com:443", "", "example.com"},
		{"[::1]:8080", "http", "[::1]:8080"},
		{"[::1]:80", "http", "[::1]"},
		{"127.0.0.1:8080", "http", "127.0.0.1:8080"},
	} {
		if got := httpsig.NormalizeAuthority(c.in, c.scheme); got != c.want {
			t.Errorf("%s (%s): got %s want %s", c.in, c.scheme, got, c.want)
		}
	}
}

// TestVerifierNormalisesReceivedAuthority: a peer that signed the
// normalised authority verifies even when the Host header arrives with
// upper case and a default port.
func TestVerifierNormalisesReceivedAuthority(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	req := ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
	if err := a.signer.SignRequest(req, nil); err != nil {
		t.Fatal(err)
	}
	req.Host = "API.Example.com:443"
	if _, err := (&httpsig.Verifier{Keys: a.keys}).VerifyRequest(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
}

func resign(t *testing.T, a *agent, r *http.Request, body []byte, components []string) {
	t.Helper()
	s, err := httpsig.NewSigner(a.priv, "agent-2026", &httpsig.SignerOptions{Components: components})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SignRequest(r, body); err != nil {
		t.Fatal(err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func sha256b64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// anyKid answers every kid with one key, as a careless resolver would.
type anyKid struct{ k *jose.JSONWebKey }

func (a anyKid) Key(context.Context, string) (*jose.JSONWebKey, error) { return a.k, nil }

func TestMissingParameters(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	ctx := context.Background()
	noCreated, _ := httpsig.NewSigner(a.priv, "agent-2026", &httpsig.SignerOptions{OmitCreated: true})
	req := ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
	if err := noCreated.SignRequest(req, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(req.Header.Get("Signature-Input"), "created") {
		t.Fatal("created sent with OmitCreated")
	}
	if _, err := (&httpsig.Verifier{Keys: a.keys}).VerifyRequest(ctx, req, nil); err != nil {
		t.Fatalf("UCP makes created optional: %v", err)
	}
	if _, err := (&httpsig.Verifier{Keys: a.keys, RequireCreated: true}).VerifyRequest(ctx, req, nil); !errors.Is(err, httpsig.ErrSignatureInvalid) {
		t.Fatalf("RequireCreated: %v", err)
	}
	// A signature without keyid is refused even by a resolver that would
	// hand out a key for any kid.
	req = ucpRequest(t, http.MethodGet, "https://api.example.com/orders/1", nil)
	s, _ := httpsign.NewP256Signer(*a.priv, httpsign.NewSignConfig().SignAlg(false), httpsign.Headers("@method", "@authority", "@path", "ucp-agent"))
	in, sig, err := httpsign.SignRequest("sig1", *s, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Signature-Input", in)
	req.Header.Set("Signature", sig)
	pub := &jose.JSONWebKey{Key: &a.priv.PublicKey}
	if _, err := (&httpsig.Verifier{Keys: anyKid{pub}}).VerifyRequest(ctx, req, nil); !errors.Is(err, httpsig.ErrKeyNotFound) {
		t.Fatalf("no keyid: %v", err)
	}
}
