package ucpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// BuyerTokens supplies the buyer's OAuth access token. Any
// oauth2.TokenSource is one. It must be safe for concurrent use.
type BuyerTokens interface {
	Token() (*oauth2.Token, error)
}

// BuyerRefresher is the optional extension of BuyerTokens the client uses
// after a 401 with error="invalid_token": it forces a refresh (the token
// may have been revoked before its expiry), and the call is retried once.
type BuyerRefresher interface {
	RefreshToken(ctx context.Context) (*oauth2.Token, error)
}

// Config configures a Client. Zero optional fields mean the defaults.
type Config struct {
	// BaseURL is the platform API host, e.g. https://api.artos.sh.
	// Required.
	BaseURL string
	// APIKey is the platform's X-API-Key ("<client_id>.<secret>"), sent
	// on the calls the routing table gives to the platform. Empty means
	// those calls go anonymously (the catalog allows it).
	APIKey string
	// AgentProfile is the HTTPS URL of the platform's UCP profile, sent
	// in UCP-Agent and meta["ucp-agent"].profile. Required.
	AgentProfile string
	// UCPVersion, when set, is sent as the ucp-version member of
	// UCP-Agent (the Artos SDK sends "2026-08-25").
	UCPVersion string
	// Buyer is the buyer's token source; nil means an anonymous or
	// card-only session, and buyer-bound calls fail with
	// *BuyerRequiredError. If it also implements BuyerRefresher, a
	// rejected token is refreshed once.
	Buyer BuyerTokens
	// HTTPClient sends every API request (one attempt each). nil means a
	// guarded client (netguard.NewClient: no proxy, no redirects,
	// non-public addresses refused except loopback when BaseURL is on
	// loopback, 30 s per attempt).
	HTTPClient *http.Client
	// Signer, when set, signs every request attempt (RFC 9421).
	Signer *httpsig.Signer
	// VerifyResponses asks stores for RFC 9421 signed responses and
	// verifies them with the keys each store's profile publishes (see
	// ResponseVerification); a refused response is a
	// *ResponseSignatureError. The zero value is off.
	VerifyResponses ResponseVerification
	// OnAuthChallenge is called with every 401 challenge before the
	// client refreshes or gives up. A non-nil error stops the call; it is
	// wrapped in the *AuthChallengeError returned.
	OnAuthChallenge func(ctx context.Context, c *Challenge) error
	// Retry bounds the retries of safe requests.
	Retry RetryConfig
	// Logger receives the retry logs; nil is silent.
	Logger *slog.Logger
}

// Client calls UCP businesses through a platform API. It is safe for
// concurrent use.
type Client struct {
	base        string
	apiKey      string
	profile     string
	agentHeader string
	buyer       BuyerTokens
	onChallenge func(ctx context.Context, c *Challenge) error
	signer      *httpsig.Signer
	respSig     *respVerifier // nil: responses not verified
	rc          *retryablehttp.Client
	rpcID       atomic.Uint64
	metaPrefix  []byte       // {"ucp-agent":{"profile":"…"}
	imageClient *http.Client // nil: a guarded client per FetchImage
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, errors.New("ucpclient: Config.BaseURL must be an absolute http(s) URL without user information")
	}
	if u.Scheme == "http" && !netguard.IsLoopbackHost(u.Hostname()) {
		return nil, errors.New("ucpclient: Config.BaseURL must use https (plain http only on loopback)")
	}
	if cfg.AgentProfile == "" {
		return nil, errors.New("ucpclient: Config.AgentProfile is required")
	}
	if !sfString(cfg.AgentProfile) || !sfString(cfg.UCPVersion) {
		return nil, errors.New("ucpclient: Config.AgentProfile and UCPVersion must be printable ASCII")
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, errors.New("ucpclient: Config.APIKey must be one line")
	}
	hc := noRedirects(cfg.HTTPClient)
	if hc == nil {
		hc = netguard.NewClient(&netguard.ClientOptions{
			AllowLoopback: netguard.IsLoopbackHost(u.Hostname()),
			Timeout:       30 * time.Second,
		})
	}
	c := &Client{
		base:        base,
		apiKey:      cfg.APIKey,
		profile:     cfg.AgentProfile,
		agentHeader: agentHeader(cfg.UCPVersion, cfg.AgentProfile),
		buyer:       cfg.Buyer,
		onChallenge: cfg.OnAuthChallenge,
		signer:      cfg.Signer,
		respSig:     newRespVerifier(cfg.VerifyResponses),
		rc:          newRetryClient(hc, cfg.Retry, cfg.Logger),
	}
	c.rc.PrepareRetry = c.prepareAttempt
	c.metaPrefix = appendJSONString([]byte(`{"ucp-agent":{"profile":`), cfg.AgentProfile)
	c.metaPrefix = append(c.metaPrefix, '}')
	return c, nil
}

// HasBuyerToken reports whether the client has a buyer token source.
func (c *Client) HasBuyerToken() bool { return c.buyer != nil }

// UCPAgentHeader returns the UCP-Agent header the client sends, e.g.
// ucp-version="2026-08-25", profile="https://agent.example/.well-known/ucp".
func (c *Client) UCPAgentHeader() string { return c.agentHeader }

// agentHeader builds the RFC 8941 dictionary.
func agentHeader(version, profile string) string {
	p := `profile=` + sfQuote(profile)
	if version == "" {
		return p
	}
	return `ucp-version=` + sfQuote(version) + `, ` + p
}

func sfString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func sfQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	idemKey string
	crypto  bool
	coupon  bool
}

// WithIdempotencyKey sends key as meta["idempotency-key"] (and the
// Idempotency-Key header) instead of a fresh UUID: pass the same key to
// repeat a call safely. A call with a key may be retried.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idemKey = key }
}

// WithCrypto marks a prepare_checkout_payment or complete_checkout as the
// crypto rail, which the routing table sends with the buyer bearer only.
func WithCrypto() CallOption { return func(o *callOptions) { o.crypto = true } }

// WithCoupon marks an update_checkout as the coupon attach (platform key
// and buyer bearer). Arguments whose checkout.context.eligibility holds
// "sh.artos.coupon" are recognised without it.
func WithCoupon() CallOption { return func(o *callOptions) { o.coupon = true } }

func options(opts []CallOption) *callOptions {
	o := &callOptions{}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	return o
}

// meta returns the meta object (ucp-agent, and idempotency-key when the
// route changes state or the caller gave one) and the key.
func (c *Client) meta(r Route, o *callOptions) ([]byte, string) {
	key := o.idemKey
	if key == "" && r.Idempotent {
		key = freshUUID()
	}
	m := make([]byte, 0, len(c.metaPrefix)+64)
	m = append(m, c.metaPrefix...)
	if key != "" {
		m = append(m, `,"idempotency-key":`...)
		m = appendJSONString(m, key)
	}
	return append(m, '}'), key
}

// withMember adds "name":value to the JSON object obj, replacing a member
// of that name.
func withMember(obj []byte, name string, value []byte) ([]byte, error) {
	if bytes.Contains(obj, []byte(`"`+name+`"`)) { // rare: rebuild
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, err
		}
		m[name] = value
		return json.Marshal(m)
	}
	body := bytes.TrimSpace(obj)
	out := make([]byte, 0, len(body)+len(name)+len(value)+4)
	out = append(out, body[:len(body)-1]...) // without '}'
	if len(bytes.TrimSpace(body[1:len(body)-1])) > 0 {
		out = append(out, ',')
	}
	out = appendJSONString(out, name)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, '}'), nil
}

// GlobalSearch searches every store the platform reaches (REST POST
// {base}/catalog/search). A UCP error envelope is a *ProtocolError.
func (c *Client) GlobalSearch(ctx context.Context, req *ucp.SearchRequest) (*ucp.SearchResponse, error) {
	if req == nil {
		req = &ucp.SearchRequest{}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: catalog/search: %w", err)
	}
	cl := &call{op: "rest.catalog/search", route: route(SurfaceREST, "catalog/search", &callOptions{}, c.HasBuyerToken(), nil),
		method: http.MethodPost, url: c.base + "/catalog/search", body: b}
	res, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if res.status/100 != 2 {
		return nil, protocolError(cl.op, res)
	}
	var out ucp.SearchResponse
	if err := json.Unmarshal(res.body, &out); err != nil {
		pe := protocolError(cl.op, res)
		pe.Content = "search response is not a UCP search result"
		return nil, pe
	}
	if out.UCP != nil && out.UCP.Status == ucp.StatusError {
		return nil, protocolError(cl.op, res)
	}
	return &out, nil
}

// CallGlobalTool calls a catalog tool on the global {base}/mcp
// (search_catalog, lookup_catalog, get_product): catalog is sent as
// arguments.catalog, with meta. It returns result.structuredContent.
func (c *Client) CallGlobalTool(ctx context.Context, name string, catalog any, opts ...CallOption) (json.RawMessage, error) {
	o := options(opts)
	r := route(SurfaceGlobal, name, o, c.HasBuyerToken(), nil)
	meta, key := c.meta(r, o)
	cl := &call{op: "global." + name, route: r, url: c.base + "/mcp", idemKey: key}
	if err := c.precheck(cl); err != nil {
		return nil, err
	}
	cat, err := json.Marshal(catalog)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: %s: %w", cl.op, err)
	}
	args := make([]byte, 0, len(cat)+len(meta)+24)
	args = append(args, `{"catalog":`...)
	args = append(args, cat...)
	args = append(args, `,"meta":`...)
	args = append(args, meta...)
	return c.callTool(ctx, cl, name, append(args, '}'))
}

// CallStoreTool calls a tool on a store's {base}/s/{slug}/mcp. args (an
// object, or nil) are sent with meta added. State-changing tools get a
// fresh idempotency key unless WithIdempotencyKey gives one. It returns
// result.structuredContent, which may be a UCP business-error envelope
// (ucp.status "error"): that is a result, not an error.
func (c *Client) CallStoreTool(ctx context.Context, slug, name string, args any, opts ...CallOption) (json.RawMessage, error) {
	if slug == "" || strings.ContainsAny(slug, "/?#%") {
		return nil, fmt.Errorf("ucpclient: invalid store slug %q", slug)
	}
	raw, err := argsObject(args)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: store.%s: %w", name, err)
	}
	o := options(opts)
	r := route(SurfaceStore, name, o, c.HasBuyerToken(), raw)
	meta, key := c.meta(r, o)
	cl := &call{op: "store." + name, route: r, url: c.base + "/s/" + url.PathEscape(slug) + "/mcp", idemKey: key}
	if err := c.precheck(cl); err != nil {
		return nil, err
	}
	arguments, err := withMember(raw, "meta", meta)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: %s: args must be a JSON object", cl.op)
	}
	return c.callTool(ctx, cl, name, arguments)
}

// Tool is one tool listed by ListAccountTools.
type Tool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
}

// ListAccountTools lists the buyer's account tools ({base}/account/mcp,
// buyer bearer only).
func (c *Client) ListAccountTools(ctx context.Context) ([]Tool, error) {
	r := route(SurfaceAccount, "tools/list", &callOptions{}, c.HasBuyerToken(), nil)
	cl := &call{op: "account.tools/list", route: r, url: c.base + "/account/mcp"}
	if err := c.precheck(cl); err != nil {
		return nil, err
	}
	var out struct {
		Tools []Tool `json:"tools"`
	}
	if err := c.rpc(ctx, cl, "tools/list", []byte("{}"), &out); err != nil {
		return nil, err
	}
	return out.Tools, nil
}

// CallAccountTool calls a buyer account tool ({base}/account/mcp, buyer
// bearer only); args are sent as they are, without meta.
func (c *Client) CallAccountTool(ctx context.Context, name string, args any, opts ...CallOption) (json.RawMessage, error) {
	raw, err := argsObject(args)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: account.%s: %w", name, err)
	}
	o := options(opts)
	r := route(SurfaceAccount, name, o, c.HasBuyerToken(), raw)
	cl := &call{op: "account." + name, route: r, url: c.base + "/account/mcp", idemKey: o.idemKey}
	if err := c.precheck(cl); err != nil {
		return nil, err
	}
	return c.callTool(ctx, cl, name, raw)
}

// FetchStoreProfile reads a store's UCP profile
// ({base}/s/{slug}/.well-known/ucp), tolerating keys under signing_keys
// or keys.
func (c *Client) FetchStoreProfile(ctx context.Context, slug string) (*ucp.Profile, error) {
	if slug == "" || strings.ContainsAny(slug, "/?#%") {
		return nil, fmt.Errorf("ucpclient: invalid store slug %q", slug)
	}
	r := route(SurfaceREST, "store_profile", &callOptions{}, c.HasBuyerToken(), nil)
	cl := &call{op: "rest.store_profile", route: r, method: http.MethodGet,
		url: c.base + "/s/" + url.PathEscape(slug) + "/.well-known/ucp"}
	res, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if res.status/100 != 2 {
		return nil, protocolError(cl.op, res)
	}
	p, err := ucp.ParseProfile(res.body)
	if err != nil {
		pe := protocolError(cl.op, res)
		pe.Content = "malformed profile: " + err.Error()
		return nil, pe
	}
	return p, nil
}

// precheck fails buyer-bound calls locally, before any I/O.
func (c *Client) precheck(cl *call) error {
	if (cl.route.Credential == CredentialBuyer || cl.route.Credential == CredentialPlatformBuyer) && c.buyer == nil {
		return &BuyerRequiredError{Op: cl.op}
	}
	return nil
}

func argsObject(args any) (json.RawMessage, error) {
	if args == nil {
		return json.RawMessage("{}"), nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return json.RawMessage("{}"), nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("args must encode to a JSON object")
	}
	return b, nil
}

// Image is a fetched product image.
type Image struct {
	MIMEType string
	Data     []byte
}

// Image fetch bounds (artos.md §3.6).
const (
	MaxImageBytes     = 4_000_000
	maxImageRedirects = 3
	imageTimeout      = 5 * time.Second
)

// FetchImage fetches a product image for an MCP host to show inline:
// https only, no user information, no localhost names, public addresses
// only (checked at connect time), at most 3 redirects each re-checked,
// 5 s in all, an image/* content type, at most 4 MB (by Content-Length
// and by count). No credential is ever sent.
func (c *Client) FetchImage(ctx context.Context, rawURL string) (*Image, error) {
	ctx, cancel := context.WithTimeout(ctx, imageTimeout)
	defer cancel()
	hc := c.imageClient
	if hc == nil {
		hc = netguard.NewClient(&netguard.ClientOptions{Timeout: imageTimeout})
	}
	cur := rawURL
	for hop := 0; ; hop++ {
		u, err := checkImageURL(cur)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("ucpclient: image: %w", err)
		}
		req.Header.Set("Accept", "image/*")
		res, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("ucpclient: image: %w", err)
		}
		switch res.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc := res.Header.Get("Location")
			io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
			res.Body.Close()
			if hop >= maxImageRedirects {
				return nil, errors.New("ucpclient: image: too many redirects")
			}
			next, err := u.Parse(loc)
			if err != nil || loc == "" {
				return nil, errors.New("ucpclient: image: bad redirect")
			}
			cur = next.String()
			continue
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			return nil, fmt.Errorf("ucpclient: image: HTTP %d", res.StatusCode)
		}
		mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if err != nil || !strings.HasPrefix(mt, "image/") {
			res.Body.Close()
			return nil, errors.New("ucpclient: image: content type is not image/*")
		}
		data, err := netguard.ReadBody(res, MaxImageBytes)
		if err != nil {
			return nil, fmt.Errorf("ucpclient: image: %w", err)
		}
		return &Image{MIMEType: mt, Data: data}, nil
	}
}

func checkImageURL(raw string) (*url.URL, error) {
	u, err := netguard.CheckURL(raw, 4096, false)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: image URL: %w", err)
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return nil, errors.New("ucpclient: image URL: localhost is refused")
	}
	return u, nil
}

// noRedirects is a copy of a caller's client that never follows a
// redirect: Go keeps custom headers (X-API-Key) across hosts and the
// bearer within one, so a 3xx must come back as an answer, not be
// followed with the platform's or the buyer's credentials. nil stays nil.
func noRedirects(hc *http.Client) *http.Client {
	if hc == nil {
		return nil
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}
