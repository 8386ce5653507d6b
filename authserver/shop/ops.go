package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Op is a UCP operation, named as its MCP tool; the guard's policy table
// has a rule for each.
type Op = guard.Operation

// The operations.
const (
	OpSearchCatalog    = guard.OpSearchCatalog
	OpLookupCatalog    = guard.OpLookupCatalog
	OpGetProduct       = guard.OpGetProduct
	OpCreateCart       = guard.OpCreateCart
	OpGetCart          = guard.OpGetCart
	OpUpdateCart       = guard.OpUpdateCart
	OpCancelCart       = guard.OpCancelCart
	OpCreateCheckout   = guard.OpCreateCheckout
	OpGetCheckout      = guard.OpGetCheckout
	OpUpdateCheckout   = guard.OpUpdateCheckout
	OpCompleteCheckout = guard.OpCompleteCheckout
	OpCancelCheckout   = guard.OpCancelCheckout
	OpGetOrder         = guard.OpGetOrder
	// OpPrepareCheckoutPayment prepares a crypto payment (Artos).
	OpPrepareCheckoutPayment = guard.OpPrepareCheckoutPayment
	// The store's physical locations (locations.go).
	OpSearchLocations = guard.OpSearchLocations
	OpLookupLocations = guard.OpLookupLocations
	// The store's webhook settings, its merchant's (REST only).
	OpGetWebhookSettings    = guard.OpGetWebhookSettings
	OpUpdateWebhookSettings = guard.OpUpdateWebhookSettings
)

type opInfo struct {
	capability string // the capability the operation belongs to
	bodyKey    string // the MCP argument holding the body
	hasID      bool
	mutates    bool // idempotency applies
	needsKey   bool // an idempotency key is mandatory
	global     bool // served by the cross-store catalog too
	// settings: the store's own settings, for its merchant. No platform
	// profile is negotiated and no MCP tool lists it (REST only).
	settings bool
}

var ops = map[Op]opInfo{
	OpSearchCatalog:          {capability: ucp.CapCatalogSearch, bodyKey: "catalog", global: true},
	OpLookupCatalog:          {capability: ucp.CapCatalogLookup, bodyKey: "catalog", global: true},
	OpGetProduct:             {capability: ucp.CapCatalogLookup, bodyKey: "catalog", global: true},
	OpCreateCart:             {capability: ucp.CapCart, bodyKey: "cart", mutates: true},
	OpGetCart:                {capability: ucp.CapCart, hasID: true},
	OpUpdateCart:             {capability: ucp.CapCart, bodyKey: "cart", hasID: true, mutates: true},
	OpCancelCart:             {capability: ucp.CapCart, hasID: true, mutates: true, needsKey: true},
	OpCreateCheckout:         {capability: ucp.CapCheckout, bodyKey: "checkout", mutates: true},
	OpGetCheckout:            {capability: ucp.CapCheckout, hasID: true},
	OpUpdateCheckout:         {capability: ucp.CapCheckout, bodyKey: "checkout", hasID: true, mutates: true},
	OpCompleteCheckout:       {capability: ucp.CapCheckout, bodyKey: "checkout", hasID: true, mutates: true, needsKey: true},
	OpCancelCheckout:         {capability: ucp.CapCheckout, hasID: true, mutates: true, needsKey: true},
	OpGetOrder:               {capability: ucp.CapOrder, hasID: true},
	OpPrepareCheckoutPayment: {capability: ucp.CapCheckout, bodyKey: "payment_intent", hasID: true, mutates: true, needsKey: true},
	OpSearchLocations:        {bodyKey: "location"}, // no capability: 2026-04-08 has none for locations (locations.go)
	OpLookupLocations:        {bodyKey: "location"},
	OpGetWebhookSettings:     {settings: true},
	OpUpdateWebhookSettings:  {bodyKey: "settings", mutates: true, settings: true},
}

// Request is one operation, whichever binding carried it.
type Request struct {
	Op   Op
	Shop string // store slug; "" for the cross-store catalog
	ID   string
	// Body is the operation's object (the REST body, or the MCP
	// checkout/cart/catalog argument); nil when there is none.
	Body json.RawMessage
	// Agent is the platform profile URL (UCP-Agent or meta["ucp-agent"]).
	Agent string
	// Resource is the protected resource the binding serves the request
	// at (the store's URL, its MCP endpoint, the catalog): what a 401
	// points the caller's metadata discovery at. "" means the store's URL
	// (or the cross-store MCP endpoint).
	Resource       string
	IdempotencyKey string
	// IdempotencyKeyEmpty: the binding received a key, empty (an
	// Idempotency-Key header or meta["idempotency-key"] of ""); Do
	// refuses it rather than run the call without one.
	IdempotencyKeyEmpty bool
	// Principal is the caller, as the guard identified it; nil is
	// anonymous.
	Principal *guard.Principal
	// BuyerType is "agent" for API calls, "human" for the hosted page.
	BuyerType string
	// ClientAddr is where the call came from (Config.ClientIP), the rate
	// limit key of an anonymous caller.
	ClientAddr netip.Addr
}

// Reply is an operation's outcome: a UCP payload with the REST status, or
// a protocol error.
type Reply struct {
	Status int
	Body   []byte
	Err    *ProtocolError
}

// ProtocolError is a transport-level failure (ucp.md §7): a flat
// {code, content} body with an HTTP status on REST (writeProtocolError),
// a JSON-RPC error on MCP (rpcwire).
type ProtocolError = rpcwire.Error

// JSON-RPC codes UCP assigns (checkout-mcp.md).
const (
	rpcDiscovery = -32001
	rpcAuth      = -32000
	rpcInvalid   = -32600
	rpcParams    = -32602
	rpcInternal  = -32603
)

func protoErr(status, rpc int, code, content string) *Reply {
	return &Reply{Err: &ProtocolError{Status: status, RPCCode: rpc, Code: code, Content: content}}
}

func invalidRequest(format string, a ...any) *Reply {
	return protoErr(http.StatusBadRequest, rpcParams, "invalid_request", fmt.Sprintf(format, a...))
}

func internalError() *Reply {
	return protoErr(http.StatusInternalServerError, rpcInternal, "internal_error", "the store failed to process the request")
}

func unavailable(content string) *Reply {
	r := protoErr(http.StatusServiceUnavailable, rpcAuth, "unavailable", content)
	r.Err.RetryAfter = 1
	return r
}

// Do runs one operation. It never panics on input and never returns nil.
func (s *Service) Do(ctx context.Context, req *Request) *Reply {
	if e := s.rateLimit(ctx, req); e != nil {
		return &Reply{Err: e}
	}
	if rep := s.do(ctx, req); rep != nil {
		return rep
	}
	return internalError()
}

func (s *Service) do(ctx context.Context, req *Request) *Reply {
	info, ok := ops[req.Op]
	if !ok {
		return protoErr(http.StatusNotFound, -32601, "unknown_operation", "unknown operation "+string(req.Op))
	}
	if rep := s.refuseBadBytes(ctx, req); rep != nil {
		return rep
	}
	if req.Shop == "" && !info.global {
		return protoErr(http.StatusNotFound, -32601, "unknown_operation", string(req.Op)+" needs a store")
	}
	if info.hasID && req.ID == "" {
		return invalidRequest("the id argument is required")
	}
	if rep := checkIdemKey(req, info); rep != nil {
		return rep
	}
	if req.Resource == "" {
		req.Resource = s.cfg.BaseURL + "/mcp"
		if req.Shop != "" {
			req.Resource = s.storeURL(req.Shop)
		}
	}
	if err := guard.Authorize(req.Principal, req.Op, req.Shop); err != nil {
		return &Reply{Err: s.guardError(err, req.Resource)}
	}
	if err := req.Principal.CheckResource(s.resources(req)...); err != nil {
		return &Reply{Err: s.guardError(err, req.Resource)}
	}
	// A signature is verified against the profile the HTTP request named
	// (UCP-Agent); an MCP call names its profile again in meta. The two
	// must be one platform, or the signed tier would vouch for a profile
	// whose key signed nothing.
	if p := req.Principal; p != nil && p.Tier == guard.TierSigned && req.Agent != "" && p.Profile != req.Agent {
		return &Reply{Err: &ProtocolError{Status: http.StatusUnauthorized, RPCCode: rpcAuth, Code: "signature_invalid",
			Content: "the request is signed for the profile in UCP-Agent, but names another platform profile (meta[\"ucp-agent\"])"}}
	}
	var sh *shopInfo
	if req.Shop != "" {
		var err error
		if sh, err = s.shop(ctx, req.Shop); errors.Is(err, store.ErrNotFound) {
			return protoErr(http.StatusNotFound, rpcInvalid, "store_not_found", "no store "+req.Shop)
		} else if err != nil {
			s.failure(ctx, "shop: load store", err, "store", req.Shop)
			return unavailable("the store is unavailable")
		}
	}
	var neg *negotiation
	if !info.settings { // a merchant's settings involve no platform
		var rep *Reply
		if neg, rep = s.negotiate(ctx, sh, req, info); rep != nil {
			return rep
		}
	}
	oc := &opCtx{Request: req, info: info, shop: sh, neg: neg}
	if info.mutates && req.IdempotencyKey != "" {
		return s.idempotent(ctx, oc)
	}
	return s.run(ctx, oc)
}

// opCtx is a request after negotiation.
type opCtx struct {
	*Request
	info opInfo
	shop *shopInfo
	neg  *negotiation
	// ownerOverride acts for a session's owner (the hosted page).
	ownerOverride string
	// holdID is the spend hold the order consumes (buyer-bound
	// completion); redeem the coupon credit it uses.
	holdID string
	redeem *store.CouponRedemption
}

func (s *Service) run(ctx context.Context, oc *opCtx) *Reply {
	switch oc.Op {
	case OpSearchCatalog:
		return s.searchCatalog(ctx, oc)
	case OpLookupCatalog:
		return s.lookupCatalog(ctx, oc)
	case OpGetProduct:
		return s.getProduct(ctx, oc)
	case OpCreateCart, OpUpdateCart:
		return s.putCart(ctx, oc)
	case OpGetCart:
		return s.getCart(ctx, oc)
	case OpCancelCart:
		return s.cancelCart(ctx, oc)
	case OpCreateCheckout, OpUpdateCheckout:
		return s.putCheckout(ctx, oc)
	case OpGetCheckout:
		return s.getCheckout(ctx, oc)
	case OpCompleteCheckout:
		return s.completeCheckout(ctx, oc)
	case OpCancelCheckout:
		return s.cancelCheckout(ctx, oc)
	case OpGetOrder:
		return s.getOrder(ctx, oc)
	case OpPrepareCheckoutPayment:
		return s.prepareCheckoutPayment(ctx, oc)
	case OpSearchLocations:
		return s.searchLocations(ctx, oc)
	case OpLookupLocations:
		return s.lookupLocations(ctx, oc)
	case OpGetWebhookSettings:
		return s.getWebhookSettings(oc)
	case OpUpdateWebhookSettings:
		return s.updateWebhookSettings(ctx, oc)
	}
	return internalError()
}

// owner is who a session belongs to (guard.Principal.Owner), or the
// session's own owner when the store acts for it (the hosted page).
func (oc *opCtx) owner() string {
	if oc.ownerOverride != "" {
		return oc.ownerOverride
	}
	return oc.Principal.Owner()
}

// maySession decides whether the caller may use a session filed under
// owner, and the owner it is filed under from now on (the Artos claim:
// a platform's checkout taken over by its buyer), by guard.MaySession.
func (oc *opCtx) maySession(owner string) (ok bool, refile string) {
	if oc.ownerOverride != "" {
		return owner == oc.ownerOverride, owner
	}
	ok, claim := oc.Principal.MaySession(owner)
	if claim {
		return ok, oc.Principal.Owner()
	}
	return ok, owner
}

// resources are the names a request's resource answers to, for tokens
// bound to one (RFC 8707): the store (its URL and its MCP endpoint) or
// the cross-store catalog, and the API root for API-wide tokens.
func (s *Service) resources(req *Request) []string {
	if req.Shop != "" {
		u := s.storeURL(req.Shop)
		return []string{u, u + "/mcp", s.cfg.BaseURL}
	}
	return []string{s.cfg.BaseURL + "/mcp", s.cfg.BaseURL + "/catalog", s.cfg.BaseURL}
}

// resourceMetadata is the RFC 9728 metadata URL of a resource: the
// well-known path inserted before the resource's path.
func (s *Service) resourceMetadata(resource string) string {
	return s.cfg.BaseURL + PathResourceMetadata + strings.TrimPrefix(resource, s.cfg.BaseURL)
}

// payload marshals a UCP response body.
func payload(status int, v any) *Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return internalError()
	}
	return &Reply{Status: status, Body: b}
}

// errorEnvelope is the "no resource" outcome: HTTP 200 (or status) with
// ucp.status error.
func (oc *opCtx) errorEnvelope(status int, msgs ...ucp.Message) *Reply {
	env := ucp.ErrorResponse{UCP: ucp.Envelope{Version: oc.neg.version, Status: ucp.StatusError}, Messages: msgs}
	return payload(status, env)
}

func notFound(what string) ucp.Message {
	return ucp.Message{Type: "error", Code: "not_found", Content: what + " not found", Severity: ucp.SeverityUnrecoverable}
}

func (s *Service) storeFailure(ctx context.Context, err error) *Reply {
	s.failure(ctx, "shop: storage", err)
	return unavailable("the store is temporarily unavailable")
}

// failure logs a failure on a request's path. A caller that hangs up
// cancels its context, which fails whatever call was in flight: that is
// logged at debug, so nobody can fill the error log by hanging up.
func (s *Service) failure(ctx context.Context, msg string, err error, args ...any) {
	args = append(args, "err", err)
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		s.log.DebugContext(ctx, msg, args...)
		return
	}
	s.log.ErrorContext(ctx, msg, args...)
}
