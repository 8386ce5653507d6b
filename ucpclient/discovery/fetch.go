package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const (
	defaultTimeout            = 5 * time.Second
	defaultTTL                = 5 * time.Minute
	minTTL                    = 60 * time.Second // the spec's floor
	maxHonouredMaxAge         = time.Hour
	defaultNegativeTTL        = 10 * time.Second
	defaultMaxBytes           = 256 << 10
	defaultMaxEntries         = 1024
	defaultMaxInFlightPerHost = 4
	defaultMaxCacheBytes      = 32 << 20
	maxURLLen                 = 2048
)

// Fetcher fetches UCP profiles and caches them. The zero value is ready to
// use; set fields before the first Fetch and do not change them afterwards.
// A Fetcher must not be copied after first use. It is safe for concurrent
// use.
type Fetcher struct {
	// Client does the fetching; nil means netguard.NewClient (5 s timeout,
	// non-public addresses refused at connect time, no proxy). A
	// caller's client is used with redirects turned off (NoRedirects) but is
	// otherwise trusted: it gets no address guard unless its dialer has
	// netguard.Control. Its Timeout, if set, replaces the 5s fetch deadline.
	Client *http.Client
	// AllowInsecureLoopback accepts http:// URLs whose host is a loopback IP
	// literal or "localhost", and lets the default client connect to
	// loopback addresses (and only those). For local development only: UCP
	// requires https.
	AllowInsecureLoopback bool
	// TTL is how long a fetched profile is served from cache; default 5m,
	// never below 60s (the spec's floor). A longer Cache-Control max-age is
	// honoured up to one hour.
	TTL time.Duration
	// NegativeTTL is how long a failed fetch is remembered, so a dead or
	// hostile profile host is not asked again on every request; default
	// 10s, negative to disable.
	NegativeTTL time.Duration
	// MaxBytes caps the profile body; default 256 KiB.
	MaxBytes int64
	// MaxEntries bounds the cache (successes and remembered failures),
	// least recently used out first; default 1024.
	MaxEntries int
	// MaxInFlight bounds concurrent outbound fetches (distinct URLs);
	// beyond it a fetch fails at once, uncached, so callers naming fresh
	// URLs cannot turn the server into a request amplifier. Default 32.
	MaxInFlight int
	// MaxInFlightPerHost bounds concurrent fetches from one host, so one
	// slow host named by many URLs cannot hold every slot; default 4.
	MaxInFlightPerHost int
	// MaxCacheBytes bounds the memory the cached profiles hold (each
	// counted at twice its body, for the parsed form); default 32 MiB.
	MaxCacheBytes int64
	// Now is the clock for cache expiry; default time.Now.
	Now func() time.Time

	initOnce sync.Once
	client   *http.Client
	cache    netguard.Cache[*ucp.Profile]
}

// NoRedirects returns a copy of c (http.DefaultClient's settings when c is
// nil) that returns a 3xx response to the caller instead of following it.
// UCP forbids following redirects on profile fetches: the profile must come
// from the URL that is the party's identity.
func NoRedirects(c *http.Client) *http.Client {
	var d http.Client
	if c != nil {
		d = *c
	}
	d.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &d
}

func (f *Fetcher) init() {
	f.initOnce.Do(func() {
		f.cache.MaxEntries, f.cache.MaxInFlight, f.cache.Now = f.maxEntries(), f.maxInFlight(), f.now
		f.cache.MaxInFlightPerHost = cmpOr(f.MaxInFlightPerHost, defaultMaxInFlightPerHost)
		f.cache.MaxBytes = cmpOr(f.MaxCacheBytes, defaultMaxCacheBytes)
		f.cache.Size = func(p *ucp.Profile) int64 { return 2*int64(len(p.Raw)) + 4096 }
		if f.Client != nil {
			f.client = NoRedirects(f.Client)
			return
		}
		f.client = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: f.AllowInsecureLoopback, Timeout: defaultTimeout})
	})
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fetcher) ttl() time.Duration {
	switch {
	case f.TTL == 0:
		return defaultTTL
	case f.TTL < minTTL:
		return minTTL
	}
	return f.TTL
}

func (f *Fetcher) negativeTTL() time.Duration {
	if f.NegativeTTL == 0 {
		return defaultNegativeTTL
	}
	return f.NegativeTTL
}

func (f *Fetcher) maxBytes() int64 {
	if f.MaxBytes <= 0 {
		return defaultMaxBytes
	}
	return f.MaxBytes
}

func (f *Fetcher) maxEntries() int {
	if f.MaxEntries <= 0 {
		return defaultMaxEntries
	}
	return f.MaxEntries
}

func (f *Fetcher) timeout() time.Duration {
	if f.Client != nil && f.Client.Timeout > 0 {
		return f.Client.Timeout
	}
	return defaultTimeout
}

// Fetch returns the profile at rawURL, from cache when fresh. The profile is
// shared with other callers and must not be modified. Errors are *Error:
// invalid_profile_url for a URL refused before any traffic,
// profile_unreachable for a failed fetch (transport error, timeout,
// redirect, non-2xx status, body over MaxBytes, or ctx ending first), and
// profile_malformed for a body that ucp.ParseProfile refuses.
//
// An oversized body counts as unreachable rather than malformed: the fetch
// is abandoned before the content is known, and the spec reserves
// profile_malformed for content that was read and found wanting.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*ucp.Profile, error) {
	if err := f.checkURL(rawURL); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, canceled(err)
	}
	f.init()
	p, err := f.cache.Get(ctx, rawURL, func(ctx context.Context) (*ucp.Profile, time.Duration, error) {
		p, ttl, e := f.get(ctx, rawURL)
		if e != nil {
			return nil, max(f.negativeTTL(), 0), e
		}
		return p, ttl, nil
	})
	var e *Error
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &e):
		// Each caller gets its own copy of a shared error, so one caller
		// editing it cannot change what the next one sees.
		c := *e
		return nil, &c
	case errors.Is(err, netguard.ErrBusy):
		return nil, &Error{Code: CodeProfileUnreachable, Content: "too many profile fetches in progress; retry shortly"}
	default:
		return nil, canceled(err)
	}
}

func canceled(err error) *Error {
	return &Error{Code: CodeProfileUnreachable, Content: "profile fetch was abandoned", Err: err}
}

func (f *Fetcher) get(ctx context.Context, rawURL string) (*ucp.Profile, time.Duration, *Error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalidProfileURL, Content: "profile URL is not a valid URL", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, transportError(err)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		resp.Body.Close()
		return nil, 0, &Error{Code: CodeProfileUnreachable, Content: fmt.Sprintf("profile URL answered with a redirect (HTTP %d); profile fetches do not follow redirects", resp.StatusCode)}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		resp.Body.Close()
		return nil, 0, &Error{Code: CodeProfileUnreachable, Content: fmt.Sprintf("profile fetch returned HTTP status %d", resp.StatusCode)}
	}
	body, err := netguard.ReadBody(resp, f.maxBytes())
	var tl *netguard.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, 0, f.tooLarge()
	case err != nil:
		return nil, 0, transportError(err)
	}
	p, err := ucp.ParseProfile(body)
	if err != nil {
		return nil, 0, &Error{
			Code:    CodeProfileMalformed,
			Content: "profile is not a valid UCP profile: " + strings.TrimPrefix(err.Error(), "ucp: profile: "),
			Err:     err,
		}
	}
	return p, f.ttlFor(resp.Header), nil
}

func (f *Fetcher) tooLarge() *Error {
	return &Error{Code: CodeProfileUnreachable, Content: fmt.Sprintf("profile is larger than %d bytes", f.maxBytes())}
}

// ttlFor lets a publisher ask for longer caching than ours, never shorter:
// the spec sets a 60s floor regardless of the origin's headers, and a one
// hour ceiling keeps a key rotation from going unseen for long.
func (f *Fetcher) ttlFor(h http.Header) time.Duration {
	ttl := f.ttl()
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			if !strings.EqualFold(name, "max-age") {
				continue
			}
			secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err != nil || secs <= 0 {
				continue
			}
			maxAge := maxHonouredMaxAge
			if secs < int64(maxHonouredMaxAge/time.Second) {
				maxAge = time.Duration(secs) * time.Second
			}
			ttl = max(ttl, maxAge)
		}
	}
	return ttl
}

func transportError(err error) *Error {
	var blocked *netguard.BlockedError
	switch {
	case errors.As(err, &blocked):
		// The same words as any other failure: telling callers which
		// names resolve to private addresses would map the network
		// behind the server. Err keeps the class for the logs.
		return &Error{Code: CodeProfileUnreachable, Content: "could not fetch the profile", Err: err}
	case netguard.IsTimeout(err):
		return &Error{Code: CodeProfileUnreachable, Content: "profile fetch timed out", Err: err}
	}
	return &Error{Code: CodeProfileUnreachable, Content: "could not fetch the profile", Err: err}
}

// checkURL applies the URL rules before any traffic, so a refused URL costs
// nothing and never reaches the cache.
func (f *Fetcher) checkURL(raw string) *Error {
	refuse := func(content string) *Error { return &Error{Code: CodeInvalidProfileURL, Content: content} }
	if raw == "" {
		return refuse("profile URL is missing")
	}
	// The URL is the profile's identity and the cache key, so only accept
	// it in its sent-on-the-wire form (CheckURL's rules).
	var ue *netguard.URLError
	if _, err := netguard.CheckURL(raw, maxURLLen, f.AllowInsecureLoopback); errors.As(err, &ue) {
		return refuse("profile URL " + ue.Problem)
	} else if err != nil {
		return refuse("profile URL is not acceptable")
	}
	return nil
}

func (f *Fetcher) maxInFlight() int {
	if f.MaxInFlight > 0 {
		return f.MaxInFlight
	}
	return 32
}

// cmpOr is v when positive, else the default.
func cmpOr[T int | int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
