package shop_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// logRecorder is a slog handler that keeps every record, so a test can
// assert what the service logged and at which level.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// above returns the messages logged at level min or higher.
func (l *logRecorder) above(min slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level >= min {
			msg := r.Level.String() + " " + r.Message
			r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
			out = append(out, msg)
		}
	}
	return out
}

// TestBadBytesRefused: a NUL or invalid UTF-8 in a path id, a store slug
// or a body string is a malformed request (400 invalid_request), on every
// backend: PostgreSQL refuses such text (SQLSTATE 22021), which used to
// surface as a 503 with an ERROR log line per request. The hosted page
// and the profile endpoint answer 404.
func TestBadBytesRefused(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logs := &logRecorder{}
			e := newEnv(t, &envOptions{store: open(t), cfg: func(c *shop.Config) { c.Logger = slog.New(logs) }})
			checkLogs := func(t *testing.T, what string) {
				t.Helper()
				if got := logs.above(slog.LevelInfo); len(got) > 0 {
					t.Fatalf("%s: logged above debug: %q", what, got)
				}
			}
			nul := "\\u0000" // a JSON escape, as the body carries it
			for _, tc := range []struct {
				method, path, body string
			}{
				{"GET", "/s/%00/checkout-sessions/chk_x", ""},
				{"GET", "/s/%ff/checkout-sessions/chk_x", ""},
				{"GET", "/s/flower-shop/checkout-sessions/%00", ""},
				{"GET", "/s/flower-shop/checkout-sessions/%ff", ""},
				{"GET", "/s/flower-shop/carts/%00", ""},
				{"GET", "/s/flower-shop/carts/%ff", ""},
				{"GET", "/s/flower-shop/orders/%00", ""},
				{"GET", "/s/flower-shop/orders/ord_%ff", ""},
				{"POST", "/s/%00/catalog/search", `{}`},
				{"POST", "/s/%ff/carts", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`},
				{"POST", "/s/flower-shop/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet` + nul + `"},"quantity":1}]}`},
				{"POST", "/s/flower-shop/checkout-sessions", `{"cart_id":"cart_` + nul + `"}`},
				{"POST", "/s/flower-shop/carts", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}],"discounts":{"codes":["` + nul + `"]}}`},
				{"POST", "/s/flower-shop/catalog/search", `{"query":"roses` + nul + `"}`},
				{"POST", "/catalog/search", `{"query":"` + nul + `"}`},
				{"POST", "/catalog/lookup", `{"ids":["` + nul + `"]}`},
				{"POST", "/s/flower-shop/catalog/product", `{"id":"` + nul + `"}`},
				// A NUL in a key is just as bad, and so are raw bytes that are
				// not UTF-8.
				{"POST", "/s/flower-shop/catalog/search", `{"query":"roses","` + nul + `":1}`},
				{"POST", "/s/flower-shop/catalog/search", "{\"query\":\"roses\xff\"}"},
				// An escaped backslash before the escape still leaves one.
				{"POST", "/s/flower-shop/catalog/search", `{"query":"roses\\` + nul + `"}`},
			} {
				var body any
				if tc.body != "" {
					body = tc.body
				}
				res, b := e.req(tc.method, tc.path, body)
				what := tc.method + " " + tc.path + " " + tc.body
				if res.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s: HTTP %d, want 400: %s", what, res.StatusCode, b)
				}
				if err := decode[struct{ Code string }](t, b); err.Code != "invalid_request" {
					t.Fatalf("%s: code %q, want invalid_request: %s", what, err.Code, b)
				}
				checkLogs(t, what)
			}
			// The literal text backslash-u-0-0-0-0 (an escaped backslash
			// followed by u0000) is an ordinary query.
			for _, q := range []string{`{"query":"roses\\u0000"}`, `{"query":"roses\\\\\\u0000"}`} {
				res, b := e.req("POST", "/s/flower-shop/catalog/search", q)
				wantStatus(t, res, b, http.StatusOK)
			}

			// MCP: the same refusal as a JSON-RPC invalid-params error.
			const rpcParams = -32602
			for _, tc := range []struct {
				path, tool string
				args       map[string]any
			}{
				{"/s/%00/mcp", "get_checkout", e.mcpArgs("id", "chk_x")},
				{"/s/%ff/mcp", "get_cart", e.mcpArgs("id", "cart_x")},
				{"/s/flower-shop/mcp", "get_checkout", e.mcpArgs("id", "chk_\x00")},
				{"/s/flower-shop/mcp", "get_order", e.mcpArgs("id", "\x00")},
				{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", map[string]any{"line_items": []any{line("bouquet\x00", 1)}})},
				{"/s/flower-shop/mcp", "create_checkout", e.mcpArgs("checkout", map[string]any{"cart_id": "\x00"})},
				{"/s/flower-shop/mcp", "search_catalog", e.mcpArgs("catalog", map[string]any{"query": "roses\x00"})},
				{"/mcp", "lookup_catalog", e.mcpArgs("catalog", map[string]any{"ids": []string{"\x00"}})},
				{"/s/flower-shop/mcp", "get_product", map[string]any{"meta": map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL() + "\x00"}},
					"catalog": map[string]any{"id": "tulip_bunch"}}},
			} {
				res, out, b := e.mcpCallRaw(tc.path, tc.tool, tc.args)
				wantRPCError(t, res, out, b, http.StatusBadRequest, rpcParams, "invalid_request")
				checkLogs(t, tc.path+" "+tc.tool)
			}

			// Pages that take a slug or id from the path: not found.
			for _, path := range []string{
				"/s/%00/.well-known/ucp",
				"/s/%ff/.well-known/ucp",
				"/s/%00/checkout-sessions/chk_x/continue?token=x",
				"/s/flower-shop/checkout-sessions/%00/continue?token=x",
				"/s/flower-shop/checkout-sessions/%ff/continue?token=x",
			} {
				for _, hdr := range [][]string{nil, {"Accept-Signature", `sig1=("@status")`}} {
					res, b := e.req("GET", path, nil, hdr...)
					if res.StatusCode != http.StatusNotFound {
						t.Fatalf("GET %s: HTTP %d, want 404: %s", path, res.StatusCode, b)
					}
					checkLogs(t, "GET "+path)
				}
			}
		})
	}
}

// TestHangupIsNotAnError: a caller that goes away cancels its request's
// context, failing the store call in flight; that is logged at debug, so
// hanging up cannot fill the error log.
func TestHangupIsNotAnError(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Logger = slog.New(logs) }})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, req := range []*shop.Request{
		{Op: shop.OpCreateCheckout, Shop: "flower-shop", Body: []byte(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`), Agent: e.agent.URL()},
		{Op: shop.OpGetOrder, Shop: "flower-shop", ID: "ord_x", Agent: e.agent.URL()},
		{Op: shop.OpSearchCatalog, Shop: "flower-shop", Body: []byte(`{"query":"roses"}`)},
	} {
		if rep := e.svc.Do(ctx, req); rep.Err == nil {
			t.Fatalf("%s ran on a canceled context: %d", req.Op, rep.Status)
		}
	}
	if errs := logs.above(slog.LevelError); len(errs) > 0 {
		t.Fatalf("a hang-up was logged as an error: %v", errs)
	}
	if len(logs.above(slog.LevelDebug)) == 0 {
		t.Fatal("nothing logged: the calls did not fail as the test expects")
	}
}

// TestUnknownRailRefused: a store cannot offer a rail this build cannot
// charge through (it would fail at completion, after the mandate).
func TestUnknownRailRefused(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	err := shop.PutSeedShop(t.Context(), st, shop.SeedShop{Slug: "odd", Name: "Odd", Currency: "EUR",
		Config: shop.Settings{Rails: []string{shop.HandlerCardID, "artos.barter"}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "artos.barter") {
		t.Fatalf("%v", err)
	}
}

// TestReviewForgedCursor: the pagination cursor is base64 JSON the
// caller can forge; what it carries is checked before the store sees it.
func TestReviewForgedCursor(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logs := &logRecorder{}
			e := newEnv(t, &envOptions{store: open(t), cfg: func(c *shop.Config) { c.Logger = slog.New(logs) }})
			for _, raw := range []string{`{"s":"\u0000"}`, `{"i":"\u0000"}`, `{"s":"a\u0000b","i":"x"}`, `{"i":"` + strings.Repeat("x", 300) + `"}`} {
				cur := base64.RawURLEncoding.EncodeToString([]byte(raw))
				for _, path := range []string{"/catalog/search", "/s/flower-shop/catalog/search"} {
					res, b := e.req("POST", path, map[string]any{"query": "roses", "pagination": map[string]any{"cursor": cur}})
					if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "invalid_request") {
						t.Errorf("%s cursor %q: %d %s", path, raw, res.StatusCode, b)
					}
				}
			}
			if errs := logs.above(slog.LevelWarn); len(errs) > 0 {
				t.Errorf("logged: %v", errs)
			}
		})
	}
}

// TestReviewMandateIDsStoredAsDigests: a mandate's kid and jti are chosen
// by its signer; the replay record keeps a digest, so a NUL or an 8 KB jti
// is a mandate like any other, not a storage failure.
func TestReviewMandateIDsStoredAsDigests(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rc := &shop.StoreReplayCache{Store: open(t)}
			exp := time.Now().Add(5 * time.Minute)
			for _, id := range []string{"kid|m_\x00", "kid|" + strings.Repeat("j", 8<<10), "\xff|m_1"} {
				if err := rc.Use(t.Context(), id, exp); err != nil {
					t.Errorf("first use of %.20q: %v", id, err)
				}
				if err := rc.Use(t.Context(), id, exp); !errors.Is(err, mandate.ErrReplayed) {
					t.Errorf("second use of %.20q: %v", id, err)
				}
			}
		})
	}
}

// TestUnknownRailInSavedSettings: a store whose saved settings name a rail
// this build lacks keeps serving with the rails it has (it used to fail at
// completion; refusing the whole store would take its catalog down too).
func TestUnknownRailInSavedSettings(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	if err := st.PutShop(t.Context(), &store.Shop{Slug: "odd", Name: "Odd", Currency: "EUR",
		Config: []byte(`{"rails":["artos.card","artos.barter"]}`), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envOptions{store: st})
	res, b := e.req("GET", "/s/odd/.well-known/ucp", nil)
	if res.StatusCode != 200 || strings.Contains(string(b), "barter") || !strings.Contains(string(b), "artos.card") {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
}
