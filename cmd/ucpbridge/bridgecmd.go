package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// mcpRemote is the mcp-remote release the banner and README name: the
// version the interop tests in .ci run.
const mcpRemote = "mcp-remote@0.15.1"

const bridgeUsage = `usage: ucpbridge bridge --platform URL --api-key KEY [--stdio] [flags]

Runs the MCP bridge agents shop through, pointing at a platform API.

Over HTTP (the default) it serves MCP streamable HTTP at --public-url
(default http://<--addr>/mcp) as an OAuth-protected resource: MCP clients
(mcp-remote, desktop agents, the MCP SDKs) sign the buyer in at the
platform's authorization server, and the bridge exchanges each buyer token
for a platform token (RFC 8693) with the platform application's API key.
The platform must have the --public-url registered as a resource of that
platform application ("ucpbridge client add --resource", or dev does it).

With --stdio it speaks MCP on stdin/stdout (logs on stderr); the
connect_account tool signs the buyer in through the browser (loopback PKCE
as --client-id) and keeps the tokens in --token-file. The agent profile
(where stores find the key that signs the buyer's mandates) is then served
on --addr (loopback), unless --public-url names where it is published.

The agent's mandates are signed with --agent-key (made by "ucpbridge keys
generate"); without one a new key is made for this run only.
`

func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runBridgeIO(ctx, args, os.Stdin, stdout, stderr)
}

// runBridgeIO is runBridge with the stdio transport's input given.
func runBridgeIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, bridgeUsage)
	platformURL := fs.String("platform", "", "the platform API root and OAuth issuer, e.g. https://api.example.com (required)")
	apiKey := fs.String("api-key", "", "the platform application's API key, <client_id>.<secret> (required; prefer UCPBRIDGE_API_KEY)")
	stdio := fs.Bool("stdio", false, "speak MCP on stdin/stdout instead of HTTP")
	addr := fs.String("addr", "127.0.0.1:8081", "listen address: the MCP endpoint (HTTP), the agent profile (--stdio; port 0 picks one)")
	publicURL := fs.String("public-url", "", "the MCP endpoint's public URL, its OAuth resource (default http://<addr>/mcp)")
	agentKey := fs.String("agent-key", "", "ES256 key file signing the agent's mandates (from \"ucpbridge keys generate\")")
	tokenFile := fs.String("token-file", "", "--stdio: file keeping the buyer's tokens between runs (mode 0600)")
	clientID := fs.String("client-id", authserver.DemoAgentClientID, "--stdio: the public OAuth client connect_account signs the buyer in as")
	signRequests := fs.Bool("sign-requests", false, "sign every platform request (RFC 9421) with --agent-key: the signed trust tier")
	drain := fs.Duration("drain-timeout", 10*time.Second, "at shutdown, how long in-flight requests may take to finish")
	logs := addLogFlags(fs, "json")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *platformURL == "" || *apiKey == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("bridge: --platform and --api-key (or UCPBRIDGE_API_KEY) are required")
	}
	pu, err := url.Parse(*platformURL)
	if err != nil || (pu.Scheme != "https" && !(pu.Scheme == "http" && netguard.IsLoopbackHost(pu.Hostname()))) || pu.Host == "" {
		return fmt.Errorf("bridge: --platform %q must be an https URL (http only on loopback)", *platformURL)
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	key, err := loadAgentKey(*agentKey, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	mcpURL := *publicURL
	if mcpURL == "" {
		mcpURL = "http://" + ln.Addr().String() + "/mcp"
	}
	loopback := netguard.IsLoopbackHost(pu.Hostname())
	cfg := bridge.Config{PlatformURL: strings.TrimRight(*platformURL, "/"), APIKey: *apiKey, AgentProfile: profileURL(mcpURL),
		SigningKey: key, SignRequests: *signRequests, Logger: log, ClientID: *clientID, TokenFile: *tokenFile,
		// The sandbox rail's settler and plain-http businesses only
		// against a platform on this machine (a dev platform).
		AllowInsecureLoopback: loopback}
	if loopback {
		cfg.Crypto = ucpclient.SandboxSettler{}
	}
	b, err := bridge.New(cfg)
	if err != nil {
		return err
	}
	if *stdio {
		// The agent profile is served beside the stdio session: stores
		// fetch it to verify the buyer's mandates.
		hs := newHTTPServer(instrument(b.ProfileHandler(), log, nil), log)
		go hs.Serve(ln)
		defer hs.Close()
		log.Info("bridge: serving MCP on stdio", "platform", cfg.PlatformURL, "agent_profile", cfg.AgentProfile)
		return b.ServeStdio(ctx, stdin, stdout)
	}
	h, err := b.HTTPHandler(bridge.HTTPOptions{PublicURL: mcpURL, Logger: log})
	if err != nil {
		return err
	}
	if c, ok := h.(io.Closer); ok {
		defer c.Close()
	}
	fmt.Fprintf(stdout, "ucpbridge bridge: listening on %s, MCP at %s for %s\n", ln.Addr(), mcpURL, cfg.PlatformURL)
	printAgentConfig(stdout, mcpURL)
	return serveAll(ctx, *drain, log, listening{name: "bridge", ln: ln, srv: newHTTPServer(instrument(bridgeMux(h), log, nil), log)})
}

// bridgeMux adds /healthz to the bridge's handler.
func bridgeMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathHealthz, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", h)
	return mux
}

// profileURL is where the bridge serves the agent's UCP profile: the
// well-known path on the MCP endpoint's origin.
func profileURL(mcpURL string) string {
	u, err := url.Parse(mcpURL)
	if err != nil {
		return mcpURL
	}
	return u.Scheme + "://" + u.Host + "/.well-known/ucp"
}

// loadAgentKey reads the agent's signing key, or makes one for this run.
func loadAgentKey(path string, log *slog.Logger) (*mandate.SigningKey, error) {
	if path == "" {
		log.Warn("bridge: no --agent-key; mandates are signed with a key made for this run only")
		return mandate.GenerateSigningKey()
	}
	k, err := mandate.LoadSigningKey(path)
	if err != nil {
		return nil, fmt.Errorf("--agent-key: %w", err)
	}
	return k, nil
}

// loadOrCreateAgentKey keeps dev's bridge key in the data directory, so
// the agent's kid is stable across restarts.
func loadOrCreateAgentKey(dir string) (*mandate.SigningKey, error) {
	path := filepath.Join(dir, "bridge-agent.jwk")
	k, err := mandate.LoadSigningKey(path)
	if err == nil {
		return k, nil
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		return nil, err // there, but unreadable: never replaced
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if k, err = mandate.GenerateSigningKey(); err != nil {
		return nil, err
	}
	data, err := k.MarshalPrivateJWK()
	if err != nil {
		return nil, err
	}
	if err := writeNewFile(path, data); err != nil {
		if errors.Is(err, os.ErrExist) {
			return mandate.LoadSigningKey(path) // another start made it first
		}
		return nil, err
	}
	return k, nil
}

// startDevBridge runs the bridge in process for dev: on its own loopback
// listener, against the platform at base over loopback HTTP with the demo
// platform key, its URL registered as a resource of the demo platform.
// It returns the listener to serve and the MCP URL.
func startDevBridge(ctx context.Context, srv *authserver.Server, base, addr, keysDir string, log *slog.Logger) (listening, string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listening{}, "", nil, fmt.Errorf("--bridge-addr: %w", err)
	}
	fail := func(err error) (listening, string, func(), error) { ln.Close(); return listening{}, "", nil, err }
	mcpURL := "http://" + ln.Addr().String() + "/mcp"
	key, err := loadOrCreateAgentKey(keysDir)
	if err != nil {
		return fail(fmt.Errorf("bridge key: %w", err))
	}
	blog := log.With("component", "bridge")
	b, err := bridge.New(bridge.Config{PlatformURL: base, APIKey: authserver.DemoPlatformKey, AgentProfile: profileURL(mcpURL),
		SigningKey: key, Logger: blog, Crypto: ucpclient.SandboxSettler{}, AllowInsecureLoopback: true,
		ClientID: authserver.DemoAgentClientID})
	if err != nil {
		return fail(err)
	}
	if err := srv.OAuth.RegisterResource(ctx, authserver.DemoPlatformID, mcpURL); err != nil {
		return fail(fmt.Errorf("register the bridge as a resource: %w", err))
	}
	h, err := b.HTTPHandler(bridge.HTTPOptions{PublicURL: mcpURL, Issuer: base, Logger: blog})
	if err != nil {
		return fail(err)
	}
	closeFront := func() {}
	if c, ok := h.(io.Closer); ok {
		closeFront = func() { c.Close() }
	}
	return listening{name: "bridge", ln: ln, srv: newHTTPServer(instrument(bridgeMux(h), blog, nil), blog)}, mcpURL, closeFront, nil
}

// printAgentConfig prints how to connect an agent to the bridge at mcpURL.
func printAgentConfig(w io.Writer, mcpURL string) {
	fmt.Fprintf(w, `connect an agent (it signs the buyer in through the browser):
  npx -y %[1]s %[2]s
  desktop agent config: {"mcpServers":{"ucpbridge":{"command":"npx","args":["-y","%[1]s","%[2]s"]}}}
`, mcpRemote, mcpURL)
}
