// Package authserver is the ucpbridge platform API server. This part is
// the OAuth 2.1 authorization server: authorization code with mandatory
// PKCE S256, rotating single-use refresh tokens with a grace window,
// client_credentials, CIMD client ids, a server-rendered consent page with
// buyer sign-in and spend allowances, revocation (RFC 7009), introspection
// (RFC 7662) and metadata (RFC 8414).
//
// Access tokens are opaque (ucpb_at_…), stored as SHA-256 hashes, and
// validated with one indexed read (ValidateAccessToken), so revocation
// takes effect on the next request. Nothing secret is stored in the clear.
package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
	CIMD *CIMDFetcher

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
		return nil, errors.New("authserver: Config.Store is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("authserver: Issuer %q must be an absolute http(s) URL without query, fragment or trailing slash", cfg.Issuer)
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

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	names := make([]string, len(Scopes))
	for i, sc := range Scopes {
		names[i] = sc.Name
	}
	grants := []string{"authorization_code", "refresh_token", "client_credentials"}
	if s.cfg.AllowPasswordGrant {
		grants = append(grants, "password")
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, map[string]any{
		"issuer":                                         s.cfg.Issuer,
		"authorization_endpoint":                         s.cfg.Issuer + PathAuthorize,
		"token_endpoint":                                 s.cfg.Issuer + PathToken,
		"revocation_endpoint":                            s.cfg.Issuer + PathRevoke,
		"introspection_endpoint":                         s.cfg.Issuer + PathIntrospect,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grants,
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"none", "client_secret_post", "client_secret_basic"},
		"revocation_endpoint_auth_methods_supported":     []string{"none", "client_secret_post", "client_secret_basic"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_post", "client_secret_basic"},
		"scopes_supported":                               names,
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          s.cfg.CIMD != nil,
	})
}

// handleScopes lists the scope catalogue, optionally filtered by a comma-
// or space-separated list of names.
func (s *Server) handleScopes(w http.ResponseWriter, r *http.Request) {
	filter := strings.FieldsFunc(r.URL.Query().Get("scopes"), func(c rune) bool { return c == ',' || c == ' ' })
	out := []Scope{}
	for _, sc := range Scopes {
		if len(filter) == 0 || slices.Contains(filter, sc.Name) {
			out = append(out, sc)
		}
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, map[string]any{"scopes": out})
}

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

// maxFormBytes bounds OAuth form bodies.
const maxFormBytes = 64 << 10

func parseForm(r *http.Request) error {
	if r.PostForm != nil {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return err
	}
	return cleanValues(r.Form)
}

// cleanValues refuses parameters that are not valid UTF-8 or contain NUL:
// no OAuth value has them, and PostgreSQL would turn them into a 500.
func cleanValues(v url.Values) error {
	for k, vals := range v {
		for _, s := range append(vals, k) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				return errors.New("parameters must be UTF-8 without NUL")
			}
		}
	}
	return nil
}

// client is a resolved client, registered or CIMD.
type client struct {
	ID           string
	Name         string
	Type         store.ClientType
	SecretHash   []byte
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string // empty: any catalogue scope
	Developers   []string
	CIMD         bool
}

func (c *client) confidential() bool { return len(c.SecretHash) > 0 }

// allows reports whether the client may use grant. Without a registered
// list, a client gets the buyer flow: authorization_code and refresh_token.
func (c *client) allows(grant string) bool {
	if len(c.GrantTypes) == 0 {
		return grant == "authorization_code" || grant == "refresh_token"
	}
	return slices.Contains(c.GrantTypes, grant)
}

// resolveClient finds a registered client or fetches a CIMD document.
func (s *Server) resolveClient(ctx context.Context, id string) (*client, error) {
	if id == "" {
		return nil, errInvalidClient("client_id is required")
	}
	if s.cfg.CIMD != nil && s.cfg.CIMD.IsCIMDClientID(id) {
		doc, err := s.cfg.CIMD.Fetch(ctx, id)
		if err != nil {
			var ce *CIMDError
			if errors.As(err, &ce) {
				return nil, &oauthError{Code: "invalid_client", Description: "client metadata document refused: " + ce.Reason, Status: http.StatusUnauthorized, cause: err}
			}
			return nil, errServer(err)
		}
		if doc.TokenEndpointAuthMethod != "none" {
			// An asymmetric client must authenticate; until private_key_jwt
			// is implemented, treating it as public would let a stolen
			// refresh token work without the client's key.
			return nil, errInvalidClient("token_endpoint_auth_method " + quoteShort(doc.TokenEndpointAuthMethod) + " is not supported; use none")
		}
		name := doc.ClientName
		if name == "" {
			name = id
		}
		return &client{ID: id, Name: name, Type: store.ClientInstalled, RedirectURIs: doc.RedirectURIs,
			GrantTypes: doc.GrantTypes, Scopes: strings.Fields(doc.Scope), CIMD: true}, nil
	}
	c, err := s.cfg.Store.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidClient("unknown client")
	}
	if err != nil {
		return nil, errServer(err)
	}
	return &client{ID: c.ID, Name: c.Name, Type: c.Type, SecretHash: c.SecretHash, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, Developers: c.Developers}, nil
}

// formClient parses a form POST and authenticates its client, writing
// the OAuth error itself when either fails.
func (s *Server) formClient(w http.ResponseWriter, r *http.Request) (*client, bool) {
	if err := parseForm(r); err != nil {
		s.writeError(w, r, errInvalidRequest("malformed form body"))
		return nil, false
	}
	c, oe := s.authenticateClient(r)
	if oe != nil {
		s.writeError(w, r, oe)
		return nil, false
	}
	if ok, wait := s.cliLim.allow(c.ID); !ok {
		s.tooMany(w, r, wait)
		return nil, false
	}
	return c, true
}

// authenticateClient applies the token-endpoint client authentication:
// client_secret_basic, client_secret_post or none (public clients). Only
// one method per request.
func (s *Server) authenticateClient(r *http.Request) (*client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return nil, errInvalidRequest("use one client authentication method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, errInvalidClient("malformed Basic credentials")
		}
		if f := r.PostForm.Get("client_id"); f != "" && f != id {
			return nil, errInvalidRequest("client_id differs from the authenticated client")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, err := s.resolveClient(r.Context(), id)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, errServer(err)
	}
	switch {
	case c.confidential() && !equalHash(hashToken(secret), c.SecretHash):
		return nil, errInvalidClient("client authentication failed")
	case !c.confidential() && secret != "":
		return nil, errInvalidClient("public clients have no secret")
	}
	return c, nil
}

// redirectAllowed matches redirect_uri against the client's list exactly,
// except that for loopback hosts (127.0.0.1, [::1], localhost) the port is
// ignored, as OAuth 2.1 requires for native apps. localhost and 127.0.0.1
// never match each other.
func redirectAllowed(registered []string, uri string) bool {
	if slices.Contains(registered, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || !isLoopbackHost(u.Hostname()) {
		return false
	}
	for _, reg := range registered {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == u.Hostname() && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery && ru.User == nil && u.User == nil {
			return true
		}
	}
	return false
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.") && net.ParseIP(h) != nil
}

func writeBody(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

// randomID returns a 128-bit random identifier with a prefix.
func randomID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
