package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAS is a token endpoint speaking the bridge/AS exchange contract,
// written from RFC 8693 alone. Subjects starting with "good" are
// exchanged for "pt-<n>" (expires_in 3600); revoked or unknown subjects
// are invalid_grant.
type fakeAS struct {
	srv *httptest.Server
	id  string
	sec string

	mu       sync.Mutex
	requests []fakeExchange // every exchange request, in order
	revoked  map[string]bool
	issued   map[string]string // exchanged token -> subject
	n        int
	// hold, when set, is waited on before answering (concurrency tests).
	hold      chan struct{}
	expiresIn int
	answer    func(w http.ResponseWriter) bool // override; true when it answered
}

type fakeExchange struct {
	Form        map[string][]string
	User, Pass  string
	ContentType string
}

func newFakeAS(t *testing.T) *fakeAS {
	t.Helper()
	a := &fakeAS{id: "plat", sec: "ucpb_cs_secret", revoked: map[string]bool{}, issued: map[string]string{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": a.srv.URL, "token_endpoint": a.srv.URL + "/token", "authorization_endpoint": a.srv.URL + "/authorize",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
			"grant_types_supported": []string{"authorization_code", GrantTypeTokenExchange},
		})
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	user, pass, _ := r.BasicAuth()
	a.mu.Lock()
	a.requests = append(a.requests, fakeExchange{Form: r.PostForm, User: user, Pass: pass, ContentType: r.Header.Get("Content-Type")})
	hold, answer := a.hold, a.answer
	a.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if answer != nil && answer(w) {
		return
	}
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":%q,"error_description":"refused"}`, code)
	}
	if user != a.id || pass != a.sec {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != GrantTypeTokenExchange || r.PostForm.Get("subject_token_type") != TokenTypeAccessToken {
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	sub := r.PostForm.Get("subject_token")
	a.mu.Lock()
	bad := a.revoked[sub] || !strings.HasPrefix(sub, "good")
	a.n++
	pt := fmt.Sprintf("pt-%d", a.n)
	if !bad {
		a.issued[pt] = sub
	}
	exp := a.expiresIn
	a.mu.Unlock()
	if bad {
		fail(http.StatusBadRequest, "invalid_grant")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": pt, "issued_token_type": TokenTypeAccessToken,
		"token_type": "Bearer", "expires_in": exp, "scope": "purchase:complete", "refresh_token": "must-not-be-kept"})
}

func (a *fakeAS) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.requests)
}

func (a *fakeAS) revoke(subject string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[subject] = true
}

// valid reports whether pt is an exchanged token whose subject is alive.
func (a *fakeAS) valid(pt string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, ok := a.issued[pt]
	return ok && !a.revoked[sub]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestExchanger(t *testing.T, a *fakeAS, mod func(*ExchangeOptions)) *Exchanger {
	t.Helper()
	o := ExchangeOptions{TokenURL: a.srv.URL + "/token", ClientID: a.id, ClientSecret: a.sec, Resource: a.srv.URL}
	if mod != nil {
		mod(&o)
	}
	ex, err := NewExchanger(o)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestExchangeRequestFollowsTheContract(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, nil)
	tok, err := ex.Exchange(context.Background(), "good-subject")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "pt-1" || tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Expiry.IsZero() {
		t.Fatalf("token = %+v", tok)
	}
	req := a.requests[0]
	want := map[string]string{"grant_type": GrantTypeTokenExchange, "subject_token": "good-subject",
		"subject_token_type": TokenTypeAccessToken, "resource": a.srv.URL}
	for k, v := range want {
		if got := req.Form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"scope", "client_secret", "client_id", "refresh_token", "code"} {
		if _, ok := req.Form[k]; ok {
			t.Errorf("form carries %s", k)
		}
	}
	if req.User != a.id || req.Pass != a.sec {
		t.Errorf("basic auth = %q/%q", req.User, req.Pass)
	}
	if req.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", req.ContentType)
	}

	// A narrowing scope is sent when configured.
	ex2 := newTestExchanger(t, a, func(o *ExchangeOptions) { o.Scope = "orders:read" })
	if _, err := ex2.Exchange(context.Background(), "good-other"); err != nil {
		t.Fatal(err)
	}
	if got := a.requests[1].Form["scope"]; len(got) != 1 || got[0] != "orders:read" {
		t.Errorf("scope = %q", got)
	}
}

func TestExchangeCachedUntilExpiryMinusSkew(t *testing.T) {
	a := newFakeAS(t)
	c := &clock{t: time.Now()}
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.Now = c.now; o.Skew = time.Minute })
	ctx := context.Background()
	t1, _ := ex.Exchange(ctx, "good-a")
	t2, _ := ex.Exchange(ctx, "good-a")
	if a.count() != 1 || t1.AccessToken != t2.AccessToken {
		t.Fatalf("exchanges = %d, tokens %s %s", a.count(), t1.AccessToken, t2.AccessToken)
	}
	// Cached values are copies: a caller changing one changes nothing.
	t2.AccessToken = "changed"
	if t3, _ := ex.Exchange(ctx, "good-a"); t3.AccessToken != t1.AccessToken {
		t.Fatal("cache entry was modified through a returned token")
	}
	// Another subject is another exchange.
	if _, err := ex.Exchange(ctx, "good-b"); err != nil || a.count() != 2 {
		t.Fatalf("err %v, exchanges %d", err, a.count())
	}
	// 3600 s - 60 s skew: still cached at +3500 s, exchanged again at +3545 s.
	c.add(3500 * time.Second)
	ex.Exchange(ctx, "good-a")
	if a.count() != 2 {
		t.Fatalf("exchanged again before expiry-skew: %d", a.count())
	}
	c.add(45 * time.Second)
	if t4, _ := ex.Exchange(ctx, "good-a"); a.count() != 3 || t4.AccessToken == t1.AccessToken {
		t.Fatalf("not exchanged again within the skew: %d", a.count())
	}
}

func TestExchangeShortLivedOrUndatedTokensAreNotCached(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.Skew = time.Minute })
	a.expiresIn = 20 // less than the skew
	ex.Exchange(context.Background(), "good-a")
	ex.Exchange(context.Background(), "good-a")
	a.expiresIn = 0 // no expires_in at all
	ex.Exchange(context.Background(), "good-b")
	ex.Exchange(context.Background(), "good-b")
	if a.count() != 4 || ex.Len() != 0 {
		t.Fatalf("exchanges %d, cached %d", a.count(), ex.Len())
	}
}

func TestExchangeConcurrentCallersShareOneExchange(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, nil)
	const n = 32
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tok, err := ex.Exchange(context.Background(), "good-same")
			errs[i] = err
			if tok != nil {
				toks[i] = tok.AccessToken
			}
		})
	}
	// Wait for the one request to arrive, let the others pile up on it.
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(a.hold)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != "pt-1" {
			t.Fatalf("caller %d: %v %q", i, errs[i], toks[i])
		}
	}
	if a.count() != 1 {
		t.Fatalf("%d exchanges for one subject", a.count())
	}
}

func TestExchangeCallerCancelDoesNotCancelTheSharedExchange(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := ex.Exchange(ctx, "good-x"); done <- err }()
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	close(a.hold)
	// The exchange went on and was cached.
	for ex.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	if tok, err := ex.Exchange(context.Background(), "good-x"); err != nil || tok.AccessToken != "pt-1" || a.count() != 1 {
		t.Fatalf("%v %v %d", tok, err, a.count())
	}
}

func TestExchangeRefusalIsTypedAndBrieflyCached(t *testing.T) {
	a := newFakeAS(t)
	c := &clock{t: time.Now()}
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.Now = c.now; o.RefusalTTL = 10 * time.Second })
	_, err := ex.Exchange(context.Background(), "bad-token")
	xe, ok := errors.AsType[*ExchangeError](err)
	if !ok || !xe.TokenRefused() || xe.Code != "invalid_grant" || xe.Status != http.StatusBadRequest {
		t.Fatalf("err = %#v", err)
	}
	if strings.Contains(err.Error(), "bad-token") {
		t.Fatalf("error text carries the subject token: %v", err)
	}
	ex.Exchange(context.Background(), "bad-token")
	if a.count() != 1 {
		t.Fatalf("refusal not cached: %d exchanges", a.count())
	}
	c.add(11 * time.Second)
	ex.Exchange(context.Background(), "bad-token")
	if a.count() != 2 {
		t.Fatalf("refusal cached past RefusalTTL: %d exchanges", a.count())
	}
}

func TestExchangeOtherFailuresAreNotTheTokensFault(t *testing.T) {
	a := newFakeAS(t)
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter) bool
		code   string
	}{
		{"invalid_client", nil, "invalid_client"},
		{"server error html", func(w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
			return true
		}, ""},
		{"invalid_target", func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_target"}`))
			return true
		}, "invalid_target"},
		{"wrong issued_token_type", func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"x","token_type":"Bearer","issued_token_type":"urn:ietf:params:oauth:token-type:refresh_token","expires_in":60}`))
			return true
		}, ""},
		{"not bearer", func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"x","token_type":"N_A","expires_in":60}`))
			return true
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.mu.Lock()
			a.answer = tc.answer
			a.mu.Unlock()
			ex := newTestExchanger(t, a, nil)
			if tc.name == "invalid_client" {
				ex = newTestExchanger(t, a, func(o *ExchangeOptions) { o.ClientSecret = "wrong" })
			}
			before := a.count()
			_, err := ex.Exchange(context.Background(), "good-z")
			xe, ok := errors.AsType[*ExchangeError](err)
			if !ok || xe.TokenRefused() || xe.Code != tc.code {
				t.Fatalf("err = %#v", err)
			}
			ex.Exchange(context.Background(), "good-z")
			if a.count() != before+2 || ex.Len() != 0 {
				t.Fatalf("a failure that is not the token's was cached")
			}
		})
	}
	a.mu.Lock()
	a.answer = nil
	a.mu.Unlock()

	// Unreachable endpoint: a transport error, not a refusal.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	ex, _ := NewExchanger(ExchangeOptions{TokenURL: dead.URL + "/token", ClientID: "a", ClientSecret: "b"})
	_, err := ex.Exchange(context.Background(), "good-q")
	xe, ok := errors.AsType[*ExchangeError](err)
	if !ok || xe.TokenRefused() || xe.Err == nil || strings.Contains(err.Error(), "good-q") {
		t.Fatalf("err = %#v", err)
	}
}

func TestExchangeNeverFollowsRedirects(t *testing.T) {
	var hit atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	for _, hc := range []*http.Client{nil, {}} {
		ex, err := NewExchanger(ExchangeOptions{TokenURL: redir.URL + "/token", ClientID: "a", ClientSecret: "b", HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Exchange(context.Background(), "good-r"); err == nil {
			t.Fatal("a redirect was taken as a token")
		}
	}
	if hit.Load() != 0 {
		t.Fatalf("the redirect was followed with the client secret and subject token (%d)", hit.Load())
	}
}

func TestExchangeEvictAndBound(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxEntries = 2 })
	ctx := context.Background()
	ex.Exchange(ctx, "good-1")
	ex.Evict("good-1")
	ex.Exchange(ctx, "good-1")
	if a.count() != 2 {
		t.Fatalf("evicted token still served: %d", a.count())
	}
	ex.Exchange(ctx, "good-2")
	ex.Exchange(ctx, "good-3")
	if ex.Len() != 2 {
		t.Fatalf("cache holds %d entries, bound 2", ex.Len())
	}
	// good-1 was least recently used: it went.
	ex.Exchange(ctx, "good-1")
	if a.count() != 5 {
		t.Fatalf("exchanges %d", a.count())
	}
}

func TestExchangedBuyerRefreshEvicts(t *testing.T) {
	a := newFakeAS(t)
	ex := newTestExchanger(t, a, nil)
	ctx := context.Background()
	tok, _ := ex.Exchange(ctx, "good-b")
	b := &exchangedBuyer{ex: ex, subject: "good-b", tok: tok}
	// Still valid at the AS: the refresh exchanges again and gets a new token.
	t2, err := b.RefreshToken(ctx)
	if err != nil || t2.AccessToken == tok.AccessToken {
		t.Fatalf("%v %v", t2, err)
	}
	if cur, _ := b.Token(); cur.AccessToken != t2.AccessToken {
		t.Fatal("Token does not return the refreshed token")
	}
	// Revoked: the refresh fails with the refusal, and the next request is refused.
	a.revoke("good-b")
	_, err = b.RefreshToken(ctx)
	if xe, ok := errors.AsType[*ExchangeError](err); !ok || !xe.TokenRefused() {
		t.Fatalf("err = %v", err)
	}
	if _, err := ex.Exchange(ctx, "good-b"); err == nil {
		t.Fatal("revoked subject served from the cache")
	}
}

func TestNewExchangerValidates(t *testing.T) {
	for _, o := range []ExchangeOptions{
		{TokenURL: "", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "http://as.example.com/token", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "https://u:p@as.example.com/token", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "https://as.example.com/token", ClientID: "a"},
	} {
		if _, err := NewExchanger(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// BenchmarkExchangeCached is the per-request cost of the front's token
// check once a bearer's exchange is cached (hash, LRU lookup, copy).
func BenchmarkExchangeCached(b *testing.B) {
	a := &fakeAS{id: "plat", sec: "s", revoked: map[string]bool{}, issued: map[string]string{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", a.token)
	a.srv = httptest.NewServer(mux)
	defer a.srv.Close()
	ex, err := NewExchanger(ExchangeOptions{TokenURL: a.srv.URL + "/token", ClientID: a.id, ClientSecret: a.sec})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	subject := "good-" + strings.Repeat("x", 40)
	if _, err := ex.Exchange(ctx, subject); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ex.Exchange(ctx, subject); err != nil {
				b.Fatal(err)
			}
		}
	})
	if a.count() != 1 {
		b.Fatalf("%d exchanges", a.count())
	}
}

// TestExchangeMaxInFlight: distinct bearers beyond MaxInFlight wait for a
// slot instead of all hitting the token endpoint at once.
func TestExchangeMaxInFlight(t *testing.T) {
	a := newFakeAS(t)
	a.hold = make(chan struct{})
	ex := newTestExchanger(t, a, func(o *ExchangeOptions) { o.MaxInFlight = 1 })
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { _, errs[i] = ex.Exchange(context.Background(), fmt.Sprintf("good-%d", i)) })
	}
	for a.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := a.count(); n != 1 {
		t.Fatalf("%d exchanges in flight, bound 1", n)
	}
	close(a.hold)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if a.count() != 3 {
		t.Fatalf("%d exchanges", a.count())
	}
}
