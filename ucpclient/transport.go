package ucpclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// maxResponseBytes caps every API response body the client reads.
const maxResponseBytes = 8 << 20

type attemptKey struct{}

// attemptState is shared by the attempts of one call.
type attemptState struct {
	body []byte
	mu   sync.Mutex
	rid  string
}

func (s *attemptState) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rid
}

// prepareAttempt runs before every HTTP attempt of a call (directly for
// the first, as retryablehttp's PrepareRetry for the others): a fresh
// Request-Id and, with a signer, a fresh RFC 9421 signature over the
// exact body sent (a retry never reuses an old signature or nonce).
func (c *Client) prepareAttempt(r *http.Request) error {
	st, _ := r.Context().Value(attemptKey{}).(*attemptState)
	rid := freshUUID()
	r.Header.Set("Request-Id", rid)
	var body []byte
	if st != nil {
		st.mu.Lock()
		st.rid = rid
		st.mu.Unlock()
		body = st.body
	}
	if c.signer != nil {
		if err := c.signer.SignRequest(r, body); err != nil {
			return fmt.Errorf("sign request: %w", err)
		}
	}
	return nil
}

// call is one logical operation.
type call struct {
	op      string // for errors: "store.create_checkout"
	route   Route
	method  string
	url     string
	body    []byte
	idemKey string
	// respKeys, on a store-surface call to a business outside the
	// platform, verifies its responses with that business's keys when
	// Config.VerifyResponses is on (respsig.go).
	respKeys *businessKeys
}

// response is what send returns for a non-401 answer.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

// send runs a call: credentials from the routing table, the 401 relay
// (one buyer-token refresh and one retry, never more), retries through
// retryablehttp.
func (c *Client) send(ctx context.Context, cl *call) (*response, error) {
	var tok *oauth2.Token
	needBuyer := cl.route.Credential == CredentialBuyer || cl.route.Credential == CredentialPlatformBuyer
	if needBuyer {
		if c.buyer == nil {
			return nil, &BuyerRequiredError{Op: cl.op}
		}
		t, err := c.buyer.Token()
		if err != nil {
			return nil, fmt.Errorf("ucpclient: %s: buyer token: %w", cl.op, err)
		}
		tok = t
	}
	refreshed := false
	for {
		res, err := c.attempt(ctx, cl, tok)
		if err != nil {
			return nil, err
		}
		if res.status != http.StatusUnauthorized {
			return res, nil
		}
		ch := ParseChallenge(strings.Join(res.header.Values("WWW-Authenticate"), ", "))
		if c.onChallenge != nil {
			if herr := c.onChallenge(ctx, ch); herr != nil {
				return nil, &AuthChallengeError{Op: cl.op, Challenge: ch, Err: herr}
			}
		}
		if r, ok := c.buyer.(BuyerRefresher); ok && needBuyer && !refreshed && ch.Error == "invalid_token" {
			refreshed = true
			t, err := r.RefreshToken(ctx)
			if err != nil {
				return nil, errors.Join(&AuthChallengeError{Op: cl.op, Challenge: ch},
					fmt.Errorf("ucpclient: %s: refresh buyer token: %w", cl.op, err))
			}
			tok = t
			continue
		}
		return nil, &AuthChallengeError{Op: cl.op, Challenge: ch}
	}
}

// attempt sends the call once through the retrying client.
func (c *Client) attempt(ctx context.Context, cl *call, tok *oauth2.Token) (*response, error) {
	st := &attemptState{body: cl.body}
	safe := cl.method == http.MethodGet || cl.method == http.MethodHead || cl.idemKey != ""
	rctx := withRetrySafe(context.WithValue(ctx, attemptKey{}, st), safe)

	var body any
	if cl.body != nil {
		body = cl.body
	}
	req, err := retryablehttp.NewRequestWithContext(rctx, cl.method, cl.url, body)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: %s: %w", cl.op, err)
	}
	h := req.Header
	if cl.body != nil {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Accept", "application/json")
	h.Set("UCP-Agent", c.agentHeader)
	if cl.idemKey != "" {
		h.Set("Idempotency-Key", cl.idemKey)
	}
	switch cl.route.Credential {
	case CredentialPlatform:
		if c.apiKey != "" {
			h.Set("X-API-Key", c.apiKey)
		}
	case CredentialBuyer:
		h.Set("Authorization", bearer(tok))
	case CredentialPlatformBuyer:
		if c.apiKey != "" {
			h.Set("X-API-Key", c.apiKey)
		}
		h.Set("Authorization", bearer(tok))
	}
	sig := c.responseCheck(cl) // nil unless Config.VerifyResponses (respsig.go)
	sig.request(h)

	if err := c.prepareAttempt(req.Request); err != nil {
		return nil, fmt.Errorf("ucpclient: %s: %w", cl.op, err)
	}
	res, err := c.rc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("ucpclient: %s: %w", cl.op, cerr)
		}
		return nil, fmt.Errorf("ucpclient: %s: %w", cl.op, err)
	}
	data, err := netguard.ReadBody(res, maxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: %s: read response: %w", cl.op, err)
	}
	out := &response{status: res.StatusCode, header: res.Header, body: data, requestID: st.requestID()}
	if err := sig.verify(ctx, cl.op, out); err != nil {
		return nil, err
	}
	return out, nil
}

func bearer(t *oauth2.Token) string {
	typ := "Bearer"
	if t != nil && t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		typ = t.TokenType
	}
	if t == nil {
		return typ + " "
	}
	return typ + " " + t.AccessToken
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// rpcEnvelope builds a JSON-RPC 2.0 request around params, which must
// already be JSON.
func (c *Client) rpcEnvelope(method string, params []byte) []byte {
	b := make([]byte, 0, len(params)+96)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendUint(b, c.rpcID.Add(1), 10)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// rpc posts one JSON-RPC request and decodes its response into result
// (a pointer to a struct with the result's fields).
func (c *Client) rpc(ctx context.Context, cl *call, method string, params []byte, result any) error {
	var ok bool
	err := c.rpcDecode(ctx, cl, method, params, func(data []byte) (bool, *rpcError, error) {
		rr := struct {
			Result present   `json:"result"`
			Error  *rpcError `json:"error"`
		}{Result: present{v: result}}
		err := json.Unmarshal(data, &rr)
		ok = rr.Result.ok
		return ok, rr.Error, err
	})
	return err
}

// rpcDecode posts one JSON-RPC request; decode reads the response body in
// one pass and reports whether it held a result, its error member, and a
// decoding error.
func (c *Client) rpcDecode(ctx context.Context, cl *call, method string, params []byte,
	decode func(body []byte) (hasResult bool, rpcErr *rpcError, err error)) error {
	cl.method, cl.body = http.MethodPost, c.rpcEnvelope(method, params)
	res, err := c.send(ctx, cl)
	if err != nil {
		return err
	}
	if res.status/100 != 2 {
		return protocolError(cl.op, res)
	}
	hasResult, rpcErr, err := decode(res.body)
	if err != nil {
		pe := protocolError(cl.op, res)
		pe.Content = "response is not JSON-RPC: " + err.Error()
		return pe
	}
	if rpcErr != nil {
		pe := protocolError(cl.op, res)
		pe.RPCCode, pe.RPCMessage = rpcErr.Code, rpcErr.Message
		if pe.Code == "" {
			pe.Code, pe.Content = ucpCode(rpcErr.Data)
		}
		return pe
	}
	if !hasResult {
		pe := protocolError(cl.op, res)
		pe.Content = "JSON-RPC response has no result"
		return pe
	}
	return nil
}

// present decodes a member into v and records that it was there.
type present struct {
	v  any
	ok bool
}

func (p *present) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	p.ok = true
	return json.Unmarshal(b, p.v)
}

// toolResult is a tools/call result. Content stays raw: it is read only
// when the result is an error without structuredContent (on success it
// repeats structuredContent as text, which would be unescaped for
// nothing).
type toolResult struct {
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
	Content           json.RawMessage `json:"content"`
}

// callTool runs tools/call and returns result.structuredContent.
// arguments must be a JSON object.
func (c *Client) callTool(ctx context.Context, cl *call, name string, arguments []byte) (json.RawMessage, error) {
	p := make([]byte, 0, len(arguments)+len(name)+32)
	p = append(p, `{"name":`...)
	p = appendJSONString(p, name)
	p = append(p, `,"arguments":`...)
	p = append(p, arguments...)
	p = append(p, '}')
	var r *toolResult
	// One pass over the body: the result decodes with the envelope (a
	// result of null counts as none, as in rpc).
	err := c.rpcDecode(ctx, cl, "tools/call", p, func(data []byte) (bool, *rpcError, error) {
		var rr struct {
			Result *toolResult `json:"result"`
			Error  *rpcError   `json:"error"`
		}
		err := json.Unmarshal(data, &rr)
		r = rr.Result
		return r != nil, rr.Error, err
	})
	if err != nil {
		return nil, err
	}
	noContent := len(r.StructuredContent) == 0 || string(r.StructuredContent) == "null"
	// A tool error (isError) is never a success, whatever structured
	// content rides along; only a UCP business-error envelope
	// (ucp.status "error") is passed on as the result the typed helpers
	// and the bridge turn into a *UCPError, as without isError.
	if noContent || r.IsError && !IsUCPError(r.StructuredContent) {
		pe := &ProtocolError{Op: cl.op, StatusCode: 200, Content: "tools/call result has no structuredContent"}
		if r.IsError {
			pe.Content = "the tool reported an error"
			if !noContent {
				pe.Body = r.StructuredContent
			}
			var content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			_ = json.Unmarshal(r.Content, &content)
			for _, ct := range content {
				if ct.Type == "text" && ct.Text != "" {
					pe.Content = ct.Text
					break
				}
			}
		}
		return nil, pe
	}
	return r.StructuredContent, nil
}

func protocolError(op string, res *response) *ProtocolError {
	pe := &ProtocolError{Op: op, StatusCode: res.status, RequestID: res.requestID, Body: res.body}
	pe.Code, pe.Content = ucpCode(res.body)
	// An MCP endpoint may answer a bad call with an HTTP error whose body
	// is still a JSON-RPC error (our stores do for schema violations):
	// its message is what tells the caller what to fix.
	var rpc struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(res.body, &rpc) == nil && rpc.Error != nil && rpc.Error.Code != 0 {
		pe.RPCCode, pe.RPCMessage = rpc.Error.Code, rpc.Error.Message
	}
	return pe
}

// ucpCode finds an error code and text in a body: a UCP messages[]
// entry, a {code, content} object or an OAuth {error, error_description}.
func ucpCode(b []byte) (code, content string) {
	var v struct {
		Messages []struct {
			Code    string `json:"code"`
			Content string `json:"content"`
		} `json:"messages"`
		Code        string `json:"code"`
		Content     string `json:"content"`
		Error       any    `json:"error"`
		Description string `json:"error_description"`
	}
	if len(b) == 0 || json.Unmarshal(b, &v) != nil {
		return "", ""
	}
	if len(v.Messages) > 0 {
		return v.Messages[0].Code, v.Messages[0].Content
	}
	if v.Code != "" {
		return v.Code, v.Content
	}
	if s, ok := v.Error.(string); ok {
		return s, v.Description
	}
	return "", ""
}

// freshUUID returns a random (version 4) UUID.
func freshUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
