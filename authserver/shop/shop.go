// Package shop serves the platform's reference UCP 2026-04-08 stores: per
// store a business profile, catalog, carts, checkout sessions and orders,
// over REST and MCP (streamable HTTP), plus a catalog across every store.
//
// Both bindings run the same operations (Service.Do) and return the same
// bytes: a REST body is the MCP result's structuredContent. Each request
// negotiates capabilities against the platform profile its UCP-Agent names,
// state-changing calls are idempotent on their key, every checkout carries
// an ap2.merchant_authorization, and responses are signed (RFC 9421) when
// the platform asks.
package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Config configures a Service. BaseURL, Store and Keys are required; every
// other zero value means the default.
type Config struct {
	// BaseURL is the API host (the OAuth issuer), without a trailing
	// slash. Store endpoints are BaseURL + "/s/" + slug.
	BaseURL string
	Store   store.Commerce
	// Keys holds each store's ES256 signing key.
	Keys KeySource
	// Profiles fetches platform profiles; nil means a discovery.Fetcher
	// with the default rules (AllowInsecureLoopback when Dev).
	Profiles ProfileFetcher
	// Accounts looks up buyers (their saved card) and platform
	// applications (their registered profile, where order webhooks may
	// go); the platform's store.Store. nil: no saved cards, and webhooks
	// only to signed platforms.
	Accounts Accounts
	// Guard identifies the caller from its credentials (a *guard.Guard):
	// the anonymous principal for a request without any, a *guard.Error
	// for bad ones. nil treats every request as anonymous.
	Guard Identifier
	// Dev accepts plain-http loopback profile URLs and, when a platform
	// profile cannot be fetched, serves the store's own capabilities
	// instead of failing (local harnesses use such URLs). Off in serve.
	Dev bool
	// AcceptVersions are platform protocol versions served as the current
	// one; default {"2026-08-25"}, the Artos SDK's.
	AcceptVersions []string
	// MandateVerifier checks ap2.checkout_mandate on complete when AP2 is
	// negotiated; nil means compact ES256 and AP2 SD-JWT mandates signed
	// by keys the platform profile publishes, single use across every
	// instance sharing the store (StoreReplayCache).
	MandateVerifier MandateVerifier

	IdempotencyTTL   time.Duration // default 48 h (the spec asks >= 24 h)
	IdempotencyLease time.Duration // a claim's lifetime while running; default 30 s
	IdempotencyWait  time.Duration // how long a duplicate waits for the first; default 10 s
	CheckoutTTL      time.Duration // default 6 h
	MaxBody          int64         // request body limit; default 1 MiB

	// RateLimits bounds calls per credential and, for callers without
	// one, per client network (ratelimit.go); zero fields mean
	// DefaultRateLimits. DisableRateLimits turns them off (load tests).
	RateLimits        RateLimits
	DisableRateLimits bool
	// ClientIP finds a request's client address behind trusted proxies;
	// nil trusts none (the socket peer is the client).
	ClientIP *clientip.Resolver

	Logger *slog.Logger // nil: discard
	Now    func() time.Time
	// Metrics counts completions, allowance refusals and webhook
	// deliveries; nil counts nothing.
	Metrics *metrics.Metrics
}

// KeySource returns a store's signing key.
type KeySource interface {
	ShopKey(ctx context.Context, slug string) (*mandate.SigningKey, error)
}

// ProfileFetcher fetches and caches UCP profiles.
type ProfileFetcher interface {
	Fetch(ctx context.Context, url string) (*ucp.Profile, error)
}

// MandateVerifier checks a checkout mandate for one completion. agent is
// the platform profile (its keys verify the mandate), live the checkout as
// the store returns it now.
type MandateVerifier interface {
	VerifyMandate(ctx context.Context, token string, in MandateInput) (*mandate.CheckoutAuthorization, error)
}

// MandateInput is what a mandate is checked against.
type MandateInput struct {
	Shop         string
	Live         []byte
	Agent        *ucp.Profile
	MerchantKeys mandate.KeyResolver
	HandlerID    string
	// Consumed: this request already verified and consumed this mandate
	// (a retry after a lost race); check it, but not against replay.
	Consumed bool
}

// Accounts is what the stores read of the authorization server's records.
type Accounts interface {
	Buyer(ctx context.Context, id string) (*store.Buyer, error)
	Client(ctx context.Context, id string) (*store.Client, error)
}

// Identifier turns a request's credentials into the caller's principal;
// *guard.Guard is the one the platform uses.
type Identifier interface {
	Identify(r *http.Request) (*guard.Principal, error)
}

// Service serves the stores.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler

	mu       sync.Mutex
	profiles map[string]*businessProfile // by slug; "" is the platform apex
	hooks    *http.Client                // webhook deliveries, built on first use
	// rails charge completions, by handler id (defaultRails; tests
	// replace one to watch what is charged).
	rails map[string]rail
	// limits are the rate limiters; nil when disabled.
	limits *limits
}

// New validates cfg and builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.BaseURL == "" || strings.HasSuffix(cfg.BaseURL, "/") {
		return nil, errors.New("shop: BaseURL is required, without a trailing slash")
	}
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("shop: Store and Keys are required")
	}
	if cfg.Profiles == nil {
		cfg.Profiles = &discovery.Fetcher{AllowInsecureLoopback: cfg.Dev}
	}
	if cfg.AcceptVersions == nil {
		cfg.AcceptVersions = []string{"2026-08-25"}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.IdempotencyTTL, 48*time.Hour)
	def(&cfg.IdempotencyLease, 30*time.Second)
	def(&cfg.IdempotencyWait, 10*time.Second)
	def(&cfg.CheckoutTTL, 6*time.Hour)
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	lims, err := newLimits(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, profiles: map[string]*businessProfile{}, rails: map[string]rail{}, limits: lims}
	for _, r := range defaultRails {
		s.rails[r.id()] = r
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.MandateVerifier == nil {
		s.cfg.MandateVerifier = &ProfileMandateVerifier{Replay: &StoreReplayCache{Store: cfg.Store, Now: s.now}, Now: s.now}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves every store path: /s/{slug}/…, /mcp, /catalog/… and
// /.well-known/ucp. Mount it next to the OAuth server.
func (s *Service) Handler() http.Handler { return s.handler }

// shopInfo is a store with its parsed settings.
type shopInfo struct {
	*store.Shop
	cfg Settings
}

// slugRE is what a store slug looks like (PutSeedShop enforces it; key
// files are named after slugs).
var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

func (s *Service) shop(ctx context.Context, slug string) (*shopInfo, error) {
	sh, err := s.cfg.Store.Shop(ctx, slug)
	if err != nil {
		return nil, err
	}
	cfg, dropped, err := parseShopConfig(sh.Config)
	if err != nil {
		return nil, fmt.Errorf("shop %s: %w", slug, err)
	}
	if len(dropped) > 0 {
		s.log.WarnContext(ctx, "shop: store settings name payment rails this build lacks; not offered", "store", slug, "rails", dropped)
	}
	return &shopInfo{Shop: sh, cfg: cfg}, nil
}

func (s *Service) storeURL(slug string) string { return s.cfg.BaseURL + "/s/" + slug }

// SessionRetention is how long an expired cart or unfinished checkout is
// kept after it expired (a platform may still GET it and see it
// canceled); completed checkouts are kept with their orders.
const SessionRetention = 30 * 24 * time.Hour

// Sweep deletes expired idempotency records, sessions expired longer
// than SessionRetention and spend holds older than HoldRetention, and
// counts them (rows per table, the duration) in Config.Metrics. Run it
// periodically (the binary does, hourly).
func (s *Service) Sweep(ctx context.Context) (total int64, err error) {
	start := time.Now()
	defer func() {
		result := metrics.SweepOK
		if err != nil {
			result = metrics.SweepError
		}
		s.cfg.Metrics.SweepDone(metrics.SweepShop, result, time.Since(start))
	}()
	for _, step := range []struct {
		table string
		sweep func() (int64, error)
	}{
		{"idempotency", func() (int64, error) { return s.cfg.Store.SweepIdempotency(ctx, s.now()) }},
		{"sessions", func() (int64, error) { return s.cfg.Store.SweepSessions(ctx, s.now().Add(-SessionRetention)) }},
		{"spend_holds", func() (int64, error) { return s.cfg.Store.SweepHolds(ctx, s.now().Add(-HoldRetention)) }},
	} {
		n, err := step.sweep()
		s.cfg.Metrics.RowsSwept(step.table, n)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// HoldRetention is how long spend holds are kept after they were taken:
// the daily cap reads today's (a calendar day in UTC), so two days
// covers every window any instance may still be summing, with margin for
// clocks.
const HoldRetention = 48 * time.Hour

// SweepEvery runs Sweep every interval until ctx ends, logging failures.
func (s *Service) SweepEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "shop: sweep", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "shop: swept expired idempotency records and sessions", "n", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
