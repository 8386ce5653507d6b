package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// PurchaseResult is confirm_purchase's structured content: how the
// attempt ended and what to do next.
type PurchaseResult struct {
	// Outcome is a ucpclient.OutcomeKind: completed,
	// payment_selection_required, escalation_required, allowance_refused,
	// sign_in_required, in_progress or failed.
	Outcome    string `json:"outcome"`
	CheckoutID string `json:"checkout_id"`
	OrderID    string `json:"order_id,omitempty"`
	OrderURL   string `json:"order_url,omitempty"`
	// Total is the checkout's total in minor units of Currency, and
	// TotalDisplay the same in major units.
	Total        int64         `json:"total"`
	Currency     string        `json:"currency,omitempty"`
	TotalDisplay string        `json:"total_display,omitempty"`
	Rails        []railOut     `json:"rails,omitempty"`
	ContinueURL  string        `json:"continue_url,omitempty"`
	Refusal      *refusalOut   `json:"refusal,omitempty"`
	Code         string        `json:"code,omitempty"`
	Message      string        `json:"message,omitempty"`
	NextStep     string        `json:"next_step"`
	Messages     []ucp.Message `json:"messages,omitempty"`
}

type railOut struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Crypto bool   `json:"crypto"`
}

type refusalOut struct {
	Code      string `json:"code"`
	Limit     string `json:"limit,omitempty"`
	Max       *int64 `json:"max,omitempty"`
	Remaining *int64 `json:"remaining,omitempty"`
	Currency  string `json:"currency,omitempty"`
	Message   string `json:"message,omitempty"`
}

var purchaseOut = openObject(obj{
	"outcome": obj{"type": "string", "enum": []string{"completed", "payment_selection_required", "escalation_required",
		"allowance_refused", "sign_in_required", "in_progress", "failed"}},
	"checkout_id": obj{"type": "string"}, "order_id": obj{"type": "string"}, "order_url": obj{"type": "string"},
	"total": obj{"type": "integer"}, "currency": obj{"type": "string"}, "total_display": obj{"type": "string"},
	"rails": obj{"type": "array", "items": obj{"type": "object"}}, "continue_url": obj{"type": "string"},
	"refusal": obj{"type": "object"}, "code": obj{"type": "string"}, "message": obj{"type": "string"},
	"next_step": obj{"type": "string"}, "messages": messagesOut,
}, "outcome", "checkout_id", "next_step")

func (b *Bridge) confirmTool() {
	b.add(newTool("confirm_purchase", "Confirm the purchase (pays)",
		"Place the order and PAY for a checkout that is ready_for_complete. Only call it after the buyer confirmed the items and the total "+
			"(view_checkout). It re-reads the checkout, verifies the store's signed terms, mints the payment mandates and completes. "+
			"payment_method: artos.card (the buyer's saved card when their account is connected, within their spending allowance; "+
			"otherwise the buyer pays on a hosted page), artos.crypto (needs the connected account), or another rail id the store lists. "+
			"Omit it when the store has one rail. The result's outcome says what happened and next_step what to tell or ask the buyer: "+
			"completed (order id and total), payment_selection_required (ask which rail), escalation_required (the buyer opens continue_url), "+
			"allowance_refused (which limit, what remains), sign_in_required (connect the account), failed (code and fix).",
		object(obj{
			"store_slug":  storeSlugProp,
			"checkout_id": str("The checkout to pay (create_checkout)."),
			"payment_method": obj{"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9._:-]+$",
				"description": "Rail id: artos.card, artos.crypto, or one the store lists in payment_selection_required."},
			"payment_mandate_id": obj{"type": "string", "maxLength": 100, "description": "Optional: the buyer's allowance id (a UUID) to bind the payment to."},
			"apply_coupon":       obj{"type": "boolean", "description": "true: spend the buyer's platform coupon on this order (needs the connected account); false: remove it."},
		}, "store_slug", "checkout_id"),
		purchaseOut, annotations("Confirm the purchase", false, true, false, true)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				StoreSlug        string `json:"store_slug"`
				CheckoutID       string `json:"checkout_id"`
				PaymentMethod    string `json:"payment_method,omitempty"`
				PaymentMandateID string `json:"payment_mandate_id,omitempty"`
				ApplyCoupon      *bool  `json:"apply_coupon,omitempty"`
			}
			if err := bind(req, &in); err != nil {
				return nil, err
			}
			o, err := b.client(ctx).ConfirmPurchase(ctx, ucpclient.ConfirmInput{Store: in.StoreSlug, CheckoutID: in.CheckoutID,
				Signer: b.signer, PaymentMethod: in.PaymentMethod, PaymentMandateID: in.PaymentMandateID,
				ApplyCoupon: in.ApplyCoupon, Crypto: b.cfg.Crypto})
			if err != nil {
				return nil, err
			}
			pr := purchaseResult(ctx, in.CheckoutID, o)
			b.log.Info("bridge: confirm_purchase", "store", in.StoreSlug, "outcome", pr.Outcome, "code", pr.Code)
			summary := pr.Message
			if summary == "" {
				summary = "Outcome: " + pr.Outcome + "."
			}
			res, err := structResult(pr, summary+"\nNext: "+pr.NextStep)
			if err != nil {
				return nil, err
			}
			switch o.Kind {
			case ucpclient.OutcomeAllowanceRefused, ucpclient.OutcomeSignInRequired, ucpclient.OutcomeFailed:
				res.IsError = true
			}
			return res, nil
		})
}

// purchaseResult maps an outcome to plain next steps.
func purchaseResult(ctx context.Context, checkoutID string, o *ucpclient.CheckoutOutcome) *PurchaseResult {
	pr := &PurchaseResult{Outcome: string(o.Kind), CheckoutID: checkoutID, ContinueURL: o.ContinueURL,
		Code: o.Code, Message: o.Message, Messages: o.Messages}
	if o.Checkout != nil {
		pr.Total, pr.Currency = ucpclient.GrandTotal(o.Checkout), strings.ToUpper(o.Checkout.Currency)
	} else if len(o.Raw) > 0 && !ucpclient.IsUCPError(o.Raw) {
		// Raw is a checkout here; a store's refusal is an error envelope
		// with no total, where CurrencyOf would guess USD and the total
		// read 0.
		pr.Total, pr.Currency = ucpclient.GrandTotal(o.Raw), ucpclient.CurrencyOf(o.Raw)
	}
	if pr.Currency != "" {
		pr.TotalDisplay = ucp.FormatMinor(pr.Total, pr.Currency) + " " + pr.Currency
	}
	switch o.Kind {
	case ucpclient.OutcomeCompleted:
		if o.Order != nil {
			pr.OrderID, pr.OrderURL = o.Order.ID, o.Order.PermalinkURL
		}
		pr.Message = fmt.Sprintf("Order %s placed; total %s.", pr.OrderID, pr.TotalDisplay)
		pr.NextStep = "Tell the buyer the order is placed (order id and total). get_order or get_my_order shows its status later."
	case ucpclient.OutcomePaymentSelectionRequired:
		ids := make([]string, 0, len(o.Rails))
		for _, r := range o.Rails {
			pr.Rails = append(pr.Rails, railOut{ID: r.ID, Name: r.Name, Crypto: r.Crypto})
			ids = append(ids, r.ID)
		}
		pr.Message = "The store offers several payment rails and none was chosen; nothing was charged."
		pr.NextStep = "Ask the buyer how to pay (" + strings.Join(ids, ", ") + "), then call confirm_purchase again with payment_method set to that id."
	case ucpclient.OutcomeEscalationRequired:
		pr.Message = orDefault(pr.Message, "The buyer must finish this purchase in a browser.")
		pr.NextStep = "Give the buyer this link to finish (card entry, 3-D Secure or a price change to review): " + o.ContinueURL +
			" Then call view_checkout to see whether it completed."
	case ucpclient.OutcomeAllowanceRefused:
		pr.Refusal, pr.Message, pr.NextStep = refusal(o.Refusal, pr)
	case ucpclient.OutcomeSignInRequired:
		pr.Message = orDefault(pr.Message, "This payment needs the buyer's connected account.")
		pr.NextStep = connectHint(ctx) + " Then call confirm_purchase again."
	case ucpclient.OutcomeInProgress:
		pr.Message = "The store accepted the payment and is still placing the order."
		pr.NextStep = "Call view_checkout in a moment; do not call confirm_purchase again for this checkout."
	default:
		pr.NextStep = failedNextStep(o.Code, o.ContinueURL)
		if pr.Message == "" {
			pr.Message = "The purchase failed: " + orDefault(o.Code, "unknown error") + "."
		}
	}
	return pr
}

// refusal explains an allowance refusal: which limit, what remains.
func refusal(r *ucpclient.AllowanceRefusal, pr *PurchaseResult) (*refusalOut, string, string) {
	if r == nil {
		return nil, "The buyer's spending allowance refused this payment; nothing was charged.",
			"Tell the buyer; they can raise the allowance by connecting again, or buy less."
	}
	ro := &refusalOut{Code: r.Code, Limit: r.Limit, Currency: r.Currency, Message: r.Message}
	money := func(v int64) string { return ucp.FormatMinor(v, r.Currency) + " " + r.Currency }
	if r.Max > 0 {
		ro.Max = &r.Max
	}
	if r.HasRemaining {
		ro.Remaining = &r.Remaining
	}
	total, checkoutCurrency := "the total", "another currency"
	if pr.TotalDisplay != "" {
		total, checkoutCurrency = "the total "+pr.TotalDisplay, pr.Currency
	}
	var msg string
	switch r.Limit {
	case ucpclient.LimitMaxPerOrder:
		msg = fmt.Sprintf("Refused: %s is over the buyer's per-order limit of %s for this agent.", total, money(r.Max))
	case ucpclient.LimitDailyCap:
		msg = fmt.Sprintf("Refused: %s is over what remains of the buyer's daily cap of %s for this agent.", total, money(r.Max))
	case ucpclient.LimitClientMaxSpend:
		msg = "Refused by the agent's own spending ceiling."
	case ucpclient.LimitExpiry:
		msg = "Refused: the buyer's spending allowance for this agent has expired."
	case ucpclient.LimitCurrency:
		msg = "Refused: the buyer's allowance is in " + r.Currency + ", and this checkout is in " + checkoutCurrency + "."
	case ucpclient.LimitAllowance:
		msg = "Refused: the buyer has not given this agent a spending allowance."
	case ucpclient.LimitPaymentMandateID:
		msg = "Refused: payment_mandate_id names another allowance than the buyer's for this agent."
	default:
		msg = "Refused by the buyer's spending allowance."
	}
	if r.HasRemaining {
		msg += fmt.Sprintf(" %s remains today.", money(r.Remaining))
	}
	msg += " Nothing was charged."
	if r.Message != "" {
		msg += " (" + r.Message + ")"
	}
	next := "Tell the buyer which limit stopped the purchase. They can buy less (update_checkout), or raise the limit by connecting the account again and setting a higher allowance."
	return ro, msg, next
}

func failedNextStep(code, continueURL string) string {
	switch {
	case code == "merchant_authorization_invalid" || code == "totals_inconsistent" || strings.Contains(code, "mandate") ||
		strings.Contains(code, "stale") || strings.Contains(code, "changed") || code == "checkout_expired":
		return "The checkout's terms changed or could not be verified: call view_checkout, show the buyer the current total, and confirm again only if they agree."
	case code == "crypto_not_configured":
		return "This bridge cannot pay with crypto; use artos.card."
	case code == "payment_declined" || strings.Contains(code, "declined"):
		return "The payment was declined. Ask the buyer for another payment method, or to finish at the store's page."
	case code == "out_of_stock":
		return "An item sold out. view_checkout, then update_checkout with another item."
	case continueURL != "":
		return "The buyer can finish at " + continueURL
	}
	return "Tell the buyer the purchase did not go through (code " + orDefault(code, "unknown") + "); view_checkout shows its state."
}
