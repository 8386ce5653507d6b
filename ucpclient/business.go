package ucpclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// BusinessOptions adjusts Client.Business. nil means the defaults.
type BusinessOptions struct {
	// Fetcher fetches (and caches) the business profile. nil means a new
	// discovery.Fetcher for this call only; share one to cache profiles.
	Fetcher *discovery.Fetcher
	// AllowInsecureLoopback accepts an http:// profile URL and REST
	// endpoint on a loopback host (local development and tests only; UCP
	// requires https). It also applies to the default Fetcher. The
	// Client's HTTPClient must itself be allowed to reach loopback (a
	// loopback Config.BaseURL, or your own HTTPClient).
	AllowInsecureLoopback bool
	// Platform is the platform's own profile, for client-side negotiation
	// (discovery.Negotiate). nil means the client speaks ucp.Version and
	// takes the business's capabilities as they are (discovery.Own); the
	// business negotiates again on every request from UCP-Agent.
	Platform *ucp.Profile
	// AcceptVersions is passed to discovery.Negotiate (Platform set), or
	// lists further business versions accepted without a Platform.
	AcceptVersions []string
	// APIKey is the X-API-Key this business issued to the platform. When
	// empty, Config.APIKey is sent only if the profile URL and the REST
	// endpoint both have the origin (scheme, host, port) of
	// Config.BaseURL: the platform key is never sent to another party.
	APIKey string
	// Buyer is the buyer's token source for this business (identity
	// linking with it). nil means Config.Buyer, under the same origin rule
	// as APIKey: a buyer token is never sent to another party.
	Buyer BuyerTokens
}

// Business is a UCP business found by its profile URL and reached over
// its REST binding (the dev.ucp.shopping service's rest endpoint). Every
// call goes through the Client's pipeline: the routing table decides the
// credential, UCP-Agent, Request-Id and Idempotency-Key headers are set,
// safe requests are retried, requests are signed when the Client signs,
// and a 401 is relayed as *AuthChallengeError. It is safe for concurrent
// use.
type Business struct {
	c          *Client // the Client with this business's credentials
	profileURL string
	profile    *ucp.Profile
	endpoint   string
	negotiated *discovery.Negotiated
}

// Business fetches the business profile at profileURL (https; http on
// loopback only with opts.AllowInsecureLoopback), picks the REST endpoint
// of its dev.ucp.shopping service, negotiates, and returns a handle for
// the REST calls. Discovery and negotiation failures are
// *discovery.Error (invalid_profile_url, profile_unreachable,
// profile_malformed, version_unsupported, capabilities_incompatible); a
// profile without a usable REST binding is an error that wraps
// ErrNoREST.
func (c *Client) Business(ctx context.Context, profileURL string, opts *BusinessOptions) (*Business, error) {
	if opts == nil {
		opts = &BusinessOptions{}
	}
	f := opts.Fetcher
	if f == nil {
		f = &discovery.Fetcher{AllowInsecureLoopback: opts.AllowInsecureLoopback}
	}
	prof, err := f.Fetch(ctx, profileURL)
	if err != nil {
		return nil, err
	}
	neg, prof, err := negotiateBusiness(ctx, f, prof, opts)
	if err != nil {
		return nil, err
	}
	endpoint, err := restEndpoint(prof, neg.Version, opts.AllowInsecureLoopback)
	if err != nil {
		return nil, err
	}
	apiKey, buyer := opts.APIKey, opts.Buyer
	// The platform's credentials stay with the platform: inherited only
	// when both the profile and its REST endpoint are on BaseURL's origin
	// (a profile elsewhere cannot aim the platform's key at the platform).
	if sameOrigin(endpoint, c.base) && sameOrigin(profileURL, c.base) {
		if apiKey == "" {
			apiKey = c.apiKey
		}
		if buyer == nil {
			buyer = c.buyer
		}
	}
	if strings.ContainsAny(apiKey, "\r\n") {
		return nil, errors.New("ucpclient: BusinessOptions.APIKey must be one line")
	}
	return &Business{c: c.withCredentials(apiKey, buyer), profileURL: profileURL, profile: prof, endpoint: endpoint, negotiated: neg}, nil
}

// ErrNoREST is wrapped by Client.Business when the profile offers no
// usable REST binding of dev.ucp.shopping.
var ErrNoREST = errors.New("business profile offers no REST binding of dev.ucp.shopping")

// negotiateBusiness picks the protocol version, fetching the leaf profile
// of supported_versions when the business serves our version only there.
func negotiateBusiness(ctx context.Context, f *discovery.Fetcher, prof *ucp.Profile, opts *BusinessOptions) (*discovery.Negotiated, *ucp.Profile, error) {
	want := ucp.Version
	if opts.Platform != nil {
		want = opts.Platform.UCP.Version
	}
	if prof.UCP.Version != want {
		if leafURL, ok := prof.UCP.SupportedVersions[want]; ok {
			leaf, err := f.Fetch(ctx, leafURL)
			if err != nil {
				return nil, nil, err
			}
			if leaf.UCP.Version != want {
				return nil, nil, &discovery.Error{Code: discovery.CodeProfileMalformed,
					Content: fmt.Sprintf("supported_versions[%s] names a profile of version %s", want, leaf.UCP.Version)}
			}
			prof = leaf
		}
	}
	if opts.Platform != nil {
		n, err := discovery.Negotiate(prof, opts.Platform, discovery.NegotiateOptions{AcceptVersions: opts.AcceptVersions})
		return n, prof, err
	}
	if prof.UCP.Version != want && !containsString(opts.AcceptVersions, prof.UCP.Version) {
		return nil, nil, &discovery.Error{Code: discovery.CodeVersionUnsupported,
			Content: fmt.Sprintf("the business implements UCP %s; this client speaks %s", prof.UCP.Version, want)}
	}
	return discovery.Own(prof), prof, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// restEndpoint is the endpoint of the dev.ucp.shopping REST binding: the
// binding at the negotiated version, else the first REST binding.
func restEndpoint(prof *ucp.Profile, version string, allowLoopback bool) (string, error) {
	var pick *ucp.Service
	for i, s := range prof.UCP.Services[ucp.ServiceShopping] {
		if !strings.EqualFold(s.Transport, "rest") || s.Endpoint == "" {
			continue
		}
		if pick == nil || (s.Version == version && pick.Version != version) {
			pick = &prof.UCP.Services[ucp.ServiceShopping][i]
		}
	}
	if pick == nil {
		return "", fmt.Errorf("ucpclient: %w", ErrNoREST)
	}
	ep := strings.TrimRight(pick.Endpoint, "/")
	u, err := netguard.CheckURL(ep, 2048, allowLoopback)
	if err != nil {
		return "", fmt.Errorf("ucpclient: REST endpoint %q: %w (%w)", pick.Endpoint, err, ErrNoREST)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("ucpclient: REST endpoint %q has a query or fragment (%w)", pick.Endpoint, ErrNoREST)
	}
	return ep, nil
}

// sameOrigin reports whether two absolute URLs share scheme, host and
// port.
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// withCredentials returns a Client that shares c's pipeline (HTTP and
// retry client, signer, response verifier, challenge hook, agent
// profile) but sends apiKey
// and buyer. Every field is copied except those two and the JSON-RPC id
// counter (REST does not use it); TestWithCredentialsCopiesEveryField
// keeps this list in step with Client.
func (c *Client) withCredentials(apiKey string, buyer BuyerTokens) *Client {
	return &Client{
		base:        c.base,
		apiKey:      apiKey,
		profile:     c.profile,
		agentHeader: c.agentHeader,
		buyer:       buyer,
		onChallenge: c.onChallenge,
		signer:      c.signer,
		respSig:     c.respSig, // REST calls to the platform's own stores are verified as store calls
		rc:          c.rc,
		metaPrefix:  c.metaPrefix,
		imageClient: c.imageClient,
	}
}

// WithBuyer returns a Client that sends b as the buyer's token source
// and shares everything else with c: the HTTP and retry client, signer,
// response verifier (and its key cache), challenge hook, agent profile
// and platform key. It costs one small allocation, so a server that acts
// for many buyers (the MCP bridge) makes one per request. nil b is a
// client without a buyer.
func (c *Client) WithBuyer(b BuyerTokens) *Client {
	return c.withCredentials(c.apiKey, b)
}

// ProfileURL is the URL the business was found by.
func (b *Business) ProfileURL() string { return b.profileURL }

// Profile is the business profile used (the supported_versions leaf when
// one was followed). It is shared and must not be modified.
func (b *Business) Profile() *ucp.Profile { return b.profile }

// Endpoint is the REST endpoint the calls are made under, without a
// trailing slash.
func (b *Business) Endpoint() string { return b.endpoint }

// Negotiated is the protocol version and the capabilities the client
// expects the business to serve.
func (b *Business) Negotiated() *discovery.Negotiated { return b.negotiated }

// HasBuyerToken reports whether calls to this business carry a buyer token
// where the routing table asks for one.
func (b *Business) HasBuyerToken() bool { return b.c.buyer != nil }
