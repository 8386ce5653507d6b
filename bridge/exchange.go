package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// ExchangeOptions configures an Exchanger. Zero optional fields mean the
// defaults.
type ExchangeOptions struct {
	// TokenURL is the platform's token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret authenticate the bridge (HTTP Basic) as
	// its platform application: the two halves of the platform API key
	// "<client_id>.<secret>". Required.
	ClientID, ClientSecret string
	// Resource is the RFC 8707 resource the exchanged token is for (the
	// platform API root); "" sends none and the authorization server
	// picks its API root.
	Resource string
	// Scope narrows the exchanged token (space-separated); "" keeps the
	// subject token's scope.
	Scope string
	// HTTPClient sends the exchange requests. nil means a guarded client
	// (netguard: no proxy, no redirects, loopback only when TokenURL is on
	// loopback) with a 10 s timeout.
	HTTPClient *http.Client
	// MaxEntries bounds the cache of exchanged tokens (least recently
	// used out first); default 10000.
	MaxEntries int
	// MaxRefusals bounds the cache of refused subject tokens, kept apart
	// from the exchanged tokens so that a flood of made-up bearers only
	// evicts other refusals, never a buyer's token; default 1000.
	MaxRefusals int
	// MaxInFlight bounds the exchanges running at once, so a flood of
	// fresh bearers cannot turn the bridge into a request amplifier
	// against the token endpoint; default 32. Past it an exchange waits
	// for a slot, up to 10 s, and only while a caller still wants it.
	MaxInFlight int
	// MaxWaiting bounds the exchanges waiting for a slot; past it an
	// exchange fails at once (ErrExchangeBusy) rather than queueing, so
	// a flood of fresh bearers against a slow token endpoint cannot pile
	// up requests without bound; default 64.
	MaxWaiting int
	// Skew is how long before its expiry a cached token is dropped, so a
	// token handed to a tool call does not expire in flight; default 30 s.
	Skew time.Duration
	// RefusalTTL is how long a refused subject token (invalid_grant) is
	// answered from the cache without asking the token endpoint again;
	// default 30 s. An opaque token that was refused never becomes valid.
	RefusalTTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Exchanger trades the bearer an MCP client sent the bridge (issued for
// the bridge's own resource, RFC 8707) for a platform API token bound to
// the same buyer, grant and allowance (RFC 8693 token exchange). The
// bearer itself is never forwarded anywhere else: the MCP authorization
// spec forbids token passthrough, and the platform refuses tokens issued
// for another resource.
//
// Results are cached by the SHA-256 of the subject token (the cache never
// holds a usable bearer as a key) until the exchanged token expires, minus
// Skew; concurrent requests with the same bearer share one exchange. It is
// safe for concurrent use.
type Exchanger struct {
	conf       clientcredentials.Config
	hc         *http.Client
	skew       time.Duration
	refusalTTL time.Duration
	now        func() time.Time

	cache *lru.Cache[[sha256.Size]byte, *exchangeEntry]
	// refusals holds the refused subjects (entries with err set): anyone
	// can make up bearers, so they must not compete with cache's good
	// entries for room. A key is in one cache at most.
	refusals *lru.Cache[[sha256.Size]byte, *exchangeEntry]
	sem      chan struct{}

	// mu guards flights, waiting and every flight's callers and state.
	mu sync.Mutex
	// flights is the exchange under way for each subject, which its
	// concurrent callers share.
	flights    map[[sha256.Size]byte]*flight
	waiting    int // flights waiting for a slot in sem
	maxWaiting int
	// evictions counts Evict calls: an exchange that started before one
	// does not cache its result, so a token evicted because the platform
	// refused it is not put back by a flight that was already running.
	evictions atomic.Uint64

	// exchanges counts requests sent to the token endpoint (tests, metrics).
	exchanges atomic.Int64
}

// flight is one exchange shared by the concurrent callers of a subject.
type flight struct {
	done chan struct{} // closed when tok or err is set
	tok  *oauth2.Token
	err  error

	// Guarded by Exchanger.mu.
	callers int
	state   flightState
	// abandon is closed when the last caller leaves a flight still
	// waiting for a slot.
	abandon chan struct{}
}

type flightState int

const (
	flightWaiting   flightState = iota // for a slot in sem
	flightRunning                      // holds a slot (or has failed): runs to its end
	flightAbandoned                    // every caller left while it waited
)

// slotWait is how long a wanted exchange waits for an in-flight slot.
const slotWait = 10 * time.Second

// ErrExchangeBusy is the Err of an *ExchangeError when the exchange could
// not get an in-flight slot: MaxWaiting exchanges already wait for one,
// or none freed up within 10 s. It is the bridge's load, not the token's
// fault.
var ErrExchangeBusy = errors.New("too many token exchanges in flight")

type exchangeEntry struct {
	tok   *oauth2.Token  // nil when err is set (a refusal)
	err   *ExchangeError // a refusal of the subject token
	until time.Time
}

// ExchangeError is a failed exchange.
type ExchangeError struct {
	// Code is the OAuth error code (RFC 6749 §5.2, RFC 8693 §2.2.2), e.g.
	// "invalid_grant"; "" when the token endpoint could not be reached or
	// did not answer with an OAuth error.
	Code        string
	Description string
	// Status is the token endpoint's HTTP status; 0 when there was no
	// response.
	Status int
	Err    error
}

func (e *ExchangeError) Error() string {
	var b strings.Builder
	b.WriteString("bridge: token exchange")
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// TokenRefused reports whether the subject token itself was refused
// (invalid_grant: unknown, expired, revoked, not a buyer token, issued for
// a resource this platform does not own): the MCP client must refresh or
// sign in again. Every other failure is the bridge's configuration or the
// platform's availability, not the caller's token: so is an invalid_grant
// that came with a status other than 4xx (RFC 6749 §5.2 errors are 400;
// a 5xx carrying one is a gateway or a failing platform, and taking it
// for a refusal would cache it and send the buyer to sign in again).
// Status 0 is the bridge's own refusal (no subject token).
func (e *ExchangeError) TokenRefused() bool {
	return e.Code == "invalid_grant" && (e.Status == 0 || e.Status/100 == 4)
}

// NewExchanger returns an Exchanger for opts.
func NewExchanger(opts ExchangeOptions) (*Exchanger, error) {
	u, err := url.Parse(opts.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("bridge: ExchangeOptions.TokenURL must be an absolute http(s) URL")
	}
	loopback := netguard.IsLoopbackHost(u.Hostname())
	if u.Scheme == "http" && !loopback {
		return nil, errors.New("bridge: ExchangeOptions.TokenURL must use https (plain http only on loopback)")
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("bridge: ExchangeOptions.ClientID and ClientSecret are required")
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.MaxRefusals <= 0 {
		opts.MaxRefusals = 1000
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 32
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 64
	}
	if opts.Skew <= 0 {
		opts.Skew = 30 * time.Second
	}
	if opts.RefusalTTL <= 0 {
		opts.RefusalTTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: loopback, Timeout: 10 * time.Second})
	} else {
		// The client credentials ride in the Authorization header: never
		// replay them on a redirect, whoever built the client.
		c := *hc
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &c
	}
	cache, err := lru.New[[sha256.Size]byte, *exchangeEntry](opts.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	refusals, err := lru.New[[sha256.Size]byte, *exchangeEntry](opts.MaxRefusals)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	params := url.Values{
		// clientcredentials lets grant_type be overridden: the rest of
		// its token request (Basic auth, error and expiry parsing, the
		// 1 MiB response cap) is what RFC 8693 needs.
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token_type": {TokenTypeAccessToken},
	}
	if opts.Resource != "" {
		params.Set("resource", opts.Resource)
	}
	if opts.Scope != "" {
		params.Set("scope", opts.Scope)
	}
	return &Exchanger{
		conf: clientcredentials.Config{
			ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, TokenURL: opts.TokenURL,
			EndpointParams: params,
			// Explicit: auto-detection would retry a refused exchange
			// with the secret in the body, sending the subject token twice.
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		hc: hc, skew: opts.Skew, refusalTTL: opts.RefusalTTL, now: opts.Now,
		cache: cache, refusals: refusals,
		sem:     make(chan struct{}, opts.MaxInFlight),
		flights: map[[sha256.Size]byte]*flight{}, maxWaiting: opts.MaxWaiting,
	}, nil
}

// Exchange returns the platform token for subject: cached while it is
// valid, else from one exchange shared by every concurrent caller with the
// same subject. A failure is an *ExchangeError, or ctx's error when ctx
// ends first: an exchange already sent goes on for the others and is
// cached; one still waiting for a slot gives its place up when no caller
// is left to want it.
func (e *Exchanger) Exchange(ctx context.Context, subject string) (*oauth2.Token, error) {
	if subject == "" {
		return nil, &ExchangeError{Code: "invalid_grant", Description: "no subject token"}
	}
	key := sha256.Sum256([]byte(subject))
	if ent, ok := e.cache.Get(key); ok {
		if e.now().Before(ent.until) {
			return copyToken(ent.tok), nil
		}
		e.cache.Remove(key)
	}
	if ent, ok := e.refusals.Get(key); ok {
		if e.now().Before(ent.until) {
			return nil, ent.err
		}
		e.refusals.Remove(key)
	}
	e.mu.Lock()
	fl := e.flights[key]
	if fl == nil {
		fl = &flight{done: make(chan struct{}), abandon: make(chan struct{})}
		select {
		case e.sem <- struct{}{}:
			fl.state = flightRunning
		default:
			if e.waiting >= e.maxWaiting {
				e.mu.Unlock()
				return nil, &ExchangeError{Description: "the queue for a slot is full", Err: ErrExchangeBusy}
			}
			e.waiting++
			fl.state = flightWaiting
		}
		e.flights[key] = fl
		// Detached from this caller's cancellation: others may join the
		// flight; the HTTP client's timeout bounds the request.
		go e.fly(context.WithoutCancel(ctx), key, subject, fl, e.evictions.Load())
	}
	fl.callers++
	e.mu.Unlock()
	select {
	case <-fl.done:
		if fl.err != nil {
			return nil, fl.err
		}
		return copyToken(fl.tok), nil
	case <-ctx.Done():
		e.leave(key, fl)
		return nil, ctx.Err()
	}
}

// leave is a caller of fl giving up. The last one out of a flight still
// waiting for a slot abandons it: nobody would read its answer, and under
// a flood of fresh bearers such flights would hold the waiting places
// (and later the slots) that real buyers need.
func (e *Exchanger) leave(key [sha256.Size]byte, fl *flight) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fl.callers--
	if fl.callers > 0 || fl.state != flightWaiting {
		return
	}
	fl.state = flightAbandoned
	e.waiting--
	close(fl.abandon)
	if e.flights[key] == fl {
		delete(e.flights, key)
	}
}

// fly runs fl: waits for a slot unless it already holds one, exchanges,
// and hands the result to its callers. gen is the eviction count when fl
// started.
func (e *Exchanger) fly(ctx context.Context, key [sha256.Size]byte, subject string, fl *flight, gen uint64) {
	defer func() {
		e.mu.Lock()
		if e.flights[key] == fl {
			delete(e.flights, key)
		}
		e.mu.Unlock()
		close(fl.done)
	}()
	e.mu.Lock()
	state := fl.state
	e.mu.Unlock()
	if state == flightAbandoned {
		// Every caller left before this goroutine first ran: it holds no
		// slot, so it must neither send the exchange nor give one back
		// (that would strand the release of an exchange that holds one).
		return
	}
	if state == flightWaiting {
		t := time.NewTimer(slotWait)
		defer t.Stop()
		select {
		case e.sem <- struct{}{}:
		case <-fl.abandon:
			return
		case <-t.C:
			fl.err = &ExchangeError{Description: "no slot freed up within 10 s", Err: ErrExchangeBusy}
			e.mu.Lock()
			if fl.state == flightWaiting {
				fl.state = flightRunning
				e.waiting--
			}
			e.mu.Unlock()
			return
		}
		e.mu.Lock()
		abandoned := fl.state == flightAbandoned
		if !abandoned {
			fl.state = flightRunning
			e.waiting--
		}
		e.mu.Unlock()
		if abandoned {
			// The slot came as the last caller left.
			<-e.sem
			return
		}
	}
	defer func() { <-e.sem }()
	tok, err := e.run(ctx, key, subject, gen)
	if err != nil {
		fl.err = err
		return
	}
	fl.tok = tok
}

// Evict forgets what the cache holds for subject. The tools call it (see
// EvictBuyer) when the platform refuses an exchanged token before its
// expiry: the grant was revoked, so the next request exchanges again and
// is refused.
func (e *Exchanger) Evict(subject string) {
	key := sha256.Sum256([]byte(subject))
	e.evictions.Add(1)
	e.cache.Remove(key)
	e.refusals.Remove(key)
	// An exchange already under way started before the eviction: the
	// next caller starts a new one rather than share its answer.
	e.mu.Lock()
	delete(e.flights, key)
	e.mu.Unlock()
}

// Exchanges is the number of requests sent to the token endpoint so far.
func (e *Exchanger) Exchanges() int64 { return e.exchanges.Load() }

// Waiting is the number of exchanges waiting for an in-flight slot.
func (e *Exchanger) Waiting() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting
}

// Len is the number of cached entries: exchanged tokens and refusals.
func (e *Exchanger) Len() int { return e.cache.Len() + e.refusals.Len() }

// run sends the exchange request (the caller holds a slot) and caches
// its result unless an eviction happened since gen.
func (e *Exchanger) run(ctx context.Context, key [sha256.Size]byte, subject string, gen uint64) (*oauth2.Token, error) {
	e.exchanges.Add(1)
	conf := e.conf
	conf.EndpointParams = make(url.Values, len(e.conf.EndpointParams)+1)
	for k, v := range e.conf.EndpointParams {
		conf.EndpointParams[k] = v
	}
	conf.EndpointParams.Set("subject_token", subject)
	tok, err := conf.Token(context.WithValue(ctx, oauth2.HTTPClient, e.hc))
	if err != nil {
		xe := exchangeError(err)
		if xe.TokenRefused() && e.evictions.Load() == gen {
			// The subject is dead: no token exchanged for it earlier may
			// still be served.
			e.cache.Remove(key)
			e.refusals.Add(key, &exchangeEntry{err: xe, until: e.now().Add(e.refusalTTL)})
		}
		return nil, xe
	}
	if it, _ := tok.Extra("issued_token_type").(string); it != "" && it != TokenTypeAccessToken {
		return nil, &ExchangeError{Description: "token endpoint issued a " + it + ", not an access token"}
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		return nil, &ExchangeError{Description: "token endpoint issued a token of type " + tok.TokenType + ", not Bearer"}
	}
	// Never keep (or hand out) a refresh token: the exchanged token must
	// not outlive the subject token, and the bridge holds no buyer's
	// long-lived credentials.
	out := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer", Expiry: tok.Expiry}
	if !out.Expiry.IsZero() {
		if until := out.Expiry.Add(-e.skew); e.now().Before(until) && e.evictions.Load() == gen {
			e.refusals.Remove(key)
			e.cache.Add(key, &exchangeEntry{tok: out, until: until})
		}
	}
	// A token without expires_in is used for this request only: the
	// bridge cannot know when it dies, so it asks again next time.
	return out, nil
}

// exchangeError turns the token request's failure into an *ExchangeError.
func exchangeError(err error) *ExchangeError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		xe := &ExchangeError{Code: re.ErrorCode, Description: re.ErrorDescription}
		if re.Response != nil {
			xe.Status = re.Response.StatusCode
		}
		if xe.Code == "" {
			xe.Description = "token endpoint answered without an OAuth error"
		}
		return xe
	}
	// Transport failures: the URL error names the token endpoint, never
	// the form (the subject token is in the body, not the URL).
	return &ExchangeError{Err: err}
}

func copyToken(t *oauth2.Token) *oauth2.Token {
	c := *t
	return &c
}

// exchangedBuyer is the buyer's platform credential for one MCP request:
// the exchanged token, as the ucpclient.BuyerTokens (and BuyerRefresher)
// the tools' SDK client calls with.
type exchangedBuyer struct {
	ex      *Exchanger
	subject string

	mu  sync.Mutex
	tok *oauth2.Token
}

// Token returns the exchanged token.
func (b *exchangedBuyer) Token() (*oauth2.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return copyToken(b.tok), nil
}

// RefreshToken is what ucpclient calls when the platform answers 401
// invalid_token to the exchanged token before its expiry (the grant was
// revoked, or the agent): the cached token is evicted and the subject
// exchanged again, once; a revoked grant makes that exchange fail with
// invalid_grant, which the tool reports.
func (b *exchangedBuyer) RefreshToken(ctx context.Context) (*oauth2.Token, error) {
	b.ex.Evict(b.subject)
	t, err := b.ex.Exchange(ctx, b.subject)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.tok = t
	b.mu.Unlock()
	return copyToken(t), nil
}

// evict drops the cached exchange of this request's bearer.
func (b *exchangedBuyer) evict() { b.ex.Evict(b.subject) }

type evictKey struct{}

// EvictBuyer forgets the exchanged platform token cached for the bearer of
// the HTTP request ctx belongs to; it does nothing outside one. A tool
// calls it when the platform refused that token (401) for a reason its SDK
// client did not already handle: the next request exchanges the bearer
// again, and a revoked grant is then answered with 401 invalid_token, so
// the MCP client refreshes or signs the buyer in again. (ucpclient already
// evicts by itself: the buyer in the context is a BuyerRefresher whose
// RefreshToken evicts and exchanges once more.)
func EvictBuyer(ctx context.Context) {
	if f, ok := ctx.Value(evictKey{}).(func()); ok {
		f()
	}
}

func contextWithEvict(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, evictKey{}, f)
}
