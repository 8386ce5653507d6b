package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// HTTPOptions configures the bridge's HTTP front (HTTPHandler). Zero
// optional fields mean the defaults.
type HTTPOptions struct {
	// PublicURL is the MCP endpoint's URL as clients see it, e.g.
	// https://agent.example.com/mcp: the bridge's own RFC 8707 resource,
	// served at its path. Required.
	PublicURL string
	// Issuer is the platform's OAuth issuer, byte for byte as its RFC 8414
	// metadata says; its token endpoint is discovered from that metadata.
	// Required.
	Issuer string
	// TokenEndpoint, when set, skips the discovery (tests, or an operator
	// pinning it).
	TokenEndpoint string
	// ExchangeClientID and ExchangeClientSecret authenticate the token
	// exchange: the platform application's client id and secret. Empty
	// means the two halves of the bridge's platform API key.
	ExchangeClientID, ExchangeClientSecret string
	// ExchangeResource is the resource asked for in the exchange; default
	// Issuer (the platform API root).
	ExchangeResource string
	// Scopes are what the protected-resource metadata advertises and the
	// 401 challenge asks for: what an agent needs to shop and read its
	// orders. Default DefaultScopes. Never offline_access (MCP
	// 2026-07-28: the client adds it from the authorization server's
	// metadata when it wants a refresh token).
	Scopes []string
	// MaxBodyBytes bounds a request body (413 past it); default 1 MiB.
	MaxBodyBytes int64
	// MaxTokenBytes bounds the bearer token (400 past it); default 4 KiB.
	MaxTokenBytes int
	// SessionIdleTTL ends a legacy (2025-xx) MCP session idle this long;
	// its id then gets 404 and the client starts a new one. Default 30 min.
	SessionIdleTTL time.Duration
	// MaxCachedTokens bounds the exchanged-token cache; default 10000.
	MaxCachedTokens int
	// AllowAnonymous serves requests without a bearer (catalog tools
	// only; buyer tools answer with how to connect) instead of a 401.
	// Off by default: mcp-remote and the MCP SDKs only sign the buyer in
	// when the endpoint challenges them.
	AllowAnonymous bool
	// HTTPClient fetches the authorization server metadata and sends the
	// token exchanges. nil means a guarded client (netguard: no proxy, no
	// redirects, loopback only when Issuer is on loopback), 10 s timeout.
	HTTPClient *http.Client
	// Logger gets the front's logs (never a token); nil discards.
	Logger *slog.Logger
}

// DefaultScopes are the scopes the bridge's metadata advertises: paying
// within the buyer's allowance (which the account tools also need) and
// reading the buyer's orders.
func DefaultScopes() []string { return []string{"purchase:complete", "orders:read"} }

// HTTPFront is the bridge's HTTP front: MCP streamable HTTP at
// PublicURL's path behind an OAuth bearer guard, RFC 9728 metadata, and
// the agent profile. It is an http.Handler; Close stops its session
// sweeper.
type HTTPFront struct {
	opts                   HTTPOptions
	log                    *slog.Logger
	mux                    *http.ServeMux
	mcp                    *server.StreamableHTTPServer
	sessions               *sessionIDs
	path                   string
	prmURL                 string
	scope                  string
	hc                     *http.Client
	apiKeyID, apiKeySecret string

	mu        sync.Mutex
	ex        *Exchanger // nil until the token endpoint is known
	lastTry   time.Time
	lastError error

	failLog throttle // exchange failures: a flood would log a line per request
}

// failLogEvery is how often at most the front logs exchange failures
// (busy, unreachable or failing token endpoint); the line says how many
// it left out since the last one.
const failLogEvery = 10 * time.Second

// throttle lets one event through per interval and counts the others.
type throttle struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged, and how many were
// held back since the last one that was.
func (t *throttle) allow(now time.Time, every time.Duration) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.next, t.suppressed = now.Add(every), 0
	return true, n
}

// logFailure logs an exchange failure at Error, at most once per
// failLogEvery.
func (f *HTTPFront) logFailure(msg string, err error) {
	if ok, n := f.failLog.allow(time.Now(), failLogEvery); ok {
		f.log.Error(msg, "err", err, "suppressed", n)
	}
}

// NewHTTPFront serves ms over HTTP for opts. profile, when non-nil, is
// served at /.well-known/ucp. apiKey is the bridge's platform API key,
// whose halves authenticate the exchange unless opts names a client.
func NewHTTPFront(ms *server.MCPServer, profile http.Handler, apiKey string, opts HTTPOptions) (*HTTPFront, error) {
	pu, err := url.Parse(opts.PublicURL)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.User != nil ||
		pu.RawQuery != "" || pu.Fragment != "" || !cleanHeaderValue(opts.PublicURL) {
		return nil, errors.New("bridge: HTTPOptions.PublicURL must be an absolute http(s) URL without query, fragment or quotes")
	}
	if pu.Scheme == "http" && !netguard.IsLoopbackHost(pu.Hostname()) {
		return nil, errors.New("bridge: HTTPOptions.PublicURL must use https (plain http only on loopback)")
	}
	path := pu.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !validPath(path) {
		return nil, errors.New("bridge: HTTPOptions.PublicURL's path may hold only letters, digits and - . _ ~ /")
	}
	iu, err := url.Parse(opts.Issuer)
	if err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.User != nil || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, errors.New("bridge: HTTPOptions.Issuer must be an absolute http(s) URL")
	}
	if ms == nil {
		return nil, errors.New("bridge: no MCP server")
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = DefaultScopes()
	}
	for _, s := range opts.Scopes {
		if s == "" || s == "offline_access" || !cleanHeaderValue(s) || strings.ContainsAny(s, " ") {
			return nil, fmt.Errorf("bridge: HTTPOptions.Scopes: %q is not a scope to advertise", s)
		}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxTokenBytes <= 0 {
		opts.MaxTokenBytes = 4 << 10
	}
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = 30 * time.Minute
	}
	if opts.ExchangeResource == "" {
		opts.ExchangeResource = opts.Issuer
	}
	f := &HTTPFront{opts: opts, log: opts.Logger, path: path, scope: strings.Join(opts.Scopes, " ")}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.apiKeyID, f.apiKeySecret = opts.ExchangeClientID, opts.ExchangeClientSecret
	if f.apiKeyID == "" && f.apiKeySecret == "" {
		f.apiKeyID, f.apiKeySecret, _ = strings.Cut(apiKey, ".")
	}
	if f.apiKeyID == "" || f.apiKeySecret == "" {
		return nil, errors.New("bridge: the token exchange needs the platform application's client id and secret (HTTPOptions or the API key)")
	}
	f.hc = opts.HTTPClient
	if f.hc == nil {
		f.hc = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: netguard.IsLoopbackHost(iu.Hostname()), Timeout: 10 * time.Second})
	}
	if opts.TokenEndpoint != "" {
		if f.ex, err = f.newExchanger(opts.TokenEndpoint); err != nil {
			return nil, err
		}
	}

	prmPath := server.ProtectedResourceMetadataPath(opts.PublicURL)
	f.prmURL = pu.Scheme + "://" + pu.Host + prmPath
	prm := server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
		Resource:               opts.PublicURL,
		AuthorizationServers:   []string{opts.Issuer},
		ScopesSupported:        opts.Scopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "ucpbridge MCP bridge",
	})

	f.sessions = &sessionIDs{}
	mcpOpts := []server.StreamableHTTPOption{
		server.WithEndpointPath(path),
		server.WithStreamableHTTPLogger(f.log),
		server.WithSessionIdleTTL(opts.SessionIdleTTL),
		// Sessions are known to this process and forgotten when they idle
		// out (mcp-go's default only checks an id's format, so an expired
		// id would live on); a client whose id is unknown gets 404 and
		// starts a new session.
		server.WithSessionIdManager(f.sessions),
	}
	var mcpHandler http.Handler
	if netguard.IsLoopbackHost(pu.Hostname()) {
		// mcp-go's DNS-rebinding guard as is: on a loopback socket the
		// Host must be a loopback name.
		f.mcp = server.NewStreamableHTTPServer(ms, mcpOpts...)
		mcpHandler = f.knownSession(f.mcp)
	} else {
		// Behind a reverse proxy on the same host, requests arrive on a
		// loopback socket with the public Host: admit exactly that one
		// besides the loopback names (a rebound attacker's page sends its
		// own domain, never this one).
		f.mcp = server.NewStreamableHTTPServer(ms, append(mcpOpts, server.WithDisableLocalhostProtection(true))...)
		mcpHandler = rebindingGuard(pu.Hostname(), f.knownSession(f.mcp))
	}

	f.mux = http.NewServeMux()
	pattern := path
	if path == "/" {
		pattern = "/{$}"
	}
	f.mux.Handle(pattern, f.guard(f.limitBody(mcpHandler)))
	f.mux.Handle(prmPath, prm)
	if prmPath != server.WellKnownProtectedResourcePath {
		f.mux.Handle(server.WellKnownProtectedResourcePath, prm)
	}
	if profile != nil {
		f.mux.Handle("/.well-known/ucp", profile)
	}
	return f, nil
}

// ServeHTTP serves the front; a panic below it is logged and answered 500.
func (f *HTTPFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			f.log.Error("bridge: panic serving HTTP", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeJSONError(w, http.StatusInternalServerError, "server_error", "internal error")
		}
	}()
	f.mux.ServeHTTP(w, r)
}

// Close stops the MCP sessions' idle sweeper and ends the sessions.
func (f *HTTPFront) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.mcp.Shutdown(ctx)
}

// PRMURL is the RFC 9728 metadata URL the 401 challenge names.
func (f *HTTPFront) PRMURL() string { return f.prmURL }

// Exchanger is the token exchanger, nil until the token endpoint is known.
func (f *HTTPFront) Exchanger() *Exchanger {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ex
}

func (f *HTTPFront) newExchanger(tokenURL string) (*Exchanger, error) {
	return NewExchanger(ExchangeOptions{
		TokenURL: tokenURL, ClientID: f.apiKeyID, ClientSecret: f.apiKeySecret,
		Resource: f.opts.ExchangeResource, HTTPClient: f.opts.HTTPClient, MaxEntries: f.opts.MaxCachedTokens,
	})
}

// discoverRetry is how long a failed metadata discovery is answered 503
// before it is tried again.
const discoverRetry = 2 * time.Second

// exchanger returns the Exchanger, discovering the token endpoint from
// the issuer's RFC 8414 metadata on first use: the platform may start
// after the bridge (dev serves both from one process).
func (f *HTTPFront) exchanger(ctx context.Context) (*Exchanger, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ex != nil {
		return f.ex, nil
	}
	if f.lastError != nil && time.Since(f.lastTry) < discoverRetry {
		return nil, f.lastError
	}
	f.lastTry = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	asm, err := oauthex.GetAuthServerMeta(ctx, metadataURL(f.opts.Issuer), f.opts.Issuer, f.hc)
	if err == nil && asm == nil {
		err = errors.New("the issuer publishes no RFC 8414 metadata")
	}
	if err == nil && asm.Issuer != f.opts.Issuer {
		err = fmt.Errorf("metadata issuer %q is not %q", asm.Issuer, f.opts.Issuer)
	}
	if err == nil {
		f.ex, err = f.newExchanger(asm.TokenEndpoint)
	}
	if err != nil {
		f.lastError = fmt.Errorf("bridge: authorization server metadata: %w", err)
		return nil, f.lastError
	}
	f.lastError = nil
	return f.ex, nil
}

// metadataURL is the RFC 8414 §3.1 metadata URL of issuer (the
// well-known segment inserted before any path).
func metadataURL(issuer string) string {
	u, _ := url.Parse(issuer)
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + p
}

// guard is the bearer check in front of the MCP endpoint.
func (f *HTTPFront) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("access_token") {
			// RFC 6750 §2.3 tokens in URLs end up in logs and histories:
			// the metadata says header only.
			f.challenge(w, http.StatusBadRequest, "invalid_request", "send the bearer token in the Authorization header, never in the URL")
			return
		}
		auth := r.Header.Values("Authorization")
		if len(auth) == 0 {
			if f.opts.AllowAnonymous {
				next.ServeHTTP(w, r)
				return
			}
			f.challenge(w, http.StatusUnauthorized, "", "")
			return
		}
		if len(auth) > 1 {
			f.challenge(w, http.StatusBadRequest, "invalid_request", "one Authorization header at most")
			return
		}
		scheme, tok, _ := strings.Cut(auth[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			// RFC 6750 §3.1: an unsupported scheme is no token at all, so
			// the challenge carries no error code.
			f.challenge(w, http.StatusUnauthorized, "", "")
			return
		}
		tok = strings.TrimLeft(tok, " ")
		if len(tok) > f.opts.MaxTokenBytes {
			f.challenge(w, http.StatusBadRequest, "invalid_request", "the bearer token is too long")
			return
		}
		if !b64token(tok) {
			f.challenge(w, http.StatusUnauthorized, "invalid_token", "the bearer token is malformed")
			return
		}
		ex, err := f.exchanger(r.Context())
		if err != nil {
			f.logFailure("bridge: token exchange unavailable", err)
			f.unavailable(w)
			return
		}
		pt, err := ex.Exchange(r.Context(), tok)
		if err != nil {
			var xe *ExchangeError
			switch {
			case errors.As(err, &xe) && xe.TokenRefused():
				f.log.Info("bridge: bearer refused by the token exchange", "code", xe.Code)
				f.challenge(w, http.StatusUnauthorized, "invalid_token", "the token was refused; refresh it or sign in again")
			case r.Context().Err() != nil:
				// The client went away: nothing to answer.
				w.WriteHeader(http.StatusServiceUnavailable)
			default:
				f.logFailure("bridge: token exchange failed", err)
				f.unavailable(w)
			}
			return
		}
		buyer := &exchangedBuyer{ex: ex, subject: tok, tok: pt}
		ctx := ContextWithBuyer(r.Context(), buyer)
		ctx = contextWithEvict(ctx, buyer.evict)
		r2 := r.WithContext(ctx)
		// The bearer stops here: tool handlers see the request headers
		// (CallToolRequest.Header), and none of them may forward it.
		r2.Header = r.Header.Clone()
		r2.Header.Del("Authorization")
		next.ServeHTTP(w, r2)
	})
}

// limitBody reads a POST body up to MaxBodyBytes (413 past it) before the
// MCP server, which would read any size.
func (f *HTTPFront) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > f.opts.MaxBodyBytes {
			tooLarge(w, f.opts.MaxBodyBytes)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.opts.MaxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				tooLarge(w, f.opts.MaxBodyBytes)
				return
			}
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// knownSession answers 404, as mcp-go does on POST, to a legacy GET or
// DELETE whose Mcp-Session-Id this process did not issue or has ended
// (DELETE, idle sweeper). mcp-go checks the id only on POST: on GET an
// unknown id opened an SSE stream for a session under the client's chosen
// id, and DELETE of one answered 200, so a client whose session had
// expired never learnt it had to start a new one. A GET or DELETE without
// an id, and 2026-07-28 requests (no sessions; mcp-go answers 405), pass.
func (f *HTTPFront) knownSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodDelete {
			if id := r.Header.Get(server.HeaderKeySessionID); id != "" && !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
				if _, err := f.sessions.Validate(id); err != nil {
					http.Error(w, "Invalid session ID", http.StatusNotFound)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// rebindingGuard refuses (403) a request that arrived on a loopback
// socket with a Host that is neither a loopback name nor publicHost: the
// DNS-rebinding check of mcp-go, which has no allowlist, plus the bridge's
// public name.
func rebindingGuard(publicHost string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if la != nil {
			local, _, _ := net.SplitHostPort(la.String())
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if netguard.IsLoopbackHost(local) && !netguard.IsLoopbackHost(host) && !strings.EqualFold(host, publicHost) {
				writeJSONError(w, http.StatusForbidden, "invalid_request", "invalid Host header")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	writeJSONError(w, http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("the request body is larger than %d bytes", limit))
}

// challenge answers with an RFC 6750 / RFC 9728 challenge. code is ""
// when no token was presented (no error parameter then, so the client
// signs in rather than treating a token as refused). Every value is fixed
// text or checked at construction: nothing from the request is echoed.
func (f *HTTPFront) challenge(w http.ResponseWriter, status int, code, desc string) {
	var b strings.Builder
	b.WriteString("Bearer ")
	if code != "" {
		fmt.Fprintf(&b, `error="%s", error_description="%s", `, code, desc)
	}
	fmt.Fprintf(&b, `resource_metadata="%s", scope="%s"`, f.prmURL, f.scope)
	w.Header().Set("WWW-Authenticate", b.String())
	if code == "" {
		code, desc = "unauthorized", "sign the buyer in: the protected resource metadata at "+f.prmURL+" names the authorization server"
	}
	writeJSONError(w, status, code, desc)
}

func (f *HTTPFront) unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
		"the platform's authorization server cannot exchange the token right now; try again shortly")
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// b64token is RFC 6750 §2.1's token syntax:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// cleanHeaderValue reports whether s can sit in a quoted header parameter
// as is: printable ASCII without quotes or backslashes.
func cleanHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func validPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", c) >= 0) {
			return false
		}
	}
	return !strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.Contains(p, "/../")
}

// sessionIDs is the legacy MCP session ids this process issued: an id is
// valid until DELETE or until the idle sweeper (WithSessionIdleTTL)
// terminates it, after which it is unknown (404). Nothing is kept for a
// terminated id, so memory is bounded by the live sessions. Session ids
// carry no authority: every request is authenticated by its own bearer.
type sessionIDs struct{ m sync.Map }

const sessionPrefix = "mcp-session-"

func (s *sessionIDs) Generate() string {
	id := sessionPrefix + rand.Text()
	s.m.Store(id, struct{}{})
	return id
}

func (s *sessionIDs) Validate(id string) (bool, error) {
	if _, ok := s.m.Load(id); !ok {
		return false, errors.New("unknown session")
	}
	return false, nil
}

func (s *sessionIDs) Terminate(id string) (bool, error) {
	s.m.Delete(id)
	return false, nil
}

// HTTPHandler serves the bridge over streamable HTTP as an OAuth-protected
// resource (see HTTPFront): opts.Issuer defaults to Config.PlatformURL,
// the exchange authenticates with the halves of Config.APIKey, and the
// agent profile is served at /.well-known/ucp. The handler is an
// *HTTPFront; its Close stops the session sweeper.
func (b *Bridge) HTTPHandler(opts HTTPOptions) (http.Handler, error) {
	if opts.Issuer == "" {
		opts.Issuer = strings.TrimRight(b.cfg.PlatformURL, "/")
	}
	if opts.Logger == nil {
		opts.Logger = b.log
	}
	return NewHTTPFront(b.srv, b.ProfileHandler(), b.cfg.APIKey, opts)
}
