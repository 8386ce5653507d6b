package netguard

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestNewClientGuardsTheDial(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()

	_, err := NewClient(nil).Get(srv.URL)
	var be *BlockedError
	if !errors.As(err, &be) || be.Class != ClassLoopback {
		t.Fatalf("default client reached loopback: %v", err)
	}
	res, err := NewClient(&ClientOptions{AllowLoopback: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBody(res, 10); err != nil || string(b) != "ok" {
		t.Fatalf("%q %v", b, err)
	}
}

// TestNewClientIgnoresProxy: an environment proxy would dial on the
// client's behalf, past the guard.
func TestNewClientIgnoresProxy(t *testing.T) {
	c := NewClient(&ClientOptions{AllowLoopback: true})
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("the guarded client uses a proxy function")
	}
	t.Setenv("HTTP_PROXY", "http://10.0.0.1:3128")
	t.Setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("went through the proxy: %v", err)
	}
	res.Body.Close()
}

func TestNewClientReturnsRedirects(t *testing.T) {
	t.Parallel()
	var followed bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			followed = true
			return
		}
		http.Redirect(w, r, "/next", http.StatusFound)
	}))
	defer srv.Close()
	res, err := NewClient(&ClientOptions{AllowLoopback: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || followed {
		t.Fatalf("status %d, followed %v", res.StatusCode, followed)
	}
}

func TestNewClientCapsHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("a", 4<<10))
	}))
	defer srv.Close()
	if _, err := NewClient(&ClientOptions{AllowLoopback: true, MaxResponseHeaderBytes: 1 << 10}).Get(srv.URL); err == nil {
		t.Fatal("oversized response headers accepted")
	}
	res, err := NewClient(&ClientOptions{AllowLoopback: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("default cap refused 4 KiB of headers: %v", err)
	}
	res.Body.Close()
}

func TestNewClientTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	_, err := NewClient(&ClientOptions{AllowLoopback: true, Timeout: 50 * time.Millisecond}).Get(srv.URL)
	if !IsTimeout(err) {
		t.Fatalf("want a timeout, got %v", err)
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	resp := func(body string, length int64) *http.Response {
		return &http.Response{Body: io.NopCloser(strings.NewReader(body)), ContentLength: length}
	}
	for _, tc := range []struct {
		name   string
		res    *http.Response
		tooBig bool
	}{
		{"at the limit", resp("12345", 5), false},
		{"unknown length at the limit", resp("12345", -1), false},
		{"declared over", resp("", 6), true},
		{"streamed over", resp("123456", -1), true},
		{"lies about its length", resp("123456789", 3), true},
		{"shorter than it said", resp("12", 5), false},
	} {
		b, err := ReadBody(tc.res, 5)
		var tl *TooLargeError
		if got := errors.As(err, &tl); got != tc.tooBig || (!tc.tooBig && (err != nil || len(b) == 0)) {
			t.Errorf("%s: %q %v", tc.name, b, err)
		}
		if tc.tooBig && tl.Limit != 5 {
			t.Errorf("%s: limit %d", tc.name, tl.Limit)
		}
	}
}

// TestReadBodyContentLengthIsAHint: Content-Length sizes the buffer but
// the body is what is read, past the preallocation cap too.
func TestReadBodyContentLengthIsAHint(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 3*maxPrealloc+17)
	for _, tc := range []struct {
		name   string
		body   string
		length int64
	}{
		{"exact", "hello", 5},
		{"short", "hello world", 5},
		{"long", "he", 5},
		{"unknown", "hello", -1},
		{"big, exact", big, int64(len(big))},
		{"big, unknown", big, -1},
		{"big, short", big, 10},
	} {
		b, err := ReadBody(&http.Response{Body: io.NopCloser(strings.NewReader(tc.body)), ContentLength: tc.length}, 1<<20)
		if err != nil || string(b) != tc.body {
			t.Errorf("%s: %d bytes, %v", tc.name, len(b), err)
		}
	}
	// An announced length never allocates more than the cap up front.
	if b, _ := readAll(strings.NewReader("x"), 1<<22); cap(b) > maxPrealloc {
		t.Errorf("preallocated %d", cap(b))
	}
}

func TestCheckURLErrorNeverEchoesTheURL(t *testing.T) {
	t.Parallel()
	secret := "https://user:hunter2@a.example/p"
	_, err := CheckURL(secret, 2048, false)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("%v", err)
	}
	if _, err := url.Parse(secret); err != nil {
		t.Fatal(err)
	}
}
