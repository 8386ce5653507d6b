package mandate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
// only the top-level members for which keep returns true. Members are
// filtered before canonicalisation so JCS only pays for what is kept;
// duplicate top-level names are refused here (JCS refuses nested ones), so
// a signer and a verifier can never disagree about which of two "ap2" or
// "totals" members counted.
func canonicalMembers(data []byte, keep func(name string) bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errNotObject
	}
	seen := map[string]bool{}
	kept := make([]byte, 0, len(data))
	kept = append(kept, '{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("mandate: canonical json: %w", err)
		}
		name := tok.(string)
		if seen[name] {
			return nil, fmt.Errorf("mandate: canonical json: duplicate key %q", name)
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("mandate: canonical json: %w", err)
		}
		if !keep(name) {
			continue
		}
		if len(kept) > 1 {
			kept = append(kept, ',')
		}
		// Re-quoting the decoded name is safe: JCS re-serialises it anyway.
		// (strconv.Quote would not do: \x01 and \a are not JSON.)
		quoted, _ := json.Marshal(name)
		kept = append(kept, quoted...)
		kept = append(kept, ':')
		kept = append(kept, value...)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("mandate: canonical json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("mandate: canonical json: trailing data after the object")
	}
	return Canonicalize(append(kept, '}'))
}

var errNotObject = errors.New("mandate: canonical json: not a JSON object")
