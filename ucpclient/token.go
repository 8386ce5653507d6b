package ucpclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// ErrNoStoredToken is NewBuyerTokenSource's error when the store holds no
// token: the buyer has to sign in first (Connect).
var ErrNoStoredToken = errors.New("ucpclient: no buyer token stored; sign in first (Connect)")

// errNoRefreshToken is wrapped in a RefreshError when the access token
// expired or was rejected and there is no refresh token to renew it.
var errNoRefreshToken = errors.New("no refresh token (was offline_access granted?)")

// RefreshError is a failed buyer token refresh. Err is the
// *oauth2.RetrieveError when the authorization server answered (find it
// with errors.As), or the transport, store or context error otherwise.
// A refresh is tried once per call; the source never retries by itself.
type RefreshError struct {
	Err error
}

func (e *RefreshError) Error() string { return "ucpclient: buyer token refresh: " + e.Err.Error() }
func (e *RefreshError) Unwrap() error { return e.Err }

// Code is the RFC 6749 error code the authorization server answered
// ("invalid_grant" when the refresh token is expired, revoked or reused),
// or "" when it did not answer one.
func (e *RefreshError) Code() string {
	var re *oauth2.RetrieveError
	if errors.As(e.Err, &re) {
		return re.ErrorCode
	}
	return ""
}

// SignInRequired reports whether only a new sign-in (Connect) can get
// the buyer a token again: the grant is gone or there is no refresh
// token.
func (e *RefreshError) SignInRequired() bool {
	return e.Code() == "invalid_grant" || errors.Is(e.Err, errNoRefreshToken)
}

// BuyerTokenOptions adjusts a BuyerTokenSource. nil or zero fields mean
// the defaults.
type BuyerTokenOptions struct {
	// HTTPClient calls the token endpoint (never following redirects);
	// default http.DefaultClient's settings.
	HTTPClient *http.Client
	// EarlyExpiry refreshes an access token this long before it expires;
	// default 30 s.
	EarlyExpiry time.Duration
	// RefreshTimeout bounds one refresh (request and save). A refresh
	// runs to its end even when the caller that started it gives up, so
	// that a rotated refresh token the server has already issued is never
	// lost; default 30 s.
	RefreshTimeout time.Duration
	// ForcedRefreshWindow makes RefreshToken, called within this long
	// after the last refresh, return that refresh's token rather than
	// refresh again: calls rejected for the same old access token share
	// one refresh even when they ask after it ended. Default 2 s;
	// negative turns it off.
	ForcedRefreshWindow time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// BuyerTokenSource is a buyer's OAuth token source built on
// golang.org/x/oauth2. It hands out the access token while it is valid,
// refreshes it shortly before expiry or on demand (RefreshToken), saves
// every refreshed token, the rotated refresh token included, to its
// TokenStore before handing the new access token out, and lets concurrent
// callers share one refresh. It is safe for concurrent use.
type BuyerTokenSource struct {
	conf  *oauth2.Config
	store TokenStore
	opts  BuyerTokenOptions

	mu      sync.Mutex
	tok     *oauth2.Token
	unsaved bool           // tok was refreshed but the store refused it
	flight  *refreshFlight // the refresh under way, if any
	last    time.Time      // when the last refresh succeeded
}

type refreshFlight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

var _ oauth2.TokenSource = (*BuyerTokenSource)(nil)

// NewBuyerTokenSource loads the buyer's token from store and returns a
// source that keeps it fresh. conf needs ClientID and Endpoint.TokenURL
// (and ClientSecret for a confidential client); ctx bounds the load only.
// An empty store is ErrNoStoredToken.
func NewBuyerTokenSource(ctx context.Context, conf *oauth2.Config, store TokenStore, opts *BuyerTokenOptions) (*BuyerTokenSource, error) {
	if conf == nil || conf.Endpoint.TokenURL == "" {
		return nil, errors.New("ucpclient: NewBuyerTokenSource: conf.Endpoint.TokenURL is required")
	}
	if tu, err := url.Parse(conf.Endpoint.TokenURL); err != nil || !secureURL(tu) {
		// Refresh tokens never cross a network in the clear.
		return nil, errors.New("ucpclient: NewBuyerTokenSource: conf.Endpoint.TokenURL must be https (or loopback http)")
	}
	if store == nil {
		return nil, errors.New("ucpclient: NewBuyerTokenSource: store is required")
	}
	s := &BuyerTokenSource{conf: conf, store: store}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.EarlyExpiry <= 0 {
		s.opts.EarlyExpiry = 30 * time.Second
	}
	if s.opts.RefreshTimeout <= 0 {
		s.opts.RefreshTimeout = 30 * time.Second
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.opts.ForcedRefreshWindow == 0 {
		s.opts.ForcedRefreshWindow = 2 * time.Second
	}
	tok, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if tok == nil || tok.AccessToken == "" && tok.RefreshToken == "" {
		return nil, ErrNoStoredToken
	}
	s.tok = tok
	return s, nil
}

// Token returns a valid access token, refreshing it first when it expires
// within EarlyExpiry. It implements oauth2.TokenSource; the refresh is
// bounded by RefreshTimeout. Use TokenContext to bound the wait yourself.
func (s *BuyerTokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token with a context that bounds the caller's wait.
func (s *BuyerTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.get(ctx, false)
}

// RefreshToken refreshes now, whatever the expiry says: call it when a
// server answered invalid_token for the current access token. Callers
// that ask while a refresh is under way share it, and so do those that
// ask within ForcedRefreshWindow after it ended. A failure is a
// *RefreshError.
func (s *BuyerTokenSource) RefreshToken(ctx context.Context) (*oauth2.Token, error) {
	return s.get(ctx, true)
}

func (s *BuyerTokenSource) valid(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.Expiry.IsZero() || s.opts.Now().Add(s.opts.EarlyExpiry).Before(t.Expiry)
}

func (s *BuyerTokenSource) get(ctx context.Context, force bool) (*oauth2.Token, error) {
	s.mu.Lock()
	f := s.flight
	if f == nil {
		recent := force && !s.last.IsZero() && s.opts.Now().Sub(s.last) < s.opts.ForcedRefreshWindow
		if (!force || recent) && !s.unsaved && s.valid(s.tok) {
			t := buyerTokenCopy(s.tok)
			s.mu.Unlock()
			return t, nil
		}
		f = &refreshFlight{done: make(chan struct{})}
		s.flight = f
		cur := buyerTokenCopy(s.tok)
		unsaved := s.unsaved
		// The refresh is detached from the caller's cancellation: once
		// the request is sent, the server may have rotated the refresh
		// token, and the answer must be saved whoever still waits.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout)
		go func() {
			defer cancel()
			s.run(rctx, f, cur, force, unsaved)
		}()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return buyerTokenCopy(f.tok), f.err
	case <-ctx.Done():
		return nil, &RefreshError{Err: ctx.Err()}
	}
}

// run does one refresh and publishes its result to the flight's waiters.
func (s *BuyerTokenSource) run(ctx context.Context, f *refreshFlight, cur *oauth2.Token, force, unsaved bool) {
	tok, saved, err := s.refresh(ctx, cur, force, unsaved)
	s.mu.Lock()
	if tok != nil {
		s.tok, s.unsaved = tok, !saved
	}
	if err == nil {
		s.last = s.opts.Now()
	}
	f.tok, f.err = tok, err
	if err != nil {
		f.tok = nil
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// refresh returns the token to use next, whether it is in the store, and
// the error for the callers.
func (s *BuyerTokenSource) refresh(ctx context.Context, cur *oauth2.Token, force, unsaved bool) (*oauth2.Token, bool, error) {
	if unsaved {
		// A refreshed token the store refused last time: the server has
		// already rotated, so saving it again is the only way forward.
		if err := s.store.Save(ctx, cur); err != nil {
			return nil, false, &RefreshError{Err: err}
		}
		if !force && s.valid(cur) {
			return cur, true, nil
		}
	} else if stored, err := s.store.Load(ctx); err == nil && stored != nil && stored.AccessToken != cur.AccessToken {
		// Another process (or source) sharing the store refreshed since
		// we loaded: adopt its token rather than spend a refresh token
		// that has already been rotated away.
		if stored.RefreshToken == "" {
			stored.RefreshToken = cur.RefreshToken
		}
		cur = stored
		if s.valid(cur) {
			return cur, true, nil
		}
	}
	if cur.RefreshToken == "" {
		return nil, false, &RefreshError{Err: errNoRefreshToken}
	}
	// No redirects from the token endpoint: a 307 would post the refresh
	// token to wherever it points.
	if hc := noRedirects(cmp.Or(s.opts.HTTPClient, http.DefaultClient)); hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	// An expired copy makes x/oauth2 refresh exactly once; it keeps the
	// old refresh token when the server sends no new one.
	tok, err := s.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: cur.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return nil, false, &RefreshError{Err: err}
	}
	if err := s.store.Save(ctx, tok); err != nil {
		// Keep the new token in memory (the old refresh token is dead)
		// and try the save again on the next call.
		return tok, false, &RefreshError{Err: fmt.Errorf("saving the refreshed token: %w", err)}
	}
	return tok, true, nil
}
