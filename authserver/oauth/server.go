// Package oauth is the platform's OAuth 2.1 authorization server:
// authorization code with mandatory PKCE S256, rotating single-use refresh
// tokens with a grace window, client_credentials, CIMD client ids, a
// server-rendered consent page with buyer sign-in and spend allowances,
// revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414),
// token exchange for platforms' bridges (RFC 8693) and, when enabled,
// dynamic registration of local agents (RFC 7591/7592).
//
// One file per flow: clientauth.go (client authentication, platform API
// keys), authorize.go (the authorization request), consent.go and
// cookies.go (sign-in and consent), metadata.go, token*.go (the grants,
// token_exchange.go among them), resources.go (the protected resources
// platform applications run), register.go, revoke.go and introspect.go.
//
// Access tokens are opaque (ucpb_at_…), stored as SHA-256 hashes, and
// validated with one indexed read (ValidateAccessToken), so revocation
// takes effect on the next request. Nothing secret is stored in the clear.
package oauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/oauth/cimd"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Config configures a Server. Issuer and Store are required; every other
// zero value means the default.
type Config struct {
	// Issuer is the server's URL, without a trailing slash. Metadata is
	// served at Issuer + "/.well-known/oauth-authorization-server".
	Issuer string
	Store  store.Store
	// CIMD resolves URL client ids; nil turns CIMD off.
	CIMD *cimd.Fetcher

	AccessTokenTTL time.Duration // default 1 h
	RefreshTTL     time.Duration // absolute family lifetime; default 30 days
	RefreshGrace   time.Duration // idempotent refresh retries; default 30 s
	CodeTTL        time.Duration // default 60 s

	// SealKey (32 bytes) encrypts the token response kept for refresh
	// retries, and keys the session cookies. Instances behind one load
	// balancer need the same key. Default: random per process.
	SealKey []byte

	// DynamicRegistration turns on RFC 7591 dynamic client registration
	// (with RFC 7592 read and delete) at PathRegister, for public native
	// clients with loopback redirect URIs (what mcp-remote registers).
	// Off by default.
	DynamicRegistration bool

	// AllowPasswordGrant turns on the legacy password grant for script
	// apps and their registered developers. OAuth 2.1 removed it; off by
	// default.
	AllowPasswordGrant bool

	// RateLimits per client id and per IP on the token, revocation and
	// authorization endpoints, and the sign-in throttle. A zero field
	// takes its value from DefaultRateLimits; set DisableRateLimits to
	// turn them all off.
	RateLimits        RateLimits
	DisableRateLimits bool

	// TrustedProxies are the reverse proxies whose Forwarded and
	// X-Forwarded-For headers name the client. Rate limits and sign-in
	// throttles are kept per client network, and behind a proxy every
	// request comes from the proxy; nobody else may say who the client
	// is. Empty: the socket peer is the client.
	TrustedProxies []netip.Prefix

	// ResourceClients maps a protected resource (an RFC 8707 resource
	// indicator, compared as an exact string) to the confidential clients
	// that serve it. Introspection tells a client about the tokens issued
	// to it and about tokens issued for a resource it is listed under;
	// any other token is reported inactive (RFC 7662 §2.2), so one
	// client cannot read another's tokens.
	ResourceClients map[string][]string

	Logger *slog.Logger // nil: discard
	Now    func() time.Time
	// Metrics counts issued tokens; nil counts nothing.
	Metrics *metrics.Metrics

	// checkPassword replaces CheckPassword; only this package's tests
	// set it (export_test.go), to count the checks that reach it.
	checkPassword func(hash, password string) bool
}

// RateLimits holds the per-key limits.
type RateLimits struct {
	// PerClient is charged once a client has proved itself: a confidential
	// client by its secret, a public client by a valid code and verifier
	// or a valid refresh token.
	PerClient RateLimit
	// PerIP is charged on every request, per client network.
	PerIP RateLimit
	// SignInPerAccount bounds failed sign-ins to one account from one
	// client network. Keyed by network, a stranger's failures lock only
	// the stranger's network out of the account, never its owner
	// elsewhere.
	SignInPerAccount RateLimit
	// SignInPerNetwork bounds failed sign-ins from one client network
	// across all accounts, so a password tried against many accounts
	// (spraying) is throttled as one guess per account would not be.
	SignInPerNetwork RateLimit
	// RegisterPerNetwork bounds dynamic client registrations per client
	// network: each is a row that stays until deleted.
	RegisterPerNetwork RateLimit
}

// DefaultRateLimits are generous: a busy agent platform or a NAT full of
// buyers must not notice them; a credential-stuffing loop does. Sign-ins
// count failures only: 10 wrong passwords per account and network, then
// 5 a minute; 50 per network across accounts, then 10 a minute.
var DefaultRateLimits = RateLimits{
	PerClient:        RateLimit{Rate: 200, Burst: 400},
	PerIP:            RateLimit{Rate: 50, Burst: 100},
	SignInPerAccount: RateLimit{Rate: 5.0 / 60, Burst: 10},
	SignInPerNetwork: RateLimit{Rate: 10.0 / 60, Burst: 50},
	// 20 at once, then one every 3 minutes (the MCP SDK's own server
	// allows 20 an hour).
	RegisterPerNetwork: RateLimit{Rate: 1.0 / 180, Burst: 20},
}

// Server is the authorization server; it is an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	sealer  *sealer
	cookies *cookieCodec
	mux     *http.ServeMux
	ips     *clientip.Resolver
	ipLim   *limiter
	cliLim  *limiter
	// cimdSlots bounds CIMD fetches in flight per client network.
	cimdSlots *slots
	// loginLim counts failed sign-ins per account and network, so a
	// password cannot be guessed quickly, while a stranger failing against
	// an account cannot lock its owner out from another network;
	// loginNetLim counts them per network across accounts (signin.go).
	loginLim    *limiter
	loginNetLim *limiter
	// regLim counts dynamic client registrations per network.
	regLim *limiter
	// resourceClients is Config.ResourceClients, copied.
	resourceClients map[string][]string
	checkPassword   func(hash, password string) bool
}

// Endpoint paths, relative to the issuer. The token path is Artos's.
const (
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathAuthorize  = "/oauth/authorize"
	PathToken      = "/ucp/oauth2/token"
	PathRevoke     = "/ucp/oauth2/revoke"
	PathIntrospect = "/ucp/oauth2/introspect"
	PathScopes     = "/ucp/oauth2/scopes"
	// PathAccount is the buyer's own page: the agents they authorized,
	// to lower their spending limits or revoke them (buyerpage.go).
	PathAccount = "/oauth/account"
	// PathRegister is the RFC 7591 registration endpoint; a client's
	// RFC 7592 configuration endpoint is PathRegister + "/" + its id
	// (register.go). Served only with Config.DynamicRegistration.
	PathRegister = "/oauth/register"
)

// New checks cfg and builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("oauth: Config.Store is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("oauth: Issuer %q must be an absolute http(s) URL without query, fragment or trailing slash", cfg.Issuer)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTokenTTL, time.Hour)
	def(&cfg.RefreshTTL, 30*24*time.Hour)
	def(&cfg.RefreshGrace, 30*time.Second)
	def(&cfg.CodeTTL, 60*time.Second)
	if cfg.SealKey == nil {
		cfg.SealKey = make([]byte, 32)
		rand.Read(cfg.SealKey)
	}
	defLimit := func(l *RateLimit, v RateLimit) {
		if *l == (RateLimit{}) {
			*l = v
		}
	}
	defLimit(&cfg.RateLimits.PerClient, DefaultRateLimits.PerClient)
	defLimit(&cfg.RateLimits.PerIP, DefaultRateLimits.PerIP)
	defLimit(&cfg.RateLimits.SignInPerAccount, DefaultRateLimits.SignInPerAccount)
	defLimit(&cfg.RateLimits.SignInPerNetwork, DefaultRateLimits.SignInPerNetwork)
	defLimit(&cfg.RateLimits.RegisterPerNetwork, DefaultRateLimits.RegisterPerNetwork)
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, checkPassword: cfg.checkPassword}
	if s.checkPassword == nil {
		s.checkPassword = CheckPassword
	}
	if s.ips, err = newResolver(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if s.resourceClients, err = copyResourceClients(cfg.ResourceClients); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sealer, err = newSealer(cfg.SealKey); err != nil {
		return nil, err
	}
	s.cimdSlots = newSlots(4)
	s.cookies = newCookieCodec(cfg.SealKey, u.Scheme == "https", u.Path+"/oauth")
	if !cfg.DisableRateLimits {
		s.ipLim = newLimiter(cfg.RateLimits.PerIP, s.now)
		s.cliLim = newLimiter(cfg.RateLimits.PerClient, s.now)
		s.loginLim = newLimiter(cfg.RateLimits.SignInPerAccount, s.now)
		s.loginNetLim = newLimiter(cfg.RateLimits.SignInPerNetwork, s.now)
		s.regLim = newLimiter(cfg.RateLimits.RegisterPerNetwork, s.now)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+PathMetadata, s.handleMetadata)
	s.mux.HandleFunc("GET "+PathScopes, s.handleScopes)
	s.mux.HandleFunc("GET "+PathAuthorize, s.limited(s.handleAuthorize))
	s.mux.HandleFunc("POST "+PathAuthorize, s.limited(s.handleAuthorizePost))
	s.mux.HandleFunc("POST "+PathToken, s.limited(s.handleToken))
	s.mux.HandleFunc("POST "+PathRevoke, s.limited(s.handleRevoke))
	s.mux.HandleFunc("POST "+PathIntrospect, s.limited(s.handleIntrospect))
	s.mux.HandleFunc("GET "+PathAccount, s.limited(s.handleAccount))
	s.mux.HandleFunc("POST "+PathAccount, s.limited(s.handleAccountPost))
	if cfg.DynamicRegistration {
		s.mux.HandleFunc("POST "+PathRegister, s.limited(s.handleRegister))
		s.mux.HandleFunc("GET "+PathRegister+"/{client_id}", s.limited(s.handleRegisteredRead))
		s.mux.HandleFunc("DELETE "+PathRegister+"/{client_id}", s.limited(s.handleRegisteredDelete))
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Issuer returns the configured issuer.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// limited applies the per-IP limit. The per-client limit is charged in
// formClient, after the client authenticated: charging the client_id a
// request merely claims would let anyone exhaust a real client's bucket.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.ipLim.allow(s.clientKey(r)); !ok {
			s.tooMany(w, r, wait)
			return
		}
		h(w, r)
	}
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	s.writeError(w, r, errSlowDown(wait))
}

// clientKey is the client network a request came from, as a rate-limit
// key: the address behind any trusted proxies, IPv6 grouped by /64 (one
// host gets a whole /64, so per-address buckets would be free to
// multiply).
func (s *Server) clientKey(r *http.Request) string { return s.ips.Key(r) }

// newResolver checks the trusted proxy prefixes and keeps its own copy,
// so a caller reusing its slice cannot change them under a running server.
func newResolver(trusted []netip.Prefix) (*clientip.Resolver, error) {
	res := &clientip.Resolver{}
	for _, p := range trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("oauth: Config.TrustedProxies: %q is not a valid prefix", p)
		}
		res.Trusted = append(res.Trusted, p.Masked())
	}
	return res, nil
}

// copyResourceClients checks Config.ResourceClients: absolute resource
// URIs without a fragment, as authorization requests must name them
// (RFC 8707), and non-empty client ids.
func copyResourceClients(m map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(m))
	for _, res := range slices.Sorted(maps.Keys(m)) {
		if u, err := url.Parse(res); err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, fmt.Errorf("oauth: Config.ResourceClients: resource %q must be an absolute URI without a fragment", res)
		}
		for _, id := range m[res] {
			if id == "" {
				return nil, fmt.Errorf("oauth: Config.ResourceClients: resource %q lists an empty client id", res)
			}
		}
		out[res] = slices.Clone(m[res])
	}
	return out, nil
}

// randomID returns a 128-bit random identifier with a prefix.
func randomID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
