package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Dev fixtures. They are documented in README.md and are for local use
// only: the secret and password are public.
const (
	DevBuyerEmail     = "ada@example.com"
	DevBuyerPassword  = "ucpbridge-demo"
	DevAgentClientID  = "demo-agent"
	DevMerchantID     = "demo-merchant"
	DevMerchantSecret = "ucpb_cs_demo-merchant-secret-for-local-development-only"
	DevPlatformID     = "demo-platform"
	DevPlatformSecret = "ucpb_cs_demo-platform-key-for-local-development-only"
	// DevPlatformKey is the platform API key (X-API-Key) of the demo
	// platform: "<client_id>.<secret>".
	DevPlatformKey = DevPlatformID + "." + DevPlatformSecret
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dataDir := fs.String("data-dir", ".ucpbridge", "directory for the SQLite database and keys (created if missing)")
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) to use instead of the SQLite file in --data-dir")
	noLimit := fs.Bool("no-rate-limit", false, "turn off the per-IP and per-client rate limits (load testing)")
	verbose := fs.Bool("v", false, "log every request error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	db := filepath.Join(*dataDir, "ucpbridge.db")
	if *dsn != "" {
		db = *dsn
	}
	st, err := sqlstore.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := seedDev(ctx, st); err != nil {
		return err
	}
	key, err := loadOrCreateKey(filepath.Join(*dataDir, "seal.key"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	as, err := authserver.New(authserver.Config{
		Issuer:            base,
		Store:             st,
		CIMD:              authserver.NewCIMDFetcher(&authserver.CIMDOptions{AllowLoopback: true}),
		SealKey:           key,
		DisableRateLimits: *noLimit,
		Logger:            slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		ln.Close()
		return err
	}
	stores, err := shop.New(shop.Config{
		BaseURL:      base,
		Store:        st,
		Keys:         &shop.FileKeys{Dir: filepath.Join(*dataDir, "keys")},
		Authenticate: identify(as, base),
		Dev:          true,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		ln.Close()
		return err
	}
	if err := shop.Seed(ctx, st, shop.DemoShops(), time.Now()); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: platformHandler(as, stores), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Fprintf(stdout, `ucpbridge dev: listening on %[1]s
  OAuth metadata   %[1]s/.well-known/oauth-authorization-server
  authorize        %[1]s%[2]s
  token            %[1]s%[3]s
  data             %[4]s
fixtures (local use only):
  buyer            %[5]s / %[6]s
  agent client     %[7]s (public; redirect http://127.0.0.1/callback or http://localhost/callback, any port)
  merchant client  %[8]s / %[9]s (client_credentials)
  platform API key X-API-Key: %[10]s
stores (UCP %[11]s; REST at the store URL, MCP at <store>/mcp):
`, base, authserver.PathAuthorize, authserver.PathToken, *dataDir, DevBuyerEmail, DevBuyerPassword, DevAgentClientID, DevMerchantID, DevMerchantSecret,
		DevPlatformKey, ucp.Version)
	for _, sh := range shop.DemoShops() {
		fmt.Fprintf(stdout, "  %-16s %s/s/%s/.well-known/ucp\n", sh.Slug, base, sh.Slug)
	}
	fmt.Fprintf(stdout, "  all stores       %s/catalog/search (REST), %s/mcp (MCP)\n", base, base)

	go stores.SweepEvery(ctx, time.Hour)
	go stores.DeliverEvery(ctx, time.Second)
	return serveUntilDone(ctx, srv, ln)
}

// seedDev creates the fixtures once; later runs find them and keep what
// is there.
func seedDev(ctx context.Context, st store.Store) error {
	now := time.Now()
	for _, err := range []error{
		st.CreateBuyer(ctx, &store.Buyer{ID: "buyer_ada", Email: DevBuyerEmail, PasswordHash: authserver.HashPassword(DevBuyerPassword), CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DevAgentClientID, Type: store.ClientInstalled, Name: "Demo agent",
			RedirectURIs: []string{"http://127.0.0.1/callback", "http://localhost/callback"},
			GrantTypes:   []string{"authorization_code", "refresh_token"}, CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DevMerchantID, Type: store.ClientWeb, Name: "Demo merchant",
			SecretHash: authserver.HashClientSecret(DevMerchantSecret), GrantTypes: []string{"client_credentials"},
			Scopes: []string{"orders:read", "dev.ucp.shopping.catalog.search:read", "dev.ucp.shopping.catalog.lookup:read"}, CreatedAt: now}),
		st.CreateClient(ctx, &store.Client{ID: DevPlatformID, Type: store.ClientWeb, Name: "Demo platform",
			SecretHash: authserver.HashClientSecret(DevPlatformSecret), GrantTypes: []string{"client_credentials"}, CreatedAt: now}),
	} {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// loadOrCreateKey keeps the seal key across restarts, so refresh retries
// and sign-in sessions survive a restart of the dev server.
func loadOrCreateKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// platformHandler serves the OAuth server and the stores on one host, as
// the Artos API host does.
func platformHandler(as *authserver.Server, stores *shop.Service) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(authserver.PathMetadata, as)
	mux.Handle("/oauth/", as)
	mux.Handle("/ucp/oauth2/", as)
	mux.Handle("/", stores.Handler())
	return mux
}

// identify adapts the OAuth server's credential check to the stores.
func identify(as *authserver.Server, realm string) func(*http.Request) (*shop.Principal, error) {
	return func(r *http.Request) (*shop.Principal, error) {
		c, err := as.Identify(r)
		switch {
		case errors.Is(err, authserver.ErrInvalidAPIKey), errors.Is(err, authserver.ErrInvalidToken):
			return nil, &shop.ProtocolError{Status: http.StatusUnauthorized, RPCCode: -32000, Code: "invalid_token",
				Content:         "the API key or access token is not valid",
				WWWAuthenticate: fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\"", realm)}
		case err != nil:
			return nil, &shop.ProtocolError{Status: http.StatusServiceUnavailable, RPCCode: -32000, Code: "unavailable",
				Content: "authentication is unavailable", RetryAfter: 1}
		case c == nil:
			return nil, nil
		}
		return &shop.Principal{ClientID: c.ClientID, BuyerID: c.BuyerID, Scopes: c.Scopes}, nil
	}
}

// serveUntilDone serves until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
