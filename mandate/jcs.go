package mandate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
)

// Canonicalize returns the RFC 8785 (JCS) form of the JSON text in data:
// members sorted by UTF-16 code units, no insignificant whitespace, strings
// with the minimal escaping, numbers as ECMAScript Number#toString. Invalid
// JSON, duplicate member names and values that are not I-JSON are errors.
//
// Go's encoding/json is not JCS (it escapes <>& and sorts keys by bytes), so
// anything that is hashed or signed goes through here.
func Canonicalize(data []byte) ([]byte, error) {
	out, err := jcs.Transform(data)
	if err != nil {
		return nil, fmt.Errorf("mandate: canonical json: %w", err)
	}
	return out, nil
}

// CanonicalizeValue marshals v with encoding/json and canonicalizes the
// result.
func CanonicalizeValue(v any) ([]byte, error) {
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, fmt.Errorf("mandate: canonical json: %w", err)
	}
	return Canonicalize(b)
}

// marshalNoEscape is json.Marshal without HTML escaping, so that values
// embedded in tokens keep their text as the peer sent it.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonicalMembers returns the JCS form of the JSON object in data keeping
// only the top-level members for which keep returns true. Canonicalising
// first means duplicate member names are refused before anything is
// dropped, so a signer and a verifier can never disagree about which of two
// "ap2" members was removed.
func canonicalMembers(data []byte, keep func(name string) bool) ([]byte, error) {
	canon, err := Canonicalize(data)
	if err != nil {
		return nil, err
	}
	if len(canon) == 0 || canon[0] != '{' {
		return nil, errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(canon))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(canon))
	out = append(out, '{')
	// Canonical text has no whitespace: a member runs from just after the
	// previous value (and its comma) to the end of its own value.
	for start := int64(1); dec.More(); {
		if start > 1 {
			start++ // the comma
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
		end := dec.InputOffset()
		if keep(tok.(string)) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, canon[start:end]...)
		}
		start = end
	}
	return append(out, '}'), nil
}

var errNotObject = errors.New("mandate: canonical json: not a JSON object")
