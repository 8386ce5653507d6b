package account

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/clientip"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
)

// JSON-RPC error codes, as the stores use them: -32000 for a refusal of
// the caller, -32600 for a request that cannot be taken.
const (
	rpcRefused = -32000
	rpcInvalid = -32600
)

// call carries the request's principal to the tool handlers (whose
// context derives from the request's) and brings back a protocol error
// one of them hit: mcp-go gives a handler no way to choose the JSON-RPC
// code or the HTTP status, so the wrapper rewrites the response.
type call struct {
	principal *guard.Principal
	err       *rpcwire.Error
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
		rpcwire.WriteError(w, body, rerr)
		return
	}
	network := clientip.Key(s.cfg.ClientIP.Addr(r))
	if blocked, wait := s.failures.Blocked(network); blocked {
		secs := int(wait/time.Second) + 1
		rpcwire.WriteError(w, body, &rpcwire.Error{Status: http.StatusTooManyRequests, RPCCode: rpcRefused, Code: "rate_limited",
			Content: "too many refused credentials from this network; retry in " + strconv.Itoa(secs) + " s", RetryAfter: secs})
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p, err := s.cfg.Guard.Identify(r)
	if err == nil {
		err = s.admit(p)
	}
	if err != nil {
		// A bad token (401) counts against its network; a request with
		// no credential at all is discovery (the 401 names the
		// metadata), and an unavailable store is nobody's failure.
		var ge *guard.Error
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized && ge.Code != "identity_required" {
			s.failures.Allow(network)
		}
		rpcwire.WriteError(w, body, s.refusal(err))
		return
	}
	if ok, wait := s.limits.Allow(p.ClientID + "|" + p.BuyerID); !ok {
		secs := int(wait/time.Second) + 1
		rpcwire.WriteError(w, body, &rpcwire.Error{Status: http.StatusTooManyRequests, RPCCode: rpcRefused, Code: "rate_limited",
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
	var res rpcwire.Response
	s.mcp.ServeHTTP(&res, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	if c.err != nil {
		res.Rewrite(c.err)
	}
	res.Send(w)
}

// readBody reads the whole (bounded) body up front: the guard may need
// it for a request signature, a refusal echoes its JSON-RPC id, and a
// body over the bound is refused as a whole rather than cut short.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *rpcwire.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &rpcwire.Error{Status: http.StatusRequestEntityTooLarge, RPCCode: rpcInvalid, Code: "payload_too_large",
			Content: "the request body is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"}
	case err != nil:
		return nil, &rpcwire.Error{Status: http.StatusBadRequest, RPCCode: rpcInvalid, Code: "invalid_request",
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
func (s *Server) refusal(err error) *rpcwire.Error {
	var ge *guard.Error
	if !errors.As(err, &ge) {
		return unavailable()
	}
	return &rpcwire.Error{Status: ge.Status, RPCCode: rpcRefused, Code: ge.Code, Content: ge.Content,
		WWWAuthenticate: ge.Challenge(s.cfg.BaseURL, s.ResourceMetadataURL()), RetryAfter: ge.RetryAfter}
}

func unavailable() *rpcwire.Error {
	return &rpcwire.Error{Status: http.StatusServiceUnavailable, RPCCode: rpcRefused, Code: "unavailable",
		Content: "the account is temporarily unavailable; retry", RetryAfter: 1}
}
