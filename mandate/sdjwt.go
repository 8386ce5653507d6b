package mandate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AP2 v0.2 mandate types (vct values, exact match).
const (
	VCTOpenCheckout   = "mandate.checkout.open.1"
	VCTClosedCheckout = "mandate.checkout.1"
)

// SDJWT is one compact SD-JWT (RFC 9901): an issuer-signed JWT followed by
// its disclosures, each terminated by "~". Hashes are taken over Compact,
// exactly as received, and never over a re-serialisation.
type SDJWT struct {
	Compact     string
	JWT         string
	Disclosures []Disclosure
}

// Disclosure is one decoded disclosure: [salt, value] for an array
// element, [salt, name, value] for an object member.
type Disclosure struct {
	Encoded  string
	Digest   string // base64url SHA-256 of Encoded
	Salt     string
	Name     string // empty for array elements
	Value    json.RawMessage
	isMember bool
}

// Digest returns base64url(SHA-256(s)) without padding: the SD-JWT digest
// of a disclosure or of a compact string (sd_hash, checkout_hash).
func Digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseSDJWT splits a compact SD-JWT ("jwt~d1~…~") and decodes its
// disclosures. It verifies nothing.
func ParseSDJWT(s string) (*SDJWT, error) {
	if !strings.HasSuffix(s, "~") {
		return nil, errors.New("sd-jwt must end with ~")
	}
	parts := strings.Split(strings.TrimSuffix(s, "~"), "~")
	if strings.Count(parts[0], ".") != 2 {
		return nil, errors.New("sd-jwt does not start with a compact JWT")
	}
	sd := &SDJWT{Compact: s, JWT: parts[0]}
	seen := map[string]bool{}
	for _, enc := range parts[1:] {
		d, err := parseDisclosure(enc)
		if err != nil {
			return nil, err
		}
		if seen[d.Digest] {
			return nil, errors.New("duplicate disclosure")
		}
		seen[d.Digest] = true
		sd.Disclosures = append(sd.Disclosures, *d)
	}
	return sd, nil
}

func parseDisclosure(enc string) (*Disclosure, error) {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("disclosure is not base64url: %w", err)
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil || (len(arr) != 2 && len(arr) != 3) {
		return nil, errors.New("disclosure is not a 2- or 3-element array")
	}
	d := &Disclosure{Encoded: enc, Digest: Digest(enc), Value: arr[len(arr)-1]}
	if err := json.Unmarshal(arr[0], &d.Salt); err != nil {
		return nil, errors.New("disclosure salt is not a string")
	}
	if len(arr) == 3 {
		d.isMember = true
		if err := json.Unmarshal(arr[1], &d.Name); err != nil {
			return nil, errors.New("disclosure name is not a string")
		}
		if d.Name == "_sd" || d.Name == "..." {
			return nil, fmt.Errorf("disclosure name %q is reserved", d.Name)
		}
	}
	return d, nil
}

// Hash is the sd_hash of this SD-JWT: the digest of its compact form,
// trailing "~" included.
func (s *SDJWT) Hash() string { return Digest(s.Compact) }

// Resolve processes the disclosures into payload (RFC 9901 section 7.1):
// "_sd" digests become members, {"...": digest} array elements become
// values, undisclosed digests are dropped. A disclosure referenced twice or
// never referenced makes the SD-JWT invalid.
func (s *SDJWT) Resolve(payload []byte) (map[string]any, error) {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil || root == nil {
		return nil, errors.New("payload is not a JSON object")
	}
	r := &resolver{byDigest: map[string]*Disclosure{}, used: map[string]bool{}}
	for i := range s.Disclosures {
		r.byDigest[s.Disclosures[i].Digest] = &s.Disclosures[i]
	}
	out, err := r.value(root)
	if err != nil {
		return nil, err
	}
	if len(r.used) != len(s.Disclosures) {
		return nil, errors.New("a disclosure is not referenced by the payload")
	}
	obj := out.(map[string]any)
	// Only SHA-256 digests are computed here; under any other _sd_alg no
	// reference could have matched, so say so instead of resolving nothing.
	if alg, ok := obj["_sd_alg"]; ok && alg != "sha-256" {
		return nil, fmt.Errorf("_sd_alg %v is not supported", alg)
	}
	delete(obj, "_sd_alg")
	return obj, nil
}

type resolver struct {
	byDigest map[string]*Disclosure
	used     map[string]bool
}

func (r *resolver) take(digest string, member bool) (any, bool, error) {
	d, ok := r.byDigest[digest]
	if !ok {
		return nil, false, nil // a decoy, or not disclosed
	}
	if r.used[digest] {
		return nil, false, errors.New("a disclosure is referenced twice")
	}
	if d.isMember != member {
		return nil, false, errors.New("disclosure kind does not match its reference")
	}
	r.used[digest] = true
	var v any
	dec := json.NewDecoder(bytes.NewReader(d.Value))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false, err
	}
	v, err := r.value(v)
	return v, true, err
}

func (r *resolver) value(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if sd, ok := t["_sd"]; ok {
			digests, ok := sd.([]any)
			if !ok {
				return nil, errors.New("_sd is not an array")
			}
			delete(t, "_sd")
			for _, dg := range digests {
				s, ok := dg.(string)
				if !ok {
					return nil, errors.New("_sd holds a non-string")
				}
				val, found, err := r.take(s, true)
				if err != nil {
					return nil, err
				}
				if found {
					name := r.byDigest[s].Name
					if _, exists := t[name]; exists {
						return nil, fmt.Errorf("disclosed member %q already present", name)
					}
					t[name] = val
				}
			}
		}
		for k, child := range t {
			if _, ok := child.(map[string]any); ok || isArray(child) {
				res, err := r.value(child)
				if err != nil {
					return nil, err
				}
				t[k] = res
			}
		}
		return t, nil
	case []any:
		out := make([]any, 0, len(t))
		for _, el := range t {
			if m, ok := el.(map[string]any); ok && len(m) == 1 {
				if dg, ok := m["..."]; ok {
					s, ok := dg.(string)
					if !ok {
						return nil, errors.New(`"..." holds a non-string`)
					}
					val, found, err := r.take(s, false)
					if err != nil {
						return nil, err
					}
					if found {
						out = append(out, val)
					}
					continue
				}
			}
			res, err := r.value(el)
			if err != nil {
				return nil, err
			}
			out = append(out, res)
		}
		return out, nil
	}
	return v, nil
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

// SDJWTVerifyOptions configures VerifySDJWTCheckoutMandate.
type SDJWTVerifyOptions struct {
	// RootKeys resolves the open mandate's issuer (the user's credential
	// or a trusted agent provider) by kid: the trust list. Required.
	RootKeys KeyResolver
	// MerchantKeys resolves this store's own keys, to verify the
	// checkout_jwt it issued. Required.
	MerchantKeys KeyResolver
	// Audience is the aud the closed hop must carry (this merchant).
	// Required.
	Audience string
	// Nonce, when set, must equal the closed hop's nonce.
	Nonce string
	// MerchantID identifies this store for checkout.allowed_merchants when
	// the checkout JWT carries no merchant.
	MerchantID string
	// Checkout, when set, is the live checkout; the checkout JWT's terms
	// must equal its terms (see CheckoutHash).
	Checkout []byte
	// Replay, when set, makes each closed mandate single use.
	Replay ReplayCache
	// Now, Leeway: as in VerifyOptions.
	Now    func() time.Time
	Leeway time.Duration

	// Test seams for the AP2 golden tokens, whose root and merchant keys
	// are not published. Unexported: no caller outside the package can skip
	// a signature.
	skipRootSignature     bool
	skipMerchantSignature bool
}

// SDJWTCheckoutMandate is a verified AP2 v0.2 closed checkout mandate.
type SDJWTCheckoutMandate struct {
	Open   map[string]any // resolved open mandate (vct, constraints, cnf, iat, exp)
	Closed map[string]any // resolved closed mandate (vct, checkout_hash, checkout_jwt)
	// CheckoutJWT is the merchant-signed checkout the agent approved and
	// Checkout its payload.
	CheckoutJWT string
	Checkout    json.RawMessage
	// OpenHash is the digest of the open mandate: what an open payment
	// mandate's payment.reference constraint names.
	OpenHash string
	// Reference is the digest of the closed mandate, the "reference" of
	// the checkout receipt.
	Reference string
}

// VerifySDJWTCheckoutMandate verifies an AP2 v0.2 checkout mandate in its
// delegate-chain form, open~~closed: the open mandate's issuer signature
// (RootKeys), the closed hop's signature by the agent key in the open
// mandate's cnf, the hop binding (sd_hash or issuer_jwt_hash), aud, nonce,
// iat/exp, vct, checkout_hash over the disclosed checkout_jwt, the
// merchant's signature on that JWT, the open mandate's constraints
// (unknown types fail), and, with Checkout, the terms of the live checkout.
// Errors are *Error with the UCP codes.
func VerifySDJWTCheckoutMandate(ctx context.Context, chain string, opts *SDJWTVerifyOptions) (*SDJWTCheckoutMandate, error) {
	if opts == nil || (opts.RootKeys == nil && !opts.skipRootSignature) ||
		(opts.MerchantKeys == nil && !opts.skipMerchantSignature) || opts.Audience == "" {
		return nil, errors.New("mandate: SDJWTVerifyOptions needs RootKeys, MerchantKeys and Audience")
	}
	if chain == "" {
		return nil, fail(CodeMandateRequired, "no mandate was presented", nil)
	}
	invalid := func(reason string, err error) (*SDJWTCheckoutMandate, error) {
		return nil, fail(CodeMandateInvalidSignature, reason, err)
	}
	scope := func(reason string) (*SDJWTCheckoutMandate, error) {
		return nil, fail(CodeMandateScopeMismatch, reason, nil)
	}
	if len(chain) > maxTokenLen {
		return invalid("mandate too large", nil)
	}
	i := strings.Index(chain, "~~")
	if i < 0 || strings.Contains(chain[i+2:], "~~") {
		return invalid("not an open~~closed delegate chain", nil)
	}
	open, err := ParseSDJWT(chain[:i+1])
	if err != nil {
		return invalid("open mandate", err)
	}
	closed, err := ParseSDJWT(chain[i+2:])
	if err != nil {
		return invalid("closed mandate", err)
	}
	now, leeway := time.Now(), opts.Leeway
	if opts.Now != nil {
		now = opts.Now()
	}
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	leeway = min(leeway, MaxLeeway)

	// Open mandate: signed by a trusted root.
	var openPayload []byte
	if opts.skipRootSignature {
		openPayload, err = unverifiedPayload(open.JWT)
	} else {
		openPayload, _, err = verifyJWS(ctx, open.JWT, opts.RootKeys)
	}
	if err != nil {
		return nil, err
	}
	openClaims, err := open.Resolve(openPayload)
	if err != nil {
		return invalid("open mandate disclosures", err)
	}
	openMandate, err := delegate(openClaims)
	if err != nil {
		return invalid("open mandate", err)
	}
	if openMandate["vct"] != VCTOpenCheckout {
		return scope("open mandate vct is not " + VCTOpenCheckout)
	}
	if err := checkWindow(openMandate, now, leeway, false); err != nil {
		return nil, err
	}
	agentKey, err := cnfKey(openMandate)
	if err != nil {
		return nil, fail(CodeAgentMissingKey, "open mandate has no usable cnf.jwk", err)
	}

	// Closed hop: signed by the agent key, bound to the open mandate.
	hdr, err := protectedHeader(closed.JWT)
	if err != nil {
		return invalid("closed mandate header", err)
	}
	if hdr.Typ != "kb+sd-jwt" && hdr.Typ != "kb-sd-jwt" {
		return invalid("closed mandate typ must be kb+sd-jwt (a terminal hop)", nil)
	}
	closedPayload, err := parseAndVerify(closed.JWT, agentKey)
	if err != nil {
		return invalid("closed mandate is not signed by the open mandate's cnf key", err)
	}
	closedClaims, err := closed.Resolve(closedPayload)
	if err != nil {
		return invalid("closed mandate disclosures", err)
	}
	sdHash, hasSD := closedClaims["sd_hash"].(string)
	jwtHash, hasJWT := closedClaims["issuer_jwt_hash"].(string)
	switch {
	case hasSD == hasJWT:
		return invalid("closed mandate needs exactly one of sd_hash and issuer_jwt_hash", nil)
	case hasSD && sdHash != open.Hash():
		return scope("sd_hash does not match the open mandate")
	case hasJWT && jwtHash != Digest(open.JWT):
		return scope("issuer_jwt_hash does not match the open mandate")
	}
	if aud, _ := closedClaims["aud"].(string); aud != opts.Audience {
		return scope("closed mandate is for another audience")
	}
	if opts.Nonce != "" {
		if nonce, _ := closedClaims["nonce"].(string); nonce != opts.Nonce {
			return scope("closed mandate nonce does not match")
		}
	}
	if err := checkWindow(closedClaims, now, leeway, true); err != nil {
		return nil, err
	}
	if iat, _ := numClaim(closedClaims, "iat"); iat > 0 {
		if exp, ok := numClaim(openMandate, "exp"); ok && iat > exp {
			return nil, fail(CodeMandateExpired, "closed mandate was made after the open mandate expired", nil)
		}
	}
	closedMandate, err := delegate(closedClaims)
	if err != nil {
		return invalid("closed mandate", err)
	}
	if closedMandate["vct"] != VCTClosedCheckout {
		return scope("closed mandate vct is not " + VCTClosedCheckout)
	}
	if _, ok := closedMandate["cnf"]; ok {
		return invalid("a terminal hop must not carry cnf", nil)
	}
	checkoutJWT, _ := closedMandate["checkout_jwt"].(string)
	if checkoutJWT == "" {
		return scope("checkout_jwt is not disclosed")
	}
	if h, _ := closedMandate["checkout_hash"].(string); h != Digest(checkoutJWT) {
		return scope("checkout_hash does not match checkout_jwt")
	}

	// The checkout JWT: signed by this merchant, within the constraints,
	// and (optionally) the live checkout's terms.
	var checkout []byte
	if opts.skipMerchantSignature {
		checkout, err = unverifiedPayload(checkoutJWT)
	} else {
		checkout, _, err = verifyJWS(ctx, checkoutJWT, opts.MerchantKeys)
		var me *Error
		if errors.As(err, &me) {
			me.Code = CodeMerchantAuthorizationInvalid
		}
	}
	if err != nil {
		return nil, err
	}
	if err := evaluateCheckoutConstraints(openMandate["constraints"], checkout, opts.MerchantID); err != nil {
		return nil, err
	}
	if opts.Checkout != nil {
		approved, err := readTerms(checkout)
		if err != nil {
			return scope("checkout_jwt payload is not a checkout")
		}
		live, err := readTerms(opts.Checkout)
		if err != nil {
			return nil, fmt.Errorf("mandate: live checkout: %w", err)
		}
		if approved.Hash != live.Hash {
			return scope("checkout terms changed since the mandate was signed")
		}
	}
	res := &SDJWTCheckoutMandate{
		Open: openMandate, Closed: closedMandate, CheckoutJWT: checkoutJWT, Checkout: checkout,
		OpenHash: open.Hash(), Reference: closed.Hash(),
	}
	if opts.Replay != nil {
		exp := now.Add(replayWindow(openMandate))
		err := opts.Replay.Use(ctx, "sd|"+res.Reference, exp)
		if errors.Is(err, ErrReplayed) {
			return nil, fail(CodeMandateExpired, "mandate already used", err)
		}
		if err != nil {
			return nil, fmt.Errorf("mandate: replay store: %w", err)
		}
	}
	return res, nil
}

// replayWindow is how long a closed mandate under open must be
// remembered to refuse a replay: until the open mandate expires (plus
// leeway), or a day when it has no exp.
func replayWindow(open map[string]any) time.Duration {
	if exp, ok := numClaim(open, "exp"); ok {
		if d := time.Until(time.Unix(exp, 0)) + MaxLeeway; d > 0 {
			return d
		}
		return MaxLeeway
	}
	return 24 * time.Hour
}

// verifyJWS verifies a compact JWS whose key is found by kid.
func verifyJWS(ctx context.Context, token string, keys KeyResolver) ([]byte, string, error) {
	hdr, err := protectedHeader(token)
	if err != nil {
		return nil, "", fail(CodeMandateInvalidSignature, "bad protected header", err)
	}
	jws, err := jose.ParseSignedCompact(token, merchantAlgs)
	if err != nil {
		return nil, "", fail(CodeMandateInvalidSignature, "algorithm not allowed or malformed JWS", err)
	}
	if hdr.Kid == "" {
		return nil, "", fail(CodeMandateInvalidSignature, "protected header has no kid", nil)
	}
	key, err := keys.Key(ctx, hdr.Kid)
	if err != nil {
		return nil, "", fail(CodeMandateInvalidSignature, "untrusted key "+quote(hdr.Kid), err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, "", fail(CodeMandateInvalidSignature, "signature does not verify", err)
	}
	return payload, hdr.Kid, nil
}

func unverifiedPayload(token string) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fail(CodeMandateInvalidSignature, "not a compact JWS", nil)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fail(CodeMandateInvalidSignature, "payload is not base64url", err)
	}
	return b, nil
}

// delegate returns the single object in delegate_payload.
func delegate(claims map[string]any) (map[string]any, error) {
	list, ok := claims["delegate_payload"].([]any)
	if !ok || len(list) != 1 {
		return nil, errors.New("delegate_payload must disclose exactly one object")
	}
	obj, ok := list[0].(map[string]any)
	if !ok {
		return nil, errors.New("delegate_payload element is not an object")
	}
	return obj, nil
}

func numClaim(m map[string]any, name string) (int64, bool) {
	n, ok := m[name].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

// checkWindow applies iat/exp with leeway. Present but non-integer values
// are refused; iat is mandatory on a KB hop.
func checkWindow(m map[string]any, now time.Time, leeway time.Duration, requireIat bool) error {
	for _, name := range []string{"iat", "exp"} {
		if _, present := m[name]; present {
			if _, ok := numClaim(m, name); !ok {
				return fail(CodeMandateInvalidSignature, name+" is not an integer", nil)
			}
		}
	}
	iat, hasIat := numClaim(m, "iat")
	if requireIat && !hasIat {
		return fail(CodeMandateInvalidSignature, "iat is required on the closed mandate", nil)
	}
	if hasIat && time.Unix(iat, 0).After(now.Add(leeway)) {
		return fail(CodeMandateExpired, "mandate issued in the future", nil)
	}
	if exp, ok := numClaim(m, "exp"); ok && now.After(time.Unix(exp, 0).Add(leeway)) {
		return fail(CodeMandateExpired, "mandate expired", nil)
	}
	return nil
}

// cnfKey reads the agent's public key from cnf.jwk (RFC 7800).
func cnfKey(m map[string]any) (*jose.JSONWebKey, error) {
	cnf, ok := m["cnf"].(map[string]any)
	if !ok {
		return nil, errors.New("no cnf")
	}
	raw, err := json.Marshal(cnf["jwk"])
	if err != nil {
		return nil, err
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, err
	}
	if !k.IsPublic() || !k.Valid() {
		return nil, errors.New("cnf.jwk is not a valid public key")
	}
	return &k, nil
}

// parseAndVerify verifies an ES256 compact JWS with a known key.
func parseAndVerify(token string, key *jose.JSONWebKey) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, mandateAlgs)
	if err != nil {
		return nil, err
	}
	return jws.Verify(key)
}
