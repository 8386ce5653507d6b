package mandate

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultTTL is the lifetime of a minted mandate when Params.TTL is zero.
// It matches the Artos SDK (exp = now + 300 s).
const DefaultTTL = 5 * time.Minute

// Claims is the payload of a checkout or payment mandate. The first group
// of fields is what the Artos SDK mints (and all it mints); the second group
// is what this package adds so a verifier can bind a mandate to one priced
// checkout without trusting the embedded copy. Verification accepts mandates
// with or without the second group.
type Claims struct {
	// Checkout is the verbatim checkout body the agent approved, including
	// ap2.merchant_authorization. Checkout mandates only.
	Checkout json.RawMessage `json:"checkout,omitempty"`
	// Payment is the amount authorised. Payment mandates only.
	Payment *Payment `json:"payment,omitempty"`
	// Merchant is the store slug (checkout mandates; payment mandates carry
	// it in Payment.Merchant).
	Merchant string `json:"merchant,omitempty"`
	// ID is the jti: "m_<uuid>" for checkout, "p_<uuid>" for payment
	// mandates. Single use.
	ID        string `json:"jti"`
	ExpiresAt int64  `json:"exp"`
	// PaymentMandateID is the buyer's allowance UUID that the store checks
	// spend caps against.
	PaymentMandateID string `json:"payment_mandate_id,omitempty"`

	IssuedAt int64    `json:"iat,omitempty"`
	Issuer   string   `json:"iss,omitempty"`
	Audience Audience `json:"aud,omitempty"`
	// CheckoutID is the checkout session id.
	CheckoutID string `json:"checkout_id,omitempty"`
	// CheckoutHash is CheckoutHash(checkout): SHA-256 over the JCS checkout
	// terms. In a payment mandate it plays the part of AP2's transaction_id.
	CheckoutHash string `json:"checkout_hash,omitempty"`
	// Total is the priced total (checkout mandates).
	Total *Amount `json:"total,omitempty"`
	// HandlerID is the payment handler instance (rail) the mandate is for,
	// e.g. "artos.card".
	HandlerID string `json:"handler_id,omitempty"`
}

// Payment is the payment mandate's authorised amount, as Artos shapes it.
type Payment struct {
	Amount   int64  `json:"amount"` // minor units
	Currency string `json:"currency"`
	Merchant string `json:"merchant"`
}

// Amount is an AP2 amount: integer minor units and an ISO 4217 code.
type Amount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Audience is a JWT aud: one string or an array of strings on the wire.
type Audience []string

// MarshalJSON writes a single audience as a plain string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = many
	return nil
}

// Params describes the checkout a mandate authorises.
type Params struct {
	// Checkout is the latest checkout body exactly as the store returned
	// it (get_checkout), including ap2.merchant_authorization. Required.
	Checkout []byte
	// Merchant is the store slug. Required.
	Merchant string
	// Issuer (iss) names the agent, e.g. its UCP profile URL. Optional.
	Issuer string
	// Audience (aud) names the verifier. Optional: Artos mandates have none.
	Audience string
	// HandlerID binds the mandate to one rail. Optional.
	HandlerID string
	// PaymentMandateID is the buyer allowance UUID. Optional; anything
	// that is not a UUID is refused here, because the store would refuse it.
	PaymentMandateID string
	// TTL defaults to DefaultTTL.
	TTL time.Duration
	// Now defaults to time.Now.
	Now time.Time
}

// MintCheckoutMandate returns a compact ES256 JWS (header {"alg","kid"})
// whose claims embed the verbatim checkout and bind it by id, terms hash and
// total.
func MintCheckoutMandate(key *SigningKey, p *Params) (string, error) {
	c, err := p.claims("m_")
	if err != nil {
		return "", err
	}
	c.Checkout = json.RawMessage(p.Checkout)
	c.Merchant = p.Merchant
	return sign(key, c)
}

// MintPaymentMandate returns a compact ES256 JWS authorising payment of the
// checkout's live total to the merchant. The amount is read from the
// checkout's "total" entry, never passed in, so it cannot drift from the
// priced terms.
func MintPaymentMandate(key *SigningKey, p *Params) (string, error) {
	c, err := p.claims("p_")
	if err != nil {
		return "", err
	}
	c.Payment = &Payment{Amount: c.Total.Amount, Currency: c.Total.Currency, Merchant: p.Merchant}
	c.Total = nil
	return sign(key, c)
}

func (p *Params) claims(prefix string) (*Claims, error) {
	if p == nil || len(p.Checkout) == 0 {
		return nil, errors.New("mandate: Params.Checkout is required")
	}
	if p.Merchant == "" {
		return nil, errors.New("mandate: Params.Merchant is required")
	}
	if p.PaymentMandateID != "" && !uuidPattern.MatchString(p.PaymentMandateID) {
		return nil, fmt.Errorf("mandate: payment_mandate_id %q is not a UUID", p.PaymentMandateID)
	}
	if p.TTL < 0 {
		return nil, errors.New("mandate: negative TTL")
	}
	terms, err := readTerms(p.Checkout)
	if err != nil {
		return nil, err
	}
	now, ttl := p.Now, p.TTL
	if now.IsZero() {
		now = time.Now()
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	c := &Claims{
		ID:               prefix + newUUID(),
		IssuedAt:         now.Unix(),
		ExpiresAt:        now.Add(ttl).Unix(),
		PaymentMandateID: p.PaymentMandateID,
		Issuer:           p.Issuer,
		CheckoutID:       terms.ID,
		CheckoutHash:     terms.Hash,
		Total:            &terms.Total,
		HandlerID:        p.HandlerID,
	}
	if p.Audience != "" {
		c.Audience = Audience{p.Audience}
	}
	return c, nil
}

func sign(key *SigningKey, c *Claims) (string, error) {
	payload, err := marshalNoEscape(c)
	if err != nil {
		return "", fmt.Errorf("mandate: claims: %w", err)
	}
	jws, err := key.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("mandate: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// termMembers are the checkout members that make up the priced terms the
// buyer agrees to. Status, messages, links, buyer details and the ap2
// member are not terms: they change without changing what is bought or
// what it costs.
var termMembers = map[string]bool{
	"id": true, "currency": true, "line_items": true, "totals": true,
	"fulfillment": true, "discounts": true,
}

// CheckoutHash returns base64url(SHA-256(JCS(terms))) where terms is the
// checkout object reduced to id, currency, line_items, totals, fulfillment
// and discounts. Two checkouts with the same hash sell the same things at
// the same price.
func CheckoutHash(checkout []byte) (string, error) {
	t, err := readTerms(checkout)
	if err != nil {
		return "", err
	}
	return t.Hash, nil
}

// terms is what a verifier compares between a mandate and the live
// checkout.
type terms struct {
	ID    string
	Total Amount
	Hash  string
}

func readTerms(checkout []byte) (*terms, error) {
	canon, err := canonicalMembers(checkout, func(name string) bool { return termMembers[name] })
	if err != nil {
		return nil, fmt.Errorf("mandate: checkout: %w", err)
	}
	var view struct {
		ID       string `json:"id"`
		Currency string `json:"currency"`
		Totals   []struct {
			Type   string      `json:"type"`
			Amount json.Number `json:"amount"`
		} `json:"totals"`
	}
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	if err := dec.Decode(&view); err != nil {
		return nil, fmt.Errorf("mandate: checkout: %w", err)
	}
	if view.ID == "" {
		return nil, errors.New("mandate: checkout has no id")
	}
	if view.Currency == "" {
		return nil, errors.New("mandate: checkout has no currency")
	}
	t := &terms{ID: view.ID, Total: Amount{Amount: -1, Currency: strings.ToUpper(view.Currency)}}
	for _, tot := range view.Totals {
		if tot.Type != "total" {
			continue
		}
		if t.Total.Amount != -1 {
			return nil, errors.New("mandate: checkout has more than one total")
		}
		// Minor units are integers; "12.5" or "1e3" is a malformed amount.
		n, err := strconv.ParseInt(tot.Amount.String(), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mandate: checkout total %q is not a non-negative integer", tot.Amount)
		}
		t.Total.Amount = n
	}
	if t.Total.Amount == -1 {
		return nil, errors.New("mandate: checkout has no total")
	}
	sum := sha256.Sum256(canon)
	t.Hash = base64.RawURLEncoding.EncodeToString(sum[:])
	return t, nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
