package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
)

// JSON-RPC error codes, as the stores use them: -32000 for a refusal of
// the caller, -32600 for a request that cannot be taken.
const (
	rpcRefused = -32000
	rpcInvalid = -32600
)

// rpcError is a protocol-level failure: the HTTP status (the primary
// signal for MCP clients), the JSON-RPC code, and the flat {code,
// content} data the stores' MCP errors carry.
type rpcError struct {
	Status          int
	RPCCode         int
	Code            string
	Content         string
	WWWAuthenticate string
	RetryAfter      int
}

func (e *rpcError) Error() string { return "account: " + e.Code + ": " + e.Content }

// call carries the request's principal to the tool handlers (whose
// context derives from the request's) and brings back a protocol error
// one of them hit: mcp-go gives a handler no way to choose the JSON-RPC
// code or the HTTP status, so the wrapper rewrites the response.
type call struct {
	principal *guard.Principal
	err       *rpcError
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// serveMCP admits the caller, then hands the request to mcp-go. The
// caller is checked before the JSON-RPC method is looked at, so
// initialize and tools/list without a buyer's bearer get the 401 and its
// challenge too: that is how an MCP client learns where to sign the buyer
// in.
func (s *Server) serveMCP(w http.ResponseWriter, r *http.Request) {
	body, rerr := s.readBody(w, r)
	if rerr != nil {
		s.writeError(w, body, rerr)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p, err := s.cfg.Guard.Identify(r)
	if err == nil {
		err = s.admit(p)
	}
	if err != nil {
		s.writeError(w, body, s.refusal(err))
		return
	}
	if ok, wait := s.limits.Allow(p.ClientID + "|" + p.BuyerID); !ok {
		secs := int(wait/time.Second) + 1
		s.writeError(w, body, &rpcError{Status: http.StatusTooManyRequests, RPCCode: rpcRefused, Code: "rate_limited",
			Content: "too many calls to the buyer account; retry in " + strconv.Itoa(secs) + " s", RetryAfter: secs})
		return
	}
	if r.Method != http.MethodPost {
		// Stateless: there is no stream to open (GET) and no session to
		// end (DELETE).
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST JSON-RPC messages", http.StatusMethodNotAllowed)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c := &call{principal: p}
	buf := &bufferedResponse{header: http.Header{}}
	s.mcp.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	if c.err != nil {
		buf.rewrite(c.err)
	}
	buf.flush(w)
}

// readBody reads the whole (bounded) body up front: the guard may need
// it for a request signature, a refusal echoes its JSON-RPC id, and a
// body over the bound is refused as a whole rather than cut short.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *rpcError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &rpcError{Status: http.StatusRequestEntityTooLarge, RPCCode: rpcInvalid, Code: "payload_too_large",
			Content: "the request body is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"}
	case err != nil:
		return nil, &rpcError{Status: http.StatusBadRequest, RPCCode: rpcInvalid, Code: "invalid_request",
			Content: "the request body could not be read"}
	}
	return body, nil
}

// admit decides whether p may use the account at all: a buyer's bearer,
// alone, issued for this resource (or the whole API, or no resource).
// The per-tool decision is the guard's (guard.Authorize in each tool);
// this one gives the refusals that apply to every method, in words that
// say what would work.
func (s *Server) admit(p *guard.Principal) error {
	switch {
	case p.IsAnonymous():
		return &guard.Error{Status: http.StatusUnauthorized, Code: "identity_required",
			Content: "the buyer account needs the buyer's OAuth bearer token (Authorization: Bearer); the resource metadata names the authorization server that signs the buyer in"}
	case p.Dual:
		return &guard.Error{Status: http.StatusForbidden, Code: "credential_conflict",
			Content: "the buyer account takes the buyer's bearer token alone: send it without X-API-Key (a key with a bearer is never run as the platform or the buyer)"}
	case p.Kind != guard.KindBuyer:
		return &guard.Error{Status: http.StatusForbidden, Code: "forbidden",
			Content: "the buyer account is the buyer's: a " + string(p.Kind) + " credential speaks for no buyer; use a buyer's bearer token from the authorization code flow"}
	}
	return p.CheckResource(s.resource, s.cfg.BaseURL)
}

// refusal renders the guard's refusal with the challenge pointing at this
// resource's metadata.
func (s *Server) refusal(err error) *rpcError {
	var ge *guard.Error
	if !errors.As(err, &ge) {
		return unavailable()
	}
	return &rpcError{Status: ge.Status, RPCCode: rpcRefused, Code: ge.Code, Content: ge.Content,
		WWWAuthenticate: ge.Challenge(s.cfg.BaseURL, s.ResourceMetadataURL()), RetryAfter: ge.RetryAfter}
}

func unavailable() *rpcError {
	return &rpcError{Status: http.StatusServiceUnavailable, RPCCode: rpcRefused, Code: "unavailable",
		Content: "the account is temporarily unavailable; retry", RetryAfter: 1}
}

// writeError answers with e as a JSON-RPC error echoing the request's id,
// so a client can tell which call failed.
func (s *Server) writeError(w http.ResponseWriter, body []byte, e *rpcError) {
	buf := &bufferedResponse{header: http.Header{}}
	buf.body.WriteString(`{"jsonrpc":"2.0","id":` + requestID(body) + `}`)
	buf.rewrite(e)
	buf.flush(w)
}

// requestID is the id of a JSON-RPC request as JSON ("null" when there is
// none to echo), never anything else from the body.
func requestID(body []byte) string {
	var msg struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &msg) != nil || len(msg.ID) == 0 {
		return "null"
	}
	switch msg.ID[0] {
	case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(msg.ID)
	}
	return "null"
}

// bufferedResponse holds mcp-go's answer so a protocol error can replace
// it before anything is sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

// rewrite replaces the buffered answer with e, keeping the request id the
// buffered JSON-RPC response carries.
func (b *bufferedResponse) rewrite(e *rpcError) {
	var msg struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b.body.Bytes(), &msg) != nil || len(msg.ID) == 0 {
		msg.ID = json.RawMessage("null")
	}
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID,
		"error": map[string]any{"code": e.RPCCode, "message": e.Content, "data": map[string]any{"code": e.Code, "content": e.Content}}})
	b.body.Reset()
	b.body.Write(out)
	b.header = http.Header{"Content-Type": {"application/json"}}
	if e.WWWAuthenticate != "" {
		b.header.Set("WWW-Authenticate", e.WWWAuthenticate)
	}
	if e.RetryAfter > 0 {
		b.header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	b.status = e.Status
}

func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
