package shop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
)

// RateLimits bounds how fast callers use the stores, per process. A zero
// field means its default (DefaultRateLimits); Config.DisableRateLimits
// turns both off.
type RateLimits struct {
	// Anonymous is per client network (an IPv4 address, an IPv6 /64) for
	// every call without a credential, the business profile and the
	// hosted checkout page. Failed credentials are counted per network
	// against a second bucket of this size.
	Anonymous ratelimit.Limit
	// Credential is per credential: the client of a platform API key or
	// app token (wherever it calls from), or the client and buyer of a
	// buyer token, so that one agent app's buyers do not share a bucket.
	Credential ratelimit.Limit
}

// DefaultRateLimits: a person or a crawler behind one address gets 10
// calls a second; a platform or a buyer's agent gets 50, with bursts that
// cover a whole shopping flow (search, cart, checkout, complete) several
// times over.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Anonymous:  ratelimit.Limit{Rate: 10, Burst: 40},
		Credential: ratelimit.Limit{Rate: 50, Burst: 200},
	}
}

// limits are the stores' rate limiters; a nil *limits allows everything.
type limits struct {
	// network holds a bucket per client network (anonymous calls, pages)
	// and, under another prefix, one counting failed credentials.
	network *ratelimit.Limiter
	cred    *ratelimit.Limiter
}

func newLimits(cfg *Config) (*limits, error) {
	if cfg.DisableRateLimits {
		return nil, nil
	}
	rl, def := cfg.RateLimits, DefaultRateLimits()
	if rl.Anonymous.IsZero() {
		rl.Anonymous = def.Anonymous
	}
	if rl.Credential.IsZero() {
		rl.Credential = def.Credential
	}
	network, err := ratelimit.New(rl.Anonymous, &ratelimit.Options{Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("shop: RateLimits.Anonymous: %w", err)
	}
	cred, err := ratelimit.New(rl.Credential, &ratelimit.Options{Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("shop: RateLimits.Credential: %w", err)
	}
	return &limits{network: network, cred: cred}, nil
}

// Bucket keys. NUL cannot occur in a client id or buyer id (store text
// never holds it), so no two parties share a key.
func networkKey(a netip.Addr) string  { return "net\x00" + clientip.Key(a) }
func failuresKey(a netip.Addr) string { return "fail\x00" + clientip.Key(a) }

func credentialKey(p *guard.Principal) string {
	if p.BuyerID != "" {
		return "buyer\x00" + p.ClientID + "\x00" + p.BuyerID
	}
	return "client\x00" + p.ClientID
}

// clientAddr is the address a request came from, through the configured
// trusted proxies (the socket peer when there are none).
func (s *Service) clientAddr(r *http.Request) netip.Addr { return s.cfg.ClientIP.Addr(r) }

// rateLimited is the refusal: 429 with Retry-After on REST, -32000 with
// data.retry_after on MCP (ucp.md, error table).
func rateLimited(wait int, who string) *ProtocolError {
	return &ProtocolError{Status: http.StatusTooManyRequests, RPCCode: rpcAuth, Code: "rate_limited",
		Content: "too many requests " + who + "; retry after " + strconv.Itoa(wait) + " s", RetryAfter: wait}
}

// rateLimit charges one operation to its caller's bucket: the credential
// for an identified caller, the client network for an anonymous one. An
// anonymous request without an address (an in-process caller that set
// none) shares the "invalid" network's bucket: failing closed.
func (s *Service) rateLimit(ctx context.Context, req *Request) *ProtocolError {
	l := s.limits
	if l == nil {
		return nil
	}
	if req.Principal.IsAnonymous() {
		return s.charge(ctx, l.network, networkKey(req.ClientAddr), "from this network", req.Op)
	}
	return s.charge(ctx, l.cred, credentialKey(req.Principal), "with this credential", req.Op)
}

func (s *Service) charge(ctx context.Context, lim *ratelimit.Limiter, key, who string, op Op) *ProtocolError {
	ok, wait := lim.Allow(key)
	if ok {
		return nil
	}
	// Debug only: whoever is being refused could otherwise fill the log.
	s.log.DebugContext(ctx, "shop: rate limited", "op", op, "who", who)
	return rateLimited(ratelimit.RetryAfterSeconds(wait), who)
}

// limitNetwork charges a page or document served without credentials (the
// business profile, the hosted checkout page) to the client network;
// refuse renders the refusal in the endpoint's own form.
func (s *Service) limitNetwork(h http.HandlerFunc, refuse func(http.ResponseWriter, *ProtocolError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.limits != nil {
			if e := s.charge(r.Context(), s.limits.network, networkKey(s.clientAddr(r)), "from this network", ""); e != nil {
				refuse(w, e)
				return
			}
		}
		h(w, r)
	}
}

// refusePage is a refusal for a person in a browser (the hosted page).
func refusePage(w http.ResponseWriter, e *ProtocolError) {
	w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "Too many requests from your network. Wait "+strconv.Itoa(e.RetryAfter)+" s and reload the page.", e.Status)
}

// credentialsBlocked refuses, before the guard runs, a network that sent
// too many bad credentials. Without it, a caller presenting garbage keys
// would pass every bucket (it is neither anonymous nor a credential) while
// each attempt costs a credential lookup.
func (s *Service) credentialsBlocked(ctx context.Context, addr netip.Addr) *ProtocolError {
	if s.limits == nil {
		return nil
	}
	if blocked, wait := s.limits.network.Blocked(failuresKey(addr)); blocked {
		s.log.DebugContext(ctx, "shop: rate limited", "who", "failed credentials")
		return rateLimited(ratelimit.RetryAfterSeconds(wait), "with invalid credentials from this network")
	}
	return nil
}

// credentialFailed counts a refused credential (401) against its network;
// an unavailable credential store (503) is nobody's failure.
func (s *Service) credentialFailed(addr netip.Addr, err error) {
	var ge *guard.Error
	if s.limits != nil && (!errors.As(err, &ge) || ge.Status == http.StatusUnauthorized) {
		s.limits.network.Allow(failuresKey(addr))
	}
}
