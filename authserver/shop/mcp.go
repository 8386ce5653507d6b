package shop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
)

// mcpCall carries per-request state between the HTTP wrapper and the tool
// handlers (whose context derives from the request's).
type mcpCall struct {
	slug      string
	resource  string // the MCP endpoint's URL (Request.Resource)
	principal *guard.Principal
	addr      netip.Addr // the client's address (Request.ClientAddr)
	// idemKey is the HTTP Idempotency-Key, used when meta has none (the
	// binding lets the same headers sit on the HTTP layer); idemHeader
	// says the header was sent (an empty one is refused).
	idemKey    string
	idemHeader bool
	// err is the protocol error a handler hit; the wrapper turns the
	// library's generic -32603 into the UCP code (mcp-go has no way for a
	// tool handler to choose the JSON-RPC error code).
	err *ProtocolError
}

type mcpCallKey struct{}

const metaSchema = `{"type":"object","description":"UCP request metadata","properties":{` +
	`"ucp-agent":{"type":"object","properties":{"profile":{"type":"string","description":"URL of the platform's UCP profile"}},"required":["profile"]},` +
	`"idempotency-key":{"type":"string","description":"unique per state-changing call (a UUID); retries reuse it"}},"required":["ucp-agent"]}`

const outputSchema = `{"type":"object","description":"the UCP response payload (the REST body)","properties":{` +
	`"ucp":{"type":"object","properties":{"version":{"type":"string"},"status":{"type":"string","enum":["success","error"]}},"required":["version"]},` +
	`"messages":{"type":"array","items":{"type":"object"}}},"required":["ucp"]}`

var toolDocs = map[Op]string{
	OpSearchCatalog:    "Search the catalog. catalog: {query, filters:{categories, price:{min,max}}, pagination:{cursor,limit}, sort}. Prices are integer minor units.",
	OpLookupCatalog:    "Look up products or variants by id. catalog: {ids:[...]}",
	OpGetProduct:       "Get one product with its variants. catalog: {id, selected?, preferences?}",
	OpCreateCart:       "Create a cart. cart: {line_items:[{item:{id}, quantity}]}",
	OpGetCart:          "Get a cart by id.",
	OpUpdateCart:       "Replace a cart's contents (full replace). cart: {line_items, ...}",
	OpCancelCart:       "Cancel a cart. Requires meta[\"idempotency-key\"].",
	OpCreateCheckout:   "Create a checkout session. checkout: {line_items:[{item:{id}, quantity}] | cart_id, buyer?, fulfillment?, discounts?:{codes}, payment?}",
	OpGetCheckout:      "Get a checkout session by id (the verbatim body to embed in an AP2 checkout mandate).",
	OpUpdateCheckout:   "Replace a checkout session's inputs (full replace: resend everything to keep).",
	OpCompleteCheckout: "Place the order. checkout: {payment:{instruments:[{handler_id, selected:true, credential:{type:\"token\", token}}]}, ap2?:{checkout_mandate}}. Requires meta[\"idempotency-key\"].",
	OpCancelCheckout:   "Cancel a checkout session. Requires meta[\"idempotency-key\"].",
	OpGetOrder:         "Get an order by id.",
	OpPrepareCheckoutPayment: "Prepare the buyer's crypto payment (artos.crypto; buyer bearer only, within the buyer's allowance). payment_intent: {buyer_address?, input_coin_type?}. " +
		"Returns payment_intent {unsigned_tx, settlement_reference, amount, expires_at}; complete_checkout with an artos.crypto instrument whose credential.token is the settlement reference. Requires meta[\"idempotency-key\"].",
}

func toolFor(op Op) mcp.Tool {
	info := ops[op]
	props := `"meta":` + metaSchema
	required := []string{`"meta"`}
	if info.hasID {
		props += `,"id":{"type":"string"}`
		required = append(required, `"id"`)
	}
	if info.bodyKey != "" {
		props += `,"` + info.bodyKey + `":{"type":"object"}`
		required = append(required, `"`+info.bodyKey+`"`)
	}
	schema := `{"type":"object","properties":{` + props + `},"required":[` + joinComma(required) + `]}`
	out := json.RawMessage(outputSchema)
	if lin, lout, ok := locationSchemas(op); ok {
		schema, out = string(lin), lout
	}
	readOnly := !info.mutates
	destructive := op == OpCompleteCheckout || op == OpCancelCheckout || op == OpCancelCart
	t := mcp.NewToolWithRawSchema(string(op), cmpOr(toolDocs[op], locationToolDocs[op]), json.RawMessage(schema))
	for _, o := range []mcp.ToolOption{
		mcp.WithRawOutputSchema(out),
		mcp.WithReadOnlyHintAnnotation(readOnly),
		mcp.WithDestructiveHintAnnotation(destructive),
		mcp.WithIdempotentHintAnnotation(readOnly || info.needsKey),
		mcp.WithOpenWorldHintAnnotation(false),
	} {
		o(&t)
	}
	return t
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

// mcpHandler serves the UCP tools over streamable HTTP. It is stateless
// (no session ids), so the Artos SDK's bare tools/call POSTs work and any
// instance can serve any request.
func (s *Service) mcpHandler(global bool) http.Handler {
	srv := server.NewMCPServer("ucpbridge-store", "1.0.0", server.WithToolCapabilities(false), server.WithRecovery())
	for op, info := range ops {
		if (global && !info.global) || info.settings {
			continue
		}
		srv.AddTool(toolFor(op), s.toolHandler(op))
	}
	// mcp-go's DNS-rebinding guard refuses loopback requests whose Host is
	// not a loopback name, which is every request behind a same-host
	// reverse proxy. Outside dev the API is meant to be reached by name;
	// callers are authenticated per request anyway.
	h := server.NewStreamableHTTPServer(srv, server.WithStateLess(true),
		server.WithStreamableHTTPLogger(s.log), server.WithDisableLocalhostProtection(!s.cfg.Dev))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			// Stateless: there is no stream to open or session to end.
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.ContentLength > s.cfg.MaxBody {
			rpcwire.WriteError(w, nil, &ProtocolError{Status: http.StatusRequestEntityTooLarge, RPCCode: rpcInvalid,
				Code: "payload_too_large", Content: "the request body is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		keys := r.Header.Values("Idempotency-Key")
		call := &mcpCall{slug: r.PathValue("slug"), idemKey: strings.Join(keys, ", "), idemHeader: len(keys) > 0, addr: s.clientAddr(r),
			resource: s.cfg.BaseURL + strings.TrimSuffix(r.URL.Path, "/")}
		p, perr := s.authenticate(r, call.addr)
		if perr != nil {
			// A JSON-RPC error echoing the request id, so MCP clients
			// can tell the failed call apart and keep their session.
			body, _ := io.ReadAll(r.Body)
			rpcwire.WriteError(w, body, perr)
			return
		}
		call.principal = p
		var res rpcwire.Response
		h.ServeHTTP(&res, r.WithContext(context.WithValue(r.Context(), mcpCallKey{}, call)))
		if call.err != nil {
			// The UCP error in place of the library's generic -32603.
			res.Rewrite(call.err)
		}
		res.Send(w)
	})
}

// toolArgs is the UCP tool argument envelope.
type toolArgs struct {
	Meta *struct {
		Agent *struct {
			Profile string `json:"profile"`
		} `json:"ucp-agent"`
		// IdempotencyKey is a pointer: an empty key is refused, not
		// taken for none.
		IdempotencyKey *string `json:"idempotency-key"`
	} `json:"meta"`
	ID       string          `json:"id"`
	Checkout json.RawMessage `json:"checkout"`
	Cart     json.RawMessage `json:"cart"`
	Catalog  json.RawMessage `json:"catalog"`
	// PaymentIntent is prepare_checkout_payment's argument (Artos).
	PaymentIntent json.RawMessage `json:"payment_intent"`
	// Location is the location tools' request (or its members sit
	// beside meta: locationArguments).
	Location json.RawMessage `json:"location"`
}

func (s *Service) toolHandler(op Op) server.ToolHandlerFunc {
	info := ops[op]
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		call, _ := ctx.Value(mcpCallKey{}).(*mcpCall)
		if call == nil {
			call = &mcpCall{}
		}
		fail := func(e *ProtocolError) (*mcp.CallToolResult, error) {
			call.err = e
			return nil, e
		}
		raw, err := argumentBytes(req)
		var args toolArgs
		if err == nil {
			err = json.Unmarshal(raw, &args)
		}
		if err != nil {
			return fail(&ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcParams, Code: "invalid_request",
				Content: "arguments must be an object: {meta, id?, " + cmpOr(info.bodyKey, "…") + "?}"})
		}
		if args.Meta == nil || args.Meta.Agent == nil || args.Meta.Agent.Profile == "" {
			return fail(&ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcDiscovery, Code: discovery.CodeInvalidProfileURL,
				Content: `meta["ucp-agent"].profile is required`})
		}
		r := &Request{Op: op, Shop: call.slug, ID: args.ID, Agent: args.Meta.Agent.Profile,
			IdempotencyKey: call.idemKey, IdempotencyKeyEmpty: call.idemHeader && call.idemKey == "", Principal: call.principal, BuyerType: "agent",
			ClientAddr: call.addr, Resource: call.resource}
		if k := args.Meta.IdempotencyKey; k != nil {
			r.IdempotencyKey, r.IdempotencyKeyEmpty = *k, *k == ""
		}
		switch info.bodyKey {
		case "checkout":
			r.Body = args.Checkout
		case "cart":
			r.Body = args.Cart
		case "catalog":
			r.Body = args.Catalog
		case "payment_intent":
			r.Body = args.PaymentIntent
		case "location":
			if r.Body, err = locationArguments(raw, args.Location); err != nil {
				return fail(&ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcParams, Code: "invalid_request", Content: err.Error()})
			}
		}
		if string(r.Body) == "null" {
			r.Body = nil
		}
		rep := s.Do(ctx, r)
		if rep.Err != nil {
			return fail(rep.Err)
		}
		res := &mcp.CallToolResult{
			Content:              []mcp.Content{mcp.NewTextContent(string(rep.Body))},
			RawStructuredContent: rep.Body,
		}
		return res, nil
	}
}

func argumentBytes(req mcp.CallToolRequest) ([]byte, error) {
	switch a := req.GetRawArguments().(type) {
	case json.RawMessage:
		return a, nil
	case nil:
		return []byte("{}"), nil
	default:
		b, err := json.Marshal(a)
		if err != nil {
			return nil, errors.New("arguments are not JSON")
		}
		return b, nil
	}
}
