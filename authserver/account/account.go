package account

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Paths, relative to the API host.
const (
	// Path is the account MCP endpoint.
	Path = "/account/mcp"
	// PathResourceMetadata is its RFC 9728 protected-resource metadata:
	// the well-known prefix inserted before the resource's path.
	PathResourceMetadata = shop.PathResourceMetadata + Path
)

// DefaultMaxBody bounds a request body. The largest legitimate request
// (update_spending_limits) is a few hundred bytes; mcp-go itself would
// read any size.
const DefaultMaxBody = 64 << 10

// Identifier turns a request's credentials into a principal;
// *guard.Guard is one.
type Identifier interface {
	Identify(r *http.Request) (*guard.Principal, error)
}

// Store is what the tools read. authserver.Store (sqlstore) has it all.
type Store interface {
	// Buyer reads the account (profile, address book, saved card).
	Buyer(ctx context.Context, id string) (*store.Buyer, error)
	// Client names the agents in list_my_agent_authorizations.
	Client(ctx context.Context, id string) (*store.Client, error)
	// Shops names the stores and resolves a bare order id.
	Shops(ctx context.Context) ([]*store.Shop, error)
	Order(ctx context.Context, shop, id string) (*store.Order, error)
	BuyerOrders(ctx context.Context, buyerID string, after *store.OrderCursor, limit int) ([]*store.Order, error)
	// Spent is what a (buyer, agent) pair's holds count in a window.
	Spent(ctx context.Context, buyerID, clientID string, from, to, now time.Time) (int64, error)
}

// Agents reads and changes the buyer's agent authorizations;
// *oauth.Server is one.
type Agents interface {
	Authorizations(ctx context.Context, buyerID string) ([]oauth.Authorization, error)
	// LowerAllowance lowers limits only: oauth.ErrNotLower for a raise,
	// store.ErrNotFound when there is no allowance.
	LowerAllowance(ctx context.Context, buyerID, clientID string, to oauth.Allowance) (*oauth.Allowance, error)
	RevokeAuthorization(ctx context.Context, buyerID, clientID string) (int64, error)
}

// Config configures the account server. BaseURL, Guard, Store and Agents
// are required; other zero values mean the defaults.
type Config struct {
	// BaseURL is the API host and OAuth issuer, without a trailing slash:
	// the resource is BaseURL + Path, and the protected-resource metadata
	// names BaseURL as the authorization server.
	BaseURL string
	Guard   Identifier
	Store   Store
	Agents  Agents
	// Dev keeps mcp-go's DNS-rebinding guard (loopback requests must
	// name a loopback host). Outside dev the API is reached by name,
	// often through a same-host proxy, and every request is
	// authenticated anyway.
	Dev bool
	// MaxBody bounds request bodies; default DefaultMaxBody.
	MaxBody int64
	// ScopesSupported are the scopes the metadata advertises; default
	// DefaultScopes().
	ScopesSupported []string
	// RateLimit bounds each buyer's calls through each agent client;
	// default DefaultRateLimit. DisableRateLimits turns it off (tests,
	// load runs).
	RateLimit         ratelimit.Limit
	DisableRateLimits bool
	// ClientIP finds a caller's network behind trusted proxies, for the
	// budget of refused credentials (DefaultFailureLimit per network);
	// nil is the socket peer.
	ClientIP *clientip.Resolver
	Logger   *slog.Logger // nil: discard
	Now      func() time.Time
}

// DefaultRateLimit is 10 calls a second, bursts of 40, per buyer and
// agent client: an agent reads the account a few times a task, and every
// call is a few database reads.
var DefaultRateLimit = ratelimit.Limit{Rate: 10, Burst: 40}

// DefaultFailureLimit bounds refused credentials per client network: 20
// bad tokens at once, then one every 6 s. Past it a network gets 429
// before its credentials are looked up, so guessing costs the platform
// nothing.
var DefaultFailureLimit = ratelimit.Limit{Rate: 1.0 / 6, Burst: 20}

// DefaultScopes are the buyer scopes the metadata advertises by default.
// The account tools need purchase:complete (the order tools also take an
// order-read scope: the guard's table); a client that learns its scopes
// from this document asks for these, so one sign-in also lets it shop,
// see orders at the stores and stay signed in (offline_access: clients
// written to the 2025 MCP revisions add it only when a document lists
// it).
func DefaultScopes() []string {
	return []string{guard.ScopePurchase, guard.ScopeOrdersRead, guard.ScopeOrderRead, "offline_access"}
}

// Server is the account MCP server. It is an http.Handler serving Path
// and PathResourceMetadata, and is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	resource string             // BaseURL + Path
	metadata []byte             // the RFC 9728 document, fixed at New
	limits   *ratelimit.Limiter // per buyer and agent; nil: no limit
	failures *ratelimit.Limiter // refused credentials per network; nil: no limit
	mcp      http.Handler
	mux      *http.ServeMux
}

// New returns the account server.
func New(cfg Config) (*Server, error) {
	if cfg.BaseURL == "" || cfg.Guard == nil || cfg.Store == nil || cfg.Agents == nil {
		return nil, errors.New("account: Config.BaseURL, Guard, Store and Agents are required")
	}
	// The resource identifier must equal what clients derive, byte for
	// byte (RFC 9728 §3.3); a trailing slash would break that.
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.ScopesSupported == nil {
		cfg.ScopesSupported = DefaultScopes()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, resource: cfg.BaseURL + Path}
	if !cfg.DisableRateLimits {
		if cfg.RateLimit.IsZero() {
			cfg.RateLimit = DefaultRateLimit
		}
		l, err := ratelimit.New(cfg.RateLimit, &ratelimit.Options{Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		f, err := ratelimit.New(DefaultFailureLimit, &ratelimit.Options{Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		s.limits, s.failures = l, f
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	md, err := json.Marshal(shop.ResourceMetadata{Resource: s.resource, AuthorizationServers: []string{cfg.BaseURL},
		ScopesSupported: cfg.ScopesSupported, BearerMethodsSupported: []string{"header"},
		ResourceName: "ucpbridge buyer account"})
	if err != nil {
		return nil, err
	}
	s.metadata = md

	srv := server.NewMCPServer("ucpbridge-account", "1.0.0",
		server.WithToolCapabilities(false), server.WithRecovery(),
		// The schemas are exact: arguments are checked before a handler
		// runs (a bad one is a tool error the model can correct), and
		// results are checked against what tools/list promises.
		server.WithInputSchemaValidation(), server.WithOutputSchemaValidation(),
		server.WithInstructions(instructions))
	s.addTools(srv)
	s.mcp = server.NewStreamableHTTPServer(srv, server.WithStateLess(true),
		server.WithStreamableHTTPLogger(s.log), server.WithDisableLocalhostProtection(!cfg.Dev))

	s.mux = http.NewServeMux()
	s.mux.HandleFunc(Path, s.serveMCP)
	s.mux.HandleFunc("GET "+PathResourceMetadata, s.serveResourceMetadata)
	return s, nil
}

const instructions = "The buyer's own account, for the buyer whose bearer token you hold. " +
	"Call get_buyer_context first: it gives the default shipping address and your spending caps " +
	"(amounts are integer minor units of the currency; the daily cap resets at 00:00 UTC). " +
	"An order you place may cost at most the smaller of maxPerOrderAmount and remainingTodayAmount."

// ServeHTTP implements http.Handler for Path and PathResourceMetadata.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ResourceMetadataURL is the URL of the RFC 9728 document, as 401
// challenges name it.
func (s *Server) ResourceMetadataURL() string { return s.cfg.BaseURL + PathResourceMetadata }

// serveResourceMetadata serves the RFC 9728 document. It is public and
// the same for everyone, so browsers' MCP clients may read it across
// origins and caches may keep it.
func (s *Server) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	w.Write(s.metadata)
}
