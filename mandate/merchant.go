package mandate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// merchantAlgs is the UCP allow-list for merchant_authorization.
var merchantAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512}

// detachedPattern is the schema pattern of ap2.merchant_authorization.
var detachedPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$`)

// maxTokenLen bounds every token this package parses; real mandates embed a
// checkout and stay well under it.
const maxTokenLen = 1 << 20

// SignMerchantAuthorization returns the detached compact JWS
// (header..signature) over JCS(checkout minus its "ap2" member), with the
// key's kid in the protected header: the value of
// checkout.ap2.merchant_authorization.
func SignMerchantAuthorization(checkout []byte, key *SigningKey) (string, error) {
	payload, err := checkoutPayload(checkout)
	if err != nil {
		return "", err
	}
	jws, err := key.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("mandate: sign: %w", err)
	}
	return jws.DetachedCompactSerialize()
}

// AttachMerchantAuthorization signs checkout and returns it with
// ap2.merchant_authorization set. Other ap2 members are kept; every other
// member keeps its value (the object is re-serialised compactly with keys
// sorted, which the JCS payload does not notice).
func AttachMerchantAuthorization(checkout []byte, key *SigningKey) ([]byte, error) {
	sig, err := SignMerchantAuthorization(checkout, key)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(checkout)
	if err != nil {
		return nil, err
	}
	ap2 := map[string]json.RawMessage{}
	if raw, ok := obj["ap2"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ap2); err != nil {
			return nil, fmt.Errorf("mandate: checkout ap2 is not an object: %w", err)
		}
	}
	ap2["merchant_authorization"], _ = json.Marshal(sig)
	if obj["ap2"], err = marshalNoEscape(ap2); err != nil {
		return nil, err
	}
	return marshalNoEscape(obj)
}

// VerifyMerchantAuthorization checks checkout.ap2.merchant_authorization
// against the store's keys: the detached JWS must name an allowed algorithm
// (ES256, ES384, ES512) and a kid that keys knows, and its signature must
// cover JCS(checkout minus "ap2"). Failures are *Error with
// CodeMerchantAuthorizationMissing or CodeMerchantAuthorizationInvalid.
func VerifyMerchantAuthorization(ctx context.Context, checkout []byte, keys KeyResolver) error {
	obj, err := decodeObject(checkout)
	if err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "checkout is not a JSON object", err)
	}
	var ap2 struct {
		MerchantAuthorization *string `json:"merchant_authorization"`
	}
	if raw, ok := obj["ap2"]; ok {
		if err := json.Unmarshal(raw, &ap2); err != nil {
			return fail(CodeMerchantAuthorizationInvalid, "ap2 is not an object", err)
		}
	}
	if ap2.MerchantAuthorization == nil || *ap2.MerchantAuthorization == "" {
		return fail(CodeMerchantAuthorizationMissing, "checkout has no ap2.merchant_authorization", nil)
	}
	payload, err := checkoutPayload(checkout)
	if err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "checkout cannot be canonicalized", err)
	}
	return verifyDetached(ctx, *ap2.MerchantAuthorization, payload, keys)
}

func verifyDetached(ctx context.Context, token string, payload []byte, keys KeyResolver) error {
	if len(token) > maxTokenLen || !detachedPattern.MatchString(token) {
		return fail(CodeMerchantAuthorizationInvalid, "not a detached compact JWS (header..signature)", nil)
	}
	hdr, err := protectedHeader(token)
	if err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "bad protected header", err)
	}
	if hdr.Kid == "" {
		return fail(CodeMerchantAuthorizationInvalid, "protected header has no kid", nil)
	}
	jws, err := jose.ParseDetached(token, payload, merchantAlgs)
	if err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "algorithm not allowed or malformed JWS", err)
	}
	key, err := keys.Key(ctx, hdr.Kid)
	if err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "unknown signing key", err)
	}
	if err := jws.DetachedVerify(payload, key); err != nil {
		return fail(CodeMerchantAuthorizationInvalid, "signature does not verify", err)
	}
	return nil
}

type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  *bool           `json:"b64"`
}

// protectedHeader decodes the first segment of a compact JWS. go-jose
// enforces the algorithm list and crit; this exists to read kid before a key
// is chosen and to refuse RFC 7797 unencoded payloads outright.
func protectedHeader(token string) (*header, error) {
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, err
	}
	if h.B64 != nil || len(h.Crit) > 0 {
		return nil, errors.New("crit and b64 headers are not accepted")
	}
	return &h, nil
}

// checkoutPayload is JCS(checkout minus "ap2"): the merchant_authorization
// signing payload.
func checkoutPayload(checkout []byte) ([]byte, error) {
	payload, err := canonicalMembers(checkout, func(name string) bool { return name != "ap2" })
	if err != nil {
		return nil, fmt.Errorf("mandate: checkout: %w", err)
	}
	return payload, nil
}

func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("mandate: checkout: %w", err)
	}
	if obj == nil {
		return nil, errors.New("mandate: checkout: not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("mandate: checkout: trailing data after JSON object")
	}
	return obj, nil
}
