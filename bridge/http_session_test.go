package bridge

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sessionRequest sends a raw legacy-protocol request with tok and the
// session id sid and returns the status (a stream is not read: the
// request is cancelled once the headers are in).
func sessionRequest(t *testing.T, method, url, tok, sid, body string) (int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

// TestHTTPLegacySessionUnknownIdIs404OnEveryMethod: mcp-go checks the
// session id only on POST; on GET an unknown id opened an SSE stream (a
// session under the caller's chosen id) and DELETE of one answered 200.
// The front answers 404 for an id it did not issue or that has ended, on
// GET and DELETE as on POST, so a client learns its session is gone.
func TestHTTPLegacySessionUnknownIdIs404OnEveryMethod(t *testing.T) {
	e := newFrontEnv(t, nil)
	const tok = "good-session"
	status, hdr := sessionRequest(t, http.MethodPost, e.url, tok, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := hdr.Get("Mcp-Session-Id")
	if status != http.StatusOK || !strings.HasPrefix(sid, sessionPrefix) {
		t.Fatalf("initialize: HTTP %d, session %q", status, sid)
	}
	// The live session's stream opens.
	if status, hdr := sessionRequest(t, http.MethodGet, e.url, tok, sid, ""); status != http.StatusOK ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET with the live session: HTTP %d %q", status, hdr.Get("Content-Type"))
	}
	for _, unknown := range []string{sessionPrefix + rand.Text(), "chosen-by-the-client"} {
		for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
			body := ""
			if m == http.MethodPost {
				body = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
			}
			if status, _ := sessionRequest(t, m, e.url, tok, unknown, body); status != http.StatusNotFound {
				t.Errorf("%s with unknown session %q: HTTP %d, want 404", m, unknown, status)
			}
		}
	}
	// DELETE ends the live session; its id is then unknown everywhere.
	if status, _ := sessionRequest(t, http.MethodDelete, e.url, tok, sid, ""); status != http.StatusOK {
		t.Fatalf("DELETE of the live session: HTTP %d", status)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if status, _ := sessionRequest(t, m, e.url, tok, sid, ""); status != http.StatusNotFound {
			t.Errorf("%s with the ended session: HTTP %d, want 404", m, status)
		}
	}
	// Still a bearer first: no bearer is 401 whatever the session.
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set("Mcp-Session-Id", "chosen-by-the-client")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET without a bearer: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}

// TestHTTPLegacySessionExpiredIdIs404OnGet: an id the idle sweeper ended
// is 404 on GET too.
func TestHTTPLegacySessionExpiredIdIs404OnGet(t *testing.T) {
	e := newFrontEnv(t, func(o *HTTPOptions) { o.SessionIdleTTL = 100 * time.Millisecond })
	const tok = "good-expiring"
	_, hdr := sessionRequest(t, http.MethodPost, e.url, tok, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := hdr.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session")
	}
	// The sweeper runs every second at least; POST (which mcp-go checks)
	// tells when it has. Polling touches a live session: wait out the TTL
	// between polls.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if status, _ := sessionRequest(t, http.MethodPost, e.url, tok, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session not swept")
		}
	}
	if status, _ := sessionRequest(t, http.MethodGet, e.url, tok, sid, ""); status != http.StatusNotFound {
		t.Fatalf("GET with the expired session: HTTP %d, want 404", status)
	}
}
