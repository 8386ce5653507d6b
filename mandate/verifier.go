package mandate

import (
	"context"
	"encoding/json"
	"strings"
)

// CheckoutMandateVerifier checks an ap2.checkout_mandate against the live
// checkout. A store holds one and does not care which form the platform
// sent: CompactVerifier takes the Artos compact JWS, SDJWTVerifier the AP2
// v0.2 delegate chain, AnyVerifier either.
type CheckoutMandateVerifier interface {
	VerifyCheckoutMandate(ctx context.Context, token string, live []byte) (*CheckoutAuthorization, error)
}

// CheckoutAuthorization is what a verified checkout mandate authorises,
// whatever its form.
type CheckoutAuthorization struct {
	Format string // "jws" or "sd-jwt"
	// Checkout is the checkout the agent approved (its terms equal the
	// live checkout's).
	Checkout json.RawMessage
	// PaymentMandateID is the allowance to charge caps against, if any.
	PaymentMandateID string
	// Reference identifies the mandate: the jti, or the closed SD-JWT's
	// digest.
	Reference string
}

// CompactVerifier verifies compact ES256 mandates. Options.Checkout is
// replaced by the live checkout on each call.
type CompactVerifier struct {
	Options VerifyOptions
}

// VerifyCheckoutMandate implements CheckoutMandateVerifier.
func (v *CompactVerifier) VerifyCheckoutMandate(ctx context.Context, token string, live []byte) (*CheckoutAuthorization, error) {
	o := v.Options
	o.Checkout = live
	res, err := VerifyCheckoutMandate(ctx, token, &o)
	if err != nil {
		return nil, err
	}
	return &CheckoutAuthorization{Format: "jws", Checkout: res.Claims.Checkout,
		PaymentMandateID: res.Claims.PaymentMandateID, Reference: res.Claims.ID}, nil
}

// SDJWTVerifier verifies AP2 v0.2 delegate-chain mandates.
// Options.Checkout is replaced by the live checkout on each call.
type SDJWTVerifier struct {
	Options SDJWTVerifyOptions
}

// VerifyCheckoutMandate implements CheckoutMandateVerifier.
func (v *SDJWTVerifier) VerifyCheckoutMandate(ctx context.Context, token string, live []byte) (*CheckoutAuthorization, error) {
	o := v.Options
	o.Checkout = live
	res, err := VerifySDJWTCheckoutMandate(ctx, token, &o)
	if err != nil {
		return nil, err
	}
	return &CheckoutAuthorization{Format: "sd-jwt", Checkout: res.Checkout, Reference: res.Reference}, nil
}

// AnyVerifier accepts either form; a nil member refuses that form. SD-JWTs
// are told apart by their "~" separators, which compact JWS never contain.
type AnyVerifier struct {
	Compact *CompactVerifier
	SDJWT   *SDJWTVerifier
}

// VerifyCheckoutMandate implements CheckoutMandateVerifier.
func (v *AnyVerifier) VerifyCheckoutMandate(ctx context.Context, token string, live []byte) (*CheckoutAuthorization, error) {
	if token == "" {
		return nil, fail(CodeMandateRequired, "no mandate was presented", nil)
	}
	if strings.Contains(token, "~") {
		if v.SDJWT == nil {
			return nil, fail(CodeMandateInvalidSignature, "SD-JWT mandates are not accepted here", nil)
		}
		return v.SDJWT.VerifyCheckoutMandate(ctx, token, live)
	}
	if v.Compact == nil {
		return nil, fail(CodeMandateInvalidSignature, "compact JWS mandates are not accepted here", nil)
	}
	return v.Compact.VerifyCheckoutMandate(ctx, token, live)
}
