package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// PostgreSQL text refuses NUL and bytes that are not UTF-8 (SQLSTATE
// 22021): such a request would fail as a storage error (503, logged as
// one) instead of the malformed request it is. Do refuses it up front,
// so no operation, on any store, ever sees such text.

// cleanJSON reports whether a JSON body can only decode to storable text:
// it is UTF-8 (encoding/json would silently turn other bytes into U+FFFD;
// refusing them keeps one rule for the whole request) and no string or key
// holds a \u0000 escape. A raw NUL is left to the decoder, which refuses
// it as a syntax error.
func cleanJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u0000`))
		if j < 0 {
			return true
		}
		j += i
		// The backslash escapes only if it is not itself escaped: an odd
		// run of backslashes ending here.
		n := 0
		for k := j - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return false
		}
		i = j + 1
	}
}

// refuseBadBytes is Do's first check on what a binding passed in.
func (s *Service) refuseBadBytes(ctx context.Context, req *Request) *Reply {
	var what string
	switch {
	case !store.ValidText(req.Shop):
		what = "the store slug"
	case !store.ValidText(req.ID):
		what = "the id"
	case !store.ValidText(req.Agent):
		what = "the platform profile URL"
	case !cleanJSON(req.Body):
		what = "the request body"
	default:
		return nil
	}
	s.log.DebugContext(ctx, "shop: refused text that is not storable", "op", req.Op, "where", what)
	return invalidRequest("%s holds a NUL character or bytes that are not UTF-8", what)
}

func decodeBody(body json.RawMessage, v any) *Reply {
	if len(body) == 0 {
		return invalidRequest("a request body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return invalidRequest("malformed request body: %s", jsonErrText(err))
	}
	if dec.More() {
		return invalidRequest("malformed request body: trailing data")
	}
	return nil
}

// jsonErrText names the offending field without echoing input.
func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s", "$."+te.Field, te.Type.String())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	return "not a JSON object"
}
