package httpsig

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/go-jose/go-jose/v4"
	"github.com/yaronf/httpsign"
)

// KeyResolver finds a public verification key by keyid: the signer's UCP
// profile signing_keys (or keys) for requests and webhooks, the business
// profile for responses. *mandate.KeySet implements it. An unknown keyid
// must return an error; any error becomes key_not_found.
type KeyResolver interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// DefaultMaxSkew bounds how far created may be in the future and how long
// after expires a signature is still accepted.
const DefaultMaxSkew = 60 * time.Second

// Verifier checks RFC 9421 signatures the UCP way. Keys is required; the
// zero value of every other field is a sensible default. A Verifier is safe
// for concurrent use.
type Verifier struct {
	Keys KeyResolver
	// Required replaces the UCP required component set (see
	// RequestComponents and ResponseComponents) with a fixed list.
	Required []string
	// MaxSkew defaults to DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxAge, when set, refuses signatures whose created is older. UCP
	// gets replay protection from idempotency keys, so it is off by
	// default; set it for webhooks or when no idempotency key applies.
	MaxAge time.Duration
	// RequireCreated refuses signatures without a created parameter.
	RequireCreated bool
	// Nonce, when set, is called with the nonce of a signature that
	// verified (after the cryptographic check, so forgeries cannot fill a
	// replay store). A non-nil error refuses the message as
	// signature_invalid. Signatures without a nonce are refused when Nonce
	// is set.
	Nonce func(ctx context.Context, nonce string) error
	// Now defaults to time.Now.
	Now func() time.Time
}

// Result describes the signature that verified.
type Result struct {
	Label      string
	KeyID      string
	Components []string
	Created    time.Time // zero when absent
	Expires    time.Time // zero when absent
	Nonce      string
	Tag        string
}

// VerifyRequest verifies r, whose body the caller has already read into
// body (bounded by the caller). Every signature label is tried; the first
// one that covers the required components and verifies wins. The digest is
// recomputed over body (RFC 9530 sha-256 or sha-512), because httpsign's
// VerifyRequest does not.
func (v *Verifier) VerifyRequest(ctx context.Context, r *http.Request, body []byte) (*Result, error) {
	required := v.Required
	if required == nil {
		required = RequestComponents(r, len(body) > 0)
	}
	// Verify on a shallow copy: httpsign fills in the URL's host and
	// scheme, and @authority must be the normalised form the signer used.
	c := *r
	u := *r.URL
	c.URL = &u
	c.Host = NormalizeAuthority(r.Host, "")
	c.Body = http.NoBody
	return v.verify(ctx, r.Header, body, required, func(label string, hv *httpsign.Verifier) error {
		return httpsign.VerifyRequest(label, *hv, &c)
	})
}

// VerifyResponse verifies a response's signature; body is the response
// body as received (read it with compression off: Go's transport
// decompresses gzip transparently, and the digest covers the encoded
// content).
func (v *Verifier) VerifyResponse(ctx context.Context, res *http.Response, body []byte) (*Result, error) {
	required := v.Required
	if required == nil {
		required = ResponseComponents(len(body) > 0)
	}
	c := *res
	c.Body = http.NoBody
	return v.verify(ctx, res.Header, body, required, func(label string, hv *httpsign.Verifier) error {
		return httpsign.VerifyResponse(label, *hv, &c, nil)
	})
}

func (v *Verifier) verify(ctx context.Context, h http.Header, body []byte, required []string, check func(string, *httpsign.Verifier) error) (*Result, error) {
	if v.Keys == nil {
		return nil, errors.New("httpsig: Verifier.Keys is required")
	}
	inputs, sigs := h.Values("Signature-Input"), h.Values("Signature")
	if len(inputs) == 0 || len(sigs) == 0 {
		return nil, &Error{Code: CodeSignatureMissing, Reason: "no Signature-Input or Signature header"}
	}
	dict, err := httpsfv.UnmarshalDictionary(inputs)
	if err != nil {
		return nil, &Error{Code: CodeSignatureInvalid, Reason: "Signature-Input is not a structured dictionary", Err: err}
	}
	// The body is checked once, before any signature: a body that does not
	// match its digest is refused whatever the signatures say.
	if h.Get("Content-Digest") != "" || (len(body) > 0 && slices.Contains(required, "content-digest")) {
		if err := checkDigest(h, body); err != nil {
			return nil, err
		}
	}
	var worst *Error
	for _, label := range dict.Names() {
		res, err := v.verifyLabel(ctx, dict, label, required, check)
		if err == nil {
			return res, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return nil, err // not a verdict on this signature (e.g. nonce store down)
		}
		if worst == nil || rank(e.Code) > rank(worst.Code) {
			worst = e
		}
	}
	if worst == nil {
		worst = &Error{Code: CodeSignatureMissing, Reason: "Signature-Input has no members"}
	}
	return nil, worst
}

func (v *Verifier) verifyLabel(ctx context.Context, dict *httpsfv.Dictionary, label string, required []string, check func(string, *httpsign.Verifier) error) (*Result, error) {
	m, _ := dict.Get(label)
	list, ok := m.(httpsfv.InnerList)
	if !ok {
		return nil, &Error{Code: CodeSignatureInvalid, Reason: "signature " + label + " is not an inner list"}
	}
	res := &Result{Label: label}
	for _, item := range list.Items {
		// Plain components are kept by name; parameterised ones (such as
		// "signature-agent";key="sig1") in their serialised form, so they
		// never satisfy a plain requirement.
		name, ok := item.Value.(string)
		if !ok || len(item.Params.Names()) > 0 {
			id, err := httpsfv.Marshal(item)
			if err != nil {
				return nil, &Error{Code: CodeSignatureInvalid, Reason: "bad component", Err: err}
			}
			name = id
		}
		res.Components = append(res.Components, name)
	}
	for _, want := range required {
		if !slices.Contains(res.Components, want) {
			return nil, &Error{Code: CodeCoverageInsufficient, Reason: fmt.Sprintf("signature %s does not cover %s", label, want)}
		}
	}
	params := map[string]any{}
	for _, name := range list.Params.Names() {
		params[name], _ = list.Params.Get(name)
	}
	res.KeyID, _ = params["keyid"].(string)
	res.Nonce, _ = params["nonce"].(string)
	res.Tag, _ = params["tag"].(string)
	if res.KeyID == "" {
		return nil, &Error{Code: CodeKeyNotFound, Reason: "signature " + label + " has no keyid"}
	}
	if err := v.checkTime(params, res); err != nil {
		return nil, err
	}
	jwk, err := v.Keys.Key(ctx, res.KeyID)
	if err != nil || jwk == nil {
		return nil, &Error{Code: CodeKeyNotFound, Reason: fmt.Sprintf("no key %q", truncate(res.KeyID)), Err: err}
	}
	alg, _ := params["alg"].(string)
	hv, err := verifierFor(jwk, alg, res.KeyID, required)
	if err != nil {
		return nil, err
	}
	if err := check(label, hv); err != nil {
		return nil, &Error{Code: CodeSignatureInvalid, Reason: "signature " + label + " does not verify", Err: err}
	}
	if v.Nonce != nil {
		if res.Nonce == "" {
			return nil, &Error{Code: CodeSignatureInvalid, Reason: "signature has no nonce"}
		}
		if err := v.Nonce(ctx, res.Nonce); err != nil {
			return nil, &Error{Code: CodeSignatureInvalid, Reason: "nonce refused", Err: err}
		}
	}
	return res, nil
}

func (v *Verifier) checkTime(params map[string]any, res *Result) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if c, ok := params["created"]; ok {
		n, ok := c.(int64)
		if !ok {
			return &Error{Code: CodeSignatureInvalid, Reason: "created is not an integer"}
		}
		res.Created = time.Unix(n, 0)
		if res.Created.After(now.Add(skew)) {
			return &Error{Code: CodeSignatureInvalid, Reason: "created is in the future"}
		}
		if v.MaxAge > 0 && now.Sub(res.Created) > v.MaxAge+skew {
			return &Error{Code: CodeSignatureInvalid, Reason: "signature is too old"}
		}
	} else if v.RequireCreated || v.MaxAge > 0 {
		return &Error{Code: CodeSignatureInvalid, Reason: "signature has no created parameter"}
	}
	if e, ok := params["expires"]; ok {
		n, ok := e.(int64)
		if !ok {
			return &Error{Code: CodeSignatureInvalid, Reason: "expires is not an integer"}
		}
		res.Expires = time.Unix(n, 0)
		if now.After(res.Expires.Add(skew)) {
			return &Error{Code: CodeSignatureInvalid, Reason: "signature expired"}
		}
	}
	return nil
}

// verifierFor derives the algorithm from the key, as UCP requires; an alg
// parameter, if a peer sends one, must agree with it.
func verifierFor(jwk *jose.JSONWebKey, alg, kid string, required []string) (*httpsign.Verifier, error) {
	if jwk.Use == "enc" {
		return nil, &Error{Code: CodeKeyNotFound, Reason: "key is for encryption"}
	}
	// httpsign's own created/expires policy (10 s window, created
	// mandatory) is replaced by checkTime above.
	cfg := httpsign.NewVerifyConfig().SetVerifyCreated(false).SetRejectExpired(false).SetKeyID(kid)
	fields := httpsign.Headers(required...)
	var want string
	var hv *httpsign.Verifier
	var err error
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			want = "ecdsa-p256-sha256"
			hv, err = httpsign.NewP256Verifier(*k, cfg, fields)
		case elliptic.P384():
			want = "ecdsa-p384-sha384"
			hv, err = httpsign.NewP384Verifier(*k, cfg, fields)
		default:
			return nil, &Error{Code: CodeAlgorithmUnsupported, Reason: "unsupported curve"}
		}
	case ed25519.PublicKey:
		want = "ed25519"
		hv, err = httpsign.NewEd25519Verifier(k, cfg, fields)
	default:
		return nil, &Error{Code: CodeAlgorithmUnsupported, Reason: fmt.Sprintf("unsupported key type %T", jwk.Key)}
	}
	if err != nil {
		return nil, &Error{Code: CodeAlgorithmUnsupported, Err: err}
	}
	if alg != "" && alg != want {
		return nil, &Error{Code: CodeAlgorithmUnsupported, Reason: fmt.Sprintf("alg %q does not match the %s key", truncate(alg), want)}
	}
	return hv, nil
}

// checkDigest recomputes Content-Digest over body. Every sha-256 and
// sha-512 member must match (constant-time compare) and at least one must
// be present; other algorithms are ignored, as RFC 9530 says.
func checkDigest(h http.Header, body []byte) error {
	values := h.Values("Content-Digest")
	if len(values) == 0 {
		return &Error{Code: CodeDigestMismatch, Reason: "body without Content-Digest"}
	}
	dict, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return &Error{Code: CodeDigestMismatch, Reason: "Content-Digest is not a structured dictionary", Err: err}
	}
	checked := 0
	for _, alg := range dict.Names() {
		var sum []byte
		switch alg {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		m, _ := dict.Get(alg)
		item, ok := m.(httpsfv.Item)
		got, isBytes := item.Value.([]byte)
		if !ok || !isBytes || subtle.ConstantTimeCompare(got, sum) != 1 {
			return &Error{Code: CodeDigestMismatch, Reason: alg + " Content-Digest does not match the body"}
		}
		checked++
	}
	if checked == 0 {
		return &Error{Code: CodeDigestMismatch, Reason: "Content-Digest has no sha-256 or sha-512 member"}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
