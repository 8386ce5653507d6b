package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// fakeAS is a token endpoint that rotates refresh tokens: rt-N buys
// at-(N+1) and rt-(N+1); any other refresh token is invalid_grant.
type fakeAS struct {
	*httptest.Server
	refreshes atomic.Int32
	gate      chan struct{} // when set, each refresh waits for it
	fail      atomic.Bool   // answer invalid_grant
	mu        sync.Mutex
	seen      []string // refresh tokens presented
}

func newFakeAS(t *testing.T) *fakeAS {
	as := &fakeAS{}
	as.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" || r.FormValue("grant_type") != "refresh_token" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		as.refreshes.Add(1)
		if as.gate != nil {
			<-as.gate
		}
		rt := r.FormValue("refresh_token")
		as.mu.Lock()
		as.seen = append(as.seen, rt)
		as.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		var n int
		if _, err := fmt.Sscanf(rt, "rt-%d", &n); err != nil || as.fail.Load() {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"refresh token reused"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", n+1), "token_type": "Bearer",
			"refresh_token": fmt.Sprintf("rt-%d", n+1), "expires_in": 3600})
	}))
	t.Cleanup(as.Close)
	return as
}

func (as *fakeAS) conf() *oauth2.Config {
	return &oauth2.Config{ClientID: "agent", Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
}

func expired() time.Time { return time.Now().Add(-time.Minute) }

func newSource(t *testing.T, as *fakeAS, store TokenStore, opts *BuyerTokenOptions) *BuyerTokenSource {
	t.Helper()
	s, err := NewBuyerTokenSource(t.Context(), as.conf(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuyerTokenRotationPersisted(t *testing.T) {
	as := newFakeAS(t)
	store := &FileTokenStore{Path: filepath.Join(t.TempDir(), "buyer.json")}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
	s := newSource(t, as, store, &BuyerTokenOptions{ForcedRefreshWindow: -1})
	for i := 1; i <= 3; i++ {
		tok, err := s.RefreshToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("at-%d", i); tok.AccessToken != want {
			t.Fatalf("access token %q, want %q", tok.AccessToken, want)
		}
		saved, _ := store.Load(t.Context())
		if want := fmt.Sprintf("rt-%d", i); saved.RefreshToken != want || saved.AccessToken != tok.AccessToken {
			t.Fatalf("stored %+v, want refresh token %s saved before the access token was returned", saved, want)
		}
	}
	// Each rotated refresh token was spent exactly once, in order.
	if fmt.Sprint(as.seen) != "[rt-0 rt-1 rt-2]" {
		t.Fatalf("refresh tokens presented: %v", as.seen)
	}
	// A source started from the store carries on from the last rotation.
	s2 := newSource(t, as, store, nil)
	if tok, err := s2.Token(); err != nil || tok.AccessToken != "at-3" || as.refreshes.Load() != 3 {
		t.Fatalf("reloaded source: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
}

func TestBuyerTokenRefreshOnExpiry(t *testing.T) {
	as := newFakeAS(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	exp := now.Add(time.Hour)
	store := &MemoryTokenStore{}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: exp})
	s := newSource(t, as, store, &BuyerTokenOptions{Now: clock, EarlyExpiry: 30 * time.Second})
	if tok, err := s.Token(); err != nil || tok.AccessToken != "at-0" || as.refreshes.Load() != 0 {
		t.Fatalf("valid token: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
	mu.Lock()
	now = exp.Add(-31 * time.Second)
	mu.Unlock()
	if tok, _ := s.Token(); tok.AccessToken != "at-0" || as.refreshes.Load() != 0 {
		t.Fatalf("outside the margin: %v, %d refreshes", tok, as.refreshes.Load())
	}
	mu.Lock()
	now = exp.Add(-29 * time.Second) // inside the early margin
	mu.Unlock()
	tok, err := s.Token()
	if err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("inside the margin: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
	mu.Lock()
	now = time.Now() // x/oauth2 dates the new token by the real clock
	mu.Unlock()
	if tok, _ := s.Token(); tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("fresh token refreshed again: %v, %d", tok, as.refreshes.Load())
	}
}

func TestBuyerTokenRefreshTokenForces(t *testing.T) {
	as := newFakeAS(t)
	store := &MemoryTokenStore{}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newSource(t, as, store, &BuyerTokenOptions{Now: clock})
	tok, err := s.RefreshToken(t.Context())
	if err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("forced refresh: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
	if tok, _ := s.Token(); tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("after a forced refresh: %v, %d", tok, as.refreshes.Load())
	}
	// A second caller rejected for at-0 asks just after: it gets at-1
	// without another refresh.
	if tok, err := s.RefreshToken(t.Context()); err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("forced again within the window: %v %v, %d", tok, err, as.refreshes.Load())
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	if tok, err := s.RefreshToken(t.Context()); err != nil || tok.AccessToken != "at-2" || as.refreshes.Load() != 2 {
		t.Fatalf("forced after the window: %v %v, %d", tok, err, as.refreshes.Load())
	}
}

func TestBuyerTokenConcurrentCallersShareOneRefresh(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprint("force=", force), func(t *testing.T) {
			as := newFakeAS(t)
			as.gate = make(chan struct{})
			store := &MemoryTokenStore{}
			store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
			s := newSource(t, as, store, nil)
			const n = 32
			var wg sync.WaitGroup
			toks := make(chan string, n)
			var started sync.WaitGroup
			started.Add(n)
			for range n {
				wg.Go(func() {
					started.Done()
					var tok *oauth2.Token
					var err error
					if force {
						tok, err = s.RefreshToken(context.Background())
					} else {
						tok, err = s.Token()
					}
					if err != nil {
						t.Error(err)
						return
					}
					toks <- tok.AccessToken
				})
			}
			started.Wait()
			// Let every caller reach the source before the one refresh ends.
			for as.refreshes.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			close(as.gate)
			wg.Wait()
			close(toks)
			for tok := range toks {
				if tok != "at-1" {
					t.Errorf("caller got %q", tok)
				}
			}
			if got := as.refreshes.Load(); got != 1 {
				t.Fatalf("%d refresh requests for %d concurrent callers, want 1", got, n)
			}
		})
	}
}

func TestBuyerTokenFailedRefreshTyped(t *testing.T) {
	as := newFakeAS(t)
	as.fail.Store(true)
	store := &MemoryTokenStore{}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
	s := newSource(t, as, store, nil)
	for i := 1; i <= 2; i++ {
		_, err := s.Token()
		var re *RefreshError
		var oe *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Code() != "invalid_grant" || !re.SignInRequired() || !errors.As(err, &oe) || oe.ErrorCode != "invalid_grant" {
			t.Fatalf("err %v (%T), want a *RefreshError wrapping invalid_grant", err, err)
		}
		// One request per call: no retry loop.
		if got := as.refreshes.Load(); got != int32(i) {
			t.Fatalf("%d refresh requests after %d calls", got, i)
		}
	}
	if saved, _ := store.Load(t.Context()); saved.RefreshToken != "rt-0" {
		t.Fatalf("a failed refresh changed the store: %+v", saved)
	}
}

func TestBuyerTokenNoRefreshToken(t *testing.T) {
	as := newFakeAS(t)
	store := &MemoryTokenStore{}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", Expiry: expired()})
	s := newSource(t, as, store, nil)
	_, err := s.Token()
	var re *RefreshError
	if !errors.As(err, &re) || !re.SignInRequired() || as.refreshes.Load() != 0 {
		t.Fatalf("err %v, %d requests", err, as.refreshes.Load())
	}
	if _, err := NewBuyerTokenSource(t.Context(), as.conf(), &MemoryTokenStore{}, nil); !errors.Is(err, ErrNoStoredToken) {
		t.Fatalf("empty store: %v", err)
	}
}

// failingStore refuses saves while fail is set.
type failingStore struct {
	MemoryTokenStore
	fail atomic.Bool
}

func (f *failingStore) Save(ctx context.Context, tok *oauth2.Token) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.MemoryTokenStore.Save(ctx, tok)
}

func TestBuyerTokenSaveFailureKeepsRotatedToken(t *testing.T) {
	as := newFakeAS(t)
	store := &failingStore{}
	store.MemoryTokenStore.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
	s := newSource(t, as, store, nil)
	store.fail.Store(true)
	_, err := s.Token()
	var re *RefreshError
	if !errors.As(err, &re) || re.SignInRequired() {
		t.Fatalf("save failure: %v", err)
	}
	// The refresh token rt-0 is spent: the next call saves rt-1 rather
	// than refreshing again.
	store.fail.Store(false)
	tok, err := s.Token()
	if err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("after the store recovered: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
	if saved, _ := store.Load(t.Context()); saved.RefreshToken != "rt-1" {
		t.Fatalf("stored %+v", saved)
	}
}

func TestBuyerTokenSharedStoreAdoptsOtherRotation(t *testing.T) {
	as := newFakeAS(t)
	store := &FileTokenStore{Path: filepath.Join(t.TempDir(), "buyer.json")}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
	a, b := newSource(t, as, store, nil), newSource(t, as, store, nil)
	if tok, err := a.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("a: %v %v", tok, err)
	}
	// b still holds rt-0, which the server has rotated away; it must take
	// a's token from the store, not present rt-0 again.
	if tok, err := b.Token(); err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("b: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
}

func TestBuyerTokenCallerCancelKeepsRotation(t *testing.T) {
	as := newFakeAS(t)
	as.gate = make(chan struct{})
	store := &MemoryTokenStore{}
	store.Save(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: expired()})
	s := newSource(t, as, store, nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := s.TokenContext(ctx); errc <- err }()
	for as.refreshes.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(as.gate) // the server answers after the caller left
	tok, err := s.Token()
	if err != nil || tok.AccessToken != "at-1" || as.refreshes.Load() != 1 {
		t.Fatalf("after the cancel: %v %v, %d refreshes", tok, err, as.refreshes.Load())
	}
	if saved, _ := store.Load(t.Context()); saved.RefreshToken != "rt-1" {
		t.Fatalf("rotation lost: %+v", saved)
	}
}
