package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

const testProfile = `{"ucp":{"version":"2026-04-08","capabilities":{"dev.ucp.shopping.checkout":[{"version":"2026-04-08"}]},"payment_handlers":{}},"signing_keys":[{"kid":"k1","kty":"EC"}]}`

// testServer counts requests per path and serves what handler says.
type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func (s *testServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *testServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hits {
		n += h
	}
	return n
}

func newServer(t *testing.T, tls bool, handler http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{hits: make(map[string]int)}
	counted := func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		handler(w, r)
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(counted))
	// Refused dials and untrusted certificates are part of the tests.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func serveProfile(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	io.WriteString(w, testProfile)
}

// releaseOnCleanup returns an idempotent closer for ch that also runs at
// cleanup.
func releaseOnCleanup(t *testing.T, ch chan struct{}) func() {
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

// inProcess is a profile host served in process: its Client runs handler
// inside RoundTrip, with no connection. Cache and singleflight
// tests use it inside a synctest bubble, where a real connection does not
// fit (a goroutine waiting on the network is not durably blocked, so the
// bubble's clock would not move and synctest.Wait would not return).
type inProcess struct {
	handler http.HandlerFunc
	mu      sync.Mutex
	hits    map[string]int
}

func newInProcess(handler http.HandlerFunc) *inProcess {
	return &inProcess{handler: handler, hits: make(map[string]int)}
}

func (s *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	s.mu.Unlock()
	w := httptest.NewRecorder()
	s.handler(w, r)
	return w.Result(), nil
}

func (s *inProcess) Client() *http.Client { return &http.Client{Transport: s} }

func (s *inProcess) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// inProcessURL is any https URL: inProcess never dials.
const inProcessURL = "https://shop.example"

func wantCode(t *testing.T, err error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s (%v), want %s", e.Code, err, code)
	}
	return e
}

func TestFetchHTTPS(t *testing.T) {
	t.Parallel()
	ts := newServer(t, true, serveProfile)
	f := &Fetcher{Client: NoRedirects(ts.Client())}
	p, err := f.Fetch(context.Background(), ts.URL+"/.well-known/ucp")
	if err != nil {
		t.Fatal(err)
	}
	if p.UCP.Version != "2026-04-08" || len(p.SigningKeys) != 1 || string(p.Raw) != testProfile {
		t.Errorf("profile = %+v", p)
	}
}

func TestFetchRefusesRedirect(t *testing.T) {
	t.Parallel()
	ts := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/real", http.StatusFound)
			return
		}
		serveProfile(w, r)
	})
	// The caller's client follows redirects; the Fetcher must not.
	f := &Fetcher{Client: ts.Client()}
	_, err := f.Fetch(context.Background(), ts.URL+"/moved")
	e := wantCode(t, err, CodeProfileUnreachable)
	if !strings.Contains(e.Content, "redirect") {
		t.Errorf("content %q does not mention the redirect", e.Content)
	}
	if n := ts.count("/real"); n != 0 {
		t.Errorf("redirect target fetched %d times", n)
	}
}

func TestFetchFailures(t *testing.T) {
	t.Parallel()
	big := `{"ucp":{"version":"2026-04-08"},"pad":"` + strings.Repeat("x", 200) + `"}`
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		code    string
		content string
	}{
		{"404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, CodeProfileUnreachable, "404"},
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, testProfile, 500) }, CodeProfileUnreachable, "500"},
		{"304", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotModified) }, CodeProfileUnreachable, "redirect"},
		{"oversize with Content-Length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		}, CodeProfileUnreachable, "larger"},
		{"oversize chunked", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, big[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, big[10:])
		}, CodeProfileUnreachable, "larger"},
		{"declared oversize, body withheld", func(w http.ResponseWriter, r *http.Request) {
			// Refused on the header alone; reading would wait for the
			// fetch deadline.
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, "{")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, CodeProfileUnreachable, "larger"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>shop</html>") }, CodeProfileMalformed, "valid UCP profile"},
		{"empty 200", func(w http.ResponseWriter, _ *http.Request) {}, CodeProfileMalformed, "valid UCP profile"},
		{"draft version", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"ucp":{"version":"draft"}}`) }, CodeProfileMalformed, "YYYY-MM-DD"},
		{"duplicate member", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"ucp":{"version":"2026-04-08"},"signing_keys":[],"signing_keys":[{"kid":"evil"}]}`)
		}, CodeProfileMalformed, "duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, true, tc.handler)
			f := &Fetcher{Client: ts.Client(), MaxBytes: 200}
			_, err := f.Fetch(context.Background(), ts.URL+"/p")
			e := wantCode(t, err, tc.code)
			if !strings.Contains(e.Content, tc.content) {
				t.Errorf("content %q does not mention %q", e.Content, tc.content)
			}
		})
	}

	// Control for the size cases: the same body under a higher cap is fine.
	ts := newServer(t, true, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, big) })
	if _, err := (&Fetcher{Client: ts.Client(), MaxBytes: int64(len(big))}).Fetch(context.Background(), ts.URL+"/p"); err != nil {
		t.Fatalf("body at exactly MaxBytes refused: %v", err)
	}
}

func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	// The handler ignores the client going away: answering then can race
	// the client's own cancellation and hand it an empty 200.
	gate := make(chan struct{})
	ts := newServer(t, true, func(w http.ResponseWriter, r *http.Request) { <-gate })
	releaseOnCleanup(t, gate)
	c := ts.Client()
	c.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := (&Fetcher{Client: c}).Fetch(context.Background(), ts.URL+"/slow")
	e := wantCode(t, err, CodeProfileUnreachable)
	if !strings.Contains(e.Content, "timed out") {
		t.Errorf("content %q, want a timeout", e.Content)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestFetchHonoursContext(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	ts := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		serveProfile(w, r)
	})
	// Registered after newServer so it runs before the server's Close,
	// which would otherwise wait forever on a handler if the test fails
	// early.
	release := releaseOnCleanup(t, gate)
	f := &Fetcher{Client: ts.Client()}
	url := ts.URL + "/p"

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Fetch(ctx, url)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
	if n := f.joined(url); n != 0 {
		t.Fatalf("a canceled Fetch started a fetch")
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = f.Fetch(ctx, url)
	wantCode(t, err, CodeProfileUnreachable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	// The abandoned fetch carries on and its result is cached for the next
	// caller.
	release()
	if _, err := f.Fetch(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	if n := ts.count("/p"); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

// TestFetchCaches runs in synctest bubbles: the Fetcher's clock is the
// bubble's (time.Now), and time.Sleep moves it.
func TestFetchCaches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		ttl          time.Duration
		cacheControl string
		fresh, stale time.Duration // still cached at fresh, refetched at stale
	}{
		{"default TTL", 0, "", 4 * time.Minute, 5*time.Minute + time.Second},
		{"TTL below the 60s floor", time.Second, "", 59 * time.Second, 61 * time.Second},
		{"no-store does not defeat the floor", time.Second, "no-store", 59 * time.Second, 61 * time.Second},
		{"shorter max-age ignored", 0, "public, max-age=10", 4 * time.Minute, 5*time.Minute + time.Second},
		{"longer max-age honoured", 0, "public, max-age=1800", 29 * time.Minute, 31 * time.Minute},
		{"max-age capped at an hour", 0, "max-age=86400, public", 59 * time.Minute, 61 * time.Minute},
		{"TTL above an hour kept", 2 * time.Hour, "max-age=60", 119 * time.Minute, 121 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ts := newInProcess(func(w http.ResponseWriter, r *http.Request) {
					if tc.cacheControl != "" {
						w.Header().Set("Cache-Control", tc.cacheControl)
					}
					io.WriteString(w, testProfile)
				})
				f := &Fetcher{Client: ts.Client(), TTL: tc.ttl}
				url := inProcessURL + "/p"
				fetch := func(wantHits int) {
					t.Helper()
					if _, err := f.Fetch(context.Background(), url); err != nil {
						t.Fatal(err)
					}
					if n := ts.count("/p"); n != wantHits {
						t.Fatalf("server saw %d requests, want %d", n, wantHits)
					}
				}
				fetch(1)
				time.Sleep(tc.fresh)
				fetch(1)
				time.Sleep(tc.stale - tc.fresh)
				fetch(2)
			})
		})
	}
}

func TestFetchNegativeCache(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		ts := newInProcess(func(w http.ResponseWriter, r *http.Request) {
			if fail.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			serveProfile(w, r)
		})
		f := &Fetcher{Client: ts.Client()}
		url := inProcessURL + "/p"

		_, err := f.Fetch(context.Background(), url)
		wantCode(t, err, CodeProfileUnreachable)
		fail.Store(false)
		time.Sleep(9 * time.Second)
		_, err = f.Fetch(context.Background(), url)
		e := wantCode(t, err, CodeProfileUnreachable)
		if n := ts.count("/p"); n != 1 {
			t.Fatalf("failure not remembered: server saw %d requests", n)
		}
		e.Content = "edited by a caller"
		_, err = f.Fetch(context.Background(), url)
		if e2 := wantCode(t, err, CodeProfileUnreachable); e2.Content == e.Content {
			t.Error("callers share one *Error")
		}
		time.Sleep(2 * time.Second)
		if _, err := f.Fetch(context.Background(), url); err != nil {
			t.Fatalf("after NegativeTTL: %v", err)
		}

		// NegativeTTL < 0 turns it off.
		fail.Store(true)
		f = &Fetcher{Client: ts.Client(), NegativeTTL: -1}
		before := ts.count("/p")
		f.Fetch(context.Background(), url)
		f.Fetch(context.Background(), url)
		if n := ts.count("/p") - before; n != 2 {
			t.Errorf("with NegativeTTL < 0 the server saw %d requests, want 2", n)
		}
	})
}

// joined reports how many Fetch calls wait on the in-flight fetch of url.
func (f *Fetcher) joined(url string) int {
	f.init()
	return f.cache.Joined(url)
}

// TestFetchSharesOneRequest: concurrent fetches of one URL wait on one
// request. In a synctest bubble, Wait returns once every caller is blocked,
// joined to the fetch or (if they did not share it) in a handler of its own.
func TestFetchSharesOneRequest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		ts := newInProcess(func(w http.ResponseWriter, r *http.Request) {
			<-gate
			serveProfile(w, r)
		})
		release := releaseOnCleanup(t, gate)
		f := &Fetcher{Client: ts.Client()}
		url := inProcessURL + "/p"
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				p, err := f.Fetch(context.Background(), url)
				if err == nil && p.UCP.Version != "2026-04-08" {
					err = errors.New("wrong profile")
				}
				errs <- err
			})
		}
		synctest.Wait()
		if got, joined := ts.count("/p"), f.joined(url); got != 1 || joined != n {
			t.Errorf("%d fetches: %d requests, %d joined; want 1 request, %d joined", n, got, joined, n)
		}
		release()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := ts.count("/p"); got != 1 {
			t.Errorf("server saw %d requests, want 1", got)
		}
	})
}

// TestFetchInFlightBound: fetches of distinct URLs beyond MaxInFlight
// fail at once without reaching the network, and are not cached.
func TestFetchInFlightBound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		ts := newInProcess(func(w http.ResponseWriter, r *http.Request) {
			<-gate
			serveProfile(w, r)
		})
		release := releaseOnCleanup(t, gate)
		f := &Fetcher{Client: ts.Client(), MaxInFlight: 2}
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { f.Fetch(context.Background(), fmt.Sprintf("%s/p%d", inProcessURL, i)) })
		}
		synctest.Wait()
		if f.joined(inProcessURL+"/p0") != 1 || f.joined(inProcessURL+"/p1") != 1 {
			t.Fatal("fetches did not start")
		}
		// Bounded, so a missing bound fails here instead of deadlocking
		// the bubble.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := f.Fetch(ctx, inProcessURL+"/p2")
		if e := wantCode(t, err, CodeProfileUnreachable); !strings.Contains(e.Content, "too many") {
			t.Errorf("content %q, want too many fetches", e.Content)
		}
		if got := ts.count("/p2"); got != 0 {
			t.Fatalf("the refused fetch reached the server (%d)", got)
		}
		release()
		wg.Wait()
		if _, err := f.Fetch(context.Background(), inProcessURL+"/p2"); err != nil {
			t.Fatalf("refusal was cached: %v", err)
		}
		if got := ts.count("/p2"); got != 1 {
			t.Fatalf("server saw %d requests for p2, want 1", got)
		}
	})
}

func TestFetchLRUBound(t *testing.T) {
	t.Parallel()
	ts := newServer(t, true, serveProfile)
	f := &Fetcher{Client: ts.Client(), MaxEntries: 2}
	fetch := func(path string) {
		t.Helper()
		if _, err := f.Fetch(context.Background(), ts.URL+path); err != nil {
			t.Fatal(err)
		}
	}
	fetch("/a")
	fetch("/b")
	fetch("/a") // /a is now the most recently used
	fetch("/c") // evicts /b
	fetch("/a")
	fetch("/c")
	if a, b, c := ts.count("/a"), ts.count("/b"), ts.count("/c"); a != 1 || b != 1 || c != 1 {
		t.Fatalf("hits a=%d b=%d c=%d, want 1 each", a, b, c)
	}
	fetch("/b")
	if n := ts.count("/b"); n != 2 {
		t.Errorf("/b was not evicted: %d hits", n)
	}
	if size := f.cache.Len(); size != 2 {
		t.Errorf("cache holds %d entries, want 2", size)
	}
}

func TestFetchURLRules(t *testing.T) {
	t.Parallel()
	ts := newServer(t, false, serveProfile)
	port := ts.Listener.Addr().(*net.TCPAddr).Port
	loop := "http://127.0.0.1:" + strconv.Itoa(port) + "/.well-known/ucp"
	for _, tc := range []struct {
		url      string
		loopback bool // AllowInsecureLoopback
	}{
		{"", false},
		{"/.well-known/ucp", false},
		{"shop.example/.well-known/ucp", false},
		{"http://shop.example/.well-known/ucp", false},
		{"http://shop.example/.well-known/ucp", true},
		{"http://10.0.0.1/.well-known/ucp", true},
		{"http://127.0.0.1.nip.io/.well-known/ucp", true},
		{loop, false},
		{"ftp://shop.example/ucp", false},
		{"https:shop.example", false},
		{"https:///.well-known/ucp", false},
		{"https://user:pw@shop.example/.well-known/ucp", false},
		{"https://shop.example/.well-known/ucp#frag", false},
		{"https://shop.example/a b", false},
		{"https://shop.example/\x00", false},
		{"https://shop.example/" + strings.Repeat("a", maxURLLen), false},
		{"https://[::1/", false},
	} {
		f := &Fetcher{AllowInsecureLoopback: tc.loopback}
		_, err := f.Fetch(context.Background(), tc.url)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidProfileURL {
			t.Errorf("%q (loopback=%v): %v, want invalid_profile_url", tc.url, tc.loopback, err)
		} else if e.Status() != http.StatusBadRequest {
			t.Errorf("status %d", e.Status())
		}
	}
	if n := ts.total(); n != 0 {
		t.Fatalf("refused URLs reached the server %d times", n)
	}

	// Plain http on loopback, through the default client, in dev mode.
	for _, url := range []string{loop, "http://localhost:" + strconv.Itoa(port) + "/.well-known/ucp"} {
		f := &Fetcher{AllowInsecureLoopback: true}
		if _, err := f.Fetch(context.Background(), url); err != nil {
			t.Errorf("%s with AllowInsecureLoopback: %v", url, err)
		}
	}
}

func TestDefaultClientRefusesNonPublic(t *testing.T) {
	t.Parallel()
	ts := newServer(t, true, serveProfile)
	port := strconv.Itoa(ts.Listener.Addr().(*net.TCPAddr).Port)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			_, err := (&Fetcher{}).Fetch(context.Background(), "https://"+host+":"+port+"/.well-known/ucp")
			e := wantCode(t, err, CodeProfileUnreachable)
			var blocked *netguard.BlockedError
			if !errors.As(e, &blocked) || blocked.Class != netguard.ClassLoopback {
				t.Fatalf("not refused by the dial guard: %v", err)
			}
			// The caller is not told why (no map of private names).
			if strings.Contains(e.Content, "loopback") || strings.Contains(e.Content, "private") {
				t.Fatalf("content reveals the address class: %q", e.Content)
			}
			if n := ts.total(); n != 0 {
				t.Fatalf("server saw %d requests", n)
			}
		})
	}
	// Control: AllowInsecureLoopback gets the same URL past the guard, to
	// fail on the test server's untrusted certificate instead.
	_, err := (&Fetcher{AllowInsecureLoopback: true}).Fetch(context.Background(), "https://127.0.0.1:"+port+"/.well-known/ucp")
	e := wantCode(t, err, CodeProfileUnreachable)
	var blocked *netguard.BlockedError
	if errors.As(e, &blocked) {
		t.Fatalf("dial guard refused loopback despite AllowInsecureLoopback: %v", err)
	}
}

func TestNoRedirects(t *testing.T) {
	t.Parallel()
	ts := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	})
	orig := ts.Client()
	c := NoRedirects(orig)
	resp, err := c.Get(ts.URL + "/p")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || ts.count("/elsewhere") != 0 {
		t.Errorf("status %d, /elsewhere hits %d", resp.StatusCode, ts.count("/elsewhere"))
	}
	if orig.CheckRedirect != nil || c.Transport != orig.Transport {
		t.Error("NoRedirects changed its argument or dropped its transport")
	}
	if NoRedirects(nil).CheckRedirect == nil {
		t.Error("NoRedirects(nil) follows redirects")
	}
}

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{
		CodeInvalidProfileURL:        400,
		CodeProfileUnreachable:       424,
		CodeProfileMalformed:         422,
		CodeVersionUnsupported:       422,
		CodeCapabilitiesIncompatible: 200,
		"something_else":             500,
	} {
		if got := (&Error{Code: code}).Status(); got != want {
			t.Errorf("%s: status %d, want %d", code, got, want)
		}
	}
	inner := errors.New("dial tcp 10.0.0.1:443: refused")
	e := &Error{Code: CodeProfileUnreachable, Content: "could not fetch the profile", Err: inner}
	if !errors.Is(e, inner) || !strings.Contains(e.Error(), "profile_unreachable") || !strings.Contains(e.Error(), "could not fetch") {
		t.Errorf("Error() = %q", e.Error())
	}
}
