package ucpclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/go-jose/go-jose/v4"
	"github.com/yaronf/httpsign"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// rotatingStore is a store that publishes keys in its profile and signs
// its MCP responses with one of them, echoing the Accept-Signature nonce.
type rotatingStore struct {
	mu        sync.Mutex
	published []*mandate.SigningKey
	signWith  *mandate.SigningKey
	profiles  atomic.Int64
}

func (s *rotatingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pub, key := s.published, s.signWith
	s.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/.well-known/ucp") {
		s.profiles.Add(1)
		jwks := []jose.JSONWebKey{}
		for _, k := range pub {
			jwks = append(jwks, k.PublicJWK())
		}
		b, _ := json.Marshal(map[string]any{"ucp": map[string]any{"version": "2026-04-08", "services": map[string]any{}, "capabilities": map[string]any{}}, "signing_keys": jwks})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	body := []byte(`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"ucp":{"version":"2026-04-08","status":"success"},"products":[]}}}`)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	h.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	cfg := httpsign.NewSignConfig().SignAlg(false).SignCreated(true).SetKeyID(key.KeyID())
	if d, err := httpsfv.UnmarshalDictionary(r.Header.Values("Accept-Signature")); err == nil {
		if m, ok := d.Get("sig1"); ok {
			if n, ok := m.(httpsfv.InnerList).Params.Get("nonce"); ok {
				cfg = cfg.SetNonce(n.(string))
			}
		}
	}
	signer, err := httpsign.NewP256Signer(*key.PrivateKey(), cfg, httpsign.Headers("@status", "content-digest", "content-type"))
	if err != nil {
		panic(err)
	}
	input, sig, err := httpsign.SignResponse("sig1", *signer, &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}, nil)
	if err != nil {
		panic(err)
	}
	h.Set("Signature-Input", input)
	h.Set("Signature", sig)
	w.Write(body)
}

func (s *rotatingStore) set(sign *mandate.SigningKey, published ...*mandate.SigningKey) {
	s.mu.Lock()
	s.published, s.signWith = published, sign
	s.mu.Unlock()
}

// Key rotation: a response signed with a key the cached profile does not
// have refetches the profile, at most once per storeKeysRefetch, so a
// forged keyid cannot make the client hammer the profile.
func TestResponseSignatureKeyRotation(t *testing.T) {
	a, _ := mandate.GenerateSigningKey()
	b, _ := mandate.GenerateSigningKey()
	st := &rotatingStore{}
	st.set(a, a)
	srv := httptest.NewServer(st)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, AgentProfile: "https://agent.example/.well-known/ucp", VerifyResponses: VerifyResponsesRequired})
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().Unix())
	c.respSig.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	ctx := context.Background()
	call := func() error {
		_, err := c.CallStoreTool(ctx, "shop", "search_catalog", map[string]any{"catalog": map[string]any{}})
		return err
	}
	for range 3 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.profiles.Load(); n != 1 {
		t.Fatalf("profile fetched %d times for 3 calls, want 1 (cached)", n)
	}

	// Rotate at once: the cache is too fresh to refetch, so the new key
	// is unknown.
	st.set(b, a, b)
	var se *ResponseSignatureError
	if err := call(); !errors.As(err, &se) || se.Code != httpsig.CodeKeyNotFound {
		t.Fatalf("fresh cache, new key: %v", err)
	}
	if n := st.profiles.Load(); n != 1 {
		t.Fatalf("profile fetched %d times, want 1 (refetch rate-limited)", n)
	}

	// Past the refetch interval: the unknown kid refetches and verifies.
	clock.Add(int64(storeKeysRefetch/time.Second) + 1)
	if err := call(); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := st.profiles.Load(); n != 2 {
		t.Fatalf("profile fetched %d times, want 2", n)
	}

	// Past the TTL the profile is read again; a key removed from it no
	// longer verifies.
	st.set(a, b)
	clock.Add(int64(storeKeysTTL/time.Second) + 1)
	if err := call(); !errors.As(err, &se) || se.Code != httpsig.CodeKeyNotFound {
		t.Fatalf("removed key: %v", err)
	}
}

// Many concurrent verified calls share the cache safely.
func TestResponseSignatureConcurrent(t *testing.T) {
	a, _ := mandate.GenerateSigningKey()
	st := &rotatingStore{}
	st.set(a, a)
	srv := httptest.NewServer(st)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, AgentProfile: "https://agent.example/.well-known/ucp", VerifyResponses: VerifyResponsesIfKeys})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			slug := []string{"s1", "s2"}[i%2]
			_, err := c.CallStoreTool(context.Background(), slug, "search_catalog", nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := st.profiles.Load(); n > 2 {
		t.Fatalf("profile fetched %d times for 2 stores, want one each", n)
	}
}

// A call to a business outside the platform verifies with the keys the
// call names (call.respKeys), not a platform store profile.
func TestResponseSignatureBusinessKeys(t *testing.T) {
	a, _ := mandate.GenerateSigningKey()
	other, _ := mandate.GenerateSigningKey()
	st := &rotatingStore{}
	st.set(a, a)
	srv := httptest.NewServer(st)
	defer srv.Close()
	ctx := context.Background()
	send := func(mode ResponseVerification, ks *mandate.KeySet) error {
		c, err := New(Config{BaseURL: "http://127.0.0.1:9", AgentProfile: "https://agent.example/.well-known/ucp", VerifyResponses: mode,
			HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		cl := &call{op: "rest.get_checkout", route: route(SurfaceStore, "get_checkout", &callOptions{}, false, nil),
			method: http.MethodGet, url: srv.URL + "/api/checkout-sessions/x",
			respKeys: &businessKeys{Label: srv.URL + "/.well-known/ucp", Keys: func(context.Context) (*mandate.KeySet, error) { return ks, nil }}}
		_, err = c.send(ctx, cl)
		return err
	}
	var se *ResponseSignatureError
	if err := send(VerifyResponsesRequired, mandate.NewKeySet(a.PublicJWK())); err != nil {
		t.Fatalf("right key: %v", err)
	}
	if err := send(VerifyResponsesIfKeys, mandate.NewKeySet(other.PublicJWK())); !errors.As(err, &se) || se.Code != httpsig.CodeKeyNotFound || !strings.HasPrefix(se.Store, srv.URL) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := send(VerifyResponsesIfKeys, &mandate.KeySet{}); err != nil {
		t.Fatalf("no keys, if-keys: %v", err)
	}
	if err := send(VerifyResponsesRequired, &mandate.KeySet{}); !errors.As(err, &se) {
		t.Fatalf("no keys, required: %v", err)
	}
	if n := st.profiles.Load(); n != 0 {
		t.Fatalf("a platform store profile was fetched %d times", n)
	}
}
