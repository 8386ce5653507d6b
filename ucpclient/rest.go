package ucpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The REST binding of dev.ucp.shopping (ucp.md §2.1), relative to the
// business's REST endpoint. Each operation is routed by the row of the
// MCP tool it is the REST form of (the credential depends on the
// operation, not on the binding), so the routing table stays one table.

// SearchCatalog runs POST {endpoint}/catalog/search. A UCP error
// envelope (ucp.status "error") is a *ProtocolError, as on GlobalSearch.
func (b *Business) SearchCatalog(ctx context.Context, req *ucp.SearchRequest, opts ...CallOption) (*ucp.SearchResponse, error) {
	if req == nil {
		req = &ucp.SearchRequest{}
	}
	var out ucp.SearchResponse
	if err := b.catalog(ctx, "search_catalog", "/catalog/search", req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// LookupCatalog runs POST {endpoint}/catalog/lookup.
func (b *Business) LookupCatalog(ctx context.Context, req *ucp.LookupRequest, opts ...CallOption) (*ucp.LookupResponse, error) {
	if req == nil {
		req = &ucp.LookupRequest{}
	}
	var out ucp.LookupResponse
	if err := b.catalog(ctx, "lookup_catalog", "/catalog/lookup", req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetProduct runs POST {endpoint}/catalog/product.
func (b *Business) GetProduct(ctx context.Context, req *ucp.ProductRequest, opts ...CallOption) (*ucp.ProductResponse, error) {
	if req == nil {
		req = &ucp.ProductRequest{}
	}
	var out ucp.ProductResponse
	if err := b.catalog(ctx, "get_product", "/catalog/product", req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateCart runs POST {endpoint}/carts with cart (a JSON object: line
// items as {item:{id}, quantity}) as the body.
func (b *Business) CreateCart(ctx context.Context, cart any, opts ...CallOption) (json.RawMessage, error) {
	return b.resource(ctx, "create_cart", http.MethodPost, "/carts", cart, true, opts)
}

// GetCart runs GET {endpoint}/carts/{id}.
func (b *Business) GetCart(ctx context.Context, id string, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "get_cart", http.MethodGet, "/carts/", id, "", nil, false, opts)
}

// UpdateCart runs PUT {endpoint}/carts/{id}, a full replace.
func (b *Business) UpdateCart(ctx context.Context, id string, cart any, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "update_cart", http.MethodPut, "/carts/", id, "", cart, true, opts)
}

// CancelCart runs POST {endpoint}/carts/{id}/cancel (empty body).
func (b *Business) CancelCart(ctx context.Context, id string, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "cancel_cart", http.MethodPost, "/carts/", id, "/cancel", nil, false, opts)
}

// CreateCheckout runs POST {endpoint}/checkout-sessions with checkout (a
// JSON object) as the body.
func (b *Business) CreateCheckout(ctx context.Context, checkout any, opts ...CallOption) (json.RawMessage, error) {
	return b.resource(ctx, "create_checkout", http.MethodPost, "/checkout-sessions", checkout, true, opts)
}

// GetCheckout runs GET {endpoint}/checkout-sessions/{id}.
func (b *Business) GetCheckout(ctx context.Context, id string, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "get_checkout", http.MethodGet, "/checkout-sessions/", id, "", nil, false, opts)
}

// UpdateCheckout runs PUT {endpoint}/checkout-sessions/{id}. Update is a
// full replace: send everything to keep (line items, buyer,
// fulfillment, discounts).
func (b *Business) UpdateCheckout(ctx context.Context, id string, checkout any, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "update_checkout", http.MethodPut, "/checkout-sessions/", id, "", checkout, true, opts)
}

// CompleteCheckout runs POST {endpoint}/checkout-sessions/{id}/complete
// with body ({payment:{instruments:[…]}}, plus signals, attribution, ap2)
// as the body. The credential is the routing table's complete_checkout
// row: the buyer bearer alone when this business has a buyer token or
// WithCrypto is given, else the platform key.
func (b *Business) CompleteCheckout(ctx context.Context, id string, body any, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "complete_checkout", http.MethodPost, "/checkout-sessions/", id, "/complete", body, true, opts)
}

// CancelCheckout runs POST {endpoint}/checkout-sessions/{id}/cancel
// (empty body).
func (b *Business) CancelCheckout(ctx context.Context, id string, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "cancel_checkout", http.MethodPost, "/checkout-sessions/", id, "/cancel", nil, false, opts)
}

// GetOrder runs GET {endpoint}/orders/{id}.
func (b *Business) GetOrder(ctx context.Context, id string, opts ...CallOption) (json.RawMessage, error) {
	return b.withID(ctx, "get_order", http.MethodGet, "/orders/", id, "", nil, false, opts)
}

func (b *Business) withID(ctx context.Context, tool, method, prefix, id, suffix string, body any, hasBody bool, opts []CallOption) (json.RawMessage, error) {
	if id == "" {
		return nil, fmt.Errorf("ucpclient: rest.%s: empty id", tool)
	}
	if id == "." || id == ".." {
		// PathEscape keeps them, and as a path segment they are
		// dot-segments a server or proxy resolves (RFC 3986 §5.2.4):
		// the call would reach another resource.
		return nil, fmt.Errorf("ucpclient: rest.%s: invalid id %q", tool, id)
	}
	return b.resource(ctx, tool, method, prefix+url.PathEscape(id)+suffix, body, hasBody, opts)
}

// resource sends one cart, checkout or order call and returns the body.
// Like the store tools, a 2xx UCP error envelope is a result, not an
// error; a non-2xx answer is a *ProtocolError, a 401 an
// *AuthChallengeError.
func (b *Business) resource(ctx context.Context, tool, method, path string, body any, hasBody bool, opts []CallOption) (json.RawMessage, error) {
	var raw []byte
	if hasBody {
		obj, err := argsObject(body)
		if err != nil {
			return nil, fmt.Errorf("ucpclient: rest.%s: %w", tool, err)
		}
		raw = obj
	}
	cl, res, err := b.send(ctx, tool, method, path, raw, opts)
	if err != nil {
		return nil, err
	}
	if res.status/100 != 2 {
		return nil, protocolError(cl.op, res)
	}
	trimmed := bytes.TrimSpace(res.body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		pe := protocolError(cl.op, res)
		pe.Content = "response is not a JSON object"
		return nil, pe
	}
	return json.RawMessage(trimmed), nil
}

// catalog sends one catalog call and decodes the result into out.
func (b *Business) catalog(ctx context.Context, tool, path string, req, out any, opts []CallOption) error {
	raw, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("ucpclient: rest.%s: %w", tool, err)
	}
	cl, res, err := b.send(ctx, tool, http.MethodPost, path, raw, opts)
	if err != nil {
		return err
	}
	if res.status/100 != 2 {
		return protocolError(cl.op, res)
	}
	var env struct {
		UCP *ucp.Envelope `json:"ucp"`
	}
	if json.Unmarshal(res.body, &env) != nil || json.Unmarshal(res.body, out) != nil {
		pe := protocolError(cl.op, res)
		pe.Content = "response is not a UCP catalog result"
		return pe
	}
	if env.UCP != nil && env.UCP.Status == ucp.StatusError {
		return protocolError(cl.op, res)
	}
	return nil
}

// send routes the call by the tool's row, adds the idempotency key the
// row asks for, and runs it through the Client's pipeline.
func (b *Business) send(ctx context.Context, tool, method, path string, body []byte, opts []CallOption) (*call, *response, error) {
	o := options(opts)
	var args json.RawMessage
	if tool == "update_checkout" && body != nil { // the coupon claim is read from {checkout: …}
		args = make(json.RawMessage, 0, len(body)+13)
		args = append(append(append(args, `{"checkout":`...), body...), '}')
	}
	r := route(SurfaceStore, tool, o, b.c.HasBuyerToken(), args)
	key := o.idemKey
	if key == "" && r.Idempotent {
		key = freshUUID()
	}
	cl := &call{op: "rest." + tool, route: r, method: method, url: b.endpoint + path, body: body, idemKey: key}
	if !strings.HasPrefix(cl.url, b.c.base+"/s/") {
		// A business that is not one of the platform's stores (another
		// origin, or another path of this one) signs with the keys its
		// own profile publishes; the platform's stores are verified by
		// slug.
		profile := b.profile
		cl.respKeys = &businessKeys{Label: b.profileURL, Keys: func(context.Context) (*mandate.KeySet, error) { return ProfileKeys(profile) }}
	}
	if err := b.c.precheck(cl); err != nil {
		return cl, nil, err
	}
	res, err := b.c.send(ctx, cl)
	return cl, res, err
}
