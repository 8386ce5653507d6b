package shop

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const (
	specBase   = "https://ucp.dev/" + ucp.Version + "/specification/"
	schemaBase = "https://ucp.dev/" + ucp.Version + "/schemas/"
)

// businessProfile is a store's /.well-known/ucp, built once.
type businessProfile struct {
	profile *ucp.Profile
	body    []byte // served bytes
	keys    *mandate.KeySet
	key     *mandate.SigningKey
	// version identifies the store settings it was built from: a
	// changed store (rails, say) gets a new profile on its next request.
	version [32]byte
}

// checkoutExtensions are the capabilities echoed on checkout responses.
var checkoutCaps = []string{ucp.CapCheckout, ucp.CapFulfillment, ucp.CapDiscount, ucp.CapAP2Mandate}

func capability(name, doc string, extends ...string) ucp.Capability {
	c := ucp.Capability{Entity: ucp.Entity{Version: ucp.Version, Spec: specBase + doc, Schema: schemaBase + "shopping/" + doc + ".json"}}
	if len(extends) > 0 {
		c.Extends = ucp.Extends(extends)
	}
	return c
}

// businessProfile returns the profile of the store slug ("" for the
// platform apex, which offers the cross-store catalog only).
func (s *Service) businessProfile(ctx context.Context, sh *shopInfo) (*businessProfile, error) {
	slug := ""
	var version [32]byte
	if sh != nil {
		slug = sh.Slug
		version = sha256.Sum256(append([]byte(sh.Name+"\x00"+sh.Currency+"\x00"), sh.Config...))
	}
	s.mu.Lock()
	bp := s.profiles[slug]
	s.mu.Unlock()
	if bp != nil && bp.version == version {
		return bp, nil
	}
	bp, err := s.buildProfile(ctx, sh)
	if err != nil {
		return nil, err
	}
	bp.version = version
	s.mu.Lock()
	s.profiles[slug] = bp
	s.mu.Unlock()
	return bp, nil
}

func (s *Service) buildProfile(ctx context.Context, sh *shopInfo) (*businessProfile, error) {
	endpoint := s.cfg.BaseURL
	caps := map[string][]ucp.Capability{
		ucp.CapCatalogSearch: {capability(ucp.CapCatalogSearch, "catalog_search")},
		ucp.CapCatalogLookup: {capability(ucp.CapCatalogLookup, "catalog_lookup")},
	}
	handlers := map[string][]ucp.PaymentHandler{}
	bp := &businessProfile{}
	if sh != nil {
		endpoint = s.storeURL(sh.Slug)
		caps[ucp.CapCheckout] = []ucp.Capability{capability(ucp.CapCheckout, "checkout")}
		caps[ucp.CapCart] = []ucp.Capability{capability(ucp.CapCart, "cart")}
		caps[ucp.CapOrder] = []ucp.Capability{capability(ucp.CapOrder, "order")}
		caps[ucp.CapFulfillment] = []ucp.Capability{capability(ucp.CapFulfillment, "fulfillment", ucp.CapCheckout)}
		caps[ucp.CapDiscount] = []ucp.Capability{capability(ucp.CapDiscount, "discount", ucp.CapCheckout, ucp.CapCart)}
		ap2 := capability(ucp.CapAP2Mandate, "ap2_mandate", ucp.CapCheckout)
		ap2.Spec = specBase + "ap2-mandates"
		ap2.Config = json.RawMessage(`{"vp_formats_supported":{"dc+sd-jwt":{},"jwt":{}}}`)
		caps[ucp.CapAP2Mandate] = []ucp.Capability{ap2}
		il := ucp.Capability{Entity: ucp.Entity{Version: ucp.Version, Spec: specBase + "identity-linking",
			Schema: schemaBase + "common/identity_linking.json",
			Config: json.RawMessage(`{"scopes":{"dev.ucp.shopping.order:read":{"description":{"plain":"Read the orders you placed at this store, from any platform."}}}}`)}}
		caps[ucp.CapIdentityLinking] = []ucp.Capability{il}
		for _, id := range sh.cfg.Rails {
			if r, ok := railByID(id); ok {
				name, h := r.handler()
				handlers[name] = append(handlers[name], h)
			}
		}
		key, err := s.cfg.Keys.ShopKey(ctx, sh.Slug)
		if err != nil {
			return nil, err
		}
		bp.key = key
		bp.keys = mandate.NewKeySet(key.PublicJWK())
	}
	p := &ucp.Profile{UCP: ucp.ProfileUCP{
		Version: ucp.Version,
		Services: map[string][]ucp.Service{ucp.ServiceShopping: {
			{Entity: ucp.Entity{Version: ucp.Version, Spec: specBase + "overview", Schema: "https://ucp.dev/" + ucp.Version + "/services/shopping/rest.openapi.json"}, Transport: "rest", Endpoint: endpoint},
			{Entity: ucp.Entity{Version: ucp.Version, Spec: specBase + "overview", Schema: "https://ucp.dev/" + ucp.Version + "/services/shopping/mcp.openrpc.json"}, Transport: "mcp", Endpoint: endpoint + "/mcp"},
		}},
		Capabilities:    caps,
		PaymentHandlers: handlers,
	}}
	var jwks []json.RawMessage
	if bp.key != nil {
		k, err := json.Marshal(bp.key.PublicJWK())
		if err != nil {
			return nil, err
		}
		jwks = append(jwks, k)
	}
	p.SigningKeys = jwks
	// Publish the keys under both names: UCP 2026-04-08 reads
	// signing_keys, the Artos SDK and the UCP draft read keys.
	body, err := json.Marshal(struct {
		*ucp.Profile
		Keys []json.RawMessage `json:"keys,omitempty"`
	}{p, jwks})
	if err != nil {
		return nil, err
	}
	bp.profile, bp.body = p, body
	return bp, nil
}

// negotiation is the outcome of capability negotiation for one request.
type negotiation struct {
	version  string
	caps     map[string]string
	platform *ucp.Profile // nil when no platform profile was used
	business *businessProfile
}

func (n *negotiation) has(name string) bool { _, ok := n.caps[name]; return ok }

// envelope is the ucp member of a response: the version and the
// negotiated capabilities among names.
func (n *negotiation) envelope(names ...string) *ucp.Envelope {
	env := &ucp.Envelope{Version: n.version, Status: ucp.StatusSuccess}
	for _, name := range names {
		if v, ok := n.caps[name]; ok {
			if env.Capabilities == nil {
				env.Capabilities = map[string][]ucp.Capability{}
			}
			env.Capabilities[name] = []ucp.Capability{{Entity: ucp.Entity{Version: v}}}
		}
	}
	return env
}

// negotiate resolves the platform profile and intersects capabilities
// (overview.md). Reads of the catalog and of the store's locations may
// come without a UCP-Agent (anonymous browsing, as Artos allows), and so
// may a merchant's read of its store's orders; everything else names a
// profile.
func (s *Service) negotiate(ctx context.Context, sh *shopInfo, req *Request, info opInfo) (*negotiation, *Reply) {
	bp, err := s.businessProfile(ctx, sh)
	if err != nil {
		s.failure(ctx, "shop: build profile", err)
		return nil, unavailable("the store is unavailable")
	}
	own := func() *negotiation {
		o := discovery.Own(bp.profile)
		return &negotiation{version: o.Version, caps: o.Capabilities, business: bp}
	}
	if req.Agent == "" {
		if info.bodyKey == "catalog" || info.bodyKey == "location" {
			return own(), nil
		}
		// A store's merchant reading its own orders is the business's
		// automation, not a platform: it has no profile to name. (The
		// guard has already held its token to this store.)
		if req.Op == OpGetOrder && req.Principal != nil && req.Principal.Kind == guard.KindMerchant && req.Principal.Store == req.Shop {
			return own(), nil
		}
		return nil, protoErr(http.StatusBadRequest, rpcDiscovery, discovery.CodeInvalidProfileURL,
			"a platform profile is required: send UCP-Agent: profile=\"https://…\" (MCP: meta[\"ucp-agent\"].profile)")
	}
	platform, err := s.cfg.Profiles.Fetch(ctx, req.Agent)
	if err != nil {
		var de *discovery.Error
		if !errors.As(err, &de) {
			s.failure(ctx, "shop: fetch platform profile", err)
			return nil, unavailable("platform profile resolution failed")
		}
		if s.cfg.Dev && de.Code != discovery.CodeInvalidProfileURL {
			s.log.WarnContext(ctx, "shop: dev mode: platform profile unusable, serving own capabilities", "profile", req.Agent, "err", err)
			return withoutPlatform(own()), nil
		}
		return nil, protoErr(de.Status(), rpcDiscovery, de.Code, de.Content)
	}
	n, err := discovery.Negotiate(bp.profile, platform, discovery.NegotiateOptions{AcceptVersions: s.cfg.AcceptVersions})
	var de *discovery.Error
	switch {
	case errors.As(err, &de) && de.Code == discovery.CodeCapabilitiesIncompatible:
		return nil, incompatible(bp.profile.UCP.Version, s.continueBase(sh))
	case errors.As(err, &de):
		return nil, protoErr(de.Status(), rpcDiscovery, de.Code, de.Content)
	case err != nil:
		return nil, internalError()
	}
	neg := &negotiation{version: bp.profile.UCP.Version, caps: n.Capabilities, platform: platform, business: bp}
	if info.capability != "" && !neg.has(info.capability) {
		return nil, incompatible(neg.version, s.continueBase(sh))
	}
	return neg, nil
}

// needPlatform are the capabilities a request is held to only with the
// platform's profile: an AP2 checkout mandate is verified with keys the
// profile publishes, so without one no mandate is asked for.
var needPlatform = []string{ucp.CapAP2Mandate}

// withoutPlatform is n for a request served without the platform's
// profile (dev mode, the profile unreachable): the capabilities it cannot
// be held to go, so no response claims them (overview.md: responses list
// the capabilities active for the request) and no session is locked to
// them (ap2-mandates.md: a session that negotiated AP2 refuses to
// complete without a mandate).
func withoutPlatform(n *negotiation) *negotiation {
	for _, c := range needPlatform {
		delete(n.caps, c)
	}
	return n
}

func incompatible(version, continueURL string) *Reply {
	return payload(http.StatusOK, ucp.ErrorResponse{
		UCP: ucp.Envelope{Version: version, Status: ucp.StatusError},
		Messages: []ucp.Message{{Type: "error", Code: discovery.CodeCapabilitiesIncompatible, Severity: ucp.SeverityUnrecoverable,
			Content: "the platform profile shares no capability this operation needs"}},
		ContinueURL: continueURL,
	})
}

func (s *Service) continueBase(sh *shopInfo) string {
	if sh == nil {
		return s.cfg.BaseURL + "/"
	}
	return s.storeURL(sh.Slug) + "/"
}

// paymentHandlers is the checkout envelope's resolved handler registry.
func (n *negotiation) paymentHandlers() map[string][]ucp.PaymentHandler {
	out := map[string][]ucp.PaymentHandler{}
	for name, hs := range n.business.profile.UCP.PaymentHandlers {
		out[name] = slices.Clone(hs)
	}
	return out
}
