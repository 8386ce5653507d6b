package ucpclient

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// AuthServerMetadata is the part of an RFC 8414 authorization server
// metadata document the SDK uses.
type AuthServerMetadata struct {
	Issuer                          string   `json:"issuer"`
	AuthorizationEndpoint           string   `json:"authorization_endpoint"`
	TokenEndpoint                   string   `json:"token_endpoint"`
	RevocationEndpoint              string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                 []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported   []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethods        []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	AuthorizationResponseISSSupport bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	// Resource is not part of RFC 8414: DiscoverAuthServer fills it in
	// with the protected resource's identifier when it started from
	// RFC 9728 metadata.
	Resource string `json:"-"`
}

// OAuth2Config is the x/oauth2 configuration for a public client of this
// server (PKCE, no secret), e.g. for NewBuyerTokenSource.
func (m *AuthServerMetadata) OAuth2Config(clientID, redirectURL string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, RedirectURL: redirectURL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint, TokenURL: m.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
}

// DiscoveryError is a failed authorization server discovery: URL is the
// document that could not be used.
type DiscoveryError struct {
	URL string
	Err error
}

func (e *DiscoveryError) Error() string {
	return "ucpclient: OAuth discovery " + e.URL + ": " + e.Err.Error()
}
func (e *DiscoveryError) Unwrap() error { return e.Err }

// metadataLimit caps a discovery document.
const metadataLimit = 64 << 10

// DiscoverAuthServer finds a buyer's authorization server: from its
// issuer (RFC 8414: /.well-known/oauth-authorization-server, path
// inserted), or, when issuer is "", from the protected resource metadata
// URL a 401 challenge named in resource_metadata (RFC 9728: its first
// authorization_servers entry, then RFC 8414). The issuer in the document
// must equal the one asked for. client nil means a netguard client that
// refuses special-use addresses (loopback included).
func DiscoverAuthServer(ctx context.Context, client *http.Client, issuer, resourceMetadata string) (*AuthServerMetadata, error) {
	if client == nil {
		client = netguard.NewClient(nil)
	}
	client = noRedirects(client)
	var resource string
	if issuer == "" {
		if resourceMetadata == "" {
			return nil, errors.New("ucpclient: OAuth discovery needs an issuer or a resource_metadata URL")
		}
		// The document that names the authorization server is held to
		// the rules its endpoints are: https (or loopback http), and an
		// RFC 9728 well-known URL, whose resource it must then name.
		mu, err := url.Parse(resourceMetadata)
		if err != nil || !secureURL(mu) {
			return nil, &DiscoveryError{URL: resourceMetadata, Err: errors.New("resource_metadata is not an https (or loopback http) URL")}
		}
		if _, ok := resourceFromMetadataURL(resourceMetadata); !ok {
			return nil, &DiscoveryError{URL: resourceMetadata, Err: errors.New("resource_metadata is not an RFC 9728 well-known URL (/.well-known/oauth-protected-resource…)")}
		}
		var prm struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
		}
		if err := fetchDiscoveryJSON(ctx, client, resourceMetadata, &prm); err != nil {
			return nil, err
		}
		if len(prm.AuthorizationServers) == 0 || prm.AuthorizationServers[0] == "" {
			return nil, &DiscoveryError{URL: resourceMetadata, Err: errors.New("no authorization_servers")}
		}
		if prm.Resource == "" {
			return nil, &DiscoveryError{URL: resourceMetadata, Err: errors.New("no resource")}
		}
		// RFC 9728 §3.3: metadata at a well-known URL must name the
		// resource that URL was built from, or another site is vouching
		// for it.
		if want, _ := resourceFromMetadataURL(resourceMetadata); prm.Resource != want {
			return nil, &DiscoveryError{URL: resourceMetadata, Err: fmt.Errorf("resource %q is not %q", prm.Resource, want)}
		}
		issuer, resource = prm.AuthorizationServers[0], prm.Resource
	}
	u, err := url.Parse(issuer)
	if err != nil || !secureURL(u) || u.RawQuery != "" || u.Fragment != "" {
		return nil, &DiscoveryError{URL: issuer, Err: errors.New("issuer is not an https (or loopback http) URL without query or fragment")}
	}
	wellKnown := *u
	wellKnown.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	wellKnown.RawPath = ""
	var md AuthServerMetadata
	if err := fetchDiscoveryJSON(ctx, client, wellKnown.String(), &md); err != nil {
		return nil, err
	}
	switch {
	case md.Issuer != issuer:
		return nil, &DiscoveryError{URL: wellKnown.String(), Err: fmt.Errorf("issuer %q is not %q", md.Issuer, issuer)}
	case md.AuthorizationEndpoint == "" || md.TokenEndpoint == "":
		return nil, &DiscoveryError{URL: wellKnown.String(), Err: errors.New("no authorization_endpoint or token_endpoint")}
	}
	for _, e := range []string{md.AuthorizationEndpoint, md.TokenEndpoint} {
		if eu, err := url.Parse(e); err != nil || !secureURL(eu) {
			return nil, &DiscoveryError{URL: wellKnown.String(), Err: fmt.Errorf("endpoint %q is not https (or loopback http)", e)}
		}
	}
	md.Resource = resource
	return &md, nil
}

// resourceFromMetadataURL is the resource identifier an RFC 9728
// well-known URL was built from: https://h/.well-known/oauth-protected-resource/p
// is https://h/p. ok is false for a URL of another shape.
func resourceFromMetadataURL(raw string) (string, bool) {
	const prefix = "/.well-known/oauth-protected-resource"
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(u.Path, prefix) {
		return "", false
	}
	rest := strings.TrimPrefix(u.Path, prefix)
	if rest != "" && !strings.HasPrefix(rest, "/") {
		return "", false
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: rest, RawQuery: u.RawQuery}
	return r.String(), true
}

// secureURL accepts https, and plain http only to this machine (a
// platform in development): tokens and codes never cross a network in
// the clear.
func secureURL(u *url.URL) bool {
	return u.Host != "" && (u.Scheme == "https" || u.Scheme == "http" && netguard.IsLoopbackHost(u.Hostname()))
}

func fetchDiscoveryJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &DiscoveryError{URL: u, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return &DiscoveryError{URL: u, Err: err}
	}
	body, err := netguard.ReadBody(res, metadataLimit)
	if err != nil {
		return &DiscoveryError{URL: u, Err: err}
	}
	if res.StatusCode != http.StatusOK {
		return &DiscoveryError{URL: u, Err: fmt.Errorf("HTTP %d", res.StatusCode)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &DiscoveryError{URL: u, Err: err}
	}
	return nil
}

// DefaultBuyerScopes are the scopes Connect asks for when none are given,
// as the Artos SDK does.
var DefaultBuyerScopes = []string{"purchase:complete", "offline_access"}

// ConnectOptions configures Connect.
type ConnectOptions struct {
	// ClientID is the agent's OAuth client id (a CIMD URL or a registered
	// id). Required.
	ClientID string
	// ClientSecret is for a confidential client; "" for a public one.
	ClientSecret string

	// Issuer is the authorization server (RFC 8414 discovery). Or leave
	// it empty and set ResourceMetadata to the resource_metadata URL of a
	// 401 challenge (RFC 9728). Or set Metadata to skip discovery.
	Issuer           string
	ResourceMetadata string
	Metadata         *AuthServerMetadata

	// Resource is the RFC 8707 resource the token is for, sent on the
	// authorization and token requests. "" means the resource the
	// RFC 9728 metadata named, if discovery went through it, else none.
	Resource string
	// Scopes requested; nil means DefaultBuyerScopes.
	Scopes []string

	// OpenBrowser shows the buyer the authorization URL (e.g. runs
	// xdg-open, or prints it). Required. It must not block until the
	// sign-in ends.
	OpenBrowser func(authURL string) error
	// CallbackPath is the loopback redirect's path; default "/callback".
	// The redirect URI is http://127.0.0.1:<random port><CallbackPath>.
	CallbackPath string

	// HTTPClient fetches the discovery documents and calls the token
	// endpoint. nil means a netguard client (special-use addresses
	// refused) unless AllowLoopback.
	HTTPClient *http.Client
	// AllowLoopback lets the default client reach loopback servers, for
	// a platform running on this machine.
	AllowLoopback bool

	// Store, when set, receives the token before Connect returns.
	Store TokenStore
}

// ConnectError is a sign-in that the authorization server or the browser
// redirect refused: Code is the OAuth error ("access_denied") or one of
// "state_mismatch", "iss_mismatch", "no_code".
type ConnectError struct {
	Code, Description string
}

func (e *ConnectError) Error() string {
	if e.Description == "" {
		return "ucpclient: sign-in: " + e.Code
	}
	return "ucpclient: sign-in: " + e.Code + ": " + e.Description
}

// Connect signs a buyer in from a CLI or desktop app: it discovers the
// authorization server, listens on a random 127.0.0.1 port, opens the
// authorization URL (authorization code with PKCE S256, a fresh state)
// through OpenBrowser, waits for the redirect, checks state and, when the
// present or advertised (RFC 9207), iss, and exchanges the code. The wait
// lasts as long as ctx; give it a deadline. The listener is closed before
// Connect returns. A refusal is a *ConnectError, a failed exchange wraps
// the *oauth2.RetrieveError.
func Connect(ctx context.Context, opts ConnectOptions) (*oauth2.Token, error) {
	if opts.ClientID == "" {
		return nil, errors.New("ucpclient: Connect: ClientID is required")
	}
	if opts.OpenBrowser == nil {
		return nil, errors.New("ucpclient: Connect: OpenBrowser is required")
	}
	client := noRedirects(opts.HTTPClient)
	if client == nil {
		client = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: opts.AllowLoopback})
	}
	md := opts.Metadata
	if md == nil {
		var err error
		if md, err = DiscoverAuthServer(ctx, client, opts.Issuer, opts.ResourceMetadata); err != nil {
			return nil, err
		}
	}
	// Metadata the caller supplies is held to discovery's rules: the code,
	// the verifier and a client secret never cross a network in the clear.
	for _, e := range []string{md.AuthorizationEndpoint, md.TokenEndpoint} {
		if eu, err := url.Parse(e); err != nil || !secureURL(eu) {
			return nil, &DiscoveryError{URL: md.Issuer, Err: fmt.Errorf("endpoint %q is not https (or loopback http)", e)}
		}
	}
	// RFC 8414 reads an absent list as "no PKCE"; MCP clients refuse
	// such a server, and so does Connect.
	if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
		return nil, &DiscoveryError{URL: md.Issuer, Err: errors.New("authorization server does not advertise PKCE S256 (code_challenge_methods_supported)")}
	}
	resource := opts.Resource
	if resource == "" {
		resource = md.Resource
	}
	scopes := opts.Scopes
	if scopes == nil {
		scopes = DefaultBuyerScopes
	}
	path := opts.CallbackPath
	if path == "" {
		path = "/callback"
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ucpclient: Connect: loopback listener: %w", err)
	}
	conf := md.OAuth2Config(opts.ClientID, "http://"+ln.Addr().String()+path, scopes...)
	conf.ClientSecret = opts.ClientSecret
	state := rand.Text()
	verifier := oauth2.GenerateVerifier()
	authOpts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if resource != "" {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("resource", resource))
	}

	results := make(chan callbackResult, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		res := checkCallback(r.URL.Query(), state, md)
		// The page is written before the result is handed over: once
		// Connect has it, it shuts the listener down, and the browser
		// must not see a reset connection instead of the page.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if res.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, "Sign-in failed. You can close this window.")
		} else {
			fmt.Fprintln(w, "Signed in. You can close this window.")
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case results <- res:
		default: // a second redirect: the first one decided
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	if err := opts.OpenBrowser(conf.AuthCodeURL(state, authOpts...)); err != nil {
		return nil, fmt.Errorf("ucpclient: Connect: opening the browser: %w", err)
	}
	var got callbackResult
	select {
	case got = <-results:
	case <-ctx.Done():
		return nil, fmt.Errorf("ucpclient: Connect: waiting for the sign-in: %w", ctx.Err())
	}
	// Let the callback's response finish (Shutdown waits for it; Close
	// would cut it), but never wait long for a browser.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	srv.Shutdown(sctx)
	cancel()
	if got.err != nil {
		return nil, got.err
	}

	xctx := context.WithValue(ctx, oauth2.HTTPClient, client)
	exOpts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if resource != "" {
		exOpts = append(exOpts, oauth2.SetAuthURLParam("resource", resource))
	}
	tok, err := conf.Exchange(xctx, got.code, exOpts...)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: Connect: code exchange: %w", err)
	}
	if opts.Store != nil {
		if err := opts.Store.Save(ctx, tok); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

type callbackResult struct {
	code string
	err  error
}

// checkCallback checks the authorization response on the redirect.
func checkCallback(q url.Values, state string, md *AuthServerMetadata) callbackResult {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return callbackResult{err: &ConnectError{Code: "state_mismatch", Description: "the redirect's state is not the one sent"}}
	}
	// RFC 9207: with the parameter advertised, a response without the
	// right iss may come from another server (mix-up).
	// RFC 9207 §2.4: an iss that is present is compared, advertised or
	// not; one that the server advertises must be present.
	if (md.AuthorizationResponseISSSupport || q.Has("iss")) && q.Get("iss") != md.Issuer {
		return callbackResult{err: &ConnectError{Code: "iss_mismatch", Description: fmt.Sprintf("iss %q is not %q", q.Get("iss"), md.Issuer)}}
	}
	if e := q.Get("error"); e != "" {
		return callbackResult{err: &ConnectError{Code: e, Description: q.Get("error_description")}}
	}
	if q.Get("code") == "" {
		return callbackResult{err: &ConnectError{Code: "no_code", Description: "the redirect carries no code"}}
	}
	return callbackResult{code: q.Get("code")}
}
