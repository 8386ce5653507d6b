package rpcwire_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
)

// TestRequestID: only a string or a number id is echoed; anything else,
// or no id, or a body that is not a JSON object, is null.
func TestRequestID(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"jsonrpc":"2.0","id":"call-1","method":"tools/call"}`: `"call-1"`,
		`{"id":"<b>\u0026"}`:             `"<b>\u0026"`,
		`{"id":7}`:                       `7`,
		`{"id":-1.5e3}`:                  `-1.5e3`,
		`{"id": 0 }`:                     `0`,
		`{"jsonrpc":"2.0","method":"x"}`: `null`,
		`{"id":null}`:                    `null`,
		`{"id":{"x":"<script>"}}`:        `null`,
		`{"id":["a"]}`:                   `null`,
		`{"id":true}`:                    `null`,
		`[{"jsonrpc":"2.0","id":1}]`:     `null`,
		`<html>`:                         `null`,
		``:                               `null`,
	} {
		if got := rpcwire.RequestID([]byte(body)); got != want {
			t.Errorf("RequestID(%s) = %s, want %s", body, got, want)
		}
	}
}

// rpcError is the JSON-RPC error response the package writes.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int                        `json:"code"`
		Message string                     `json:"message"`
		Data    map[string]json.RawMessage `json:"data"`
	} `json:"error"`
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) *rpcError {
	t.Helper()
	var out rpcError
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, rec.Body)
	}
	return &out
}

// library answers the way mcp-go does after a tool handler failed: HTTP
// 200, JSON, the generic -32603 echoing the request's id.
func library(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "999")
		w.Header().Set("X-Kept", "yes")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32603,"message":"internal"}}`+"\n", id)
	}
}

// TestRewriteKeepsTheID: the UCP error replaces the library's, answering
// the same call; a held answer without an id (or not JSON) gets null.
func TestRewriteKeepsTheID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ held, want string }{
		{`{"jsonrpc":"2.0","id":"a-1","result":{}}`, `"a-1"`},
		{`{"jsonrpc":"2.0","id":42,"error":{"code":-32603}}`, `42`},
		{`{"jsonrpc":"2.0","error":{"code":-32603}}`, `null`},
		{`{"jsonrpc":"2.0","id":null}`, `null`},
		{`event: message` + "\n" + `data: {"id":1}`, `null`},
		{``, `null`},
	} {
		var res rpcwire.Response
		res.Write([]byte(tc.held))
		res.Rewrite(&rpcwire.Error{Status: http.StatusForbidden, RPCCode: -32000, Code: "forbidden", Content: "no"})
		rec := httptest.NewRecorder()
		res.Send(rec)
		if out := decode(t, rec); string(out.ID) != tc.want || out.JSONRPC != "2.0" {
			t.Errorf("held %q: id %s, want %s\n%s", tc.held, out.ID, tc.want, rec.Body)
		}
	}
}

// TestRewrite: the JSON-RPC error carries the UCP code and content in
// data (with continue_url and retry_after when set), the HTTP status is
// the error's, Retry-After and WWW-Authenticate go on the response, and of
// the library's headers only those describing its body are dropped.
func TestRewrite(t *testing.T) {
	t.Parallel()
	var res rpcwire.Response
	library(`"c-9"`).ServeHTTP(&res, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	res.Rewrite(&rpcwire.Error{Status: http.StatusTooManyRequests, RPCCode: -32000, Code: "rate_limited",
		Content: "slow down", ContinueURL: "https://shop.example/continue", RetryAfter: 3,
		WWWAuthenticate: `Bearer resource_metadata="https://as.example/.well-known/oauth-protected-resource/mcp"`})
	rec := httptest.NewRecorder()
	res.Send(rec)

	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", rec.Code)
	}
	h := rec.Header()
	for k, want := range map[string]string{
		"Content-Type":     "application/json",
		"Content-Length":   "",
		"Retry-After":      "3",
		"Www-Authenticate": `Bearer resource_metadata="https://as.example/.well-known/oauth-protected-resource/mcp"`,
		"X-Kept":           "yes",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	out := decode(t, rec)
	if string(out.ID) != `"c-9"` || out.Error.Code != -32000 || out.Error.Message != "slow down" {
		t.Errorf("error: %s", rec.Body)
	}
	for k, want := range map[string]string{
		"code": `"rate_limited"`, "content": `"slow down"`,
		"continue_url": `"https://shop.example/continue"`, "retry_after": `3`,
	} {
		if got := string(out.Error.Data[k]); got != want {
			t.Errorf("data.%s: %s, want %s", k, got, want)
		}
	}
	if len(out.Error.Data) != 4 {
		t.Errorf("data: %s", rec.Body)
	}
}

// TestRewriteBare: without continue_url or retry_after, data is the flat
// {code, content} and neither header is sent.
func TestRewriteBare(t *testing.T) {
	t.Parallel()
	var res rpcwire.Response
	library(`1`).ServeHTTP(&res, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	res.Rewrite(&rpcwire.Error{Status: http.StatusBadRequest, RPCCode: -32602, Code: "invalid_request", Content: "bad"})
	rec := httptest.NewRecorder()
	res.Send(rec)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Retry-After") != "" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("HTTP %d %v", rec.Code, rec.Header())
	}
	if got, want := rec.Body.String(),
		`{"error":{"code":-32602,"data":{"code":"invalid_request","content":"bad"},"message":"bad"},"id":1,"jsonrpc":"2.0"}`; got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
}

// TestStatus: a body without WriteHeader is 200, the first status written
// stands, nothing written is 200, and an error without a status is 200.
func TestStatus(t *testing.T) {
	t.Parallel()
	send := func(res *rpcwire.Response) int {
		rec := httptest.NewRecorder()
		res.Send(rec)
		if rec.Code != res.Status() {
			t.Errorf("sent %d, Status() %d", rec.Code, res.Status())
		}
		return rec.Code
	}
	var written rpcwire.Response
	written.Write([]byte("x"))
	written.WriteHeader(http.StatusTeapot)
	var first rpcwire.Response
	first.WriteHeader(http.StatusAccepted)
	first.WriteHeader(http.StatusInternalServerError)
	var nothing rpcwire.Response
	var zeroErr rpcwire.Response
	zeroErr.WriteHeader(http.StatusAccepted)
	zeroErr.Rewrite(&rpcwire.Error{RPCCode: -32000, Code: "x", Content: "y"})
	for name, tc := range map[string]struct {
		res  *rpcwire.Response
		want int
	}{
		"write first": {&written, http.StatusOK},
		"first wins":  {&first, http.StatusAccepted},
		"nothing":     {&nothing, http.StatusOK},
		"no status":   {&zeroErr, http.StatusOK},
	} {
		if got := send(tc.res); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", name, got, tc.want)
		}
	}
}

// TestSendKeepsHeldAnswer: what the handler wrote reaches the client as
// it was, over the headers already on the writer.
func TestSendKeepsHeldAnswer(t *testing.T) {
	t.Parallel()
	var res rpcwire.Response
	res.Header().Set("Content-Type", "text/plain")
	res.WriteHeader(http.StatusCreated)
	res.Write([]byte("made"))
	if string(res.Body()) != "made" {
		t.Errorf("Body() %q", res.Body())
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/octet-stream")
	rec.Header().Set("Vary", "Origin")
	res.Send(rec)
	if rec.Code != http.StatusCreated || rec.Body.String() != "made" ||
		rec.Header().Get("Content-Type") != "text/plain" || rec.Header().Get("Vary") != "Origin" {
		t.Errorf("HTTP %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
}

// TestWriteError: a refusal before the library is reached echoes the
// request's id, and only a string or number one.
func TestWriteError(t *testing.T) {
	t.Parallel()
	e := &rpcwire.Error{Status: http.StatusUnauthorized, RPCCode: -32000, Code: "identity_required", Content: "sign in",
		WWWAuthenticate: `Bearer resource_metadata="https://as.example/m"`}
	for body, want := range map[string]string{
		`{"jsonrpc":"2.0","id":"a","method":"tools/call"}`: `"a"`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call"}`:   `7`,
		`{"jsonrpc":"2.0","method":"notifications/x"}`:     `null`,
		`{"jsonrpc":"2.0","id":{"x":"<b>"}}`:               `null`,
		`{"jsonrpc":"2.0","id":["a"]}`:                     `null`,
		`<html><script>alert(1)</script></html>`:           `null`,
	} {
		rec := httptest.NewRecorder()
		rpcwire.WriteError(rec, []byte(body), e)
		out := decode(t, rec)
		if rec.Code != http.StatusUnauthorized || string(out.ID) != want || rec.Header().Get("WWW-Authenticate") == "" ||
			rec.Header().Get("Content-Type") != "application/json" || strings.Contains(rec.Body.String(), "<") {
			t.Errorf("body %s: HTTP %d id %s\n%s", body, rec.Code, out.ID, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	rpcwire.WriteError(rec, nil, e)
	if out := decode(t, rec); string(out.ID) != "null" {
		t.Errorf("no body: id %s", out.ID)
	}
}

// An MCP endpoint holds mcp-go's answer, and replaces it when a tool
// handler hit a protocol error that the library cannot express.
func Example() {
	var failed *rpcwire.Error // in a real endpoint, carried by the request's context
	library := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A tool handler fails; mcp-go answers with its generic error.
		failed = &rpcwire.Error{Status: http.StatusServiceUnavailable, RPCCode: -32000,
			Code: "unavailable", Content: "retry", RetryAfter: 1}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":"call-1","error":{"code":-32603,"message":"internal error"}}`))
	})

	rec := httptest.NewRecorder()
	var res rpcwire.Response
	library.ServeHTTP(&res, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	if failed != nil {
		res.Rewrite(failed)
	}
	res.Send(rec)

	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	fmt.Println(rec.Body)
	// Output:
	// 503 1
	// {"error":{"code":-32000,"data":{"code":"unavailable","content":"retry","retry_after":1},"message":"retry"},"id":"call-1","jsonrpc":"2.0"}
}
