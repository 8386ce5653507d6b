package ucpclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// maxResponseBytes caps every API response body the client reads.
const maxResponseBytes = 8 << 20

// attemptTransport runs once per HTTP attempt, under retryablehttp: it
// gives the attempt a fresh Request-Id and, with a signer, a fresh RFC 9421
// signature over the exact body sent.
type attemptTransport struct {
	base   http.RoundTripper
	signer *httpsig.Signer
}

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

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(attemptKey{}).(*attemptState)
	r := req.Clone(req.Context()) // a RoundTripper must not modify req
	rid := freshUUID()
	r.Header.Set("Request-Id", rid)
	if st != nil {
		st.mu.Lock()
		st.rid = rid
		st.mu.Unlock()
	}
	if t.signer != nil {
		var body []byte
		if st != nil {
			body = st.body
		}
		if err := t.signer.SignRequest(r, body); err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	return t.base.RoundTrip(r)
}

// call is one logical operation.
type call struct {
	op      string // for errors: "store.create_checkout"
	route   Route
	method  string
	url     string
	body    []byte
	idemKey string
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
	return &response{status: res.StatusCode, header: res.Header, body: data, requestID: st.requestID()}, nil
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

// rpcRequest is a JSON-RPC 2.0 request.
type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      string `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type rpcResponse struct {
	Result *json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rpc posts one JSON-RPC request and returns its result.
func (c *Client) rpc(ctx context.Context, cl *call, method string, params any) (json.RawMessage, error) {
	b, err := json.Marshal(rpcRequest{JSONRPC: "2.0", ID: freshUUID(), Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("ucpclient: %s: encode request: %w", cl.op, err)
	}
	cl.method, cl.body = http.MethodPost, b
	res, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if res.status/100 != 2 {
		return nil, protocolError(cl.op, res)
	}
	var rr rpcResponse
	if err := json.Unmarshal(res.body, &rr); err != nil {
		pe := protocolError(cl.op, res)
		pe.Content = "response is not JSON-RPC"
		return nil, pe
	}
	if rr.Error != nil {
		pe := protocolError(cl.op, res)
		pe.RPCCode, pe.RPCMessage = rr.Error.Code, rr.Error.Message
		if pe.Code == "" {
			pe.Code, pe.Content = ucpCode(rr.Error.Data)
		}
		return nil, pe
	}
	if rr.Result == nil {
		pe := protocolError(cl.op, res)
		pe.Content = "JSON-RPC response has no result"
		return nil, pe
	}
	return *rr.Result, nil
}

// callTool runs tools/call and returns result.structuredContent.
func (c *Client) callTool(ctx context.Context, cl *call, name string, arguments any) (json.RawMessage, error) {
	result, err := c.rpc(ctx, cl, "tools/call", map[string]any{"name": name, "arguments": arguments})
	if err != nil {
		return nil, err
	}
	var r struct {
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
		Content           []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, &ProtocolError{Op: cl.op, StatusCode: 200, Content: "tools/call result is not an object", Body: result}
	}
	if len(r.StructuredContent) == 0 || string(r.StructuredContent) == "null" {
		pe := &ProtocolError{Op: cl.op, StatusCode: 200, Content: "tools/call result has no structuredContent", Body: result}
		if r.IsError {
			for _, ct := range r.Content {
				if ct.Type == "text" {
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
