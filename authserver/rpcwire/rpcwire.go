// Package rpcwire has one job: the JSON-RPC-over-HTTP response plumbing
// the platform's MCP endpoints share (the stores' /mcp and the buyer
// account's).
//
// Both wrap mcp-go's stateless streamable HTTP server, which gives a tool
// handler no way to choose the JSON-RPC error code or the HTTP status. So
// they hold its answer in a Response and, when a handler hit a protocol
// error, Rewrite it into the UCP JSON-RPC error (checkout-mcp.md) before
// anything is sent. A refusal made before mcp-go is reached is answered
// with WriteError.
package rpcwire

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is a protocol-level failure (ucp.md §7). On MCP it is a JSON-RPC
// error with code RPCCode and message Content whose data is the flat
// {code, content}, plus continue_url and retry_after when set; Status is
// the HTTP status, the primary signal for MCP clients.
type Error struct {
	Status      int
	RPCCode     int
	Code        string
	Content     string
	ContinueURL string
	RetryAfter  int // seconds, for 429 and 503; also sent as Retry-After
	// WWWAuthenticate is the challenge for 401 and 403.
	WWWAuthenticate string
}

func (e *Error) Error() string { return e.Code + ": " + e.Content }

// RequestID is the id of the JSON-RPC message in body, as JSON: a string
// or a number, else "null" (no id, not a JSON object, or an id of another
// kind). Nothing else from the body is ever echoed.
func RequestID(body []byte) string {
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

// WriteError answers the request whose body is body with e, echoing the
// request's id (RequestID) so the client can tell which call failed.
func WriteError(w http.ResponseWriter, body []byte, e *Error) {
	var res Response
	res.setError(RequestID(body), e)
	res.Send(w)
}

// Response is an http.ResponseWriter that holds a handler's answer so it
// can be rewritten or signed before it is sent. It is not an
// http.Flusher, so mcp-go answers it with one JSON body, never a stream.
// The zero value is ready to use.
type Response struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *Response) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *Response) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

// WriteHeader keeps the first status written, as net/http does.
func (r *Response) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Status is the held status: 200 when none was written.
func (r *Response) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Body is the held body; it is valid until the Response changes.
func (r *Response) Body() []byte { return r.body.Bytes() }

// Rewrite replaces the held answer with e as a JSON-RPC error response
// keeping the held response's id (RequestID; null when it has none). The
// held headers stay, but for Content-Type and Content-Length, which
// described the old body.
func (r *Response) Rewrite(e *Error) {
	r.setError(RequestID(r.body.Bytes()), e)
}

// setError makes the held answer e as the JSON-RPC error response to id
// (JSON, as RequestID gives it).
func (r *Response) setError(id string, e *Error) {
	data := map[string]any{"code": e.Code, "content": e.Content}
	if e.ContinueURL != "" {
		data["continue_url"] = e.ContinueURL
	}
	if e.RetryAfter > 0 {
		data["retry_after"] = e.RetryAfter
	}
	// It cannot fail: id is a JSON string, number or null, the rest
	// strings and ints.
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id),
		"error": map[string]any{"code": e.RPCCode, "message": e.Content, "data": data}})
	r.body.Reset()
	r.body.Write(out)
	h := r.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if e.WWWAuthenticate != "" {
		h.Set("WWW-Authenticate", e.WWWAuthenticate)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	r.status = e.Status
}

// Send writes the held answer to w: its headers over w's, its status
// (200 when none was set) and its body.
func (r *Response) Send(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.Status())
	w.Write(r.body.Bytes())
}
