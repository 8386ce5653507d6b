package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
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

// metaSchema is the meta argument's schema (schemas/defs.json), for tools
// whose schema is not in schemas/tools.json.
var metaSchema = string(mustInlineDef("meta"))

// toolFor is the definition of op's tool; global: on the cross-store
// catalog. Its schemas are schemas/tools.json's.
func toolFor(op Op, global bool) mcp.Tool {
	info := ops[op]
	ti, ok := toolInfos[op]
	if !ok {
		ti = toolInfo{readOnly: !info.mutates, idempotent: !info.mutates || info.needsKey}
	}
	doc := ti.doc
	if global && ti.global != "" {
		doc = ti.global
	}
	var in, out json.RawMessage
	if ts := toolSchemas[op]; ts != nil {
		in, out = ts.input, ts.output
	}
	if lin, lout, ok := locationSchemas(op); ok {
		in, out = lin, lout
	}
	if in == nil {
		// A programming error, met when the service is built.
		panic("shop: the MCP tool " + string(op) + " has no schemas (schemas/tools.json)")
	}
	t := mcp.NewToolWithRawSchema(string(op), cmpOr(doc, locationToolDocs[op]), in)
	for _, o := range append(ti.annotations(), mcp.WithRawOutputSchema(out)) {
		o(&t)
	}
	return t
}

// mcpTools are the tools of a store's endpoint, or the cross-store
// catalog's (global): the same for every store, built once.
func (s *Service) mcpTools(global bool) []server.ServerTool {
	var tools []server.ServerTool
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if info := ops[op]; (global && !info.global) || info.settings {
			continue
		}
		tools = append(tools, server.ServerTool{Tool: toolFor(op, global), Handler: s.toolHandler(op)})
	}
	return tools
}

// mcpServerVersion is what the MCP endpoints report as their version.
const mcpServerVersion = "1.0.0"

// mcpServer is one MCP endpoint: tools under the given identity, over stateless streamable HTTP (no
// session ids), so the Artos SDK's bare tools/call POSTs work and any
// instance can serve any request.
func (s *Service) mcpServer(name, title, instructions string, tools []server.ServerTool) http.Handler {
	srv := server.NewMCPServer(name, mcpServerVersion, server.WithTitle(title), server.WithInstructions(instructions),
		server.WithToolCapabilities(false), server.WithRecovery())
	srv.AddTools(tools...)
	// mcp-go's DNS-rebinding guard refuses loopback requests whose Host is
	// not a loopback name, which is every request behind a same-host
	// reverse proxy. Outside dev the API is meant to be reached by name;
	// callers are authenticated per request anyway.
	return server.NewStreamableHTTPServer(srv, server.WithStateLess(true),
		server.WithStreamableHTTPLogger(s.log), server.WithDisableLocalhostProtection(!s.cfg.Dev))
}

// mcpHandler serves the UCP tools over streamable HTTP: a store's at
// /s/{slug}/mcp (global false), the cross-store catalog's at /mcp. Each
// endpoint reports its own name on initialize: the store's, or the
// catalog's.
func (s *Service) mcpHandler(global bool) http.Handler {
	var endpoint func(ctx context.Context, call *mcpCall) (http.Handler, *ProtocolError)
	tools := s.mcpTools(global)
	if global {
		h := s.mcpServer(catalogServerName, catalogServerTitle, catalogInstructions, tools)
		endpoint = func(context.Context, *mcpCall) (http.Handler, *ProtocolError) { return h, nil }
	} else {
		endpoint = (&storeServers{s: s, tools: tools, bySlug: map[string]*storeServer{}}).endpoint
	}
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
		var h http.Handler
		if perr == nil {
			call.principal = p
			h, perr = endpoint(r.Context(), call)
		}
		if perr != nil {
			// A JSON-RPC error echoing the request id, so MCP clients
			// can tell the failed call apart and keep their session.
			body, _ := io.ReadAll(r.Body)
			rpcwire.WriteError(w, body, perr)
			return
		}
		var res rpcwire.Response
		h.ServeHTTP(&res, r.WithContext(context.WithValue(r.Context(), mcpCallKey{}, call)))
		if call.err != nil {
			// The UCP error in place of the library's generic -32603.
			res.Rewrite(mcpWireError(call.err))
		}
		res.Send(w)
	})
}

// mcpWireError is e as an MCP endpoint sends it. A call that names no
// usable platform profile (invalid_profile_url: meta or its
// ucp-agent.profile missing or malformed) is answered with HTTP 200
// carrying the binding's JSON-RPC error (-32001): the exchange itself
// worked, and MCP clients (the Artos SDK, the TypeScript SDK) report any
// other status as a transport failure the agent never sees. Every other error
// keeps its status (UCP: "for MCP over HTTP, the HTTP status code is the
// primary signal"; invalid params are 400 like REST's).
func mcpWireError(e *ProtocolError) *ProtocolError {
	if e.Code != discovery.CodeInvalidProfileURL {
		return e
	}
	c := *e
	c.Status = http.StatusOK
	return &c
}

// storeServerTTL is how long a store's endpoint keeps the name it was
// built with before the store is read again (a renamed store reports its
// new name within it).
const storeServerTTL = time.Minute

// storeServers are the stores' MCP endpoints, each built on first use
// under its store's name and kept for storeServerTTL. Only stores that
// exist are kept, so there are as many as stores.
type storeServers struct {
	s      *Service
	tools  []server.ServerTool
	mu     sync.Mutex
	bySlug map[string]*storeServer
}

type storeServer struct {
	name, currency string
	until          time.Time
	h              http.Handler
}

// endpoint is the MCP server of the store call names. An unknown store is
// refused as Do refuses it (404 store_not_found), before any tool runs; a
// lookup that finds none is charged to the caller's rate limit, like an
// operation, so unknown names cannot make the database work for free.
func (ss *storeServers) endpoint(ctx context.Context, call *mcpCall) (http.Handler, *ProtocolError) {
	s, slug := ss.s, call.slug
	now := s.now()
	ss.mu.Lock()
	cur := ss.bySlug[slug]
	ss.mu.Unlock()
	if cur != nil && now.Before(cur.until) {
		return cur.h, nil
	}
	if rep := s.refuseBadBytes(ctx, &Request{Shop: slug}); rep != nil {
		return nil, rep.Err
	}
	notFound := protoErr(http.StatusNotFound, rpcInvalid, "store_not_found", "no store "+slug).Err
	if !slugRE.MatchString(slug) {
		return nil, notFound
	}
	if e := s.callerBlocked(call.principal, call.addr); e != nil {
		if cur != nil {
			return cur.h, nil // known: its tool calls are limited anyway
		}
		return nil, e
	}
	sh, err := s.cfg.Store.Shop(ctx, slug)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if e := s.rateLimit(ctx, &Request{Shop: slug, Principal: call.principal, ClientAddr: call.addr}); e != nil {
			return nil, e
		}
		return nil, notFound
	case err != nil && cur != nil:
		return cur.h, nil // the store's last known name will do
	case err != nil:
		s.failure(ctx, "shop: load store", err, "store", slug)
		return nil, unavailable("the store is unavailable").Err
	}
	next := &storeServer{name: sh.Name, currency: sh.Currency, until: now.Add(storeServerTTL)}
	if cur != nil && cur.name == sh.Name && cur.currency == sh.Currency {
		next.h = cur.h
	} else {
		next.h = s.mcpServer(sh.Name, sh.Name, storeInstructions(sh.Name, sh.Currency), ss.tools)
	}
	ss.mu.Lock()
	ss.bySlug[slug] = next
	ss.mu.Unlock()
	return next.h, nil
}

// callerBlocked is the refusal Do's rate limit would give the caller now,
// without charging it.
func (s *Service) callerBlocked(p *guard.Principal, addr netip.Addr) *ProtocolError {
	l := s.limits
	if l == nil {
		return nil
	}
	lim, key, who := l.cred, "", "with this credential"
	if p.IsAnonymous() {
		lim, key, who = l.network, networkKey(addr), "from this network"
	} else {
		key = credentialKey(p)
	}
	if blocked, wait := lim.Blocked(key); blocked {
		return rateLimited(ratelimit.RetryAfterSeconds(wait), who)
	}
	return nil
}

// toolArgs is the UCP tool argument envelope, past meta (readMeta).
type toolArgs struct {
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

// toolHandler runs op's tool call: the arguments must be an object whose
// meta names the platform profile (else invalid_profile_url, the
// binding's discovery error), and must satisfy the tool's input schema
// (else -32602, naming each violation); then Service.Do runs it.
func (s *Service) toolHandler(op Op) server.ToolHandlerFunc {
	info := ops[op]
	ts := toolSchemas[op]
	if ts == nil {
		ts = locationToolSchema(op)
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		call, _ := ctx.Value(mcpCallKey{}).(*mcpCall)
		if call == nil {
			call = &mcpCall{}
		}
		fail := func(e *ProtocolError) (*mcp.CallToolResult, error) {
			call.err = e
			return nil, e
		}
		invalid := func(content string) (*mcp.CallToolResult, error) {
			return fail(&ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcParams, Code: "invalid_request", Content: content})
		}
		raw, err := argumentBytes(req)
		var members map[string]json.RawMessage
		if err == nil {
			err = json.Unmarshal(raw, &members)
		}
		if err != nil || members == nil {
			return invalid("arguments must be a JSON object: " + argumentShape(op))
		}
		agent, key, perr := readMeta(members["meta"], info)
		if perr != nil {
			return fail(perr)
		}
		if ts != nil {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err == nil {
				err = ts.validateArgs(doc)
			}
			if err != nil {
				// Charged like the operation it would have been (REST
				// charges a body it refuses too), so refused calls are
				// not a way around the limit.
				if e := s.rateLimit(ctx, &Request{Op: op, Shop: call.slug, Principal: call.principal, ClientAddr: call.addr}); e != nil {
					return fail(e)
				}
				// Where the store's own reading refuses the body too,
				// its refusal is the answer: the one REST gives.
				if e := bodyRefusal(op, members[info.bodyKey]); e != nil {
					return fail(e)
				}
				return invalid("invalid " + string(op) + " arguments (the tool's inputSchema says what they are): " + err.Error())
			}
		}
		var args toolArgs
		if err := json.Unmarshal(raw, &args); err != nil {
			return invalid("arguments must be a JSON object: " + argumentShape(op))
		}
		r := &Request{Op: op, Shop: call.slug, ID: args.ID, Agent: agent,
			IdempotencyKey: call.idemKey, IdempotencyKeyEmpty: call.idemHeader && call.idemKey == "", Principal: call.principal, BuyerType: "agent",
			ClientAddr: call.addr, Resource: call.resource}
		if key != nil {
			r.IdempotencyKey, r.IdempotencyKeyEmpty = *key, *key == ""
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
				return invalid(err.Error())
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

// bodyRefusal is the store's refusal of an operation's body by reading it
// alone (decoding and bounds, before any state is read), or nil: what
// Service.Do answers the same body with, on either binding.
func bodyRefusal(op Op, body json.RawMessage) *ProtocolError {
	if len(body) == 0 || string(body) == "null" {
		return nil
	}
	var rep *Reply
	switch op {
	case OpCreateCheckout, OpUpdateCheckout:
		rep = decodeInput(body, &checkoutInput{})
	case OpCreateCart, OpUpdateCart:
		rep = decodeInput(body, &cartInput{})
	case OpCompleteCheckout:
		rep = decodeInput(body, &completeInput{})
	case OpSearchCatalog:
		rep = decodeBody(body, &ucp.SearchRequest{})
	case OpLookupCatalog:
		rep = decodeBody(body, &ucp.LookupRequest{})
	case OpGetProduct:
		rep = decodeBody(body, &ucp.ProductRequest{})
	case OpPrepareCheckoutPayment:
		rep = decodeBody(body, &prepareInput{})
	}
	if rep == nil {
		return nil
	}
	return rep.Err
}

// argumentShape is op's argument object, for messages: {meta, id, checkout}.
func argumentShape(op Op) string {
	info := ops[op]
	shape := "{meta"
	if info.hasID {
		shape += ", id"
	}
	if info.bodyKey != "" {
		shape += ", " + info.bodyKey
	}
	return shape + "}"
}

// readMeta reads the meta argument: the platform profile, which every
// call must name (the MCP binding: meta["ucp-agent"] is required on all
// requests, catalog reads included), and the idempotency key when there
// is one (nil: none; Do checks its form and whether op needs one).
func readMeta(raw json.RawMessage, info opInfo) (agent string, key *string, e *ProtocolError) {
	noProfile := func(what string) *ProtocolError {
		content := `meta["ucp-agent"].profile is required (` + what + `): every UCP call over MCP names the platform's profile, ` +
			`{"meta": {"ucp-agent": {"profile": "https://…/.well-known/ucp"}}}`
		if info.bodyKey == "catalog" {
			content += `, catalog reads included (UCP's MCP binding requires meta["ucp-agent"] on all requests). ` +
				`Browsing without a profile is for the REST catalog (POST …/catalog/search without a UCP-Agent header)`
		}
		return &ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcDiscovery, Code: discovery.CodeInvalidProfileURL, Content: content}
	}
	var meta struct {
		Agent json.RawMessage `json:"ucp-agent"`
		Key   json.RawMessage `json:"idempotency-key"`
	}
	var ua struct {
		Profile json.RawMessage `json:"profile"`
	}
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil, noProfile(`there is no meta argument`)
	case json.Unmarshal(raw, &meta) != nil:
		return "", nil, noProfile(`meta is not an object`)
	case len(meta.Agent) == 0 || string(meta.Agent) == "null" || json.Unmarshal(meta.Agent, &ua) != nil:
		return "", nil, noProfile(`meta["ucp-agent"] is missing or not an object`)
	case json.Unmarshal(ua.Profile, &agent) != nil || agent == "":
		return "", nil, noProfile(`it is missing, empty or not a string`)
	}
	if len(meta.Key) > 0 && string(meta.Key) != "null" {
		key = new(string)
		if json.Unmarshal(meta.Key, key) != nil {
			return "", nil, &ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcParams, Code: "invalid_request",
				Content: `meta["idempotency-key"] must be a string`}
		}
	}
	return agent, key, nil
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
