package cimd

import (
	"context"
	"encoding/json"
	"errors"
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

// cimdRequestID rebuilds the client id a request was made for, so handlers can
// serve a document whose client_id matches without knowing the port up front.
func cimdRequestID(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// cimdDoc returns a valid document for id, changed by edits.
func cimdDoc(t *testing.T, id string, edits ...func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"client_id":      id,
		"client_name":    "Example Agent",
		"client_uri":     "https://agent.example/",
		"logo_uri":       "https://agent.example/logo.png",
		"redirect_uris":  []string{"http://127.0.0.1/callback", "http://localhost/callback"},
		"grant_types":    []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
		"scope":          "openid checkout",
	}
	for _, e := range edits {
		e(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type cimdHandler func(w http.ResponseWriter, r *http.Request, id string)

// cimdServe starts a plain-http loopback server and returns the client id of
// its /oauth/client.json document and a counter of requests it received.
func cimdServe(t *testing.T, h cimdHandler) (string, *atomic.Int32) {
	t.Helper()
	hits := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r, cimdRequestID(r))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/oauth/client.json", hits
}

func cimdServeDoc(t *testing.T, edits ...func(m map[string]any)) (string, *atomic.Int32) {
	t.Helper()
	return cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(cimdDoc(t, id, edits...))
	})
}

func newLoopbackFetcher(opts *Options) *Fetcher {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.AllowLoopback = true
	return NewFetcher(&o)
}

// cimdInProcess returns a fetcher whose requests h serves in process (no
// connection, no dial guard), and a counter of the requests h received. Cache and singleflight tests use it inside a synctest bubble,
// where a real connection does not fit: a goroutine waiting on the network
// is not durably blocked, so the bubble's clock would not move and
// synctest.Wait would not return.
func cimdInProcess(opts *Options, h cimdHandler) (*Fetcher, *atomic.Int32) {
	hits := new(atomic.Int32)
	f := newLoopbackFetcher(opts)
	f.client.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		hits.Add(1)
		w := httptest.NewRecorder()
		h(w, r, r.URL.String())
		return w.Result(), nil
	})
	return f, hits
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cimdInProcessID is a client id for cimdInProcess: any https URL will do.
const cimdInProcessID = "https://agent.example/oauth/client.json"

// wantError asserts err is a *Error whose Reason contains want.
func wantError(t *testing.T, err error, want string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", want)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	if !strings.Contains(ce.Reason, want) {
		t.Fatalf("reason %q does not mention %q (error: %v)", ce.Reason, want, err)
	}
	return ce
}

func TestCIMDDefaults(t *testing.T) {
	t.Parallel()
	f := NewFetcher(nil)
	if f.timeout != 5*time.Second || f.maxBytes != 5120 || f.ttl != 600*time.Second || f.now == nil || f.allowLoopback {
		t.Fatalf("defaults: timeout %v maxBytes %d ttl %v allowLoopback %v", f.timeout, f.maxBytes, f.ttl, f.allowLoopback)
	}
	tr := f.client.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("transport must not use a proxy")
	}
	if f.client.CheckRedirect == nil {
		t.Error("client must refuse redirects")
	}
}

func TestCIMDFetchValid(t *testing.T) {
	t.Parallel()
	var gotAccept, gotMethod atomic.Value
	id, hits := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		gotAccept.Store(r.Header.Get("Accept"))
		gotMethod.Store(r.Method)
		w.Write(cimdDoc(t, id))
	})
	f := newLoopbackFetcher(nil)
	if !f.IsClientID(id) {
		t.Fatalf("IsClientID(%q) = false", id)
	}
	c, err := f.Fetch(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != id || c.ClientName != "Example Agent" || c.ClientURI != "https://agent.example/" ||
		c.LogoURI != "https://agent.example/logo.png" || c.Scope != "openid checkout" {
		t.Errorf("fields: %+v", c)
	}
	if len(c.RedirectURIs) != 2 || c.RedirectURIs[1] != "http://localhost/callback" {
		t.Errorf("redirect_uris: %q", c.RedirectURIs)
	}
	if len(c.GrantTypes) != 2 || len(c.ResponseTypes) != 1 || c.ResponseTypes[0] != "code" {
		t.Errorf("grant/response types: %q %q", c.GrantTypes, c.ResponseTypes)
	}
	if c.TokenEndpointAuthMethod != "none" {
		t.Errorf("absent token_endpoint_auth_method read as %q, want none", c.TokenEndpointAuthMethod)
	}
	if gotAccept.Load() != "application/json" || gotMethod.Load() != http.MethodGet {
		t.Errorf("request: %v Accept %v", gotMethod.Load(), gotAccept.Load())
	}

	// Both the fetching path and the cache hit hand out copies, so a caller
	// cannot corrupt the cache.
	for range 2 {
		c.RedirectURIs[0] = "https://evil.example/cb"
		c.ClientName = "Evil"
		if c, err = f.Fetch(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if c.RedirectURIs[0] != "http://127.0.0.1/callback" || c.ClientName != "Example Agent" {
			t.Fatalf("cached document was modified through a returned value: %+v", c)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

// TestCIMDCacheHitAndTTLExpiry runs in a synctest bubble: the fetcher's
// clock is the bubble's (time.Now), and time.Sleep moves it.
func TestCIMDCacheHitAndTTLExpiry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, hits := cimdInProcess(&Options{TTL: time.Minute}, func(w http.ResponseWriter, r *http.Request, id string) {
			w.Write(cimdDoc(t, id))
		})
		id := cimdInProcessID
		ctx := context.Background()

		for range 3 {
			if _, err := f.Fetch(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if n := hits.Load(); n != 1 {
			t.Fatalf("after 3 fetches server saw %d requests, want 1 (cache hit)", n)
		}
		time.Sleep(59 * time.Second)
		if _, err := f.Fetch(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := hits.Load(); n != 1 {
			t.Fatalf("within TTL server saw %d requests, want 1", n)
		}
		time.Sleep(time.Second)
		if _, err := f.Fetch(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := hits.Load(); n != 2 {
			t.Fatalf("after TTL server saw %d requests, want 2 (refetch)", n)
		}
	})
}

func TestErrorsNotCached(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	id, hits := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 2:
			w.Write(cimdDoc(t, id, func(m map[string]any) { m["client_secret"] = "s3cret" }))
		default:
			w.Write(cimdDoc(t, id))
		}
	})
	f := newLoopbackFetcher(nil)
	ctx := context.Background()
	if _, err := f.Fetch(ctx, id); err == nil {
		t.Fatal("first fetch (HTTP 500) succeeded")
	}
	if _, err := f.Fetch(ctx, id); err == nil {
		t.Fatal("second fetch (invalid document) succeeded")
	}
	if _, err := f.Fetch(ctx, id); err != nil {
		t.Fatalf("third fetch: %v (an earlier failure was cached?)", err)
	}
	if got := hits.Load(); got != 3 {
		t.Fatalf("server saw %d requests, want 3", got)
	}
}

func TestCIMDRedirectRefused(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int32
	id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		if r.URL.Path == "/moved.json" {
			targetHits.Add(1)
			// A document that would be accepted if the redirect were followed.
			w.Write(cimdDoc(t, strings.Replace(id, "/moved.json", "/oauth/client.json", 1)))
			return
		}
		http.Redirect(w, r, "/moved.json", http.StatusFound)
	})
	f := newLoopbackFetcher(nil)
	_, err := f.Fetch(context.Background(), id)
	wantError(t, err, "redirect")
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target was requested %d times", n)
	}
}

func TestCIMDNon200Refused(t *testing.T) {
	t.Parallel()
	for _, status := range []int{201, 203, 204, 304, 400, 404, 500} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
				w.WriteHeader(status)
				w.Write(cimdDoc(t, id)) // a valid body must not rescue a wrong status
			})
			_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			wantError(t, err, "HTTP status")
		})
	}
}

func TestCIMDBodySizeCap(t *testing.T) {
	t.Parallel()
	const limit = 5120 // the default
	for _, tc := range []struct {
		name          string
		size          int
		contentLength bool
		wantErr       bool
	}{
		{"exactly limit, chunked", limit, false, false},
		{"exactly limit, content-length", limit, true, false},
		{"limit+1, chunked", limit + 1, false, true},
		{"limit+1, content-length", limit + 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
				doc := cimdDoc(t, id)
				// Trailing whitespace keeps the JSON valid at any size.
				body := append(doc, strings.Repeat(" ", tc.size-len(doc))...)
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.Write(body)
					return
				}
				w.Write(body[:10])
				w.(http.Flusher).Flush() // forces chunked encoding: no Content-Length
				w.Write(body[10:])
			})
			c, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			if tc.wantErr {
				wantError(t, err, "document too large")
				return
			}
			if err != nil || c.ClientID != id {
				t.Fatalf("document of exactly %d bytes: %v", tc.size, err)
			}
		})
	}
}

func TestCIMDEndlessBodyStopsAtCap(t *testing.T) {
	t.Parallel()
	// If the reader were not capped, this would run until the timeout and
	// report a timeout instead.
	id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		chunk := []byte(strings.Repeat(" ", 4096))
		w.Write([]byte("{"))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if r.Context().Err() != nil {
				return
			}
		}
	})
	f := newLoopbackFetcher(&Options{Timeout: 2 * time.Second})
	_, err := f.Fetch(context.Background(), id)
	wantError(t, err, "document too large")
}

func TestCIMDTimeout(t *testing.T) {
	t.Parallel()
	id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
		<-r.Context().Done()
	})
	f := newLoopbackFetcher(&Options{Timeout: 30 * time.Millisecond})
	start := time.Now()
	_, err := f.Fetch(context.Background(), id)
	wantError(t, err, "timed out")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("fetch took %v despite a 30ms timeout", d)
	}
}

func TestClientIDMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(id string) any
	}{
		{"trailing slash", func(id string) any { return id + "/" }},
		{"missing trailing part", func(id string) any { return strings.TrimSuffix(id, ".json") }},
		{"upper-case scheme", func(id string) any { return "HTTP" + strings.TrimPrefix(id, "http") }},
		{"localhost for 127.0.0.1", func(id string) any { return strings.Replace(id, "127.0.0.1", "localhost", 1) }},
		{"query added", func(id string) any { return id + "?v=1" }},
		{"other client", func(string) any { return "https://other.example/oauth/client.json" }},
		{"empty", func(string) any { return "" }},
		{"null", func(string) any { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServeDoc(t, func(m map[string]any) { m["client_id"] = tc.edit(m["client_id"].(string)) })
			_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			wantError(t, err, "does not match")
		})
	}
	t.Run("absent", func(t *testing.T) {
		t.Parallel()
		id, _ := cimdServeDoc(t, func(m map[string]any) { delete(m, "client_id") })
		_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
		wantError(t, err, "does not match")
	})
}

func TestCIMDRedirectURIsRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"absent", func(m map[string]any) { delete(m, "redirect_uris") }, "redirect_uris"},
		{"empty", func(m map[string]any) { m["redirect_uris"] = []string{} }, "redirect_uris"},
		{"null", func(m map[string]any) { m["redirect_uris"] = nil }, "redirect_uris"},
		{"string not array", func(m map[string]any) { m["redirect_uris"] = "https://a.example/cb" }, "wrong type"},
		{"relative path", func(m map[string]any) { m["redirect_uris"] = []string{"/callback"} }, "not an absolute URI"},
		{"empty entry", func(m map[string]any) { m["redirect_uris"] = []string{"https://a.example/cb", ""} }, "not an absolute URI"},
		{"fragment", func(m map[string]any) { m["redirect_uris"] = []string{"https://a.example/cb#x"} }, "not an absolute URI"},
		{"https without host", func(m map[string]any) { m["redirect_uris"] = []string{"https:///cb"} }, "not an absolute URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServeDoc(t, tc.edit)
			_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			wantError(t, err, tc.want)
		})
	}
	t.Run("private-use scheme accepted", func(t *testing.T) {
		t.Parallel()
		id, _ := cimdServeDoc(t, func(m map[string]any) { m["redirect_uris"] = []string{"com.example.app:/oauth/cb"} })
		if _, err := newLoopbackFetcher(nil).Fetch(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCIMDSharedSecretsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string // "" means accepted
	}{
		{"client_secret_post", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_post" }, "shared secret"},
		{"client_secret_basic", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" }, "shared secret"},
		{"client_secret_jwt", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" }, "shared secret"},
		{"unknown method", func(m map[string]any) { m["token_endpoint_auth_method"] = "tls_client_auth" }, "not supported"},
		{"client_secret member", func(m map[string]any) { m["client_secret"] = "s3cret" }, `"client_secret"`},
		{"empty client_secret member", func(m map[string]any) { m["client_secret"] = "" }, `"client_secret"`},
		{"client_secret_expires_at member", func(m map[string]any) { m["client_secret_expires_at"] = 0 }, "client_secret_expires_at"},
		{"none", func(m map[string]any) { m["token_endpoint_auth_method"] = "none" }, ""},
		{"private_key_jwt", func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServeDoc(t, tc.edit)
			c, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.TokenEndpointAuthMethod != tc.name {
					t.Fatalf("token_endpoint_auth_method = %q, want %q", c.TokenEndpointAuthMethod, tc.name)
				}
				return
			}
			wantError(t, err, tc.want)
		})
	}
}

func TestCIMDDocumentMustBeOneJSONObject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body func(id string) string
	}{
		{"array", func(id string) string { return `[{"client_id":"` + id + `"}]` }},
		{"empty array", func(string) string { return `[]` }},
		{"string", func(id string) string { return `"` + id + `"` }},
		{"null", func(string) string { return `null` }},
		{"not json", func(string) string { return `client_id=x` }},
		{"truncated", func(id string) string { return `{"client_id":"` + id + `"` }},
		{"trailing data", func(id string) string {
			return `{"client_id":"` + id + `","redirect_uris":["https://a.example/cb"]} {}`
		}},
		{"duplicate client_id", func(id string) string {
			return `{"client_id":"https://evil.example/c.json","redirect_uris":["https://a.example/cb"],"client_id":"` + id + `"}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := cimdServe(t, func(w http.ResponseWriter, r *http.Request, id string) {
				w.Write([]byte(tc.body(id)))
			})
			_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
			wantError(t, err, "not a valid JSON object")
		})
	}

	// encoding/json matches struct fields case-insensitively; member names
	// must match exactly so a look-alike member cannot override client_id.
	t.Run("case-variant member ignored", func(t *testing.T) {
		t.Parallel()
		id, _ := cimdServeDoc(t, func(m map[string]any) {
			m["Client_ID"] = "https://evil.example/c.json"
			m["Redirect_URIs"] = []string{"https://evil.example/cb"}
		})
		c, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.ClientID != id || c.RedirectURIs[0] != "http://127.0.0.1/callback" {
			t.Fatalf("case-variant members were used: %+v", c)
		}
	})
}

func TestCIMDURLShapes(t *testing.T) {
	t.Parallel()
	long := "https://app.example/" + strings.Repeat("a", maxURLLen-len("https://app.example/"))
	for _, tc := range []struct {
		name          string
		id            string
		allowLoopback bool
		want          string // "" means the shape is accepted
	}{
		{"good", "https://app.example/oauth/client.json", false, ""},
		{"good with port", "https://app.example:8443/client.json", false, ""},
		{"good with query", "https://app.example/client.json?v=1", false, ""},
		{"good at max length", long, false, ""},
		{"http loopback allowed", "http://127.0.0.1:8080/client.json", true, ""},
		{"http localhost allowed", "http://localhost/client.json", true, ""},
		{"http [::1] allowed", "http://[::1]:9/client.json", true, ""},

		{"registered id", "my-registered-client", false, "https"},
		{"empty", "", false, "https"},
		{"too long", long + "a", false, "longer than"},
		{"no path", "https://app.example", false, "must have a path"},
		{"root path", "https://app.example/", false, "must have a path"},
		{"root path with query", "https://app.example/?c=1", false, "must have a path"},
		{"fragment", "https://app.example/client.json#frag", false, "fragment"},
		{"empty fragment", "https://app.example/client.json#", false, "fragment"},
		{"userinfo", "https://user:pw@app.example/client.json", false, "user information"},
		{"user only", "https://user@app.example/client.json", false, "user information"},
		{"dot segment", "https://app.example/./client.json", false, `"."`},
		{"dotdot segment", "https://app.example/oauth/../client.json", false, `".."`},
		{"trailing dotdot", "https://app.example/oauth/..", false, `".."`},
		{"encoded dotdot", "https://app.example/oauth/%2e%2E/client.json", false, `".."`},
		{"ftp scheme", "ftp://app.example/client.json", false, "https"},
		{"http non-loopback", "http://app.example/client.json", false, "https"},
		{"http non-loopback with AllowLoopback", "http://app.example/client.json", true, "https"},
		{"http private IP with AllowLoopback", "http://10.0.0.1/client.json", true, "https"},
		{"http loopback without AllowLoopback", "http://127.0.0.1:8080/client.json", false, "https"},
		{"opaque", "https:app.example/client.json", false, "host"},
		{"no host", "https:///client.json", false, "host"},
		{"space", "https://app.example/a b.json", false, "spaces"},
		{"non-ASCII", "https://app.exämple/client.json", false, "non-ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFetcher(&Options{AllowLoopback: tc.allowLoopback})
			if got := f.IsClientID(tc.id); got != (tc.want == "") {
				t.Fatalf("IsClientID(%q) = %v", tc.id, got)
			}
			if tc.want == "" {
				return
			}
			// Shape errors are decided before any network traffic (none of
			// these hosts exist).
			_, err := f.Fetch(context.Background(), tc.id)
			wantError(t, err, tc.want)
		})
	}
}

func TestCIMDLoopbackRefusedWithoutAllowLoopback(t *testing.T) {
	t.Parallel()
	t.Run("http refused by URL rule", func(t *testing.T) {
		id, hits := cimdServeDoc(t)
		_, err := NewFetcher(nil).Fetch(context.Background(), id)
		wantError(t, err, "must use https")
		if n := hits.Load(); n != 0 {
			t.Fatalf("server saw %d requests", n)
		}
	})

	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(cimdDoc(t, cimdRequestID(r)))
	}))
	// The AllowLoopback case below fails the TLS handshake on purpose.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run("https "+host+" refused at dial time", func(t *testing.T) {
			id := "https://" + host + ":" + strconv.Itoa(port) + "/oauth/client.json"
			f := NewFetcher(nil)
			if !f.IsClientID(id) {
				t.Fatalf("%s should pass the URL rule so the dial guard is what refuses it", id)
			}
			_, err := f.Fetch(context.Background(), id)
			// The reason is shown to whoever chose the URL: it must
			// not say which address class the host resolved to.
			ce := wantError(t, err, "could not fetch the client metadata document")
			if strings.Contains(ce.Reason, "loopback") || strings.Contains(ce.Reason, "address") {
				t.Fatalf("reason reveals the address class: %q", ce.Reason)
			}
			var blocked *netguard.BlockedError
			if !errors.As(ce, &blocked) || blocked.Class != netguard.ClassLoopback {
				t.Fatalf("error chain lacks the dial guard's error: %v", err)
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("server saw %d requests", n)
			}
		})
	}

	// Control: with AllowLoopback the same URL gets past the dial guard and
	// fails later, on the test server's untrusted certificate.
	t.Run("AllowLoopback passes the guard", func(t *testing.T) {
		id := "https://127.0.0.1:" + strconv.Itoa(port) + "/oauth/client.json"
		_, err := newLoopbackFetcher(nil).Fetch(context.Background(), id)
		ce := wantError(t, err, "could not fetch")
		var blocked *netguard.BlockedError
		if errors.As(ce, &blocked) {
			t.Fatalf("dial guard refused loopback despite AllowLoopback: %v", err)
		}
	})
}

// cimdJoined reports how many Fetch calls are waiting on the in-flight fetch
// of id.
func (f *Fetcher) cimdJoined(id string) int { return f.cache.Joined(id) }

// cimdInProcessHeld is cimdInProcess serving valid documents, each held
// until release is called. The release also runs at cleanup, so a failing
// test does not leave the bubble deadlocked on a blocked handler.
func cimdInProcessHeld(t *testing.T, opts *Options) (f *Fetcher, hits *atomic.Int32, release func()) {
	t.Helper()
	ch := make(chan struct{})
	release = sync.OnceFunc(func() { close(ch) })
	f, hits = cimdInProcess(opts, func(w http.ResponseWriter, r *http.Request, id string) {
		<-ch
		w.Write(cimdDoc(t, id))
	})
	t.Cleanup(release)
	return f, hits, release
}

// TestCIMDConcurrentFetchSharesOneRequest: in a synctest bubble, Wait
// returns once every caller is blocked, joined to the one fetch or (if
// they did not share it) in a request of its own.
func TestCIMDConcurrentFetchSharesOneRequest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, hits, release := cimdInProcessHeld(t, nil)
		id := cimdInProcessID

		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				c, err := f.Fetch(context.Background(), id)
				if err == nil && c.ClientID != id {
					err = errors.New("wrong document")
				}
				errs <- err
			})
		}
		synctest.Wait()
		if got, joined := hits.Load(), f.cimdJoined(id); got != 1 || joined != n {
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
		if got := hits.Load(); got != 1 {
			t.Fatalf("%d concurrent fetches made %d requests, want 1", n, got)
		}
	})
}

func TestCIMDCanceledWaiterDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, hits, release := cimdInProcessHeld(t, nil)
		id := cimdInProcessID

		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := f.Fetch(ctx, id)
			first <- err
		}()
		synctest.Wait()
		if hits.Load() != 1 {
			t.Fatal("request never reached the server")
		}
		second := make(chan error, 1)
		go func() {
			_, err := f.Fetch(context.Background(), id)
			second <- err
		}()
		synctest.Wait()
		if f.cimdJoined(id) != 2 {
			t.Fatal("second Fetch did not join the in-flight fetch")
		}
		cancel()
		select {
		case err := <-first:
			wantError(t, err, "canceled")
		case <-time.After(time.Minute): // fake time: fires once all else blocks
			t.Fatal("the canceled caller is still waiting")
		}
		release()
		if err := <-second; err != nil {
			t.Fatalf("second caller failed after the first canceled: %v", err)
		}
		if got := hits.Load(); got != 1 {
			t.Fatalf("server saw %d requests, want 1", got)
		}
	})
}

func TestCIMDCacheBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, hits := cimdInProcess(&Options{TTL: 10 * time.Second}, func(w http.ResponseWriter, r *http.Request, id string) {
			w.Write(cimdDoc(t, id))
		})
		f.cache.MaxEntries = 3
		const base = "https://agent.example/"
		fetch := func(name string) {
			t.Helper()
			if _, err := f.Fetch(context.Background(), base+name+".json"); err != nil {
				t.Fatal(err)
			}
		}
		cached := func(name string) bool { return f.cache.Cached(base + name + ".json") }

		for _, name := range []string{"a", "b", "c"} {
			fetch(name)
			time.Sleep(time.Second)
		}
		fetch("d") // full: evicts the oldest, a
		if cached("a") || !cached("b") || !cached("c") || !cached("d") {
			t.Fatalf("after d: a=%v b=%v c=%v d=%v, want only a evicted", cached("a"), cached("b"), cached("c"), cached("d"))
		}
		time.Sleep(9 * time.Second) // b and c expire; d does not
		fetch("e")
		if cached("b") || cached("c") || !cached("d") || !cached("e") {
			t.Fatalf("after e: b=%v c=%v d=%v e=%v, want expired b and c swept", cached("b"), cached("c"), cached("d"), cached("e"))
		}
		if hits.Load() != 5 {
			t.Fatalf("server saw %d requests, want 5", hits.Load())
		}
	})
}

func TestErrorWrapping(t *testing.T) {
	t.Parallel()
	inner := errors.New("inner")
	e := &Error{Reason: "refused", Err: inner}
	if !errors.Is(e, inner) || e.Error() != "refused: inner" {
		t.Fatalf("Error() = %q, Is(inner) = %v", e.Error(), errors.Is(e, inner))
	}
	if (&Error{Reason: "refused"}).Error() != "refused" {
		t.Fatal("Error() without Err")
	}
}

// TestCIMDFetchesInFlightBounded: beyond the in-flight bound a fetch of
// another client id fails at once, without a request.
func TestCIMDFetchesInFlightBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, hits, release := cimdInProcessHeld(t, nil)
		f.cache.MaxInFlight = 1
		id := cimdInProcessID
		done := make(chan error, 1)
		go func() { _, err := f.Fetch(context.Background(), id); done <- err }()
		synctest.Wait()
		if f.cimdJoined(id) != 1 {
			t.Fatal("first fetch did not start")
		}
		// Bounded, so a missing bound fails here instead of deadlocking
		// the bubble.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		other := strings.Replace(id, ".json", "-other.json", 1)
		_, err := f.Fetch(ctx, other)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "too many") {
			t.Fatalf("%v", err)
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := hits.Load(); got != 1 {
			t.Fatalf("server saw %d requests, want 1", got)
		}
	})
}
