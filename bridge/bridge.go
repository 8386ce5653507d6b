package bridge

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// Version is the bridge's MCP server version.
const Version = "0.1.0"

// Config configures a Bridge. Zero optional fields mean the defaults.
type Config struct {
	// PlatformURL is the platform API root (and OAuth issuer), e.g.
	// https://api.artos.sh. Required.
	PlatformURL string
	// APIKey is the platform's X-API-Key ("<client_id>.<secret>"). The
	// SDK sends it only on the calls the routing table gives to the
	// platform, never on buyer-bound ones.
	APIKey string
	// AgentProfile is the public URL where ProfileHandler is served (the
	// agent's UCP profile, .../.well-known/ucp). Required: stores fetch it
	// to verify the agent's mandates and signatures.
	AgentProfile string
	// UCPVersion, when set, is sent in UCP-Agent.
	UCPVersion string
	// SigningKey mints the AP2 mandates; its kid is published by
	// ProfileHandler. Required.
	SigningKey *mandate.SigningKey
	// SignRequests signs every outbound request with SigningKey (RFC
	// 9421, the signed trust tier).
	SignRequests bool
	// HTTPClient sends the platform requests; nil means the SDK's guarded
	// client.
	HTTPClient *http.Client
	// Logger receives operational logs (never tokens); nil is silent.
	Logger *slog.Logger

	// Crypto settles crypto payments (ucpclient.SandboxSettler in dev).
	// nil refuses the crypto rail.
	Crypto ucpclient.CryptoSettler
	// AllowInsecureLoopback lets business_url name an http:// business on
	// loopback (development and tests only).
	AllowInsecureLoopback bool
	// AccountToolsTTL is how long the discovered account tool list is
	// kept before the next buyer call lists it again; default 5 minutes.
	AccountToolsTTL time.Duration

	// Stdio only. ClientID is the public OAuth client connect_account
	// signs the buyer in as (e.g. the demo agent); TokenFile keeps the
	// buyer's tokens between runs (mode 0600); Scopes are requested
	// (default ucpclient.DefaultBuyerScopes).
	ClientID  string
	TokenFile string
	Scopes    []string
	// OpenBrowser shows the sign-in URL to the buyer during
	// connect_account; nil means the URL is only returned in the tool
	// result and logged. It must not block.
	OpenBrowser func(authURL string) error
	// ConnectTimeout bounds connect_account's wait for the buyer; default
	// 5 minutes.
	ConnectTimeout time.Duration
}

// Bridge is the MCP tool server. It is safe for concurrent use; one
// Bridge serves every buyer (each request carries its own).
type Bridge struct {
	cfg     Config
	c       *ucpclient.Client // platform key, no buyer
	signer  *ucpclient.Ap2Signer
	log     *slog.Logger
	srv     *server.MCPServer
	fetcher *discovery.Fetcher // business profiles (business_url)
	profile []byte             // the agent profile document

	account accountTools
	static  map[string]bool // the bridge's own tool names; discovered tools never replace them

	// stdio buyer: loaded from TokenFile or set by connect_account.
	stdioMu    sync.Mutex
	stdioBuyer *ucpclient.BuyerTokenSource
}

// New returns a Bridge for cfg with every tool registered.
func New(cfg Config) (*Bridge, error) {
	if cfg.PlatformURL == "" {
		return nil, errors.New("bridge: Config.PlatformURL is required")
	}
	if cfg.SigningKey == nil {
		return nil, errors.New("bridge: Config.SigningKey is required (it mints the AP2 mandates)")
	}
	if cfg.AgentProfile == "" {
		return nil, errors.New("bridge: Config.AgentProfile is required")
	}
	if _, err := url.Parse(cfg.AgentProfile); err != nil {
		return nil, fmt.Errorf("bridge: Config.AgentProfile: %w", err)
	}
	if cfg.AccountToolsTTL <= 0 {
		cfg.AccountToolsTTL = 5 * time.Minute
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	signer, err := ucpclient.NewAp2Signer(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	var hs *httpsig.Signer
	if cfg.SignRequests {
		hs, err = httpsig.NewSigner(crypto.Signer(cfg.SigningKey.PrivateKey()), cfg.SigningKey.KeyID(), nil)
		if err != nil {
			return nil, fmt.Errorf("bridge: request signer: %w", err)
		}
	}
	c, err := ucpclient.New(ucpclient.Config{BaseURL: cfg.PlatformURL, APIKey: cfg.APIKey, AgentProfile: cfg.AgentProfile,
		UCPVersion: cfg.UCPVersion, HTTPClient: cfg.HTTPClient, Signer: hs, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	prof, err := agentProfileDoc(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b := &Bridge{cfg: cfg, c: c, signer: signer, log: log, profile: prof, static: map[string]bool{},
		fetcher: &discovery.Fetcher{AllowInsecureLoopback: cfg.AllowInsecureLoopback}}
	b.account.ttl = cfg.AccountToolsTTL
	hooks := &server.Hooks{}
	hooks.AddBeforeListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest) {
		b.discoverAccountTools(ctx, false)
	})
	b.srv = server.NewMCPServer("ucpbridge", Version,
		server.WithToolCapabilities(true),
		server.WithRecovery(),
		server.WithInputSchemaValidation(),
		server.WithOutputSchemaValidation(),
		server.WithHooks(hooks),
		server.WithToolFilter(stdioOnly),
		server.WithInstructions(instructions),
	)
	b.registerTools()
	return b, nil
}

const instructions = `Shop at UCP stores for the buyer. Typical flow: search_products -> view_product -> create_cart -> ` +
	`create_checkout (or straight create_checkout with items) -> update_checkout (address, shipping option) -> ` +
	`confirm_purchase. Amounts in results are integer minor units of the currency (1250 USD = 12.50). ` +
	`Call get_connection_status to see whether the buyer's account is connected; buyer account tools ` +
	`(get_buyer_context, list_my_orders, ...) need it.`

// MCPServer returns the mcp-go server with every tool registered.
func (b *Bridge) MCPServer() *server.MCPServer { return b.srv }

// ServeStdio serves MCP over in and out until ctx ends or in is closed.
// The buyer comes from Config.TokenFile (refreshed on expiry, rotations
// saved) and connect_account signs one in. mcp-go keeps one stdio session
// per process, so serve one stdio stream at a time.
func (b *Bridge) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if err := b.loadStdioBuyer(ctx); err != nil {
		b.log.Warn("bridge: buyer token file not usable; connect_account signs the buyer in", "err", err)
	}
	s := server.NewStdioServer(b.srv)
	s.SetContextFunc(func(ctx context.Context) context.Context { return context.WithValue(ctx, stdioKey{}, true) })
	s.SetErrorLogger(slog.NewLogLogger(b.log.Handler(), slog.LevelError))
	return s.Listen(ctx, in, out)
}

// stdioOnly hides connect_account outside stdio (over HTTP the MCP
// client signs the buyer in).
func stdioOnly(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	if isStdio(ctx) {
		return tools
	}
	out := tools[:0:0]
	for _, t := range tools {
		if t.Name != "connect_account" {
			out = append(out, t)
		}
	}
	return out
}

// stdioKey marks a request served over stdio.
type stdioKey struct{}

func isStdio(ctx context.Context) bool { v, _ := ctx.Value(stdioKey{}).(bool); return v }

// buyer returns the buyer of this request: the one ContextWithBuyer put
// in ctx, else, over stdio, the connected buyer; nil when none.
func (b *Bridge) buyer(ctx context.Context) ucpclient.BuyerTokens {
	if t := buyerFromContext(ctx); t != nil {
		return t
	}
	if isStdio(ctx) {
		b.stdioMu.Lock()
		defer b.stdioMu.Unlock()
		if b.stdioBuyer != nil {
			return b.stdioBuyer
		}
	}
	return nil
}

// client returns the SDK client for this request: the platform key, and
// the request's buyer if there is one (the SDK sends it only on
// buyer-bound calls).
func (b *Bridge) client(ctx context.Context) *ucpclient.Client {
	if t := b.buyer(ctx); t != nil {
		return b.c.WithBuyer(t)
	}
	return b.c
}
