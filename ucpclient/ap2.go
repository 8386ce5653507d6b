package ucpclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Ap2Signer mints the AP2 mandates an agent sends with complete_checkout,
// signed with the agent's ES256 key, whose public JWK (same kid) the agent
// publishes in its UCP profile: the Artos SDK's Ap2Signer, built on
// package mandate. It is safe for concurrent use.
type Ap2Signer struct {
	key *mandate.SigningKey
	jws jose.Signer // for Artos-shaped payment mandates (no checkout to bind)
}

// NewAp2Signer returns a signer for key; the mandates' kid is
// key.KeyID().
func NewAp2Signer(key *mandate.SigningKey) (*Ap2Signer, error) {
	if key == nil {
		return nil, errors.New("ucpclient: Ap2Signer needs a signing key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: key.PrivateKey(), KeyID: key.KeyID()},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("ucpclient: signer: %w", err)
	}
	return &Ap2Signer{key: key, jws: signer}, nil
}

// ParseAp2Signer returns a signer from the agent's private key, a P-256
// JWK with "d" or a PEM block (see mandate.ParseSigningKey), and its kid:
// the Artos SDK's new Ap2Signer(privateJwk, kid). A non-empty kid
// overrides the JWK's; with neither, the kid is the key's RFC 7638
// thumbprint.
func ParseAp2Signer(privateKey []byte, kid string) (*Ap2Signer, error) {
	k, err := mandate.ParseSigningKey(privateKey)
	if err != nil {
		return nil, err
	}
	if kid != "" && kid != k.KeyID() {
		if k, err = mandate.NewSigningKey(k.PrivateKey(), kid); err != nil {
			return nil, err
		}
	}
	return NewAp2Signer(k)
}

// KeyID is the kid the mandates carry; the agent's profile must publish
// the public key under it.
func (s *Ap2Signer) KeyID() string { return s.key.KeyID() }

// MandateOptions are the optional parts of a mandate. With the zero value
// (or nil) the mandates carry the Artos SDK's claims and exp = now + 300 s.
type MandateOptions struct {
	// PaymentMandateID is the buyer's allowance id (a UUID), binding the
	// mandate to the allowance the store checks spend caps against. As in
	// the Artos SDK, a value that is not a UUID (a rail id such as
	// "sh.artos.card", "pm_…") is silently dropped rather than sent:
	// the store would refuse it with mandate_scope_mismatch. See
	// AsAllowanceID.
	PaymentMandateID string
	// TTL is the mandate's lifetime; 0 means mandate.DefaultTTL (300 s).
	TTL time.Duration
	// Now defaults to time.Now.
	Now time.Time
	// Issuer (iss) and Audience (aud) are optional; Artos mandates carry
	// neither.
	Issuer, Audience string
	// HandlerID binds the mandate to one rail (handler_id claim), e.g.
	// "artos.card". Optional.
	HandlerID string
	// Checkout, for MintPaymentMandate only, is the checkout the payment
	// is for. When set, the payment mandate is bound to it (checkout_id,
	// checkout_hash) and its total must equal the amount and currency
	// given. Leave it nil to mint the Artos shape, which binds nothing but
	// amount, currency and merchant.
	Checkout json.RawMessage
}

func (o *MandateOptions) params(checkout []byte, merchant string) *mandate.Params {
	if o == nil {
		o = &MandateOptions{}
	}
	return &mandate.Params{
		Checkout: checkout, Merchant: merchant,
		Issuer: o.Issuer, Audience: o.Audience, HandlerID: o.HandlerID,
		PaymentMandateID: AsAllowanceID(o.PaymentMandateID),
		TTL:              o.TTL, Now: o.Now,
	}
}

// MintCheckoutMandate returns ap2.checkout_mandate: a compact ES256 JWS
// (header {"alg":"ES256","kid":…}) whose claims are the Artos ones, the
// verbatim checkout (the latest get_checkout body, ap2 included),
// merchant (the store slug), jti "m_<uuid>", exp (now + 300 s by
// default) and payment_mandate_id when opts gives a UUID, plus the
// binding claims package mandate adds (iat, checkout_id, checkout_hash,
// total), which Artos-style verifiers ignore. The checkout must have an
// id, a currency and one total.
func (s *Ap2Signer) MintCheckoutMandate(checkout json.RawMessage, merchant string, opts *MandateOptions) (string, error) {
	return mandate.MintCheckoutMandate(s.key, opts.params(checkout, merchant))
}

// MintPaymentMandate returns ap2.payment_mandate for paying amount minor
// units of currency to merchant (the store slug): a compact ES256 JWS with
// the Artos claims payment {amount, currency, merchant}, jti "p_<uuid>",
// exp, iat and payment_mandate_id when opts gives a UUID. The amount must
// equal the checkout's live total (GrandTotal), or the store refuses it.
// With opts.Checkout set the mandate is minted by package mandate, bound
// to that checkout, and a checkout total other than amount is an error
// here rather than a refusal there.
func (s *Ap2Signer) MintPaymentMandate(amount int64, currency, merchant string, opts *MandateOptions) (string, error) {
	currency = strings.ToUpper(strings.TrimSpace(currency))
	switch {
	case amount < 0:
		return "", errors.New("ucpclient: payment mandate amount is negative")
	case merchant == "":
		return "", errors.New("ucpclient: payment mandate needs the merchant (store slug)")
	}
	if _, ok := ucp.CurrencyExponent(currency); !ok {
		return "", &AmountError{Currency: currency, Reason: "unknown ISO 4217 currency code"}
	}
	if opts != nil && len(opts.Checkout) > 0 {
		if got, cur := GrandTotal(opts.Checkout), CurrencyOf(opts.Checkout); got != amount || cur != currency {
			return "", fmt.Errorf("ucpclient: payment mandate for %s %s but the checkout's total is %s %s",
				ucp.FormatMinor(amount, currency), currency, ucp.FormatMinor(got, cur), cur)
		}
		return mandate.MintPaymentMandate(s.key, opts.params(opts.Checkout, merchant))
	}
	p := opts.params(nil, merchant)
	if p.TTL < 0 {
		return "", errors.New("ucpclient: negative mandate TTL")
	}
	now, ttl := p.Now, p.TTL
	if now.IsZero() {
		now = time.Now()
	}
	if ttl == 0 {
		ttl = mandate.DefaultTTL
	}
	c := mandate.Claims{
		Payment:          &mandate.Payment{Amount: amount, Currency: currency, Merchant: merchant},
		ID:               "p_" + newUUID(),
		ExpiresAt:        now.Add(ttl).Unix(),
		IssuedAt:         now.Unix(),
		PaymentMandateID: p.PaymentMandateID,
		Issuer:           p.Issuer,
		HandlerID:        p.HandlerID,
	}
	if p.Audience != "" {
		c.Audience = mandate.Audience{p.Audience}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return "", fmt.Errorf("ucpclient: mandate claims: %w", err)
	}
	jws, err := s.jws.Sign(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		return "", fmt.Errorf("ucpclient: sign mandate: %w", err)
	}
	return jws.CompactSerialize()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// merchantAlgs are the algorithms a merchant_authorization may use (UCP's
// allow-list; the Artos stores use ES256).
var merchantAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512}

// VerifyMerchantAuthorization checks checkout.ap2.merchant_authorization,
// the business's signature over the priced checkout, against the keys the
// business publishes: build keys with mandate.ParseKeySet from its store
// profile (top-level "keys" as the Artos API publishes them, or UCP's
// "signing_keys"). The value must be a detached compact JWS
// (header..signature) whose signature covers JCS(checkout without its
// "ap2" member), by the key its kid names, or by the first key when the
// header has no kid (as the Artos SDK does).
//
// It returns nil or a *mandate.Error: match errors.Is with
// mandate.ErrMerchantAuthorizationMissing (no signature at all) or
// mandate.ErrMerchantAuthorizationInvalid (anything else: tampered terms,
// an unknown kid, a payload segment present, a disallowed algorithm).
func VerifyMerchantAuthorization(checkout json.RawMessage, keys *mandate.KeySet) error {
	var v struct {
		AP2 *struct {
			MerchantAuthorization string `json:"merchant_authorization"`
		} `json:"ap2"`
	}
	if err := json.Unmarshal(checkout, &v); err != nil {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "checkout is not a JSON object", Err: err}
	}
	if v.AP2 == nil || v.AP2.MerchantAuthorization == "" {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationMissing, Reason: "checkout has no ap2.merchant_authorization"}
	}
	if keys == nil || keys.Len() == 0 {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "the business publishes no usable signing key"}
	}
	token := v.AP2.MerchantAuthorization
	kid, err := detachedKid(token)
	if err != nil {
		return err
	}
	if kid != "" {
		// package mandate does the kid-named case, exactly as a store's
		// own verifier would.
		return mandate.VerifyMerchantAuthorization(context.Background(), checkout, keys)
	}
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(checkout, &obj); err != nil {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "checkout is not a JSON object", Err: err}
	}
	delete(obj, "ap2")
	payload, err := mandate.CanonicalizeValue(obj)
	if err != nil {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "checkout cannot be canonicalized", Err: err}
	}
	first := keys.JWKS().Keys[0]
	return verifyDetached(token, payload, &first)
}

// detachedKid checks token is a detached compact JWS with a readable
// protected header and returns the header's kid.
func detachedKid(token string) (string, error) {
	invalid := func(reason string, err error) (string, error) {
		return "", &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: reason, Err: err}
	}
	parts := strings.Split(token, ".")
	if len(token) > 1<<20 || len(parts) != 3 || parts[0] == "" || parts[1] != "" || parts[2] == "" {
		return invalid("not a detached compact JWS (header..signature)", nil)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return invalid("bad protected header", err)
	}
	var h struct {
		Kid  string          `json:"kid"`
		B64  *bool           `json:"b64"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return invalid("bad protected header", err)
	}
	if h.B64 != nil || len(h.Crit) > 0 {
		return invalid("crit and b64 headers are not accepted", nil)
	}
	return h.Kid, nil
}

func verifyDetached(token string, payload []byte, key *jose.JSONWebKey) error {
	jws, err := jose.ParseDetached(token, payload, merchantAlgs)
	if err != nil {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "algorithm not allowed or malformed JWS", Err: err}
	}
	if err := jws.DetachedVerify(payload, key); err != nil {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "signature does not verify", Err: err}
	}
	return nil
}

// VerifyDetachedJWS checks a detached compact JWS (header..signature) over
// payload, the exact bytes signed, against keys: the key the header's kid
// names, or the first key when it names none (the Artos SDK's
// verifyDetachedJws, which returns a boolean; this returns nil or a
// *mandate.Error with CodeMerchantAuthorizationInvalid).
func VerifyDetachedJWS(token string, payload []byte, keys *mandate.KeySet) error {
	kid, err := detachedKid(token)
	if err != nil {
		return err
	}
	if keys == nil || keys.Len() == 0 {
		return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "no usable verification key"}
	}
	key := keys.JWKS().Keys[0]
	if kid != "" {
		k, err := keys.Key(context.Background(), kid)
		if err != nil {
			return &mandate.Error{Code: mandate.CodeMerchantAuthorizationInvalid, Reason: "unknown signing key", Err: err}
		}
		key = *k
	}
	return verifyDetached(token, payload, &key)
}
