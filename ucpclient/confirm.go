package ucpclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// CryptoSettler submits a prepared crypto payment: it signs and sends the
// transaction prepare_checkout_payment built (payment_intent.unsigned_tx,
// base64), waits for finality and returns the transaction's digest, which
// ConfirmPurchase sends as the artos.crypto instrument's credential token.
// The Artos SDK's SuiSigner does this job on a real chain.
type CryptoSettler interface {
	Settle(ctx context.Context, unsignedTx string) (digest string, err error)
}

// SandboxSettler settles on this platform's sandbox crypto rail, which has
// no chain: a transaction "settles" at once under the digest
// "sim_" + hex(sha256(the base64-decoded unsigned_tx)). It moves no money
// and signs nothing; it is for tests, demos and the reference stores only.
// A real business (or a production platform) refuses its digests.
type SandboxSettler struct{}

// Settle returns the sandbox digest of unsignedTx.
func (SandboxSettler) Settle(_ context.Context, unsignedTx string) (string, error) {
	tx, err := base64.StdEncoding.DecodeString(unsignedTx)
	if err != nil {
		return "", fmt.Errorf("ucpclient: sandbox settle: unsigned_tx is not base64: %w", err)
	}
	sum := sha256.Sum256(tx)
	return "sim_" + hex.EncodeToString(sum[:]), nil
}

// LimitClientMaxSpend is the limit an AllowanceRefusal names when
// ConfirmInput.MaxSpend, the agent's own ceiling, refused the payment
// before anything was sent to the store (code spend_cap_exceeded, as the
// Artos SDK reports its maxSpendAmount).
const LimitClientMaxSpend = "client_max_spend"

// ConfirmInput is what ConfirmPurchase needs. Store, CheckoutID and Signer
// are required.
type ConfirmInput struct {
	// Store is the store's slug (the checkout lives at /s/{Store}/mcp).
	Store string
	// CheckoutID is the checkout to complete, created and updated before
	// (with the buyer's items, address and fulfillment choice).
	CheckoutID string
	// Signer mints the AP2 mandates. It is an input rather than part of
	// Config so that one Client can serve several agents; the agent's UCP
	// profile (Config.AgentProfile) must publish its key, or the store
	// refuses the mandates (agent_missing_key).
	Signer *Ap2Signer
	// PaymentMethod is the rail's handler id ("artos.card",
	// "artos.crypto"), passed as it is (the store validates it). Empty
	// means the store's single rail when it advertises exactly one, else
	// none: the outcome is OutcomePaymentSelectionRequired with the rails.
	PaymentMethod string
	// ApplyCoupon: nil leaves the checkout's coupon claim as it is; true
	// attaches the buyer's coupon (the sh.artos.coupon eligibility claim,
	// sent with the platform key and the buyer's bearer; without a buyer
	// it does nothing); false removes the claim.
	ApplyCoupon *bool
	// PaymentMandateID is the buyer's allowance id, bound into the
	// mandates. Only a UUID is sent (see AsAllowanceID); anything else is
	// dropped, as the Artos SDK does.
	PaymentMandateID string
	// MaxSpend, when positive, is the agent's own ceiling in minor units:
	// a checkout whose total is above it is not completed
	// (OutcomeAllowanceRefused, limit LimitClientMaxSpend). With
	// MaxSpendCurrency set, a checkout in another currency is refused too
	// (limit LimitCurrency); empty means the checkout's currency.
	MaxSpend         int64
	MaxSpendCurrency string
	// Crypto settles crypto payments; nil refuses the crypto rail
	// (OutcomeFailed, code crypto_not_configured). SandboxSettler works
	// with this platform's sandbox only.
	Crypto CryptoSettler
}

// ConfirmPurchase completes a checkout the way the Artos SDK's
// confirmPurchase does (createCheckoutHandlers), checking what it signs:
//
//  1. get_checkout, for a fresh quote;
//  2. ApplyCoupon: attach (platform key + buyer) or remove the coupon
//     claim, then get_checkout again;
//  3. the store's profile keys; merchant_authorization must verify
//     (VerifyMerchantAuthorization), the totals must add up (CheckTotals)
//     and the total must fit MaxSpend, else nothing is completed;
//  4. a total of 0 completes with the checkout mandate alone, no
//     instrument (the buyer's bearer when there is one, else the key);
//  5. the crypto rail (buyer's bearer only): prepare_checkout_payment,
//     payment_intent.unsigned_tx required, get_checkout again and step 3
//     again, checkout and payment mandates, Crypto.Settle, then
//     complete_checkout with an artos.crypto instrument whose credential
//     token is the digest;
//  6. otherwise (card): the checkout mandate, an instrument
//     {handler_id, selected: true} when a rail was resolved, completed
//     with the buyer's bearer when there is one (the buyer's allowance
//     applies and the saved card pays), else the platform key.
//
// The completion is classified with OutcomeOf. Refusals decided here are
// outcomes too: merchant_authorization failures and inconsistent totals
// are OutcomeFailed (codes from package mandate, totals_inconsistent; Err
// holds the cause), or OutcomeEscalationRequired when the checkout has a
// continue_url for the buyer; a store offering several rails with none
// chosen is OutcomePaymentSelectionRequired without a completion; a 401, or
// the crypto rail without a buyer token, is OutcomeSignInRequired.
// Transport and protocol failures are errors.
func (c *Client) ConfirmPurchase(ctx context.Context, in ConfirmInput) (*CheckoutOutcome, error) {
	switch {
	case in.Store == "":
		return nil, errors.New("ucpclient: ConfirmPurchase: Store is required")
	case in.CheckoutID == "":
		return nil, errors.New("ucpclient: ConfirmPurchase: CheckoutID is required")
	case in.Signer == nil:
		return nil, errors.New("ucpclient: ConfirmPurchase: Signer is required")
	case in.MaxSpend < 0:
		return nil, errors.New("ucpclient: ConfirmPurchase: MaxSpend is negative")
	}
	cf := &confirm{c: c, in: in}
	return cf.run(ctx)
}

// confirm is one ConfirmPurchase.
type confirm struct {
	c    *Client
	in   ConfirmInput
	keys *mandate.KeySet
}

// signInOutcome turns the failure of a buyer-bound call for want of a
// buyer credential (none, or one refused with a 401) into
// OutcomeSignInRequired; other errors stay errors. A 401 on a call made
// with the platform key alone is the platform's problem, not the buyer's,
// and stays an error.
func signInOutcome(err error) (*CheckoutOutcome, error) {
	var br *BuyerRequiredError
	var ae *AuthChallengeError
	switch {
	case errors.As(err, &br):
		return &CheckoutOutcome{Kind: OutcomeSignInRequired, Code: "authentication_required",
			Message: "this payment needs the buyer signed in (a buyer token)", Err: err}, nil
	case errors.As(err, &ae):
		o := &CheckoutOutcome{Kind: OutcomeSignInRequired, Code: "authentication_required", Message: err.Error(), Err: err}
		if ae.Challenge != nil && ae.Challenge.Error != "" {
			o.Code = ae.Challenge.Error
		}
		return o, nil
	}
	return nil, err
}

func (cf *confirm) run(ctx context.Context) (*CheckoutOutcome, error) {
	co, o, err := cf.fetch(ctx)
	if o != nil || err != nil {
		return o, err
	}
	if co, o, err = cf.coupon(ctx, co); o != nil || err != nil {
		return o, err
	}
	prof, err := cf.c.FetchStoreProfile(ctx, cf.in.Store)
	if err != nil {
		return nil, err
	}
	if cf.keys, err = profileKeys(prof); err != nil {
		return local(co, OutcomeFailed, string(mandate.CodeMerchantAuthorizationInvalid),
			"the store's profile publishes no usable signing key", err), nil
	}
	if o := cf.vet(co); o != nil {
		return o, nil
	}

	if GrandTotal(co) == 0 {
		tok, err := cf.in.Signer.MintCheckoutMandate(co, cf.in.Store, cf.opts())
		if err != nil {
			return nil, fmt.Errorf("ucpclient: ConfirmPurchase: %w", err)
		}
		return cf.complete(ctx, map[string]any{"ap2": map[string]string{"checkout_mandate": tok}})
	}

	rail, o := cf.resolveRail(co)
	if o != nil {
		return o, nil
	}
	if rail != "" && strings.Contains(rail, "crypto") {
		return cf.crypto(ctx, co, rail)
	}
	tok, err := cf.in.Signer.MintCheckoutMandate(co, cf.in.Store, cf.opts())
	if err != nil {
		return nil, fmt.Errorf("ucpclient: ConfirmPurchase: %w", err)
	}
	body := map[string]any{"ap2": map[string]string{"checkout_mandate": tok}}
	if rail != "" {
		body["payment"] = map[string]any{"instruments": []map[string]any{{"handler_id": rail, "selected": true}}}
	}
	return cf.complete(ctx, body)
}

func (cf *confirm) opts() *MandateOptions {
	return &MandateOptions{PaymentMandateID: cf.in.PaymentMandateID}
}

// fetch is get_checkout; a business error is the outcome.
func (cf *confirm) fetch(ctx context.Context) (json.RawMessage, *CheckoutOutcome, error) {
	b, err := cf.c.CallStoreTool(ctx, cf.in.Store, "get_checkout", map[string]string{"id": cf.in.CheckoutID})
	if err != nil {
		return nil, nil, err
	}
	if IsUCPError(b) {
		o := OutcomeOf(b)
		if o.Kind == OutcomeFailed && o.Code == "" {
			o.Code = "store_error"
		}
		return nil, &o, nil
	}
	var id struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &id) != nil || id.ID == "" {
		return nil, nil, &ProtocolError{Op: "store.get_checkout", StatusCode: 200, Content: "get_checkout returned no checkout", Body: b}
	}
	return b, nil, nil
}

// coupon attaches or removes the coupon claim as ApplyCoupon says, and
// returns the checkout as it then is.
func (cf *confirm) coupon(ctx context.Context, co json.RawMessage) (json.RawMessage, *CheckoutOutcome, error) {
	if cf.in.ApplyCoupon == nil {
		return co, nil, nil
	}
	var v struct {
		Context map[string]json.RawMessage `json:"context"`
	}
	_ = json.Unmarshal(co, &v)
	ctxObj := v.Context
	if ctxObj == nil {
		ctxObj = map[string]json.RawMessage{}
	}
	var elig []string
	if raw, ok := ctxObj["eligibility"]; ok {
		_ = json.Unmarshal(raw, &elig)
	}
	has := slices.Contains(elig, couponClaim)
	var opts []CallOption
	switch {
	case *cf.in.ApplyCoupon && cf.c.HasBuyerToken():
		if !has {
			elig = append(elig, couponClaim)
		}
		opts = append(opts, WithCoupon())
	case !*cf.in.ApplyCoupon && has:
		elig = slices.DeleteFunc(elig, func(s string) bool { return s == couponClaim })
	default:
		return co, nil, nil
	}
	if len(elig) == 0 {
		delete(ctxObj, "eligibility")
	} else {
		b, _ := json.Marshal(elig)
		ctxObj["eligibility"] = b
	}
	b, err := cf.c.CallStoreTool(ctx, cf.in.Store, "update_checkout",
		map[string]any{"id": cf.in.CheckoutID, "checkout": map[string]any{"context": ctxObj}}, opts...)
	if err != nil {
		if len(opts) > 0 { // the attach carries the buyer's bearer
			o, err := signInOutcome(err)
			return nil, o, err
		}
		return nil, nil, err
	}
	if IsUCPError(b) {
		o := OutcomeOf(b)
		return nil, &o, nil
	}
	return cf.fetch(ctx)
}

// profileKeys reads the keys a store profile publishes.
func profileKeys(p *ucp.Profile) (*mandate.KeySet, error) {
	if p == nil || len(p.SigningKeys) == 0 {
		return nil, errors.New("ucpclient: the store's profile has no signing keys")
	}
	b, err := json.Marshal(p.SigningKeys)
	if err != nil {
		return nil, err
	}
	ks, err := mandate.ParseKeySet(b)
	if err != nil {
		return nil, err
	}
	if ks.Len() == 0 {
		return nil, errors.New("ucpclient: the store's profile has no usable signing key")
	}
	return ks, nil
}

// vet runs the checks before anything is signed: merchant_authorization,
// the totals guard and the client's ceiling. nil means go on.
func (cf *confirm) vet(co json.RawMessage) *CheckoutOutcome {
	if err := VerifyMerchantAuthorization(co, cf.keys); err != nil {
		code := string(mandate.CodeMerchantAuthorizationInvalid)
		var me *mandate.Error
		if errors.As(err, &me) {
			code = string(me.Code)
		}
		return local(co, OutcomeFailed, code, "the store's signature over the checkout does not verify: not completed", err)
	}
	if err := CheckTotals(co); err != nil {
		o := local(co, OutcomeFailed, "totals_inconsistent", err.Error()+": not completed without the buyer", err)
		if o.ContinueURL != "" {
			o.Kind = OutcomeEscalationRequired
		}
		return o
	}
	if cf.in.MaxSpend > 0 {
		total, cur := GrandTotal(co), CurrencyOf(co)
		want := strings.ToUpper(strings.TrimSpace(cf.in.MaxSpendCurrency))
		switch {
		case want != "" && want != cur:
			o := local(co, OutcomeAllowanceRefused, "allowance_currency_mismatch",
				fmt.Sprintf("the agent's spending ceiling is in %s but the checkout is in %s", want, cur), nil)
			o.Refusal = &AllowanceRefusal{Code: o.Code, Limit: LimitCurrency, Max: cf.in.MaxSpend, Currency: want, Message: o.Message}
			return o
		case total > cf.in.MaxSpend:
			o := local(co, OutcomeAllowanceRefused, "spend_cap_exceeded",
				fmt.Sprintf("the total %s %s is over the agent's ceiling of %s %s", ucp.FormatMinor(total, cur), cur,
					ucp.FormatMinor(cf.in.MaxSpend, cur), cur), nil)
			o.Refusal = &AllowanceRefusal{Code: o.Code, Limit: LimitClientMaxSpend, Max: cf.in.MaxSpend, Currency: cur, Message: o.Message}
			return o
		}
	}
	return nil
}

// local is an outcome decided here, on checkout co.
func local(co json.RawMessage, kind OutcomeKind, code, msg string, err error) *CheckoutOutcome {
	o := &CheckoutOutcome{Kind: kind, Code: code, Message: msg, Err: err, Raw: co}
	var c ucp.Checkout
	if json.Unmarshal(co, &c) == nil && c.ID != "" {
		o.Checkout, o.ContinueURL, o.Messages = &c, c.ContinueURL, c.Messages
	}
	return o
}

// checkoutRails are the rails the checkout advertises.
func checkoutRails(co json.RawMessage) []Rail {
	var v struct {
		UCP struct {
			PaymentHandlers map[string][]ucp.PaymentHandler `json:"payment_handlers"`
		} `json:"ucp"`
	}
	_ = json.Unmarshal(co, &v)
	return railsOf(v.UCP.PaymentHandlers)
}

// resolveRail is the Artos SDK's resolveRail: the chosen method as it is,
// else the single advertised rail. Several rails and no choice is the
// payment selection outcome, decided without completing; no advertised
// rail means completing without an instrument.
func (cf *confirm) resolveRail(co json.RawMessage) (string, *CheckoutOutcome) {
	if cf.in.PaymentMethod != "" {
		return cf.in.PaymentMethod, nil
	}
	rails := checkoutRails(co)
	switch len(rails) {
	case 0:
		return "", nil
	case 1:
		return rails[0].ID, nil
	}
	o := local(co, OutcomePaymentSelectionRequired, "payment_selection_required",
		"the store offers several payment methods: choose one (ConfirmInput.PaymentMethod)", nil)
	o.Rails = rails
	return "", o
}

// crypto is the crypto branch: buyer's bearer only.
func (cf *confirm) crypto(ctx context.Context, co json.RawMessage, rail string) (*CheckoutOutcome, error) {
	if cf.in.Crypto == nil {
		return local(co, OutcomeFailed, "crypto_not_configured",
			"no crypto settler is configured (ConfirmInput.Crypto)", nil), nil
	}
	if !cf.c.HasBuyerToken() {
		return local(co, OutcomeSignInRequired, "authentication_required",
			"crypto payments are the buyer's: sign the buyer in first", &BuyerRequiredError{Op: "store.prepare_checkout_payment"}), nil
	}
	b, err := cf.c.CallStoreTool(ctx, cf.in.Store, "prepare_checkout_payment",
		map[string]any{"id": cf.in.CheckoutID, "payment_intent": map[string]any{}}, WithCrypto())
	if err != nil {
		return signInOutcome(err)
	}
	if IsUCPError(b) {
		o := OutcomeOf(b)
		return &o, nil
	}
	var prep struct {
		PaymentIntent struct {
			UnsignedTx string `json:"unsigned_tx"`
		} `json:"payment_intent"`
	}
	if json.Unmarshal(b, &prep) != nil || prep.PaymentIntent.UnsignedTx == "" {
		o := OutcomeOf(b)
		if o.Kind != OutcomeFailed || o.Code == "not_completed" || o.Code == "" {
			o = *local(co, OutcomeFailed, "payment_intent_invalid", "prepare_checkout_payment returned no payment_intent.unsigned_tx", nil)
			o.Raw = b
		}
		return &o, nil
	}
	// Prepare may have applied a coupon and re-signed: quote again.
	co, o, err := cf.fetch(ctx)
	if o != nil || err != nil {
		return o, err
	}
	if o := cf.vet(co); o != nil {
		return o, nil
	}
	ck, err := cf.in.Signer.MintCheckoutMandate(co, cf.in.Store, cf.opts())
	if err != nil {
		return nil, fmt.Errorf("ucpclient: ConfirmPurchase: %w", err)
	}
	pm, err := cf.in.Signer.MintPaymentMandate(GrandTotal(co), CurrencyOf(co), cf.in.Store, cf.opts())
	if err != nil {
		return nil, fmt.Errorf("ucpclient: ConfirmPurchase: %w", err)
	}
	digest, err := cf.in.Crypto.Settle(ctx, prep.PaymentIntent.UnsignedTx)
	if err != nil || digest == "" {
		if err == nil {
			err = errors.New("the settler returned no digest")
		}
		return local(co, OutcomeFailed, "payment_execution_failed", "the crypto payment was not settled: "+err.Error(), err), nil
	}
	return cf.complete(ctx, map[string]any{
		"ap2": map[string]string{"checkout_mandate": ck, "payment_mandate": pm},
		"payment": map[string]any{"instruments": []map[string]any{{
			"handler_id": rail, "type": "crypto", "selected": true, "credential": map[string]string{"token": digest}}}},
	}, WithCrypto())
}

// complete sends complete_checkout and classifies the answer.
func (cf *confirm) complete(ctx context.Context, checkout map[string]any, opts ...CallOption) (*CheckoutOutcome, error) {
	b, err := cf.c.CallStoreTool(ctx, cf.in.Store, "complete_checkout",
		map[string]any{"id": cf.in.CheckoutID, "checkout": checkout}, opts...)
	if err != nil {
		if cf.c.HasBuyerToken() { // the completion went with the buyer's bearer
			return signInOutcome(err)
		}
		return nil, err
	}
	o := OutcomeOf(b)
	return &o, nil
}
