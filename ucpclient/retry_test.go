package ucpclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// failFirst answers the first n requests with status (and headers).
func failFirst(n, status int, hdr map[string]string) func(w http.ResponseWriter, r *http.Request, i int) bool {
	return func(w http.ResponseWriter, r *http.Request, i int) bool {
		if i > n {
			return false
		}
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"ucp":{"status":"error"},"messages":[{"type":"error","code":"busy","content":"try later"}]}`)
		return true
	}
}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	id := map[string]string{"id": "c1"}

	t.Run("POST without idempotency key is never retried", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(5, 503, nil)
		c := newTestClient(t, f, nil)
		_, err := c.CallStoreTool(ctx, "tea", "get_checkout", id)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.StatusCode != 503 || pe.Code != "busy" {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
		// Same for the REST search and the account tools.
		c.GlobalSearch(ctx, nil)
		if n := len(f.requests()); n != 2 {
			t.Fatalf("search: %d attempts in all, want 2", n)
		}
	})
	t.Run("idempotent POST is retried with the same key", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(2, 502, nil)
		c := newTestClient(t, f, nil)
		if _, err := c.CallStoreTool(ctx, "tea", "create_checkout", map[string]any{"checkout": map[string]any{}}); err != nil {
			t.Fatal(err)
		}
		r := f.requests()
		if len(r) != 3 {
			t.Fatalf("%d attempts, want 3", len(r))
		}
		for i := 1; i < len(r); i++ {
			if string(r[i].Body) != string(r[0].Body) || r[i].Header.Get("Idempotency-Key") != r[0].Header.Get("Idempotency-Key") {
				t.Errorf("attempt %d changed the body or the key", i)
			}
			if r[i].Header.Get("Request-Id") == r[i-1].Header.Get("Request-Id") {
				t.Errorf("attempt %d reused Request-Id", i)
			}
			if r[i].Header.Get("X-API-Key") != "plat.secret" {
				t.Errorf("attempt %d lost its credential", i)
			}
		}
	})
	t.Run("caller key makes a read retryable", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(1, 500, nil)
		c := newTestClient(t, f, nil)
		if _, err := c.CallStoreTool(ctx, "tea", "get_checkout", id, WithIdempotencyKey("k-1")); err != nil {
			t.Fatal(err)
		}
		if r := f.requests(); len(r) != 2 || r[1].Header.Get("Idempotency-Key") != "k-1" {
			t.Fatalf("%d attempts", len(r))
		}
	})
	t.Run("GET is retried", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(1, 503, nil)
		c := newTestClient(t, f, nil)
		if _, err := c.FetchStoreProfile(ctx, "tea"); err != nil || len(f.requests()) != 2 {
			t.Fatalf("err %v, %d attempts", err, len(f.requests()))
		}
	})
	t.Run("429 Retry-After 3600 is capped", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(1, 429, map[string]string{"Retry-After": "3600"})
		c := newTestClient(t, f, func(cfg *Config) { cfg.Retry.MaxWait = 50 * time.Millisecond })
		start := time.Now()
		if _, err := c.CallStoreTool(ctx, "tea", "update_cart", id); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v: Retry-After not capped", d)
		}
		if n := len(f.requests()); n != 2 {
			t.Fatalf("%d attempts, want 2", n)
		}
		if got := cappedBackoff(time.Second, 30*time.Second, 1, &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"3600"}}}); got != 30*time.Second {
			t.Errorf("cappedBackoff = %v, want 30s", got)
		}
	})
	for _, status := range []int{400, 403, 404, 409, 422, 501} {
		t.Run(fmt.Sprintf("%d is never retried", status), func(t *testing.T) {
			f := newFakePlatform(t)
			f.answer = failFirst(5, status, nil)
			c := newTestClient(t, f, nil)
			_, err := c.CallStoreTool(ctx, "tea", "create_cart", map[string]any{})
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.StatusCode != status || len(f.requests()) != 1 {
				t.Fatalf("err = %v, %d attempts", err, len(f.requests()))
			}
		})
	}
	t.Run("gives up after MaxAttempts and keeps the last answer", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(10, 503, nil)
		c := newTestClient(t, f, nil)
		_, err := c.CallStoreTool(ctx, "tea", "create_cart", map[string]any{})
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.StatusCode != 503 || len(f.requests()) != 3 {
			t.Fatalf("err = %v, %d attempts", err, len(f.requests()))
		}
	})
	t.Run("context cancellation stops the backoff", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(10, 503, map[string]string{"Retry-After": "3600"})
		c := newTestClient(t, f, func(cfg *Config) { cfg.Retry = RetryConfig{MaxAttempts: 5, MaxWait: time.Hour} })
		cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.CallStoreTool(cctx, "tea", "create_cart", map[string]any{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("MaxAttempts 1 disables retries", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = failFirst(1, 503, nil)
		c := newTestClient(t, f, func(cfg *Config) { cfg.Retry.MaxAttempts = 1 })
		if _, err := c.FetchStoreProfile(ctx, "tea"); err == nil || len(f.requests()) != 1 {
			t.Fatalf("err %v, %d attempts", err, len(f.requests()))
		}
	})
}

type oneKey struct{ jwk *jose.JSONWebKey }

func (k oneKey) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if kid != k.jwk.KeyID {
		return nil, errors.New("unknown kid")
	}
	return k.jwk, nil
}

// TestRetrySignedAfresh: every attempt of a retried request carries its
// own signature, valid over what was sent.
func TestRetrySignedAfresh(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := httpsig.NewSigner(priv, "agent-key-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &httpsig.Verifier{Keys: oneKey{&jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "agent-key-1", Algorithm: "ES256"}}, RequireCreated: true}
	f := newFakePlatform(t)
	var verr []error
	f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		body, _ := io.ReadAll(r.Body)
		res, err := v.VerifyRequest(r.Context(), r, body)
		if err != nil {
			verr = append(verr, fmt.Errorf("attempt %d: %w", n, err))
		} else if res.KeyID != "agent-key-1" {
			verr = append(verr, fmt.Errorf("attempt %d: keyid %q", n, res.KeyID))
		}
		if n == 1 {
			w.WriteHeader(503)
			return true
		}
		return false
	}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Signer = signer })
	if _, err := c.CallStoreTool(context.Background(), "tea", "create_checkout", map[string]any{"checkout": map[string]any{"line_items": []any{}}}); err != nil {
		t.Fatal(err)
	}
	if len(verr) != 0 {
		t.Fatal(verr)
	}
	r := f.requests()
	if len(r) != 2 {
		t.Fatalf("%d attempts", len(r))
	}
	for i, q := range r {
		if len(q.Header.Values("Signature")) != 1 || len(q.Header.Values("Signature-Input")) != 1 {
			t.Errorf("attempt %d: signature headers %q", i, q.Header.Values("Signature"))
		}
		if q.Header.Get("Content-Digest") == "" {
			t.Errorf("attempt %d: no Content-Digest", i)
		}
	}
	if r[0].Header.Get("Signature") == r[1].Header.Get("Signature") {
		t.Error("the retry reused the first attempt's signature")
	}
	// A GET (profile) is signed too, without a digest.
	if _, err := c.FetchStoreProfile(context.Background(), "tea"); err != nil || len(verr) != 0 {
		t.Fatal(err, verr)
	}
}

func TestRetryLogging(t *testing.T) {
	var buf bytes.Buffer
	f := newFakePlatform(t)
	f.answer = failFirst(1, 503, nil)
	c := newTestClient(t, f, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if _, err := c.FetchStoreProfile(context.Background(), "tea"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "retrying") {
		t.Errorf("no retry log: %s", buf.String())
	}
	if strings.Contains(buf.String(), "plat.secret") {
		t.Errorf("the key reached the log: %s", buf.String())
	}
	// Without a Logger the retrying client has none (go-retryablehttp's
	// default writes every request to stderr).
	c2 := newTestClient(t, f, nil)
	if c2.rc.Logger != nil {
		t.Errorf("default logger %T", c2.rc.Logger)
	}
}
