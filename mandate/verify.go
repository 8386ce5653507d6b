package mandate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// mandateAlgs is the algorithm allow-list for mandates. Artos mints ES256
// only; "none" and every HMAC are absent, so a public key can never be
// abused as an HMAC secret.
var mandateAlgs = []jose.SignatureAlgorithm{jose.ES256}

// Default and maximum verification tolerances.
const (
	DefaultLeeway      = 30 * time.Second
	MaxLeeway          = 5 * time.Minute
	DefaultMaxLifetime = 15 * time.Minute
)

// VerifyOptions says what a mandate must be bound to. AgentKeys, Merchant
// and Checkout are required.
type VerifyOptions struct {
	// AgentKeys resolves the mandate's kid, normally from the agent's UCP
	// profile (the UCP-Agent profile URL).
	AgentKeys KeyResolver
	// Merchant is this store's slug; the mandate's merchant must equal it.
	Merchant string
	// Checkout is the live checkout as the store would return it now.
	Checkout []byte
	// Audience, when set, must appear in the mandate's aud if it has one.
	// Artos mandates carry no aud; set RequireAudience to refuse them.
	Audience        string
	RequireAudience bool
	// HandlerID is the rail being completed. A mandate bound to another
	// rail (handler_id claim) is refused.
	HandlerID string
	// MerchantKeys, when set, makes the store re-verify its own
	// merchant_authorization inside the embedded checkout (UCP step 4).
	MerchantKeys KeyResolver
	// Replay, when set, makes each mandate single use. Recording happens
	// only after every other check passed, so forged tokens cannot fill it.
	Replay ReplayCache
	// Now defaults to time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp and iat; default
	// DefaultLeeway, capped at MaxLeeway.
	Leeway time.Duration
	// MaxLifetime bounds exp-iat (or exp-now without iat); default
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
}

// Verified is a mandate that passed every check.
type Verified struct {
	KeyID  string
	Claims Claims
	// Total is the live checkout's total the mandate was checked against.
	Total Amount
}

// VerifyCheckoutMandate checks an ap2.checkout_mandate: signature by a key
// the agent publishes, expiry, merchant and audience, and binding to the
// live checkout (id, terms hash, total, rail). Errors are *Error carrying
// the UCP code; an error from the replay store that is not a replay is
// returned as is, so the caller can fail closed with 503.
func VerifyCheckoutMandate(ctx context.Context, token string, opts *VerifyOptions) (*Verified, error) {
	v, live, err := verifyCommon(ctx, token, opts)
	if err != nil {
		return nil, err
	}
	c := &v.Claims
	if c.Payment != nil || len(c.Checkout) == 0 {
		return nil, fail(CodeMandateScopeMismatch, "not a checkout mandate (no checkout claim)", nil)
	}
	if c.Merchant != opts.Merchant {
		return nil, fail(CodeMandateScopeMismatch, "mandate is for another merchant", nil)
	}
	embedded, err := readTerms(c.Checkout)
	if err != nil {
		return nil, fail(CodeMandateScopeMismatch, "embedded checkout is malformed", err)
	}
	if embedded.Hash != live.Hash {
		return nil, fail(CodeMandateScopeMismatch, "checkout terms changed since the mandate was signed", nil)
	}
	if c.Total != nil && *c.Total != live.Total {
		return nil, fail(CodeMandateScopeMismatch, "total does not match the live checkout", nil)
	}
	if opts.MerchantKeys != nil {
		if err := VerifyMerchantAuthorization(ctx, c.Checkout, opts.MerchantKeys); err != nil {
			return nil, err
		}
	}
	return v, consume(ctx, v, opts)
}

// VerifyPaymentMandate checks a payment mandate the same way and requires
// its amount and currency to equal the live checkout's total.
func VerifyPaymentMandate(ctx context.Context, token string, opts *VerifyOptions) (*Verified, error) {
	v, live, err := verifyCommon(ctx, token, opts)
	if err != nil {
		return nil, err
	}
	p := v.Claims.Payment
	if p == nil || len(v.Claims.Checkout) > 0 {
		return nil, fail(CodeMandateScopeMismatch, "not a payment mandate (no payment claim)", nil)
	}
	if p.Merchant != opts.Merchant {
		return nil, fail(CodeMandateScopeMismatch, "payment is for another merchant", nil)
	}
	if p.Amount != live.Total.Amount || !strings.EqualFold(p.Currency, live.Total.Currency) {
		return nil, fail(CodeMandateScopeMismatch, "payment amount does not equal the live total", nil)
	}
	return v, consume(ctx, v, opts)
}

// verifyCommon does what both mandate kinds share: option checks, JWS
// signature, claim syntax, time, audience and the optional id/hash/rail
// bindings. It returns the live checkout's terms for the kind-specific
// checks.
func verifyCommon(ctx context.Context, token string, opts *VerifyOptions) (*Verified, *terms, error) {
	if opts == nil || opts.AgentKeys == nil || opts.Merchant == "" || len(opts.Checkout) == 0 {
		return nil, nil, errors.New("mandate: VerifyOptions needs AgentKeys, Merchant and Checkout")
	}
	if token == "" {
		return nil, nil, fail(CodeMandateRequired, "no mandate was presented", nil)
	}
	live, err := readTerms(opts.Checkout)
	if err != nil {
		return nil, nil, fmt.Errorf("mandate: live checkout: %w", err)
	}
	if len(token) > maxTokenLen || strings.Count(token, ".") != 2 {
		return nil, nil, fail(CodeMandateInvalidSignature, "not a compact JWS", nil)
	}
	hdr, err := protectedHeader(token)
	if err != nil {
		return nil, nil, fail(CodeMandateInvalidSignature, "bad protected header", err)
	}
	jws, err := jose.ParseSignedCompact(token, mandateAlgs)
	if err != nil {
		return nil, nil, fail(CodeMandateInvalidSignature, "algorithm not allowed or malformed JWS", err)
	}
	if hdr.Kid == "" {
		return nil, nil, fail(CodeAgentMissingKey, "protected header has no kid", nil)
	}
	key, err := opts.AgentKeys.Key(ctx, hdr.Kid)
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return nil, nil, fail(CodeAgentMissingKey, "agent publishes no key "+quote(hdr.Kid), err)
		}
		return nil, nil, fmt.Errorf("mandate: resolve agent key: %w", err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, nil, fail(CodeMandateInvalidSignature, "signature does not verify", err)
	}
	v := &Verified{KeyID: hdr.Kid, Total: live.Total}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&v.Claims); err != nil {
		return nil, nil, fail(CodeMandateInvalidSignature, "claims are not valid JSON of the expected shape", err)
	}
	c := &v.Claims
	if c.ID == "" || c.ExpiresAt == 0 {
		return nil, nil, fail(CodeMandateInvalidSignature, "jti and exp are required", nil)
	}
	if err := checkTime(c, opts); err != nil {
		return nil, nil, err
	}
	if opts.Audience != "" {
		if len(c.Audience) == 0 && opts.RequireAudience {
			return nil, nil, fail(CodeMandateScopeMismatch, "mandate has no aud", nil)
		}
		if len(c.Audience) > 0 && !slices.Contains(c.Audience, opts.Audience) {
			return nil, nil, fail(CodeMandateScopeMismatch, "mandate is for another audience", nil)
		}
	}
	if c.PaymentMandateID != "" && !uuidPattern.MatchString(c.PaymentMandateID) {
		return nil, nil, fail(CodeMandateScopeMismatch, "payment_mandate_id is not an allowance UUID", nil)
	}
	if c.CheckoutID != "" && c.CheckoutID != live.ID {
		return nil, nil, fail(CodeMandateScopeMismatch, "mandate is for another checkout", nil)
	}
	if c.CheckoutHash != "" && c.CheckoutHash != live.Hash {
		return nil, nil, fail(CodeMandateScopeMismatch, "checkout terms changed since the mandate was signed", nil)
	}
	if c.HandlerID != "" && opts.HandlerID != "" && c.HandlerID != opts.HandlerID {
		return nil, nil, fail(CodeMandateScopeMismatch, "mandate is for another payment handler", nil)
	}
	return v, live, nil
}

func checkTime(c *Claims, opts *VerifyOptions) error {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	leeway := opts.Leeway
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	leeway = min(leeway, MaxLeeway)
	maxLife := opts.MaxLifetime
	if maxLife <= 0 {
		maxLife = DefaultMaxLifetime
	}
	exp := time.Unix(c.ExpiresAt, 0)
	if now.After(exp.Add(leeway)) {
		return fail(CodeMandateExpired, "mandate expired", nil)
	}
	start := now
	if c.IssuedAt != 0 {
		start = time.Unix(c.IssuedAt, 0)
		if start.After(now.Add(leeway)) {
			return fail(CodeMandateExpired, "mandate issued in the future", nil)
		}
		if !exp.After(start) {
			return fail(CodeMandateExpired, "exp is not after iat", nil)
		}
	}
	// Without iat the remaining lifetime is what can be bounded; a
	// mandate valid for days is a standing authorization, not a mandate.
	if exp.Sub(start) > maxLife+leeway {
		return fail(CodeMandateExpired, "lifetime exceeds the allowed maximum", nil)
	}
	return nil
}

func consume(ctx context.Context, v *Verified, opts *VerifyOptions) error {
	if opts.Replay == nil {
		return nil
	}
	err := opts.Replay.Use(ctx, v.KeyID+"|"+v.Claims.ID, time.Unix(v.Claims.ExpiresAt, 0).Add(MaxLeeway))
	if errors.Is(err, ErrReplayed) {
		return fail(CodeMandateExpired, "jti already used", err)
	}
	if err != nil {
		return fmt.Errorf("mandate: replay store: %w", err)
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
