// Package authserver is the ucpbridge platform API: New composes its parts
// into one http.Handler served on one host, as the Artos API host is:
//
//   - oauth: the OAuth 2.1 authorization server (metadata, authorize and
//     consent, token, revocation, introspection);
//   - guard: who is calling and what they may do, the only part that reads
//     credentials;
//   - shop: the reference UCP stores over REST and MCP, the cross-store
//     catalog and the hosted checkout pages;
//   - account: the buyer account MCP server (/account/mcp);
//   - store: persistence on SQLite or PostgreSQL.
//
// `ucpbridge dev` and `ucpbridge serve` build the same Server; they differ
// only in the Config they pass.
package authserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/oauth/cimd"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
)

// Store is the persistence the platform needs: the OAuth records and the
// stores' commerce data (sqlstore implements both).
type Store interface {
	store.Store
	store.Commerce
	store.Sweeper
}

// Config configures the platform API. Issuer, Store and Keys are
// required; every other zero value means the default.
type Config struct {
	// Issuer is the public base URL, without a trailing slash: the OAuth
	// issuer and the API host (stores at Issuer + "/s/" + slug).
	Issuer string
	Store  Store
	// Keys holds each store's ES256 signing key.
	Keys shop.KeySource
	// SealKey (32 bytes) seals refresh retries and keys sign-in cookies;
	// instances behind one load balancer need the same key. Default:
	// random per process.
	SealKey []byte
	// Dev relaxes what only local development needs: CIMD client ids and
	// platform profiles over plain http on loopback, and a store serving
	// its own capabilities when a platform profile cannot be fetched.
	Dev bool
	// DisableRateLimits turns the OAuth and store rate limits off (load
	// tests).
	DisableRateLimits bool
	Logger            *slog.Logger // nil: discard
	Now               func() time.Time
	// Metrics counts tokens, completions, allowance refusals and webhook
	// deliveries (metrics.New on the server's own registry); nil: none.
	Metrics *metrics.Metrics
	// Retention says how long expired OAuth records are kept (zero
	// fields: the store defaults); Run sweeps them every SweepInterval
	// (default 5 minutes; negative: never, for operators who run
	// `ucpbridge sweep` from cron). OnSweep, if set, gets every timed
	// sweep's figures (metrics).
	Retention     store.Retention
	SweepInterval time.Duration
	OnSweep       func(store.SweepStats)

	// OAuth and Shop hold the parts' own settings. The fields above win
	// over the ones they share (issuer, store, seal key, logger, clock);
	// OAuth.CIMD defaults to a fetcher with the Dev rules.
	OAuth oauth.Config
	Shop  shop.Config
}

// Server is the platform API. It is an http.Handler; Run does its
// background work.
type Server struct {
	// The parts, for callers that need one directly (tests, tools).
	OAuth   *oauth.Server
	Guard   *guard.Guard
	Shop    *shop.Service
	Account *account.Server

	handler http.Handler
	sweep   sweeper
}

// New builds the platform API from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("authserver: Config.Store and Config.Keys are required")
	}
	sw, err := newSweeper(cfg)
	if err != nil {
		return nil, err
	}
	oc := cfg.OAuth
	oc.Issuer, oc.Store, oc.SealKey, oc.Logger, oc.Now = cfg.Issuer, cfg.Store, cfg.SealKey, cfg.Logger, cfg.Now
	oc.Metrics = cfg.Metrics
	oc.DisableRateLimits = oc.DisableRateLimits || cfg.DisableRateLimits
	if oc.CIMD == nil {
		oc.CIMD = cimd.NewFetcher(&cimd.Options{AllowLoopback: cfg.Dev, Now: cfg.Now})
	}
	as, err := oauth.New(oc)
	if err != nil {
		return nil, err
	}
	sc := cfg.Shop
	if sc.Profiles == nil {
		// One fetcher (and cache) for the stores' negotiation and the
		// guard's signature checks: a profile is fetched once for both.
		sc.Profiles = &discovery.Fetcher{AllowInsecureLoopback: cfg.Dev}
	}
	sigs, err := guard.NewSignatureVerifier(guard.SignatureConfig{Profiles: sc.Profiles, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	g, err := guard.New(guard.Config{Credentials: as, Realm: cfg.Issuer, Signatures: sigs})
	if err != nil {
		return nil, err
	}
	sc.Accounts = cfg.Store
	sc.BaseURL, sc.Store, sc.Keys, sc.Guard, sc.Dev, sc.Logger, sc.Now = cfg.Issuer, cfg.Store, cfg.Keys, g, cfg.Dev, cfg.Logger, cfg.Now
	sc.Metrics = cfg.Metrics
	sc.DisableRateLimits = sc.DisableRateLimits || cfg.DisableRateLimits
	if sc.ClientIP == nil {
		// The proxies trusted to name the client for sign-in throttles
		// name it for the stores' rate limits too.
		sc.ClientIP = &clientip.Resolver{Trusted: oc.TrustedProxies}
	}
	stores, err := shop.New(sc)
	if err != nil {
		return nil, err
	}
	acct, err := account.New(account.Config{BaseURL: cfg.Issuer, Guard: g, Store: cfg.Store, Agents: as,
		Dev: cfg.Dev, DisableRateLimits: cfg.DisableRateLimits, ClientIP: sc.ClientIP, Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(oauth.PathMetadata, as)
	mux.Handle("/oauth/", as)
	mux.Handle("/ucp/oauth2/", as)
	mux.Handle(account.Path, acct)
	// More specific than the stores' well-known prefix under "/", so the
	// account's metadata is served here, not by the stores.
	mux.Handle("GET "+account.PathResourceMetadata, acct)
	mux.Handle("/", stores.Handler())
	return &Server{OAuth: as, Guard: g, Shop: stores, Account: acct, handler: mux, sweep: sw}, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run does the platform's background work until ctx ends: the hourly
// sweep of expired idempotency records and sessions, the retention sweep
// of OAuth records (SweepOAuth) every Config.SweepInterval, and order
// webhook deliveries every second. Every instance may run it.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		s.Shop.SweepEvery(ctx, time.Hour)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		s.sweepEvery(ctx)
	}()
	s.Shop.DeliverEvery(ctx, time.Second)
	<-done
	<-done
}
