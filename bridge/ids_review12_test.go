package bridge_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestBusinessIDsNoDotSegments (review 12): an id from the agent goes
// into a business's REST path as one segment. "." and ".." would be
// dot-segments that a server or proxy resolves (RFC 3986 §5.2.4), so
// view_checkout with id ".." would read the endpoint's root and
// update_cart / cancel a sibling path, with the platform's credentials
// when the business is on the platform. They never reach the wire.
func TestBusinessIDsNoDotSegments(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/ucp" {
			entity := map[string]any{"version": "2026-04-08", "spec": "https://ucp.dev/specification/overview", "schema": "https://ucp.dev/schemas/x.json"}
			rest := map[string]any{"transport": "rest", "endpoint": srv.URL + "/api"}
			for k, v := range entity {
				rest[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ucp": map[string]any{"version": "2026-04-08",
				"services":         map[string]any{"dev.ucp.shopping": []any{rest}},
				"capabilities":     map[string]any{"dev.ucp.shopping.checkout": []any{entity}, "dev.ucp.shopping.cart": []any{entity}, "dev.ucp.shopping.order": []any{entity}},
				"payment_handlers": map[string]any{}}})
			return
		}
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	h := startHarness(t, harnessOptions{})
	biz := srv.URL + "/.well-known/ucp"
	for _, id := range []string{"..", "."} {
		for _, c := range []struct {
			tool string
			args map[string]any
		}{
			{"view_checkout", map[string]any{"business_url": biz, "id": id}},
			{"view_cart", map[string]any{"business_url": biz, "id": id}},
			{"get_order", map[string]any{"business_url": biz, "id": id}},
			{"update_cart", map[string]any{"business_url": biz, "id": id, "items": lines("x", 1)}},
		} {
			if res := h.call(t, c.tool, c.args); !res.IsError {
				t.Errorf("%s id %q: not an error: %s", c.tool, id, text(res))
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range seen {
		path, _, _ := strings.Cut(u, "?")
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				t.Errorf("a dot-segment reached the business: %s", u)
			}
		}
	}
}
