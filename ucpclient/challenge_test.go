package ucpclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	h := `Basic realm="x", Bearer realm="ucpbridge", error="invalid_token", error_description="token \"expired\"", ` +
		`scope="purchase:complete orders:read", resource_metadata="https://api.example/.well-known/oauth-protected-resource/mcp"`
	c := ParseChallenge(h)
	if c.Scheme != "Bearer" || c.Realm != "ucpbridge" || c.Error != "invalid_token" ||
		c.ErrorDescription != `token "expired"` || c.Scope != "purchase:complete orders:read" ||
		c.ResourceMetadata != "https://api.example/.well-known/oauth-protected-resource/mcp" || c.Raw != h {
		t.Fatalf("ParseChallenge = %+v", c)
	}
	c = ParseChallenge(`Bearer error=invalid_token,scope=a`)
	if c.Error != "invalid_token" || c.Scope != "a" || c.Params["scope"] != "a" {
		t.Fatalf("token values: %+v", c)
	}
	if c := ParseChallenge(""); c == nil || c.Scheme != "" || c.Params == nil {
		t.Fatalf("empty: %+v", c)
	}
	if c := ParseChallenge(`Bearer`); c.Scheme != "Bearer" || c.Error != "" {
		t.Fatalf("bare: %+v", c)
	}
	// Garbage never panics.
	for _, s := range []string{`=`, `Bearer ="x"`, `Bearer error="unterminated`, `,,,`, `Bearer a=b=c`} {
		ParseChallenge(s)
	}
}

const prm = "https://api.example/.well-known/oauth-protected-resource/account/mcp"

// unauthorizedUnless answers 401 invalid_token unless the bearer is good.
func unauthorizedUnless(good string) func(w http.ResponseWriter, r *http.Request, n int) bool {
	return func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.Header.Get("Authorization") == "Bearer "+good {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+prm+`", scope="purchase:complete", error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_token"}`)
		return true
	}
}

func TestAuthRelayRefreshOnce(t *testing.T) {
	f := newFakePlatform(t)
	f.answer = unauthorizedUnless("fresh")
	buyer := &refreshingBuyer{tok: "stale"}
	var hooked []*Challenge
	c := newTestClient(t, f, func(cfg *Config) {
		cfg.Buyer = buyer
		cfg.OnAuthChallenge = func(ctx context.Context, ch *Challenge) error { hooked = append(hooked, ch); return nil }
	})
	out, err := c.CallAccountTool(context.Background(), "get_buyer_context", nil)
	if err != nil || !strings.Contains(string(out), "success") {
		t.Fatalf("after refresh: %s, %v", out, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || buyer.refreshes != 1 || len(hooked) != 1 {
		t.Fatalf("requests %d, refreshes %d, hook calls %d", len(reqs), buyer.refreshes, len(hooked))
	}
	if reqs[0].Header.Get("Authorization") != "Bearer stale" || reqs[1].Header.Get("Authorization") != "Bearer fresh" {
		t.Errorf("bearers %q, %q", reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"))
	}
	if reqs[1].Header.Get("X-API-Key") != "" {
		t.Error("the retry carried the key")
	}
	if hooked[0].ResourceMetadata != prm || hooked[0].Error != "invalid_token" {
		t.Errorf("hook got %+v", hooked[0])
	}
}

func TestAuthRelayNoLoop(t *testing.T) {
	f := newFakePlatform(t)
	f.answer = unauthorizedUnless("never")
	buyer := &refreshingBuyer{tok: "stale"}
	hooks := 0
	c := newTestClient(t, f, func(cfg *Config) {
		cfg.Buyer = buyer
		cfg.OnAuthChallenge = func(context.Context, *Challenge) error { hooks++; return nil }
	})
	_, err := c.CallStoreTool(context.Background(), "tea", "complete_checkout", map[string]string{"id": "c"}, WithCrypto())
	var ae *AuthChallengeError
	if !errors.As(err, &ae) || ae.Challenge.ResourceMetadata != prm || ae.Challenge.Scope != "purchase:complete" {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests()); n != 2 || buyer.refreshes != 1 || hooks != 2 {
		t.Fatalf("requests %d, refreshes %d, hooks %d: want 2, 1, 2", n, buyer.refreshes, hooks)
	}
	// The retry after the refresh reused the idempotency key.
	r := f.requests()
	if k := r[0].Header.Get("Idempotency-Key"); k == "" || k != r[1].Header.Get("Idempotency-Key") {
		t.Errorf("idempotency keys %q, %q", k, r[1].Header.Get("Idempotency-Key"))
	}
}

func TestAuthRelayWithoutRefresh(t *testing.T) {
	ctx := context.Background()
	t.Run("buyer cannot refresh", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = unauthorizedUnless("never")
		c := newTestClient(t, f, func(cfg *Config) { cfg.Buyer = staticBuyer{"t"} })
		_, err := c.ListAccountTools(ctx)
		var ae *AuthChallengeError
		if !errors.As(err, &ae) || ae.Challenge.Error != "invalid_token" || len(f.requests()) != 1 {
			t.Fatalf("err = %v, %d requests", err, len(f.requests()))
		}
	})
	t.Run("platform call is never refreshed", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = unauthorizedUnless("never")
		buyer := &refreshingBuyer{tok: "t"}
		c := newTestClient(t, f, func(cfg *Config) { cfg.Buyer = buyer })
		_, err := c.CallStoreTool(ctx, "tea", "create_checkout", map[string]any{})
		var ae *AuthChallengeError
		if !errors.As(err, &ae) || buyer.refreshes != 0 || len(f.requests()) != 1 {
			t.Fatalf("err = %v, refreshes %d, requests %d", err, buyer.refreshes, len(f.requests()))
		}
	})
	t.Run("other errors are not refreshed", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="orders:read"`)
			w.WriteHeader(401)
			return true
		}
		buyer := &refreshingBuyer{tok: "t"}
		c := newTestClient(t, f, func(cfg *Config) { cfg.Buyer = buyer })
		_, err := c.CallAccountTool(ctx, "list_my_orders", nil)
		var ae *AuthChallengeError
		if !errors.As(err, &ae) || ae.Challenge.Scope != "orders:read" || buyer.refreshes != 0 {
			t.Fatalf("err = %v, refreshes %d", err, buyer.refreshes)
		}
	})
	t.Run("hook error stops", func(t *testing.T) {
		f := newFakePlatform(t)
		f.answer = unauthorizedUnless("fresh")
		buyer := &refreshingBuyer{tok: "stale"}
		stop := errors.New("sign in again")
		c := newTestClient(t, f, func(cfg *Config) {
			cfg.Buyer = buyer
			cfg.OnAuthChallenge = func(context.Context, *Challenge) error { return stop }
		})
		_, err := c.CallAccountTool(ctx, "list_my_orders", nil)
		var ae *AuthChallengeError
		if !errors.As(err, &ae) || !errors.Is(err, stop) || buyer.refreshes != 0 {
			t.Fatalf("err = %v, refreshes %d", err, buyer.refreshes)
		}
	})
}
