// Package oauth is the platform's OAuth 2.1 authorization server:
// authorization code with mandatory PKCE S256, rotating single-use refresh
// tokens with a grace window, client_credentials, CIMD client ids, a
// server-rendered consent page with buyer sign-in and spend allowances,
// revocation (RFC 7009), introspection (RFC 7662) and metadata (RFC 8414).
//
// One file per flow: clientauth.go (client authentication, platform API
// keys), authorize.go (the authorization request), consent.go and
// cookies.go (sign-in and consent), metadata.go, token*.go (the grants),
// revoke.go and introspect.go.
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
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

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

	// AllowPasswordGrant turns on the legacy password grant for script
	// apps and their registered developers. OAuth 2.1 removed it; off by
	// default.
	AllowPasswordGrant bool

	// RateLimits per client id and per IP on the token, revocation and
	// authorization endpoints. Zero means DefaultRateLimits; set
	// DisableRateLimits to turn them off.
	RateLimits        RateLimits
	DisableRateLimits bool

	Logger *slog.Logger // nil: discard
	Now    func() time.Time
}

// RateLimits holds the per-key limits.
type RateLimits struct {
	PerClient RateLimit
	PerIP     RateLimit
}

// DefaultRateLimits are generous: a busy agent platform or a NAT full of
// buyers must not notice them; a credential-stuffing loop does.
var DefaultRateLimits = RateLimits{
	PerClient: RateLimit{Rate: 200, Burst: 400},
	PerIP:     RateLimit{Rate: 50, Burst: 100},
}

// Server is the authorization server; it is an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	sealer  *sealer
	cookies *cookieCodec
	mux     *http.ServeMux
	ipLim   *limiter
	cliLim  *limiter
	// cimdSlots bounds CIMD fetches in flight per client network.
	cimdSlots *slots
	// loginLim counts failed sign-ins per account and network, so a
	// password cannot be guessed quickly, while a stranger failing against
	// an account cannot lock its owner out from another network.
	loginLim *limiter
}

// Endpoint paths, relative to the issuer. The token path is Artos's.
const (
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathAuthorize  = "/oauth/authorize"
	PathToken      = "/ucp/oauth2/token"
	PathRevoke     = "/ucp/oauth2/revoke"
	PathIntrospect = "/ucp/oauth2/introspect"
	PathScopes     = "/ucp/oauth2/scopes"
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
	if cfg.RateLimits == (RateLimits{}) {
		cfg.RateLimits = DefaultRateLimits
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
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
		s.loginLim = newLimiter(RateLimit{Rate: 5.0 / 60, Burst: 10}, s.now)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+PathMetadata, s.handleMetadata)
	s.mux.HandleFunc("GET "+PathScopes, s.handleScopes)
	s.mux.HandleFunc("GET "+PathAuthorize, s.limited(s.handleAuthorize))
	s.mux.HandleFunc("POST "+PathAuthorize, s.limited(s.handleAuthorizePost))
	s.mux.HandleFunc("POST "+PathToken, s.limited(s.handleToken))
	s.mux.HandleFunc("POST "+PathRevoke, s.limited(s.handleRevoke))
	s.mux.HandleFunc("POST "+PathIntrospect, s.limited(s.handleIntrospect))
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
		if ok, wait := s.ipLim.allow(clientIP(r)); !ok {
			s.tooMany(w, r, wait)
			return
		}
		h(w, r)
	}
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{
		"error": "slow_down", "error_description": fmt.Sprintf("too many requests; retry in %d s", secs)})
}

// clientIP is the socket peer, with IPv6 grouped by /64 (one host gets a
// whole /64, so per-address buckets would be free to multiply).
// X-Forwarded-For is not trusted: behind a proxy, the proxy layer must hand
// the server the real peer.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return host
}

// randomID returns a 128-bit random identifier with a prefix.
func randomID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
