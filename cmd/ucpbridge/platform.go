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
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// platform is what `dev` and `serve` differ by. Both run it through the
// one wiring path, runPlatform.
type platform struct {
	name   string // the command, for messages
	addr   string
	issuer string // "" means http://<the listen address> (dev)
	db     string // a postgres:// URL or a SQLite file path
	keys   string // the stores' key directory
	seal   string // the seal key file
	// seedAccounts creates the demo buyer and clients, whose secrets are
	// public: dev only. seedShops creates the demo stores.
	seedAccounts, seedShops bool
	dev                     bool
	noRateLimit             bool
	trustedProxies          []netip.Prefix
	log                     *slog.Logger
	// metricsAddr is a separate listener for /metrics ("" none);
	// metricsOnMain serves /metrics on addr too (dev: nothing there is
	// public).
	metricsAddr   string
	metricsOnMain bool
	// drain bounds the wait for in-flight requests at shutdown.
	drain time.Duration
	// dynamicRegistration turns on RFC 7591 at the authorization server.
	dynamicRegistration bool
	// bridgeAddr, when set, runs the MCP bridge in process on its own
	// listener (dev), its agent key in bridgeKeyDir (beside, not in,
	// the stores' key directory, where a store could share its name).
	bridgeAddr, bridgeKeyDir string
	// banner prints the URLs once listening; mcpURL is "" without a bridge.
	banner func(w io.Writer, base, mcpURL string)
}

// proxyList is the --trusted-proxy flag: CIDRs (or single addresses),
// comma-separated or repeated, whose Forwarded/X-Forwarded-For headers
// name the client for rate limits and sign-in throttles.
type proxyList []netip.Prefix

func (l *proxyList) String() string {
	var out []string
	for _, p := range *l {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

func (l *proxyList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return fmt.Errorf("%q is not an address or CIDR", f)
			}
			*l = append(*l, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return fmt.Errorf("%q is not an address or CIDR", f)
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

const devUsage = `usage: ucpbridge dev [flags]

Runs the whole platform locally on one loopback listener: the OAuth
authorization server, the seeded demo stores, /healthz, /readyz and
/metrics. Data (SQLite database, seal key, store keys) lives in --data-dir.
The demo fixtures' secrets are public: never expose dev to a network.
Logs are text on stderr; the URLs and fixtures are printed on stdout.
`

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, devUsage)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dataDir := fs.String("data-dir", ".ucpbridge", "directory for the SQLite database and keys (created if missing)")
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) to use instead of the SQLite file in --data-dir")
	noLimit := fs.Bool("no-rate-limit", false, "turn off the per-IP and per-client rate limits (load testing)")
	bridgeAddr := fs.String("bridge-addr", "127.0.0.1:8081", "listen address of the MCP bridge (\"off\": no bridge)")
	drain := fs.Duration("drain-timeout", 10*time.Second, "at shutdown, how long in-flight requests may take to finish")
	logs := addLogFlags(fs, "text")
	verbose := fs.Bool("v", false, "log at debug level (same as --log-level debug)")
	var proxies proxyList
	fs.Var(&proxies, "trusted-proxy", "reverse proxy `CIDRs` whose Forwarded/X-Forwarded-For name the client (comma-separated or repeated)")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *verbose {
		*logs.level = "debug"
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	p := platform{name: "dev", addr: *addr, db: filepath.Join(*dataDir, "ucpbridge.db"), keys: filepath.Join(*dataDir, "keys"),
		seal: filepath.Join(*dataDir, "seal.key"), seedAccounts: true, seedShops: true, dev: true, noRateLimit: *noLimit,
		trustedProxies: proxies, log: log, metricsOnMain: true, drain: *drain, dynamicRegistration: true,
		bridgeKeyDir: *dataDir,
		banner:       func(w io.Writer, base, mcpURL string) { devBanner(w, base, mcpURL, *dataDir) }}
	if *bridgeAddr != "off" {
		p.bridgeAddr = *bridgeAddr
	}
	if *dsn != "" {
		p.db = *dsn
	}
	return runPlatform(ctx, p, stdout, stderr)
}

const serveUsage = `usage: ucpbridge serve --issuer URL --db DSN --keys-dir DIR --seal-key FILE [flags]

Runs the platform API for real: an explicit public issuer, the spec's
https-only profile rules (no dev fallbacks), keys from disk. /healthz and
/readyz are served on --addr; /metrics only on --metrics-addr (keep it
off the public network). Logs are JSON on stderr, one line per request
at info level; secrets, tokens, keys, cookies and codes are never logged.
SIGINT or SIGTERM stops accepting connections, lets in-flight requests
finish (up to --drain-timeout), stops background work, then closes the
database.
`

// runServe runs the platform for real: an explicit public issuer, the
// spec's https-only profile rules (no dev fallbacks), keys from disk.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, serveUsage)
	addr := fs.String("addr", ":8080", "listen address")
	issuer := fs.String("issuer", "", "public base URL, e.g. https://api.example.com (required; http only for loopback)")
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) or SQLite file path (required)")
	keysDir := fs.String("keys-dir", "", "directory holding each store's signing key, <slug>.jwk (required; created keys are written here)")
	sealFile := fs.String("seal-key", "", "file holding the 32-byte seal key, shared by every instance (required; created if missing)")
	seed := fs.Bool("seed-demo", false, "create the demo stores if they do not exist")
	metricsAddr := fs.String("metrics-addr", "", "listen address for Prometheus /metrics, e.g. 127.0.0.1:9090 (default: off)")
	dcr := fs.Bool("dynamic-registration", false, "turn on RFC 7591 dynamic client registration (public native clients with loopback redirects, e.g. mcp-remote)")
	drain := fs.Duration("drain-timeout", 10*time.Second, "at shutdown, how long in-flight requests may take to finish")
	logs := addLogFlags(fs, "json")
	verbose := fs.Bool("v", false, "log at debug level (same as --log-level debug)")
	var proxies proxyList
	fs.Var(&proxies, "trusted-proxy", "reverse proxy `CIDRs` whose Forwarded/X-Forwarded-For name the client (comma-separated or repeated)")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *issuer == "" || *dsn == "" || *keysDir == "" || *sealFile == "" {
		fs.Usage()
		return errors.New("serve: --issuer, --db, --keys-dir and --seal-key are required")
	}
	if err := checkIssuer(*issuer); err != nil {
		return err
	}
	if *verbose {
		*logs.level = "debug"
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	return runPlatform(ctx, platform{name: "serve", addr: *addr, issuer: *issuer, db: *dsn, keys: *keysDir, seal: *sealFile,
		seedShops: *seed, trustedProxies: proxies, log: log, metricsAddr: *metricsAddr, drain: *drain, dynamicRegistration: *dcr,
		banner: func(w io.Writer, base, mcpURL string) {}}, stdout, stderr)
}

// runPlatform opens the store, builds the platform API (authserver.New)
// and serves it, with its background work, until ctx ends; then it
// drains (serveAll), stops the background work and closes the store, in
// that order, so no request or delivery finds the database closed.
func runPlatform(ctx context.Context, p platform, stdout, stderr io.Writer) error {
	log := p.log
	st, err := sqlstore.Open(ctx, p.db)
	if err != nil {
		return err
	}
	defer st.Close()
	seal, err := loadOrCreateKey(p.seal)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{ProcessCollectors: true})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	base := p.issuer
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	srv, err := authserver.New(authserver.Config{
		Issuer: base, Store: st, Keys: &shop.FileKeys{Dir: p.keys}, SealKey: seal, Dev: p.dev,
		DisableRateLimits: p.noRateLimit, Logger: log, Metrics: m,
		OAuth: oauth.Config{TrustedProxies: p.trustedProxies, DynamicRegistration: p.dynamicRegistration},
	})
	if err != nil {
		return err
	}
	now := time.Now()
	switch {
	case p.seedAccounts:
		err = authserver.SeedDemo(ctx, st, now)
	case p.seedShops:
		err = shop.Seed(ctx, st, shop.DemoShops(), now)
	}
	if err != nil {
		return err
	}
	var mainReg *prometheus.Registry
	if p.metricsOnMain {
		mainReg = reg
	}
	servers := []listening{{name: "platform", ln: ln, srv: newHTTPServer(instrument(opsMux(srv, st.DB(), mainReg, log), log, m), log)}}
	if p.metricsAddr != "" {
		mln, err := net.Listen("tcp", p.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer mln.Close()
		mux := http.NewServeMux()
		mux.Handle("GET "+pathMetrics, metricsHandler(reg))
		servers = append(servers, listening{name: "metrics", ln: mln, srv: newHTTPServer(mux, log)})
	}
	var mcpURL string
	if p.bridgeAddr != "" {
		bs, u, closeFront, err := startDevBridge(ctx, srv, base, p.bridgeAddr, p.bridgeKeyDir, log)
		if err != nil {
			return err
		}
		defer bs.ln.Close()
		defer closeFront()
		servers, mcpURL = append(servers, bs), u
	}
	fmt.Fprintf(stdout, "ucpbridge %s: listening on %s as %s\n", p.name, ln.Addr(), base)
	if p.metricsAddr != "" {
		fmt.Fprintf(stdout, "ucpbridge %s: metrics on http://%s%s\n", p.name, servers[1].ln.Addr(), pathMetrics)
	}
	p.banner(stdout, base, mcpURL)
	log.Info("started", "command", p.name, "addr", ln.Addr().String(), "issuer", base)
	// Background work outlives ctx until the listeners have drained: a
	// request finishing during the drain may still queue a webhook.
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	bg := make(chan struct{})
	go func() { defer close(bg); srv.Run(work) }()
	err = serveAll(ctx, p.drain, log, servers...)
	stop()
	<-bg
	log.Info("stopped", "command", p.name)
	return err
}

// newHTTPServer has the platform's timeouts; the server's own errors
// (TLS handshakes, panics) go to log.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

func devBanner(w io.Writer, base, mcpURL, dataDir string) {
	fmt.Fprintf(w, "  platform API     %s\n", base)
	if mcpURL != "" {
		fmt.Fprintf(w, "  MCP bridge       %s (OAuth-protected; metadata %s)\n", mcpURL, bridgePRM(mcpURL))
	}
	fmt.Fprintf(w, `  OAuth metadata   %[1]s/.well-known/oauth-authorization-server
  authorize        %[1]s%[2]s
  token            %[1]s%[3]s
  health           %[1]s%[12]s, %[1]s%[13]s, metrics %[1]s%[14]s
  data             %[4]s
fixtures (local use only):
  buyer            %[5]s / %[6]s
  agent client     %[7]s (public; redirect http://127.0.0.1/callback or http://localhost/callback, any port)
  merchant client  %[8]s / %[9]s (client_credentials)
  platform API key X-API-Key: %[10]s
stores (UCP %[11]s; REST at the store URL, MCP at <store>/mcp):
`, base, oauth.PathAuthorize, oauth.PathToken, dataDir, authserver.DemoBuyerEmail, authserver.DemoBuyerPassword,
		authserver.DemoAgentClientID, authserver.DemoMerchantID, authserver.DemoMerchantSecret, authserver.DemoPlatformKey, ucp.Version,
		pathHealthz, pathReadyz, pathMetrics)
	for _, sh := range shop.DemoShops() {
		fmt.Fprintf(w, "  %-16s %s/s/%s/.well-known/ucp\n", sh.Slug, base, sh.Slug)
	}
	fmt.Fprintf(w, "  all stores       %s/catalog/search (REST), %s/mcp (MCP)\n", base, base)
	if mcpURL != "" {
		printAgentConfig(w, mcpURL)
		fmt.Fprintf(w, "  then sign in as %s / %s, set a spending limit, and ask the agent to buy roses at flower-shop\n",
			authserver.DemoBuyerEmail, authserver.DemoBuyerPassword)
	}
}

// bridgePRM is the bridge's RFC 9728 metadata URL for its MCP endpoint.
func bridgePRM(mcpURL string) string {
	u, err := url.Parse(mcpURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + u.Path
}

// loadOrCreateKey keeps the seal key across restarts, so refresh retries
// and sign-in sessions survive a restart. A missing file is created (mode
// 0600, never over another instance's); an existing file that cannot be
// read or is not 32 bytes stops the start: replacing it would silently
// split instances that share it.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) == 32:
		return b, nil
	case err == nil:
		return nil, fmt.Errorf("seal key %s holds %d bytes, want 32 raw bytes (e.g. head -c 32 /dev/urandom)", path, len(b))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("seal key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(path) // another instance created it first
	}
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return key, nil
}

// checkIssuer: https, or http on a loopback host (a local TLS-terminating
// proxy); no path, query or trailing slash.
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || s[len(s)-1] == '/' {
		return fmt.Errorf("serve: --issuer %q must be an origin like https://api.example.com", s)
	}
	if u.Scheme == "https" || u.Scheme == "http" && netguard.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("serve: --issuer %q must use https", s)
}

// listening is one HTTP server and its listener.
type listening struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// serveAll serves every server until ctx ends or one fails, then shuts
// them all down: listeners close at once, idle connections are closed,
// and in-flight requests get up to drain to finish; whatever is still
// running then is cut off (and reported).
func serveAll(ctx context.Context, drain time.Duration, log *slog.Logger, servers ...listening) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.srv.Serve(s.ln) }()
	}
	var first error
	select {
	case first = <-errc:
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "drain_timeout", drain)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.srv.Shutdown(shutdown); err != nil {
			log.Warn("drain timed out: closing remaining connections", "server", s.name, "err", err)
			s.srv.Close()
			errs = append(errs, fmt.Errorf("%s: drain: %w", s.name, err))
		}
	}
	pending := len(servers)
	if first != nil {
		pending--
		if !errors.Is(first, http.ErrServerClosed) {
			errs = append(errs, first)
		}
	}
	for range pending {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
