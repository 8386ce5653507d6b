package ucpclient

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// OutcomeKind says how a purchase attempt ended. Switch on it; the
// CheckoutOutcome fields that go with each kind are listed there.
type OutcomeKind string

// The kinds of CheckoutOutcome. The string values are stable and fit for
// logs and JSON.
const (
	// OutcomeCompleted: the order was placed. Order is set (and Checkout).
	OutcomeCompleted OutcomeKind = "completed"
	// OutcomePaymentSelectionRequired: the store offers several rails and
	// none was chosen; nothing was charged and no mandate consumed. Rails
	// lists them: ask the buyer, then complete again with one.
	OutcomePaymentSelectionRequired OutcomeKind = "payment_selection_required"
	// OutcomeEscalationRequired: the buyer must finish in a browser
	// (3-D Secure, card entry, a changed price to review) at ContinueURL.
	OutcomeEscalationRequired OutcomeKind = "escalation_required"
	// OutcomeAllowanceRefused: the buyer's spending allowance for this
	// agent does not cover the payment; nothing was charged. Refusal says
	// which limit and what remains.
	OutcomeAllowanceRefused OutcomeKind = "allowance_refused"
	// OutcomeSignInRequired: the call needs the buyer signed in (a buyer
	// token, or a fresh one). Err holds the challenge when there was one.
	OutcomeSignInRequired OutcomeKind = "sign_in_required"
	// OutcomeInProgress: the store accepted the completion and is still
	// placing the order (checkout status complete_in_progress). Read the
	// checkout again later; do not complete it again with a new
	// idempotency key.
	OutcomeInProgress OutcomeKind = "in_progress"
	// OutcomeFailed: anything else. Code and Message say why (the store's
	// first error, or a client-side code such as
	// merchant_authorization_invalid); Err holds a Go error when one
	// caused it.
	OutcomeFailed OutcomeKind = "failed"
)

// CheckoutOutcome is how a purchase attempt (ConfirmPurchase, or a
// complete_checkout classified with OutcomeOf) ended: one Kind, and the
// fields that kind documents. It never stands for a transport failure on
// its own: those are errors.
type CheckoutOutcome struct {
	Kind OutcomeKind
	// Checkout is the checkout the response carried, if it carried one
	// that decodes (error envelopes carry none).
	Checkout *ucp.Checkout
	// Order is the placed order (OutcomeCompleted).
	Order *ucp.OrderConfirmation
	// Rails are the payment handlers to choose from
	// (OutcomePaymentSelectionRequired).
	Rails []Rail
	// ContinueURL is where the buyer continues (OutcomeEscalationRequired;
	// set on other kinds when the response carried one).
	ContinueURL string
	// Refusal says why the allowance refused (OutcomeAllowanceRefused).
	Refusal *AllowanceRefusal
	// Code and Message are the deciding message's code and content (every
	// kind but OutcomeCompleted).
	Code, Message string
	// Messages are all the response's messages.
	Messages []ucp.Message
	// Err is the Go error behind the outcome, if any (sign-in challenges,
	// a failed merchant_authorization check, a TotalsError).
	Err error
	// Raw is the response as received.
	Raw json.RawMessage
}

// Rail is one payment handler a checkout offers (ucp.payment_handlers).
type Rail struct {
	// ID is the handler instance id a payment instrument names in
	// handler_id, e.g. "artos.card".
	ID string
	// Name is the handler's registry key, e.g. "sh.artos.card".
	Name string
	// Crypto reports a crypto rail (the Artos SDK's railKind: the id
	// contains "crypto"), which completes with the buyer's bearer only.
	Crypto bool
}

// The limits an AllowanceRefusal names.
const (
	LimitAllowance        = "allowance"          // none given (allowance_required)
	LimitExpiry           = "expiry"             // allowance_expired
	LimitCurrency         = "currency"           // allowance_currency_mismatch
	LimitMaxPerOrder      = "max_per_order"      // spend_cap_exceeded, per order
	LimitDailyCap         = "daily_cap"          // spend_cap_exceeded, per day
	LimitPaymentMandateID = "payment_mandate_id" // mandate_scope_mismatch: another allowance
)

// AllowanceRefusal is a completion the buyer's allowance refused.
type AllowanceRefusal struct {
	// Code is the store's message code: spend_cap_exceeded,
	// allowance_expired, allowance_currency_mismatch, allowance_required or
	// mandate_scope_mismatch.
	Code string
	// Limit is which limit, one of the Limit constants, or "" when the
	// message does not say.
	Limit string
	// Max is the limit's amount in minor units of Currency (the per-order
	// maximum or the daily cap), when the message states it.
	Max int64
	// Remaining is what may still be spent today, in minor units of
	// Currency; meaningful when HasRemaining.
	Remaining    int64
	HasRemaining bool
	// Currency is the allowance's currency, when the message states it.
	Currency string
	// Message is the store's explanation, for the buyer.
	Message string
}

// allowanceCodes are the codes of the store's allowance refusals.
var allowanceCodes = map[string]string{
	"spend_cap_exceeded":          "",
	"allowance_expired":           LimitExpiry,
	"allowance_currency_mismatch": LimitCurrency,
	"allowance_required":          LimitAllowance,
	"mandate_scope_mismatch":      LimitPaymentMandateID,
}

// signInCodes are message codes meaning the buyer must sign in first.
var signInCodes = []string{"authentication_required", "invalid_token", "login_required", "buyer_token_required", "sign_in_required"}

// OutcomeOf classifies a complete_checkout response (the UCP body: the
// REST body, or the MCP tool's structuredContent) as the stores of this
// project send them, and as UCP 2026-04-08 allows any business to:
//
//   - an error envelope (ucp.status "error", no checkout) whose error is
//     an allowance code is OutcomeAllowanceRefused; mandate_scope_mismatch
//     counts as one only there, since on a checkout it means stale terms;
//   - an error coded authentication_required (and kin) is
//     OutcomeSignInRequired;
//   - an error coded payment_selection_required is
//     OutcomePaymentSelectionRequired, with the rails of
//     ucp.payment_handlers (whether ucp.status says "error", as the Artos
//     API does, or "success" with the checkout, as ours do);
//   - a checkout with status completed or an order is OutcomeCompleted;
//   - status requires_escalation with a continue_url is
//     OutcomeEscalationRequired; complete_in_progress is OutcomeInProgress;
//   - anything else is OutcomeFailed with the first error's code.
//
// The allowance's limit and remainder are read from the refusal's code and
// message text ("… and 12.00 EUR remains today"), which is what the store
// sends; a business that words it differently leaves them unset.
func OutcomeOf(completeResponse json.RawMessage) CheckoutOutcome {
	out := CheckoutOutcome{Raw: completeResponse}
	var v struct {
		UCP struct {
			Status          string                          `json:"status"`
			PaymentHandlers map[string][]ucp.PaymentHandler `json:"payment_handlers"`
		} `json:"ucp"`
		ID          string                 `json:"id"`
		Status      string                 `json:"status"`
		ContinueURL string                 `json:"continue_url"`
		Order       *ucp.OrderConfirmation `json:"order"`
		Messages    []ucp.Message          `json:"messages"`
	}
	if err := json.Unmarshal(completeResponse, &v); err != nil {
		out.Kind, out.Code, out.Message, out.Err = OutcomeFailed, "invalid_response", "the response is not a UCP JSON object", err
		return out
	}
	out.Messages, out.ContinueURL = v.Messages, v.ContinueURL
	if v.ID != "" {
		var c ucp.Checkout
		if json.Unmarshal(completeResponse, &c) == nil {
			out.Checkout = &c
		}
	}
	envelope := v.ID == "" && v.UCP.Status == ucp.StatusError
	var firstErr *ucp.Message
	for i := range v.Messages {
		if m := &v.Messages[i]; m.Type == "error" || (envelope && m.Type == "") {
			firstErr = m
			break
		}
	}
	decide := func(kind OutcomeKind, m *ucp.Message) CheckoutOutcome {
		out.Kind = kind
		if m != nil {
			out.Code, out.Message = m.Code, m.Content
		}
		return out
	}
	hasErr := func(code string) *ucp.Message {
		for i := range v.Messages {
			if m := &v.Messages[i]; m.Code == code && m.Type != "info" && m.Type != "warning" {
				return m
			}
		}
		return nil
	}

	if envelope && firstErr != nil {
		if limit, ok := allowanceCodes[firstErr.Code]; ok {
			out.Refusal = parseRefusal(firstErr, limit)
			return decide(OutcomeAllowanceRefused, firstErr)
		}
	}
	for _, code := range signInCodes {
		if m := hasErr(code); m != nil {
			return decide(OutcomeSignInRequired, m)
		}
	}
	if m := hasErr("payment_selection_required"); m != nil {
		out.Rails = railsOf(v.UCP.PaymentHandlers)
		return decide(OutcomePaymentSelectionRequired, m)
	}
	if !envelope && (v.Status == ucp.CheckoutCompleted || v.Order != nil) {
		out.Order = v.Order
		return decide(OutcomeCompleted, nil)
	}
	if v.Status == ucp.CheckoutRequiresEscalation || (envelope && v.ContinueURL != "") {
		if v.ContinueURL != "" {
			return decide(OutcomeEscalationRequired, firstErr)
		}
		out.Kind, out.Code, out.Message = OutcomeFailed, "escalation_without_continue_url",
			"the store asks for the buyer but gives no continue_url"
		return out
	}
	if !envelope && firstErr == nil && v.Status == ucp.CheckoutCompleteInProgress {
		return decide(OutcomeInProgress, nil)
	}
	if firstErr == nil {
		out.Kind, out.Code = OutcomeFailed, "not_completed"
		out.Message = "the store did not complete the checkout (status " + strings.TrimSpace(v.Status+" "+v.UCP.Status) + ")"
		return out
	}
	return decide(OutcomeFailed, firstErr)
}

// railsOf lists the payment handlers of ucp.payment_handlers, sorted by
// registry key as the map has no order.
func railsOf(handlers map[string][]ucp.PaymentHandler) []Rail {
	var rails []Rail
	for name, list := range handlers {
		for _, h := range list {
			id := h.ID
			if id == "" {
				id = name
			}
			rails = append(rails, Rail{ID: id, Name: name, Crypto: strings.Contains(id, "crypto")})
		}
	}
	slices.SortFunc(rails, func(a, b Rail) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rails
}

// The store's wording of its refusals (authserver/oauth.Allowance.Check):
// money is ucp.FormatMinor followed by the code.
var (
	reMoney     = `([0-9]+(?:\.[0-9]+)?) ([A-Z]{3})`
	rePerOrder  = regexp.MustCompile(`allows at most ` + reMoney + ` per order`)
	reDailyCap  = regexp.MustCompile(`daily cap is ` + reMoney)
	reRemaining = regexp.MustCompile(reMoney + ` remains today`)
	reAllowIn   = regexp.MustCompile(`allowance is in ([A-Z]{3})`)
)

func parseRefusal(m *ucp.Message, limit string) *AllowanceRefusal {
	r := &AllowanceRefusal{Code: m.Code, Limit: limit, Message: m.Content}
	money := func(re *regexp.Regexp) (int64, string, bool) {
		sm := re.FindStringSubmatch(m.Content)
		if sm == nil {
			return 0, "", false
		}
		n, err := ucp.ParseMinor(sm[1], sm[2])
		return n, sm[2], err == nil
	}
	switch {
	case m.Code == "spend_cap_exceeded":
		if n, cur, ok := money(rePerOrder); ok {
			r.Limit, r.Max, r.Currency = LimitMaxPerOrder, n, cur
		} else if n, cur, ok := money(reDailyCap); ok {
			r.Limit, r.Max, r.Currency = LimitDailyCap, n, cur
		}
		if n, cur, ok := money(reRemaining); ok {
			r.Remaining, r.HasRemaining, r.Currency = n, true, cur
		}
	case m.Code == "allowance_currency_mismatch":
		if sm := reAllowIn.FindStringSubmatch(m.Content); sm != nil {
			r.Currency = sm[1]
		}
	}
	return r
}
